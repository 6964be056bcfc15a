// Tells the registry which runners are connected and what they run (NodeService.ReportPresence
// through an injected reporter): on connect, on lease changes (throttled per session), on draining,
// on disconnect. The registry shows a node that nobody vouched for within its timeout as OFFLINE,
// so each `refreshMs` while runners are connected this broker process says it is alive (one call
// with no reports: the registry keeps the nodes this process reported last). A registry that
// predates that is sent every connected runner again instead, and so is one that has just started
// keeping instances (rows it wrote before name none). The report is built by
// presence/presence-report.ts, sent in coalesced batches by presence/report-outbox.ts, throttled
// by presence/update-throttle.ts.
import { randomUUID } from "node:crypto";
import { PresenceEvent } from "@corral/proto";
import type { Logger } from "pino";
import { presenceReport } from "./presence/presence-report.js";
import { createReportOutbox, type PresenceReporter, type ReportOutbox } from "./presence/report-outbox.js";
import { createUpdateThrottle, type UpdateThrottle } from "./presence/update-throttle.js";
import type { RunnerSession } from "./runner-session.js";

export type { PresenceReporter } from "./presence/report-outbox.js";

export interface PresencePublisher {
  connected(session: RunnerSession): void;
  /** Leases (busy slots, running tasks) changed; sent at most once per throttle interval per session. */
  updated(session: RunnerSession): void;
  draining(session: RunnerSession): void;
  disconnected(session: RunnerSession): void;
  /** Sends what is queued now. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

export interface PresencePublisherOptions {
  reporter: PresenceReporter | undefined;
  brokerId: string;
  throttleMs: number;
  /** This process says it is alive (or reports every connected session again) this often (default 20 s; 0 turns it off). */
  refreshMs?: number;
  /** Names this broker process to the registry (default: a random id drawn now). */
  brokerInstance?: string;
  logger: Logger;
}

/** The event a periodic refresh reports: a draining runner stays DRAINING (UPDATED would read ONLINE). */
export function refreshEvent(session: Pick<RunnerSession, "state">): PresenceEvent {
  return session.state === "draining" ? PresenceEvent.DRAINING : PresenceEvent.UPDATED;
}

const inert: PresencePublisher = {
  connected() {},
  updated() {},
  draining() {},
  disconnected() {},
  flush: () => Promise.resolve(),
  close: () => Promise.resolve(),
};

export function createPresencePublisher(options: PresencePublisherOptions): PresencePublisher {
  if (!options.reporter) return inert;
  const outbox = createReportOutbox({
    reporter: options.reporter,
    brokerInstance: options.brokerInstance ?? randomUUID(),
    logger: options.logger,
  });
  const throttle = createUpdateThrottle(options.throttleMs);
  const send = (session: RunnerSession, event: PresenceEvent) => {
    const now = Date.now();
    outbox.put(session.id, presenceReport(session, event, options.brokerId, now));
    throttle.sent(session.id, now);
  };
  const plan = createRefreshPlan();
  const refresher = createRefresher(options.refreshMs ?? 20_000, (sessions) => {
    if (plan.next(outbox.keptSinceAsked()) === "beat") {
      outbox.beat();
      return;
    }
    for (const session of sessions) {
      if (session.state !== "closed" && !throttle.pending(session.id)) send(session, refreshEvent(session));
    }
  });
  return publisherOver(outbox, throttle, refresher, send);
}

/**
 * What a refresh sends, given whether every call answered since the last refresh was answered by a
 * registry keeping this process's nodes alive: a beat while so; every session while not, and once
 * more when it is again (rows written meanwhile name no instance).
 */
export function createRefreshPlan(): { next(allKept: boolean): "beat" | "all" } {
  let covered = true;
  return {
    next(allKept) {
      if (allKept && covered) return "beat";
      covered = allKept;
      return "all";
    },
  };
}

function publisherOver(
  outbox: ReportOutbox,
  throttle: UpdateThrottle,
  refresher: Refresher,
  send: (session: RunnerSession, event: PresenceEvent) => void,
): PresencePublisher {
  return {
    connected(session) {
      send(session, PresenceEvent.CONNECTED);
      refresher.add(session);
    },
    updated(session) {
      throttle.update(session.id, Date.now(), () => {
        if (session.state !== "closed") send(session, PresenceEvent.UPDATED);
      });
    },
    draining(session) {
      throttle.cancel(session.id);
      send(session, PresenceEvent.DRAINING);
    },
    disconnected(session) {
      throttle.cancel(session.id);
      send(session, PresenceEvent.DISCONNECTED);
      throttle.cancel(session.id, true);
      refresher.remove(session);
    },
    flush: () => outbox.flush(),
    async close() {
      throttle.close();
      refresher.close();
      await outbox.flush();
      outbox.close();
    },
  };
}

/** The connected sessions, passed to `visit` every `everyMs` while there is one. */
interface Refresher {
  add(session: RunnerSession): void;
  remove(session: RunnerSession): void;
  close(): void;
}

function createRefresher(everyMs: number, visit: (sessions: Iterable<RunnerSession>) => void): Refresher {
  const live = new Map<string, RunnerSession>();
  let timer: NodeJS.Timeout | undefined;
  const stop = () => {
    if (timer) clearInterval(timer);
    timer = undefined;
  };
  return {
    add(session) {
      if (everyMs <= 0) return;
      live.set(session.id, session);
      if (timer) return;
      timer = setInterval(() => visit(live.values()), everyMs);
      timer.unref();
    },
    remove(session) {
      live.delete(session.id);
      if (live.size === 0) stop();
    },
    close() {
      stop();
      live.clear();
    },
  };
}
