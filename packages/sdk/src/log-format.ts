// Log lines a person reads: pino's JSON record turned into one plain line (time, level, name,
// message, then the other fields as key=value), for a runner whose stdout is a terminal.

const levelNames: Record<number, string> = { 10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL" };

/** Fields every record has, shown in the line's head rather than as key=value. */
const headFields = new Set(["level", "time", "pid", "hostname", "name", "msg"]);

export type LogFormat = "pretty" | "json";

function value(v: unknown): string {
  if (typeof v === "string") return /[\s"=]/.test(v) || v === "" ? JSON.stringify(v) : v;
  if (v !== null && typeof v === "object") {
    // An error: its message says more than its JSON.
    const e = v as { message?: unknown; type?: unknown };
    if (typeof e.message === "string") return JSON.stringify(e.message);
    return JSON.stringify(v);
  }
  return String(v);
}

/**
 * One pino JSON line as `HH:MM:SS LEVEL name: message key=value ...`; a line that is not JSON
 * is returned as it came.
 *
 * @example
 * formatLogLine('{"level":30,"time":0,"name":"corral-runner","msg":"connected","sessionId":"s-1"}');
 * // "00:00:00 INFO  corral-runner: connected sessionId=s-1"
 */
export function formatLogLine(line: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line.replace(/\n$/, "");
  }
  if (record === null || typeof record !== "object") return line.replace(/\n$/, "");
  const time = typeof record.time === "number" ? new Date(record.time).toISOString().slice(11, 19) : "--:--:--";
  const level = (levelNames[record.level as number] ?? String(record.level)).padEnd(5);
  const name = typeof record.name === "string" ? `${record.name}: ` : "";
  const fields = Object.entries(record)
    .filter(([k, v]) => !headFields.has(k) && v !== undefined)
    .map(([k, v]) => `${k}=${value(v)}`);
  return [`${time} ${level} ${name}${String(record.msg ?? "")}`, ...fields].join(" ");
}

/** A pino destination writing `formatLogLine` lines to `out` (default stdout). */
export function prettyDestination(out: { write(text: string): unknown } = process.stdout): { write(line: string): void } {
  return {
    write(line: string) {
      out.write(`${formatLogLine(line)}\n`);
    },
  };
}
