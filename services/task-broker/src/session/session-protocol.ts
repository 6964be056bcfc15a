// The broker's side of the Work protocol, free of I/O: what a Hello may register, and what each
// runner message means for its session (messages in, decisions out). The session hub carries the
// decisions out (Redis, job-service, the dispatcher); every rule here has a test named for it.
import { Code } from "@connectrpc/connect";
import { RunnerKind, type Hello, type LeaseRef, type TaskIdentifier, type TaskLogs, type TaskProgress, type WorkRequest } from "@corral/proto";
import { InvalidArgumentError } from "@corral/server-kit";
import { readableQueues } from "../task-identifier.js";

export interface ProtocolLimits {
  /** Most task versions one registration may make readable. */
  maxQueuesPerSession: number;
}

/** What the protocol needs to know of a session to judge its next message. */
export interface SessionView {
  readonly state: "active" | "draining" | "closed";
  readonly kind: RunnerKind;
  /** Open credit and the most the runner may hold. */
  readonly credit: number;
  readonly maxCredit: number;
  /** The last Reregister revision applied (0 after Hello). */
  readonly revision: number;
}

export type Decision =
  /** Nothing to do (a closed session, or credit while draining). */
  | { kind: "none" }
  /** End the stream with this WorkError. */
  | { kind: "violation"; code: Code; message: string }
  | { kind: "grantCredit"; n: number }
  | { kind: "heartbeat" }
  | { kind: "report"; lease: LeaseRef | undefined; message: Extract<WorkRequest["message"], { case: "completed" | "failed" }> }
  | { kind: "drain" }
  /** Live progress of a running task: forwarded, never answered. */
  | { kind: "progress"; progress: TaskProgress }
  | { kind: "reregister"; identifiers: TaskIdentifier[]; queues: string[]; revision: number }
  /** Lines of task attempts, for the task log forwarder (it checks each attempt's lease). */
  | { kind: "taskLogs"; logs: TaskLogs }
  /** Apply each inner message in order, each judged by decideInBatch. */
  | { kind: "batch"; messages: WorkRequest[] };

/** A runner kind that may start with no identifier and register them later with Reregister. */
export function registersLater(kind: RunnerKind): boolean {
  return kind === RunnerKind.RELEASE || kind === RunnerKind.GATEWAY;
}

/**
 * The queues a Hello makes readable. A direct runner names what it serves up front; a release or
 * gateway runner may name nothing yet. Throws InvalidArgumentError naming the field.
 */
export function helloQueues(hello: Pick<Hello, "identifiers" | "kind">, limits: ProtocolLimits): string[] {
  if (hello.identifiers.length === 0 && !registersLater(hello.kind)) {
    throw new InvalidArgumentError("hello.identifiers", "must name at least one task identifier");
  }
  return readableQueues(hello.identifiers, limits.maxQueuesPerSession);
}

const none: Decision = { kind: "none" };

function violation(code: Code, message: string): Decision {
  return { kind: "violation", code, message };
}

function reregister(view: SessionView, identifiers: TaskIdentifier[], revision: number, limits: ProtocolLimits): Decision {
  if (revision <= view.revision) {
    return violation(Code.InvalidArgument, `reregister.revision ${revision} must be above the last applied (${view.revision})`);
  }
  let queues: string[];
  try {
    queues = readableQueues(identifiers, limits.maxQueuesPerSession);
  } catch (err) {
    if (err instanceof InvalidArgumentError) return violation(Code.InvalidArgument, `reregister: ${err.message}`);
    throw err;
  }
  return { kind: "reregister", identifiers, queues, revision };
}

/** What one runner message asks of its session. */
export function decide(view: SessionView, request: WorkRequest, limits: ProtocolLimits): Decision {
  if (view.state === "closed") return none;
  const m = request.message;
  switch (m.case) {
    case "hello":
      return violation(Code.FailedPrecondition, "Hello was already sent on this stream");
    case "credit":
      if (view.state !== "active") return none;
      if (view.credit + m.value.n > view.maxCredit) {
        return violation(Code.ResourceExhausted, `open credit would exceed ${view.maxCredit} (twice the slots, at most 10000)`);
      }
      return { kind: "grantCredit", n: m.value.n };
    case "heartbeat":
      return { kind: "heartbeat" };
    case "completed":
    case "failed":
      if (!m.value.lease) return violation(Code.InvalidArgument, "a result needs its lease");
      return { kind: "report", lease: m.value.lease, message: m };
    case "progress":
      if (!m.value.lease) return violation(Code.InvalidArgument, "progress needs its lease");
      return { kind: "progress", progress: m.value };
    case "batch":
      return { kind: "batch", messages: m.value.messages };
    case "draining":
      return view.state === "active" ? { kind: "drain" } : none;
    case "reregister":
      return reregister(view, m.value.identifiers, m.value.revision, limits);
    case "taskLogs":
      return { kind: "taskLogs", logs: m.value };
    default:
      return violation(Code.InvalidArgument, "empty message");
  }
}

/** A message inside a batch: as on its own, except that a batch cannot hold Hello or another batch. */
export function decideInBatch(view: SessionView, inner: WorkRequest, limits: ProtocolLimits): Decision {
  const c = inner.message.case;
  if (c === "hello" || c === "batch") {
    return violation(Code.InvalidArgument, `a batch cannot hold ${c === "hello" ? "Hello" : "another batch"}`);
  }
  return decide(view, inner, limits);
}
