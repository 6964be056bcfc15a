// An unbounded push/pull queue for the outgoing half of a Work stream: the runner's (SDK) and each
// runner session's (broker) messages are pushed from anywhere and pulled by the stream's
// generator, in batches when the caller asks. `end(err)` makes the consumer finish, or throw.
export class AsyncQueue<T> implements AsyncIterable<T> {
  readonly #items: T[] = [];
  #wake: (() => void) | undefined;
  #closed = false;
  #error: unknown;

  get closed(): boolean {
    return this.#closed;
  }

  /** Values queued and not yet pulled: a producer that must stay bounded checks this. */
  get size(): number {
    return this.#items.length;
  }

  /** Queues a value; false (and dropped) once the queue has ended or its consumer stopped. */
  push(value: T): boolean {
    if (this.#closed) return false;
    this.#items.push(value);
    this.#signal();
    return true;
  }

  /** Stops accepting; the consumer gets what is queued, then finishes (or throws `err`). Safe to call twice. */
  end(err?: unknown): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#error = err;
    this.#signal();
  }

  #signal(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  /** Like iterating, but each step takes everything queued by then (at most `max` values). */
  async *chunks(max: number): AsyncGenerator<T[]> {
    try {
      for (;;) {
        if (this.#items.length > 0) {
          yield this.#items.splice(0, max);
          continue;
        }
        if (this.#closed) {
          if (this.#error !== undefined) throw this.#error;
          return;
        }
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
        });
      }
    } finally {
      // The consumer is gone (done, thrown, or returned early): later pushes are refused.
      this.#closed = true;
      this.#items.length = 0;
    }
  }

  // A generator, because connect's stream plumbing calls throw() and return() on the iterator.
  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    for await (const [value] of this.chunks(1)) yield value!;
  }
}
