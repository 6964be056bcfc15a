// An automation as a request describes it, checked (INVALID_ARGUMENT naming the field) and turned
// into what the store keeps: the prototype, the policies, and each trigger's settings.
import { CatchUpPolicy, OverlapPolicy, type TaskPrototype, type Trigger } from "@corral/proto";
import { InvalidArgumentError } from "@corral/server-kit";
import { isAbsolute, relative, resolve } from "node:path";
import type { TriggerSpec } from "../../store/database.js";
import { parseSchedule } from "./cron-schedule.js";

/** What the operator allows storage triggers to reach (CORRAL_AUTOMATION_DIRS, CORRAL_AUTOMATION_SECRETS_DIR). */
export interface StoragePolicy {
  /** Directories under which directory triggers may watch; empty: directory triggers are refused. */
  directoryRoots: string[];
  /** Directory under which file: secret references must lie. */
  secretsDir: string;
}

export interface PrototypeSpec {
  identifierName: string;
  identifierVersion: string;
  /** A JSON object as UTF-8. */
  input: Buffer;
  display: string;
  maxRetries: number;
}

export function checkPrototype(p: TaskPrototype | undefined, field: string, maxInputBytes: number): PrototypeSpec {
  if (!p) throw new InvalidArgumentError(field, "is required");
  const name = p.identifier?.name ?? "";
  if (name.length === 0 || name.length > 256 || /\s/.test(name)) {
    throw new InvalidArgumentError(`${field}.identifier.name`, "must be 1 to 256 characters without spaces");
  }
  if (!/^v\d+\.\d+$/.test(p.identifier?.version ?? "")) {
    throw new InvalidArgumentError(`${field}.identifier.version`, "must look like vMAJOR.MINOR (e.g. my/Task@v1.0)");
  }
  if (p.input.byteLength > maxInputBytes) throw new InvalidArgumentError(`${field}.input`, `is ${p.input.byteLength} bytes, the limit is ${maxInputBytes}`);
  const text = p.input.byteLength === 0 ? "{}" : decodeUtf8(p.input, `${field}.input`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new InvalidArgumentError(`${field}.input`, `is not JSON: ${(err as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new InvalidArgumentError(`${field}.input`, "must be a JSON object (each fire adds its trigger's fields to it)");
  }
  return {
    identifierName: p.identifier!.name,
    identifierVersion: p.identifier!.version,
    input: Buffer.from(JSON.stringify(value)),
    display: p.display,
    maxRetries: p.maxRetries,
  };
}

function decodeUtf8(bytes: Uint8Array, field: string): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new InvalidArgumentError(field, "is not UTF-8 text");
  }
}

export const overlapOf = (p: OverlapPolicy): OverlapPolicy => (p === OverlapPolicy.UNSPECIFIED ? OverlapPolicy.ALLOW : p);
export const catchUpOf = (p: CatchUpPolicy): CatchUpPolicy => (p === CatchUpPolicy.UNSPECIFIED ? CatchUpPolicy.SKIP_MISSED : p);

const bucketPattern = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const envNamePattern = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Variables that hold the suite's own secrets: a trigger may not sign with them. */
const reservedEnv = /^(CORRAL_|DATABASE_URL$|REDIS_URL$|PG)/;

export function checkTriggers(triggers: readonly Trigger[], field: string, policy: StoragePolicy): TriggerSpec[] {
  if (triggers.length === 0) throw new InvalidArgumentError(field, "an automation needs at least one trigger");
  return triggers.map((t, i) => checkTrigger(t, `${field}[${i}]`, policy));
}

function checkTrigger(t: Trigger, at: string, policy: StoragePolicy): TriggerSpec {
  switch (t.kind.case) {
    case "cron": {
      parseSchedule(t.kind.value, `${at}.cron`);
      return { kind: "cron", schedule: t.kind.value.schedule.trim(), timeZone: t.kind.value.timeZone };
    }
    case "directory": {
      const path = t.kind.value.path;
      if (!isAbsolute(path)) throw new InvalidArgumentError(`${at}.directory.path`, "must be an absolute path");
      const full = resolve(path);
      const allowed = policy.directoryRoots.some((root) => {
        const rel = relative(resolve(root), full);
        return rel === "" || (!rel.startsWith("..") && !isAbsolute(rel));
      });
      if (!allowed) {
        throw new InvalidArgumentError(
          `${at}.directory.path`,
          policy.directoryRoots.length === 0
            ? "directory triggers are not enabled on this server (CORRAL_AUTOMATION_DIRS)"
            : `must lie under one of ${policy.directoryRoots.join(", ")} (CORRAL_AUTOMATION_DIRS)`,
        );
      }
      return { kind: "directory", path: full };
    }
    case "s3": {
      const s = t.kind.value;
      if (!bucketPattern.test(s.bucket)) throw new InvalidArgumentError(`${at}.s3.bucket`, `${JSON.stringify(s.bucket)} is not an S3 bucket name`);
      if (s.endpoint !== "") {
        let url: URL;
        try {
          url = new URL(s.endpoint);
        } catch {
          throw new InvalidArgumentError(`${at}.s3.endpoint`, `${JSON.stringify(s.endpoint)} is not a URL`);
        }
        if (url.protocol !== "http:" && url.protocol !== "https:") throw new InvalidArgumentError(`${at}.s3.endpoint`, "must be http or https");
      }
      if (s.secretAccessKeyRef !== "") checkSecretRef(s.secretAccessKeyRef, `${at}.s3.secret_access_key_ref`, policy);
      if ((s.accessKeyId === "") !== (s.secretAccessKeyRef === "")) {
        throw new InvalidArgumentError(`${at}.s3.secret_access_key_ref`, "access_key_id and secret_access_key_ref go together (both empty: anonymous)");
      }
      return {
        kind: "s3",
        bucket: s.bucket,
        prefix: s.prefix,
        endpoint: s.endpoint.replace(/\/+$/, ""),
        region: s.region,
        accessKeyId: s.accessKeyId,
        secretAccessKeyRef: s.secretAccessKeyRef,
      };
    }
    default:
      throw new InvalidArgumentError(at, "needs cron, directory or s3");
  }
}

function checkSecretRef(ref: string, field: string, policy: StoragePolicy): void {
  if (ref.startsWith("env:")) {
    const name = ref.slice(4);
    if (!envNamePattern.test(name)) throw new InvalidArgumentError(field, `${JSON.stringify(name)} is not an environment variable name`);
    if (reservedEnv.test(name)) throw new InvalidArgumentError(field, `${name} holds the suite's own secrets and cannot be used`);
    return;
  }
  if (ref.startsWith("file:")) {
    const path = ref.slice(5);
    const rel = relative(resolve(policy.secretsDir), resolve(path));
    if (!isAbsolute(path) || rel === "" || rel.startsWith("..") || isAbsolute(rel)) {
      throw new InvalidArgumentError(field, `a file: reference must name a file under ${policy.secretsDir} (CORRAL_AUTOMATION_SECRETS_DIR)`);
    }
    return;
  }
  throw new InvalidArgumentError(field, "must be a reference, env:NAME or file:/path, never the secret itself");
}
