// The task classes a module exports, found the way publishing finds them: exported classes with a
// static `identifier` (or any class with an execute method), and arrays or objects of them (a
// default export `[A, B]` or `{ A, B }`).
import { formatIdentifier, type TaskIdentifierInit } from "./identifier.js";
import { taskIdentifier, type TaskClass } from "./task.js";

function isTaskClass(value: unknown): value is TaskClass {
  return typeof value === "function" && typeof (value as { prototype?: { execute?: unknown } }).prototype?.execute === "function";
}

/** Every distinct task class among a module's exports, in export order. */
export function collectTaskClasses(mod: Record<string, unknown>): TaskClass[] {
  const found = new Set<TaskClass>();
  const visit = (value: unknown, depth: number) => {
    if (isTaskClass(value)) found.add(value);
    else if (depth > 0 && Array.isArray(value)) for (const v of value) visit(v, depth - 1);
    else if (depth > 0 && typeof value === "object" && value !== null && Object.getPrototypeOf(value) === Object.prototype) {
      for (const v of Object.values(value)) visit(v, depth - 1);
    }
  };
  for (const value of Object.values(mod)) visit(value, 1);
  return [...found];
}

/**
 * The identifiers of the module's task classes (what `corral release publish` puts in a release's
 * manifest); throws when two classes claim one identifier or an identifier is malformed (a
 * ValidationError naming it).
 */
export function taskIdentifiersOf(mod: Record<string, unknown>): TaskIdentifierInit[] {
  const seen = new Map<string, string>();
  const out: TaskIdentifierInit[] = [];
  for (const cls of collectTaskClasses(mod)) {
    const id = taskIdentifier(cls);
    const key = formatIdentifier(id);
    const other = seen.get(key);
    if (other !== undefined) throw new Error(`task classes ${other} and ${cls.name} both claim ${key}`);
    seen.set(key, cls.name);
    out.push(id);
  }
  return out;
}
