// What the interceptors put around a stream's messages (error mapping, the end of a call for the
// log, revocation, validation), as small objects rather than async generators: a stream open for
// days holds each layer's object and one pending promise, where a suspended generator held its
// frame, its request queue, its prototype (a generator function made per call has its own) and
// the promises of the layers under it. Each keeps the generator's behaviour it replaces: the
// source is opened on the first read, return() before that touches nothing, and an error is
// mapped where the generator's catch mapped it.
import type { WatchedStream } from "./stream-key-watch.js";

const done: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

const notStarted = 0;
const open = 1;
const closed = 2;

export interface TapHooks {
  /** Maps what the source throws (from next, return or throw) before it goes on. */
  mapError?(err: unknown): unknown;
  /**
   * The stream ended: `err` undefined at its end, the (mapped) error it failed with, or
   * `canceled` true when the consumer returned early.
   */
  onEnd?(err: unknown, canceled: boolean): void;
}

/** `yield* source` inside try/catch/finally: the messages pass through untouched. */
export class StreamTap<T> implements AsyncIterableIterator<T> {
  readonly #source: AsyncIterable<T>;
  readonly #hooks: TapHooks;
  /** A tap that would have wrapped this one (see `around`): it sees what this one passes on. */
  #outer: TapHooks | undefined;
  #it: AsyncIterator<T> | undefined;
  #state = notStarted;
  // Assigned here, not as named class fields: see keepNames in envelope-reader.ts.
  readonly #onStep: (r: IteratorResult<T>) => IteratorResult<T>;
  readonly #onError: (err: unknown) => never;

  /**
   * `hooks` around `source`: when the source is a tap nobody read yet, it takes them as its outer
   * hooks (one object and one pending promise per stream instead of two), which behaves as a tap
   * around it would: the outer hooks see the inner mapping's errors and the same ends.
   */
  static around<T>(source: AsyncIterable<T>, hooks: TapHooks): AsyncIterable<T> {
    // Only an outer watcher of ends over an inner mapper of errors (the log over the error mapping):
    // then each sees exactly what it saw as two taps.
    const fits = !hooks.mapError && source instanceof StreamTap && !source.#hooks.onEnd;
    if (fits && source.#state === notStarted && source.#outer === undefined) {
      source.#outer = hooks;
      return source as StreamTap<T>;
    }
    return new StreamTap(source, hooks);
  }

  constructor(source: AsyncIterable<T>, hooks: TapHooks) {
    this.#source = source;
    this.#hooks = hooks;
    this.#onStep = (r) => (r.done ? this.#end(undefined, false) : r);
    this.#onError = (err) => {
      throw this.#fail(err);
    };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<T>> {
    if (this.#state === closed) return Promise.resolve(done);
    if (this.#state === notStarted) {
      this.#state = open;
      try {
        this.#it = this.#source[Symbol.asyncIterator]();
      } catch (err) {
        return Promise.reject(this.#fail(err));
      }
    }
    return this.#it!.next().then(this.#onStep, this.#onError);
  }

  return(value?: unknown): Promise<IteratorResult<T>> {
    if (this.#state !== open) {
      this.#state = closed;
      return Promise.resolve({ done: true, value } as IteratorReturnResult<T>);
    }
    const it = this.#it!;
    if (!it.return) return Promise.resolve(this.#end(undefined, true, value));
    return it.return(value).then((r) => (r.done ? this.#end(undefined, true, r.value) : r), this.#onError);
  }

  throw(err: unknown): Promise<IteratorResult<T>> {
    if (this.#state !== open) {
      this.#state = closed;
      return Promise.reject(err);
    }
    const it = this.#it!;
    if (!it.throw) {
      // What yield* does with a source that cannot take a throw: close it, fail with a TypeError.
      const fail = () => Promise.reject(this.#fail(new TypeError("The iterator does not provide a 'throw' method")));
      return it.return ? it.return().then(fail, this.#onError) : fail();
    }
    return it.throw(err).then(this.#onStep, this.#onError);
  }

  #end(err: unknown, canceled: boolean, value?: unknown): IteratorReturnResult<T> {
    this.#state = closed;
    this.#hooks.onEnd?.(err, canceled);
    this.#outer?.onEnd?.(err, canceled);
    return { done: true, value } as IteratorReturnResult<T>;
  }

  #fail(err: unknown): unknown {
    let mapped = this.#hooks.mapError ? this.#hooks.mapError(err) : err;
    if (this.#outer?.mapError) mapped = this.#outer.mapError(mapped);
    this.#end(mapped, false);
    return mapped;
  }
}

/**
 * The request stream with each message checked (a throw from `check` closes the source, as a
 * for-await loop does) and what the source throws mapped by `mapError`.
 */
export class CheckedStream<T, S = unknown> implements AsyncIterableIterator<T> {
  readonly #source: AsyncIterable<T>;
  readonly #check: (schema: S, message: T) => void;
  readonly #schema: S;
  readonly #mapError: (err: unknown) => unknown;
  #it: AsyncIterator<T> | undefined;
  #state = notStarted;
  readonly #onStep: (r: IteratorResult<T>) => IteratorResult<T> | Promise<never>;
  readonly #onError: (err: unknown) => never;

  /** `check(schema, message)` for each message (no closure per stream over the schema). */
  constructor(source: AsyncIterable<T>, check: (schema: S, message: T) => void, schema: S, mapError: (err: unknown) => unknown) {
    this.#source = source;
    this.#check = check;
    this.#schema = schema;
    this.#mapError = mapError;
    this.#onStep = (r) => this.#step(r);
    this.#onError = (err) => {
      this.#state = closed;
      throw mapError(err);
    };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<T>> {
    if (this.#state === closed) return Promise.resolve(done);
    let it = this.#it;
    if (!it) {
      this.#state = open;
      try {
        it = this.#it = this.#source[Symbol.asyncIterator]();
      } catch (err) {
        this.#state = closed;
        return Promise.reject(this.#mapError(err));
      }
    }
    return it.next().then(this.#onStep, this.#onError);
  }

  #step(r: IteratorResult<T>): IteratorResult<T> | Promise<never> {
    if (r.done) {
      this.#state = closed;
      return done;
    }
    try {
      this.#check(this.#schema, r.value);
    } catch (err) {
      // The loop's body threw: the source is closed (its own failure to close is not reported).
      this.#state = closed;
      const closing = this.#it!.return?.();
      const fail = () => Promise.reject(this.#mapError(err));
      return closing ? closing.then(fail, fail) : fail();
    }
    return r;
  }

  async return(value?: unknown): Promise<IteratorResult<T>> {
    const wasOpen = this.#state === open;
    this.#state = closed;
    if (wasOpen) {
      try {
        await this.#it!.return?.();
      } catch (err) {
        throw this.#mapError(err);
      }
    }
    return { done: true, value } as IteratorReturnResult<T>;
  }

  async throw(err: unknown): Promise<IteratorResult<T>> {
    // Thrown at the loop's yield: the source is closed, the error mapped by the catch around it.
    const wasOpen = this.#state === open;
    this.#state = closed;
    if (!wasOpen) throw err;
    try {
      await this.#it!.return?.();
    } catch {
      // the throw wins
    }
    throw this.#mapError(err);
  }
}

/**
 * Ends `source` with `watched`'s reason once its key is revoked, even while the handler waits for
 * something to send; the handler is asked to return (its `finally` runs) as soon as it can. One
 * revocation listener for the whole stream; the source is not closed by an early return() (the
 * call's own signal ends the handler), only after a revocation.
 */
export class RevocableStream<T> implements AsyncIterableIterator<T> {
  readonly #source: AsyncIterable<T>;
  readonly #watched: WatchedStream;
  #it: AsyncIterator<T> | undefined;
  #state = notStarted;
  /** The step in flight: settles with the source's answer or the revocation, whichever is first. */
  #resolve: ((r: IteratorResult<T>) => void) | undefined;
  #reject: ((err: unknown) => void) | undefined;
  readonly #onStep: (r: IteratorResult<T>) => void;
  readonly #onError: (err: unknown) => void;
  readonly #onAbort: () => void;

  constructor(source: AsyncIterable<T>, watched: WatchedStream) {
    this.#source = source;
    this.#watched = watched;
    this.#onStep = (r) => this.#step(r);
    this.#onError = (err) => this.#fail(err);
    this.#onAbort = () => this.#fail(watched.reason);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<T>> {
    if (this.#state === closed) return Promise.resolve(done);
    const watched = this.#watched;
    if (this.#state === notStarted) {
      this.#state = open;
      try {
        this.#it = this.#source[Symbol.asyncIterator]();
      } catch (err) {
        this.#finish();
        return Promise.reject(err);
      }
      watched.onRevoked(this.#onAbort);
    }
    if (watched.revoked) {
      this.#finish();
      return Promise.reject(watched.reason);
    }
    const step = new Promise<IteratorResult<T>>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.#it!.next().then(this.#onStep, this.#onError);
    return step;
  }

  return(value?: unknown): Promise<IteratorResult<T>> {
    if (this.#state === open) this.#finish();
    this.#state = closed;
    return Promise.resolve({ done: true, value } as IteratorReturnResult<T>);
  }

  throw(err: unknown): Promise<IteratorResult<T>> {
    if (this.#state === open) this.#finish();
    this.#state = closed;
    return Promise.reject(err);
  }

  /** The generator's finally: stop watching; after a revocation, ask the source to return. */
  #finish(): void {
    this.#state = closed;
    const watched = this.#watched;
    watched.offRevoked(this.#onAbort);
    watched.release();
    if (watched.revoked) this.#it?.return?.(undefined).catch(() => {});
  }

  #step(r: IteratorResult<T>): void {
    const resolve = this.#resolve;
    if (!resolve) return; // already ended by the revocation
    this.#resolve = this.#reject = undefined;
    if (r.done) {
      this.#finish();
      resolve(done);
    } else resolve(r);
  }

  #fail(err: unknown): void {
    const reject = this.#reject;
    if (!reject) return;
    this.#resolve = this.#reject = undefined;
    this.#finish();
    reject(err);
  }
}
