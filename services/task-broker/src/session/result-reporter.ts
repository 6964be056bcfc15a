// Result reporting: a runner's Completed/Failed, a lease's start and a lease's expiry go to
// job-service through the result batcher; a durable result releases its lease in Redis
// (lease-releases.ts: one pipeline per event-loop turn) and is answered with an Ack. Each session's
// results still on their way (pending-results.ts) decide when an ended input stream may close;
// what is sent and answered is decided by result-rules.ts.
import { create } from "@bufbuild/protobuf";
import { timestampFromMs, timestampNow } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { LeaseRefSchema, TaskResultSchema, type LeaseRef } from "@corral/proto";
import { toConnectError } from "@corral/server-kit";
import type { Logger } from "pino";
import { ProtocolViolationError } from "../errors.js";
import type { BrokerMetrics } from "../metrics.js";
import { attemptMember } from "../redis/keys.js";
import type { ExpiredLease, LeaseStore } from "../redis/lease-store.js";
import type { ResultBatcher } from "../result-batcher.js";
import type { RunnerSession } from "../runner-session.js";
import type { Decision } from "./session-protocol.js";
import type { HeldLease, LeaseHoldings } from "./lease-holdings.js";
import { createLeaseReleases, type LeaseReleases } from "./lease-releases.js";
import { PendingResults } from "./pending-results.js";
import { ackOf, cancelAfterStart, resultOf, unheldRejection, type ReportDecision } from "./result-rules.js";

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

export function createResultReporter(deps: ResultReporterDeps): ResultReporter {
  const { batcher, logger } = deps;
  const pending = new PendingResults();
  const releases = createLeaseReleases(deps.leases);
  return {
    report(session, decision) {
      // Counted from the start, so a stream whose input ends now still gets this answer.
      pending.begin(session);
      reportHeld(deps, releases, session, decision)
        .catch((err: unknown) => {
          // Redis did not answer while checking the lease: the runner reconnects and reports again.
          logger.warn({ err, session: session.id }, "result could not be checked; ending the stream");
          session.fail(Code.Unavailable, "the broker cannot reach its store; reconnect and report again", toConnectError(err));
        })
        .finally(() => pending.settled(session));
    },

    started(session, taskId, attempt, startMs) {
      const clusterId = session.cluster.id;
      const start = create(TaskResultSchema, {
        taskId,
        attempt,
        outcome: { case: "started", value: { runnerId: session.runnerId, startTime: startMs ? timestampFromMs(startMs) : timestampNow() } },
      });
      batcher.submit(start, clusterId).then(
        (outcome) => {
          const why = cancelAfterStart(outcome);
          const owner = why === undefined ? undefined : deps.holdings.ownerOf(clusterId, attemptMember(taskId, attempt));
          if (owner && !owner.held.reporting) cancelLease(owner.session, owner.held, why!);
        },
        (err: unknown) => logger.warn({ err, task: taskId }, "started result not reported"),
      );
    },

    expired(expired) {
      for (const l of expired) reportExpiry(deps, l);
    },

    whenIdle(session, fn) {
      pending.whenIdle(session, fn);
    },
  };
}

/** The session no longer holds the lease (presence shows the change). */
function release(deps: ResultReporterDeps, session: RunnerSession, member: string): void {
  deps.holdings.release(session, member);
  deps.onReleased(session);
}

/** A runner's result for a lease it holds: made durable, its lease released, then acknowledged. */
async function reportHeld(deps: ResultReporterDeps, releases: LeaseReleases, session: RunnerSession, decision: ReportDecision): Promise<void> {
  const { holdings, logger } = deps;
  const ref = decision.lease!;
  const member = attemptMember(ref.taskId, ref.attempt);
  const held = session.leases.get(member);
  // A late result for a lease this stream lost (expired, resumed elsewhere, already done).
  if (!held || held.token !== ref.token) return answerUnheld(deps, session, ref);
  // A repeated result while the first is on its way: one Ack answers both.
  if (!holdings.beginReport(session, member)) return;
  try {
    const outcome = await deps.batcher.submit(resultOf(decision), session.cluster.id);
    try {
      await releases.complete({ clusterId: session.cluster.id, taskId: held.taskId, attempt: held.attempt, token: held.token });
    } catch (err) {
      // The result is durable; the lease record will expire and its expiry be rejected as stale.
      logger.warn({ err, task: held.taskId }, "could not release a completed lease");
    }
    release(deps, session, member);
    session.send({ case: "ack", value: { lease: ref, ...ackOf(outcome) } });
  } catch (err) {
    // Not durable (the broker is closing): no Ack, the runner reports again after reconnecting.
    holdings.abortReport(session, member);
    logger.warn({ err, task: held.taskId }, "result not reported");
  }
}

/** A result for a lease this stream does not hold: rejected when it once held it, else a violation. */
async function answerUnheld(deps: ResultReporterDeps, session: RunnerSession, ref: LeaseRef): Promise<void> {
  const record = ref.token ? await deps.leases.attempt(session.cluster.id, ref.taskId, ref.attempt) : undefined;
  const reason = unheldRejection(record, ref.token);
  if (reason !== undefined) return session.send({ case: "ack", value: { lease: ref, accepted: false, reason } });
  endForViolation(session, deps.logger, Code.FailedPrecondition, `no lease for task ${ref.taskId} attempt ${ref.attempt}`);
}

/** The reaper expired a lease: its local holder is told, and job-service hears the expiry. */
function reportExpiry(deps: ResultReporterDeps, l: ExpiredLease): void {
  deps.metrics.leasesExpired.inc();
  const member = attemptMember(l.taskId, l.attempt);
  const owner = deps.holdings.ownerOf(l.clusterId, member);
  if (owner && !owner.held.reporting) {
    cancelLease(owner.session, owner.held, l.timedOut ? "execution timeout" : "lease expired");
    release(deps, owner.session, member);
  }
  deps.batcher
    .submit(create(TaskResultSchema, { taskId: l.taskId, attempt: l.attempt, outcome: { case: "expired", value: { timedOut: l.timedOut } } }), l.clusterId)
    .then(() => deps.leases.expiryReported([l]))
    .catch((err: unknown) => deps.logger.warn({ err, task: l.taskId }, "lease expiry not reported; another pass retries"));
}
