// The broker's Prometheus metrics, in a registry of its own that the server merges into /metrics.
import { topLabels } from "@corral/server-kit";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { QueueStat } from "./redis/queue-stats.js";
import type { TaskLogCounts } from "./task-logs/log-forwarder.js";

export interface BrokerMetrics {
  registry: Registry;
  assignments: Counter;
  leasesExpired: Counter;
  dispatchLatency: Histogram;
  results: Counter<"outcome" | "status">;
  sessions: Gauge;
  ledgerRetries: Counter;
  resultSplits: Counter;
  resultsRefused: Counter;
  /** Task log lines job-service took from this replica. */
  taskLogLinesForwarded: Counter;
  /** Task log lines not forwarded, by reason (see TaskLogDropReason). */
  taskLogLinesDropped: Counter<"reason">;
}

export function createBrokerMetrics(registry = new Registry()): BrokerMetrics {
  return {
    registry,
    assignments: new Counter({
      name: "corral_broker_assignments_total",
      help: "Tasks assigned to runners",
      registers: [registry],
    }),
    leasesExpired: new Counter({
      name: "corral_broker_leases_expired_total",
      help: "Leases expired by this replica's reaper",
      registers: [registry],
    }),
    dispatchLatency: new Histogram({
      name: "corral_broker_dispatch_latency_seconds",
      help: "Time from enqueue to assignment",
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers: [registry],
    }),
    results: new Counter({
      name: "corral_broker_results_total",
      help: "Task results reported to job-service, by outcome and status",
      labelNames: ["outcome", "status"],
      registers: [registry],
    }),
    sessions: new Gauge({
      name: "corral_broker_sessions",
      help: "Runner sessions connected to this replica",
      registers: [registry],
    }),
    ledgerRetries: new Counter({
      name: "corral_broker_ledger_retries_total",
      help: "Failed ReportResults calls that were retried",
      registers: [registry],
    }),
    resultSplits: new Counter({
      name: "corral_broker_result_splits_total",
      help: "Result batches job-service refused, split in halves to find the entries it refuses",
      registers: [registry],
    }),
    resultsRefused: new Counter({
      name: "corral_broker_results_refused_total",
      help: "Results job-service refused on their own; each failed its task with the reason",
      registers: [registry],
    }),
    taskLogLinesForwarded: new Counter({
      name: "corral_broker_task_log_lines_forwarded_total",
      help: "Task log lines forwarded to job-service (calls it answered)",
      registers: [registry],
    }),
    taskLogLinesDropped: new Counter({
      name: "corral_broker_task_log_lines_dropped_total",
      help: "Task log lines not forwarded, by reason: runner (the runner's full buffer), buffer_full (this replica's), send_failed (job-service did not answer), not_held (an attempt the session never held)",
      labelNames: ["reason"],
      registers: [registry],
    }),
  };
}

/** The forwarder's counts of task log lines, as the broker's counters. */
export function taskLogCounts(metrics: BrokerMetrics): TaskLogCounts {
  return {
    forwarded: (n) => metrics.taskLogLinesForwarded.inc(n),
    dropped: (reason, n) => metrics.taskLogLinesDropped.inc({ reason }, n),
  };
}

/** Clusters with their own queue depth series; the rest are summed as cluster_id="other". */
export const MAX_QUEUE_DEPTH_CLUSTERS = 100;

/**
 * `corral_queue_depth{cluster_id}`: tasks ready in a cluster's queues that no runner has taken yet,
 * read from Redis when Prometheus scrapes (the same numbers as GetQueueStats' lag), for the
 * deepest MAX_QUEUE_DEPTH_CLUSTERS clusters.
 */
export function registerQueueDepth(metrics: BrokerMetrics, read: () => Promise<QueueStat[]>, maxClusters = MAX_QUEUE_DEPTH_CLUSTERS): Gauge<"cluster_id"> {
  return new Gauge({
    name: "corral_queue_depth",
    help: "Ready tasks waiting in each cluster's queues for a runner, by cluster id (the deepest 100; the rest as other)",
    labelNames: ["cluster_id"],
    registers: [metrics.registry],
    async collect() {
      const depth = new Map<string, number>();
      for (const q of await read()) depth.set(q.clusterId, (depth.get(q.clusterId) ?? 0) + q.lag);
      this.reset();
      for (const [cluster, n] of topLabels(depth, maxClusters)) this.set({ cluster_id: cluster }, n);
    },
  });
}
