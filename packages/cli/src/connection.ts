// Where the CLI connects and with which key: the SDK's resolution (flags, then the environment,
// then .corral/credentials.json from the working directory upwards, then the user's config).
import { findCredentials, type Credentials } from "@corral/sdk";

export { resolveConnection, credentialsPath, type Connection } from "@corral/sdk";

/** The credentials file that applies in `cwd` (nearest .corral/credentials.json upwards, then the user's). */
export function readCredentials(cwd: string, env: NodeJS.ProcessEnv = process.env): Credentials | undefined {
  return findCredentials(cwd, env)?.credentials;
}
