// A push-based async iterable: the runner's outgoing half of the Work stream.

export class AsyncQueue<T> implements AsyncIterable<T> {
  readonly #items: T[] = [];
  #wake: (() => void) | undefined;
  #closed = false;

  get closed(): boolean {
    return this.#closed;
  }

  /** Queues a value; false (and dropped) once the queue is closed. */
  push(value: T): boolean {
    if (this.#closed) return false;
    this.#items.push(value);
    this.#signal();
    return true;
  }

  /** Ends the iteration after the queued values. Safe to call twice. */
  close(): void {
    this.#closed = true;
    this.#signal();
  }

  #signal(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  /** Like iterating, but each step takes everything queued by then (at most `max` values). */
  async *chunks(max: number): AsyncGenerator<T[]> {
    try {
      for (;;) {
        if (this.#items.length > 0) {
          yield this.#items.splice(0, max);
          continue;
        }
        if (this.#closed) return;
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
        });
      }
    } finally {
      this.#closed = true;
      this.#items.length = 0;
    }
  }

  // A generator, because connect's stream plumbing calls throw() and return() on the iterator.
  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    for await (const [value] of this.chunks(1)) yield value!;
  }
}
