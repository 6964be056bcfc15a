// Result reporting: a runner's Completed/Failed, a lease's start and a lease's expiry go to
// job-service through the result batcher; a durable result releases its lease in Redis (one
// pipeline per event-loop turn) and is answered with an Ack. Owns each session's count of
// results still on their way, which decides when an ended input stream may close.
import { create } from "@bufbuild/protobuf";
import { timestampFromMs, timestampNow } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { LeaseRefSchema, ResultStatus, TaskResultSchema, type LeaseRef, type ResultOutcome, type TaskResult } from "@corral/proto";
import { toConnectError } from "@corral/server-kit";
import type { Logger } from "pino";
import { ProtocolViolationError } from "../errors.js";
import type { BrokerMetrics } from "../metrics.js";
import { attemptMember } from "../redis/keys.js";
import type { ExpiredLease, LeaseKey, LeaseStore } from "../redis/lease-store.js";
import type { ResultBatcher } from "../result-batcher.js";
import type { RunnerSession } from "../runner-session.js";
import type { Decision } from "./session-protocol.js";
import type { HeldLease, LeaseHoldings } from "./lease-holdings.js";

export interface ResultReporter {
  /** A runner's result (fire and forget: the answer is an Ack, or the stream's end). */
  report(session: RunnerSession, decision: Extract<Decision, { kind: "report" }>): void;
  /**
   * A lease went out: job-service hears the start (at `startMs` when given: a gated attempt's
   * lease time, the one its rate limit counted; else now); a canceled or stale attempt is cancelled.
   */
  started(session: RunnerSession, taskId: string, attempt: number, startMs?: number): void;
  /** The reaper expired these leases: cancel local holders and report the expiries. */
  expired(leases: readonly ExpiredLease[]): void;
  /** Calls `fn` once no result of `session` is on its way (at once when none is). */
  whenIdle(session: RunnerSession, fn: () => void): void;
}

export interface ResultReporterDeps {
  leases: LeaseStore;
  batcher: ResultBatcher;
  holdings: LeaseHoldings;
  metrics: BrokerMetrics;
  logger: Logger;
  /** The lease is gone from `session` (presence shows the busy slots). */
  onReleased(session: RunnerSession): void;
}

/** Sends Cancel for a held lease. */
export function cancelLease(session: RunnerSession, held: HeldLease, reason: string): void {
  const lease = create(LeaseRefSchema, { taskId: held.taskId, attempt: held.attempt, token: held.token });
  session.send({ case: "cancel", value: { lease, reason } });
}

/** Ends the session's stream with a WorkError (a broken protocol rule). */
export function endForViolation(session: RunnerSession, logger: Logger, code: Code, message: string): void {
  logger.info({ session: session.id, runner: session.runnerId, code, message }, "protocol violation");
  session.fail(code, message, new ProtocolViolationError(code, message));
}

function resultOf(decision: Extract<Decision, { kind: "report" }>): TaskResult {
  const m = decision.message;
  const v = m.value;
  const base = { taskId: v.lease?.taskId ?? "", attempt: v.lease?.attempt ?? 0 };
  if (m.case === "completed") {
    const c = m.value;
    return create(TaskResultSchema, {
      ...base,
      outcome: {
        case: "completed",
        value: { display: c.display, subtasks: c.subtasks, progress: c.progress, stopTime: timestampNow(), output: c.output },
      },
    });
  }
  const f = m.value;
  return create(TaskResultSchema, {
    ...base,
    outcome: {
      case: "failed",
      value: {
        error: f.error,
        countsAsRetry: f.countsAsRetry,
        progress: f.progress,
        unrecoverable: f.unrecoverable,
        display: f.display,
        kind: f.kind,
        stopTime: timestampNow(),
      },
    },
  });
}

export function createResultReporter(deps: ResultReporterDeps): ResultReporter {
  const { leases, batcher, holdings, logger } = deps;
  /** Results of each session not yet answered, and who waits for none to be left. */
  const pending = new Map<RunnerSession, number>();
  const idleWaiters = new Map<RunnerSession, () => void>();

  function settled(session: RunnerSession): void {
    const left = (pending.get(session) ?? 1) - 1;
    if (left > 0) return void pending.set(session, left);
    pending.delete(session);
    const waiter = idleWaiters.get(session);
    idleWaiters.delete(session);
    waiter?.();
  }

  /** Releases of the results that became durable in one turn of the event loop: one pipeline. */
  let releasing: { keys: LeaseKey[]; done: Promise<boolean[]> } | undefined;
  function completeLease(key: LeaseKey): Promise<boolean> {
    if (!releasing) {
      const batch: { keys: LeaseKey[]; done: Promise<boolean[]> } = { keys: [], done: Promise.resolve([]) };
      batch.done = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
        releasing = undefined;
        return leases.complete(batch.keys);
      });
      releasing = batch;
    }
    const index = releasing.keys.push(key) - 1;
    return releasing.done.then((released) => released[index] ?? false);
  }

  function release(session: RunnerSession, member: string): void {
    holdings.release(session, member);
    deps.onReleased(session);
  }

  /** A result for a lease this stream does not hold: rejected when it once held it, else a violation. */
  async function answerUnheld(session: RunnerSession, ref: LeaseRef): Promise<void> {
    const record = ref.token ? await leases.attempt(session.cluster.id, ref.taskId, ref.attempt) : undefined;
    if (record && record.token === ref.token) {
      const reason = record.state === "leased" ? "lease held by another session" : `lease ${record.state}`;
      session.send({ case: "ack", value: { lease: ref, accepted: false, reason } });
      return;
    }
    endForViolation(session, logger, Code.FailedPrecondition, `no lease for task ${ref.taskId} attempt ${ref.attempt}`);
  }

  async function reportHeld(session: RunnerSession, decision: Extract<Decision, { kind: "report" }>): Promise<void> {
    const ref = decision.lease!;
    const member = attemptMember(ref.taskId, ref.attempt);
    const held = session.leases.get(member);
    // A late result for a lease this stream lost (expired, resumed elsewhere, already done).
    if (!held || held.token !== ref.token) return answerUnheld(session, ref);
    // A repeated result while the first is on its way: one Ack answers both.
    if (!holdings.beginReport(session, member)) return;
    try {
      const outcome = await batcher.submit(resultOf(decision), session.cluster.id);
      try {
        await completeLease({ clusterId: session.cluster.id, taskId: held.taskId, attempt: held.attempt, token: held.token });
      } catch (err) {
        // The result is durable; the lease record will expire and its expiry be rejected as stale.
        logger.warn({ err, task: held.taskId }, "could not release a completed lease");
      }
      release(session, member);
      const accepted = outcome.status === ResultStatus.APPLIED;
      session.send({ case: "ack", value: { lease: ref, accepted, reason: accepted ? "" : outcome.reason || ResultStatus[outcome.status] } });
    } catch (err) {
      // Not durable (the broker is closing): no Ack, the runner reports again after reconnecting.
      holdings.abortReport(session, member);
      logger.warn({ err, task: held.taskId }, "result not reported");
    }
  }

  function afterStarted(clusterId: string, member: string, outcome: ResultOutcome): void {
    const stale = outcome.status === ResultStatus.STALE || outcome.status === ResultStatus.NOT_FOUND;
    if (!outcome.canceled && !stale) return;
    const owner = holdings.ownerOf(clusterId, member);
    if (!owner || owner.held.reporting) return;
    cancelLease(owner.session, owner.held, outcome.canceled ? "job canceled" : outcome.reason || "task is not running this attempt");
  }

  return {
    report(session, decision) {
      // Counted from the start, so a stream whose input ends now still gets this answer.
      pending.set(session, (pending.get(session) ?? 0) + 1);
      reportHeld(session, decision)
        .catch((err: unknown) => {
          // Redis did not answer while checking the lease: the runner reconnects and reports again.
          logger.warn({ err, session: session.id }, "result could not be checked; ending the stream");
          session.fail(Code.Unavailable, "the broker cannot reach its store; reconnect and report again", toConnectError(err));
        })
        .finally(() => settled(session));
    },

    started(session, taskId, attempt, startMs) {
      const clusterId = session.cluster.id;
      batcher
        .submit(
          create(TaskResultSchema, {
            taskId,
            attempt,
            outcome: { case: "started", value: { runnerId: session.runnerId, startTime: startMs ? timestampFromMs(startMs) : timestampNow() } },
          }),
          clusterId,
        )
        .then(
          (outcome) => afterStarted(clusterId, attemptMember(taskId, attempt), outcome),
          (err: unknown) => logger.warn({ err, task: taskId }, "started result not reported"),
        );
    },

    expired(expired) {
      for (const l of expired) {
        deps.metrics.leasesExpired.inc();
        const member = attemptMember(l.taskId, l.attempt);
        const owner = holdings.ownerOf(l.clusterId, member);
        if (owner && !owner.held.reporting) {
          cancelLease(owner.session, owner.held, l.timedOut ? "execution timeout" : "lease expired");
          release(owner.session, member);
        }
        batcher
          .submit(create(TaskResultSchema, { taskId: l.taskId, attempt: l.attempt, outcome: { case: "expired", value: { timedOut: l.timedOut } } }), l.clusterId)
          .then(() => leases.expiryReported([l]))
          .catch((err: unknown) => logger.warn({ err, task: l.taskId }, "lease expiry not reported; another pass retries"));
      }
    },

    whenIdle(session, fn) {
      if ((pending.get(session) ?? 0) === 0) fn();
      else idleWaiters.set(session, fn);
    },
  };
}
