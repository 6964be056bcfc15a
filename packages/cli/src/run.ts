// Runs the CLI for argv and answers the exit code, printing errors the way a person can act on.
import { CommanderError } from "commander";
import { renameReleaseVersionFlag } from "./commands/release.js";
import { createProgram, type CommandRegistrar } from "./program.js";
import type { CliContextOptions } from "./context.js";
import { exitCodeFor, ExitCode, UsageError } from "./exit-codes.js";
import { printableIo } from "./output.js";
import { ApiError, AuthenticationError, JobFailedError, UnavailableError } from "@corral/sdk";

export async function runCli(
  argv: string[],
  options: CliContextOptions & { extraCommands?: CommandRegistrar[] },
): Promise<number> {
  // Every line the commands print goes through here: server-made names cannot drive the terminal.
  options = { ...options, io: printableIo(options.io) };
  const program = createProgram(options);
  try {
    await program.parseAsync(renameReleaseVersionFlag(argv), { from: "user" });
    return ExitCode.ok;
  } catch (err) {
    const code = exitCodeFor(err);
    if (err instanceof CommanderError) return code; // commander already printed it
    options.io.err(`error: ${describe(err)}`);
    return code;
  }
}

function describe(err: unknown): string {
  if (err instanceof JobFailedError) return err.message;
  if (err instanceof AuthenticationError) {
    return `${err.rawMessage} (set CORRAL_API_KEY, pass --api-key, or run corral dev for a local key)`;
  }
  if (err instanceof UnavailableError) return `${err.rawMessage} (is the server running? check --url / CORRAL_URL)`;
  if (err instanceof ApiError) return `${err.rawMessage} [${err.codeName}]`;
  if (err instanceof UsageError) return err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}
