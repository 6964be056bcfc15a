// The Dispatcher of a deployed job-service: the broker's internal DispatchService.
import type { Client } from "@connectrpc/connect";
import type { DispatchService } from "@corral/proto";
import type { Dispatcher } from "../domain/ports.js";

/** Queued attempts per Revoke call (the contract's limit). */
const REVOKE_CHUNK = 10_000;

export function createBrokerDispatcher(client: Client<typeof DispatchService>): Dispatcher {
  return {
    async enqueue(tasks) {
      if (tasks.length === 0) return;
      await client.enqueue({ tasks });
    },
    async revoke(teamId, jobId, taskIds, reason, queued = []) {
      // The first call marks the job revoked; a large job's queued entries follow in more calls.
      for (let i = 0; i === 0 || i < queued.length; i += REVOKE_CHUNK) {
        await client.revoke({ teamId, jobId, taskIds, reason, queued: queued.slice(i, i + REVOKE_CHUNK) });
      }
    },
  };
}
