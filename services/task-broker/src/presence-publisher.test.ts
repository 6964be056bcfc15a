// The presence publisher reports every connected runner again each refresh interval (the registry
// shows a node nobody reported for a minute as OFFLINE), keeps a draining one DRAINING, and stops
// once its runners are gone.
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { PresenceEvent, type PresenceReport } from "@corral/proto";
import { pino } from "pino";
import { afterEach, beforeEach, expect, it, vi } from "vitest";
import { createPresencePublisher } from "./presence-publisher.js";
import { RunnerSession } from "./runner-session.js";

function session(id: string): RunnerSession {
  return new RunnerSession({
    id,
    teamId: "team-1",
    runnerId: `runner-${id}`,
    cluster: { id: "cluster-1", slug: "c-1" },
    identifiers: [],
    queues: [],
    slots: 2,
    hardware: undefined,
    labels: {},
    sdkVersion: "test",
  });
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

it("re-reports every connected session each refresh interval until it disconnects", async () => {
  const reports: PresenceReport[] = [];
  const publisher = createPresencePublisher({
    reporter: { report: async (batch) => void reports.push(...batch) },
    brokerId: "broker-1",
    throttleMs: 2_000,
    refreshMs: 20_000,
    logger: pino({ level: "silent" }),
  });
  const seen = () => reports.splice(0).map((r) => [r.node!.sessionId, r.event, timestampMs(r.node!.lastSeenTime!)] as const);
  const a = session("a");
  const b = session("b");
  publisher.connected(a);
  publisher.connected(b);
  await publisher.flush();
  const connectedAt = Date.now();
  expect(seen()).toEqual([
    ["a", PresenceEvent.CONNECTED, connectedAt],
    ["b", PresenceEvent.CONNECTED, connectedAt],
  ]);

  vi.advanceTimersByTime(20_000);
  await publisher.flush();
  expect(seen()).toEqual([
    ["a", PresenceEvent.UPDATED, connectedAt + 20_000],
    ["b", PresenceEvent.UPDATED, connectedAt + 20_000],
  ]);

  b.state = "draining";
  vi.advanceTimersByTime(20_000);
  await publisher.flush();
  expect(seen()).toEqual([
    ["a", PresenceEvent.UPDATED, connectedAt + 40_000],
    ["b", PresenceEvent.DRAINING, connectedAt + 40_000],
  ]);

  publisher.disconnected(a);
  await publisher.flush();
  expect(seen().map(([id, event]) => [id, event])).toEqual([["a", PresenceEvent.DISCONNECTED]]);
  vi.advanceTimersByTime(20_000);
  await publisher.flush();
  expect(seen().map(([id, event]) => [id, event])).toEqual([["b", PresenceEvent.DRAINING]]);

  publisher.disconnected(b);
  await publisher.flush();
  seen();
  vi.advanceTimersByTime(60_000);
  await publisher.flush();
  expect(seen()).toEqual([]);
  expect(vi.getTimerCount()).toBe(0);
  await publisher.close();
});
