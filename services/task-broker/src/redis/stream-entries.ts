// A stream entry as the broker reads it: which cluster and queue it belongs to, its task's keys
// (carried in the entry's fields, so nobody decodes the envelope to claim it) and its bytes.
import { fromBinary } from "@bufbuild/protobuf";
import { TaskEnvelopeSchema } from "@corral/proto";
import { splitAttemptMember } from "./keys.js";

export interface StreamEntry {
  /** The stream key without the connection's key prefix. */
  stream: string;
  id: string;
  clusterId: string;
  /** `<name>:<version>` of the stream. */
  queue: string;
  taskId: string;
  attempt: number;
  jobId: string;
  /** The envelope's protobuf bytes, passed on to the runner as they are (never decoded here). */
  bytes: Uint8Array;
  /** The envelope as stored (base64 protobuf), for re-queueing. */
  raw: string;
  enqueuedAtMs: number;
  /**
   * Set for a gated attempt (a concurrency key or a rate limit): it waited in its key's list, not
   * a stream (`stream` and `id` are empty), and was leased at `startedAtMs` (Redis' clock, the
   * time its rate limit counted), which is reported as its start.
   */
  gated?: { startedAtMs: number };
}

/** An entry as Redis answers it: id and flat field list (null when deleted while pending). */
export type RawEntry = [string, string[] | null];

export interface StreamOf {
  stream: string;
  clusterId: string;
  queue: string;
}

/** A stream key (without the key prefix) with its cluster and queue: `corral:{<cluster>}:q:<queue>`. */
export function parseStreamKey(stream: string): StreamOf {
  const open = stream.indexOf("{");
  const close = stream.indexOf("}:q:", open);
  return { stream, clusterId: stream.slice(open + 1, close), queue: stream.slice(close + 4) };
}

function fieldsOf(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < list.length; i += 2) out[list[i]!] = list[i + 1]!;
  return out;
}

/** The entry of `raw`, or undefined for a deleted or foreign one. */
export function decodeEntry({ stream, clusterId, queue }: StreamOf, raw: RawEntry): StreamEntry | undefined {
  const [id, list] = raw;
  if (!list) return undefined; // deleted while pending
  const f = fieldsOf(list);
  if (!f.task) return undefined;
  const bytes = Buffer.from(f.task, "base64");
  let taskId: string;
  let attempt: number;
  let jobId: string;
  if (f.m !== undefined && f.j !== undefined) {
    ({ taskId, attempt } = splitAttemptMember(f.m));
    jobId = f.j;
  } else {
    // An entry written before the stream carried its task's keys (an older broker).
    const envelope = fromBinary(TaskEnvelopeSchema, bytes);
    ({ taskId, attempt, jobId } = envelope);
  }
  return { stream, id, clusterId, queue, taskId, attempt, jobId, raw: f.task, bytes, enqueuedAtMs: Number(f.t ?? 0) };
}

/** The Redis server time (ms) at which a stream entry was added. */
export function ageOfId(id: string, now: number): number {
  const ms = Number(id.split("-")[0]);
  return Math.max(0, now - (Number.isFinite(ms) ? ms : 0));
}
