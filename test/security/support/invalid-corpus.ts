// Generates invalid request messages from the request schemas and their protovalidate rules: for
// each field (and, two levels deep, the fields of nested messages and of the first list element),
// values just outside each bound: empty or over-long strings, strings breaking a pattern, numbers
// past a limit, lists with too few or too many items, undefined enum values, unset required
// fields and oneofs. Every candidate is checked with the validator itself, so only messages the
// rules reject are kept: the server must answer each with INVALID_ARGUMENT.
import { clone, create, getOption, type DescField, type DescMessage, type Message } from "@bufbuild/protobuf";
import { createValidator } from "@bufbuild/protovalidate";
import { field as fieldRulesExt, oneof as oneofRulesExt } from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";

export interface InvalidCase {
  what: string;
  message: Message;
}

const validator = createValidator();

function num(v: unknown): number | undefined {
  if (typeof v === "bigint") return Number(v);
  if (typeof v === "number") return v;
  return undefined;
}

/** Values of one scalar field that break its rules. */
function scalarBreakers(field: DescField, rules: any): Array<[string, unknown]> {
  const out: Array<[string, unknown]> = [];
  const t = rules?.type;
  if (!t?.case) return out;
  const r = t.value;
  const big = field.scalar === 4 || field.scalar === 3 || field.scalar === 6 || field.scalar === 16 || field.scalar === 18;
  const asNum = (n: number) => (big ? BigInt(n) : n);
  switch (t.case) {
    case "string": {
      const min = num(r.minLen);
      const max = num(r.maxLen);
      if (min !== undefined && min > 0) out.push(["empty", ""]);
      if (max !== undefined) out.push([`${max + 1} characters`, "x".repeat(max + 1)]);
      if (r.pattern) out.push(["breaks the pattern", "no spaces/or slashes! \u00e9"]);
      if (num(r.minBytes) !== undefined) out.push(["too few bytes", ""]);
      break;
    }
    case "uint32":
    case "int32":
    case "uint64":
    case "int64":
    case "sint32":
    case "sint64": {
      const rule = r as { lessThan?: { case?: string; value?: unknown }; greaterThan?: { case?: string; value?: unknown } };
      const lt = rule.lessThan;
      const gt = rule.greaterThan;
      if (lt?.case === "lte") out.push([`above ${String(lt.value)}`, asNum(num(lt.value)! + 1)]);
      if (lt?.case === "lt") out.push([`at ${String(lt.value)}`, asNum(num(lt.value)!)]);
      if (gt?.case === "gte" && num(gt.value)! > 0) out.push([`below ${String(gt.value)}`, asNum(num(gt.value)! - 1)]);
      if (gt?.case === "gt" && num(gt.value)! >= 0) out.push([`at ${String(gt.value)}`, asNum(num(gt.value)!)]);
      break;
    }
    case "enum":
      if (r.definedOnly) out.push(["undefined enum value", 9999]);
      break;
    default:
      break;
  }
  return out;
}

function set(message: Record<string, unknown>, field: DescField, value: unknown): void {
  if (field.oneof) message[field.oneof.localName] = value === undefined ? { case: undefined } : { case: field.localName, value };
  else message[field.localName] = value;
}

function get(message: Record<string, unknown>, field: DescField): unknown {
  if (field.oneof) {
    const o = message[field.oneof.localName] as { case?: string; value?: unknown } | undefined;
    return o?.case === field.localName ? o.value : undefined;
  }
  return message[field.localName];
}

function elementDefault(field: DescField): unknown {
  if (field.fieldKind === "list") {
    if (field.listKind === "message") return create(field.message);
    if (field.listKind === "enum") return 0;
    const s = field.scalar;
    if (s === 9) return "";
    if (s === 12) return new Uint8Array(0);
    if (s === 8) return false;
    if (s === 3 || s === 4 || s === 6 || s === 16 || s === 18) return 0n;
    return 0;
  }
  return undefined;
}

/** Mutations of `message` (of `schema`) at `path`; each returns the mutated copy of the root. */
function mutations(
  schema: DescMessage,
  message: Record<string, unknown>,
  path: string,
  depth: number,
  rebuild: (mutate: (m: Record<string, unknown>) => void) => Message,
): InvalidCase[] {
  const out: InvalidCase[] = [];
  for (const oneof of schema.oneofs) {
    const rules = getOption(oneof, oneofRulesExt) as { required?: boolean } | undefined;
    if (rules?.required) out.push({ what: `${path}${oneof.localName} unset`, message: rebuild((m) => (m[oneof.localName] = { case: undefined })) });
  }
  for (const field of schema.fields) {
    const rules = getOption(field, fieldRulesExt) as any;
    const at = `${path}${field.localName}`;
    if (rules?.required && field.fieldKind === "message") {
      out.push({ what: `${at} unset`, message: rebuild((m) => set(m, field, undefined)) });
    }
    if (field.fieldKind === "scalar" || field.fieldKind === "enum") {
      for (const [what, value] of scalarBreakers(field, rules)) out.push({ what: `${at} ${what}`, message: rebuild((m) => set(m, field, value)) });
    }
    if (field.fieldKind === "list") {
      const r = rules?.type?.case === "repeated" ? rules.type.value : undefined;
      const current = (get(message, field) as unknown[] | undefined) ?? [];
      const sample = current[0] ?? elementDefault(field);
      if (r && num(r.minItems)! > 0) out.push({ what: `${at} empty`, message: rebuild((m) => set(m, field, [])) });
      if (r && r.maxItems !== undefined && num(r.maxItems)! > 0) {
        const n = num(r.maxItems)! + 1;
        out.push({ what: `${at} ${n} items`, message: rebuild((m) => set(m, field, Array.from({ length: n }, () => sample))) });
      }
      if (r?.items && field.listKind !== "message") {
        for (const [what, value] of scalarBreakers(field, r.items)) {
          out.push({ what: `${at}[0] ${what}`, message: rebuild((m) => set(m, field, [value])) });
        }
      }
      if (field.listKind === "message" && depth < 2 && current.length > 0) {
        out.push(
          ...mutations(field.message, current[0] as Record<string, unknown>, `${at}[0].`, depth + 1, (mutate) =>
            rebuild((m) => {
              const list = [...((get(m, field) as unknown[]) ?? [])];
              const first = clone(field.message, list[0] as Message) as unknown as Record<string, unknown>;
              mutate(first);
              list[0] = first;
              set(m, field, list);
            }),
          ),
        );
      }
    }
    if (field.fieldKind === "message" && depth < 2) {
      const current = get(message, field) as Record<string, unknown> | undefined;
      if (current) {
        out.push(
          ...mutations(field.message, current, `${at}.`, depth + 1, (mutate) =>
            rebuild((m) => {
              const inner = clone(field.message, get(m, field) as Message) as unknown as Record<string, unknown>;
              mutate(inner);
              set(m, field, inner);
            }),
          ),
        );
      }
    }
  }
  return out;
}

/** Invalid variants of `valid` (a valid or empty request of `schema`), each rejected by the rules. */
export function invalidCorpus(schema: DescMessage, valid: Message = create(schema)): InvalidCase[] {
  const rebuild = (mutate: (m: Record<string, unknown>) => void) => {
    const copy = clone(schema, valid) as unknown as Record<string, unknown>;
    mutate(copy);
    return copy as unknown as Message;
  };
  const cases = mutations(schema, valid as unknown as Record<string, unknown>, "", 0, rebuild);
  return cases.filter((c) => validator.validate(schema, c.message as never).kind === "invalid");
}
