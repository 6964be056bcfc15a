// Carries out SupervisorState's decisions on real processes: spawns runner processes, signals
// them, runs the restart and kill timers, and keeps each runner's output in a bounded LogTail.
import { spawn, type ChildProcess } from "node:child_process";
import { StringDecoder } from "node:string_decoder";
import { LogTail, type TailLine } from "./log-tail.js";
import type { RunnerCommand } from "./runner-command.js";
import {
  SupervisorState,
  type LaunchSpec,
  type RunnerReport,
  type SupervisorEffect,
  type SupervisorOptions as StateOptions,
  type TimerKind,
} from "./supervisor-state.js";

export interface SupervisorOptions extends StateOptions {
  /** The command line of a launch. */
  command(launch: LaunchSpec): RunnerCommand;
  /** Every state change of a runner, in order. */
  onReport(report: RunnerReport): void;
  /** Lines kept per runner (default 1000). */
  logLines?: number;
  now?: () => number;
}

interface Tracked {
  child: ChildProcess | undefined;
  tail: LogTail;
  /** Stopped: the tail is dropped once its last lines are shipped. */
  forgotten: boolean;
}

export class Supervisor {
  readonly #state: SupervisorState;
  readonly #options: SupervisorOptions;
  readonly #now: () => number;
  readonly #runners = new Map<string, Tracked>();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #idleWaiters: Array<() => void> = [];

  constructor(options: SupervisorOptions) {
    this.#options = options;
    this.#state = new SupervisorState(options);
    this.#now = options.now ?? Date.now;
  }

  launch(spec: LaunchSpec): void {
    this.#apply(this.#state.launch(spec));
  }

  stop(runnerId: string, graceMs: number): void {
    this.#apply(this.#state.stop(runnerId, graceMs));
  }

  /** Drains every runner (SIGTERM, SIGKILL after the grace) and resolves once all have exited. */
  stopAll(graceMs: number): Promise<void> {
    this.#apply(this.#state.stopAll(graceMs));
    return this.idle();
  }

  /** SIGKILL to every runner process now (a second Ctrl-C). */
  killAll(): void {
    for (const t of this.#runners.values()) t.child?.kill("SIGKILL");
  }

  /** Resolves when no runner process is alive or waiting to restart. */
  idle(): Promise<void> {
    if (this.#state.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  activeIds(): string[] {
    return this.#state.activeIds();
  }

  snapshot(): RunnerReport[] {
    return this.#state.snapshot();
  }

  pidOf(runnerId: string): number | undefined {
    return this.#runners.get(runnerId)?.child?.pid;
  }

  /** The kept output of a runner, oldest first. */
  logs(runnerId: string): TailLine[] {
    return this.#runners.get(runnerId)?.tail.lines() ?? [];
  }

  /** Unshipped output, up to `max` lines per runner; tails of stopped runners go once empty. */
  takeLogs(max: number): Array<{ runnerId: string; lines: TailLine[] }> {
    const batches: Array<{ runnerId: string; lines: TailLine[] }> = [];
    for (const [runnerId, t] of this.#runners) {
      const lines = t.tail.takeUnshipped(max);
      if (lines.length > 0) batches.push({ runnerId, lines });
      if (t.forgotten && t.tail.unshippedCount === 0) this.#runners.delete(runnerId);
    }
    return batches;
  }

  /** Clears the timers (after stopAll, or when the agent gives up). */
  close(): void {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }

  #apply(effects: SupervisorEffect[]): void {
    for (const e of effects) {
      switch (e.kind) {
        case "report":
          this.#options.onReport(e.report);
          break;
        case "spawn":
          this.#spawn(e.runnerId, e.launch);
          break;
        case "signal":
          this.#runners.get(e.runnerId)?.child?.kill(e.signal);
          break;
        case "schedule":
          this.#schedule(e.runnerId, e.timer, e.delayMs, e.generation);
          break;
        case "forget": {
          const t = this.#runners.get(e.runnerId);
          if (t) {
            t.child = undefined;
            t.forgotten = true;
          }
          break;
        }
      }
    }
    if (this.#state.isIdle()) for (const w of this.#idleWaiters.splice(0)) w();
  }

  #schedule(runnerId: string, timer: TimerKind, delayMs: number, generation: number): void {
    const handle = setTimeout(() => {
      this.#timers.delete(handle);
      this.#apply(this.#state.onTimer(runnerId, timer, generation));
    }, delayMs);
    this.#timers.add(handle);
  }

  #spawn(runnerId: string, launch: LaunchSpec): void {
    let tracked = this.#runners.get(runnerId);
    if (!tracked || tracked.forgotten) {
      tracked = { child: undefined, tail: new LogTail({ maxLines: this.#options.logLines }), forgotten: false };
      this.#runners.set(runnerId, tracked);
    }
    const cmd = this.#options.command(launch);
    let child: ChildProcess;
    try {
      child = spawn(cmd.command, cmd.args, {
        env: { ...process.env, ...cmd.env },
        // fd 3: the pipe whose end-of-file tells the runner the agent is gone (parent-watch.ts).
        stdio: ["ignore", "pipe", "pipe", "pipe"],
      });
    } catch (err) {
      queueMicrotask(() => this.#apply(this.#state.onExited(runnerId, { code: null, signal: null, error: (err as Error).message }, this.#now())));
      return;
    }
    tracked.child = child;
    const tail = tracked.tail;
    for (const stream of ["stdout", "stderr"] as const) {
      const decoder = new StringDecoder("utf8");
      child[stream]!.on("data", (chunk: Buffer) => tail.write(stream, decoder.write(chunk)));
    }
    // The agent's end of the parent pipe: held open, never written, closed by the kernel if we die.
    const pipe = child.stdio[3] as NodeJS.ReadableStream | null;
    pipe?.on("error", () => undefined);
    let ended = false;
    const end = (exit: { code: number | null; signal: string | null; error?: string }) => {
      if (ended) return;
      ended = true;
      (pipe as { destroy?: () => void } | null)?.destroy?.();
      if (tracked.child === child) tracked.child = undefined;
      this.#apply(this.#state.onExited(runnerId, exit, this.#now()));
    };
    child.once("error", (err: NodeJS.ErrnoException) => {
      // Only a process that never started ends here; a running one still sends "exit".
      if (child.pid === undefined) end({ code: null, signal: null, error: err.code ?? err.message });
    });
    child.once("exit", (code, signal) => end({ code, signal }));
    // After "exit" output may still arrive; a last line without a newline is kept once it is all read.
    child.once("close", () => tail.flush());
    if (child.pid !== undefined) this.#apply(this.#state.onSpawned(runnerId, child.pid, this.#now()));
  }
}
