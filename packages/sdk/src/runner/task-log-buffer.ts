// The runner's buffer of task log lines not yet sent, free of I/O: lines (pino's JSON records, as
// written; turned into LogEntry only when sent, so lines dropped cost nothing more) per attempt in the order
// written, bounded (the oldest lines go first, counted per attempt so the stored log's marker says
// how many), taken in batches under a byte bound, or all of one attempt before its result.
import type { LeaseRef } from "@corral/proto";

export interface AttemptLines {
  lease: Pick<LeaseRef, "taskId" | "attempt" | "token">;
  /** The JSON records, oldest first. */
  lines: string[];
  droppedCount: number;
}

export interface TaskLogBufferLimits {
  /** Lines held over all attempts (default 20,000). */
  maxLines?: number;
  /** Bytes held over all attempts (default 8 MiB). */
  maxBytes?: number;
}

interface Held {
  key: string;
  entry: string;
  bytes: number;
}

/** Lines per message: under the Work stream's limit of 10,000 per attempt. */
const MAX_LINES_PER_TAKE = 5_000;

/** What a held line weighs (UTF-16 in memory). */
export function lineBytes(json: string): number {
  return 32 + json.length * 2;
}

export class TaskLogBuffer {
  readonly #maxLines: number;
  readonly #maxBytes: number;
  #lines: Held[] = [];
  #head = 0;
  #bytes = 0;
  readonly #leases = new Map<string, AttemptLines["lease"]>();
  readonly #dropped = new Map<string, number>();

  constructor(limits: TaskLogBufferLimits = {}) {
    this.#maxLines = limits.maxLines ?? 20_000;
    this.#maxBytes = limits.maxBytes ?? 8 * 1024 * 1024;
  }

  /** Lines held. */
  get size(): number {
    return this.#lines.length - this.#head;
  }

  /** Bytes held. */
  get bytes(): number {
    return this.#bytes;
  }

  /** True when there is something to send (lines, or counts of dropped ones). */
  get hasPending(): boolean {
    return this.size > 0 || this.#dropped.size > 0;
  }

  add(lease: AttemptLines["lease"], entry: string): void {
    const key = `${lease.taskId}:${lease.attempt}`;
    if (!this.#leases.has(key)) this.#leases.set(key, { taskId: lease.taskId, attempt: lease.attempt, token: lease.token });
    const bytes = lineBytes(entry);
    this.#lines.push({ key, entry, bytes });
    this.#bytes += bytes;
    while (this.size > this.#maxLines || (this.#bytes > this.#maxBytes && this.size > 1)) {
      const old = this.#lines[this.#head++]!;
      this.#bytes -= old.bytes;
      this.#dropped.set(old.key, (this.#dropped.get(old.key) ?? 0) + 1);
    }
    this.#compact();
  }

  /** The oldest lines up to `maxBytes` (one line at least), grouped by attempt, with their dropped counts. */
  take(maxBytes: number): AttemptLines[] {
    const groups = new Map<string, AttemptLines>();
    let bytes = 0;
    let n = 0;
    while (this.#head < this.#lines.length) {
      const h = this.#lines[this.#head]!;
      if (n > 0 && (bytes + h.bytes > maxBytes || n >= MAX_LINES_PER_TAKE)) break;
      this.#head++;
      this.#bytes -= h.bytes;
      bytes += h.bytes;
      n++;
      this.#group(groups, h.key).lines.push(h.entry);
    }
    for (const key of [...this.#dropped.keys()]) this.#group(groups, key);
    this.#compact();
    return this.#finish(groups);
  }

  /** Every line of one attempt (its result goes next), in batches under `maxBytes`. */
  takeAttempt(taskId: string, attempt: number, maxBytes: number): AttemptLines[] {
    const key = `${taskId}:${attempt}`;
    if (!this.#leases.has(key)) return [];
    const out: AttemptLines[] = [];
    let current: AttemptLines = { lease: this.#leases.get(key)!, lines: [], droppedCount: this.#dropped.get(key) ?? 0 };
    this.#dropped.delete(key);
    let bytes = 0;
    const rest: Held[] = [];
    for (let i = this.#head; i < this.#lines.length; i++) {
      const h = this.#lines[i]!;
      if (h.key !== key) {
        rest.push(h);
        continue;
      }
      if (current.lines.length > 0 && (bytes + h.bytes > maxBytes || current.lines.length >= MAX_LINES_PER_TAKE)) {
        out.push(current);
        current = { lease: current.lease, lines: [], droppedCount: 0 };
        bytes = 0;
      }
      current.lines.push(h.entry);
      bytes += h.bytes;
      this.#bytes -= h.bytes;
    }
    if (current.lines.length > 0 || current.droppedCount > 0) out.push(current);
    this.#lines = rest;
    this.#head = 0;
    this.#leases.delete(key);
    return out;
  }

  #group(groups: Map<string, AttemptLines>, key: string): AttemptLines {
    let g = groups.get(key);
    if (!g) {
      g = { lease: this.#leases.get(key)!, lines: [], droppedCount: this.#dropped.get(key) ?? 0 };
      this.#dropped.delete(key);
      groups.set(key, g);
    }
    return g;
  }

  #finish(groups: Map<string, AttemptLines>): AttemptLines[] {
    // An attempt with nothing left held needs no lease entry any more.
    const live = new Set<string>();
    for (let i = this.#head; i < this.#lines.length; i++) live.add(this.#lines[i]!.key);
    for (const key of groups.keys()) if (!live.has(key) && !this.#dropped.has(key)) this.#leases.delete(key);
    return [...groups.values()];
  }

  #compact(): void {
    if (this.#head > 1024 && this.#head * 2 > this.#lines.length) {
      this.#lines = this.#lines.slice(this.#head);
      this.#head = 0;
    }
  }
}
