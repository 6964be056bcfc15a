// The outgoing half of one agent stream: commands pushed from anywhere on this replica, pulled by
// the stream's generator. Bounded: an agent that stops reading is cut off, not buffered forever.
import { AsyncQueue } from "@corral/wire";

export class CommandQueue<T> extends AsyncQueue<T> {
  readonly #max: number;

  constructor(max: number) {
    super();
    this.#max = max;
  }

  /** False once ended; ends the queue with `overflow()` when the agent is too far behind. */
  override push(value: T, overflow: () => unknown = () => new Error("the agent is too far behind")): boolean {
    if (!this.closed && this.size >= this.#max) {
      this.end(overflow());
      return false;
    }
    return super.push(value);
  }
}
