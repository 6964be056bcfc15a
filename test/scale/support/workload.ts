// Shared pieces of the scale tests: an SDK client and runners through one endpoint (a balancer),
// and a workload of fan-outs across clusters whose executions the test process counts.
import { Client, Task, createSdkLogger, type ExecutionContext, type Runner, type RunnerOptions } from "@corral/sdk";

/** How often each task id ran in this process's runners. */
export const executions = new Map<string, number>();
/** Leaf executions per test phase (see setPhase). */
export const leavesByPhase = new Map<string, number>();
let phase = "initial";
const listeners = new Set<() => void>();

/** Names the phase the test is in; later Leaf executions count towards it. */
export function setPhase(name: string): void {
  phase = name;
}

function ran(taskId: string, leaf = false): void {
  executions.set(taskId, (executions.get(taskId) ?? 0) + 1);
  if (leaf) leavesByPhase.set(phase, (leavesByPhase.get(phase) ?? 0) + 1);
  for (const l of listeners) l();
}

const gates = new Map<string, { promise: Promise<void>; open: () => void }>();

function gate(name: string) {
  let g = gates.get(name);
  if (!g) {
    let open!: () => void;
    const promise = new Promise<void>((resolve) => (open = resolve));
    g = { promise, open };
    gates.set(name, g);
  }
  return g;
}

/** Lets every Gate task named `name` finish. */
export function openGate(name: string): void {
  gate(name).open();
}

/** Resolves once `predicate` holds after some task ran (checked on every execution). */
export function whenExecuted(predicate: () => boolean): Promise<void> {
  if (predicate()) return Promise.resolve();
  return new Promise((resolve) => {
    const check = () => {
      if (!predicate()) return;
      listeners.delete(check);
      resolve();
    };
    listeners.add(check);
  });
}

export class Leaf extends Task<{ i: number }> {
  static override identifier = { name: "scale/Leaf", version: "v1.0" };
  override execute(ctx: ExecutionContext): void {
    ran(ctx.task.id, true);
    ctx.setDisplay(String(this.input.i * 2));
  }
}

export class Join extends Task {
  static override identifier = { name: "scale/Join", version: "v1.0" };
  override execute(ctx: ExecutionContext): void {
    ran(ctx.task.id);
  }
}

/**
 * Submits `leaves` Leaf tasks in chunks of `chunk` (each chunk its own Fanout, so subtasks are
 * submitted from many runners), every other one on `other` when given, and a Join after all.
 */
export class Fanout extends Task<{ leaves: number; chunk: number; other?: string; offset?: number }> {
  static override identifier = { name: "scale/Fanout", version: "v1.0" };
  override execute(ctx: ExecutionContext): void {
    ran(ctx.task.id);
    const { leaves, chunk, other } = this.input;
    const offset = this.input.offset ?? 0;
    if (leaves > chunk) {
      const parts = [];
      for (let start = 0; start < leaves; start += chunk) {
        parts.push(ctx.submitSubtask(new Fanout({ leaves: Math.min(chunk, leaves - start), chunk, other, offset: offset + start })));
      }
      ctx.submitSubtask(new Join(), { dependsOn: parts });
      return;
    }
    const handles = [];
    for (let i = 0; i < leaves; i++) {
      const n = offset + i;
      handles.push(ctx.submitSubtask(new Leaf({ i: n }), other && n % 2 === 1 ? { cluster: other } : {}));
    }
    ctx.submitSubtask(new Join(), { dependsOn: handles });
  }
}

/** Holds a runner slot until the test opens its gate (a lease that lives through broker restarts). */
export class Gate extends Task<{ name: string }> {
  static override identifier = { name: "scale/Gate", version: "v1.0" };
  override async execute(ctx: ExecutionContext): Promise<void> {
    ran(ctx.task.id);
    await gate(this.input.name).promise;
  }
}

/** Three waves of fan-outs: the first at once, the others each after its gate opens. */
export class Phased extends Task<{ leaves: number; chunk: number; gates: [string, string] }> {
  static override identifier = { name: "scale/Phased", version: "v1.0" };
  override execute(ctx: ExecutionContext): void {
    ran(ctx.task.id);
    const { leaves, chunk, gates: names } = this.input;
    ctx.submitSubtask(new Fanout({ leaves, chunk }));
    for (const name of names) {
      const g = ctx.submitSubtask(new Gate({ name }));
      ctx.submitSubtask(new Fanout({ leaves, chunk }), { dependsOn: [g] });
    }
  }
}

/** Tasks a Phased job consists of. */
export function phasedTaskCount(leaves: number, chunk: number): number {
  return 1 + 2 + 3 * fanoutTaskCount(leaves, chunk);
}

/** Tasks a Fanout job of `leaves` leaves in chunks of `chunk` consists of. */
export function fanoutTaskCount(leaves: number, chunk: number): number {
  if (leaves <= chunk) return leaves + 2; // the Fanout, its leaves and its Join
  let n = 2; // the root Fanout and its Join
  for (let start = 0; start < leaves; start += chunk) n += fanoutTaskCount(Math.min(chunk, leaves - start), chunk);
  return n;
}

export const workloadTasks = [Fanout, Leaf, Join];
export const phasedTasks = [Phased, Gate, Fanout, Leaf, Join];

// Runners log a warning for every drained stream here; those are expected.
const quiet = createSdkLogger("scale-runner", process.env.CORRAL_LOG_LEVEL ?? "error");

export function runnerOptions(cluster: string, extra: Partial<Omit<RunnerOptions, "url" | "apiKey">> = {}) {
  return {
    cluster,
    tasks: workloadTasks,
    concurrency: 8,
    logger: quiet,
    drainGraceMs: 5_000,
    ackTimeoutMs: 5_000,
    reconnect: { baseDelayMs: 100, maxDelayMs: 1_000 },
    ...extra,
  };
}

/** Starts a runner and resolves once the broker has welcomed it. */
export async function startRunner(runner: Runner): Promise<{ runner: Runner; done: Promise<void> }> {
  const welcomed = new Promise<void>((resolve) => runner.on("welcome", resolve));
  const done = runner.runForever({ handleSignals: false });
  await Promise.race([welcomed, done.then(() => Promise.reject(new Error(`runner ${runner.id} stopped before its Welcome`)))]);
  return { runner, done };
}

export function clientOf(url: string, apiKey: string): Client {
  return new Client({ url, apiKey });
}
