// The request messages of a streaming gRPC call, out of their envelopes, read from the Node
// request as the handler asks for them. An object rather than an async generator over Node's
// readable iterator: a stream idle for days holds this object and one pending promise instead of
// two suspended generators and the end-of-stream watcher's half-dozen closures. It behaves as
// that generator pair did: connect-es' errors for bad framing; the request is destroyed when the
// consumer stops reading early (return, or a framing error), not when the stream ends or fails.
import type http2 from "node:http2";
import type { DescMessage } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { parse } from "./unary-fast-path.js";

const notStarted = 0;
const reading = 1;
const finished = 2;

const empty = Buffer.alloc(0);
const done: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

export class EnvelopeReader<T> implements AsyncIterableIterator<T> {
  readonly #req: http2.Http2ServerRequest;
  readonly #desc: DescMessage;
  readonly #readMaxBytes: number;
  #timeoutError: ConnectError | undefined;
  #state = notStarted;
  #buffer: Buffer = empty;
  /** How the request ended: undefined while open, null at its end, else its error. */
  #ended: unknown = undefined;
  #wake: (() => void) | undefined;
  // The request's listeners. Assigned in the constructor, not as named class fields: run by tsx
  // (esbuild's keepNames), a named function gets its name set at creation, which gives each one a
  // property dictionary of its own (about 256 bytes more per closure, per stream).
  readonly #onReadable: () => void;
  readonly #onEnd: () => void;
  readonly #onError: (err: Error) => void;
  readonly #onClose: () => void;
  readonly #again: () => IteratorResult<T> | Promise<IteratorResult<T>>;

  constructor(req: http2.Http2ServerRequest, desc: DescMessage, readMaxBytes: number, timeoutError: ConnectError | undefined) {
    this.#req = req;
    this.#desc = desc;
    this.#readMaxBytes = readMaxBytes;
    this.#timeoutError = timeoutError;
    this.#again = () => this.#step();
    this.#onReadable = () => this.#signal();
    this.#onEnd = () => {
      if (this.#ended === undefined) this.#ended = null;
      this.#signal();
    };
    this.#onError = (err) => {
      if (this.#ended === undefined) this.#ended = err;
      this.#signal();
    };
    this.#onClose = () => {
      // Closed before its end: as Node's stream iterator reports it.
      if (this.#ended === undefined && !this.#req.readableEnded) this.#ended = prematureClose();
      this.#signal();
    };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<T>> {
    try {
      const step = this.#step();
      return step instanceof Promise ? step : Promise.resolve(step);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** The next message if the buffer or the request has it; else a promise of it (one, not a suspended frame). */
  #step(): IteratorResult<T> | Promise<IteratorResult<T>> {
    if (this.#state === finished) return done;
    if (this.#state === notStarted) {
      // Raised on the first read, so it is answered as the call's status (as connect-es does).
      if (this.#timeoutError) {
        this.#state = finished;
        throw this.#timeoutError;
      }
      this.#listen();
    }
    for (;;) {
      let message: T | undefined;
      try {
        message = this.#take();
      } catch (err) {
        this.#stop(true);
        throw err;
      }
      if (message !== undefined) return { done: false, value: message };
      const chunk = this.#req.destroyed ? null : (this.#req.read() as Buffer | null);
      if (chunk !== null) {
        this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
        continue;
      }
      if (this.#ended !== undefined) {
        const incomplete = this.#buffer.length > 0;
        this.#stop(false);
        if (this.#ended !== null) throw this.#ended;
        if (incomplete) throw new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument);
        return done;
      }
      return new Promise<void>((resolve) => (this.#wake = resolve)).then(this.#again);
    }
  }

  async return(): Promise<IteratorResult<T>> {
    this.#stop(this.#state === reading);
    return done;
  }

  async throw(err: unknown): Promise<IteratorResult<T>> {
    this.#stop(this.#state === reading);
    throw err;
  }

  /** The next whole message in the buffer; undefined when it has none yet. */
  #take(): T | undefined {
    const buffer = this.#buffer;
    if (buffer.length < 5) return undefined;
    const length = buffer.readUInt32BE(1);
    if (length > this.#readMaxBytes) {
      throw new ConnectError(`message size ${length} is larger than configured readMaxBytes ${this.#readMaxBytes}`, Code.ResourceExhausted);
    }
    if (buffer.length < 5 + length) return undefined;
    const flags = buffer[0]!;
    const data = buffer.subarray(5, 5 + length);
    this.#buffer = buffer.length === 5 + length ? empty : buffer.subarray(5 + length);
    if ((flags & 1) === 1) throw new ConnectError("received compressed envelope, but do not know how to decompress", Code.Internal);
    return parse(this.#desc, data) as T;
  }

  #listen(): void {
    this.#state = reading;
    const req = this.#req;
    req.on("readable", this.#onReadable);
    req.on("end", this.#onEnd);
    req.on("error", this.#onError);
    req.on("close", this.#onClose);
  }

  /** Stops reading; `destroy`: the consumer left before the end (Node's stream iterator destroys then). */
  #stop(destroy: boolean): void {
    if (this.#state === reading) {
      const req = this.#req;
      req.off("readable", this.#onReadable);
      req.off("end", this.#onEnd);
      req.off("error", this.#onError);
      req.off("close", this.#onClose);
    }
    this.#state = finished;
    this.#buffer = empty;
    if (destroy) this.#req.destroy();
  }

  #signal(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

function prematureClose(): Error {
  return Object.assign(new Error("Premature close"), { code: "ERR_STREAM_PREMATURE_CLOSE" });
}
