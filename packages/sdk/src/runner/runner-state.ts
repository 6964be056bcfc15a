// The runner's protocol state, free of I/O: which leases it holds, what credit the broker has,
// which results wait for an Ack. Every event returns the effects the runner must carry out
// (messages to send, tasks to start or abort), so the whole protocol is testable without a network.
//
// Credit: the runner keeps `executing + queued + brokerCredit <= capacity`, where brokerCredit is
// its lower estimate of the credit the broker still holds. After Welcome it assumes the broker
// granted `slots - resumed leases` and tops up from there; if the broker granted more, the extra
// assignments wait in a local queue (their leases still extend with every heartbeat) rather than
// running beyond the concurrency. Results stay held until Acked and are re-sent on reconnect.
import { create } from "@bufbuild/protobuf";
import {
  CompletedSchema,
  CreditSchema,
  DrainingSchema,
  FailedSchema,
  LeaseRefSchema,
  TaskProgressSchema,
  ReregisterSchema,
  TaskErrorKind,
  type Assign,
  type ProgressIndicator,
  type TaskOutput,
  type TaskSubmission,
  type Welcome,
  type WorkRequest,
} from "@corral/proto";
import type { TaskIdentifierInit } from "../identifier.js";

type OutgoingMessage = Exclude<WorkRequest["message"], { case: undefined }>;

export type RunnerEffect =
  | { kind: "send"; message: OutgoingMessage }
  | { kind: "execute"; key: string; assign: Assign }
  | { kind: "abort"; key: string; reason: string };

export type TaskOutcome =
  | { kind: "completed"; display: string; subtasks: TaskSubmission[]; progress: ProgressIndicator[]; output?: TaskOutput }
  | {
      kind: "failed";
      error: string;
      unrecoverable: boolean;
      /** False for the runner's own faults: the task re-queues without counting a retry. */
      countsAsRetry: boolean;
      display: string;
      progress: ProgressIndicator[];
      /** The task ran past its execution timeout (reported as TIMED_OUT). */
      timedOut?: boolean;
      /** What the failed attempt left to read (a ScriptFailedError's exit code and tails). */
      output?: TaskOutput;
    };

type Phase = "queued" | "running" | "reported";

interface HeldLease {
  ref: { taskId: string; attempt: number; token: string };
  assign: Assign | undefined;
  phase: Phase;
  /** The result message while phase is "reported", re-sent after a reconnect until Acked. */
  result?: OutgoingMessage;
}

export interface RunnerStateOptions {
  /** Tasks the runner executes at once. */
  capacity: number;
  /** True when the runner registered a task class for this identifier. */
  canRun: (identifier: TaskIdentifierInit) => boolean;
}

export function leaseKey(ref: { taskId: string; attempt: number }): string {
  return `${ref.taskId}#${ref.attempt}`;
}

export class RunnerState {
  readonly capacity: number;
  readonly #canRun: (identifier: TaskIdentifierInit) => boolean;
  /** Insertion order is assignment order, so the local queue is FIFO. */
  readonly #leases = new Map<string, HeldLease>();
  /** Tasks whose code has not returned yet, including ones whose lease is gone. */
  readonly #executing = new Set<string>();
  /** Keys of the leases in phase "queued", oldest first. */
  readonly #queued = new Set<string>();
  #brokerCredit = 0;
  /**
   * Results that submitted subtasks, until their Ack: each keeps its slot, so the next claim comes
   * after the broker queued the subtasks (they are queued before the Ack) and takes them first
   * (depth first: the subtask band is read before root tasks of the same priority).
   */
  readonly #awaitingSubtasks = new Set<string>();
  #connected = false;
  #draining = false;
  /** The last registration change asked for, and the last the broker applied (Reregister revisions). */
  #requestedRevision = 0;
  #appliedRevision = 0;
  /** The revision the last Hello's identifiers were current at. */
  #helloRevision = 0;
  /** The identifiers of the last change asked for (what a late Reregister sends). */
  #latestIdentifiers: TaskIdentifierInit[] | undefined;

  constructor(options: RunnerStateOptions) {
    if (!Number.isInteger(options.capacity) || options.capacity < 1) throw new RangeError("capacity must be a whole number >= 1");
    this.capacity = options.capacity;
    this.#canRun = options.canRun;
  }

  get connected(): boolean {
    return this.#connected;
  }

  get draining(): boolean {
    return this.#draining;
  }

  /** The runner's estimate of the assignments the broker may still send. */
  get brokerCredit(): number {
    return this.#brokerCredit;
  }

  /** Leases held in any phase. */
  get heldCount(): number {
    return this.#leases.size;
  }

  get executingCount(): number {
    return this.#executing.size;
  }

  count(phase: Phase): number {
    let n = 0;
    for (const l of this.#leases.values()) if (l.phase === phase) n++;
    return n;
  }

  /** Leases the runner holds (queued, running or awaiting Ack): what Hello resumes. */
  resumeLeases(): Array<{ taskId: string; attempt: number; token: string }> {
    return [...this.#leases.values()].map((l) => ({ ...l.ref }));
  }

  /** Nothing held, nothing executing. */
  isIdle(): boolean {
    return this.#leases.size === 0 && this.#executing.size === 0;
  }

  /** No task is running under a lease (abandoned code may still be returning). */
  hasRunningTasks(): boolean {
    return this.#queued.size > 0 || this.count("running") > 0;
  }

  /** The result a held lease waits to have acknowledged, if any. */
  pendingResult(key: string): OutgoingMessage | undefined {
    const l = this.#leases.get(key);
    return l?.phase === "reported" ? l.result : undefined;
  }

  phaseOf(key: string): Phase | undefined {
    return this.#leases.get(key)?.phase;
  }

  /** The last registration change the broker applied (a Hello applies every change before it). */
  get appliedRevision(): number {
    return this.#appliedRevision;
  }

  /**
   * The runner serves `identifiers` from now on: Reregister goes out on the open stream (a closed
   * one's next Hello carries the new set). Returns the revision whose Reregistered confirms it.
   */
  reregister(identifiers: TaskIdentifierInit[]): { revision: number; effects: RunnerEffect[] } {
    const revision = ++this.#requestedRevision;
    this.#latestIdentifiers = identifiers;
    if (!this.#connected) return { revision, effects: [] };
    const message = create(ReregisterSchema, { identifiers, revision });
    return { revision, effects: [{ kind: "send", message: { case: "reregister", value: message } }] };
  }

  /** A Hello naming the identifiers as they are now is going out on a new stream. */
  onHelloSent(): void {
    this.#helloRevision = this.#requestedRevision;
  }

  /** The broker applied the Reregister of `revision` (and every one before it on this stream). */
  onReregistered(revision: number): RunnerEffect[] {
    this.#appliedRevision = Math.max(this.#appliedRevision, revision);
    return [];
  }

  /** The stream is open and the broker answered Hello. */
  onWelcome(welcome: Pick<Welcome, "resumed">): RunnerEffect[] {
    const effects: RunnerEffect[] = [];
    this.#connected = true;
    // Hello named the identifiers as they were when it was sent: the changes asked for until then
    // are in effect; one asked for while it was on its way goes out now.
    this.#appliedRevision = Math.max(this.#appliedRevision, this.#helloRevision);
    if (this.#requestedRevision > this.#helloRevision && this.#latestIdentifiers !== undefined) {
      const message = create(ReregisterSchema, { identifiers: this.#latestIdentifiers, revision: this.#requestedRevision });
      effects.push({ kind: "send", message: { case: "reregister", value: message } });
    }
    const resumed = new Set(welcome.resumed.map((l) => leaseKey(l)));
    for (const [key, lease] of [...this.#leases]) {
      if (resumed.has(key)) continue;
      // Expired, or already made durable by the old session: either way it is not ours now.
      this.#leases.delete(key);
      this.#awaitingSubtasks.delete(key);
      if (lease.phase === "running") effects.push({ kind: "abort", key, reason: "lease lost" });
    }
    for (const lease of this.#leases.values()) {
      if (lease.phase === "reported" && lease.result) effects.push({ kind: "send", message: lease.result });
    }
    this.#brokerCredit = Math.max(0, this.capacity - resumed.size);
    if (this.#draining) effects.push({ kind: "send", message: { case: "draining", value: create(DrainingSchema) } });
    this.#pump(effects);
    this.#topUp(effects);
    return effects;
  }

  /** The stream ended or failed. Leases stay held for the next Hello to resume. */
  onDisconnected(): void {
    this.#connected = false;
    this.#brokerCredit = 0;
  }

  onAssign(assign: Assign): RunnerEffect[] {
    this.#brokerCredit = Math.max(0, this.#brokerCredit - 1);
    const lease = assign.lease;
    if (!lease) return this.#topUp([]);
    const key = leaseKey(lease);
    if (this.#leases.has(key)) return []; // a duplicate delivery
    const ref = { taskId: lease.taskId, attempt: lease.attempt, token: lease.token };
    const identifier = assign.task?.identifier;
    if (!identifier || !this.#canRun(identifier)) {
      const name = identifier ? `${identifier.name}@${identifier.version}` : "(none)";
      return this.#topUp(this.#report(key, { ref, assign, phase: "reported" }, runnerFault(`this runner has no task registered for ${name}`)));
    }
    if (this.#draining) {
      return this.#report(key, { ref, assign, phase: "reported" }, runnerFault("the runner is shutting down"));
    }
    this.#leases.set(key, { ref, assign, phase: "queued" });
    this.#queued.add(key);
    return this.#topUp(this.#pump([]));
  }

  /** The task's code returned (or threw). */
  onTaskFinished(key: string, outcome: TaskOutcome): RunnerEffect[] {
    this.#executing.delete(key);
    const lease = this.#leases.get(key);
    let effects: RunnerEffect[] = [];
    // A lease that is gone or already reported (lost, abandoned at shutdown) takes no result.
    if (lease && lease.phase === "running") {
      if (outcome.kind === "completed" && outcome.subtasks.length > 0) this.#awaitingSubtasks.add(key);
      effects = this.#report(key, lease, outcome);
    }
    return this.#topUp(this.#pump(effects));
  }

  /** The broker made the result durable (or rejected it as stale): forget the lease. */
  onAck(ref: { taskId: string; attempt: number }): RunnerEffect[] {
    const key = leaseKey(ref);
    const lease = this.#leases.get(key);
    if (lease?.phase === "reported") this.#leases.delete(key);
    // The slot a result with subtasks kept is free again.
    if (this.#awaitingSubtasks.delete(key)) return this.#topUp([]);
    return [];
  }

  /** The job was canceled or the lease lost: stop the task. */
  onCancel(ref: { taskId: string; attempt: number }, reason: string): RunnerEffect[] {
    const key = leaseKey(ref);
    const lease = this.#leases.get(key);
    if (!lease) return [];
    if (lease.phase === "running") return [{ kind: "abort", key, reason: reason || "canceled" }];
    if (lease.phase === "queued") {
      return this.#topUp(this.#report(key, lease, runnerFault(`canceled before it started: ${reason || "canceled"}`)));
    }
    return [];
  }

  /**
   * A running task's progress so far, for the broker (live progress): sent only while its lease is
   * running on a connected stream; a task that reported or lost its lease sends nothing.
   */
  progressUpdate(key: string, update: { progress: ProgressIndicator[]; display: string }): RunnerEffect[] {
    const lease = this.#leases.get(key);
    if (!lease || lease.phase !== "running" || !this.#connected) return [];
    return [
      {
        kind: "send",
        message: { case: "progress", value: create(TaskProgressSchema, { lease: create(LeaseRefSchema, lease.ref), progress: update.progress, display: update.display }) },
      },
    ];
  }

  /** Stop taking work: tell the broker, hand back what has not started. */
  startDrain(): RunnerEffect[] {
    if (this.#draining) return [];
    this.#draining = true;
    const effects: RunnerEffect[] = [];
    if (this.#connected) effects.push({ kind: "send", message: { case: "draining", value: create(DrainingSchema) } });
    for (const [key, lease] of [...this.#leases]) {
      if (lease.phase === "queued") effects.push(...this.#report(key, lease, runnerFault("the runner shut down before the task started")));
    }
    return effects;
  }

  /** The drain grace period is over: abort what still runs and report it as the runner's fault. */
  onGraceExpired(): RunnerEffect[] {
    const effects: RunnerEffect[] = [];
    for (const [key, lease] of [...this.#leases]) {
      if (lease.phase !== "running") continue;
      effects.push({ kind: "abort", key, reason: "runner shutdown" });
      effects.push(...this.#report(key, lease, runnerFault("the runner shut down before the task finished")));
    }
    return effects;
  }

  /** Reports the lease's outcome; returns the effects (a new array callers may add to). */
  #report(key: string, lease: HeldLease, outcome: TaskOutcome): RunnerEffect[] {
    const message = toMessage(lease.ref, outcome);
    lease.phase = "reported";
    lease.result = message;
    this.#leases.set(key, lease);
    this.#queued.delete(key);
    return this.#connected ? [{ kind: "send", message }] : [];
  }

  /** Starts queued tasks while there are free slots; adds the effects to `effects` and returns it. */
  #pump(effects: RunnerEffect[]): RunnerEffect[] {
    if (this.#draining) return effects;
    for (const key of this.#queued) {
      if (this.#executing.size >= this.capacity) break;
      const lease = this.#leases.get(key)!;
      this.#queued.delete(key);
      lease.phase = "running";
      this.#executing.add(key);
      effects.push({ kind: "execute", key, assign: lease.assign! });
    }
    return effects;
  }

  /** Grants the broker credit for every slot not covered by a task, a result awaiting its subtasks' queueing, or outstanding credit. */
  #topUp(effects: RunnerEffect[]): RunnerEffect[] {
    if (!this.#connected || this.#draining) return effects;
    const n = this.capacity - this.#executing.size - this.#queued.size - this.#awaitingSubtasks.size - this.#brokerCredit;
    if (n <= 0) return effects;
    this.#brokerCredit += n;
    effects.push({ kind: "send", message: { case: "credit", value: create(CreditSchema, { n }) } });
    return effects;
  }
}

function runnerFault(error: string): TaskOutcome {
  return { kind: "failed", error, unrecoverable: false, countsAsRetry: false, display: "", progress: [] };
}

function toMessage(ref: HeldLease["ref"], outcome: TaskOutcome): OutgoingMessage {
  const lease = create(LeaseRefSchema, ref);
  if (outcome.kind === "completed") {
    return {
      case: "completed",
      value: create(CompletedSchema, {
        lease,
        display: outcome.display,
        subtasks: outcome.subtasks,
        progress: outcome.progress,
        output: outcome.output,
      }),
    };
  }
  return {
    case: "failed",
    value: create(FailedSchema, {
      lease,
      error: outcome.error,
      countsAsRetry: outcome.countsAsRetry,
      unrecoverable: outcome.unrecoverable,
      display: outcome.display,
      progress: outcome.progress,
      kind: outcome.timedOut ? TaskErrorKind.TIMED_OUT : TaskErrorKind.UNSPECIFIED,
      output: outcome.output,
    }),
  };
}
