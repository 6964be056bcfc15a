// Acknowledgements of ready tasks the broker enqueued, waiting to ride on the next ReportResults
// call (its `dispatched` field). The one owner of that list.
import { create } from "@bufbuild/protobuf";
import { DispatchAckSchema, type DispatchAck, type TaskEnvelope } from "@corral/proto";

/** Acks one call carries at most. */
const maxPerCall = 100_000;

export class DispatchAcks {
  #acks: DispatchAck[] = [];

  get size(): number {
    return this.#acks.length;
  }

  /** These ready tasks are in their streams now. */
  enqueued(tasks: readonly TaskEnvelope[]): void {
    this.#acks.push(...tasks.map((t) => create(DispatchAckSchema, { taskId: t.taskId, attempt: t.attempt })));
  }

  /** The acks of the next call. */
  take(): DispatchAck[] {
    return this.#acks.splice(0, maxPerCall);
  }

  /** Acks taken for a call that did not deliver them go first next time. */
  putBack(acks: readonly DispatchAck[]): void {
    if (acks.length > 0) this.#acks.unshift(...acks);
  }
}
