// @corral/cli as a library: the command tree (for `corral dev` and friends to extend) and helpers.
export { createProgram, type CommandRegistrar } from "./program.js";
export { runCli } from "./run.js";
export { createCliContext, type CliContext, type CliContextOptions } from "./context.js";
export { resolveConnection, readCredentials, credentialsPath, type Connection } from "./connection.js";
export { ExitCode, exitCodeFor, UsageError } from "./exit-codes.js";
export { processIo, table, type Io } from "./output.js";
export { registerJobTemplate, getJobTemplate, listJobTemplates, type JobTemplate } from "./templates.js";
export { loadTaskModule } from "./commands/runner.js";
