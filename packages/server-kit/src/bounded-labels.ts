// Prometheus label values from open sets (task identifiers, clusters) kept bounded: the first
// `max` distinct values keep their own series, later ones share OTHER_LABEL, so a team that
// submits a million identifiers cannot grow a scrape without limit.

export const OTHER_LABEL = "other";

export interface LabelCap {
  /** `value` itself while it is one of the first `max` distinct values, else "other". */
  label(value: string): string;
  readonly size: number;
}

export function createLabelCap(max: number): LabelCap {
  const kept = new Set<string>();
  return {
    label(value) {
      if (kept.has(value)) return value;
      if (kept.size >= max || value === OTHER_LABEL) return OTHER_LABEL;
      kept.add(value);
      return value;
    },
    get size() {
      return kept.size;
    },
  };
}

/** Per-key sums with the `max` largest keys kept and the rest summed as "other" (ties by key). */
export function topLabels(values: ReadonlyMap<string, number>, max: number): Map<string, number> {
  const sorted = [...values].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const out = new Map(sorted.slice(0, max));
  const rest = sorted.slice(max);
  if (rest.length > 0) out.set(OTHER_LABEL, (out.get(OTHER_LABEL) ?? 0) + rest.reduce((s, [, n]) => s + n, 0));
  return out;
}
