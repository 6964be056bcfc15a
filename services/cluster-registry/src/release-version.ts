// Semantic versions of releases: a key whose byte order (Postgres' C collation) is semver
// precedence, so "newest first" is one index scan and a page cursor is a plain comparison.
const SEMVER = /^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/;

/** A number as its digit count (two digits) then its digits: longer numbers sort after shorter. */
function numberKey(digits: string): string {
  const trimmed = digits.replace(/^0+(?=\d)/, "");
  return `${String(trimmed.length).padStart(2, "0")}${trimmed}`;
}

/**
 * The sort key of `version` (which the request rules already shaped as semver): major, minor and
 * patch by value, then a release after all of its prereleases, prerelease identifiers compared as
 * semver says (numbers by value, before words; fewer identifiers first). Build metadata does not
 * count, so versions differing only in it tie (callers break ties on the version text).
 */
export function versionKey(version: string): string {
  const m = SEMVER.exec(version);
  if (!m) throw new Error(`not a semantic version: ${version}`);
  const base = `${numberKey(m[1]!)}.${numberKey(m[2]!)}.${numberKey(m[3]!)}`;
  const pre = m[4];
  if (pre === undefined) return `${base}~`;
  // The separator (a space) sorts below every character an identifier may hold.
  const parts = pre.split(".").map((p) => (/^\d+$/.test(p) ? `0${numberKey(p)}` : `1${p}`));
  return `${base}-${parts.join(" ")}`;
}

export function isSemver(version: string): boolean {
  return SEMVER.test(version);
}
