// Task identifiers (`name` + `vMAJOR.MINOR`) and the version rule: a runner registering `X v1.3`
// may run tasks `X v1.0` .. `X v1.3`, so it reads those four streams.
import type { TaskIdentifier } from "@corral/proto";
import { InvalidArgumentError } from "@corral/server-kit";

export interface ParsedVersion {
  major: number;
  minor: number;
}

export function parseVersion(version: string, field = "version"): ParsedVersion {
  const m = /^v(\d+)\.(\d+)$/.exec(version);
  if (!m) throw new InvalidArgumentError(field, "must look like vMAJOR.MINOR");
  return { major: Number(m[1]), minor: Number(m[2]) };
}

/** True when a runner registering `runner` may run a task of identifier `task`. */
export function canRun(runner: TaskIdentifier, task: TaskIdentifier): boolean {
  if (runner.name !== task.name) return false;
  const r = parseVersion(runner.version);
  const t = parseVersion(task.version);
  return r.major === t.major && r.minor >= t.minor;
}

/** The most queues one runner session may read (its identifiers' readable versions together). */
export const maxQueuesPerSession = 4_096;

/** The queue names (`<name>:<version>`) a runner with these identifiers reads, sorted and unique. */
export function readableQueues(identifiers: readonly TaskIdentifier[], limit: number): string[] {
  const out = new Set<string>();
  identifiers.forEach((id, i) => {
    const { major, minor } = parseVersion(id.version, `hello.identifiers[${i}].version`);
    for (let m = 0; m <= minor; m++) {
      out.add(queueName(id.name, `v${major}.${m}`));
      if (out.size > limit) {
        throw new InvalidArgumentError(
          "hello.identifiers",
          `the identifiers span more than ${limit} task versions (every minor up to the registered one counts)`,
        );
      }
    }
  });
  return [...out].sort();
}

export function queueName(name: string, version: string): string {
  return `${name}:${version}`;
}

/** Splits `<name>:<version>` (a band's `!p<N>` dropped); a name may hold `:` but a version never does. */
export function splitQueueName(queue: string): { name: string; version: string } {
  const base = baseQueue(queue);
  const i = base.lastIndexOf(":");
  return { name: base.slice(0, i), version: base.slice(i + 1) };
}

/**
 * The queue of a priority band: priority 0 is the queue itself (the default path is unchanged),
 * priorities 1 to 9 each have their own stream `<name>:<version>!p<N>`. Subtasks (depth-first
 * preference) take the band just above their priority's, `<name>:<version>!p<N>s` (N 0 to 9): a
 * runner takes the subtasks of a priority before its root tasks, never before a higher priority.
 */
export function bandQueue(queue: string, priority: number, subtask = false): string {
  const p = Math.min(9, priority);
  if (subtask) return `${queue}!p${p}s`;
  return p > 0 ? `${queue}!p${p}` : queue;
}

/**
 * The gated queue of a band queue: the name under which the cluster's queue set lists a band queue
 * whose tasks wait behind a concurrency key or a rate limit (in Redis lists, not a stream), and
 * the wake-up message when one of them may start.
 */
export function gateQueue(bandQueue: string): string {
  return `${bandQueue}!g`;
}

export function isGateQueue(queue: string): boolean {
  return queue.endsWith("!g");
}

/** The band queue of a gated queue (the queue itself when it is not one). */
export function gatedBand(queue: string): string {
  return isGateQueue(queue) ? queue.slice(0, -2) : queue;
}

/** The queue a band or gated queue belongs to (the queue itself when it is neither). */
export function baseQueue(queue: string): string {
  queue = gatedBand(queue);
  const i = queue.lastIndexOf("!p");
  return i > 0 && /^!p([1-9]|[0-9]s)$/.test(queue.slice(i)) ? queue.slice(0, i) : queue;
}

/** A band's priority (of a gated queue too); 0 for a plain queue. */
export function bandPriority(queue: string): number {
  const m = /!p([0-9])s?(!g)?$/.exec(queue);
  return m ? Number(m[1]) : 0;
}

/**
 * The order in which a runner reads a queue's bands, highest first: priority N's subtask band
 * (`!p<N>s`) ranks 2N+1, its root band 2N (the plain queue: 0).
 */
export function bandRank(queue: string): number {
  const m = /!p([0-9])(s?)(!g)?$/.exec(queue);
  return m ? 2 * Number(m[1]) + (m[2] ? 1 : 0) : 0;
}
