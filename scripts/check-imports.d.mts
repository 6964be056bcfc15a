// Types of check-imports.mjs, for its test.
export interface ImportViolation {
  /** The importing file, relative to the root, with `/` separators. */
  file: string;
  /** The module specifier as written. */
  specifier: string;
  /** The rule it breaks, in words. */
  rule: string;
}
export function checkImports(root: string): ImportViolation[];
export function importsOf(text: string): string[];
export function formatViolation(v: ImportViolation): string;
