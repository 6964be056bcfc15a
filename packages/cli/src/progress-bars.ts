// Live job progress for `job wait`: one bar per indicator redrawn in place on a terminal, plain
// lines (only when something changed) otherwise.
import type { ProgressIndicator } from "@corral/proto";
import { printableCell, type Io } from "./output.js";

export function bar(done: bigint, total: bigint, width = 30): string {
  const ratio = total > 0n ? Math.min(1, Number(done) / Number(total)) : 0;
  const filled = Math.round(ratio * width);
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${String(done)}/${String(total)} ${Math.floor(ratio * 100)}%`;
}

export interface ProgressView {
  update(state: string, indicators: ProgressIndicator[]): void;
  /** Leaves the last frame on screen. */
  finish(): void;
}

export function createProgressView(io: Io): ProgressView {
  let drawn = 0;
  let last = "";
  return {
    update(state, indicators) {
      // Labels come from tasks: escaped here, as the frame goes out through io.control as it is.
      const label = (p: ProgressIndicator) => printableCell(p.label || "tasks");
      const labelWidth = Math.max(5, ...indicators.map((p) => label(p).length));
      const lines = [
        `state: ${printableCell(state)}`,
        ...indicators.map((p) => `${label(p).padEnd(labelWidth)} ${bar(p.done, p.total)}`),
      ];
      const frame = lines.join("\n");
      if (frame === last) return;
      last = frame;
      if (io.isTTY) {
        // Move up over the previous frame and clear each line before rewriting it.
        const up = drawn > 0 ? `\x1b[${drawn}A` : "";
        (io.control ?? io.out)(up + lines.map((l) => `\x1b[2K${l}`).join("\n"));
        drawn = lines.length;
      } else {
        const summary = indicators.map((p) => `${label(p)} ${String(p.done)}/${String(p.total)}`).join(", ");
        io.out(summary ? `${state}: ${summary}` : state);
      }
    },
    finish() {
      drawn = 0;
    },
  };
}
