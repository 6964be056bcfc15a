// Typed domain errors. Code inside services throws these; the error interceptor maps them to
// gRPC codes at the edge, so a raw Error never reaches a client.
import { Code, ConnectError } from "@connectrpc/connect";

export interface FieldViolation {
  /** Path of the field, e.g. `tasks[2].identifier.version`. */
  field: string;
  description: string;
}

export class DomainError extends Error {
  readonly code: Code;
  readonly violations: FieldViolation[];
  /** Extra metadata sent as response headers/trailers, e.g. retry hints. */
  readonly metadata: Record<string, string>;

  constructor(
    code: Code,
    message: string,
    options: { cause?: unknown; violations?: FieldViolation[]; metadata?: Record<string, string> } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = "DomainError";
    this.code = code;
    this.violations = options.violations ?? [];
    this.metadata = options.metadata ?? {};
  }
}

/** An object that does not exist, or belongs to another team. */
export class NotFoundError extends DomainError {
  readonly kind: string;
  readonly id: string;
  constructor(kind: string, id: string, options: { cause?: unknown } = {}) {
    // The kind and id also travel as metadata, so clients raise typed errors without parsing text.
    super(Code.NotFound, `${kind} ${JSON.stringify(id)} not found`, {
      ...options,
      metadata: { "x-corral-not-found-kind": kind, "x-corral-not-found-id": id },
    });
    this.name = "NotFoundError";
    this.kind = kind;
    this.id = id;
  }
}

export class AlreadyExistsError extends DomainError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(Code.AlreadyExists, message, options);
    this.name = "AlreadyExistsError";
  }
}

export class FailedPreconditionError extends DomainError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(Code.FailedPrecondition, message, options);
    this.name = "FailedPreconditionError";
  }
}

/** Bad input that protovalidate rules cannot express (cycles, cross-field checks). */
export class InvalidArgumentError extends DomainError {
  constructor(field: string, description: string, options: { cause?: unknown } = {}) {
    super(Code.InvalidArgument, `${field}: ${description}`, {
      ...options,
      violations: [{ field, description }],
    });
    this.name = "InvalidArgumentError";
  }
}

export class ResourceExhaustedError extends DomainError {
  constructor(message: string, options: { cause?: unknown; retryAfterMs?: number } = {}) {
    super(Code.ResourceExhausted, message, {
      cause: options.cause,
      metadata:
        options.retryAfterMs === undefined ? {} : { "retry-after-ms": String(options.retryAfterMs) },
    });
    this.name = "ResourceExhaustedError";
  }
}

export class UnauthenticatedError extends DomainError {
  constructor(message = "missing or invalid API key") {
    super(Code.Unauthenticated, message);
    this.name = "UnauthenticatedError";
  }
}

export class PermissionDeniedError extends DomainError {
  constructor(message: string) {
    super(Code.PermissionDenied, message);
    this.name = "PermissionDeniedError";
  }
}

/** A dependency (database, Redis, another service) does not answer; the caller may retry. */
export class UnavailableError extends DomainError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(Code.Unavailable, message, options);
    this.name = "UnavailableError";
  }
}

/** Maps any thrown value to the ConnectError a client sees. Unknown errors become INTERNAL. */
export function toConnectError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  if (err instanceof DomainError) {
    const ce = new ConnectError(err.message, err.code, err.metadata, undefined, err);
    return ce;
  }
  if (isConnectionError(err)) {
    return new ConnectError("a backing store is unavailable, retry later", Code.Unavailable, undefined, undefined, err);
  }
  return new ConnectError("internal error", Code.Internal, undefined, undefined, err);
}

const connectionCodes = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now
  "08000",
  "08003",
  "08006",
  "08001",
  "08004",
]);

/** True for errors that mean Postgres or Redis went away, which callers may retry. */
export function isConnectionError(err: unknown): boolean {
  if (typeof err !== "object" || err === null) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string" && connectionCodes.has(code)) return true;
  const message = (err as { message?: unknown }).message;
  return (
    typeof message === "string" &&
    (message.includes("Connection terminated") ||
      message.includes("Connection is closed") ||
      message.includes("connect ECONNREFUSED") ||
      message.includes("Client has encountered a connection error"))
  );
}
