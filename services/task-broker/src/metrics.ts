// The broker's Prometheus metrics, in a registry of its own that the server merges into /metrics.
import { Counter, Gauge, Histogram, Registry } from "prom-client";

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
  };
}
