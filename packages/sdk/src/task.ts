// Tasks: a class with a static identifier, an input serialised as JSON (or binary protobuf when
// the class declares an input schema), and execute(ctx).
import { fromBinary, toBinary, type DescMessage, type Message } from "@bufbuild/protobuf";
import type { ExecutionContext } from "./execution-context.js";
import type { SchedulingOptions } from "./scheduling.js";
import { ValidationError } from "./errors.js";
import { validateIdentifier, type TaskIdentifierInit } from "./identifier.js";

/**
 * A unit of work. Subclass it, give it an identifier and implement `execute`.
 *
 * @example
 * class Resize extends Task<{ url: string; width: number }, { bytes: number }> {
 *   static override identifier = { name: "images/Resize", version: "v1.0" };
 *   override async execute(ctx: ExecutionContext) {
 *     ctx.logger.info(`resizing ${this.input.url}`);
 *     return { bytes: 1234 };
 *   }
 * }
 * const { bytes } = await client.jobs().run("resize", new Resize({ url: "s3://...", width: 640 }));
 */
export abstract class Task<I = unknown, O = unknown> {
  /** Name and version (`vMAJOR.MINOR`); defaults to the class name and `v0.0`. */
  static identifier?: TaskIdentifierInit;
  /** When set, the input is a message of this schema and travels as binary protobuf. */
  static inputSchema?: DescMessage;
  /**
   * Defaults for every submission of this task (a submission's own options win).
   *
   * @example
   * class Fetch extends Task<{ url: string }> {
   *   static override scheduling = { timeout: "30s", retry: { max: 5, backoff: { initial: "1s", max: "1m", jitter: 0.2 } } };
   * }
   */
  static scheduling?: TaskScheduling;

  readonly input: I;

  // Runners construct tasks with the decoded input only, so subclasses keep this signature.
  constructor(...args: undefined extends I ? [input?: I] : [input: I]) {
    this.input = args[0] as I;
  }

  /**
   * Runs the task. What it returns (JSON-serialisable, or a Uint8Array) is stored as the
   * attempt's output: `jobs().result()` reads a root's, `ctx.outputOf()` a dependency's.
   */
  abstract execute(ctx: ExecutionContext): Promise<O> | O;

  /** @internal Type-only: the output type, for `jobs().run()` and `ctx.outputOf()`. */
  declare readonly __output?: O;
}

/** The output type of a task class or instance. */
export type OutputOf<T> = T extends Task<any, infer O> ? Awaited<O> : T extends abstract new (...args: any[]) => Task<any, infer O> ? Awaited<O> : unknown;

/** A task class as runners register it. */
export type TaskClass<I = any, O = any> = (new (input: I) => Task<I, O>) & {
  identifier?: TaskIdentifierInit;
  inputSchema?: DescMessage;
  scheduling?: TaskScheduling;
  readonly name: string;
};

/** The identifier of a task class (or of an instance's class). */
export function taskIdentifier(task: TaskClass | Task<unknown>): TaskIdentifierInit {
  const cls = (typeof task === "function" ? task : task.constructor) as TaskClass;
  const id = Object.prototype.hasOwnProperty.call(cls, "identifier") && cls.identifier
    ? cls.identifier
    : { name: cls.name, version: "v0.0" };
  return validateIdentifier({ name: id.name, version: id.version });
}

/** A task class's scheduling defaults: SchedulingOptions plus maxRetries. */
export type TaskScheduling = SchedulingOptions & { maxRetries?: number };

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Serialises a task's input: binary protobuf with an input schema, else JSON (empty for undefined). */
export function serializeTaskInput(task: Task<unknown>): Uint8Array {
  const cls = task.constructor as TaskClass;
  if (cls.inputSchema) {
    const input = task.input as Message | undefined;
    if (input === undefined) return new Uint8Array(0);
    if (typeof input !== "object" || input === null || (input as { $typeName?: string }).$typeName !== cls.inputSchema.typeName) {
      throw ValidationError.field("input", `${cls.name} expects a ${cls.inputSchema.typeName} message`);
    }
    return toBinary(cls.inputSchema, input);
  }
  if (task.input === undefined) return new Uint8Array(0);
  let json: string | undefined;
  try {
    json = JSON.stringify(task.input);
  } catch (err) {
    throw new ValidationError(`input of ${cls.name} cannot be serialised as JSON: ${(err as Error).message}`, {
      cause: err,
      violations: [{ field: "input", description: "not serialisable as JSON" }],
    });
  }
  if (json === undefined) throw ValidationError.field("input", `input of ${cls.name} is not serialisable as JSON`);
  return encoder.encode(json);
}

/** Decodes an input the way serializeTaskInput encoded it for this class. */
export function deserializeTaskInput(cls: TaskClass, bytes: Uint8Array): unknown {
  if (cls.inputSchema) return fromBinary(cls.inputSchema, bytes);
  if (bytes.length === 0) return undefined;
  return JSON.parse(decoder.decode(bytes));
}

/** Creates the task a runner executes for an assignment. */
export function instantiateTask(cls: TaskClass, bytes: Uint8Array): Task<unknown> {
  return new cls(deserializeTaskInput(cls, bytes));
}
