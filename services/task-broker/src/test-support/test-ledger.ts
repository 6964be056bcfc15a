// An in-test TaskLedgerService that fences results by attempt the way job-service does: a result
// for an attempt that is not the task's current one, or for a task no longer running, is STALE.
// Expired leases and retryable failures schedule the next attempt, which comes back as `ready`.
import { create } from "@bufbuild/protobuf";
import {
  ReportResultsResponseSchema,
  ResultOutcomeSchema,
  ResultStatus,
  TaskEnvelopeSchema,
  TaskResultSchema,
  type DispatchAck,
  type ReportResultsRequest,
  type ReportResultsResponse,
  type TaskEnvelope,
  type TaskResult,
} from "@corral/proto";
import type { Ledger } from "../result-batcher.js";

type TaskState = "queued" | "running" | "computed" | "failed" | "canceled";

interface LedgerTask {
  envelope: TaskEnvelope;
  state: TaskState;
  retries: number;
}

export interface TaskInit {
  taskId: string;
  clusterId: string;
  name: string;
  version: string;
  jobId?: string;
  teamId?: string;
  attempt?: number;
  maxRetries?: number;
}

export interface TestLedger extends Ledger {
  /** Registers a task (attempt 1 unless given) and returns the envelope to enqueue. */
  add(init: TaskInit): TaskEnvelope;
  task(taskId: string): LedgerTask | undefined;
  cancelJob(jobId: string): void;
  /** Every result applied or rejected, in arrival order. */
  readonly results: Array<{ result: TaskResult; status: ResultStatus }>;
  readonly acks: DispatchAck[];
  readonly calls: number;
  /** The next `n` calls fail with a network error. */
  failNext(n: number): void;
  /** Resolves when `predicate` holds after some call. */
  until(predicate: () => boolean, timeoutMs?: number): Promise<void>;
}

export function createTestLedger(): TestLedger {
  const tasks = new Map<string, LedgerTask>();
  const canceledJobs = new Set<string>();
  const results: TestLedger["results"] = [];
  const acks: DispatchAck[] = [];
  const waiters = new Set<() => void>();
  let calls = 0;
  let failures = 0;

  const notify = () => {
    for (const w of [...waiters]) w();
  };

  function nextAttempt(t: LedgerTask, ready: TaskEnvelope[]) {
    t.envelope = create(TaskEnvelopeSchema, { ...t.envelope, attempt: t.envelope.attempt + 1 });
    t.state = "queued";
    ready.push(t.envelope);
  }

  function apply(r: TaskResult, ready: TaskEnvelope[]): { status: ResultStatus; canceled: boolean } {
    const t = tasks.get(r.taskId);
    if (!t) return { status: ResultStatus.NOT_FOUND, canceled: false };
    const canceled = canceledJobs.has(t.envelope.jobId);
    if (r.attempt !== t.envelope.attempt) return { status: ResultStatus.STALE, canceled };
    switch (r.outcome.case) {
      case "started":
        if (t.state !== "queued" && t.state !== "running") return { status: ResultStatus.STALE, canceled };
        t.state = canceled ? "canceled" : "running";
        return { status: ResultStatus.APPLIED, canceled };
      case "completed":
        if (t.state !== "running") return { status: ResultStatus.STALE, canceled };
        t.state = "computed";
        return { status: ResultStatus.APPLIED, canceled };
      case "failed":
        if (t.state !== "running") return { status: ResultStatus.STALE, canceled };
        if (r.outcome.value.countsAsRetry && t.retries < t.envelope.maxRetries && !canceled) {
          t.retries++;
          nextAttempt(t, ready);
        } else if (!r.outcome.value.countsAsRetry && !canceled) nextAttempt(t, ready);
        else t.state = "failed";
        return { status: ResultStatus.APPLIED, canceled };
      case "expired":
        if (t.state !== "running" && t.state !== "queued") return { status: ResultStatus.STALE, canceled };
        if (canceled) t.state = "canceled";
        else nextAttempt(t, ready);
        return { status: ResultStatus.APPLIED, canceled };
      default:
        return { status: ResultStatus.INVALID, canceled };
    }
  }

  return {
    add(init) {
      const { name, version, ...rest } = init;
      const envelope = create(TaskEnvelopeSchema, {
        jobId: rest.jobId ?? "job-1",
        teamId: rest.teamId ?? "team-1",
        attempt: rest.attempt ?? 1,
        maxRetries: rest.maxRetries ?? 0,
        taskId: rest.taskId,
        clusterId: rest.clusterId,
        identifier: { name, version },
      });
      tasks.set(envelope.taskId, { envelope, state: "queued", retries: 0 });
      return envelope;
    },
    task: (id) => tasks.get(id),
    cancelJob(jobId) {
      canceledJobs.add(jobId);
    },
    results,
    acks,
    get calls() {
      return calls;
    },
    failNext(n) {
      failures = n;
    },
    async reportResults(request: ReportResultsRequest): Promise<ReportResultsResponse> {
      calls++;
      if (failures > 0) {
        failures--;
        notify();
        throw Object.assign(new Error("connect ECONNREFUSED (test)"), { code: "ECONNREFUSED" });
      }
      acks.push(...request.dispatched);
      const ready: TaskEnvelope[] = [];
      const outcomes = request.results.map((r) => {
        // A start folded into its end applies (and is recorded) as if it came on its own.
        const end = r.outcome.case === "completed" || r.outcome.case === "failed" ? r.outcome.value : undefined;
        if (end?.started && tasks.get(r.taskId)?.state === "queued" && tasks.get(r.taskId)?.envelope.attempt === r.attempt) {
          const start = create(TaskResultSchema, { taskId: r.taskId, attempt: r.attempt, outcome: { case: "started", value: end.started } });
          results.push({ result: start, status: apply(start, ready).status });
        }
        const { status, canceled } = apply(r, ready);
        results.push({ result: r, status });
        return create(ResultOutcomeSchema, { taskId: r.taskId, attempt: r.attempt, status, canceled });
      });
      notify();
      return create(ReportResultsResponseSchema, { outcomes, ready });
    },
    until(predicate, timeoutMs = 15_000) {
      if (predicate()) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error("ledger condition not met in time"));
        }, timeoutMs);
        const check = () => {
          if (!predicate()) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        waiters.add(check);
      });
    },
  };
}
