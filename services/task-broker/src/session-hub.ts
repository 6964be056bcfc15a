// The broker's runner side: opens sessions from Hello, applies what runners send (credit,
// heartbeats, results, draining), grants leases the dispatcher claimed, and routes cancellations
// and expiries to whichever local session holds a lease.
import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { durationFromMs, timestampFromMs, timestampNow } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import {
  AssignSchema,
  LeaseRefSchema,
  LeaseSchema,
  ResultStatus,
  TaskResultSchema,
  type Hello,
  type Lease,
  type LeaseRef,
  type ResultOutcome,
  type TaskResult,
  type WorkRequest,
} from "@corral/proto";
import { InvalidArgumentError, NotFoundError, requireClusterAllowed, ResourceExhaustedError, revokedKeyError, toConnectError } from "@corral/server-kit";
import type { Logger } from "pino";
import type { Dispatcher } from "./dispatcher.js";
import { BrokerDrainingError, ProtocolViolationError } from "./errors.js";
import type { BrokerMetrics } from "./metrics.js";
import type { PresencePublisher } from "./presence-publisher.js";
import { attemptMember } from "./redis/keys.js";
import type { ExpiredLease, LeaseKey, LeaseStore } from "./redis/lease-store.js";
import type { StreamEntry } from "./redis/queue-store.js";
import type { ResultBatcher } from "./result-batcher.js";
import { RunnerSession, type ClusterRef, type HeldLease } from "./runner-session.js";
import { readableQueues } from "./task-identifier.js";

/** Resolves cluster slugs of a team (empty slug: the team's default cluster). */
export interface ClusterResolver {
  resolve(teamId: string, slugs: readonly string[]): Promise<Map<string, ClusterRef>>;
}

export interface SessionHubOptions {
  brokerId: string;
  leaseDurationMs: number;
  heartbeatIntervalMs: number;
  clusters: ClusterResolver;
  leases: LeaseStore;
  batcher: ResultBatcher;
  presence: PresencePublisher;
  metrics: BrokerMetrics;
  logger: Logger;
  /** Most task versions one Hello may make readable (every minor up to the registered one counts). */
  maxQueuesPerSession: number;
  /**
   * Most open Work sessions of one team on this replica (default 1,000); counted per replica, as
   * sessions live in their replica's memory only.
   */
  maxSessionsPerTeam?: number;
}

export interface RevokeCommand {
  teamId: string;
  jobId: string;
  taskIds: string[];
  reason: string;
}

export interface SessionHub {
  /** Wired after construction (the dispatcher calls back into the hub). */
  attach(dispatcher: Dispatcher): void;
  /** `onlyClusterId`: the caller's key is runner-scoped to that cluster (PERMISSION_DENIED for any other). */
  open(teamId: string, hello: Hello, onlyClusterId?: string): Promise<RunnerSession>;
  /** Applies one runner message; violations end that session's stream. */
  handle(session: RunnerSession, request: WorkRequest): Promise<void>;
  /** The runner's input ended: finish pending results, then end the stream. */
  inputEnded(session: RunnerSession): void;
  /** The stream is gone (ended, canceled, or broker closing). Leases stay in Redis. */
  detach(session: RunnerSession): void;
  /** The session's API key was revoked: answer UNAUTHENTICATED and detach. */
  revoked(session: RunnerSession): void;
  onLeased(session: RunnerSession, entry: StreamEntry, token: string, expiryMs: number): void;
  onExpired(leases: ExpiredLease[]): void;
  /** Sends Cancel for matching local leases; returns how many. */
  revokeLocal(command: RevokeCommand): number;
  /** Stops taking sessions and sends Drain to every runner. */
  drain(reason: string): void;
  /** Resolves when no session is left, or at `deadline` (ms since the epoch). */
  empty(deadline: number): Promise<void>;
  readonly sessions: ReadonlyMap<string, RunnerSession>;
}

function leaseRef(taskId: string, attempt: number, token: string): LeaseRef {
  return create(LeaseRefSchema, { taskId, attempt, token });
}

export function createSessionHub(options: SessionHubOptions): SessionHub {
  const { leases, batcher, presence, metrics, logger } = options;
  const sessions = new Map<string, RunnerSession>();
  const maxSessionsPerTeam = options.maxSessionsPerTeam ?? 1_000;
  /** Open sessions per team, for the cap. */
  const perTeam = new Map<string, number>();
  const checkTeamCap = (teamId: string) => {
    if ((perTeam.get(teamId) ?? 0) >= maxSessionsPerTeam) {
      throw new ResourceExhaustedError(
        `the team already holds ${maxSessionsPerTeam} open Work sessions on this broker (CORRAL_MAX_SESSIONS_PER_TEAM)`,
      );
    }
  };
  /** `<cluster id>/<task id>:<attempt>` → the local session holding the lease. */
  const owners = new Map<string, RunnerSession>();
  let dispatcher: Dispatcher | undefined;
  let draining = false;
  const emptyWaiters = new Set<() => void>();

  const ownerKey = (clusterId: string, member: string) => `${clusterId}/${member}`;

  function release(session: RunnerSession, member: string): void {
    session.leases.delete(member);
    const key = ownerKey(session.cluster.id, member);
    if (owners.get(key) === session) owners.delete(key);
    presence.updated(session);
  }

  function violation(session: RunnerSession, code: Code, message: string): void {
    const err = new ProtocolViolationError(code, message);
    logger.info({ session: session.id, runner: session.runnerId, code, message }, "protocol violation");
    session.fail(code, message, err);
  }

  function cancel(session: RunnerSession, held: HeldLease, reason: string): void {
    session.send({ case: "cancel", value: { lease: leaseRef(held.taskId, held.attempt, held.token), reason } });
  }

  function afterStarted(clusterId: string, member: string, outcome: ResultOutcome): void {
    const stale = outcome.status === ResultStatus.STALE || outcome.status === ResultStatus.NOT_FOUND;
    if (!outcome.canceled && !stale) return;
    const session = owners.get(ownerKey(clusterId, member));
    const held = session?.leases.get(member);
    if (!session || !held || held.reporting) return;
    cancel(session, held, outcome.canceled ? "job canceled" : outcome.reason || "task is not running this attempt");
  }

  async function report(session: RunnerSession, ref: LeaseRef | undefined, result: TaskResult): Promise<void> {
    // Counted from the start, so a stream whose input ends now still gets this answer.
    session.pendingResults++;
    try {
      await reportHeld(session, ref, result);
    } catch (err) {
      // Redis did not answer while checking the lease: the runner reconnects and reports again.
      logger.warn({ err, session: session.id }, "result could not be checked; ending the stream");
      session.fail(Code.Unavailable, "the broker cannot reach its store; reconnect and report again", toConnectError(err));
    } finally {
      session.pendingResults--;
      if (session.pendingResults === 0) session.onIdle?.();
    }
  }

  async function reportHeld(session: RunnerSession, ref: LeaseRef | undefined, result: TaskResult): Promise<void> {
    if (!ref) return violation(session, Code.InvalidArgument, "a result needs its lease");
    const member = attemptMember(ref.taskId, ref.attempt);
    const held = session.leases.get(member);
    if (!held || held.token !== ref.token) {
      // A late result for a lease this stream lost (expired, resumed elsewhere, already done):
      // answer it as rejected. Anything else is a lease the runner never held.
      const record = ref.token ? await leases.attempt(session.cluster.id, ref.taskId, ref.attempt) : undefined;
      if (record && record.token === ref.token) {
        const reason = record.state === "leased" ? "lease held by another session" : `lease ${record.state}`;
        session.send({ case: "ack", value: { lease: ref, accepted: false, reason } });
        return;
      }
      return violation(session, Code.FailedPrecondition, `no lease for task ${ref.taskId} attempt ${ref.attempt}`);
    }
    if (held.reporting) return; // a repeated result while the first is on its way: one Ack answers both
    held.reporting = true;
    try {
      const outcome = await batcher.submit(result);
      try {
        await completeLease({ clusterId: session.cluster.id, taskId: held.taskId, attempt: held.attempt, token: held.token });
      } catch (err) {
        // The result is durable; the lease record will expire and its expiry be rejected as stale.
        logger.warn({ err, task: held.taskId }, "could not release a completed lease");
      }
      release(session, member);
      const accepted = outcome.status === ResultStatus.APPLIED;
      session.send({
        case: "ack",
        value: { lease: ref, accepted, reason: accepted ? "" : outcome.reason || ResultStatus[outcome.status] },
      });
    } catch (err) {
      // Not durable (the broker is closing): no Ack, the runner reports again after reconnecting.
      held.reporting = false;
      logger.warn({ err, task: held.taskId }, "result not reported");
    }
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

  async function heartbeat(session: RunnerSession): Promise<void> {
    const members = [...session.leases.keys()];
    if (members.length === 0) return;
    const expiryMs = Date.now() + options.leaseDurationMs;
    const lost = await leases.extend(session.cluster.id, session.id, members, expiryMs);
    const lostSet = new Set(lost);
    for (const m of members) {
      const held = session.leases.get(m);
      if (!held) continue;
      if (!lostSet.has(m)) {
        held.expireMs = expiryMs;
        continue;
      }
      if (held.reporting) continue;
      cancel(session, held, "lease lost");
      release(session, m);
    }
  }

  const hub: SessionHub = {
    sessions,
    attach(d) {
      dispatcher = d;
    },

    async open(teamId, hello, onlyClusterId) {
      if (draining) throw new BrokerDrainingError();
      checkTeamCap(teamId);
      // Until live registration (Reregister) is served, every runner names what it serves up front.
      if (hello.identifiers.length === 0) throw new InvalidArgumentError("hello.identifiers", "must name at least one task identifier");
      const queues = readableQueues(hello.identifiers, options.maxQueuesPerSession);
      const slug = hello.clusterSlug;
      const cluster = (await options.clusters.resolve(teamId, [slug])).get(slug);
      if (!cluster) throw new NotFoundError("cluster", slug || "(default)");
      requireClusterAllowed({ clusterId: onlyClusterId }, cluster.id);
      const session = new RunnerSession({
        id: randomUUID(),
        teamId,
        runnerId: hello.runnerId,
        cluster,
        identifiers: hello.identifiers,
        queues,
        slots: hello.slots,
        hardware: hello.hardware,
        labels: { ...hello.labels },
        sdkVersion: hello.sdkVersion,
        batches: hello.batches,
      });
      const expiryMs = Date.now() + options.leaseDurationMs;
      const resumed = await leases.resume(
        cluster.id,
        session.id,
        options.brokerId,
        hello.resumeLeases.map((l) => ({ member: attemptMember(l.taskId, l.attempt), token: l.token })),
        expiryMs,
      );
      const resumedLeases: Lease[] = [];
      for (const l of hello.resumeLeases) {
        const member = attemptMember(l.taskId, l.attempt);
        if (!resumed.has(member) || session.leases.has(member)) continue;
        session.leases.set(member, {
          taskId: l.taskId,
          attempt: l.attempt,
          token: l.token,
          jobId: resumed.get(member)!,
          expireMs: expiryMs,
          reporting: false,
        });
        const key = ownerKey(cluster.id, member);
        const previous = owners.get(key);
        if (previous && previous !== session) previous.leases.delete(member);
        owners.set(key, session);
        resumedLeases.push(
          create(LeaseSchema, { taskId: l.taskId, attempt: l.attempt, token: l.token, expireTime: timestampFromMs(expiryMs) }),
        );
      }
      // Resumed tasks occupy slots: the open credit is what is left.
      session.credit = Math.max(0, hello.slots - session.leases.size);
      if (draining) throw new BrokerDrainingError();
      // Checked again: other Hellos of the team may have been answered while this one waited.
      try {
        checkTeamCap(teamId);
      } catch (err) {
        // Resumed leases stay with their records in Redis; they expire or the runner resumes them elsewhere.
        for (const member of session.leases.keys()) {
          const key = ownerKey(cluster.id, member);
          if (owners.get(key) === session) owners.delete(key);
        }
        throw err;
      }
      sessions.set(session.id, session);
      perTeam.set(teamId, (perTeam.get(teamId) ?? 0) + 1);
      metrics.sessions.set(sessions.size);
      session.send({
        case: "welcome",
        value: {
          sessionId: session.id,
          leaseDuration: durationFromMs(options.leaseDurationMs),
          heartbeatInterval: durationFromMs(options.heartbeatIntervalMs),
          clusterId: cluster.id,
          clusterSlug: cluster.slug,
          resumed: resumedLeases,
          brokerId: options.brokerId,
          batches: true,
        },
      });
      dispatcher?.join(session);
      presence.connected(session);
      return session;
    },

    async handle(session, request) {
      if (session.state === "closed") return;
      const m = request.message;
      switch (m.case) {
        case "hello":
          return violation(session, Code.FailedPrecondition, "Hello was already sent on this stream");
        case "credit": {
          if (session.state !== "active") return;
          if (session.credit + m.value.n > session.maxCredit) {
            return violation(
              session,
              Code.ResourceExhausted,
              `open credit would exceed ${session.maxCredit} (twice the slots, at most 10000)`,
            );
          }
          session.credit += m.value.n;
          dispatcher?.wake(session);
          return;
        }
        case "heartbeat":
          try {
            await heartbeat(session);
          } catch (err) {
            // The next heartbeat tries again; a lease that expires meanwhile is cancelled then.
            logger.warn({ err, session: session.id }, "heartbeat could not extend leases");
          }
          return;
        case "completed": {
          const v = m.value;
          void report(
            session,
            v.lease,
            create(TaskResultSchema, {
              taskId: v.lease?.taskId ?? "",
              attempt: v.lease?.attempt ?? 0,
              outcome: {
                case: "completed",
                value: { display: v.display, subtasks: v.subtasks, progress: v.progress, stopTime: timestampNow() },
              },
            }),
          );
          return;
        }
        case "failed": {
          const v = m.value;
          void report(
            session,
            v.lease,
            create(TaskResultSchema, {
              taskId: v.lease?.taskId ?? "",
              attempt: v.lease?.attempt ?? 0,
              outcome: {
                case: "failed",
                value: {
                  error: v.error,
                  countsAsRetry: v.countsAsRetry,
                  progress: v.progress,
                  unrecoverable: v.unrecoverable,
                  display: v.display,
                  stopTime: timestampNow(),
                },
              },
            }),
          );
          return;
        }
        case "batch":
          for (const inner of m.value.messages) {
            const c = inner.message.case;
            if (c === "hello" || c === "batch") {
              return violation(session, Code.InvalidArgument, `a batch cannot hold ${c === "hello" ? "Hello" : "another batch"}`);
            }
            await hub.handle(session, inner);
            if ((session.state as string) === "closed") return;
          }
          return;
        case "draining":
          if (session.state === "active") {
            session.state = "draining";
            presence.draining(session);
          }
          return;
        default:
          return violation(session, Code.InvalidArgument, "empty message");
      }
    },

    inputEnded(session) {
      if (session.pendingResults === 0) session.outbox.end();
      else session.onIdle = () => session.outbox.end();
    },

    revoked(session) {
      if (session.state === "closed") return;
      logger.info({ session: session.id, runner: session.runnerId, team: session.teamId }, "API key revoked; ending the session");
      session.fail(Code.Unauthenticated, "the API key was revoked", revokedKeyError());
      hub.detach(session);
    },

    detach(session) {
      if (session.state === "closed") return;
      session.state = "closed";
      session.outbox.end();
      dispatcher?.leave(session);
      if (sessions.delete(session.id)) {
        const left = (perTeam.get(session.teamId) ?? 1) - 1;
        if (left > 0) perTeam.set(session.teamId, left);
        else perTeam.delete(session.teamId);
      }
      for (const member of session.leases.keys()) {
        const key = ownerKey(session.cluster.id, member);
        if (owners.get(key) === session) owners.delete(key);
      }
      metrics.sessions.set(sessions.size);
      presence.disconnected(session);
      if (sessions.size === 0) for (const w of [...emptyWaiters]) w();
    },

    onLeased(session, entry, token, expiryMs) {
      const member = attemptMember(entry.taskId, entry.attempt);
      if (session.state === "closed") {
        // The dispatcher gives back leases of sessions that closed during the claim; should one
        // still get here, nobody runs it: the lease expires and job-service schedules the next
        // attempt.
        logger.info({ task: entry.taskId, attempt: entry.attempt }, "lease granted to a session that just closed");
        return;
      }
      session.credit = Math.max(0, session.credit - 1);
      session.leases.set(member, {
        taskId: entry.taskId,
        attempt: entry.attempt,
        token,
        jobId: entry.jobId,
        expireMs: expiryMs,
        reporting: false,
      });
      owners.set(ownerKey(session.cluster.id, member), session);
      const assign = create(AssignSchema, {
        lease: { taskId: entry.taskId, attempt: entry.attempt, token, expireTime: timestampFromMs(expiryMs) },
      });
      // Assign.task goes out as the stored bytes, written like an unknown field (whose data is the
      // length-prefixed payload): the same bytes on the wire as setting `task`, without encoding
      // the envelope again.
      assign.$unknown = [
        { no: AssignSchema.field.task.number, wireType: WireType.LengthDelimited, data: new BinaryWriter().bytes(entry.bytes).finish() },
      ];
      session.send({ case: "assign", value: assign });
      metrics.assignments.inc();
      if (entry.enqueuedAtMs > 0) metrics.dispatchLatency.observe(Math.max(0, Date.now() - entry.enqueuedAtMs) / 1000);
      presence.updated(session);
      const clusterId = session.cluster.id;
      batcher
        .submit(
          create(TaskResultSchema, {
            taskId: entry.taskId,
            attempt: entry.attempt,
            outcome: { case: "started", value: { runnerId: session.runnerId, startTime: timestampNow() } },
          }),
        )
        .then(
          (outcome) => afterStarted(clusterId, member, outcome),
          (err: unknown) => logger.warn({ err, task: entry.taskId }, "started result not reported"),
        );
    },

    onExpired(expired) {
      for (const l of expired) {
        metrics.leasesExpired.inc();
        const member = attemptMember(l.taskId, l.attempt);
        const session = owners.get(ownerKey(l.clusterId, member));
        const held = session?.leases.get(member);
        if (session && held && !held.reporting) {
          cancel(session, held, "lease expired");
          release(session, member);
        }
        batcher
          .submit(create(TaskResultSchema, { taskId: l.taskId, attempt: l.attempt, outcome: { case: "expired", value: {} } }))
          .then(() => leases.expiryReported([l]))
          .catch((err: unknown) => logger.warn({ err, task: l.taskId }, "lease expiry not reported; another pass retries"));
      }
    },

    revokeLocal(command) {
      const only = command.taskIds.length > 0 ? new Set(command.taskIds) : undefined;
      let count = 0;
      for (const session of sessions.values()) {
        if (session.teamId !== command.teamId) continue;
        for (const held of session.leases.values()) {
          if (held.jobId !== command.jobId) continue;
          if (only && !only.has(held.taskId)) continue;
          cancel(session, held, command.reason || "job canceled");
          count++;
        }
      }
      return count;
    },

    empty(deadline) {
      if (sessions.size === 0) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          emptyWaiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, Math.max(0, deadline - Date.now()));
        emptyWaiters.add(done);
      });
    },

    drain(reason) {
      draining = true;
      for (const session of sessions.values()) {
        if (session.state === "active") session.state = "draining";
        session.send({ case: "drain", value: { reason } });
        presence.draining(session);
      }
    },
  };
  return hub;
}
