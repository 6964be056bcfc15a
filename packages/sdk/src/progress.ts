// Progress indicators a task reports while it runs and with its result: per label, a total and a
// done count.
import { create } from "@bufbuild/protobuf";
import { ProgressIndicatorSchema, type ProgressIndicator } from "@corral/proto";
import { ValidationError } from "./errors.js";
import { checkStorableText } from "./storable-text.js";

/** One indicator: `add` grows the total, `done` counts finished work. */
export interface Progress {
  readonly label: string;
  /** Adds `n` (default 1) to the total amount of work. */
  add(n?: number): Progress;
  /** Marks `n` (default 1) units of work as done. */
  done(n?: number): Progress;
  readonly total: number;
  readonly completed: number;
}

function count(n: number, what: string): number {
  if (!Number.isSafeInteger(n) || n < 0) throw ValidationError.field(what, "must be a whole number >= 0");
  return n;
}

export class ProgressRecorder {
  /** Made with the first indicator: most tasks report none. */
  #indicators: Map<string, { total: number; done: number }> | undefined;
  readonly #onChange: (() => void) | undefined;

  /** `onChange` is called after every change (live progress: the runner notes it and sends it later). */
  constructor(onChange?: () => void) {
    this.#onChange = onChange;
  }

  get(label: string): Progress {
    if (new TextEncoder().encode(label).length > 256) throw ValidationError.field("progress.label", "is longer than 256 bytes");
    checkStorableText("progress.label", label);
    const indicators = (this.#indicators ??= new Map());
    let entry = indicators.get(label);
    if (!entry) indicators.set(label, (entry = { total: 0, done: 0 }));
    const e = entry;
    const changed = this.#onChange;
    const progress: Progress = {
      label,
      add(n = 1) {
        e.total += count(n, "progress.add");
        changed?.();
        return progress;
      },
      done(n = 1) {
        e.done += count(n, "progress.done");
        changed?.();
        return progress;
      },
      get total() {
        return e.total;
      },
      get completed() {
        return e.done;
      },
    };
    return progress;
  }

  toProto(): ProgressIndicator[] {
    if (!this.#indicators) return [];
    return [...this.#indicators].map(([label, e]) =>
      create(ProgressIndicatorSchema, { label, total: BigInt(e.total), done: BigInt(e.done) }),
    );
  }
}
