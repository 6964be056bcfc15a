// The broker's runner side: opens sessions from Hello (session/session-start.ts resumes their
// leases), applies what runners send (each message judged by the session protocol, the decision
// carried out by session/apply-decision.ts), and ends sessions. The hub owns the set of open
// sessions and their lifecycle; leases are held through LeaseHoldings, credit through each
// session's CreditAccount, results through the ResultReporter.
import { randomUUID } from "node:crypto";
import { Code } from "@connectrpc/connect";
import type { Hello, WorkRequest } from "@corral/proto";
import { NotFoundError, requireClusterAllowed, revokedKeyError } from "@corral/server-kit";
import type { Logger } from "pino";
import { DeadlineWaiters } from "./deadline-waiters.js";
import { BrokerDrainingError } from "./errors.js";
import type { BrokerMetrics } from "./metrics.js";
import type { PresencePublisher } from "./presence-publisher.js";
import type { LeaseStore } from "./redis/lease-store.js";
import { RunnerSession, type ClusterRef } from "./runner-session.js";
import { applyDecision, sessionView, type DecisionPorts, type SessionDispatch, type SessionLogIntake } from "./session/apply-decision.js";
import type { LeaseHoldings } from "./session/lease-holdings.js";
import { cancelLease, type ResultReporter } from "./session/result-reporter.js";
import { resumeLeases, welcome } from "./session/session-start.js";
import { decide, helloQueues, type ProtocolLimits } from "./session/session-protocol.js";
import { createTeamCounts, type TeamCounts } from "./session/team-counts.js";

import type { ProgressForwarder } from "./session/progress-forwarder.js";

export type { SessionDispatch } from "./session/apply-decision.js";

/** Resolves cluster slugs of a team (empty slug: the team's default cluster). */
export interface ClusterResolver {
  resolve(teamId: string, slugs: readonly string[]): Promise<Map<string, ClusterRef>>;
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
  /** Takes the task log lines runners send (Welcome says so); unset: the broker takes none. */
  logs?: SessionLogIntake;
  /**
   * Most open Work sessions of one team on this replica (default 1,000); counted per replica, as
   * sessions live in their replica's memory only.
   */
  maxSessionsPerTeam?: number;
}

export function createSessionHub(options: SessionHubOptions): SessionHub {
  return new Hub(options);
}

class Hub implements SessionHub {
  readonly sessions = new Map<string, RunnerSession>();
  readonly #options: SessionHubOptions;
  readonly #ports: DecisionPorts;
  readonly #teams: TeamCounts;
  readonly #emptyWaiters = new DeadlineWaiters();
  #draining = false;

  constructor(options: SessionHubOptions) {
    this.#options = options;
    this.#teams = createTeamCounts(options.maxSessionsPerTeam ?? 1_000);
    const { leases, holdings, reporter, progress, dispatch, presence, logger, leaseDurationMs, logs } = options;
    this.#ports = { leases, holdings, reporter, progress, dispatch, presence, logger, leaseDurationMs, limits: options, logs };
  }

  async open(teamId: string, hello: Hello, onlyClusterId?: string): Promise<RunnerSession> {
    const o = this.#options;
    if (this.#draining) throw new BrokerDrainingError();
    this.#teams.check(teamId);
    const queues = helloQueues(hello, o);
    const slug = hello.clusterSlug;
    const cluster = (await o.clusters.resolve(teamId, [slug])).get(slug);
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
    const resumed = await resumeLeases(o, session, hello);
    // Resumed tasks occupy slots: the open credit is what is left.
    session.account.openWith(hello.slots, session.leases.size);
    this.#admit(session);
    welcome(session, resumed, { ...o, taskLogs: o.logs !== undefined });
    o.dispatch.join(session);
    o.presence.connected(session);
    return session;
  }

  /** Adds the session unless the broker began draining or the team filled its cap meanwhile. */
  #admit(session: RunnerSession): void {
    if (this.#draining) throw new BrokerDrainingError();
    try {
      // Checked again: other Hellos of the team may have been answered while this one waited.
      this.#teams.check(session.teamId);
    } catch (err) {
      // Resumed leases stay with their records in Redis; they expire or the runner resumes them elsewhere.
      this.#options.holdings.forget(session);
      throw err;
    }
    this.sessions.set(session.id, session);
    this.#teams.add(session.teamId);
    this.#options.metrics.sessions.set(this.sessions.size);
  }

  async handle(session: RunnerSession, request: WorkRequest): Promise<void> {
    await applyDecision(this.#ports, session, decide(sessionView(session), request, this.#options));
  }

  inputEnded(session: RunnerSession): void {
    this.#options.reporter.whenIdle(session, () => session.outbox.end());
  }

  revoked(session: RunnerSession): void {
    if (session.state === "closed") return;
    this.#options.logger.info({ session: session.id, runner: session.runnerId, team: session.teamId }, "API key revoked; ending the session");
    session.fail(Code.Unauthenticated, "the API key was revoked", revokedKeyError());
    this.detach(session);
  }

  detach(session: RunnerSession): void {
    if (session.state === "closed") return;
    const o = this.#options;
    session.state = "closed";
    session.outbox.end();
    o.dispatch.leave(session);
    if (this.sessions.delete(session.id)) this.#teams.remove(session.teamId);
    o.holdings.forget(session);
    o.metrics.sessions.set(this.sessions.size);
    o.presence.disconnected(session);
    if (this.sessions.size === 0) this.#emptyWaiters.notify();
  }

  revokeLocal(command: RevokeCommand): number {
    const only = command.taskIds.length > 0 ? new Set(command.taskIds) : undefined;
    let count = 0;
    for (const session of this.sessions.values()) {
      if (session.teamId !== command.teamId) continue;
      for (const held of session.leases.values()) {
        if (held.jobId !== command.jobId) continue;
        if (only && !only.has(held.taskId)) continue;
        cancelLease(session, held, command.reason || "job canceled");
        count++;
      }
    }
    return count;
  }

  empty(deadline: number): Promise<void> {
    return this.#emptyWaiters.wait(this.sessions.size === 0, deadline);
  }

  drain(reason: string): void {
    this.#draining = true;
    for (const session of this.sessions.values()) {
      if (session.state === "active") session.state = "draining";
      session.send({ case: "drain", value: { reason } });
      this.#options.presence.draining(session);
    }
  }
}
