import { describe, expect, it } from "vitest";
import { describeExit, SupervisorState, type LaunchSpec, type SupervisorEffect } from "./supervisor-state.js";

function spec(runnerId = "r1"): LaunchSpec {
  return { runnerId, clusterId: "c1", clusterSlug: "gpu-AAAA", apiKey: "k", url: "http://x", concurrency: 2 };
}

const kinds = (fx: SupervisorEffect[]) => fx.map((e) => e.kind);
const reports = (fx: SupervisorEffect[]) => fx.flatMap((e) => (e.kind === "report" ? [e.report] : []));
const schedules = (fx: SupervisorEffect[]) => fx.flatMap((e) => (e.kind === "schedule" ? [e] : []));
const signals = (fx: SupervisorEffect[]) => fx.flatMap((e) => (e.kind === "signal" ? [e.signal] : []));

const crash = { code: 1, signal: null };
const killed = { code: null, signal: "SIGKILL" };

/** Crashes the running runner at `now` and fires its restart timer; answers the delay used. */
function crashAndRestart(s: SupervisorState, now: number, pid: number): number {
  const fx = s.onExited("r1", crash, now);
  const [timer] = schedules(fx);
  expect(kinds(s.onTimer("r1", "restart", timer!.generation))).toEqual(["spawn"]);
  s.onSpawned("r1", pid, now + timer!.delayMs);
  return timer!.delayMs;
}

describe("SupervisorState launch", () => {
  it("reports STARTING, spawns, and reports RUNNING with the pid once spawned", () => {
    const s = new SupervisorState();
    const fx = s.launch(spec());
    expect(kinds(fx)).toEqual(["report", "spawn"]);
    expect(reports(fx)[0]).toMatchObject({ runnerId: "r1", phase: "starting", pid: 0 });
    expect(reports(s.onSpawned("r1", 42, 0))).toEqual([{ runnerId: "r1", phase: "running", pid: 42, restarts: 0, lastExit: "" }]);
    expect(s.activeIds()).toEqual(["r1"]);
  });

  it("treats a repeated launch of a supervised runner as a question: repeats its state, spawns nothing", () => {
    const s = new SupervisorState();
    s.launch(spec());
    s.onSpawned("r1", 42, 0);
    const fx = s.launch(spec());
    expect(kinds(fx)).toEqual(["report"]);
    expect(reports(fx)[0]).toMatchObject({ phase: "running", pid: 42 });
  });
});

describe("SupervisorState restarts", () => {
  it("restarts a crashed runner after a backoff, counting restarts and keeping the last exit", () => {
    const s = new SupervisorState();
    s.launch(spec());
    s.onSpawned("r1", 42, 0);
    const fx = s.onExited("r1", killed, 1000);
    expect(reports(fx)[0]).toMatchObject({ phase: "restarting", pid: 0, restarts: 0, lastExit: "signal SIGKILL" });
    const [timer] = schedules(fx);
    expect(timer).toMatchObject({ timer: "restart", delayMs: 1000 });
    expect(kinds(s.onTimer("r1", "restart", timer!.generation))).toEqual(["spawn"]);
    expect(reports(s.onSpawned("r1", 43, 2000))[0]).toMatchObject({ phase: "running", pid: 43, restarts: 1, lastExit: "signal SIGKILL" });
  });

  it("doubles the backoff on each quick crash up to the maximum", () => {
    const s = new SupervisorState({ baseBackoffMs: 1000, maxBackoffMs: 8000 });
    s.launch(spec());
    s.onSpawned("r1", 1, 0);
    const delays = [1, 2, 3, 4, 5].map((i) => crashAndRestart(s, i * 100, 10 + i));
    expect(delays).toEqual([1000, 2000, 4000, 8000, 8000]);
  });

  it("resets the backoff after a run that lasted a healthy minute", () => {
    const s = new SupervisorState({ healthyRunMs: 60_000 });
    s.launch(spec());
    s.onSpawned("r1", 1, 0);
    expect(crashAndRestart(s, 10, 2)).toBe(1000);
    expect(crashAndRestart(s, 20, 3)).toBe(2000);
    // The last spawn was at 20 + 2000: a crash a minute later starts over at the base.
    expect(crashAndRestart(s, 2020 + 60_000, 4)).toBe(1000);
  });

  it("counts a process that could not be spawned as a crash, with the reason", () => {
    const s = new SupervisorState();
    s.launch(spec());
    const fx = s.onExited("r1", { code: null, signal: null, error: "ENOENT" }, 0);
    expect(reports(fx)[0]).toMatchObject({ phase: "restarting", lastExit: "spawn failed: ENOENT" });
  });

  it("ignores a restart timer that fires after the runner was stopped", () => {
    const s = new SupervisorState();
    s.launch(spec());
    s.onSpawned("r1", 1, 0);
    const [timer] = schedules(s.onExited("r1", crash, 10));
    s.stop("r1", 5000);
    expect(s.onTimer("r1", "restart", timer!.generation)).toEqual([]);
    expect(s.isIdle()).toBe(true);
  });
});

describe("SupervisorState stop", () => {
  it("sends SIGTERM, SIGKILL after the grace, and reports STOPPED and forgets once the process exits", () => {
    const s = new SupervisorState();
    s.launch(spec());
    s.onSpawned("r1", 42, 0);
    const fx = s.stop("r1", 30_000);
    expect(reports(fx)[0]).toMatchObject({ phase: "stopping", pid: 42 });
    expect(signals(fx)).toEqual(["SIGTERM"]);
    const [kill] = schedules(fx);
    expect(kill).toMatchObject({ timer: "kill", delayMs: 30_000 });
    expect(signals(s.onTimer("r1", "kill", kill!.generation))).toEqual(["SIGKILL"]);
    const end = s.onExited("r1", killed, 31_000);
    expect(kinds(end)).toEqual(["report", "forget"]);
    expect(reports(end)[0]).toMatchObject({ phase: "stopped", pid: 0, lastExit: "signal SIGKILL" });
    expect(s.isIdle()).toBe(true);
  });

  it("does not restart a runner that exits while stopping, and ignores its kill timer afterwards", () => {
    const s = new SupervisorState();
    s.launch(spec());
    s.onSpawned("r1", 42, 0);
    const [kill] = schedules(s.stop("r1", 30_000));
    expect(kinds(s.onExited("r1", { code: 0, signal: null }, 100))).toEqual(["report", "forget"]);
    expect(s.onTimer("r1", "kill", kill!.generation)).toEqual([]);
  });

  it("stops a runner waiting for its restart at once: there is no process to drain", () => {
    const s = new SupervisorState();
    s.launch(spec());
    s.onSpawned("r1", 42, 0);
    s.onExited("r1", crash, 10);
    const fx = s.stop("r1", 30_000);
    expect(kinds(fx)).toEqual(["report", "forget"]);
    expect(reports(fx)[0]).toMatchObject({ phase: "stopped" });
  });

  it("answers a stop of an unknown runner with STOPPED, so the registry settles", () => {
    const s = new SupervisorState();
    expect(reports(s.stop("ghost", 1000))).toEqual([{ runnerId: "ghost", phase: "stopped", pid: 0, restarts: 0, lastExit: "" }]);
  });

  it("a repeated stop changes nothing", () => {
    const s = new SupervisorState();
    s.launch(spec());
    s.onSpawned("r1", 42, 0);
    s.stop("r1", 1000);
    expect(s.stop("r1", 1000)).toEqual([]);
  });

  it("stopAll drains every runner", () => {
    const s = new SupervisorState();
    s.launch(spec("a"));
    s.launch(spec("b"));
    s.onSpawned("a", 1, 0);
    s.onSpawned("b", 2, 0);
    const fx = s.stopAll(500);
    expect(fx.filter((e) => e.kind === "signal").map((e) => e.runnerId)).toEqual(["a", "b"]);
    expect(s.snapshot().map((r) => r.phase)).toEqual(["stopping", "stopping"]);
  });
});

describe("describeExit", () => {
  it("names the signal, the code or the spawn error", () => {
    expect(describeExit({ code: null, signal: "SIGTERM" })).toBe("signal SIGTERM");
    expect(describeExit({ code: 3, signal: null })).toBe("exit code 3");
    expect(describeExit({ code: null, signal: null, error: "EACCES" })).toBe("spawn failed: EACCES");
  });
});
