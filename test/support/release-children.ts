// The child processes a release runner started, found through /proc (Linux): each runs one
// release version and carries it in its environment as CORRAL_RELEASE=name@version.
import { readdirSync, readFileSync } from "node:fs";

/** The direct children of `pid` (none when it is gone). */
export function childrenOf(pid: number): number[] {
  let threads: string[] = [];
  try {
    threads = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const tid of threads) {
    try {
      out.push(...readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").split(" ").filter((c) => c !== "").map(Number));
    } catch {
      // The thread ended.
    }
  }
  return out;
}

/** `pid` and every process below it. */
export function processTree(pid: number): number[] {
  return [pid, ...childrenOf(pid).flatMap(processTree)];
}

/** The children of `pid` that run a release, by release (`name@version`). */
export function releaseChildren(pid: number): Map<string, number> {
  const found = new Map<string, number>();
  for (const child of childrenOf(pid)) {
    try {
      const release = readFileSync(`/proc/${child}/environ`, "utf8")
        .split("\0")
        .find((e) => e.startsWith("CORRAL_RELEASE="))
        ?.slice("CORRAL_RELEASE=".length);
      if (release) found.set(release, child);
    } catch {
      // Ended between the two reads.
    }
  }
  return found;
}

/** A process's resident memory in bytes: RSS (VmRSS) and PSS (its share of pages it shares with others). */
export function memoryOf(pid: number): { rss: number; pss: number | undefined } {
  const kib = (text: string, field: string) => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(text);
    return m ? Number(m[1]) * 1024 : undefined;
  };
  const rss = kib(readFileSync(`/proc/${pid}/status`, "utf8"), "VmRSS") ?? 0;
  let pss: number | undefined;
  try {
    pss = kib(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"), "Pss");
  } catch {
    pss = undefined;
  }
  return { rss, pss };
}
