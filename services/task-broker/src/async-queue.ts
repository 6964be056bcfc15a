// An unbounded push/pull queue: the broker pushes a session's outgoing messages from anywhere, the
// Work handler's generator pulls them. `end(err)` makes the consumer finish (or throw).
export class AsyncQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private waiter: (() => void) | undefined;
  private ended = false;
  private error: unknown;

  get closed(): boolean {
    return this.ended;
  }

  push(item: T): boolean {
    if (this.ended) return false;
    this.items.push(item);
    this.wake();
    return true;
  }

  /** Stops accepting; the consumer gets what is queued, then finishes (or throws `err`). */
  end(err?: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.error = err;
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  /** Like iterating, but each step takes everything queued by then (at most `max` items). */
  async *chunks(max: number): AsyncGenerator<T[]> {
    for (;;) {
      if (this.items.length > 0) {
        yield this.items.splice(0, max);
        continue;
      }
      if (this.ended) {
        if (this.error !== undefined) throw this.error;
        return;
      }
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for await (const [item] of this.chunks(1)) yield item!;
  }
}
