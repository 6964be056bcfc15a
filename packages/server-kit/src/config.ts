// Configuration from environment variables. A bad value stops the process with a message that
// names the variable and what it expected, instead of failing later in an obscure way.
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

type Env = Record<string, string | undefined>;

function raw(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === "" ? undefined : v.trim();
}

export function envString(name: string, fallback: string, env: Env = process.env): string {
  return raw(env, name) ?? fallback;
}

export function envOptional(name: string, env: Env = process.env): string | undefined {
  return raw(env, name);
}

export function envInt(
  name: string,
  fallback: number,
  range: { min?: number; max?: number } = {},
  env: Env = process.env,
): number {
  const v = raw(env, name);
  if (v === undefined) return fallback;
  const n = Number(v);
  const min = range.min ?? Number.MIN_SAFE_INTEGER;
  const max = range.max ?? Number.MAX_SAFE_INTEGER;
  if (!/^-?\d+$/.test(v) || n < min || n > max) {
    throw new ConfigError(`${name}: expected an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  }
  return n;
}

export function envBool(name: string, fallback: boolean, env: Env = process.env): boolean {
  const v = raw(env, name);
  if (v === undefined) return fallback;
  if (/^(1|true|yes|on)$/i.test(v)) return true;
  if (/^(0|false|no|off)$/i.test(v)) return false;
  throw new ConfigError(`${name}: expected true or false, got ${JSON.stringify(v)}`);
}

const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses `250ms`, `30s`, `5m`, `1h`, or a plain number of milliseconds. */
export function parseDurationMs(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) return undefined;
  return Math.round(Number(m[1]) * units[m[2] ?? "ms"]!);
}

export function envDurationMs(name: string, fallbackMs: number, env: Env = process.env): number {
  const v = raw(env, name);
  if (v === undefined) return fallbackMs;
  const ms = parseDurationMs(v);
  if (ms === undefined) {
    throw new ConfigError(`${name}: expected a duration such as 500ms, 30s or 5m, got ${JSON.stringify(v)}`);
  }
  return ms;
}

export function envUrl(name: string, fallback: string, protocols: string[], env: Env = process.env): string {
  const v = raw(env, name) ?? fallback;
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    throw new ConfigError(`${name}: expected a URL, got ${JSON.stringify(v)}`);
  }
  if (!protocols.includes(url.protocol.replace(/:$/, ""))) {
    throw new ConfigError(`${name}: expected a ${protocols.join(" or ")} URL, got ${JSON.stringify(v)}`);
  }
  return v;
}
