// The rules of a stored task log, free of I/O: how much of an attempt's log is kept, what a line
// weighs, what the marker for dropped lines says, and how a line's fields are made storable.

/** How much of one attempt's log is kept (CORRAL_TASK_LOG_MAX_LINES, CORRAL_TASK_LOG_MAX_BYTES). */
export interface TaskLogLimits {
  /** Lines per attempt, the marker line included (default 10,000). */
  maxLines: number;
  /** Bytes of messages and fields per attempt (default 1 MiB). */
  maxBytes: number;
}

export const DEFAULT_TASK_LOG_LIMITS: TaskLogLimits = { maxLines: 10_000, maxBytes: 1024 * 1024 };

/** One line as the domain sees it. */
export interface LogLineInput {
  time: Date;
  level: number;
  message: string;
  fields: string;
}

/** What a line counts against the byte bound: its message and fields in UTF-8. */
export function lineBytes(line: Pick<LogLineInput, "message" | "fields">): number {
  return Buffer.byteLength(line.message, "utf8") + Buffer.byteLength(line.fields, "utf8");
}

/** Regular lines an attempt keeps: one row of the bound is the marker's. */
export function keptLines(limits: TaskLogLimits): number {
  return Math.max(1, limits.maxLines - 1);
}

/**
 * The newest lines of one incoming batch that can be kept at all (a batch bigger than the whole
 * bound keeps only its tail); `dropped` counts the rest.
 */
export function clampBatch<T extends Pick<LogLineInput, "message" | "fields">>(lines: T[], limits: TaskLogLimits): { kept: T[]; dropped: number } {
  const keep = keptLines(limits);
  let bytes = 0;
  let from = lines.length;
  while (from > 0 && lines.length - from < keep) {
    const b = lineBytes(lines[from - 1]!);
    if (bytes + b > limits.maxBytes) break;
    bytes += b;
    from--;
  }
  return { kept: lines.slice(from), dropped: from };
}

/** The marker line's text. */
export function markerMessage(dropped: number, limits: TaskLogLimits): string {
  const what = dropped === 1 ? "1 earlier line was" : `${dropped} earlier lines were`;
  return `${what} dropped (an attempt keeps its last ${limits.maxLines} lines or ${limits.maxBytes} bytes of log)`;
}

/** The marker line's text for lines dropped before they reached the store (a runner's or broker's full buffer). */
export function lostMessage(dropped: number): string {
  return dropped === 1 ? "1 line was dropped before it was stored (a full buffer)" : `${dropped} lines were dropped before they were stored (full buffers)`;
}

/**
 * A line's fields as stored: empty, or a JSON object. Anything else (not JSON, an array, a
 * number) is kept as the string value of an object's `fields` key, so no line is refused for its
 * fields.
 */
export function storableFields(fields: string): string {
  if (fields === "") return "";
  try {
    const parsed: unknown = JSON.parse(fields);
    if (parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)) return fields;
  } catch {
    // kept as text below
  }
  return JSON.stringify({ fields });
}
