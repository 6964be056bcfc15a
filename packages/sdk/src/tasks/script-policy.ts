// What a runner lets corral/RunScript do on its host. Scripts run any command a key of the team
// submits, so they are off unless the runner's operator turns them on; when on, they see only a
// minimal environment (not the runner's secrets) and never run as root without saying so.
import { homedir } from "node:os";
import { join, resolve } from "node:path";

/** Which of the runner's environment variables a script sees. */
export type ScriptEnvMode = "minimal" | "inherit";

export interface ScriptOptions {
  /** Run corral/RunScript tasks at all (default false: they fail, not to be retried). */
  allowScripts?: boolean;
  /** Allow scripts when the runner runs as root (uid 0); otherwise such a runner refuses to start. */
  allowScriptsAsRoot?: boolean;
  /** "minimal" (default): only {@link minimalScriptEnv}; "inherit": the runner's whole environment. */
  scriptEnv?: ScriptEnvMode;
  /** Also pass these variables of the runner to scripts (with "minimal"). */
  scriptEnvPass?: string[];
  /**
   * Where scripts' git checkouts are cached (`environment.git`): default `$CORRAL_CACHE_DIR/scripts`,
   * else `$XDG_CACHE_HOME/corral/scripts`, else `~/.cache/corral/scripts`.
   */
  scriptCacheDir?: string;
}

/** A runner's resolved script settings, as tasks see them on `ctx.scripts`. */
export interface ScriptPolicy {
  readonly allowed: boolean;
  readonly asRoot: boolean;
  readonly env: ScriptEnvMode;
  readonly passEnv: readonly string[];
  /** Where git checkouts of scripts' environments are cached. */
  readonly cacheDir: string;
}

/** What a script sees of the runner's environment by default: enough to find programs and write temp files. */
export const minimalScriptEnv: readonly string[] = ["PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR"];

/** Scripts off: the policy of a runner not given allowScripts. */
export const scriptsDisallowed: ScriptPolicy = Object.freeze({ allowed: false, asRoot: false, env: "minimal", passEnv: [], cacheDir: defaultScriptCacheDir() });

/** A runner's script settings cannot be used as given (scripts as root without allowScriptsAsRoot). */
export class ScriptPolicyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ScriptPolicyError";
  }
}

const envName = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `$CORRAL_CACHE_DIR/scripts`, else `$XDG_CACHE_HOME/corral/scripts`, else `~/.cache/corral/scripts` (as release bundles). */
export function defaultScriptCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CORRAL_CACHE_DIR) return join(env.CORRAL_CACHE_DIR, "scripts");
  return join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "corral", "scripts");
}

/**
 * Resolves a runner's script options; throws ScriptPolicyError when scripts are allowed, the
 * runner's uid is 0 and allowScriptsAsRoot is not set.
 */
export function resolveScriptPolicy(options: ScriptOptions, uid: number | undefined = process.getuid?.()): ScriptPolicy {
  if (!options.allowScripts) return scriptsDisallowed;
  const asRoot = options.allowScriptsAsRoot === true;
  if (uid === 0 && !asRoot) {
    throw new ScriptPolicyError(
      "this runner runs as root and would run corral/RunScript commands as root: run it as an unprivileged user, or pass --allow-scripts-as-root (SDK: allowScriptsAsRoot: true) if you mean it",
    );
  }
  const env = options.scriptEnv ?? "minimal";
  if (env !== "minimal" && env !== "inherit") throw new ScriptPolicyError(`scriptEnv must be "minimal" or "inherit", not ${JSON.stringify(env)}`);
  const passEnv = options.scriptEnvPass ?? [];
  const bad = passEnv.find((name) => !envName.test(name));
  if (bad !== undefined) throw new ScriptPolicyError(`scriptEnvPass: ${JSON.stringify(bad)} is not an environment variable name`);
  if (options.scriptCacheDir !== undefined && (typeof options.scriptCacheDir !== "string" || options.scriptCacheDir === "")) {
    throw new ScriptPolicyError("scriptCacheDir must be a folder path");
  }
  const cacheDir = resolve(options.scriptCacheDir ?? defaultScriptCacheDir());
  return Object.freeze({ allowed: true, asRoot, env, passEnv: Object.freeze([...passEnv]), cacheDir });
}

/** The part of the runner's environment a script of this policy sees. */
export function scriptBaseEnv(policy: Pick<ScriptPolicy, "env" | "passEnv">, runnerEnv: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  const names = policy.env === "inherit" ? Object.keys(runnerEnv) : [...minimalScriptEnv, ...policy.passEnv];
  for (const name of names) {
    const value = runnerEnv[name];
    if (value !== undefined) out[name] = value;
  }
  return out;
}
