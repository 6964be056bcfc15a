// The Dispatcher of a deployed job-service: the broker's internal DispatchService.
import type { Client } from "@connectrpc/connect";
import type { DispatchService, TaskEnvelope } from "@corral/proto";
import type { Dispatcher } from "../domain/ports.js";

/**
 * Bytes of inputs and dependency outputs per Enqueue call: envelopes may carry megabytes each, and
 * a call must stay under the broker's message limit (8 MiB by default).
 */
const ENQUEUE_CHUNK_BYTES = 4 * 1024 * 1024;

/** Roughly what an envelope weighs on the wire. */
function envelopeBytes(t: TaskEnvelope): number {
  let n = 256 + t.input.length;
  for (const d of t.dependencyOutputs) n += 128 + (d.output?.data.length ?? 0);
  return n;
}

/** Splits envelopes into runs whose bytes stay under the chunk size (one envelope per run at least). */
export function chunkByBytes(tasks: TaskEnvelope[], maxBytes = ENQUEUE_CHUNK_BYTES): TaskEnvelope[][] {
  const chunks: TaskEnvelope[][] = [];
  let current: TaskEnvelope[] = [];
  let bytes = 0;
  for (const t of tasks) {
    const n = envelopeBytes(t);
    if (current.length > 0 && bytes + n > maxBytes) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(t);
    bytes += n;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/** Queued attempts per Revoke call (the contract's limit). */
const REVOKE_CHUNK = 10_000;

export function createBrokerDispatcher(client: Client<typeof DispatchService>): Dispatcher {
  return {
    async enqueue(tasks) {
      for (const chunk of chunkByBytes(tasks)) await client.enqueue({ tasks: chunk });
    },
    async revoke(teamId, jobId, taskIds, reason, queued = []) {
      // The first call marks the job revoked; a large job's queued entries follow in more calls.
      for (let i = 0; i === 0 || i < queued.length; i += REVOKE_CHUNK) {
        await client.revoke({ teamId, jobId, taskIds, reason, queued: queued.slice(i, i + REVOKE_CHUNK) });
      }
    },
  };
}
