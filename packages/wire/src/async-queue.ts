// An unbounded push/pull queue for the outgoing half of a Work stream: the runner's (SDK) and each
// runner session's (broker) messages are pushed from anywhere and pulled by the stream's
// generator, in batches when the caller asks. `end(err)` makes the consumer finish, or throw.
export class AsyncQueue<T> implements AsyncIterable<T> {
  readonly #items: T[] = [];
  #wake: (() => void) | undefined;
  #closed = false;
  #error: unknown;

  get closed(): boolean {
    return this.#closed;
  }

  /** Values queued and not yet pulled: a producer that must stay bounded checks this. */
  get size(): number {
    return this.#items.length;
  }

  /** Queues a value; false (and dropped) once the queue has ended or its consumer stopped. */
  push(value: T): boolean {
    if (this.#closed) return false;
    this.#items.push(value);
    this.#signal();
    return true;
  }

  /** Stops accepting; the consumer gets what is queued, then finishes (or throws `err`). Safe to call twice. */
  end(err?: unknown): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#error = err;
    this.#signal();
  }

  #signal(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  /**
   * The next step of `chunks(max)` without a generator: for a consumer that holds the queue for
   * days (a broker's idle runner stream), one pending promise instead of a suspended generator.
   * The queue has one consumer; it calls `stop()` when it leaves before the end.
   */
  nextBatch(max: number): Promise<IteratorResult<T[], undefined>> {
    if (this.#items.length > 0) return Promise.resolve({ done: false, value: this.#items.splice(0, max) });
    if (this.#closed) {
      const error = this.#error;
      this.stop();
      return error !== undefined ? Promise.reject(error) : Promise.resolve({ done: true, value: undefined });
    }
    return new Promise<void>((resolve) => {
      this.#wake = resolve;
    }).then(() => this.nextBatch(max));
  }

  /** The consumer is gone (done, failed, or left early): later pushes are refused (as `chunks` ends). */
  stop(): void {
    this.#closed = true;
    this.#items.length = 0;
  }

  /** Like iterating, but each step takes everything queued by then (at most `max` values). */
  async *chunks(max: number): AsyncGenerator<T[]> {
    try {
      for (;;) {
        const next = await this.nextBatch(max);
        if (next.done) return;
        yield next.value;
      }
    } finally {
      this.stop();
    }
  }

  // A generator, because connect's stream plumbing calls throw() and return() on the iterator.
  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    for await (const [value] of this.chunks(1)) yield value!;
  }
}
