// Where the CLI connects and with which key: flags, then the environment, then
// .corral/credentials.json in the working directory (written by `corral dev`), then defaults.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { defaultUrl } from "@corral/sdk";

export interface Connection {
  url: string;
  apiKey: string | undefined;
  /** Where the values came from, for error messages. */
  source: string;
}

export const credentialsPath = join(".corral", "credentials.json");

export function readCredentials(cwd: string): { url?: string; apiKey?: string } | undefined {
  try {
    const data = JSON.parse(readFileSync(join(cwd, credentialsPath), "utf8")) as unknown;
    if (typeof data !== "object" || data === null) return undefined;
    const { url, apiKey } = data as { url?: unknown; apiKey?: unknown };
    return {
      url: typeof url === "string" ? url : undefined,
      apiKey: typeof apiKey === "string" ? apiKey : undefined,
    };
  } catch {
    return undefined;
  }
}

export function resolveConnection(
  flags: { url?: string; apiKey?: string },
  env: NodeJS.ProcessEnv = process.env,
  cwd = process.cwd(),
): Connection {
  const file = readCredentials(cwd);
  const url = flags.url ?? env.CORRAL_URL ?? file?.url ?? defaultUrl;
  const apiKey = flags.apiKey ?? env.CORRAL_API_KEY ?? file?.apiKey;
  const source = flags.apiKey ? "--api-key" : env.CORRAL_API_KEY ? "CORRAL_API_KEY" : file?.apiKey ? credentialsPath : "nowhere";
  return { url, apiKey, source };
}
