// One connected runner stream: who it is, what it registered, and the queue of messages going out
// to it. Its state has one owner each: the lifecycle (`state`) the session hub, the registration
// the hub through `reregister`, credit the CreditAccount, held leases the LeaseHoldings, pending
// results the result reporter. The Work handler drains `outbox`.
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import type { Code } from "@connectrpc/connect";
import { RunnerKind, WorkResponseSchema, type Hardware, type TaskIdentifier, type WorkResponse } from "@corral/proto";
import { AsyncQueue } from "@corral/wire";
import { CreditAccount } from "./session/credit-account.js";
import { HeldLeases } from "./session/lease-holdings.js";

export type { HeldLease } from "./session/lease-holdings.js";

export interface ClusterRef {
  id: string;
  slug: string;
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
  kind?: RunnerKind;
}

/** What the runner serves: replaced as a whole by Reregister. */
export interface Registration {
  readonly identifiers: TaskIdentifier[];
  /** Queue names (`<name>:<version>`) this runner may take tasks from, sorted. */
  readonly queues: string[];
  /** The last Reregister revision applied (0: Hello's). */
  readonly revision: number;
}

export class RunnerSession {
  readonly id: string;
  readonly teamId: string;
  readonly runnerId: string;
  readonly cluster: ClusterRef;
  readonly kind: RunnerKind;
  readonly slots: number;
  readonly hardware: Hardware | undefined;
  readonly labels: Record<string, string>;
  readonly sdkVersion: string;
  /** The runner reads WorkResponse.batch: queued messages go out together. */
  readonly batches: boolean;
  readonly #connectMs = Date.now();
  readonly outbox = new AsyncQueue<WorkResponse>();
  /** Written by LeaseHoldings only. */
  readonly leases = new HeldLeases();
  /** Changed through its methods only. */
  readonly account: CreditAccount;

  state: SessionState = "active";
  #registration: Registration;

  constructor(init: SessionInit) {
    this.id = init.id;
    this.teamId = init.teamId;
    this.runnerId = init.runnerId;
    this.cluster = init.cluster;
    this.kind = init.kind ?? RunnerKind.UNSPECIFIED;
    this.#registration = { identifiers: init.identifiers, queues: init.queues, revision: 0 };
    this.slots = init.slots;
    this.hardware = init.hardware;
    this.labels = init.labels;
    this.sdkVersion = init.sdkVersion;
    this.batches = init.batches ?? false;
    this.account = new CreditAccount(init.slots);
  }

  /** When the runner said Hello (a new Date each time: a Date held per session is 96 bytes more). */
  get connectTime(): Date {
    return new Date(this.#connectMs);
  }

  get registration(): Registration {
    return this.#registration;
  }

  get identifiers(): TaskIdentifier[] {
    return this.#registration.identifiers;
  }

  get queues(): string[] {
    return this.#registration.queues;
  }

  /** Replaces what the runner serves (the hub, on Reregister, with the dispatcher told). */
  reregister(registration: Registration): void {
    this.#registration = registration;
  }

  /** Assignments the runner still accepts. */
  get credit(): number {
    return this.account.open;
  }

  /** Assignments that may be promised now. */
  get available(): number {
    return this.account.available(this.state === "active");
  }

  /** The most open credit a runner may hold: twice its slots, and never above 10,000. */
  get maxCredit(): number {
    return this.account.max;
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
