// Secrets left at a template's placeholder ("CHANGE-ME", the sample keys deploy/ once shipped): a
// service refuses to start with one, naming the variable, instead of running with a key anyone
// can read in the repository.
import { ConfigError } from "./config.js";

/** Words a placeholder contains, compared case-insensitively with separators removed. */
const placeholderWords = ["changeme", "placeholder", "example", "replaceme", "yoursecret", "secrethere"];

/** Values deploy/ files used to ship as defaults: known to everyone, so never secret. */
const knownSampleValues = new Set([
  "compose-service-key-0123456789abcdef",
  "corral_compose_0123456789abcdefghijklmnop",
  "corral-dev",
]);

/** The placeholder `value` is or contains, if any. */
export function placeholderIn(value: string): string | undefined {
  if (knownSampleValues.has(value)) return value;
  const folded = value.toLowerCase().replace(/[^a-z0-9]/g, "");
  return placeholderWords.find((w) => folded.includes(w));
}

/** Throws a ConfigError naming `name` when `value` is a placeholder. */
export function refusePlaceholder(name: string, value: string | undefined): void {
  if (value === undefined) return;
  const found = placeholderIn(value);
  if (found !== undefined) {
    throw new ConfigError(`${name}: still the placeholder ${JSON.stringify(found)} of a template; set a real secret (deploy/compose-secrets.sh makes them for compose)`);
  }
}

/** The same for the password of a URL (postgres://user:CHANGE-ME@host/db); its host may say "example". */
export function refusePlaceholderPassword(name: string, url: string | undefined): void {
  if (url === undefined) return;
  let password: string;
  try {
    password = decodeURIComponent(new URL(url).password);
  } catch {
    return; // the URL's own check names the variable
  }
  if (password === "") return;
  const found = placeholderIn(password);
  if (found !== undefined) throw new ConfigError(`${name}: its password is still the placeholder ${JSON.stringify(found)} of a template; set a real one`);
}
