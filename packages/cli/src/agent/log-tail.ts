// A runner's recent output, bounded: the last lines it wrote to stdout and stderr, and which of
// them still wait to be shipped to the registry. A runner that floods its output costs the agent
// at most `maxLines` lines of `maxLineChars` each; lines dropped before shipping are counted.

export interface TailLine {
  time: Date;
  stream: "stdout" | "stderr";
  text: string;
}

export interface LogTailOptions {
  /** Lines kept (default 1000). */
  maxLines?: number;
  /** Longer lines are cut (default 8192, the contract's LogLine.text limit). */
  maxLineChars?: number;
}

export class LogTail {
  readonly #lines: TailLine[] = [];
  readonly #max: number;
  readonly #maxChars: number;
  /** How many of the kept lines (the newest ones) were not shipped yet. */
  #unshipped = 0;
  #dropped = 0;
  /** Per stream: text after the last newline, waiting for the rest of its line. */
  readonly #partial = { stdout: "", stderr: "" };

  constructor(options: LogTailOptions = {}) {
    this.#max = options.maxLines ?? 1000;
    this.#maxChars = options.maxLineChars ?? 8192;
  }

  /** Lines never shipped because newer ones pushed them out first. */
  get dropped(): number {
    return this.#dropped;
  }

  get size(): number {
    return this.#lines.length;
  }

  /** Appends a chunk of a stream's output, split into lines. */
  write(stream: "stdout" | "stderr", chunk: string, now = new Date()): void {
    const parts = (this.#partial[stream] + chunk).split("\n");
    let rest = parts.pop()!;
    // A line without an end in sight is cut rather than grown without bound.
    while (rest.length > this.#maxChars) {
      parts.push(rest.slice(0, this.#maxChars));
      rest = rest.slice(this.#maxChars);
    }
    this.#partial[stream] = rest;
    for (const p of parts) this.#push({ time: now, stream, text: p.replace(/\r$/, "") });
  }

  /** Ends both streams: a last line without a newline is kept. */
  flush(now = new Date()): void {
    for (const stream of ["stdout", "stderr"] as const) {
      if (this.#partial[stream] !== "") this.#push({ time: now, stream, text: this.#partial[stream] });
      this.#partial[stream] = "";
    }
  }

  /** The kept lines, oldest first. */
  lines(): TailLine[] {
    return [...this.#lines];
  }

  /** Takes up to `max` unshipped lines, oldest first, and marks them shipped. */
  takeUnshipped(max: number): TailLine[] {
    const start = this.#lines.length - this.#unshipped;
    const taken = this.#lines.slice(start, start + max);
    this.#unshipped -= taken.length;
    return taken;
  }

  get unshippedCount(): number {
    return this.#unshipped;
  }

  #push(line: TailLine): void {
    // Postgres text cannot hold NUL; lone surrogates are not valid UTF-8 either.
    const text = (line.text.replace(/\0/g, "\uFFFD").slice(0, this.#maxChars) as string & { toWellFormed(): string }).toWellFormed();
    this.#lines.push({ ...line, text });
    this.#unshipped++;
    if (this.#lines.length > this.#max) {
      this.#lines.shift();
      if (this.#unshipped > this.#lines.length) {
        this.#unshipped = this.#lines.length;
        this.#dropped++;
      }
    }
  }
}
