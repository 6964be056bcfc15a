// What the broker forwards of a runner's log line, free of I/O: text Postgres can store, within
// the sizes job-service takes, and what a line weighs in the forwarder's buffer.
import { create } from "@bufbuild/protobuf";
import { LogEntrySchema, type LogEntry } from "@corral/proto";

/** Characters of a message and of fields the broker forwards (the proto's limits). */
export const MAX_MESSAGE_CHARS = 16_384;
export const MAX_FIELDS_CHARS = 32_768;

type Es2024String = string & { toWellFormed(): string };

/**
 * The rule for text Postgres cannot store: a NUL becomes U+FFFD, as does a lone surrogate. The
 * Work stream's validation already refuses both; this keeps one bad line from costing a batch of
 * other runners' lines should a message get here another way.
 */
export function storableText(s: string, maxChars: number): string {
  let out = s.includes("\u0000") ? s.replaceAll("\u0000", "\ufffd") : s;
  out = (out as Es2024String).toWellFormed();
  return out.length <= maxChars ? out : (out.slice(0, maxChars - 1) as Es2024String).toWellFormed() + "…";
}

/** A line as forwarded: storable and within bounds (fields over the bound are replaced by a note). */
export function forwardedEntry(e: LogEntry): LogEntry {
  const message = storableText(e.message, MAX_MESSAGE_CHARS);
  let fieldsJson = storableText(e.fieldsJson, Number.MAX_SAFE_INTEGER);
  if (fieldsJson.length > MAX_FIELDS_CHARS) fieldsJson = JSON.stringify({ fieldsTruncated: fieldsJson.length });
  if (message === e.message && fieldsJson === e.fieldsJson) return e;
  return create(LogEntrySchema, { time: e.time, level: e.level, message, fieldsJson });
}

/** Roughly what a line weighs in memory and on the wire. */
export function entryBytes(e: LogEntry): number {
  return 48 + e.message.length * 2 + e.fieldsJson.length * 2;
}
