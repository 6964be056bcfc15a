// The task classes a module exports, found the same way wherever a module is loaded (a runner's
// --tasks module, a release bundle at publish time and in a release runner): named exports that are
// task classes or arrays of them, and a default export that is a task class, an array or an object
// of them. A class is recognised by shape (a constructor whose prototype has `execute`), not by
// `instanceof Task`: a bundle carries its own copy of the SDK.
import { taskIdentifier, type TaskClass } from "./task.js";
import { formatIdentifier, type TaskIdentifierInit } from "./identifier.js";

export function isTaskClass(value: unknown): value is TaskClass {
  return typeof value === "function" && typeof (value as { prototype?: { execute?: unknown } }).prototype?.execute === "function";
}

function candidates(value: unknown, objects: boolean): unknown[] {
  if (Array.isArray(value)) return value;
  if (objects && typeof value === "object" && value !== null) return Object.values(value);
  return [value];
}

/** Every task class `mod` (a module namespace) exports, each once, in export order. */
export function taskClassesOf(mod: Record<string, unknown>): TaskClass[] {
  const found = new Set<TaskClass>();
  for (const [name, value] of Object.entries(mod)) {
    for (const v of candidates(value, name === "default")) if (isTaskClass(v)) found.add(v);
  }
  return [...found];
}

/**
 * The identifiers of the module's task classes; throws when two classes claim one identifier or an
 * identifier is malformed (a ValidationError naming it).
 */
export function taskIdentifiersOf(mod: Record<string, unknown>): TaskIdentifierInit[] {
  const seen = new Map<string, string>();
  const out: TaskIdentifierInit[] = [];
  for (const cls of taskClassesOf(mod)) {
    const id = taskIdentifier(cls);
    const key = formatIdentifier(id);
    const other = seen.get(key);
    if (other !== undefined) throw new Error(`task classes ${other} and ${cls.name} both claim ${key}`);
    seen.set(key, cls.name);
    out.push(id);
  }
  return out;
}
