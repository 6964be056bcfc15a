// The agent's supervision rules, free of I/O: which runner processes to spawn, signal, restart or
// forget, and what to report to the registry. Every event returns effects (spawn, signal, schedule
// a timer, report), so launch, crash-restart with backoff and stop are testable without processes.
//
// A runner's phase: starting → running → (exit) restarting → starting … ; stop: stopping → stopped.
// A crash restarts after a backoff that doubles (1 s to 60 s by default) and resets once a run
// lasted a healthy minute. Timers carry a generation: one that fires after its runner moved on
// (stopped, restarted) is ignored, so the driver never has to cancel timers to stay correct.

export type SupervisedPhase = "starting" | "running" | "restarting" | "stopping" | "stopped";

/** What the registry asked for in LaunchRunner. */
export interface LaunchSpec {
  runnerId: string;
  clusterId: string;
  clusterSlug: string;
  apiKey: string;
  url: string;
  /** Where the runner follows deployments (the registry); empty: the agent's own registry URL. */
  registryUrl?: string;
  concurrency: number;
}

/** How a process ended: its exit code, the signal that killed it, or why it never started. */
export interface ProcessExit {
  code: number | null;
  signal: string | null;
  /** Set when the process could not be spawned (ENOENT, EACCES). */
  error?: string;
}

export interface RunnerReport {
  runnerId: string;
  phase: SupervisedPhase;
  pid: number;
  restarts: number;
  lastExit: string;
}

export type TimerKind = "restart" | "kill";

export type SupervisorEffect =
  | { kind: "spawn"; runnerId: string; launch: LaunchSpec }
  | { kind: "signal"; runnerId: string; signal: "SIGTERM" | "SIGKILL" }
  | { kind: "schedule"; runnerId: string; timer: TimerKind; delayMs: number; generation: number }
  | { kind: "report"; report: RunnerReport }
  /** The runner is gone for good: its log tail may be shipped one last time and dropped. */
  | { kind: "forget"; runnerId: string };

export interface SupervisorOptions {
  /** First restart delay (default 1 s). */
  baseBackoffMs?: number;
  /** Longest restart delay (default 60 s). */
  maxBackoffMs?: number;
  /** A run at least this long resets the backoff (default 60 s). */
  healthyRunMs?: number;
}

interface Supervised {
  launch: LaunchSpec;
  phase: SupervisedPhase;
  pid: number;
  restarts: number;
  lastExit: string;
  startedAt: number;
  nextBackoffMs: number;
  /** Bumped whenever a scheduled timer must no longer act. */
  generation: number;
}

export function describeExit(exit: ProcessExit): string {
  if (exit.error) return `spawn failed: ${exit.error}`.slice(0, 256);
  if (exit.signal) return `signal ${exit.signal}`;
  return `exit code ${exit.code ?? "?"}`;
}

export class SupervisorState {
  readonly #runners = new Map<string, Supervised>();
  readonly #base: number;
  readonly #max: number;
  readonly #healthy: number;

  constructor(options: SupervisorOptions = {}) {
    this.#base = options.baseBackoffMs ?? 1000;
    this.#max = options.maxBackoffMs ?? 60_000;
    this.#healthy = options.healthyRunMs ?? 60_000;
  }

  /** Runners that are not stopped: what AgentHello names after a reconnect. */
  activeIds(): string[] {
    return [...this.#runners.keys()];
  }

  /** True when no runner process is alive or waiting to restart. */
  isIdle(): boolean {
    return this.#runners.size === 0;
  }

  phaseOf(runnerId: string): SupervisedPhase | undefined {
    return this.#runners.get(runnerId)?.phase;
  }

  /** Every runner's current report, re-sent after a reconnect so the registry sees the present. */
  snapshot(): RunnerReport[] {
    return [...this.#runners.keys()].map((id) => this.#report(id));
  }

  /** LaunchRunner. A launch of a runner already supervised only repeats its state (the registry may resend). */
  launch(spec: LaunchSpec): SupervisorEffect[] {
    const known = this.#runners.get(spec.runnerId);
    if (known) return [{ kind: "report", report: this.#report(spec.runnerId) }];
    this.#runners.set(spec.runnerId, {
      launch: spec,
      phase: "starting",
      pid: 0,
      restarts: 0,
      lastExit: "",
      startedAt: 0,
      nextBackoffMs: this.#base,
      generation: 0,
    });
    return [
      { kind: "report", report: this.#report(spec.runnerId) },
      { kind: "spawn", runnerId: spec.runnerId, launch: spec },
    ];
  }

  /** The process of a spawn effect started. */
  onSpawned(runnerId: string, pid: number, now: number): SupervisorEffect[] {
    const r = this.#runners.get(runnerId);
    if (!r) return [];
    r.pid = pid;
    r.startedAt = now;
    if (r.phase === "stopping") return [{ kind: "signal", runnerId, signal: "SIGTERM" }];
    r.phase = "running";
    return [{ kind: "report", report: this.#report(runnerId) }];
  }

  /** The process ended (or never started). */
  onExited(runnerId: string, exit: ProcessExit, now: number): SupervisorEffect[] {
    const r = this.#runners.get(runnerId);
    if (!r) return [];
    r.pid = 0;
    r.lastExit = describeExit(exit);
    r.generation++;
    if (r.phase === "stopping") {
      r.phase = "stopped";
      const report = this.#report(runnerId);
      this.#runners.delete(runnerId);
      return [{ kind: "report", report }, { kind: "forget", runnerId }];
    }
    if (r.phase !== "running" && r.phase !== "starting") return [];
    // A crash (or a runner that exited by itself): start it again after the backoff.
    if (r.startedAt > 0 && now - r.startedAt >= this.#healthy) r.nextBackoffMs = this.#base;
    const delayMs = r.nextBackoffMs;
    r.nextBackoffMs = Math.min(this.#max, r.nextBackoffMs * 2);
    r.phase = "restarting";
    return [
      { kind: "report", report: this.#report(runnerId) },
      { kind: "schedule", runnerId, timer: "restart", delayMs, generation: r.generation },
    ];
  }

  /** A scheduled timer fired. */
  onTimer(runnerId: string, timer: TimerKind, generation: number): SupervisorEffect[] {
    const r = this.#runners.get(runnerId);
    if (!r || r.generation !== generation) return [];
    if (timer === "restart" && r.phase === "restarting") {
      r.phase = "starting";
      r.restarts++;
      return [{ kind: "spawn", runnerId, launch: r.launch }];
    }
    if (timer === "kill" && r.phase === "stopping") return [{ kind: "signal", runnerId, signal: "SIGKILL" }];
    return [];
  }

  /** StopRunner: SIGTERM (the runner drains), SIGKILL after the grace. */
  stop(runnerId: string, graceMs: number): SupervisorEffect[] {
    const r = this.#runners.get(runnerId);
    if (!r) {
      // Unknown here (already gone, or from before an agent restart): say so, so the registry settles.
      return [{ kind: "report", report: { runnerId, phase: "stopped", pid: 0, restarts: 0, lastExit: "" } }];
    }
    if (r.phase === "stopping") return [];
    if (r.phase === "restarting") {
      // No process: nothing to drain.
      r.phase = "stopped";
      r.generation++;
      const report = this.#report(runnerId);
      this.#runners.delete(runnerId);
      return [{ kind: "report", report }, { kind: "forget", runnerId }];
    }
    r.phase = "stopping";
    r.generation++;
    const effects: SupervisorEffect[] = [{ kind: "report", report: this.#report(runnerId) }];
    // A runner not yet spawned gets its SIGTERM once onSpawned names its pid.
    if (r.pid > 0) effects.push({ kind: "signal", runnerId, signal: "SIGTERM" });
    effects.push({ kind: "schedule", runnerId, timer: "kill", delayMs: Math.max(0, graceMs), generation: r.generation });
    return effects;
  }

  /** The agent is stopping: every runner drains, then is killed after the grace. */
  stopAll(graceMs: number): SupervisorEffect[] {
    return [...this.#runners.keys()].flatMap((id) => this.stop(id, graceMs));
  }

  #report(runnerId: string): RunnerReport {
    const r = this.#runners.get(runnerId)!;
    return { runnerId, phase: r.phase, pid: r.pid, restarts: r.restarts, lastExit: r.lastExit };
  }
}
