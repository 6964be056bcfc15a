// Text the services refuse because Postgres cannot store it: checked where a task sets it, so the
// task sees a ValidationError naming the field instead of its runner's stream being ended (and the
// same result re-sent on every reconnect).
import { ValidationError } from "./errors.js";

/** Throws a ValidationError naming `field` when `text` holds a NUL or a lone surrogate. */
export function checkStorableText(field: string, text: string): void {
  if (text.includes("\u0000")) throw ValidationError.field(field, "must not contain a NUL character (U+0000)");
  if (!(text as string & { isWellFormed(): boolean }).isWellFormed()) {
    throw ValidationError.field(field, "must be well-formed Unicode (no lone surrogate)");
  }
}
