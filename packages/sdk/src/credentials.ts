// Where a client connects and with which key, the one resolution the SDK and the CLI share:
// given values, then CORRAL_URL / CORRAL_API_KEY, then the nearest .corral/credentials.json from
// the working directory upwards (written by `corral dev`), then the user's
// $XDG_CONFIG_HOME/corral/credentials.json (~/.config/corral/credentials.json), then defaults.
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

export const defaultUrl = "http://127.0.0.1:7700";

/** The project-level file, relative to a directory (the working one or one of its parents). */
export const credentialsPath = join(".corral", "credentials.json");

export interface Credentials {
  url?: string;
  apiKey?: string;
}

export interface Connection {
  url: string;
  apiKey: string | undefined;
  /** Where the key came from ("--api-key", "CORRAL_API_KEY", a file's path, "nowhere"): for messages. */
  source: string;
  /** Where the URL came from, in the same terms. */
  urlSource: string;
  /** The key's public id (`corral_<id>_<secret>`), never the secret; undefined without a key. */
  keyId: string | undefined;
}

/** Reads one credentials file; undefined when it is missing or not a JSON object. */
export function readCredentialsFile(file: string): Credentials | undefined {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, "utf8"));
  } catch {
    return undefined;
  }
  if (typeof data !== "object" || data === null) return undefined;
  const { url, apiKey } = data as { url?: unknown; apiKey?: unknown };
  return {
    url: typeof url === "string" ? url : undefined,
    apiKey: typeof apiKey === "string" ? apiKey : undefined,
  };
}

/** The user-level file: $XDG_CONFIG_HOME/corral/credentials.json, else ~/.config/corral/credentials.json. */
export function userCredentialsFile(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.XDG_CONFIG_HOME) return join(env.XDG_CONFIG_HOME, "corral", "credentials.json");
  if (env.HOME) return join(env.HOME, ".config", "corral", "credentials.json");
  return undefined;
}

/**
 * The credentials file that applies in `cwd`: the nearest `.corral/credentials.json` from `cwd`
 * upwards (so a tasks file run from a project's subdirectory finds the project's key), else the
 * user-level one. Undefined when none is readable.
 */
export function findCredentials(cwd: string = process.cwd(), env: NodeJS.ProcessEnv = process.env): { file: string; credentials: Credentials } | undefined {
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    const file = join(dir, credentialsPath);
    const credentials = readCredentialsFile(file);
    if (credentials) return { file, credentials };
    if (dirname(dir) === dir) break;
  }
  const user = userCredentialsFile(env);
  const credentials = user ? readCredentialsFile(user) : undefined;
  return user && credentials ? { file: user, credentials } : undefined;
}

/** The public id of a `corral_<id>_<secret>` key; undefined for other shapes. */
export function apiKeyId(key: string | undefined): string | undefined {
  if (!key) return undefined;
  return /^corral_([A-Za-z0-9]{1,64})_[A-Za-z0-9]+$/.exec(key)?.[1];
}

/**
 * Resolves the URL and key a client uses. Each value comes from the first place that has it.
 *
 * @example
 * const { url, apiKey, source } = resolveConnection({}); // in a project where `corral dev` ran
 */
export function resolveConnection(
  given: { url?: string; apiKey?: string } = {},
  env: NodeJS.ProcessEnv = process.env,
  cwd: string = process.cwd(),
  givenAs: { url: string; apiKey: string } = { url: "--url", apiKey: "--api-key" },
): Connection {
  // The file is read only when something is still missing: an explicit URL and key need no disk.
  const needFile = !(given.url ?? env.CORRAL_URL) || !(given.apiKey ?? env.CORRAL_API_KEY);
  const found = needFile ? findCredentials(cwd, env) : undefined;
  const file = found?.credentials;
  const url = given.url ?? env.CORRAL_URL ?? file?.url ?? defaultUrl;
  const apiKey = given.apiKey ?? env.CORRAL_API_KEY ?? file?.apiKey;
  const source = given.apiKey ? givenAs.apiKey : env.CORRAL_API_KEY ? "CORRAL_API_KEY" : file?.apiKey ? found!.file : "nowhere";
  const urlSource = given.url ? givenAs.url : env.CORRAL_URL ? "CORRAL_URL" : file?.url ? found!.file : "the default";
  return { url: url.replace(/\/+$/, ""), apiKey, source, urlSource, keyId: apiKeyId(apiKey) };
}

/** One line naming the URL and the key (by id) a call used, for UNAUTHENTICATED and UNAVAILABLE. */
export function describeConnection(c: Pick<Connection, "url" | "keyId" | "source" | "apiKey">): string {
  const key = c.apiKey ? (c.keyId ? `key ${c.keyId} from ${c.source}` : `a key from ${c.source} that is not a corral_<id>_<secret> key`) : "no API key (set CORRAL_API_KEY or run `corral dev`)";
  return `url ${c.url}, ${key}`;
}
