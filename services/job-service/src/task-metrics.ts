// job-service's Prometheus metrics: how long task attempts ran, by task identifier (the first
// MAX_IDENTIFIER_LABELS identifiers seen keep their own series, later ones share "other") and
// outcome; task log lines stored and dropped.
import { SpanOutcome } from "@corral/proto";
import { createLabelCap } from "@corral/server-kit";
import { Counter, Histogram, Registry } from "prom-client";
import type { AppendOutcome } from "./domain/task-logs/task-logs.js";
import type { EndedAttemptOfTask } from "./domain/traces/ended-attempts.js";

export const MAX_IDENTIFIER_LABELS = 200;

export interface TaskMetrics {
  registry: Registry;
  /** Records the run time of each ended attempt that started. */
  observe(ended: readonly EndedAttemptOfTask[]): void;
  /** Counts the task log lines one AppendTaskLogs call stored and dropped. */
  logLines(outcome: Pick<AppendOutcome, "stored" | "dropped">): void;
}

export function createTaskMetrics(registry = new Registry(), maxIdentifiers = MAX_IDENTIFIER_LABELS): TaskMetrics {
  const identifiers = createLabelCap(maxIdentifiers);
  const duration = new Histogram({
    name: "corral_task_duration_seconds",
    help: `Run time of task attempts (start to end), by identifier (name@version; the first ${maxIdentifiers}, the rest as other) and outcome`,
    labelNames: ["identifier", "outcome"],
    buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600],
    registers: [registry],
  });
  const linesStored = new Counter({
    name: "corral_task_log_lines_stored_total",
    help: "Task log lines stored",
    registers: [registry],
  });
  const linesDropped = new Counter({
    name: "corral_task_log_lines_dropped_total",
    help: "Task log lines not stored, by reason: upstream (a runner's or broker's full buffer), bound (past the per-attempt bound), refused (not the task's attempt)",
    labelNames: ["reason"],
    registers: [registry],
  });
  for (const reason of ["upstream", "bound", "refused"]) linesDropped.inc({ reason }, 0);
  return {
    registry,
    logLines({ stored, dropped }) {
      linesStored.inc(stored);
      for (const [reason, n] of Object.entries(dropped)) if (n > 0) linesDropped.inc({ reason }, n);
    },
    observe(ended) {
      for (const e of ended) {
        const { start, stop, outcome } = e.attempt;
        if (!start) continue;
        const identifier = identifiers.label(`${e.task.identifier_name}@${e.task.identifier_version}`);
        duration.observe({ identifier, outcome: (SpanOutcome[outcome] ?? "unspecified").toLowerCase() }, Math.max(0, stop.getTime() - start.getTime()) / 1000);
      }
    },
  };
}
