// TaskBrokerService.Work: the runner's bidirectional stream. Thin: authenticate, expect Hello,
// then pump runner messages into the session hub while the stream sends the session's outgoing
// messages (work-stream.ts).
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { WorkResponseSchema, type Hello, type TaskBrokerService, type WorkRequest, type WorkResponse } from "@corral/proto";
import { requireWorker, toConnectError } from "@corral/server-kit";
import type { Logger } from "pino";
import { ProtocolViolationError } from "./errors.js";
import type { RunnerSession } from "./runner-session.js";
import type { SessionHub } from "./session-hub.js";
import { WorkStream, type Opened, type Opening } from "./work-stream.js";

function workError(err: unknown): WorkResponse {
  // The same code and text the error interceptor gives the stream's status.
  const ce = toConnectError(err);
  return create(WorkResponseSchema, { message: { case: "error", value: { code: ce.code, message: ce.rawMessage } } });
}

export function createWorkService(
  hub: SessionHub,
  logger: Logger,
  options: { helloTimeoutMs?: number } = {},
): Partial<ServiceImpl<typeof TaskBrokerService>> {
  const helloTimeoutMs = options.helloTimeoutMs ?? 30_000;
  // Runner messages are applied as they come, while the stream sends the session's answers.
  const pump = ({ session, input }: Opened) => void pumpInput(hub, session, input, logger);
  return {
    work(requests: AsyncIterable<WorkRequest>, ctx: HandlerContext): AsyncIterable<WorkResponse> {
      return new WorkStream(hub, ctx, open(hub, requests, ctx, helloTimeoutMs), pump);
    },
  };
}

/** Hello, then the session it opens; a WorkError answers a bad or missing Hello and a refused one. */
async function* open(hub: SessionHub, requests: AsyncIterable<WorkRequest>, ctx: HandlerContext, helloTimeoutMs: number): Opening {
  // A runner-scoped key (minted for a runner an agent launched) may say Hello only to its cluster.
  const worker = requireWorker(ctx);
  const input = requests[Symbol.asyncIterator]();
  const hello = yield* expectHello(input, helloTimeoutMs);
  if (!hello) return undefined;
  let session: RunnerSession;
  try {
    session = await hub.open(worker.teamId, hello, worker.clusterId);
  } catch (err) {
    yield workError(err);
    throw err;
  }
  if (ctx.signal.aborted) {
    // The runner left while its Hello was being answered.
    hub.detach(session);
    return undefined;
  }
  return { session, input };
}

/**
 * The stream's first message, which must be Hello within `timeoutMs` (a stream that never says
 * Hello would hold a connection slot forever); undefined when the stream ended first. Anything
 * else is answered with a WorkError and ends the stream.
 */
async function* expectHello(input: AsyncIterator<WorkRequest>, timeoutMs: number): AsyncGenerator<WorkResponse, Hello | undefined> {
  let first: IteratorResult<WorkRequest>;
  let timer: NodeJS.Timeout | undefined;
  const silent = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ProtocolViolationError(Code.DeadlineExceeded, `no Hello within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    first = await Promise.race([input.next(), silent]);
  } catch (err) {
    // Hello failed validation or never came: answered like every other stream error.
    const answered = err instanceof ProtocolViolationError || (err instanceof ConnectError && err.code === Code.InvalidArgument);
    if (!answered) throw err;
    yield workError(err);
    throw err;
  } finally {
    clearTimeout(timer);
  }
  if (first.done) return undefined;
  if (first.value.message.case !== "hello") {
    const err = new ProtocolViolationError(Code.InvalidArgument, "the first message must be Hello");
    yield workError(err);
    throw err;
  }
  return first.value.message.value;
}

/** Applies the runner's messages in order until its input ends. */
async function pumpInput(hub: SessionHub, s: RunnerSession, input: AsyncIterator<WorkRequest>, logger: Logger): Promise<void> {
  try {
    for (;;) {
      const next = await input.next();
      if (next.done || s.state === "closed") break;
      await hub.handle(s, next.value);
    }
    hub.inputEnded(s);
  } catch (err) {
    if (err instanceof ConnectError && err.code === Code.InvalidArgument) {
      // A message failed validation: answer like any protocol violation.
      s.fail(err.code, err.rawMessage, err);
      return;
    }
    // The client went away: the stream is over, its leases are not.
    logger.debug({ err, session: s.id }, "runner input ended with an error");
    hub.detach(s);
  }
}
