// Tells the registry which runners are connected (NodeService.ReportPresence through an injected
// reporter): on connect, on busy-slot changes (throttled per session), on draining, on disconnect,
// and again for every connected runner each `refreshMs` (the registry shows a node that no broker
// reported for a while as OFFLINE). Best effort: a failed report is logged and dropped, the next
// one carries the state.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate, timestampNow } from "@bufbuild/protobuf/wkt";
import { NodeSchema, NodeState, PresenceEvent, PresenceReportSchema, type PresenceReport } from "@corral/proto";
import type { Logger } from "pino";
import type { RunnerSession } from "./runner-session.js";

export interface PresenceReporter {
  report(reports: PresenceReport[]): Promise<void>;
}

export interface PresencePublisher {
  connected(session: RunnerSession): void;
  /** Busy slots changed; sent at most once per throttle interval per session. */
  updated(session: RunnerSession): void;
  draining(session: RunnerSession): void;
  disconnected(session: RunnerSession): void;
  /** Sends what is queued now. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

export function createPresencePublisher(options: {
  reporter: PresenceReporter | undefined;
  brokerId: string;
  throttleMs: number;
  /** Every connected session is reported again this often (default 20 s; 0 turns it off). */
  refreshMs?: number;
  logger: Logger;
}): PresencePublisher {
  const { reporter, logger } = options;
  const refreshMs = options.refreshMs ?? 20_000;
  const queued = new Map<string, PresenceReport>();
  const lastSent = new Map<string, number>();
  const trailing = new Map<string, NodeJS.Timeout>();
  /** Connected sessions, for the periodic refresh. */
  const live = new Map<string, RunnerSession>();
  let refreshTimer: NodeJS.Timeout | undefined;
  let flushTimer: NodeJS.Timeout | undefined;
  let sending: Promise<void> = Promise.resolve();

  function report(session: RunnerSession, event: PresenceEvent): PresenceReport {
    const state =
      event === PresenceEvent.DISCONNECTED
        ? NodeState.OFFLINE
        : session.state === "draining" || event === PresenceEvent.DRAINING
          ? NodeState.DRAINING
          : NodeState.ONLINE;
    return create(PresenceReportSchema, {
      teamId: session.teamId,
      event,
      node: create(NodeSchema, {
        id: session.runnerId,
        sessionId: session.id,
        clusterId: session.cluster.id,
        clusterSlug: session.cluster.slug,
        hostname: session.hardware?.hostname ?? "",
        hardware: session.hardware,
        identifiers: session.identifiers,
        slots: session.slots,
        busySlots: session.leases.size,
        state,
        labels: session.labels,
        brokerId: options.brokerId,
        connectTime: timestampFromDate(session.connectTime),
        lastSeenTime: timestampNow(),
      }),
    });
  }

  function enqueue(session: RunnerSession, event: PresenceEvent) {
    if (!reporter) return;
    queued.set(session.id, report(session, event));
    lastSent.set(session.id, Date.now());
    flushTimer ??= setTimeout(() => {
      flushTimer = undefined;
      void publisher.flush();
    }, 20);
    flushTimer.unref?.();
  }

  function refresh() {
    for (const session of live.values()) {
      if (session.state === "closed" || trailing.has(session.id)) continue;
      // A draining runner stays DRAINING: an UPDATED report would read as ONLINE again.
      enqueue(session, session.state === "draining" ? PresenceEvent.DRAINING : PresenceEvent.UPDATED);
    }
  }

  function clearTrailing(id: string) {
    const t = trailing.get(id);
    if (t) clearTimeout(t);
    trailing.delete(id);
  }

  const publisher: PresencePublisher = {
    connected(session) {
      enqueue(session, PresenceEvent.CONNECTED);
      if (!reporter || refreshMs <= 0) return;
      live.set(session.id, session);
      if (!refreshTimer) {
        refreshTimer = setInterval(refresh, refreshMs);
        refreshTimer.unref();
      }
    },
    updated(session) {
      if (!reporter || trailing.has(session.id)) return;
      const since = Date.now() - (lastSent.get(session.id) ?? 0);
      if (since >= options.throttleMs) {
        enqueue(session, PresenceEvent.UPDATED);
        return;
      }
      const t = setTimeout(() => {
        trailing.delete(session.id);
        if (session.state !== "closed") enqueue(session, PresenceEvent.UPDATED);
      }, options.throttleMs - since);
      t.unref();
      trailing.set(session.id, t);
    },
    draining(session) {
      clearTrailing(session.id);
      enqueue(session, PresenceEvent.DRAINING);
    },
    disconnected(session) {
      clearTrailing(session.id);
      enqueue(session, PresenceEvent.DISCONNECTED);
      lastSent.delete(session.id);
      live.delete(session.id);
      if (live.size === 0 && refreshTimer) {
        clearInterval(refreshTimer);
        refreshTimer = undefined;
      }
    },
    flush() {
      if (flushTimer) clearTimeout(flushTimer);
      flushTimer = undefined;
      if (!reporter || queued.size === 0) return sending;
      const batch = [...queued.values()];
      queued.clear();
      sending = sending
        .then(() => reporter.report(batch))
        .catch((err: unknown) => logger.warn({ err, count: batch.length }, "presence report failed"));
      return sending;
    },
    async close() {
      for (const t of trailing.values()) clearTimeout(t);
      trailing.clear();
      if (refreshTimer) clearInterval(refreshTimer);
      refreshTimer = undefined;
      live.clear();
      await publisher.flush();
    },
  };
  return publisher;
}
