// corral/RunScript's input: its shape, and the one pure check that turns what a submitter sent into
// a spec the task can run, refusing anything else with an error naming the field.
import { UnrecoverableTaskError } from "../errors.js";

/** A git checkout to run in: cloned once per commit into the runner's script cache. */
export interface GitEnvironmentInput {
  /** `https://`, `ssh://`, `git://` or `file://` URL of the repository. */
  url: string;
  /** Branch to check out (its newest commit when the task starts). */
  branch?: string;
  /** Instead of `branch`: a tag, a full ref (`refs/...`) or a 40-hex commit. Default: the remote's HEAD. */
  ref?: string;
  /** Run in this subdirectory of the checkout (relative, inside it). */
  workdir?: string;
}

/** A container to run in, through the `docker` or `podman` CLI of the runner's host. */
export interface DockerEnvironmentInput {
  image: string;
  /** Working directory inside the container (absolute). */
  workdir?: string;
  /** `source:target[:options]`, as `docker run -v` takes them. */
  volumes?: string[];
  /** Environment variables inside the container. */
  env?: Record<string, string>;
}

export interface RunScriptInput {
  /**
   * A shell command line (run with `/bin/sh -c`), or with `args` the program to run (no shell).
   * An array is the program and its arguments (no shell).
   */
  command: string | string[];
  /** Arguments of `command`: the program is run directly, without a shell. */
  args?: string[];
  /** Working directory on the runner (not with an environment). */
  cwd?: string;
  /**
   * Added to the part of the runner's environment its operator lets scripts see (by default only
   * PATH, HOME, LANG and the like; never more than the runner allows). In a container: its environment.
   */
  env?: Record<string, string>;
  /** false: only `env`, nothing of the runner's environment. */
  inheritEnv?: boolean;
  /** Kill the command after this long (default: no limit). */
  timeoutMs?: number;
  /** How many bytes of the end of stdout and of stderr the output keeps (default 4096, at most 65536). */
  tailBytes?: number;
  /** A non-zero exit completes the task (its exit code in the output) instead of failing it. */
  allowFailure?: boolean;
  /** Where the command runs: a git checkout or a container (default: the runner's host as it is). */
  environment?: { git?: GitEnvironmentInput; docker?: DockerEnvironmentInput };
}

/** The checked input: what the task runs. */
export interface RunScriptSpec {
  /** The program and its arguments; a shell command line is `["/bin/sh", "-c", line]`. */
  argv: string[];
  /** The command line as given, for messages. */
  display: string;
  /** True when `argv` came from a shell string (in a container the container's `/bin/sh` runs it). */
  shell: boolean;
  cwd?: string;
  env: Record<string, string>;
  inheritEnv: boolean;
  timeoutMs?: number;
  tailBytes: number;
  allowFailure: boolean;
  git?: { url: string; ref: GitRef; workdir: string };
  docker?: { image: string; workdir?: string; volumes: string[]; env: Record<string, string> };
}

/** What to check out: a branch, a tag or ref name, a commit, or the remote's HEAD. */
export type GitRef = { kind: "branch"; name: string } | { kind: "ref"; name: string } | { kind: "commit"; sha: string } | { kind: "head" };

export const defaultTailBytes = 4096;
export const maxTailBytes = 65536;

const allowedSchemes = new Set(["https:", "ssh:", "git:", "file:"]);
const envName = /^[A-Za-z_][A-Za-z0-9_]*$/;
const commitSha = /^[0-9a-f]{40}$/;

function fail(field: string, description: string): never {
  throw new UnrecoverableTaskError(`corral/RunScript input${field === "" ? "" : `.${field}`}: ${description}`);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function onlyKnown(field: string, value: Record<string, unknown>, known: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) fail(field === "" ? key : `${field}.${key}`, `unknown field (known: ${known.join(", ")})`);
  }
}

/** A string Node can pass to a process: no NUL. */
function text(field: string, value: unknown, { empty = false } = {}): string {
  if (typeof value !== "string") fail(field, `must be a string, not ${describe(value)}`);
  if (!empty && value === "") fail(field, "must not be empty");
  if (value.includes("\u0000")) fail(field, "must not contain a NUL character");
  return value;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value;
}

function strings(field: string, value: unknown): string[] {
  if (!Array.isArray(value)) fail(field, `must be an array of strings, not ${describe(value)}`);
  return value.map((v, i) => text(`${field}[${i}]`, v, { empty: true }));
}

function envMap(field: string, value: unknown): Record<string, string> {
  if (value === undefined) return {};
  if (!isObject(value)) fail(field, `must be an object of strings, not ${describe(value)}`);
  const out: Record<string, string> = {};
  for (const [name, v] of Object.entries(value)) {
    if (!envName.test(name)) fail(field, `${JSON.stringify(name)} is not an environment variable name`);
    out[name] = text(`${field}.${name}`, v, { empty: true });
  }
  return out;
}

function bool(field: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== "boolean") fail(field, `must be true or false, not ${describe(value)}`);
  return value;
}

function int(field: string, value: unknown, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    fail(field, `must be a whole number from ${min} to ${max}`);
  }
  return value;
}

/** A repository URL git may fetch: one of the allowed schemes, never something git would read as an option. */
export function checkGitUrl(field: string, value: unknown): string {
  const url = text(field, value);
  if (url.startsWith("-")) fail(field, "must not start with '-'");
  if (/\s/.test(url)) fail(field, "must not contain spaces or control characters");
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    fail(field, `${JSON.stringify(url)} is not a URL: use https://, ssh://, git:// or file:// (write git@host:path as ssh://git@host/path)`);
  }
  if (!allowedSchemes.has(parsed.protocol)) {
    fail(field, `the scheme ${JSON.stringify(parsed.protocol.slice(0, -1))} is not allowed: use https, ssh, git or file`);
  }
  if (parsed.protocol !== "file:" && parsed.hostname === "") fail(field, "names no host");
  if (parsed.hostname.startsWith("-") || parsed.username.startsWith("-")) fail(field, "a host or user must not start with '-'");
  return url;
}

/** A ref name as git allows it (a subset: what `git check-ref-format` accepts, never an option). */
function refName(field: string, value: unknown): string {
  const name = text(field, value);
  if (
    name.startsWith("-") ||
    name.startsWith("/") ||
    name.endsWith("/") ||
    name.endsWith(".") ||
    name.endsWith(".lock") ||
    name.includes("..") ||
    name.includes("@{") ||
    name.includes("//") ||
    /[\u0000-\u0020\u007f~^:?*[\\]/.test(name)
  ) {
    fail(field, `${JSON.stringify(name)} is not a valid git ref name`);
  }
  return name;
}

/** A relative path that stays inside the checkout ("" for its root). */
function subdirectory(field: string, value: unknown): string {
  if (value === undefined) return "";
  const path = text(field, value, { empty: true });
  if (path.startsWith("/")) fail(field, "must be a path relative to the checkout");
  const parts = path.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) fail(field, "must stay inside the checkout (no '..')");
  return parts.join("/");
}

function gitEnvironment(value: unknown): NonNullable<RunScriptSpec["git"]> {
  const field = "environment.git";
  if (!isObject(value)) fail(field, `must be an object, not ${describe(value)}`);
  onlyKnown(field, value, ["url", "branch", "ref", "workdir"]);
  const url = checkGitUrl(`${field}.url`, value.url);
  if (value.branch !== undefined && value.ref !== undefined) fail(`${field}.ref`, "give branch or ref, not both");
  let ref: GitRef = { kind: "head" };
  if (value.branch !== undefined) ref = { kind: "branch", name: refName(`${field}.branch`, value.branch) };
  else if (value.ref !== undefined) {
    const name = text(`${field}.ref`, value.ref);
    ref = commitSha.test(name) ? { kind: "commit", sha: name } : { kind: "ref", name: refName(`${field}.ref`, name) };
  }
  return { url, ref, workdir: subdirectory(`${field}.workdir`, value.workdir) };
}

function dockerEnvironment(value: unknown): NonNullable<RunScriptSpec["docker"]> {
  const field = "environment.docker";
  if (!isObject(value)) fail(field, `must be an object, not ${describe(value)}`);
  onlyKnown(field, value, ["image", "workdir", "volumes", "env"]);
  const image = text(`${field}.image`, value.image);
  if (image.startsWith("-") || /\s/.test(image)) fail(`${field}.image`, `${JSON.stringify(image)} is not an image reference`);
  let workdir: string | undefined;
  if (value.workdir !== undefined) {
    workdir = text(`${field}.workdir`, value.workdir);
    if (!workdir.startsWith("/")) fail(`${field}.workdir`, "must be an absolute path inside the container");
  }
  const volumes = value.volumes === undefined ? [] : strings(`${field}.volumes`, value.volumes);
  volumes.forEach((v, i) => {
    const parts = v.split(":");
    if (v.startsWith("-") || parts.length < 2 || parts.length > 3 || parts[0] === "" || !parts[1]!.startsWith("/")) {
      fail(`${field}.volumes[${i}]`, `${JSON.stringify(v)} is not source:target[:options] with an absolute target`);
    }
  });
  return { image, workdir, volumes, env: envMap(`${field}.env`, value.env) };
}

/**
 * Checks a RunScript input and returns what to run; throws an UnrecoverableTaskError naming the
 * field (`corral/RunScript input.environment.git.url: ...`) when it cannot be run as given.
 */
export function parseRunScriptInput(input: unknown): RunScriptSpec {
  if (!isObject(input)) fail("", `must be an object, not ${describe(input)}`);
  onlyKnown("", input, ["command", "args", "cwd", "env", "inheritEnv", "timeoutMs", "tailBytes", "allowFailure", "environment"]);
  let argv: string[];
  let shell = false;
  if (Array.isArray(input.command)) {
    argv = strings("command", input.command);
    if (argv.length === 0 || argv[0] === "") fail("command", "must name a program first");
    if (input.args !== undefined) fail("args", "give the arguments in command or in args, not both");
  } else {
    const command = text("command", input.command);
    if (input.args !== undefined) {
      argv = [command, ...strings("args", input.args)];
    } else {
      argv = ["/bin/sh", "-c", command];
      shell = true;
    }
  }
  const spec: RunScriptSpec = {
    argv,
    display: shell ? argv[2]! : argv.join(" "),
    shell,
    env: envMap("env", input.env),
    inheritEnv: bool("inheritEnv", input.inheritEnv, true),
    timeoutMs: int("timeoutMs", input.timeoutMs, 1, 2 ** 31 - 1),
    tailBytes: int("tailBytes", input.tailBytes, 1, maxTailBytes) ?? defaultTailBytes,
    allowFailure: bool("allowFailure", input.allowFailure, false),
  };
  if (input.cwd !== undefined) spec.cwd = text("cwd", input.cwd);
  if (input.environment !== undefined) {
    const environment = input.environment;
    if (!isObject(environment)) fail("environment", `must be an object, not ${describe(environment)}`);
    onlyKnown("environment", environment, ["git", "docker"]);
    if (environment.git !== undefined) spec.git = gitEnvironment(environment.git);
    if (environment.docker !== undefined) spec.docker = dockerEnvironment(environment.docker);
    if (spec.git && spec.docker) fail("environment", "give git or docker, not both (a container cannot use a checkout yet)");
    if (spec.cwd !== undefined) fail("cwd", `not with an environment: use environment.${spec.git ? "git" : "docker"}.workdir`);
  }
  return spec;
}
