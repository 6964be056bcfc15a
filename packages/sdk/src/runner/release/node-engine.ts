// Whether this Node.js satisfies a release's `engines.node` range (manifest.node_engine), with the
// range forms package.json files use: `>=20`, `^20.1`, `~20.10.0`, `20.x`, `18 || 20`, `>=18 <23`,
// `18 - 20`. Small on purpose: one check per release load, no dependency.

type Version = [number, number, number];
type Comparator = { op: ">=" | ">" | "<=" | "<" | "="; v: Version };

export class EngineRangeError extends Error {
  override name = "EngineRangeError";
}

export function parseVersion(text: string): Version {
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(text.trim());
  if (!m) throw new EngineRangeError(`${JSON.stringify(text)} is not a version`);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

function compare(a: Version, b: Version): number {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

/** A partial version (`20`, `20.1`, `20.x`, `*`): the parts given, the rest wildcards. */
function partial(text: string): Array<number | undefined> {
  const t = text.replace(/^v/, "");
  if (t === "" || t === "*" || t === "x" || t === "X") return [];
  const parts = t.split(".");
  if (parts.length > 3) throw new EngineRangeError(`${JSON.stringify(text)} is not a version`);
  const out: Array<number | undefined> = [];
  for (const p of parts) {
    if (p === "x" || p === "X" || p === "*") break;
    const n = /^(\d+)(?:-[0-9A-Za-z.-]+)?$/.exec(p);
    if (!n) throw new EngineRangeError(`${JSON.stringify(text)} is not a version`);
    out.push(Number(n[1]));
  }
  return out;
}

function floor(p: Array<number | undefined>): Version {
  return [p[0] ?? 0, p[1] ?? 0, p[2] ?? 0];
}

/** The first version above every version the partial names (`20` → 21.0.0, `20.1` → 20.2.0). */
function ceiling(p: Array<number | undefined>): Version | undefined {
  if (p.length === 0) return undefined;
  if (p.length === 1) return [p[0]! + 1, 0, 0];
  if (p.length === 2) return [p[0]!, p[1]! + 1, 0];
  return undefined;
}

function comparators(term: string): Comparator[] {
  const m = /^(>=|<=|>|<|=|\^|~)?\s*(\S*)$/.exec(term);
  if (!m) throw new EngineRangeError(`${JSON.stringify(term)} is not a range`);
  const op = m[1] ?? "";
  const p = partial(m[2]!);
  const lo = floor(p);
  const hi = ceiling(p);
  switch (op) {
    case ">=":
      return [{ op: ">=", v: lo }];
    case ">":
      return hi ? [{ op: ">=", v: hi }] : p.length === 0 ? [{ op: "<", v: [0, 0, 0] }] : [{ op: ">", v: lo }];
    case "<":
      return [{ op: "<", v: lo }];
    case "<=":
      return hi ? [{ op: "<", v: hi }] : p.length === 0 ? [] : [{ op: "<=", v: lo }];
    case "^": {
      const upper: Version = lo[0] > 0 || p.length < 2 ? [lo[0] + 1, 0, 0] : lo[1] > 0 || p.length < 3 ? [0, lo[1] + 1, 0] : [0, 0, lo[2] + 1];
      return [{ op: ">=", v: lo }, { op: "<", v: upper }];
    }
    case "~": {
      const upper: Version = p.length < 2 ? [lo[0] + 1, 0, 0] : [lo[0], lo[1] + 1, 0];
      return [{ op: ">=", v: lo }, { op: "<", v: upper }];
    }
    default:
      if (p.length === 0) return [];
      return hi ? [{ op: ">=", v: lo }, { op: "<", v: hi }] : [{ op: "=", v: lo }];
  }
}

function holds(c: Comparator, v: Version): boolean {
  const d = compare(v, c.v);
  switch (c.op) {
    case ">=":
      return d >= 0;
    case ">":
      return d > 0;
    case "<=":
      return d <= 0;
    case "<":
      return d < 0;
    case "=":
      return d === 0;
  }
}

/** The comparators of one `||` alternative (a hyphen range or space-separated terms, all of which must hold). */
function alternative(text: string): Comparator[] {
  const hyphen = /^(\S+)\s+-\s+(\S+)$/.exec(text);
  if (hyphen) {
    const hi = partial(hyphen[2]!);
    const ceil = ceiling(hi);
    return [{ op: ">=", v: floor(partial(hyphen[1]!)) }, ceil ? { op: "<", v: ceil } : { op: "<=", v: floor(hi) }];
  }
  // ">= 20" is ">=20": join an operator to its version.
  const terms = text.replace(/(>=|<=|>|<|=|\^|~)\s+/g, "$1").split(/\s+/).filter((t) => t !== "");
  return terms.flatMap(comparators);
}

/**
 * True when `version` (e.g. process.version) satisfies `range`; an empty range accepts any.
 * Throws EngineRangeError for a range it cannot read.
 *
 * @example
 * satisfiesEngine("v20.11.0", ">=18 <23"); // true
 */
export function satisfiesEngine(version: string, range: string): boolean {
  const v = parseVersion(version);
  const alternatives = range.trim() === "" ? [""] : range.split("||").map((a) => a.trim());
  return alternatives.some((a) => alternative(a).every((c) => holds(c, v)));
}
