// The real TaskLogSink: job-service's internal TaskLogIngestService over gRPC with the service key.
import { TaskLogIngestService } from "@corral/proto";
import { createServiceClient } from "@corral/server-kit";
import type { TaskLogSink } from "./log-forwarder.js";

export function createTaskLogClient(options: { baseUrl: string; serviceKey: string; timeoutMs?: number }): TaskLogSink {
  const client = createServiceClient(TaskLogIngestService, {
    baseUrl: options.baseUrl,
    apiKey: options.serviceKey,
    timeoutMs: options.timeoutMs ?? 30_000,
  });
  return { appendTaskLogs: (request) => client.appendTaskLogs(request) };
}
