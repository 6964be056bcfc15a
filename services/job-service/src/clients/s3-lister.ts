// Lists new objects under a prefix of an S3-compatible bucket with ListObjectsV2 (path-style URLs,
// SigV4-signed by aws4), after the trigger's start-after key: keys that sort after the last one
// fired are new (name objects so they sort by arrival, e.g. with a timestamp).
import aws4 from "aws4";
import { readFile } from "node:fs/promises";
import type { StorageObject } from "../domain/ports.js";
import type { TriggerSpec } from "../store/database.js";

type S3Spec = Extract<TriggerSpec, { kind: "s3" }>;

/** A storage trigger cannot list (unreachable endpoint, refused credentials): retried at the next poll. */
export class StorageListError extends Error {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = "StorageListError";
  }
}

export async function listS3(
  spec: S3Spec,
  cursor: string,
  since: Date,
  options: { env: Record<string, string | undefined>; signal?: AbortSignal; maxKeys?: number },
): Promise<{ objects: StorageObject[]; cursor: string }> {
  const region = spec.region || "us-east-1";
  const base = new URL(spec.endpoint || `https://s3.${region}.amazonaws.com`);
  const params = new URLSearchParams({ "list-type": "2", prefix: spec.prefix, "max-keys": String(options.maxKeys ?? 1000) });
  if (cursor !== "") params.set("start-after", cursor);
  const path = `${base.pathname.replace(/\/+$/, "")}/${encodeURIComponent(spec.bucket)}?${params.toString()}`;
  const request: aws4.Request & { headers: Record<string, string> } = { host: base.host, path, method: "GET", service: "s3", region, headers: {} };
  if (spec.accessKeyId !== "") {
    const secretAccessKey = await resolveSecret(spec.secretAccessKeyRef, options.env);
    aws4.sign(request, { accessKeyId: spec.accessKeyId, secretAccessKey });
  }
  let res: Response;
  try {
    res = await fetch(new URL(path, base), { headers: request.headers, signal: options.signal });
  } catch (err) {
    throw new StorageListError(`listing s3://${spec.bucket}/${spec.prefix} failed: ${(err as Error).message}`, { cause: err });
  }
  const body = await res.text();
  if (!res.ok) throw new StorageListError(`listing s3://${spec.bucket}/${spec.prefix} answered ${res.status}: ${tag(body, "Code") ?? body.slice(0, 200)}`);
  const objects: StorageObject[] = [];
  let last = cursor;
  for (const m of body.matchAll(/<Contents>([\s\S]*?)<\/Contents>/g)) {
    const key = unescapeXml(tag(m[1]!, "Key") ?? "");
    const lastModified = new Date(tag(m[1]!, "LastModified") ?? 0);
    last = key;
    if (lastModified < since) continue; // there before the trigger was
    objects.push({
      location: `s3://${spec.bucket}/${key}`,
      key,
      size: Number(tag(m[1]!, "Size") ?? 0),
      lastModified,
      version: unescapeXml(tag(m[1]!, "ETag") ?? "").replace(/"/g, ""),
    });
  }
  return { objects, cursor: last };
}

const tag = (xml: string, name: string) => new RegExp(`<${name}>([\\s\\S]*?)</${name}>`).exec(xml)?.[1];
const unescapeXml = (s: string) =>
  s.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&#(\d+);/g, (_, n) => String.fromCodePoint(Number(n))).replace(/&amp;/g, "&");

/** Reads an env:NAME or file:/path reference (checked when the trigger was saved). */
async function resolveSecret(ref: string, env: Record<string, string | undefined>): Promise<string> {
  if (ref.startsWith("env:")) {
    const value = env[ref.slice(4)];
    if (value === undefined || value === "") throw new StorageListError(`the secret reference ${ref} names an unset variable`);
    return value;
  }
  try {
    return (await readFile(ref.slice(5), "utf8")).trim();
  } catch (err) {
    throw new StorageListError(`the secret reference ${ref} cannot be read`, { cause: err });
  }
}
