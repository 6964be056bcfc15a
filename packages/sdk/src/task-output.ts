// Task outputs: what execute() returns, encoded for the wire (JSON, or bytes for a Uint8Array),
// checked against the inline limit before it is sent, and decoded for readers.
import { create } from "@bufbuild/protobuf";
import { OutputEncoding, TaskOutputSchema, type TaskOutput } from "@corral/proto";

/** The largest output stored inline unless the runner says otherwise (CORRAL_MAX_OUTPUT_BYTES). */
export const DEFAULT_MAX_OUTPUT_BYTES = 1024 * 1024;

/** The runner's limit: CORRAL_MAX_OUTPUT_BYTES when set, else 1 MiB. */
export function maxOutputBytesFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.CORRAL_MAX_OUTPUT_BYTES;
  const n = raw === undefined || raw === "" ? NaN : Number(raw);
  return Number.isInteger(n) && n > 0 ? n : DEFAULT_MAX_OUTPUT_BYTES;
}

/** The error of an output over the limit (the same words job-service uses). */
export class OutputTooLargeError extends Error {
  readonly size: number;
  readonly limit: number;
  constructor(size: number, limit: number) {
    super(`the task's output is ${size} bytes, over the limit of ${limit} bytes (CORRAL_MAX_OUTPUT_BYTES)`);
    this.name = "OutputTooLargeError";
    this.size = size;
    this.limit = limit;
  }
}

/** The error of an output that is not JSON-serialisable. */
export class OutputNotSerializableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "OutputNotSerializableError";
  }
}

/** Encodes what execute() returned; undefined is no output. Throws when it cannot be stored. */
export function encodeOutput(value: unknown, maxBytes: number): TaskOutput | undefined {
  if (value === undefined) return undefined;
  let output: TaskOutput;
  if (value instanceof Uint8Array) {
    output = create(TaskOutputSchema, { encoding: OutputEncoding.BYTES, data: value });
  } else {
    let json: string | undefined;
    try {
      json = JSON.stringify(value);
    } catch (err) {
      throw new OutputNotSerializableError(`the task's output cannot be serialised as JSON: ${(err as Error).message}`, { cause: err });
    }
    if (json === undefined) throw new OutputNotSerializableError("the task's output is not serialisable as JSON");
    output = create(TaskOutputSchema, { encoding: OutputEncoding.JSON, data: new TextEncoder().encode(json) });
  }
  if (output.data.length > maxBytes) throw new OutputTooLargeError(output.data.length, maxBytes);
  return output;
}

/**
 * The key under which an error thrown from execute() carries what its failed attempt leaves to
 * read (ScriptFailedError: the exit code and tails). A registered symbol, so an error made by
 * another copy of the SDK (a release bundle's) is read the same way.
 */
export const failureOutputKey: unique symbol = Symbol.for("corral.failureOutput") as never;

/** What a failed attempt's error carries to store as its output; undefined when nothing. */
export function failureOutputOf(err: unknown): unknown {
  return typeof err === "object" && err !== null ? (err as { [failureOutputKey]?: unknown })[failureOutputKey] : undefined;
}

/** Decodes an output: JSON as its value, bytes as a Uint8Array, none as undefined. */
export function decodeOutput(output: TaskOutput | undefined): unknown {
  if (!output) return undefined;
  if (output.encoding === OutputEncoding.BYTES) return output.data;
  if (output.encoding === OutputEncoding.JSON) return JSON.parse(new TextDecoder().decode(output.data));
  return output.data.length === 0 ? undefined : output.data;
}
