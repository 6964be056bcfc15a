// Finds text Postgres cannot store in a `text` column: a NUL character (Postgres refuses it) or a
// lone UTF-16 surrogate (JSON can carry one; it would be written as U+FFFD, silently changing the
// text). Every string of a message is looked at, however deep: nested messages, lists, map keys and
// values, oneof members. Bytes fields are not text and are left alone.
//
// It runs on every request message, so each message type becomes a closure over plain property
// reads (as fast-validator.ts does): a valid message costs one scan per string and allocates
// nothing; types that hold no string at any depth are not looked into at all.
import { ScalarType, type DescField, type DescMessage } from "@bufbuild/protobuf";
import type { Path } from "@bufbuild/protobuf/reflect";

/** Where the first unstorable string is, and why. */
export interface UnstorableText {
  /** From the message to the field (as protovalidate paths are: `tasks`, `[3]`, `display`). */
  path: Path;
  /** The string is a map key, not a value. */
  forKey: boolean;
  reason: string;
}

/** A string with `isWellFormed` (ES2024, Node 20; our lib is ES2023): no lone surrogate. */
type Es2024String = string & { isWellFormed(): boolean };

/** Why `s` cannot be stored as Postgres text, or undefined when it can. */
export function unstorableReason(s: string): string | undefined {
  if (s.length === 0) return undefined;
  if (s.indexOf("\u0000") !== -1) return "must not contain a NUL character (U+0000)";
  if (!(s as Es2024String).isWellFormed()) return "must be well-formed Unicode (no lone surrogate)";
  return undefined;
}

/**
 * Undefined when fine; else the path found so far, leaf first (each level appends its own step on
 * the way out, and the top reverses it), so nothing is allocated for a valid message.
 */
type Check = (value: unknown) => UnstorableText | undefined;

const stringCheck: Check = (v) => {
  const reason = unstorableReason(v as string);
  return reason === undefined ? undefined : { path: [], forKey: false, reason };
};

export interface TextChecker {
  /** The first string in `message` (of type `schema`) Postgres cannot store, or undefined. */
  find(schema: DescMessage, message: unknown): UnstorableText | undefined;
}

export function createTextChecker(): TextChecker {
  /** Per type: its check, or null when it holds no string at any depth. Filled lazily (recursive types). */
  const plans = new Map<DescMessage, { check: Check | null }>();
  const holdsText = new Map<DescMessage, boolean>();

  function hasText(desc: DescMessage, open = new Set<DescMessage>()): boolean {
    const known = holdsText.get(desc);
    if (known !== undefined) return known;
    if (open.has(desc)) return false; // decided by the other fields of the outer visit
    open.add(desc);
    let found = false;
    for (const f of desc.fields) {
      if (isText(f) || (f.fieldKind === "map" && f.mapKey === ScalarType.STRING)) found = true;
      else {
        const nested = nestedMessage(f);
        if (nested && hasText(nested, open)) found = true;
      }
      if (found) break;
    }
    open.delete(desc);
    // Only a top-level answer, or a positive one, is final: a "no" inside a cycle may be premature.
    if (found || open.size === 0) holdsText.set(desc, found);
    return found;
  }

  function plan(desc: DescMessage): { check: Check | null } {
    let entry = plans.get(desc);
    if (entry) return entry;
    entry = { check: null };
    plans.set(desc, entry);
    if (!hasText(desc)) return entry;
    const checks: Check[] = [];
    for (const oneof of desc.oneofs) {
      const cases: Record<string, Check> = Object.create(null);
      let any = false;
      for (const f of oneof.fields) {
        const c = valueCheck(f);
        if (!c) continue;
        any = true;
        cases[f.localName] = (v) => step(c(v), f);
      }
      if (!any) continue;
      const name = oneof.localName;
      checks.push((m) => {
        const o = (m as Record<string, { case: string | undefined; value?: unknown }>)[name]!;
        if (o.case === undefined) return undefined;
        const c = cases[o.case];
        return c === undefined ? undefined : c(o.value);
      });
    }
    for (const f of desc.fields) {
      if (f.oneof) continue;
      const c = fieldCheck(f);
      if (!c) continue;
      const name = f.localName;
      checks.push((m) => {
        const v = (m as Record<string, unknown>)[name];
        // Undefined: an unset message or `optional` field.
        return v === undefined ? undefined : c(v);
      });
    }
    entry.check =
      checks.length === 1
        ? checks[0]!
        : (m) => {
            for (let i = 0; i < checks.length; i++) {
              const found = checks[i]!(m);
              if (found) return found;
            }
            return undefined;
          };
    return entry;
  }

  /** A singular value's check (a plain field, or a oneof member's value), or null when it has no text. */
  function valueCheck(f: DescField): Check | null {
    if (f.fieldKind === "scalar") return f.scalar === ScalarType.STRING ? stringCheck : null;
    if (f.fieldKind === "message") return messageCheck(f.message);
    return null;
  }

  /** A field's check, with the field's own step added to the path, or null when it has no text. */
  function fieldCheck(f: DescField): Check | null {
    switch (f.fieldKind) {
      case "scalar":
      case "message": {
        const c = valueCheck(f);
        return c && ((v) => step(c(v), f));
      }
      case "enum":
        return null;
      case "list": {
        const item = f.listKind === "scalar" ? (f.scalar === ScalarType.STRING ? stringCheck : null) : f.listKind === "message" ? messageCheck(f.message) : null;
        if (!item) return null;
        return (v) => {
          const list = v as unknown[];
          for (let i = 0; i < list.length; i++) {
            const found = item(list[i]);
            if (found) return step(subscript(found, { kind: "list_sub", index: i }), f);
          }
          return undefined;
        };
      }
      case "map": {
        // Map keys arrive as strings whatever their proto type; only string keys are text.
        const keys = f.mapKey === ScalarType.STRING;
        const value = f.mapKind === "scalar" ? (f.scalar === ScalarType.STRING ? stringCheck : null) : f.mapKind === "message" ? messageCheck(f.message) : null;
        if (!keys && !value) return null;
        return (v) => {
          const map = v as Record<string, unknown>;
          for (const k in map) {
            if (keys) {
              const reason = unstorableReason(k);
              if (reason !== undefined) return step({ path: [{ kind: "map_sub", key: k }], forKey: true, reason }, f);
            }
            const found = value?.(map[k]);
            if (found) return step(subscript(found, { kind: "map_sub", key: mapKey(f, k) }), f);
          }
          return undefined;
        };
      }
    }
  }

  function messageCheck(desc: DescMessage): Check | null {
    if (!hasText(desc)) return null;
    const entry = plan(desc);
    return (v) => entry.check!(v);
  }

  return {
    find(schema, message) {
      const check = plan(schema).check;
      if (!check) return undefined;
      const found = check(message);
      if (found) found.path.reverse();
      return found;
    },
  };
}

function step(found: UnstorableText | undefined, f: DescField): UnstorableText | undefined {
  if (found) found.path.push(f);
  return found;
}

function subscript(found: UnstorableText, sub: Path[number]): UnstorableText {
  found.path.push(sub);
  return found;
}

/** A map key as its proto type (protovalidate prints `[3]` for an int key, `["a"]` for a string). */
function mapKey(f: DescField & { fieldKind: "map" }, k: string): string | number | bigint | boolean {
  switch (f.mapKey) {
    case ScalarType.STRING:
      return k;
    case ScalarType.BOOL:
      return k === "true";
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return BigInt(k);
    default:
      return Number(k);
  }
}

function isText(f: DescField): boolean {
  return (f.fieldKind === "scalar" || f.fieldKind === "list" || f.fieldKind === "map") && f.scalar === ScalarType.STRING;
}

function nestedMessage(f: DescField): DescMessage | undefined {
  if (f.fieldKind === "message") return f.message;
  if (f.fieldKind === "list" && f.listKind === "message") return f.message;
  if (f.fieldKind === "map" && f.mapKind === "message") return f.message;
  return undefined;
}
