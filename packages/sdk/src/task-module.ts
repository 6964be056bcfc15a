// The task classes a module exports, found the way publishing finds them: exported classes with a
// static `identifier` (or any class with an execute method), and arrays or objects of them (a
// default export `[A, B]` or `{ A, B }`).
import type { TaskClass } from "./task.js";

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
