// Forwards the log lines runners send to job-service (TaskLogIngestService.AppendTaskLogs), batched
// across sessions: one call in flight at a time, each under a byte bound; a bounded buffer drops
// its oldest lines (counted per attempt, so job-service's marker says how many) when job-service
// is slow or away. Lines are taken for an attempt the session holds, or held: a lease lost
// (expired, the stream dropped) still names the attempt its lines belong to.
import { create } from "@bufbuild/protobuf";
import { AttemptLogLinesSchema, type AppendTaskLogsRequest, type AppendTaskLogsResponse, type LogEntry, type TaskLogs } from "@corral/proto";
import type { Logger } from "pino";
import { attemptMember } from "../redis/keys.js";
import type { LeaseStore } from "../redis/lease-store.js";
import type { RunnerSession } from "../runner-session.js";
import { entryBytes, forwardedEntry } from "./log-entries.js";

/** Where lines go: job-service's AppendTaskLogs. */
export interface TaskLogSink {
  appendTaskLogs(request: AppendTaskLogsRequest): Promise<Pick<AppendTaskLogsResponse, "refused">>;
}

export interface TaskLogForwarder {
  /** Takes one TaskLogs message of a session (the hook where runner messages arrive). */
  accept(session: RunnerSession, logs: TaskLogs): Promise<void>;
  /** True when lines of `session` wait to be sent or are on their way. */
  pending(session: RunnerSession): boolean;
  /**
   * Resolves once the lines `session` sent so far reached job-service, failed, or were dropped; at
   * the latest after `maxWaitMs`. A result waits for it, so a task's last lines are stored first.
   */
  flushed(session: RunnerSession): Promise<void>;
  /** Sends what is buffered (until `deadline`, ms since the epoch), then takes no more. Idempotent. */
  close(deadline?: number): Promise<void>;
}

/** Why lines were not forwarded: the runner's buffer, ours, a failed call, or an attempt the session never held. */
export type TaskLogDropReason = "runner" | "buffer_full" | "send_failed" | "not_held";

/** Counts of lines forwarded and dropped (the broker's Prometheus counters). */
export interface TaskLogCounts {
  forwarded(n: number): void;
  dropped(reason: TaskLogDropReason, n: number): void;
}

export interface TaskLogForwarderOptions {
  /** Counts lines forwarded and dropped (unset: not counted). */
  counts?: TaskLogCounts;
  sink: TaskLogSink;
  leases: Pick<LeaseStore, "attempt">;
  logger: Logger;
  /** Most bytes of lines held (default 16 MiB); beyond, the oldest are dropped. */
  maxBufferedBytes?: number;
  /** Bytes per AppendTaskLogs call (default 1 MiB). */
  batchBytes?: number;
  /** Lines wait at most this long for company (default 50 ms). */
  windowMs?: number;
  /** Most a result waits for its session's lines (default 5 s). */
  maxWaitMs?: number;
  /** Wait after a failed call before the next (default 1 s). */
  retryMs?: number;
}

interface Buffered {
  seq: number;
  clusterId: string;
  taskId: string;
  attempt: number;
  entry: LogEntry;
  bytes: number;
}

/** Lines per attempt per call (the proto's limit). */
const MAX_LINES_PER_ATTEMPT = 10_000;
/** Attempts per call (the proto's limit). */
const MAX_ATTEMPTS = 10_000;

export function createTaskLogForwarder(options: TaskLogForwarderOptions): TaskLogForwarder {
  const { sink, leases, logger } = options;
  const maxBuffered = options.maxBufferedBytes ?? 16 * 1024 * 1024;
  const batchBytes = options.batchBytes ?? 1024 * 1024;
  const windowMs = options.windowMs ?? 50;
  const maxWaitMs = options.maxWaitMs ?? 5_000;
  const retryMs = options.retryMs ?? 1_000;
  const counts = options.counts;

  const buffer: Buffered[] = [];
  let head = 0;
  let bufferedBytes = 0;
  let nextSeq = 1;
  /** Lines dropped from the buffer per attempt key, told to job-service with the attempt's next lines. */
  const droppedByAttempt = new Map<string, { clusterId: string; taskId: string; attempt: number; n: number }>();
  /** The lowest seq of the call in flight, if any. */
  let inFlightFrom: number | undefined;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  let sending: Promise<void> | undefined;
  const lastSeqOf = new WeakMap<RunnerSession, number>();
  /** Attempts whose token a session proved, so Redis is asked once per attempt. */
  const proven = new WeakMap<RunnerSession, Set<string>>();
  const waiters = new Set<{ target: number; done: () => void }>();

  const keyOf = (taskId: string, attempt: number) => attemptMember(taskId, attempt);
  const lowestPending = (): number | undefined => inFlightFrom ?? (head < buffer.length ? buffer[head]!.seq : undefined);

  function settleWaiters(): void {
    const low = lowestPending();
    for (const w of [...waiters]) if (low === undefined || low > w.target) w.done();
  }

  function compact(): void {
    if (head > 1024 && head * 2 > buffer.length) {
      buffer.splice(0, head);
      head = 0;
    }
  }

  function dropOldest(): void {
    while (bufferedBytes > maxBuffered && head < buffer.length) {
      const b = buffer[head++]!;
      bufferedBytes -= b.bytes;
      const key = keyOf(b.taskId, b.attempt);
      const d = droppedByAttempt.get(key);
      if (d) d.n++;
      else droppedByAttempt.set(key, { clusterId: b.clusterId, taskId: b.taskId, attempt: b.attempt, n: 1 });
      counts?.dropped("buffer_full", 1);
    }
    compact();
    settleWaiters();
  }

  function schedule(): void {
    if (closed || sending || timer) return;
    if (head >= buffer.length && droppedByAttempt.size === 0) return;
    timer = setTimeout(
      () => {
        timer = undefined;
        void send();
      },
      bufferedBytes >= batchBytes ? 0 : windowMs,
    );
    timer.unref?.();
  }

  /** Takes one call's worth of lines off the buffer, grouped by attempt (order kept within each). */
  function takeBatch(): { request: AppendTaskLogsRequest; from: number; count: number } {
    const groups = new Map<string, { clusterId: string; taskId: string; attempt: number; lines: LogEntry[]; dropped: number }>();
    let bytes = 0;
    const from = head < buffer.length ? buffer[head]!.seq : nextSeq;
    let count = 0;
    while (head < buffer.length) {
      const b = buffer[head]!;
      const key = keyOf(b.taskId, b.attempt);
      let g = groups.get(key);
      if (count > 0 && (bytes + b.bytes > batchBytes || (!g && groups.size >= MAX_ATTEMPTS) || (g && g.lines.length >= MAX_LINES_PER_ATTEMPT))) break;
      if (!g) groups.set(key, (g = { clusterId: b.clusterId, taskId: b.taskId, attempt: b.attempt, lines: [], dropped: 0 }));
      g.lines.push(b.entry);
      bytes += b.bytes;
      bufferedBytes -= b.bytes;
      head++;
      count++;
    }
    compact();
    // Counts of dropped lines travel with the attempt's lines, or alone.
    for (const [key, d] of droppedByAttempt) {
      const g = groups.get(key);
      if (g) g.dropped += d.n;
      else if (groups.size < MAX_ATTEMPTS) groups.set(key, { clusterId: d.clusterId, taskId: d.taskId, attempt: d.attempt, lines: [], dropped: d.n });
      else continue;
      droppedByAttempt.delete(key);
    }
    const attempts = [...groups.values()].map((g) =>
      create(AttemptLogLinesSchema, { taskId: g.taskId, attempt: g.attempt, clusterId: g.clusterId, lines: g.lines, droppedCount: g.dropped }),
    );
    return { request: { $typeName: "corral.jobs.v1.AppendTaskLogsRequest", attempts }, from, count };
  }

  async function send(): Promise<void> {
    if (sending) return sending;
    sending = (async () => {
      while (head < buffer.length || droppedByAttempt.size > 0) {
        const { request, from, count } = takeBatch();
        inFlightFrom = count > 0 ? from : undefined;
        try {
          const res = await sink.appendTaskLogs(request);
          counts?.forwarded(count);
          for (const r of res.refused) logger.debug({ task: r.taskId, attempt: r.attempt, reason: r.reason }, "task log lines refused");
        } catch (err) {
          // Lost: the lines of a batch job-service did not take are not sent again (a log is not
          // a result); the attempt's marker counts them.
          logger.warn({ err, lines: count }, "task log lines not stored");
          counts?.dropped("send_failed", count);
          for (const a of request.attempts) {
            const key = keyOf(a.taskId, a.attempt);
            const d = droppedByAttempt.get(key);
            const n = a.lines.length + a.droppedCount;
            if (d) d.n += n;
            else droppedByAttempt.set(key, { clusterId: a.clusterId, taskId: a.taskId, attempt: a.attempt, n });
          }
          inFlightFrom = undefined;
          settleWaiters();
          if (closed) return;
          await new Promise((r) => setTimeout(r, retryMs).unref?.());
          continue;
        }
        inFlightFrom = undefined;
        settleWaiters();
      }
    })().finally(() => {
      sending = undefined;
      schedule();
    });
    return sending;
  }

  async function mayWrite(session: RunnerSession, taskId: string, attempt: number, token: string): Promise<boolean> {
    const key = keyOf(taskId, attempt);
    const held = session.leases.get(key);
    if (held) return held.token === token;
    let known = proven.get(session);
    if (known?.has(`${key}:${token}`)) return true;
    const record = token ? await leases.attempt(session.cluster.id, taskId, attempt) : undefined;
    if (!record || record.token !== token) return false;
    if (!known) proven.set(session, (known = new Set()));
    if (known.size < 10_000) known.add(`${key}:${token}`);
    return true;
  }

  return {
    async accept(session, logs) {
      if (closed) return;
      for (const a of logs.attempts) {
        const lease = a.lease!;
        let ok: boolean;
        try {
          ok = await mayWrite(session, lease.taskId, lease.attempt, lease.token);
        } catch (err) {
          logger.debug({ err, task: lease.taskId }, "could not check a task log's lease; its lines are dropped");
          ok = false;
        }
        if (!ok) {
          logger.debug({ session: session.id, task: lease.taskId, attempt: lease.attempt }, "task log lines for an attempt this runner never held");
          counts?.dropped("not_held", a.lines.length);
          continue;
        }
        const base = { clusterId: session.cluster.id, taskId: lease.taskId, attempt: lease.attempt };
        if (a.droppedCount > 0) {
          counts?.dropped("runner", a.droppedCount);
          const key = keyOf(lease.taskId, lease.attempt);
          const d = droppedByAttempt.get(key);
          if (d) d.n += a.droppedCount;
          else droppedByAttempt.set(key, { ...base, n: a.droppedCount });
        }
        for (const line of a.lines) {
          const entry = forwardedEntry(line);
          const b: Buffered = { ...base, seq: nextSeq++, entry, bytes: entryBytes(entry) };
          buffer.push(b);
          bufferedBytes += b.bytes;
          lastSeqOf.set(session, b.seq);
        }
      }
      dropOldest();
      schedule();
    },

    pending(session) {
      const target = lastSeqOf.get(session);
      const low = lowestPending();
      return target !== undefined && low !== undefined && low <= target;
    },

    flushed(session) {
      const target = lastSeqOf.get(session);
      const low = lowestPending();
      if (target === undefined || low === undefined || low > target) return Promise.resolve();
      if (timer) {
        // Someone waits: send now rather than at the end of the window.
        clearTimeout(timer);
        timer = undefined;
        void send();
      }
      return new Promise<void>((resolve) => {
        const w = {
          target,
          done: () => {
            clearTimeout(t);
            waiters.delete(w);
            resolve();
          },
        };
        const t = setTimeout(w.done, maxWaitMs);
        t.unref?.();
        waiters.add(w);
      });
    },

    async close(deadline = Date.now() + 5_000) {
      if (timer) {
        clearTimeout(timer);
        timer = undefined;
      }
      if (!closed) {
        closed = true;
        const done = send();
        let t: NodeJS.Timeout | undefined;
        await Promise.race([done, new Promise<void>((r) => (t = setTimeout(r, Math.max(0, deadline - Date.now()))))]);
        clearTimeout(t);
      }
      for (const w of [...waiters]) w.done();
    },
  };
}
