// How a failed corral/RunScript reports itself: its output (exit code and the tails of stdout and
// stderr) and the failure error that carries the same, as text a task record can hold. The one
// place that writes that text and the one place that reads it back (CLI views, SDK callers).
import { failureOutputKey } from "../task-output.js";

/** What a RunScript task returns (and what its failure error carries, stored as the failed attempt's output). */
export interface RunScriptOutput {
  /** The command's exit code; null when it was killed by a signal. */
  exitCode: number | null;
  /** Set when the command was killed by a signal (cancel, timeout). */
  signal?: string;
  /** The last bytes of stdout (`tailBytes`, default 4096). */
  stdoutTail: string;
  /** The last bytes of stderr. */
  stderrTail: string;
  /** The commit the command ran at (with `environment.git`). */
  commit?: string;
}

/** How much of each tail a failure error quotes (the task's error is bounded to 60 KiB). */
const errorStderrChars = 8192;
const errorStdoutChars = 2048;

const headline = /^(?:ScriptFailedError: )?corral\/RunScript: (?:exit code (\d+)|killed by ([A-Z0-9]+)): /m;
const section = /^--- (stderr|stdout) \((\d+) chars\) ---\n/;

/** Text a task record can store: no NUL, no lone surrogate (what the broker would refuse). */
function storable(text: string): string {
  return (text.replaceAll("\u0000", "\ufffd") as string & { toWellFormed(): string }).toWellFormed();
}

function lastChars(text: string, n: number): string {
  if (text.length <= n) return text;
  let start = text.length - n;
  // Do not split a surrogate pair.
  if (/[\udc00-\udfff]/.test(text[start]!)) start += 1;
  return text.slice(start);
}

/**
 * A RunScript command that ended badly: a non-zero exit or a kill. Retried as any task failure
 * (max_retries); its message quotes the exit code and the end of stderr and stdout.
 */
export class ScriptFailedError extends Error {
  /** Stored as the failed attempt's output: GetTask and `corral job result --task` show it. */
  readonly [failureOutputKey]: RunScriptOutput;
  readonly exitCode: number | null;
  readonly signal: string | undefined;
  readonly stdoutTail: string;
  readonly stderrTail: string;

  constructor(command: string, output: RunScriptOutput) {
    super(formatScriptFailure(command, output));
    this.name = "ScriptFailedError";
    this.exitCode = output.exitCode;
    this.signal = output.signal;
    this.stdoutTail = output.stdoutTail;
    this.stderrTail = output.stderrTail;
    this[failureOutputKey] = output;
    // The task's error is this message, not a stack of the runner's code.
    this.stack = `${this.name}: ${this.message}`;
  }
}

/** The failure text: a headline, then the quoted tails, each with its length so it reads back exactly. */
export function formatScriptFailure(command: string, output: RunScriptOutput): string {
  const how = output.exitCode !== null ? `exit code ${output.exitCode}` : `killed by ${output.signal ?? "a signal"}`;
  const shown = storable(command.replaceAll("\n", " "));
  const head = `corral/RunScript: ${how}: ${shown.length > 200 ? `${shown.slice(0, 200)}…` : shown}`;
  const stderr = lastChars(storable(output.stderrTail), errorStderrChars);
  const stdout = lastChars(storable(output.stdoutTail), errorStdoutChars);
  return `${head}\n--- stderr (${stderr.length} chars) ---\n${stderr}\n--- stdout (${stdout.length} chars) ---\n${stdout}`;
}

/**
 * A RunScript output read from a task's decoded output (a failed attempt stores its exit code and
 * tails there too); undefined when the value is not one.
 *
 * @example
 * const failure = scriptOutputOf(decodeOutput(task.output)) ?? parseScriptFailure(task.error);
 */
export function scriptOutputOf(value: unknown): RunScriptOutput | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const v = value as Record<string, unknown>;
  const exitOk = v.exitCode === null || typeof v.exitCode === "number";
  if (!exitOk || typeof v.stdoutTail !== "string" || typeof v.stderrTail !== "string") return undefined;
  const out: RunScriptOutput = { exitCode: v.exitCode as number | null, stdoutTail: v.stdoutTail, stderrTail: v.stderrTail };
  if (typeof v.signal === "string") out.signal = v.signal;
  if (typeof v.commit === "string") out.commit = v.commit;
  return out;
}

/**
 * Reads a RunScript failure back from a task's error text: the exit code (or signal) and the
 * quoted tails. Undefined when the text is not one.
 *
 * @example
 * const failure = parseScriptFailure(task.error);
 * if (failure) console.log(failure.exitCode, failure.stderrTail);
 */
export function parseScriptFailure(error: string): RunScriptOutput | undefined {
  const head = headline.exec(error);
  if (!head) return undefined;
  const out: RunScriptOutput = { exitCode: head[1] !== undefined ? Number(head[1]) : null, stdoutTail: "", stderrTail: "" };
  if (head[2] !== undefined) out.signal = head[2];
  let rest = error.slice(error.indexOf("\n", head.index) + 1);
  for (let i = 0; i < 2; i++) {
    const m = section.exec(rest);
    if (!m) break;
    const body = rest.slice(m[0].length, m[0].length + Number(m[2]));
    if (m[1] === "stderr") out.stderrTail = body;
    else out.stdoutTail = body;
    rest = rest.slice(m[0].length + body.length + 1);
  }
  return out;
}
