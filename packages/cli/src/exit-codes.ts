// Exit codes that let scripts tell failure kinds apart.
import { Code } from "@connectrpc/connect";
import { CommanderError } from "commander";
import { ApiError, JobFailedError, ValidationError } from "@corral/sdk";

export const ExitCode = {
  ok: 0,
  /** The job failed or was canceled, or another error. */
  failed: 1,
  /** Bad usage or invalid input. */
  usage: 2,
  notFound: 3,
  /** No key, a bad key, or a key that may not do this. */
  auth: 4,
  /** The server does not answer. */
  unavailable: 5,
} as const;

/** A usage problem the CLI found itself (exit code 2). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

export function exitCodeFor(err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
  if (err instanceof UsageError || err instanceof ValidationError) return ExitCode.usage;
  if (err instanceof JobFailedError) return ExitCode.failed;
  if (err instanceof ApiError) {
    switch (err.code) {
      case Code.InvalidArgument:
        return ExitCode.usage;
      case Code.NotFound:
        return ExitCode.notFound;
      case Code.Unauthenticated:
      case Code.PermissionDenied:
        return ExitCode.auth;
      case Code.Unavailable:
      case Code.DeadlineExceeded:
        return ExitCode.unavailable;
      default:
        return ExitCode.failed;
    }
  }
  return ExitCode.failed;
}
