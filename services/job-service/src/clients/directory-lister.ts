// Lists the files under a directory that changed after a trigger's watermark: their change time
// (ctime: set by creation, writes and renames) after the cursor, and settled (no change for
// `settleMs`, so a file still being written is taken once it is complete).
import { readdir, stat } from "node:fs/promises";
import { join, relative } from "node:path";
import type { StorageObject } from "../domain/ports.js";

export async function listDirectory(
  dir: string,
  cursor: string,
  since: Date,
  options: { now: Date; settleMs: number },
): Promise<{ objects: StorageObject[]; cursor: string }> {
  const watermark = cursor === "" ? since.getTime() : Number(cursor);
  // Files whose change lands near the watermark are listed again; the fires table drops repeats.
  const from = Math.max(since.getTime(), watermark - options.settleMs);
  const until = options.now.getTime() - options.settleMs;
  const objects: StorageObject[] = [];
  let entries: string[];
  try {
    entries = await readdir(dir, { recursive: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { objects, cursor };
    throw err;
  }
  for (const entry of entries) {
    const path = join(dir, entry);
    let s;
    try {
      s = await stat(path);
    } catch {
      continue; // removed since the listing
    }
    if (!s.isFile() || s.ctimeMs < from || s.ctimeMs > until) continue;
    objects.push({
      location: path,
      key: relative(dir, path),
      size: s.size,
      lastModified: s.mtime,
      version: `${Math.trunc(s.mtimeMs)}-${s.size}`,
    });
  }
  objects.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return { objects, cursor: String(Math.max(watermark, until)) };
}
