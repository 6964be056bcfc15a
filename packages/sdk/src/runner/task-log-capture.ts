// ctx.logger for a task whose lines the runner collects: a pino logger writing each JSON record to
// a sink (the runner's task log buffer) and, at the runner's own level, to the runner's output.
// Also turns one pino record into the LogEntry sent over the Work stream.
import { LogLevel, type LogEntry } from "@corral/proto";
import { pino } from "pino";
import type { Logger } from "../logger.js";

/** Characters of a message, and of fields, a runner sends (under the Work stream's limits). */
const MAX_MESSAGE_CHARS = 16_000;
const MAX_FIELDS_CHARS = 32_000;

/** Record keys that are not the line's own fields: pino's, and the ids every task line is bound to. */
const notFields = new Set(["level", "time", "pid", "hostname", "name", "msg", "runnerId", "jobId", "taskId", "attempt", "task"]);

type Es2024String = string & { toWellFormed(): string };

/** NUL and lone surrogates (text Postgres cannot store) become U+FFFD; over `max` characters, cut with "…". */
export function storableLogText(s: string, max: number): string {
  let out = (s.includes("\u0000") ? s.replaceAll("\u0000", "\ufffd") : s) as Es2024String;
  out = out.toWellFormed() as Es2024String;
  return out.length <= max ? out : (out.slice(0, max - 1) as Es2024String).toWellFormed() + "…";
}

function levelOf(n: unknown): LogLevel {
  if (typeof n !== "number") return LogLevel.INFO;
  if (n >= 60) return LogLevel.FATAL;
  if (n >= 50) return LogLevel.ERROR;
  if (n >= 40) return LogLevel.WARN;
  if (n >= 30) return LogLevel.INFO;
  if (n >= 20) return LogLevel.DEBUG;
  return LogLevel.TRACE;
}

/**
 * One pino JSON record as a LogEntry: its level, time, message and other fields (as a JSON
 * object), storable and bounded. Undefined for a line that is not a JSON record.
 *
 * @example
 * toLogEntry('{"level":30,"time":0,"msg":"tile done","tile":7}'); // INFO "tile done" {"tile":7}
 */
export function toLogEntry(line: string): LogEntry | undefined {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (record === null || typeof record !== "object") return undefined;
  const fields: Record<string, unknown> = {};
  let any = false;
  for (const [k, v] of Object.entries(record)) {
    if (notFields.has(k) || v === undefined) continue;
    fields[k] = v;
    any = true;
  }
  let fieldsJson = any ? storableLogText(JSON.stringify(fields), Number.MAX_SAFE_INTEGER) : "";
  if (fieldsJson.length > MAX_FIELDS_CHARS) fieldsJson = JSON.stringify({ fieldsTruncated: fieldsJson.length });
  const ms = typeof record.time === "number" ? record.time : Date.now();
  // A plain message object (what create() would build, without its reflection: many lines pass here).
  return {
    $typeName: "corral.common.v1.LogEntry",
    time: { $typeName: "google.protobuf.Timestamp", seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1_000_000 },
    level: levelOf(record.level),
    message: storableLogText(typeof record.msg === "string" ? record.msg : record.msg === undefined ? "" : String(record.msg), MAX_MESSAGE_CHARS),
    fieldsJson,
  };
}

/** The lowest level collected from tasks (CORRAL_TASK_LOG_LEVEL, default info). */
export function taskLogLevel(env: Record<string, string | undefined> = process.env): pino.Level {
  const v = env.CORRAL_TASK_LOG_LEVEL;
  return v && v in pino.levels.values ? (v as pino.Level) : "info";
}

/**
 * A task's logger: each record goes to `sink` from `collectLevel` up, and to `parent`'s output
 * from the parent's level up, with the parent's bindings and `bindings`.
 */
export function createTaskLogger(
  parent: Logger,
  bindings: Record<string, unknown>,
  sink: (line: string) => void,
  collectLevel: pino.Level = taskLogLevel(),
): Logger {
  const out = (parent as unknown as Record<symbol, { write(s: string): unknown } | undefined>)[pino.symbols.streamSym];
  const parentLevel = parent.levelVal;
  const collectVal = pino.levels.values[collectLevel] ?? 30;
  const destination = {
    write(line: string) {
      // The level is the record's first key: read it without parsing the whole line twice.
      const m = /"level":(\d+)/.exec(line);
      const level = m ? Number(m[1]) : 30;
      if (level >= collectVal) sink(line);
      if (level >= parentLevel) out?.write(line);
    },
  };
  const level = collectVal <= parentLevel ? collectLevel : parent.level;
  return pino({ level }, destination).child({ ...parent.bindings(), ...bindings });
}
