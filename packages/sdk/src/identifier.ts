// Task identifiers: a name and a version vMAJOR.MINOR, and the rule for which runner may take
// which task.
import { ValidationError } from "./errors.js";
import { checkStorableText } from "./storable-text.js";

export interface TaskIdentifierInit {
  name: string;
  version: string;
}

const versionPattern = /^v(\d+)\.(\d+)$/;

export function parseVersion(version: string): { major: number; minor: number } {
  const m = versionPattern.exec(version);
  if (!m) throw ValidationError.field("identifier.version", `${JSON.stringify(version)} is not vMAJOR.MINOR`);
  return { major: Number(m[1]), minor: Number(m[2]) };
}

/** Checks a name and version the way the server will, so mistakes surface before a submission. */
export function validateIdentifier(id: TaskIdentifierInit): TaskIdentifierInit {
  if (id.name.length === 0 || id.name.length > 256 || /\s/.test(id.name)) {
    throw ValidationError.field("identifier.name", `${JSON.stringify(id.name)} must be 1-256 characters without spaces`);
  }
  checkStorableText("identifier.name", id.name);
  parseVersion(id.version);
  return id;
}

/**
 * Parses `name@v1.2`. A bare name is INVALID_ARGUMENT (ValidationError on `identifier.version`):
 * the contract requires a version, and guessing `v0.0` would queue a task no runner serves.
 *
 * @example
 * parseIdentifier("corral/Echo@v1.0"); // { name: "corral/Echo", version: "v1.0" }
 */
export function parseIdentifier(text: string): TaskIdentifierInit {
  const at = text.lastIndexOf("@");
  if (at < 0) {
    throw ValidationError.field("identifier.version", `${JSON.stringify(text)} has no version: write ${text}@v1.0 (name@vMAJOR.MINOR)`);
  }
  return validateIdentifier({ name: text.slice(0, at), version: text.slice(at + 1) });
}

export function formatIdentifier(id: TaskIdentifierInit): string {
  return `${id.name}@${id.version}`;
}

/** True when a runner that registered `registered` may run a task of `requested`. */
export function identifierMatches(registered: TaskIdentifierInit, requested: TaskIdentifierInit): boolean {
  if (registered.name !== requested.name) return false;
  const r = versionPattern.exec(registered.version);
  const q = versionPattern.exec(requested.version);
  if (!r || !q) return false;
  return Number(r[1]) === Number(q[1]) && Number(r[2]) >= Number(q[2]);
}
