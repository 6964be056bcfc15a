// The messages between a release runner and one release's child process (Node's IPC channel with
// the "advanced" serialization, so bytes travel as Uint8Array), and their pure encodings: a task
// envelope and a task outcome cross as protobuf bytes, so subtasks and progress keep their exact shape.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { CompletedSchema, FailedSchema, TaskEnvelopeSchema, TaskProgressSchema, type TaskEnvelope } from "@corral/proto";
import type { TaskIdentifierInit } from "../../identifier.js";
import type { ProgressSnapshot } from "../execute-task.js";
import type { TaskOutcome } from "../runner-state.js";
import type { ScriptOptions } from "../../tasks/script-policy.js";

/** What the child needs to load its release. */
export interface LoadRequest {
  type: "load";
  /** Absolute path of the verified bundle (an ES module). */
  bundlePath: string;
  /** The release, for log lines and errors. */
  release: string;
  /** What the runner lets RunScript-style tasks do. */
  scripts: ScriptOptions;
  logLevel: string;
}

export type ParentMessage =
  | LoadRequest
  | { type: "execute"; key: string; attempt: number; envelope: Uint8Array }
  | { type: "cancel"; key: string; reason: string }
  | { type: "cache-reply"; id: number; value?: Uint8Array; error?: string }
  /** Finish nothing more: the parent only sends it when the child holds no task. */
  | { type: "stop" };

export type CacheOp = "get" | "put" | "delete";

export type ChildMessage =
  | { type: "loaded"; identifiers: TaskIdentifierInit[] }
  | { type: "load-failed"; error: string }
  | { type: "result"; key: string; outcome: EncodedOutcome }
  | { type: "cache"; id: number; op: CacheOp; jobId: string; key: string; value?: Uint8Array }
  /** One pino line of the child's logger, forwarded to the runner's. */
  | { type: "log"; line: string }
  /** One ctx.logger record of the task `key`, for the attempt's task log (sent before its result). */
  | { type: "task-log"; key: string; line: string }
  /** A running task's progress and display so far (TaskProgress bytes without the lease), throttled by the child. */
  | { type: "progress"; key: string; bytes: Uint8Array };

/** A TaskOutcome as it crosses the channel. */
export type EncodedOutcome = { kind: "completed"; bytes: Uint8Array } | { kind: "failed"; bytes: Uint8Array };

export function encodeEnvelope(envelope: TaskEnvelope): Uint8Array {
  return toBinary(TaskEnvelopeSchema, envelope);
}

export function decodeEnvelope(bytes: Uint8Array): TaskEnvelope {
  return fromBinary(TaskEnvelopeSchema, bytes);
}

/** A completed outcome rides in a Completed message, a failed one in a Failed message, without their lease. */
export function encodeOutcome(outcome: TaskOutcome): EncodedOutcome {
  if (outcome.kind === "completed") {
    const { display, subtasks, progress, output } = outcome;
    return { kind: "completed", bytes: toBinary(CompletedSchema, create(CompletedSchema, { display, subtasks, progress, output })) };
  }
  const { error, unrecoverable, countsAsRetry, display, progress, output } = outcome;
  return {
    kind: "failed",
    bytes: toBinary(FailedSchema, create(FailedSchema, { error, unrecoverable, countsAsRetry, display, progress, output })),
  };
}

export function decodeOutcome(encoded: EncodedOutcome): TaskOutcome {
  if (encoded.kind === "completed") {
    const m = fromBinary(CompletedSchema, encoded.bytes);
    return { kind: "completed", display: m.display, subtasks: m.subtasks, progress: m.progress, output: m.output };
  }
  const m = fromBinary(FailedSchema, encoded.bytes);
  return {
    kind: "failed",
    error: m.error,
    unrecoverable: m.unrecoverable,
    countsAsRetry: m.countsAsRetry,
    display: m.display,
    progress: m.progress,
    output: m.output,
  };
}

/** The outcome of a task whose release process went away: the runner's fault, re-queued without counting a retry. */
export function releaseFault(error: string): TaskOutcome {
  return { kind: "failed", error, unrecoverable: false, countsAsRetry: false, display: "", progress: [] };
}

const parentTypes = new Set(["load", "execute", "cancel", "cache-reply", "stop"]);
const childTypes = new Set(["loaded", "load-failed", "result", "cache", "log", "task-log", "progress"]);

/** True for a message the parent may send (the child ignores anything else). */
export function isParentMessage(value: unknown): value is ParentMessage {
  return typeof value === "object" && value !== null && parentTypes.has((value as { type?: unknown }).type as string);
}

/** True for a message the child may send (the parent ignores anything else: the bundle shares the channel's process). */
export function isChildMessage(value: unknown): value is ChildMessage {
  return typeof value === "object" && value !== null && childTypes.has((value as { type?: unknown }).type as string);
}

/** A running task's progress as it crosses the channel (a TaskProgress without its lease). */
export function encodeProgress(snapshot: ProgressSnapshot): Uint8Array {
  return toBinary(TaskProgressSchema, create(TaskProgressSchema, { progress: snapshot.progress, display: snapshot.display }));
}

export function decodeProgress(bytes: Uint8Array): ProgressSnapshot {
  const p = fromBinary(TaskProgressSchema, bytes);
  return { progress: p.progress, display: p.display };
}
