// Carries out what the session protocol decided for one runner message: credit to the account and
// a wake-up for the dispatcher, heartbeats extending leases in Redis, results to the reporter,
// draining, Reregister. The protocol (session-protocol.ts) decides; this module only acts.
import type { TaskLogs } from "@corral/proto";
import type { Logger } from "pino";
import type { PresencePublisher } from "../presence-publisher.js";
import type { LeaseStore } from "../redis/lease-store.js";
import type { RunnerSession } from "../runner-session.js";
import type { LeaseHoldings } from "./lease-holdings.js";
import type { ProgressForwarder } from "./progress-forwarder.js";
import { cancelLease, endForViolation, type ResultReporter } from "./result-reporter.js";
import { decideInBatch, type Decision, type ProtocolLimits, type SessionView } from "./session-protocol.js";

/** What the hub tells the dispatcher: which sessions read which queues, and when credit opens. */
export interface SessionDispatch {
  join(session: RunnerSession): void;
  leave(session: RunnerSession): void;
  /** The session's credit grew: its group may read again. */
  wake(session: RunnerSession): void;
  /** The session's queues changed (Reregister): it moves to the group of its new queues. */
  move(session: RunnerSession): void;
}

/** Where the task log lines runners send go (task-logs/log-forwarder.ts). */
export interface SessionLogIntake {
  accept(session: RunnerSession, logs: TaskLogs): Promise<void>;
}

export interface DecisionPorts {
  leases: LeaseStore;
  holdings: LeaseHoldings;
  reporter: ResultReporter;
  progress: ProgressForwarder;
  dispatch: SessionDispatch;
  presence: PresencePublisher;
  logger: Logger;
  leaseDurationMs: number;
  limits: ProtocolLimits;
  /** Unset: the broker takes no task logs (Welcome says so). */
  logs?: SessionLogIntake;
}

/** What the protocol needs to know of a session. */
export function sessionView(s: RunnerSession): SessionView {
  return { state: s.state, kind: s.kind, credit: s.credit, maxCredit: s.maxCredit, revision: s.registration.revision };
}

export async function applyDecision(ports: DecisionPorts, session: RunnerSession, d: Decision): Promise<void> {
  switch (d.kind) {
    case "none":
      return;
    case "violation":
      return endForViolation(session, ports.logger, d.code, d.message);
    case "grantCredit":
      session.account.grant(d.n);
      ports.dispatch.wake(session);
      return;
    case "heartbeat":
      try {
        await heartbeat(ports, session);
      } catch (err) {
        // The next heartbeat tries again; a lease that expires meanwhile is cancelled then.
        ports.logger.warn({ err, session: session.id }, "heartbeat could not extend leases");
      }
      return;
    case "report":
      return ports.reporter.report(session, d);
    case "progress":
      return ports.progress.forward(session, d.progress);
    case "drain":
      session.state = "draining";
      ports.presence.draining(session);
      return;
    case "reregister":
      return reregister(ports, session, d);
    case "taskLogs":
      return ports.logs?.accept(session, d.logs);
    case "batch":
      for (const inner of d.messages) {
        await applyDecision(ports, session, decideInBatch(sessionView(session), inner, ports.limits));
        if ((session.state as string) === "closed") return;
      }
      return;
  }
}

/** Extends every lease of the session; those Redis no longer has for it are cancelled. */
async function heartbeat(ports: DecisionPorts, session: RunnerSession): Promise<void> {
  const members = [...session.leases.keys()];
  if (members.length === 0) return;
  const expiryMs = Date.now() + ports.leaseDurationMs;
  const lost = new Set(await ports.leases.extend(session.cluster.id, session.id, members, expiryMs));
  ports.holdings.extended(session, members.filter((m) => !lost.has(m)), expiryMs);
  for (const m of lost) {
    const held = session.leases.get(m);
    if (!held || held.reporting) continue;
    cancelLease(session, held, "lease lost");
    ports.holdings.release(session, m);
    ports.presence.updated(session);
  }
}

function reregister(ports: DecisionPorts, session: RunnerSession, d: Extract<Decision, { kind: "reregister" }>): void {
  session.reregister({ identifiers: d.identifiers, queues: d.queues, revision: d.revision });
  // Leases already held stay with the session; new assignments follow the new queues at once.
  ports.dispatch.move(session);
  ports.presence.updated(session);
  session.send({ case: "reregistered", value: { revision: d.revision } });
}
