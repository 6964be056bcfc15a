// How an attempt is told to stop (its job canceled, its lease lost, its execution timeout, the
// runner shutting down). The AbortSignal a task sees is made when something first asks for it:
// Node's AbortController costs about as much as the runner's whole handling of a no-op task, and
// most attempts never look at theirs.

export class AttemptAbort {
  #controller: AbortController | undefined;
  #aborted = false;
  #reason: unknown;

  /** The attempt's signal, made on first use (already aborted when the attempt was). */
  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  get aborted(): boolean {
    return this.#aborted;
  }

  get reason(): unknown {
    return this.#reason;
  }

  /** Stops the attempt; the first reason stays, as with AbortController. */
  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
  }
}
