// Turns tasks into the TaskSubmission messages that SubmitJob and Completed carry.
import { create } from "@bufbuild/protobuf";
import { TaskSubmissionSchema, type TaskSubmission } from "@corral/proto";
import { ValidationError } from "./errors.js";
import { checkStorableText } from "./storable-text.js";
import { validateIdentifier, type TaskIdentifierInit } from "./identifier.js";
import { gateFields, schedulingFields, type SchedulingOptions } from "./scheduling.js";
import { serializeTaskInput, taskIdentifier, type Task, type TaskClass } from "./task.js";

export interface SubmissionOptions extends SchedulingOptions {
  /** Another cluster of the team to run on; by default the parent's (or the job's). */
  cluster?: string;
  maxRetries?: number;
  /** A failure does not fail the job: the task becomes FAILED_OPTIONAL. */
  optional?: boolean;
  /** Shown in listings and graphs; defaults to the task's name on the server. */
  display?: string;
}

function checkOptions(options: SubmissionOptions): void {
  const r = options.maxRetries ?? options.retry?.max;
  if (r !== undefined && (!Number.isInteger(r) || r < 0 || r > 1000)) {
    throw ValidationError.field("max_retries", "must be a whole number from 0 to 1000");
  }
  if (options.cluster !== undefined && !/^[A-Za-z0-9-]*$/.test(options.cluster)) {
    throw ValidationError.field("cluster_slug", `${JSON.stringify(options.cluster)} is not a cluster slug`);
  }
  if (options.display !== undefined) checkStorableText("display", options.display);
}

/**
 * A task instance as a submission. `dependsOn` holds indices of earlier siblings. Options the call
 * leaves out come from the task class's static `scheduling` defaults.
 */
export function toTaskSubmission(task: Task<unknown>, options: SubmissionOptions = {}, dependsOn: number[] = []): TaskSubmission {
  const defaults = (task.constructor as TaskClass).scheduling ?? {};
  const o: SubmissionOptions = {
    ...defaults,
    ...definedOnly(options),
    retry: { ...defaults.retry, ...definedOnly(options.retry ?? {}) },
    // A submission's key keeps the class's limit; its own `concurrency` replaces both.
    concurrency: options.concurrency ?? defaults.concurrency,
  };
  checkOptions(o);
  return create(TaskSubmissionSchema, {
    identifier: taskIdentifier(task),
    input: serializeTaskInput(task),
    display: o.display ?? "",
    maxRetries: o.maxRetries ?? o.retry?.max ?? 0,
    optional: o.optional ?? false,
    clusterSlug: o.cluster ?? "",
    dependsOn,
    ...schedulingFields(o),
    ...gateFields(o, task),
  });
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * A submission for a task known only by identifier (the CLI, other languages' tasks). A
 * Uint8Array input is sent as is; anything else as JSON.
 *
 * @example
 * await client.jobs().submit("hello", rawTask({ name: "corral/Echo", version: "v1.0" }, { message: "hi" }));
 */
export function rawTask(identifier: TaskIdentifierInit, input?: unknown, options: SubmissionOptions = {}): TaskSubmission {
  checkOptions(options);
  validateIdentifier(identifier);
  const bytes =
    input instanceof Uint8Array ? input : input === undefined ? new Uint8Array(0) : new TextEncoder().encode(JSON.stringify(input));
  return create(TaskSubmissionSchema, {
    identifier: { name: identifier.name, version: identifier.version },
    input: bytes,
    display: options.display ?? "",
    maxRetries: options.maxRetries ?? options.retry?.max ?? 0,
    optional: options.optional ?? false,
    clusterSlug: options.cluster ?? "",
    ...schedulingFields(options),
    ...gateFields(options),
  });
}
