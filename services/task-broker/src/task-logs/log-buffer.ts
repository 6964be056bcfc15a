// The task log forwarder's buffer, without I/O or timers: lines in arrival order (each with a seq),
// a byte bound beyond which the oldest are dropped, counts of dropped lines per attempt (told to
// job-service with the attempt's next lines, or alone), and batches cut to one call's bounds.
import { create } from "@bufbuild/protobuf";
import { AttemptLogLinesSchema, type AppendTaskLogsRequest, type LogEntry } from "@corral/proto";
import { attemptMember } from "../redis/keys.js";

/** The attempt lines belong to. */
export interface LogAttempt {
  clusterId: string;
  taskId: string;
  attempt: number;
}

interface Buffered extends LogAttempt {
  seq: number;
  entry: LogEntry;
  bytes: number;
}

interface Group extends LogAttempt {
  lines: LogEntry[];
  dropped: number;
}

/** One call's worth of lines: the request, the seq of its first line, and how many lines it holds. */
export interface LogBatch {
  request: AppendTaskLogsRequest;
  from: number;
  count: number;
}

export interface LogBuffer {
  /** Appends one line; returns its seq. */
  push(attempt: LogAttempt, entry: LogEntry, bytes: number): number;
  /** Counts `n` lines of `attempt` as lost (told to job-service with its next batch). */
  noteDropped(attempt: LogAttempt, n: number): void;
  /** Drops the oldest lines while more bytes than the bound are held; returns how many. */
  dropOverflow(): number;
  /** Takes the next batch off the buffer, grouped by attempt (order kept within each). */
  takeBatch(): LogBatch;
  /** A batch job-service did not take: its lines and drop counts are counted as dropped. */
  batchFailed(batch: LogBatch): void;
  /** Lines or drop counts wait to be sent. */
  hasWork(): boolean;
  /** Seq of the oldest line held, if any. */
  oldestSeq(): number | undefined;
  /** Bytes of lines held. */
  bytes(): number;
}

/** Lines per attempt per call (the proto's limit). */
export const MAX_LINES_PER_ATTEMPT = 10_000;
/** Attempts per call (the proto's limit). */
export const MAX_ATTEMPTS = 10_000;

const keyOf = (a: LogAttempt) => attemptMember(a.taskId, a.attempt);

/** Lines dropped per attempt, not yet told to job-service. */
function createDropCounts() {
  const byAttempt = new Map<string, LogAttempt & { n: number }>();
  return {
    get size() {
      return byAttempt.size;
    },
    add(a: LogAttempt, n: number): void {
      const d = byAttempt.get(keyOf(a));
      if (d) d.n += n;
      else byAttempt.set(keyOf(a), { clusterId: a.clusterId, taskId: a.taskId, attempt: a.attempt, n });
    },
    /** Counts travel with their attempt's lines in `groups`, or alone while the call has room. */
    drainInto(groups: Map<string, Group>): void {
      for (const [key, d] of byAttempt) {
        const g = groups.get(key);
        if (g) g.dropped += d.n;
        else if (groups.size < MAX_ATTEMPTS) groups.set(key, { clusterId: d.clusterId, taskId: d.taskId, attempt: d.attempt, lines: [], dropped: d.n });
        else continue;
        byAttempt.delete(key);
      }
    },
  };
}

function toRequest(groups: Map<string, Group>): AppendTaskLogsRequest {
  const attempts = [...groups.values()].map((g) =>
    create(AttemptLogLinesSchema, { taskId: g.taskId, attempt: g.attempt, clusterId: g.clusterId, lines: g.lines, droppedCount: g.dropped }),
  );
  return { $typeName: "corral.jobs.v1.AppendTaskLogsRequest", attempts };
}

export function createLogBuffer(bounds: { maxBufferedBytes: number; batchBytes: number }): LogBuffer {
  const buffer: Buffered[] = [];
  let head = 0;
  let bufferedBytes = 0;
  let nextSeq = 1;
  const dropped = createDropCounts();

  function compact(): void {
    if (head > 1024 && head * 2 > buffer.length) {
      buffer.splice(0, head);
      head = 0;
    }
  }

  /** Fills `groups` from the buffer's head up to one call's bounds; returns the number of lines. */
  function takeLines(groups: Map<string, Group>): number {
    let bytes = 0;
    let count = 0;
    while (head < buffer.length) {
      const b = buffer[head]!;
      const key = keyOf(b);
      let g = groups.get(key);
      if (count > 0 && (bytes + b.bytes > bounds.batchBytes || (!g && groups.size >= MAX_ATTEMPTS) || (g && g.lines.length >= MAX_LINES_PER_ATTEMPT))) break;
      if (!g) groups.set(key, (g = { clusterId: b.clusterId, taskId: b.taskId, attempt: b.attempt, lines: [], dropped: 0 }));
      g.lines.push(b.entry);
      bytes += b.bytes;
      bufferedBytes -= b.bytes;
      head++;
      count++;
    }
    compact();
    return count;
  }

  return {
    push(attempt, entry, bytes) {
      const seq = nextSeq++;
      buffer.push({ clusterId: attempt.clusterId, taskId: attempt.taskId, attempt: attempt.attempt, seq, entry, bytes });
      bufferedBytes += bytes;
      return seq;
    },
    noteDropped: (attempt, n) => dropped.add(attempt, n),
    dropOverflow() {
      let n = 0;
      for (; bufferedBytes > bounds.maxBufferedBytes && head < buffer.length; n++) {
        const b = buffer[head++]!;
        bufferedBytes -= b.bytes;
        dropped.add(b, 1);
      }
      compact();
      return n;
    },
    takeBatch() {
      const groups = new Map<string, Group>();
      const from = head < buffer.length ? buffer[head]!.seq : nextSeq;
      const count = takeLines(groups);
      dropped.drainInto(groups);
      return { request: toRequest(groups), from, count };
    },
    batchFailed(batch) {
      for (const a of batch.request.attempts) dropped.add(a, a.lines.length + a.droppedCount);
    },
    hasWork: () => head < buffer.length || dropped.size > 0,
    oldestSeq: () => (head < buffer.length ? buffer[head]!.seq : undefined),
    bytes: () => bufferedBytes,
  };
}
