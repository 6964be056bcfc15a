// Typed errors the SDK throws. Every failed RPC becomes an ApiError (or a subclass) carrying the
// gRPC code, so callers branch on the class or on `err.code`, never on message text.
import { Code, ConnectError } from "@connectrpc/connect";
import { ViolationsSchema } from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";
import type { Cluster, Job } from "@corral/proto";
import { clusterStateName } from "./cluster-states.js";

export { Code };

export interface FieldViolation {
  /** Path of the field, e.g. `tasks[2].identifier.version`. */
  field: string;
  description: string;
}

/** Response headers a server may send to say which kind of object was not found. */
export const notFoundKindHeader = "x-corral-not-found-kind";
export const notFoundIdHeader = "x-corral-not-found-id";

export interface ApiErrorOptions {
  cause?: unknown;
  metadata?: Headers;
  violations?: FieldViolation[];
}

/** An error answered by a Corral service (or raised by the SDK for the same reason). */
export class ApiError extends Error {
  /** The gRPC status code. */
  readonly code: Code;
  /** The server's message without the `[code]` prefix ConnectError adds. */
  readonly rawMessage: string;
  /** Response headers and trailers sent with the error. */
  readonly metadata: Headers;
  /** Field violations for INVALID_ARGUMENT. */
  readonly violations: FieldViolation[];

  constructor(code: Code, message: string, options: ApiErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.name = "ApiError";
    this.code = code;
    this.rawMessage = message;
    this.metadata = options.metadata ?? new Headers();
    this.violations = options.violations ?? [];
  }

  /** The code's name in lower snake case, as gRPC spells it (`not_found`). */
  get codeName(): string {
    return codeName(this.code);
  }

  /** True when repeating the same call later may succeed. */
  get retryable(): boolean {
    return this.code === Code.Unavailable || this.code === Code.ResourceExhausted || this.code === Code.DeadlineExceeded;
  }
}

export class NotFoundError extends ApiError {
  /** What was not found (`cluster`, `job`, `location`, ...), when the server said. */
  readonly kind: string;
  /** The id or slug that was asked for, when the server said. */
  readonly id: string;
  constructor(kind: string, id: string, message: string, options: ApiErrorOptions = {}) {
    super(Code.NotFound, message, options);
    this.name = "NotFoundError";
    this.kind = kind;
    this.id = id;
  }
}

export class ClusterNotFoundError extends NotFoundError {
  constructor(slug: string, message = `cluster ${JSON.stringify(slug)} not found`, options: ApiErrorOptions = {}) {
    super("cluster", slug, message, options);
    this.name = "ClusterNotFoundError";
  }
}

export class JobNotFoundError extends NotFoundError {
  constructor(id: string, message = `job ${JSON.stringify(id)} not found`, options: ApiErrorOptions = {}) {
    super("job", id, message, options);
    this.name = "JobNotFoundError";
  }
}

export class LocationNotFoundError extends NotFoundError {
  constructor(id: string, message = `location ${JSON.stringify(id)} not found`, options: ApiErrorOptions = {}) {
    super("location", id, message, options);
    this.name = "LocationNotFoundError";
  }
}

export class ReleaseNotFoundError extends NotFoundError {
  /** `name@version`, or the name alone when the newest version was asked for. */
  constructor(id: string, message = `release ${JSON.stringify(id)} not found`, options: ApiErrorOptions = {}) {
    super("release", id, message, options);
    this.name = "ReleaseNotFoundError";
  }
}

/** RESOURCE_EXHAUSTED: a quota or payload limit. */
export class ResourceError extends ApiError {
  /** The server's hint for when to try again, when it sent one. */
  readonly retryAfterMs: number | undefined;
  constructor(message: string, options: ApiErrorOptions = {}) {
    super(Code.ResourceExhausted, message, options);
    this.name = "ResourceError";
    const hint = this.metadata.get("retry-after-ms");
    this.retryAfterMs = hint !== null && /^\d+$/.test(hint) ? Number(hint) : undefined;
  }
}

/** INVALID_ARGUMENT: bad input, naming the field in `violations` when known. */
export class ValidationError extends ApiError {
  constructor(message: string, options: ApiErrorOptions = {}) {
    super(Code.InvalidArgument, message, options);
    this.name = "ValidationError";
  }

  /** A client-side validation failure of one field. */
  static field(field: string, description: string): ValidationError {
    return new ValidationError(`${field}: ${description}`, { violations: [{ field, description }] });
  }
}

export class AlreadyExistsError extends ApiError {
  constructor(message: string, options: ApiErrorOptions = {}) {
    super(Code.AlreadyExists, message, options);
    this.name = "AlreadyExistsError";
  }
}

/** FAILED_PRECONDITION: the object is in a state that does not allow the call. */
export class FailedPreconditionError extends ApiError {
  constructor(message: string, options: ApiErrorOptions = {}) {
    super(Code.FailedPrecondition, message, options);
    this.name = "FailedPreconditionError";
  }
}

/** UNAUTHENTICATED: no API key, or one that is invalid or revoked. */
export class AuthenticationError extends ApiError {
  constructor(message: string, options: ApiErrorOptions = {}) {
    super(Code.Unauthenticated, message, options);
    this.name = "AuthenticationError";
  }
}

/** PERMISSION_DENIED: the key may not make this call (internal RPCs). */
export class PermissionDeniedError extends ApiError {
  constructor(message: string, options: ApiErrorOptions = {}) {
    super(Code.PermissionDenied, message, options);
    this.name = "PermissionDeniedError";
  }
}

/** UNAVAILABLE: the service does not answer (after the SDK's own retries). */
export class UnavailableError extends ApiError {
  constructor(message: string, options: ApiErrorOptions = {}) {
    super(Code.Unavailable, message, options);
    this.name = "UnavailableError";
  }
}

/** Thrown by `jobs().wait()` when the job ends FAILED. */
export class JobFailedError extends Error {
  readonly job: Job;
  constructor(job: Job, message = `job ${job.id} (${job.name}) failed`) {
    super(message);
    this.name = "JobFailedError";
    this.job = job;
  }
}

/**
 * Thrown by `jobs().result()` and `jobs().run()` when the job failed: names the failing task, its
 * attempt and its error. A JobFailedError, so one catch covers both.
 */
export class TaskFailedError extends JobFailedError {
  readonly taskId: string;
  readonly attempt: number;
  readonly error: string;
  /** What the failed attempt left to read, decoded (corral/RunScript: `{ exitCode, stdoutTail, stderrTail }`); undefined when nothing. */
  readonly output: unknown;
  constructor(job: Job, task: { id: string; attempt: number; error: string; output?: unknown }) {
    super(job, `job ${job.id} (${job.name}) failed: task ${task.id} attempt ${task.attempt}: ${task.error.split("\n")[0]}`);
    this.name = "TaskFailedError";
    this.taskId = task.id;
    this.attempt = task.attempt;
    this.error = task.error;
    this.output = task.output;
  }
}

/** Thrown by `jobs().wait()` when the job ends CANCELED; a JobFailedError so one catch covers both. */
export class JobCanceledError extends JobFailedError {
  constructor(job: Job) {
    super(job, `job ${job.id} (${job.name}) was canceled`);
    this.name = "JobCanceledError";
  }
}

/**
 * Thrown by `clusters().create(..., { wait: true })` and `clusters().waitReady()` when the cluster is
 * not READY within the timeout: `cluster` is its last state, `cluster.stateReason` says why.
 */
export class ClusterNotReadyError extends Error {
  readonly cluster: Cluster;
  constructor(cluster: Cluster, timeoutMs: number) {
    const running = `${cluster.runningRunners} of ${cluster.desiredRunners} runners running`;
    super(
      `cluster ${cluster.slug} is not ready after ${Math.round(timeoutMs / 1000)} s (${clusterStateName(cluster.state)}, ${running})${cluster.stateReason ? `: ${cluster.stateReason}` : ""}`,
    );
    this.name = "ClusterNotReadyError";
    this.cluster = cluster;
  }
}

/**
 * Thrown by a task to fail without retries: the runner reports it as unrecoverable.
 *
 * @example
 * if (!input.url) throw new UnrecoverableTaskError("input.url is required");
 */
export class UnrecoverableTaskError extends Error {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = "UnrecoverableTaskError";
  }
}

export function codeName(code: Code): string {
  return (Code[code] ?? "unknown").replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}

const notFoundMessage = /^([a-z][a-z _-]*?) ("(?:[^"\\]|\\.)*") not found$/i;

/** What a NOT_FOUND answer names: from the structured headers, else from the server's message. */
export function notFoundSubject(metadata: Headers, message: string): { kind: string; id: string } {
  const kind = metadata.get(notFoundKindHeader);
  if (kind) return { kind: kind.toLowerCase(), id: metadata.get(notFoundIdHeader) ?? "" };
  const m = notFoundMessage.exec(message);
  if (m) {
    let id = m[2]!;
    try {
      id = JSON.parse(id) as string;
    } catch {
      // Not a JSON string: keep the quoted text.
    }
    return { kind: m[1]!.toLowerCase(), id };
  }
  return { kind: "", id: "" };
}

function violationsOf(err: ConnectError): FieldViolation[] {
  const out: FieldViolation[] = [];
  for (const detail of err.findDetails(ViolationsSchema)) {
    for (const v of detail.violations) {
      const field = (v.field?.elements ?? [])
        .map((e) => {
          const sub = e.subscript;
          const suffix =
            sub.case === undefined ? "" : `[${typeof sub.value === "string" ? JSON.stringify(sub.value) : String(sub.value)}]`;
          return `${e.fieldName}${suffix}`;
        })
        .join(".");
      out.push({ field, description: v.message });
    }
  }
  return out;
}

/**
 * Maps anything an RPC threw to a typed error. Errors that are already ApiErrors (or not RPC
 * errors at all, like an AbortError from the caller's signal) pass through unchanged.
 */
export function toApiError(err: unknown): unknown {
  if (err instanceof ApiError) return err;
  if (!(err instanceof ConnectError)) return err;
  const metadata = err.metadata;
  const message = err.rawMessage;
  const options: ApiErrorOptions = { cause: err, metadata };
  switch (err.code) {
    case Code.NotFound: {
      const { kind, id } = notFoundSubject(metadata, message);
      if (kind === "cluster") return new ClusterNotFoundError(id, message, options);
      if (kind === "job") return new JobNotFoundError(id, message, options);
      if (kind === "location") return new LocationNotFoundError(id, message, options);
      if (kind === "release") return new ReleaseNotFoundError(id, message, options);
      return new NotFoundError(kind, id, message, options);
    }
    case Code.ResourceExhausted:
      return new ResourceError(message, options);
    case Code.InvalidArgument:
      return new ValidationError(message, { ...options, violations: violationsOf(err) });
    case Code.AlreadyExists:
      return new AlreadyExistsError(message, options);
    case Code.FailedPrecondition:
      return new FailedPreconditionError(message, options);
    case Code.Unauthenticated:
      return new AuthenticationError(message, options);
    case Code.PermissionDenied:
      return new PermissionDeniedError(message, options);
    case Code.Unavailable:
      return new UnavailableError(message, options);
    default:
      return new ApiError(err.code, message, options);
  }
}

/** Runs an RPC and rethrows its failure as a typed error. */
export async function rpc<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw toApiError(err);
  }
}
