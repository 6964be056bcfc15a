// The presence publisher keeps its runners' nodes alive at the registry (which shows a node nobody
// vouched for within a minute as OFFLINE): with a registry that keeps broker instances, by one call
// with no reports each refresh interval; with one that predates that, by reporting every connected
// runner again. It keeps a draining one DRAINING, retries calls that fail, and stops once its
// runners are gone.
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { PresenceEvent, type PresenceReport } from "@corral/proto";
import { pino } from "pino";
import { afterEach, beforeEach, expect, it, vi } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { createPresencePublisher, createRefreshPlan, type PresenceReporter } from "./presence-publisher.js";
import { presenceReport } from "./presence/presence-report.js";
import { createReportOutbox, isPassing, retryDelayMs } from "./presence/report-outbox.js";
import { testSession } from "./test-support/sessions.js";

const session = (id: string) => testSession(id);

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

it("re-reports every connected session each refresh interval to a registry that predates instances", async () => {
  const reports: PresenceReport[] = [];
  const publisher = createPresencePublisher({
    reporter: {
      report: async (batch) => {
        reports.push(...batch);
        return { keepsInstances: false };
      },
    },
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

/** A publisher of broker-1 as instance `instance`, refreshing every 20 s. */
function publisherFor(reporter: PresenceReporter, instance: string, throttleMs: number) {
  return createPresencePublisher({
    reporter,
    brokerId: "broker-1",
    brokerInstance: instance,
    throttleMs,
    refreshMs: 20_000,
    logger: pino({ level: "silent" }),
  });
}

/** A reporter recording each call; `keeps` is what the registry answers, `fail` throws instead. */
function recorder(options: { keeps: boolean }) {
  const calls: Array<{ instance: string; reports: Array<[string, PresenceEvent]> }> = [];
  const state = { keeps: options.keeps, fail: undefined as Error | undefined, refuse: undefined as string | undefined };
  const reporter = {
    async report(batch: PresenceReport[], instance: string) {
      if (state.fail) throw state.fail;
      if (batch.some((r) => r.node!.sessionId === state.refuse)) throw new ConnectError("bad report", Code.InvalidArgument);
      calls.push({ instance, reports: batch.map((r) => [r.node!.sessionId, r.event]) });
      return { keepsInstances: state.keeps };
    },
  };
  return { calls, state, reporter, taken: () => calls.splice(0) };
}

it("says only that the process is alive each refresh once the registry keeps its instance", async () => {
  const rec = recorder({ keeps: true });
  const publisher = publisherFor(rec.reporter, "inst-1", 2_000);
  const a = session("a");
  const b = session("b");
  publisher.connected(a);
  publisher.connected(b);
  await publisher.flush();
  expect(rec.taken()).toEqual([
    { instance: "inst-1", reports: [["a", PresenceEvent.CONNECTED], ["b", PresenceEvent.CONNECTED]] },
  ]);

  // Each refresh is one call with no reports.
  for (let i = 0; i < 3; i++) {
    vi.advanceTimersByTime(20_000);
    await publisher.flush();
    expect(rec.taken()).toEqual([{ instance: "inst-1", reports: [] }]);
  }
  // Changes still go as they happen.
  b.state = "draining";
  publisher.draining(b);
  await publisher.flush();
  expect(rec.taken()).toEqual([{ instance: "inst-1", reports: [["b", PresenceEvent.DRAINING]] }]);

  // The registry is replaced by one that predates instances: every refresh re-sends everyone; and
  // when it keeps instances again, everyone goes once more before the refreshes are beats again.
  rec.state.keeps = false;
  vi.advanceTimersByTime(20_000);
  await publisher.flush();
  rec.taken();
  vi.advanceTimersByTime(20_000);
  await publisher.flush();
  expect(rec.taken()).toEqual([{ instance: "inst-1", reports: [["a", PresenceEvent.UPDATED], ["b", PresenceEvent.DRAINING]] }]);
  rec.state.keeps = true;
  // (the first refresh goes by the answer before, the second is the "once more")
  for (let i = 0; i < 2; i++) {
    vi.advanceTimersByTime(20_000);
    await publisher.flush();
    expect(rec.taken()).toEqual([{ instance: "inst-1", reports: [["a", PresenceEvent.UPDATED], ["b", PresenceEvent.DRAINING]] }]);
  }
  vi.advanceTimersByTime(20_000);
  await publisher.flush();
  expect(rec.taken()).toEqual([{ instance: "inst-1", reports: [] }]);
  // No beats once no runner is connected.
  publisher.disconnected(a);
  publisher.disconnected(b);
  await publisher.flush();
  rec.taken();
  vi.advanceTimersByTime(60_000);
  await publisher.flush();
  expect(rec.calls).toEqual([]);
  await publisher.close();
});

it("tries a failed call again with each session's latest report, and drops one the registry refuses", async () => {
  const rec = recorder({ keeps: true });
  const publisher = publisherFor(rec.reporter, "inst-2", 0);
  const a = session("a");
  const b = session("b");
  rec.state.fail = new ConnectError("registry down", Code.Unavailable);
  publisher.connected(a);
  publisher.connected(b);
  await publisher.flush();
  expect(rec.calls).toEqual([]);
  // b changes while the call is failing: its newer report replaces the failed one.
  publisher.draining(b);
  vi.advanceTimersByTime(1_000);
  await publisher.flush();
  expect(rec.calls).toEqual([]);
  rec.state.fail = undefined;
  // The second retry waits 2 s.
  vi.advanceTimersByTime(1_999);
  expect(rec.calls).toEqual([]);
  vi.advanceTimersByTime(1);
  await publisher.flush();
  expect(rec.taken()).toEqual([
    { instance: "inst-2", reports: [["a", PresenceEvent.CONNECTED], ["b", PresenceEvent.DRAINING]] },
  ]);

  // A refusal (the registry says the input is wrong) is not sent again.
  rec.state.fail = new ConnectError("bad", Code.InvalidArgument);
  publisher.updated(a);
  await publisher.flush();
  rec.state.fail = undefined;
  // (the next refresh is 17 s away)
  vi.advanceTimersByTime(10_000);
  await publisher.flush();
  expect(rec.taken()).toEqual([]);

  // One report the registry refuses costs only itself: the rest of its call still goes.
  const more = ["c", "d", "e", "f", "g"].map(session);
  rec.state.refuse = "e";
  for (const s of more) publisher.connected(s);
  await publisher.flush();
  expect(rec.taken().flatMap((c) => c.reports.map(([id]) => id)).sort()).toEqual(["c", "d", "f", "g"]);

  for (const s of [a, b, ...more]) publisher.disconnected(s);
  await publisher.close();
  expect(vi.getTimerCount()).toBe(0);
});

it("retries with pauses doubling from 1 s to 30 s, for passing errors only", () => {
  expect([1, 2, 3, 4, 5, 6, 7, 20].map(retryDelayMs)).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]);
  expect(isPassing(new ConnectError("x", Code.Unavailable))).toBe(true);
  expect(isPassing(new ConnectError("x", Code.DeadlineExceeded))).toBe(true);
  expect(isPassing(new Error("socket hang up"))).toBe(true);
  expect(isPassing(new ConnectError("x", Code.InvalidArgument))).toBe(false);
  expect(isPassing(new ConnectError("x", Code.PermissionDenied))).toBe(false);
  expect(isPassing(new ConnectError("x", Code.Internal))).toBe(false);
});

it("plans a refresh: beats while the registry keeps instances; everyone while not, and once more after", () => {
  const plan = createRefreshPlan();
  expect([true, true, false, false, true, true, false, true, true].map((k) => plan.next(k))).toEqual([
    "beat",
    "beat",
    "all",
    "all",
    "all",
    "beat",
    "all",
    "all",
    "beat",
  ]);
});

it("asks an unavailable registry once per try, however many calls the queue makes", async () => {
  const attempts: number[] = [];
  let down = true;
  const outbox = createReportOutbox({
    reporter: {
      async report(batch) {
        attempts.push(batch.length);
        if (down) throw new ConnectError("registry down", Code.Unavailable);
        return { keepsInstances: true };
      },
    },
    brokerInstance: "inst-3",
    logger: pino({ level: "silent" }),
    maxPerCall: 2,
  });
  const report = (id: string) => presenceReport(session(id), PresenceEvent.CONNECTED, "broker-1", Date.now());
  for (const id of ["a", "b", "c", "d", "e"]) outbox.put(id, report(id));
  await outbox.flush();
  // Three calls queued; the first failed and the other two waited with it.
  expect(attempts).toEqual([2]);
  down = false;
  vi.advanceTimersByTime(1_000);
  await outbox.flush();
  expect(attempts).toEqual([2, 2, 2, 1]);
  // An INTERNAL answer is about the reports, not the registry's health: the call is split.
  attempts.length = 0;
  let bad = "c";
  const refusing = createReportOutbox({
    reporter: {
      async report(batch) {
        attempts.push(batch.length);
        if (batch.some((r) => r.node!.sessionId === bad)) throw new ConnectError("bug", Code.Internal);
        return { keepsInstances: true };
      },
    },
    brokerInstance: "inst-4",
    logger: pino({ level: "silent" }),
  });
  for (const id of ["a", "b", "c", "d"]) refusing.put(id, report(id));
  await refusing.flush();
  expect(attempts).toEqual([4, 2, 2, 1, 1]);
  bad = "";
  vi.advanceTimersByTime(60_000);
  await refusing.flush();
  expect(attempts).toEqual([4, 2, 2, 1, 1]);
  outbox.close();
  refusing.close();
});
