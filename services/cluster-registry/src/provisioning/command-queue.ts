// The outgoing half of one agent stream: commands pushed from anywhere on this replica, pulled by
// the stream's generator. Bounded: an agent that stops reading is cut off, not buffered forever.
export class CommandQueue<T> {
  readonly #items: T[] = [];
  #wake: (() => void) | undefined;
  #closed = false;
  #error: unknown;

  constructor(private readonly max: number) {}

  /** False once ended; ends the queue with `overflow` when the agent is too far behind. */
  push(value: T, overflow: () => unknown): boolean {
    if (this.#closed) return false;
    if (this.#items.length >= this.max) {
      this.end(overflow());
      return false;
    }
    this.#items.push(value);
    this.#signal();
    return true;
  }

  /** Safe to call twice; the consumer gets what is queued, then finishes (or throws `err`). */
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

  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    try {
      for (;;) {
        const next = this.#items.shift();
        if (next !== undefined) {
          yield next;
          continue;
        }
        if (this.#closed) {
          if (this.#error !== undefined) throw this.#error;
          return;
        }
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
        });
      }
    } finally {
      this.#closed = true;
      this.#items.length = 0;
    }
  }
}
