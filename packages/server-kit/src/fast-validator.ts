// A quick first pass over protovalidate's standard rules for the request types that come in by
// the thousand (SubmitJob's tasks, Enqueue's envelopes, ReportResults' results). Protovalidate
// walks each field through its reflection API and path cursors, and in the services' allocation
// profiles it was the largest source of garbage (a third of job-service's). Here each message type
// becomes a closure over plain property reads.
//
// It only ever says "valid" or "not sure": a message it does not pass goes to protovalidate, which
// decides and names the fields. It is exactly as strict as protovalidate or stricter, never
// looser: a type whose rules (or whose nested types' rules) use anything outside the small set
// below gets no fast pass at all.
import { getOption, isFieldSet, ScalarType, type DescEnum, type DescField, type DescMessage } from "@bufbuild/protobuf";
import {
  field as fieldRulesExt,
  message as messageRulesExt,
  oneof as oneofRulesExt,
  FieldRulesSchema,
  MessageRulesSchema,
  OneofRulesSchema,
  type FieldRules,
} from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";

/** True: valid under protovalidate. False: not known (ask protovalidate). */
export type FastCheck = (message: unknown) => boolean;
type ValueCheck = (value: unknown) => boolean;

class Unsupported extends Error {}

const pass: ValueCheck = () => true;

/** The rule fields of `rules` that are set, when all of them are in `allowed`; else throws. */
function onlyRules(rules: { $typeName: string; $unknown?: unknown[] }, schema: DescMessage, allowed: readonly string[]): void {
  if (rules.$unknown && rules.$unknown.length > 0) throw new Unsupported(`${rules.$typeName}: predefined rules`);
  for (const f of schema.fields) {
    if (isFieldSet(rules as never, f) && !allowed.includes(f.localName) && !allowed.includes(f.oneof?.localName ?? "")) throw new Unsupported(`${rules.$typeName}.${f.name}`);
  }
}

/** A rule's value when it is set (proto2 fields read as their default when unset). */
function ruleValue<T>(rules: object, schema: DescMessage, name: string): T | undefined {
  const f = schema.fields.find((x) => x.localName === name);
  if (!f) throw new Unsupported(name);
  return isFieldSet(rules as never, f) ? ((rules as Record<string, unknown>)[name] as T) : undefined;
}

function limit(rules: object, schema: DescMessage, name: string): number | undefined {
  const v = ruleValue<bigint | number>(rules, schema, name);
  return v === undefined ? undefined : Number(v);
}

/** Unicode code points (protovalidate's string length), counted only when UTF-16 length cannot tell. */
function codePoints(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xdc00 || c > 0xdfff || i === 0 || (s.charCodeAt(i - 1) & 0xfc00) !== 0xd800) n++;
  }
  return n;
}

function all(checks: ValueCheck[]): ValueCheck {
  if (checks.length === 0) return pass;
  if (checks.length === 1) return checks[0]!;
  return (v) => {
    for (const c of checks) if (!c(v)) return false;
    return true;
  };
}

/**
 * The checks of one scalar or enum value's rules (a field's, or a list item's, map key's or
 * value's); `scalar` is undefined for an enum, whose type is `enumType`.
 */
function valueCheck(rules: FieldRules | undefined, scalar: ScalarType | undefined, enumType?: DescEnum): ValueCheck {
  if (!rules) return pass;
  if (rules.required) throw new Unsupported("required on a value");
  const t = rules.type;
  if (t.case === undefined) return pass;
  const typeName = scalar === undefined ? "enum" : scalarName(scalar);
  if (t.case === "enum" && typeName === "enum" && enumType) {
    onlyRules(t.value, ruleSchema("enum"), ["definedOnly"]);
    if (!t.value.definedOnly) return pass;
    const defined = new Set(enumType.values.map((v) => v.number));
    return (v) => defined.has(v as number);
  }
  if (t.case === "string" && typeName === "string") {
    const r = t.value;
    const schema = ruleSchema("string");
    onlyRules(r, schema, ["minLen", "maxLen", "pattern"]);
    const checks: ValueCheck[] = [];
    const min = limit(r, schema, "minLen");
    const max = limit(r, schema, "maxLen");
    const pattern = ruleValue<string>(r, schema, "pattern");
    if (min !== undefined) checks.push((v) => (v as string).length >= min && ((v as string).length < 2 * min ? codePoints(v as string) >= min : true));
    if (max !== undefined) checks.push((v) => (v as string).length <= max || codePoints(v as string) <= max);
    if (pattern !== undefined) {
      // RE2 and JavaScript agree on the patterns our contracts use (a test holds every one of them to
      // it); the `u` flag reads the text by code points, as RE2 does.
      const re = new RegExp(pattern, "u");
      checks.push((v) => re.test(v as string));
    }
    return all(checks);
  }
  const numeric = ["uint32", "int32", "uint64", "int64", "double", "float"];
  if (numeric.includes(t.case) && typeName === t.case) {
    const r = t.value as { lessThan: { case?: string; value?: unknown }; greaterThan: { case?: string; value?: unknown } };
    onlyRules(t.value, ruleSchema(t.case), ["lessThan", "greaterThan"]);
    const checks: ValueCheck[] = [];
    const lt = r.lessThan;
    const gt = r.greaterThan;
    // A NaN (double, float) fails every comparison, as it fails protovalidate's.
    if (lt.case === "lt") checks.push((v) => (v as number) < (lt.value as number));
    if (lt.case === "lte") checks.push((v) => (v as number) <= (lt.value as number));
    if (gt.case === "gt") checks.push((v) => (v as number) > (gt.value as number));
    if (gt.case === "gte") checks.push((v) => (v as number) >= (gt.value as number));
    return all(checks);
  }
  throw new Unsupported(`${t.case} rules on a ${typeName}`);
}

interface DurationValue {
  seconds: bigint;
  nanos: number;
}

/** Durations as one comparable number of nanoseconds (a bigint: no rounding near the limits). */
const nanosOf = (d: DurationValue | undefined) => (d ? d.seconds * 1_000_000_000n + BigInt(d.nanos) : 0n);

/** `gte`/`gt`/`lte`/`lt` of a Duration field; anything else in its rules has no fast pass. */
function durationCheck(rules: FieldRules["type"]["value"]): (d: DurationValue) => boolean {
  const r = rules as { lessThan: { case?: string; value?: DurationValue }; greaterThan: { case?: string; value?: DurationValue } };
  onlyRules(rules as never, ruleSchema("duration"), ["lessThan", "greaterThan"]);
  const checks: Array<(n: bigint) => boolean> = [];
  const lt = r.lessThan;
  const gt = r.greaterThan;
  if (lt.case === "lt") checks.push((n) => n < nanosOf(lt.value));
  else if (lt.case === "lte") checks.push((n) => n <= nanosOf(lt.value));
  else if (lt.case !== undefined) throw new Unsupported(`duration ${lt.case}`);
  if (gt.case === "gt") checks.push((n) => n > nanosOf(gt.value));
  else if (gt.case === "gte") checks.push((n) => n >= nanosOf(gt.value));
  else if (gt.case !== undefined) throw new Unsupported(`duration ${gt.case}`);
  return (d) => {
    // protovalidate refuses a malformed Duration (nanos out of range or of the other sign).
    if (d.nanos <= -1_000_000_000 || d.nanos >= 1_000_000_000) return false;
    if ((d.seconds > 0n && d.nanos < 0) || (d.seconds < 0n && d.nanos > 0)) return false;
    const n = nanosOf(d);
    for (const c of checks) if (!c(n)) return false;
    return true;
  };
}

/** The schema of one kind of rules (`StringRules` for "string"), from FieldRules' own fields. */
function ruleSchema(name: string): DescMessage {
  const f = FieldRulesSchema.fields.find((x) => x.localName === name);
  if (!f || f.fieldKind !== "message") throw new Unsupported(name);
  return f.message;
}

/** FieldRules' fields a fast pass may meet: `required` and the typed rules (no CEL, no `ignore`). */
const fieldRuleNames = FieldRulesSchema.fields.filter((f) => f.oneof?.localName === "type").map((f) => f.localName).concat("required");

function fieldRules(field: DescField): FieldRules {
  const rules = getOption(field, fieldRulesExt);
  onlyRules(rules, FieldRulesSchema, fieldRuleNames);
  return rules;
}

export interface FastValidator {
  /** The fast pass of `schema`, or undefined when its rules are outside what it knows. */
  of(schema: DescMessage): FastCheck | undefined;
  /** Why `schema` has no fast pass (the first rule met that this does not know), if it has none. */
  unsupported(schema: DescMessage): string | undefined;
}

export function createFastValidator(): FastValidator {
  /** Per type: its check (filled in after planning, so recursive types refer to it lazily). */
  const plans = new Map<DescMessage, { check?: ValueCheck }>();
  const failed = new Map<DescMessage, string>();

  function plan(desc: DescMessage): { check?: ValueCheck } {
    let entry = plans.get(desc);
    if (entry) return entry;
    entry = {};
    plans.set(desc, entry);
    const messageRules = getOption(desc, messageRulesExt);
    onlyRules(messageRules, MessageRulesSchema, []);
    const checks: ValueCheck[] = [];
    for (const oneof of desc.oneofs) {
      const oneofRules = getOption(oneof, oneofRulesExt);
      onlyRules(oneofRules, OneofRulesSchema, ["required"]);
      const required = oneofRules.required;
      const name = oneof.localName;
      const cases = oneof.fields.map((f) => ({ name: f.localName, check: fieldCheck(f, true) }));
      checks.push((m) => {
        const o = (m as Record<string, { case?: string; value?: unknown }>)[name]!;
        if (o.case === undefined) return !required;
        for (const c of cases) if (c.name === o.case) return c.check(o.value);
        return false;
      });
    }
    for (const f of desc.fields) {
      if (f.oneof) continue;
      const check = fieldCheck(f, false);
      if (check === pass) continue;
      const name = f.localName;
      checks.push((m) => check((m as Record<string, unknown>)[name]));
    }
    entry.check = all(checks);
    return entry;
  }

  /** The check of one field's value (for a oneof member: its value when it is the set case). */
  function fieldCheck(f: DescField, inOneof: boolean): ValueCheck {
    const rules = fieldRules(f);
    if (rules.required && f.fieldKind !== "message") throw new Unsupported("required on a non-message field");
    switch (f.fieldKind) {
      case "scalar":
      case "enum": {
        const check = f.fieldKind === "scalar" ? valueCheck(rules, f.scalar) : valueCheck(rules, undefined, f.enum);
        // Undefined is an unset field with explicit presence (`optional`): its rules do not apply.
        return check === pass ? pass : (v) => v === undefined || check(v);
      }
      case "message": {
        if (rules.type.case === "duration" && f.message.typeName === "google.protobuf.Duration") {
          const check = durationCheck(rules.type.value);
          const required = rules.required;
          // An unset field's rules do not apply (protovalidate checks a set Duration only).
          return (v) => (v === undefined ? !required : check(v as DurationValue));
        }
        if (rules.type.case !== undefined) throw new Unsupported(`${f.name}: rules on a message field`);
        const nested = messageCheck(f.message);
        const required = rules.required;
        // An unset oneof member is never checked; a set one is a message.
        if (inOneof) return nested;
        return (v) => (v === undefined ? !required : nested(v));
      }
      case "list": {
        const t = rules.type;
        let min: number | undefined;
        let max: number | undefined;
        let items: FieldRules | undefined;
        if (t.case === "repeated") {
          const schema = ruleSchema("repeated");
          onlyRules(t.value, schema, ["minItems", "maxItems", "items"]);
          min = limit(t.value, schema, "minItems");
          max = limit(t.value, schema, "maxItems");
          items = t.value.items;
          if (items) onlyRules(items, FieldRulesSchema, fieldRuleNames);
        } else if (t.case !== undefined) {
          throw new Unsupported(`${t.case} rules on a list`);
        }
        let item: ValueCheck;
        if (f.listKind === "message") {
          if (items && (items.type.case !== undefined || items.required)) throw new Unsupported("item rules on messages");
          item = messageCheck(f.message);
        } else {
          item = f.listKind === "scalar" ? valueCheck(items, f.scalar) : valueCheck(items, undefined, f.enum);
        }
        return (v) => {
          const list = v as unknown[];
          if (min !== undefined && list.length < min) return false;
          if (max !== undefined && list.length > max) return false;
          if (item !== pass) for (const x of list) if (!item(x)) return false;
          return true;
        };
      }
      case "map": {
        const t = rules.type;
        let maxPairs: number | undefined;
        let minPairs: number | undefined;
        let key: ValueCheck = pass;
        let value: ValueCheck = pass;
        if (t.case === "map") {
          const schema = ruleSchema("map");
          onlyRules(t.value, schema, ["minPairs", "maxPairs", "keys", "values"]);
          minPairs = limit(t.value, schema, "minPairs");
          maxPairs = limit(t.value, schema, "maxPairs");
          for (const r of [t.value.keys, t.value.values]) if (r) onlyRules(r, FieldRulesSchema, fieldRuleNames);
          // Map keys arrive as strings whatever their proto type; only string keys are checked here.
          if (t.value.keys?.type.case !== undefined && f.mapKey !== ScalarType.STRING) throw new Unsupported("non-string map key rules");
          key = valueCheck(t.value.keys, f.mapKey);
          if (f.mapKind === "message") {
            if (t.value.values && t.value.values.type.case !== undefined) throw new Unsupported("value rules on messages");
          } else {
            value = f.mapKind === "scalar" ? valueCheck(t.value.values, f.scalar) : valueCheck(t.value.values, undefined, f.enum);
          }
        } else if (t.case !== undefined) {
          throw new Unsupported(`${t.case} rules on a map`);
        }
        if (f.mapKind === "message") value = messageCheck(f.message);
        return (v) => {
          const entries = Object.entries(v as Record<string, unknown>);
          if (minPairs !== undefined && entries.length < minPairs) return false;
          if (maxPairs !== undefined && entries.length > maxPairs) return false;
          for (const [k, x] of entries) if (!key(k) || !value(x)) return false;
          return true;
        };
      }
    }
  }

  function messageCheck(desc: DescMessage): ValueCheck {
    const entry = plan(desc);
    return (v) => entry.check!(v);
  }

  return {
    of(schema) {
      if (failed.has(schema)) return undefined;
      const known = plans.get(schema);
      if (known?.check) return known.check;
      const before = new Set(plans.keys());
      try {
        return plan(schema).check;
      } catch (err) {
        if (!(err instanceof Unsupported)) throw err;
        // Forget what this attempt planned: a type it reached may be fine on its own, but the
        // half-built entries must not be used.
        for (const k of plans.keys()) if (!before.has(k)) plans.delete(k);
        failed.set(schema, err.message);
        return undefined;
      }
    },
    unsupported(schema) {
      this.of(schema);
      return failed.get(schema);
    },
  };
}

/** The FieldRules case written for a scalar type ("uint32", "string", ...). */
function scalarName(scalar: ScalarType): string {
  return ScalarType[scalar].toLowerCase();
}
