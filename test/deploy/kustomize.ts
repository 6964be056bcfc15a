// A small kustomize renderer for test/deploy: the subset deploy/k8s uses (resources, namespace,
// images, patches as strategic-merge or RFC 6902 JSON patches). It refuses any other kustomization
// field, so a manifest change that needs more fails loudly instead of rendering something else.
import { existsSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { parse, parseAllDocuments } from "yaml";

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export interface K8sObject extends JsonObject {
  apiVersion: string;
  kind: string;
  metadata: JsonObject & { name: string; namespace?: string };
}

interface PatchTarget {
  group?: string;
  version?: string;
  kind?: string;
  name?: string;
}

const supportedFields = new Set(["apiVersion", "kind", "namespace", "resources", "images", "patches"]);

/** Kinds without a namespace among those deploy/k8s uses (the namespace field leaves them alone). */
const clusterScoped = new Set(["Namespace", "GatewayClass", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"]);

export function isObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function readYamlDocuments(file: string): Json[] {
  return parseAllDocuments(readFileSync(file, "utf8")).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0]!.message}`);
    return doc.toJS() as Json;
  }).filter((d) => d !== null);
}

function asK8sObject(v: Json, where: string): K8sObject {
  if (!isObject(v) || typeof v.apiVersion !== "string" || typeof v.kind !== "string" || !isObject(v.metadata)) {
    throw new Error(`${where}: not a Kubernetes object`);
  }
  if (typeof v.metadata.name !== "string") throw new Error(`${where}: metadata.name missing`);
  return v as K8sObject;
}

export function objectId(o: K8sObject): string {
  return `${o.kind}/${o.metadata.namespace ?? ""}/${o.metadata.name}`;
}

/** Renders the kustomization in `dir` like `kubectl kustomize dir`, for the supported subset. */
export function renderKustomization(dir: string): K8sObject[] {
  const file = join(dir, "kustomization.yaml");
  const k = parse(readFileSync(file, "utf8")) as JsonObject;
  for (const key of Object.keys(k)) {
    if (!supportedFields.has(key)) throw new Error(`${file}: field ${key} is not supported by test/deploy/kustomize.ts`);
  }
  let out: K8sObject[] = [];
  for (const entry of (k.resources as string[] | undefined) ?? []) {
    const path = resolve(dir, entry);
    if (!existsSync(path)) throw new Error(`${file}: resource ${entry} does not exist`);
    if (statSync(path).isDirectory()) out.push(...renderKustomization(path));
    else out.push(...readYamlDocuments(path).map((d, i) => asK8sObject(d, `${path}#${i}`)));
  }
  const seen = new Set<string>();
  for (const o of out) {
    if (seen.has(objectId(o))) throw new Error(`${file}: ${objectId(o)} is defined twice`);
    seen.add(objectId(o));
  }
  for (const p of (k.patches as JsonObject[] | undefined) ?? []) {
    out = applyPatchEntry(out, dir, p);
  }
  for (const image of (k.images as JsonObject[] | undefined) ?? []) {
    const matched = setImage(out, image);
    if (matched === 0) throw new Error(`${file}: image ${String(image.name)} matches no container`);
  }
  if (typeof k.namespace === "string") {
    for (const o of out) if (!clusterScoped.has(o.kind)) o.metadata.namespace = k.namespace;
  }
  return out;
}

function applyPatchEntry(objects: K8sObject[], dir: string, entry: JsonObject): K8sObject[] {
  const text = typeof entry.path === "string" ? readFileSync(resolve(dir, entry.path), "utf8") : String(entry.patch);
  const body = parse(text) as Json;
  const target = entry.target as PatchTarget | undefined;
  if (Array.isArray(body)) {
    if (!target) throw new Error(`JSON patch ${String(entry.path)} needs a target`);
    const hits = objects.filter((o) => matchesTarget(o, target));
    if (hits.length === 0) throw new Error(`JSON patch ${String(entry.path)} matches nothing`);
    for (const o of hits) applyJsonPatch(o, body as JsonObject[]);
    return objects;
  }
  const patch = asK8sObject(body, String(entry.path));
  const sel: PatchTarget = target ?? { kind: patch.kind, name: patch.metadata.name };
  const hits = objects.filter((o) => matchesTarget(o, sel));
  if (hits.length === 0) throw new Error(`patch ${String(entry.path)} matches nothing`);
  return objects.map((o) => {
    if (!hits.includes(o)) return o;
    const { metadata, ...rest } = patch;
    // With a target the patch's own name is a placeholder; kustomize keeps the target's.
    const { name: _name, ...meta } = metadata;
    return strategicMerge(o, { ...rest, metadata: meta }, []) as K8sObject;
  });
}

function matchesTarget(o: K8sObject, t: PatchTarget): boolean {
  const [group, version] = o.apiVersion.includes("/") ? o.apiVersion.split("/") : ["", o.apiVersion];
  return (
    (t.kind === undefined || t.kind === o.kind) &&
    (t.name === undefined || t.name === o.metadata.name) &&
    (t.group === undefined || t.group === group) &&
    (t.version === undefined || t.version === version)
  );
}

/**
 * List fields Kubernetes merges by key in a strategic-merge patch (among those deploy/k8s patches);
 * every other list is replaced, as kustomize does for lists without a patch strategy and for CRDs.
 */
const mergeKeys: Record<string, string> = {
  containers: "name",
  initContainers: "name",
  env: "name",
  volumes: "name",
  volumeMounts: "mountPath",
  topologySpreadConstraints: "topologyKey",
};

export function strategicMerge(base: Json, patch: Json, path: string[]): Json {
  if (isObject(base) && isObject(patch)) {
    const out: JsonObject = { ...base };
    for (const [key, value] of Object.entries(patch)) {
      if (value === null) delete out[key];
      else out[key] = key in base ? strategicMerge(base[key]!, value, [...path, key]) : value;
    }
    return out;
  }
  const field = path[path.length - 1];
  const key = field === undefined ? undefined : mergeKeys[field];
  if (Array.isArray(base) && Array.isArray(patch) && key !== undefined) {
    // Patch items first (merged with the original of the same key), then the untouched originals:
    // the order `kubectl kustomize` produces.
    const used = new Set<Json>();
    const merged = patch.map((item) => {
      const original = base.find((b) => isObject(b) && isObject(item) && b[key] === item[key]);
      if (original === undefined) return item;
      used.add(original);
      return strategicMerge(original, item, [...path, "[]"]);
    });
    return [...merged, ...base.filter((b) => !used.has(b))];
  }
  return patch;
}

function pointer(path: string): string[] {
  if (path === "") return [];
  if (!path.startsWith("/")) throw new Error(`bad JSON pointer ${path}`);
  return path.slice(1).split("/").map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
}

/** RFC 6902 add, replace and remove (the operations deploy/k8s uses). */
export function applyJsonPatch(doc: JsonObject, ops: JsonObject[]): void {
  for (const op of ops) {
    const parts = pointer(String(op.path));
    const last = parts.pop();
    if (last === undefined) throw new Error("cannot patch the document root");
    let parent: Json = doc;
    for (const p of parts) {
      parent = Array.isArray(parent) ? parent[Number(p)]! : isObject(parent) ? parent[p]! : null;
      if (parent === undefined || parent === null) throw new Error(`JSON patch: ${String(op.path)} has no parent`);
    }
    const value = structuredClone(op.value) as Json;
    if (Array.isArray(parent)) {
      const index = last === "-" ? parent.length : Number(last);
      if (op.op === "add") parent.splice(index, 0, value);
      else if (op.op === "replace") parent[index] = value;
      else if (op.op === "remove") parent.splice(index, 1);
      else throw new Error(`JSON patch op ${String(op.op)} is not supported`);
    } else if (isObject(parent)) {
      if ((op.op === "replace" || op.op === "remove") && !(last in parent)) {
        throw new Error(`JSON patch: ${String(op.path)} does not exist`);
      }
      if (op.op === "add" || op.op === "replace") parent[last] = value;
      else if (op.op === "remove") delete parent[last];
      else throw new Error(`JSON patch op ${String(op.op)} is not supported`);
    }
  }
}

/** The pod spec of a workload, or undefined for other kinds. */
export function podSpec(o: K8sObject): JsonObject | undefined {
  const spec = o.spec;
  if (!isObject(spec) || !isObject(spec.template) || !isObject(spec.template.spec)) return undefined;
  return spec.template.spec;
}

export function containersOf(o: K8sObject): JsonObject[] {
  const spec = podSpec(o);
  if (!spec) return [];
  return [...((spec.initContainers as JsonObject[] | undefined) ?? []), ...((spec.containers as JsonObject[] | undefined) ?? [])];
}

function setImage(objects: K8sObject[], image: JsonObject): number {
  let n = 0;
  for (const o of objects) {
    for (const c of containersOf(o)) {
      const current = String(c.image);
      const at = current.lastIndexOf(":");
      const slash = current.lastIndexOf("/");
      const [name, tag] = at > slash ? [current.slice(0, at), current.slice(at + 1)] : [current, undefined];
      if (name !== image.name) continue;
      const newName = typeof image.newName === "string" ? image.newName : name;
      const newTag = image.newTag !== undefined ? String(image.newTag) : tag;
      c.image = newTag === undefined ? newName : `${newName}:${newTag}`;
      n++;
    }
  }
  return n;
}
