// The Dispatcher of a deployed job-service: the broker's internal DispatchService.
import type { Client } from "@connectrpc/connect";
import type { DispatchService } from "@corral/proto";
import type { Dispatcher } from "../domain/ports.js";

export function createBrokerDispatcher(client: Client<typeof DispatchService>): Dispatcher {
  return {
    async enqueue(tasks) {
      if (tasks.length === 0) return;
      await client.enqueue({ tasks });
    },
    async revoke(teamId, jobId, taskIds, reason) {
      await client.revoke({ teamId, jobId, taskIds, reason });
    },
  };
}
