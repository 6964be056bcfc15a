// How the CLI shows a failed corral/RunScript task: its exit code and the ends of stderr and stdout
// (from the failed attempt's output, else as its error quotes them), a few lines each, indented
// under the line naming the task.
import { parseScriptFailure, scriptOutputOf } from "@corral/sdk";

/** Lines of each tail shown. */
const tailLinesShown = 20;

function lastLines(text: string, n: number): { lines: string[]; dropped: boolean } {
  const all = text.replace(/\n$/, "").split("\n");
  return { lines: all.slice(-n), dropped: all.length > n };
}

/**
 * The exit code and output tails of a RunScript failure, indented: read from the failed attempt's
 * decoded `output` when it is one, else from its `error` text; empty when neither is.
 *
 * @example
 * for (const line of scriptFailureLines(task.error, decodeOutput(task.output))) io.err(line);
 */
export function scriptFailureLines(error: string, output?: unknown, indent = "  "): string[] {
  const failure = scriptOutputOf(output) ?? parseScriptFailure(error);
  if (!failure) return [];
  const out = [`${indent}${failure.exitCode !== null ? `exit code ${failure.exitCode}` : `killed by ${failure.signal ?? "a signal"}`}`];
  for (const [name, text] of [
    ["stderr", failure.stderrTail],
    ["stdout", failure.stdoutTail],
  ] as const) {
    if (text === "") {
      out.push(`${indent}${name}: (empty)`);
      continue;
    }
    const { lines, dropped } = lastLines(text, tailLinesShown);
    out.push(`${indent}${name}${dropped ? ` (last ${tailLinesShown} lines)` : ""}:`);
    for (const line of lines) out.push(`${indent}  | ${line}`);
  }
  return out;
}

/** The first line of an error (for a RunScript failure: its exit code and command). */
export function firstErrorLine(error: string): string {
  return error.trim().split("\n")[0] ?? "";
}
