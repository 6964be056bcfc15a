// Memory sizes as people write them ("16 GiB", "512 MB", "1.5G") and as the API stores them
// (uint64 bytes).
import { ValidationError } from "./errors.js";

/** A size in bytes (number or bigint) or a string with a unit: `"16 GiB"`, `"512 MB"`, `"2Gi"`. */
export type MemorySize = number | bigint | string;

const units: Record<string, bigint> = {
  "": 1n,
  b: 1n,
  k: 1000n,
  kb: 1000n,
  m: 1000n ** 2n,
  mb: 1000n ** 2n,
  g: 1000n ** 3n,
  gb: 1000n ** 3n,
  t: 1000n ** 4n,
  tb: 1000n ** 4n,
  p: 1000n ** 5n,
  pb: 1000n ** 5n,
  ki: 1024n,
  kib: 1024n,
  mi: 1024n ** 2n,
  mib: 1024n ** 2n,
  gi: 1024n ** 3n,
  gib: 1024n ** 3n,
  ti: 1024n ** 4n,
  tib: 1024n ** 4n,
  pi: 1024n ** 5n,
  pib: 1024n ** 5n,
};

const pattern = /^\s*(\d+)(?:\.(\d+))?\s*([a-z]*)\s*$/i;
const maxUint64 = 2n ** 64n - 1n;

/**
 * Parses a memory size to bytes. Decimal units (KB, MB, GB, TB; K, M, G, T) are powers of 1000,
 * binary units (KiB, MiB, GiB, TiB; Ki, Mi, Gi, Ti) powers of 1024; fractions round to the byte.
 *
 * @example
 * parseMemory("16 GiB"); // 17179869184n
 * parseMemory("512 MB"); // 512000000n
 * parseMemory(1024);     // 1024n
 */
export function parseMemory(size: MemorySize, field = "memory"): bigint {
  if (typeof size === "bigint") {
    if (size < 0n || size > maxUint64) throw ValidationError.field(field, "must be between 0 and 2^64-1 bytes");
    return size;
  }
  if (typeof size === "number") {
    if (!Number.isSafeInteger(size) || size < 0) throw ValidationError.field(field, "must be a whole number of bytes");
    return BigInt(size);
  }
  const m = pattern.exec(size);
  const unit = m ? units[m[3]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw ValidationError.field(field, `cannot read ${JSON.stringify(size)} as a size (try "16 GiB" or "512 MB")`);
  }
  const whole = BigInt(m[1]!);
  const fraction = m[2] ?? "";
  const scale = 10n ** BigInt(fraction.length);
  // Exact arithmetic: (whole.fraction * unit), rounded half up.
  const scaled = (whole * scale + BigInt(fraction || "0")) * unit;
  const bytes = (scaled * 2n + scale) / (2n * scale);
  if (bytes > maxUint64) throw ValidationError.field(field, "is larger than 2^64-1 bytes");
  return bytes;
}

const binary = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];

/**
 * Formats bytes with a binary unit and at most two decimals.
 *
 * @example
 * formatMemory(17179869184n); // "16 GiB"
 */
export function formatMemory(bytes: number | bigint): string {
  let value = Number(bytes);
  let i = 0;
  while (value >= 1024 && i < binary.length - 1) {
    value /= 1024;
    i++;
  }
  const text = i === 0 ? String(value) : String(Math.round(value * 100) / 100);
  return `${text} ${binary[i]}`;
}
