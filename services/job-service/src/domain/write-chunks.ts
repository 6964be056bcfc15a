// How large writes are cut: a large fan-out is written in several statements of one transaction,
// yielding to the event loop between them, so other requests of the process (other teams' small
// submissions and results) are served meanwhile instead of waiting for one huge statement to be
// built, sent and parsed.

/** Tasks (or edges) per insert statement. */
export const INSERT_CHUNK = 2_000;

/** Lets queued I/O callbacks run between the chunks of a large write. */
export const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));
