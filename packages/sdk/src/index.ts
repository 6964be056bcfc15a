// @corral/sdk: the Client, tasks and the runner.
export { Client, defaultUrl, type ClientOptions } from "./client.js";
export {
  resolveConnection,
  findCredentials,
  readCredentialsFile,
  userCredentialsFile,
  describeConnection,
  apiKeyId,
  credentialsPath,
  type Connection,
  type Credentials,
} from "./credentials.js";
export { ClusterClient, type CreateClusterOptions, type UpdateClusterOptions, type WaitReadyOptions, type ClusterHandle } from "./clusters.js";
export { toClusterSpec, type ClusterSpecInput } from "./cluster-spec.js";
export { waitingReasons, describeFailedTask, type WaitingReason } from "./job-diagnosis.js";
export { jobView, taskView } from "./printable.js";
export { JobClient, type JobQuery, type JobUpdate, type SubmitJobOptions, type WaitOptions } from "./jobs.js";
export { toTaskSpan, type JobTrace, type SpanOutcomeName, type TaskSpan } from "./job-spans.js";
export { type TaskLogLevel, type TaskLogLine, type TaskLogOptions } from "./task-logs.js";
export { LocationClient, type LocationInput } from "./locations.js";
export { AutomationClient, type AutomationInput, type TriggerInput } from "./automations.js";
export { HardwareClient, type HardwareInput } from "./hardware.js";
export { ConfigurationClient } from "./configurations.js";
export { NodeClient, type NodeStateName } from "./nodes.js";
export { HostClient } from "./hosts.js";
export {
  clusterStateName,
  hostStateName,
  hostedRunnerStateName,
  hostStates,
  type ClusterStateName,
  type HostStateName,
} from "./cluster-states.js";
export { RuntimeClient } from "./runtime.js";
export {
  ReleaseClient,
  ReleaseDigestError,
  RELEASE_CHUNK_BYTES,
  releaseLoadStateName,
  type PublishReleaseOptions,
  type ReleaseBundle,
  type ReleaseLoadStateName,
  type ReleaseLoadStatusInput,
  type ReleaseManifestInput,
  type ReleaseSourceInput,
} from "./releases.js";
export { ApiKeyClient } from "./api-keys.js";
export {
  createTransport,
  createAuthInterceptor,
  createRetryInterceptor,
  createConnectionHintInterceptor,
  backoffDelay,
  sleep,
  streamKeepalive,
  type Protocol,
  type RetryOptions,
  type TransportOptions,
} from "./transport.js";
export * from "./errors.js";
export { parseMemory, formatMemory, type MemorySize } from "./memory.js";
export {
  parseIdentifier,
  formatIdentifier,
  identifierMatches,
  validateIdentifier,
  parseVersion,
  type TaskIdentifierInit,
} from "./identifier.js";
export {
  Task,
  taskIdentifier,
  serializeTaskInput,
  deserializeTaskInput,
  instantiateTask,
  type TaskClass,
  type OutputOf,
  type TaskScheduling,
} from "./task.js";
export { toTaskSubmission, rawTask, type SubmissionOptions } from "./submission.js";
export {
  parseDurationMs,
  parseRateLimit,
  type BackoffOptions,
  type ConcurrencyOption,
  type DurationInput,
  type RateLimitOption,
  type TaskRetryOptions,
  type SchedulingOptions,
} from "./scheduling.js";
export {
  ExecutionContext,
  type ExecutionContextInit,
  type JobInfo,
  type TaskInfo,
  type SubtaskHandle,
  type SubtaskOptions,
  type DependencyResult,
} from "./execution-context.js";
export type { Progress } from "./progress.js";
export { InMemoryCache, LocalFileCache, createJobCache, type CacheBackend, type JobCache } from "./cache.js";
export { SuiteCache } from "./suite-cache.js";
export { createSdkLogger, type Logger, type LogFormat } from "./logger.js";
export { formatLogLine, prettyDestination } from "./log-format.js";
export {
  jobStates,
  taskStates,
  jobStateName,
  taskStateName,
  isTerminalJobState,
  type JobStateName,
  type TaskStateName,
} from "./job-states.js";
export {
  decodeOutput,
  encodeOutput,
  DEFAULT_MAX_OUTPUT_BYTES,
  failureOutputKey,
  OutputNotSerializableError,
  OutputTooLargeError,
} from "./task-output.js";
export { Runner, sdkVersion, type RunnerLifecycle, type RunnerOptions } from "./runner/runner.js";
export { taskIdentifiersOf } from "./task-module.js";
export { RunnerState, leaseKey, type RunnerEffect, type TaskOutcome } from "./runner/runner-state.js";
export { TaskRegistry, executeTask, describeError } from "./runner/execute-task.js";
export { DirectExecutor, type TaskExecutor } from "./runner/task-executor.js";
export { AttemptAbort } from "./runner/attempt-abort.js";
export { ReleaseRunner, type ReleaseRunnerOptions } from "./runner/release/release-runner.js";
export { GatewayRunner, toGatewayRoute, type GatewayRunnerOptions } from "./gateway/gateway-runner.js";
export { AllowListError, createEgressPolicy, EgressRefusedError, parseAllowEntry, restrictedKind, type AllowEntry, type EgressPolicy } from "./gateway/egress-policy.js";
export type { GatewayRoute } from "./gateway/route-call.js";
export { RoutesClient, type HttpMethod, type RouteInput } from "./routes.js";
export { BundleCache, BundleDigestError, defaultBundleDir } from "./runner/release/bundle-cache.js";
export { satisfiesEngine } from "./runner/release/node-engine.js";
export { collectTaskClasses } from "./task-module.js";
export { detectHardware, detectNvidiaGpus } from "./runner/hardware.js";
export { Echo, type EchoInput, type EchoOutput } from "./tasks/echo.js";
export { RunScript, runCommand, type RunScriptInput, type RunScriptOutput, type RunScriptResult } from "./tasks/run-script.js";
export { parseRunScriptInput, type DockerEnvironmentInput, type GitEnvironmentInput, type RunScriptSpec } from "./tasks/run-script-input.js";
export { formatScriptFailure, parseScriptFailure, ScriptFailedError, scriptOutputOf } from "./tasks/script-failure.js";
export { containerRunArgv, findContainerEngine, type ContainerEngine, type ContainerRun } from "./tasks/container-engine.js";
export { GitCheckouts, GitEnvironmentError, gitCheckouts, type Checkout } from "./tasks/git-checkouts.js";
export {
  ScriptPolicyError,
  defaultScriptCacheDir,
  minimalScriptEnv,
  resolveScriptPolicy,
  scriptBaseEnv,
  scriptsDisallowed,
  type ScriptEnvMode,
  type ScriptOptions,
  type ScriptPolicy,
} from "./tasks/script-policy.js";

import { Echo } from "./tasks/echo.js";
import { RunScript } from "./tasks/run-script.js";
/**
 * The built-in task classes (Echo, RunScript), for `runner({ tasks: [...builtinTasks] })`. RunScript
 * is registered either way, but a runner refuses its tasks (a clear, unretried failure) unless
 * started with `allowScripts: true`.
 */
export const builtinTasks = [Echo, RunScript] as const;
