// The broker's runner side: opens sessions from Hello, applies what runners send (each message
// judged by the session protocol, the decision carried out here), and ends sessions. Leases are
// held through LeaseHoldings, credit through each session's CreditAccount, results through the
// ResultReporter; the dispatcher is told which sessions read which queues.
import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { LeaseSchema, type Hello, type Lease, type WorkRequest } from "@corral/proto";
import { NotFoundError, requireClusterAllowed, ResourceExhaustedError, revokedKeyError } from "@corral/server-kit";
import type { Logger } from "pino";
import { BrokerDrainingError } from "./errors.js";
import type { BrokerMetrics } from "./metrics.js";
import type { PresencePublisher } from "./presence-publisher.js";
import { attemptMember } from "./redis/keys.js";
import type { LeaseStore } from "./redis/lease-store.js";
import { RunnerSession, type ClusterRef } from "./runner-session.js";
import type { LeaseHoldings } from "./session/lease-holdings.js";
import type { ProgressForwarder } from "./session/progress-forwarder.js";
import { cancelLease, endForViolation, type ResultReporter } from "./session/result-reporter.js";
import { decide, decideInBatch, helloQueues, type Decision, type ProtocolLimits } from "./session/session-protocol.js";

/** Resolves cluster slugs of a team (empty slug: the team's default cluster). */
export interface ClusterResolver {
  resolve(teamId: string, slugs: readonly string[]): Promise<Map<string, ClusterRef>>;
}

/** What the hub tells the dispatcher: which sessions read which queues, and when credit opens. */
export interface SessionDispatch {
  join(session: RunnerSession): void;
  leave(session: RunnerSession): void;
  /** The session's credit grew: its group may read again. */
  wake(session: RunnerSession): void;
  /** The session's queues changed (Reregister): it moves to the group of its new queues. */
  move(session: RunnerSession): void;
}

export interface RevokeCommand {
  teamId: string;
  jobId: string;
  taskIds: string[];
  reason: string;
}

export interface SessionHub {
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
  /** Sends Cancel for matching local leases; returns how many. */
  revokeLocal(command: RevokeCommand): number;
  /** Stops taking sessions and sends Drain to every runner. */
  drain(reason: string): void;
  /** Resolves when no session is left, or at `deadline` (ms since the epoch). */
  empty(deadline: number): Promise<void>;
  readonly sessions: ReadonlyMap<string, RunnerSession>;
}

export interface SessionHubOptions extends ProtocolLimits {
  brokerId: string;
  leaseDurationMs: number;
  heartbeatIntervalMs: number;
  clusters: ClusterResolver;
  leases: LeaseStore;
  holdings: LeaseHoldings;
  reporter: ResultReporter;
  /** Where live progress of running tasks goes (to job-service, batched). */
  progress: ProgressForwarder;
  dispatch: SessionDispatch;
  presence: PresencePublisher;
  metrics: BrokerMetrics;
  logger: Logger;
  /**
   * Most open Work sessions of one team on this replica (default 1,000); counted per replica, as
   * sessions live in their replica's memory only.
   */
  maxSessionsPerTeam?: number;
}

/** Open sessions per team, for the per-team cap. */
function createTeamCounts(max: number) {
  const perTeam = new Map<string, number>();
  return {
    check(teamId: string) {
      if ((perTeam.get(teamId) ?? 0) >= max) {
        throw new ResourceExhaustedError(
          `the team already holds ${max} open Work sessions on this broker (CORRAL_MAX_SESSIONS_PER_TEAM)`,
        );
      }
    },
    add(teamId: string) {
      perTeam.set(teamId, (perTeam.get(teamId) ?? 0) + 1);
    },
    remove(teamId: string) {
      const left = (perTeam.get(teamId) ?? 1) - 1;
      if (left > 0) perTeam.set(teamId, left);
      else perTeam.delete(teamId);
    },
  };
}

export function createSessionHub(options: SessionHubOptions): SessionHub {
  const { leases, holdings, reporter, dispatch, presence, metrics, logger } = options;
  const sessions = new Map<string, RunnerSession>();
  const teams = createTeamCounts(options.maxSessionsPerTeam ?? 1_000);
  let draining = false;
  const emptyWaiters = new Set<() => void>();

  /** Re-binds the leases Hello names that are still valid; answers them for Welcome. */
  async function resume(session: RunnerSession, hello: Hello): Promise<Lease[]> {
    const expiryMs = Date.now() + options.leaseDurationMs;
    const wanted = hello.resumeLeases.map((l) => ({ member: attemptMember(l.taskId, l.attempt), token: l.token }));
    const resumed = await leases.resume(session.cluster.id, session.id, options.brokerId, wanted, expiryMs);
    const out: Lease[] = [];
    for (const l of hello.resumeLeases) {
      const member = attemptMember(l.taskId, l.attempt);
      if (!resumed.has(member) || session.leases.has(member)) continue;
      holdings.hold(session, member, { taskId: l.taskId, attempt: l.attempt, token: l.token, jobId: resumed.get(member)!, expireMs: expiryMs });
      out.push(create(LeaseSchema, { taskId: l.taskId, attempt: l.attempt, token: l.token, expireTime: timestampFromMs(expiryMs) }));
    }
    return out;
  }

  function welcome(session: RunnerSession, resumed: Lease[]): void {
    session.send({
      case: "welcome",
      value: {
        sessionId: session.id,
        leaseDuration: durationFromMs(options.leaseDurationMs),
        heartbeatInterval: durationFromMs(options.heartbeatIntervalMs),
        clusterId: session.cluster.id,
        clusterSlug: session.cluster.slug,
        resumed,
        brokerId: options.brokerId,
        batches: true,
        progress: true,
      },
    });
  }

  async function heartbeat(session: RunnerSession): Promise<void> {
    const members = [...session.leases.keys()];
    if (members.length === 0) return;
    const expiryMs = Date.now() + options.leaseDurationMs;
    const lost = new Set(await leases.extend(session.cluster.id, session.id, members, expiryMs));
    holdings.extended(session, members.filter((m) => !lost.has(m)), expiryMs);
    for (const m of lost) {
      const held = session.leases.get(m);
      if (!held || held.reporting) continue;
      cancelLease(session, held, "lease lost");
      holdings.release(session, m);
      presence.updated(session);
    }
  }

  function reregister(session: RunnerSession, d: Extract<Decision, { kind: "reregister" }>): void {
    session.reregister({ identifiers: d.identifiers, queues: d.queues, revision: d.revision });
    // Leases already held stay with the session; new assignments follow the new queues at once.
    dispatch.move(session);
    presence.updated(session);
    session.send({ case: "reregistered", value: { revision: d.revision } });
  }

  async function apply(session: RunnerSession, d: Decision): Promise<void> {
    switch (d.kind) {
      case "none":
        return;
      case "violation":
        return endForViolation(session, logger, d.code, d.message);
      case "grantCredit":
        session.account.grant(d.n);
        dispatch.wake(session);
        return;
      case "heartbeat":
        try {
          await heartbeat(session);
        } catch (err) {
          // The next heartbeat tries again; a lease that expires meanwhile is cancelled then.
          logger.warn({ err, session: session.id }, "heartbeat could not extend leases");
        }
        return;
      case "report":
        return reporter.report(session, d);
      case "progress":
        return options.progress.forward(session, d.progress);
      case "drain":
        session.state = "draining";
        presence.draining(session);
        return;
      case "reregister":
        return reregister(session, d);
      case "batch":
        for (const inner of d.messages) {
          await apply(session, decideInBatch(view(session), inner, options));
          if ((session.state as string) === "closed") return;
        }
        return;
    }
  }

  const view = (s: RunnerSession) => ({
    state: s.state,
    kind: s.kind,
    credit: s.credit,
    maxCredit: s.maxCredit,
    revision: s.registration.revision,
  });

  const hub: SessionHub = {
    sessions,

    async open(teamId, hello, onlyClusterId) {
      if (draining) throw new BrokerDrainingError();
      teams.check(teamId);
      const queues = helloQueues(hello, options);
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
        kind: hello.kind,
      });
      const resumed = await resume(session, hello);
      // Resumed tasks occupy slots: the open credit is what is left.
      session.account.openWith(hello.slots, session.leases.size);
      if (draining) throw new BrokerDrainingError();
      // Checked again: other Hellos of the team may have been answered while this one waited.
      try {
        teams.check(teamId);
      } catch (err) {
        // Resumed leases stay with their records in Redis; they expire or the runner resumes them elsewhere.
        holdings.forget(session);
        throw err;
      }
      sessions.set(session.id, session);
      teams.add(teamId);
      metrics.sessions.set(sessions.size);
      welcome(session, resumed);
      dispatch.join(session);
      presence.connected(session);
      return session;
    },

    async handle(session, request) {
      await apply(session, decide(view(session), request, options));
    },

    inputEnded(session) {
      reporter.whenIdle(session, () => session.outbox.end());
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
      dispatch.leave(session);
      if (sessions.delete(session.id)) teams.remove(session.teamId);
      holdings.forget(session);
      metrics.sessions.set(sessions.size);
      presence.disconnected(session);
      if (sessions.size === 0) for (const w of [...emptyWaiters]) w();
    },

    revokeLocal(command) {
      const only = command.taskIds.length > 0 ? new Set(command.taskIds) : undefined;
      let count = 0;
      for (const session of sessions.values()) {
        if (session.teamId !== command.teamId) continue;
        for (const held of session.leases.values()) {
          if (held.jobId !== command.jobId) continue;
          if (only && !only.has(held.taskId)) continue;
          cancelLease(session, held, command.reason || "job canceled");
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
