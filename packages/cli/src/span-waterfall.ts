// `corral job spans` as a terminal waterfall: the span tree (each attempt under its parent task's
// attempt), each row with its wait and run times and a bar on the job's time axis.
import type { JobTrace, TaskSpan } from "@corral/sdk";
import { printableCell } from "./output.js";

export interface WaterfallOptions {
  /** Columns of the bar area. */
  width: number;
  /** The end of spans still queued or running. */
  now: Date;
}

/** Spans in tree order (depth-first, siblings by queue time then attempt) with their depth. */
export function spanTree(spans: readonly TaskSpan[]): { span: TaskSpan; depth: number; last: boolean[] }[] {
  const ids = new Set(spans.map((s) => s.spanId));
  const children = new Map<string, TaskSpan[]>();
  const roots: TaskSpan[] = [];
  for (const s of spans) {
    if (s.parentSpanId !== "" && ids.has(s.parentSpanId)) children.set(s.parentSpanId, [...(children.get(s.parentSpanId) ?? []), s]);
    else roots.push(s);
  }
  const order = (a: TaskSpan, b: TaskSpan) => a.queued.getTime() - b.queued.getTime() || a.attempt - b.attempt || (a.taskId < b.taskId ? -1 : 1);
  const out: { span: TaskSpan; depth: number; last: boolean[] }[] = [];
  const walk = (level: TaskSpan[], depth: number, last: boolean[]) => {
    level.sort(order).forEach((s, i) => {
      const path = [...last, i === level.length - 1];
      out.push({ span: s, depth, last: path });
      walk(children.get(s.spanId) ?? [], depth + 1, path);
    });
  };
  walk(roots, 0, []);
  return out;
}

export function formatMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(2)}s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m${Math.round(s % 60)}s` : `${Math.floor(m / 60)}h${m % 60}m`;
}

/** The waterfall's lines: a header, then one row per span, bars scaled to the job's duration. */
export function renderWaterfall(trace: JobTrace, options: WaterfallOptions): string[] {
  const rows = spanTree(trace.spans);
  const now = options.now.getTime();
  const start = Math.min(...trace.spans.map((s) => s.queued.getTime()));
  const end = Math.max(start + 1, ...trace.spans.map((s) => (s.ended ?? options.now).getTime()));
  const total = end - start;
  const width = Math.max(10, options.width);
  const col = (t: number) => Math.min(width - 1, Math.max(0, Math.floor(((t - start) / total) * width)));
  const labels = rows.map(({ span, depth, last }) => {
    const branch = depth === 0 ? "" : last.slice(1, -1).map((l) => (l ? "   " : "│  ")).join("") + (last.at(-1) ? "└─ " : "├─ ");
    return branch + printableCell(span.display || span.identifier.name) + (span.attempt > 1 ? ` #${span.attempt}` : "");
  });
  const labelWidth = Math.max(4, ...labels.map((l) => l.length));
  const outcomes = rows.map(({ span }) => span.outcome);
  const outcomeWidth = Math.max(7, ...outcomes.map((o) => o.length));
  const nodes = rows.map(({ span }) => printableCell(span.node || "-"));
  const nodeWidth = Math.max(4, ...nodes.map((n) => n.length));
  const head =
    `${"TASK".padEnd(labelWidth)}  ${"NODE".padEnd(nodeWidth)}  ${"OUTCOME".padEnd(outcomeWidth)}  ${"WAIT".padStart(8)}  ${"RUN".padStart(8)}  ` +
    `|0${formatMs(total).padStart(width - 1)}|`;
  const lines = [`trace ${trace.traceId}${trace.parentSpanId ? ` (continues span ${trace.parentSpanId})` : ""}  job ${trace.jobId}  ${formatMs(total)}`, head];
  rows.forEach(({ span }, i) => {
    const q = span.queued.getTime();
    const st = span.started?.getTime();
    const en = span.ended?.getTime() ?? now;
    const bar = Array.from({ length: width }, () => " ");
    const runFrom = st ?? en;
    for (let c = col(q); c <= col(runFrom) && c < width; c++) bar[c] = "░";
    if (st !== undefined) for (let c = col(st); c <= col(en); c++) bar[c] = span.ended ? "█" : "▒";
    const wait = formatMs(Math.max(0, (st ?? en) - q));
    const run = st === undefined ? "-" : formatMs(Math.max(0, en - st)) + (span.ended ? "" : "+");
    lines.push(
      `${labels[i]!.padEnd(labelWidth)}  ${nodes[i]!.padEnd(nodeWidth)}  ${outcomes[i]!.padEnd(outcomeWidth)}  ${wait.padStart(8)}  ${run.padStart(8)}  |${bar.join("")}|`,
    );
    if (span.error) lines.push(`${" ".repeat(labelWidth + 2)}${printableCell(span.error.split("\n")[0] ?? "")}`);
  });
  return lines;
}
