// Output: aligned tables for people, JSON for scripts (`--json`). Names and texts come from the
// server (anyone with a team key writes them), so control characters are shown escaped, never
// sent to the terminal as they are.
import { toJson, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";

export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** Whether stdout is a terminal (live progress bars, colours). */
  isTTY: boolean;
  /**
   * Writes text holding the CLI's own terminal control sequences (progress bars redrawn in place)
   * to stdout as it is; values in it must already be escaped. Defaults to `out`.
   */
  control?(text: string): void;
}

/** C0 controls but newline and tab, DEL, C1 controls, and the bidirectional overrides ("trojan source"). */
const unsafeInText = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g;
/** The same and newline, tab and carriage return: a table cell stays on its line. */
const unsafeInCell = /[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g;

function escapeChar(c: string): string {
  const code = c.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
}

/** Text safe to print: control characters (ESC included) shown as `\x1b`-style escapes; newlines and tabs kept. */
export function printable(text: string): string {
  return text.replace(unsafeInText, escapeChar);
}

/** A table cell: like printable, and newlines and tabs escaped too. */
export function printableCell(text: string): string {
  return text.replace(unsafeInCell, escapeChar);
}

/** An Io whose out and err escape control characters; `control` reaches the terminal as it is. */
export function printableIo(io: Io): Io {
  return {
    out: (text) => io.out(printable(text)),
    err: (text) => io.err(printable(text)),
    isTTY: io.isTTY,
    control: (text) => (io.control ?? io.out)(text),
  };
}

export const processIo: Io = {
  out: (text) => void process.stdout.write(text.endsWith("\n") ? text : `${text}\n`),
  err: (text) => void process.stderr.write(text.endsWith("\n") ? text : `${text}\n`),
  isTTY: Boolean(process.stdout.isTTY),
};

/** Renders rows under headers, columns padded to their widest cell. */
export function table(headers: string[], unsafeRows: string[][]): string {
  if (unsafeRows.length === 0) return "(none)";
  const rows = unsafeRows.map((r) => r.map((c) => printableCell(c ?? "")));
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(headers), ...rows.map(line)].join("\n");
}

/** Key/value lines for one object. */
export function details(unsafePairs: Array<[string, string]>): string {
  const pairs = unsafePairs.map(([k, v]): [string, string] => [k, printable(v)]);
  const width = Math.max(...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${`${k}:`.padEnd(width + 1)} ${v}`).join("\n");
}

/** A protobuf message (or a list of them) as JSON text, the way the API's JSON mapping spells it. */
export function messageJson<D extends DescMessage>(schema: D, value: MessageShape<D> | MessageShape<D>[]): string {
  const json = Array.isArray(value) ? value.map((v) => toJson(schema, v)) : toJson(schema, value);
  return JSON.stringify(json, null, 2);
}

/** Any value as JSON text; bigints become strings. */
export function jsonText(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v), 2);
}

export function time(ts: Timestamp | undefined): string {
  return ts ? timestampDate(ts).toISOString().replace(/\.\d{3}Z$/, "Z") : "-";
}

export function duration(d: { seconds: bigint; nanos: number } | undefined): string {
  if (!d) return "-";
  const ms = Number(d.seconds) * 1000 + d.nanos / 1e6;
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m${Math.round(s % 60)}s` : `${Math.floor(m / 60)}h${m % 60}m`;
}

export function orDash(v: string | number | bigint | undefined | null): string {
  return v === undefined || v === null || v === "" ? "-" : String(v);
}
