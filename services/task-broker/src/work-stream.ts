// The answers of one Work stream once its session is open: the session's outbox, batched, as an
// iterator object. A runner's stream stays open for days, mostly idle; as async generators (the
// handler, its outgoing loop, the queue's chunks) each idle stream held three suspended frames,
// their promises and two listener closures. Here it holds this object and one pending promise;
// the call's signal calls it as its listener, the key watch one callback (no AbortSignal of its own).
import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { WorkResponseSchema, type WorkRequest, type WorkResponse } from "@corral/proto";
import { keyWatchOf, type KeyRevocation } from "@corral/server-kit";
import type { RunnerSession } from "./runner-session.js";
import type { SessionHub } from "./session-hub.js";

/** Messages per WorkResponse batch (an Assign is a few hundred bytes). */
const maxBatch = 256;

const done: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/** The stream's opening (Hello, then the session): its session and the rest of its input, or nothing (it ended). */
export type Opening = AsyncGenerator<WorkResponse, Opened | undefined>;

export interface Opened {
  session: RunnerSession;
  input: AsyncIterator<WorkRequest>;
}

export class WorkStream implements AsyncIterableIterator<WorkResponse> {
  readonly #hub: SessionHub;
  readonly #ctx: HandlerContext;
  /** Starts the session's input pump once it is open. */
  readonly #started: (opened: Opened) => void;
  #opening: Opening | undefined;
  #session: RunnerSession | undefined;
  #revocation: KeyRevocation | undefined;
  #closed = false;
  // Assigned here, not as named class fields: run by tsx (esbuild's keepNames), a named function
  // gets a property dictionary of its own (about 256 bytes per closure, per stream).
  readonly #onBatch: (r: IteratorResult<WorkResponse[], undefined>) => IteratorResult<WorkResponse>;
  readonly #onFail: (err: unknown) => never;
  readonly #onRevoked: () => void;

  constructor(hub: SessionHub, ctx: HandlerContext, opening: Opening, started: (opened: Opened) => void) {
    this.#hub = hub;
    this.#ctx = ctx;
    this.#opening = opening;
    this.#started = started;
    this.#onBatch = (r) => {
      if (r.done) {
        this.#end();
        return done;
      }
      const messages = r.value;
      return { done: false, value: messages.length === 1 ? messages[0]! : create(WorkResponseSchema, { message: { case: "batch", value: { messages } } }) };
    };
    this.#onFail = (err) => {
      this.#end();
      throw err;
    };
    this.#onRevoked = () => hub.revoked(this.#session!);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** What queued up while the last frame was written goes out as one batch. */
  next(): Promise<IteratorResult<WorkResponse>> {
    if (this.#closed) return Promise.resolve(done);
    const s = this.#session;
    if (!s) return this.#open();
    return s.outbox.nextBatch(s.batches ? maxBatch : 1).then(this.#onBatch, this.#onFail);
  }

  async return(): Promise<IteratorResult<WorkResponse>> {
    if (!this.#closed && !this.#stop()) await this.#opening?.return(undefined);
    return done;
  }

  async throw(err: unknown): Promise<IteratorResult<WorkResponse>> {
    if (!this.#closed && !this.#stop() && this.#opening) await this.#opening.throw(err);
    throw err;
  }

  /** Ends an open session (true); before one opened, only marks the stream closed (false). */
  #stop(): boolean {
    const s = this.#session;
    if (s) {
      s.outbox.stop();
      this.#end();
      return true;
    }
    this.#closed = true;
    return false;
  }

  /** The call ended (the runner left): the listener of its signal. */
  handleEvent(): void {
    if (this.#session) this.#hub.detach(this.#session);
  }

  async #open(): Promise<IteratorResult<WorkResponse>> {
    let r: IteratorResult<WorkResponse, Opened | undefined>;
    try {
      r = await this.#opening!.next();
    } catch (err) {
      this.#closed = true;
      throw err;
    }
    if (!r.done) return r;
    this.#opening = undefined;
    if (!r.value) {
      this.#closed = true;
      return done;
    }
    this.#watch(r.value.session);
    this.#started(r.value);
    return this.next();
  }

  /**
   * Ends the session when the runner goes away, and at once when its API key is revoked (nothing
   * more is assigned, results sent from then on are not taken, and its leases expire and go to
   * other runners as for any dropped stream).
   */
  #watch(s: RunnerSession): void {
    this.#session = s;
    this.#ctx.signal.addEventListener("abort", this);
    const revocation = keyWatchOf(this.#ctx);
    this.#revocation = revocation;
    if (revocation?.revoked) this.#onRevoked();
    revocation?.onRevoked(this.#onRevoked);
  }

  /** The stream is over: stop watching, and the session ends (its leases stay in Redis). */
  #end(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#ctx.signal.removeEventListener("abort", this);
    this.#revocation?.offRevoked(this.#onRevoked);
    this.#hub.detach(this.#session!);
  }
}
