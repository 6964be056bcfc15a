// One connected runner stream: what it registered, its open credit, the leases it holds and the
// queue of messages going out to it. The broker changes it; the Work handler drains `outbox`.
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import type { Code } from "@connectrpc/connect";
import { WorkResponseSchema, type Hardware, type TaskIdentifier, type WorkResponse } from "@corral/proto";
import { AsyncQueue } from "@corral/wire";

export interface ClusterRef {
  id: string;
  slug: string;
}

export interface HeldLease {
  taskId: string;
  attempt: number;
  token: string;
  jobId: string;
  expireMs: number;
  /** A result for it is on its way to job-service. */
  reporting: boolean;
}

/** `active` takes work; `draining` (runner said Draining, or the broker is stopping) does not. */
export type SessionState = "active" | "draining" | "closed";

export interface SessionInit {
  id: string;
  teamId: string;
  runnerId: string;
  cluster: ClusterRef;
  identifiers: TaskIdentifier[];
  queues: string[];
  slots: number;
  hardware: Hardware | undefined;
  labels: Record<string, string>;
  sdkVersion: string;
  /** The runner reads WorkResponse.batch. */
  batches?: boolean;
}

export class RunnerSession {
  readonly id: string;
  readonly teamId: string;
  readonly runnerId: string;
  readonly cluster: ClusterRef;
  readonly identifiers: TaskIdentifier[];
  /** Queue names (`<name>:<version>`) this runner may take tasks from. */
  readonly queues: string[];
  readonly slots: number;
  readonly hardware: Hardware | undefined;
  readonly labels: Record<string, string>;
  readonly sdkVersion: string;
  /** The runner reads WorkResponse.batch: queued messages go out together. */
  readonly batches: boolean;
  readonly connectTime = new Date();
  readonly outbox = new AsyncQueue<WorkResponse>();
  readonly leases = new Map<string, HeldLease>();

  state: SessionState = "active";
  /** Assignments the runner still accepts. */
  credit: number;
  /** Credit promised to entries being claimed right now. */
  reserved = 0;
  /** Results of this session not yet acknowledged. */
  pendingResults = 0;
  /** Called when the last pending result is acknowledged (graceful end of an input stream). */
  onIdle: (() => void) | undefined;

  constructor(init: SessionInit) {
    this.id = init.id;
    this.teamId = init.teamId;
    this.runnerId = init.runnerId;
    this.cluster = init.cluster;
    this.identifiers = init.identifiers;
    this.queues = init.queues;
    this.slots = init.slots;
    this.hardware = init.hardware;
    this.labels = init.labels;
    this.sdkVersion = init.sdkVersion;
    this.batches = init.batches ?? false;
    this.credit = init.slots;
  }

  /** Assignments that may be promised now. */
  get available(): number {
    return this.state === "active" ? Math.max(0, this.credit - this.reserved) : 0;
  }

  /** The most open credit a runner may hold: twice its slots, and never above 10,000. */
  get maxCredit(): number {
    return Math.min(this.slots * 2, 10_000);
  }

  send(message: NonNullable<MessageInitShape<typeof WorkResponseSchema>["message"]>): void {
    this.outbox.push(create(WorkResponseSchema, { message }));
  }

  /** Answers a WorkError and ends the stream with the same code. */
  fail(code: Code, message: string, err: unknown): void {
    this.send({ case: "error", value: { code, message } });
    this.outbox.end(err);
  }
}
