// fs.watch on the directories storage triggers name, on this replica: a change schedules a
// listing of that trigger after the settle delay (one at a time per trigger). The one owner of the
// watchers and the listings they scheduled. Best effort: a directory that is not there (yet) is
// covered by the periodic listing.
import { watch, type FSWatcher } from "node:fs";

export interface DirectoryWatchers {
  /** Watches exactly `wanted` (trigger id → path): new ones start, gone ones stop. */
  sync(wanted: ReadonlyMap<string, string>): void;
  close(): void;
}

export function createDirectoryWatchers(options: { delayMs: number; onChange(triggerId: string): void }): DirectoryWatchers {
  const watchers = new Map<string, FSWatcher>();
  const pendingScans = new Map<string, NodeJS.Timeout>();
  let closed = false;

  function changed(id: string): void {
    if (pendingScans.has(id) || closed) return;
    pendingScans.set(
      id,
      setTimeout(() => {
        pendingScans.delete(id);
        options.onChange(id);
      }, options.delayMs),
    );
  }

  function start(id: string, path: string): void {
    try {
      const w = watch(path, { recursive: true }, () => changed(id));
      w.on("error", () => {
        w.close();
        watchers.delete(id);
      });
      watchers.set(id, w);
    } catch {
      // Not there (yet) on this replica: the periodic listing still covers it.
    }
  }

  return {
    sync(wanted) {
      for (const [id, w] of watchers) {
        if (wanted.has(id)) continue;
        w.close();
        watchers.delete(id);
      }
      for (const [id, path] of wanted) if (!watchers.has(id) && !closed) start(id, path);
    },
    close() {
      closed = true;
      for (const t of pendingScans.values()) clearTimeout(t);
      for (const w of watchers.values()) w.close();
      watchers.clear();
    },
  };
}
