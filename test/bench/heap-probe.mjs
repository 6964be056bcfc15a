// Preloaded with NODE_OPTIONS=--import by `npm run bench -- --heap`: on SIGUSR2 the process runs a
// full garbage collection (inspector) and writes its memory use (process.memoryUsage) as JSON to
// BENCH_HEAP_DIR/<pid>.json; with BENCH_HEAP_SNAPSHOTS=1 it also writes a heap snapshot there.
import { Session } from "node:inspector";
import { writeFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { writeHeapSnapshot } from "node:v8";

const dir = process.env.BENCH_HEAP_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  let seq = 0;
  const collect = () => {
    // The same-thread inspector session answers synchronously; twice, for what the first freed.
    session.post("HeapProfiler.collectGarbage");
    session.post("HeapProfiler.collectGarbage");
  };
  process.on("SIGUSR2", () => {
    collect();
    // Read once the concurrent sweeper is done with the pages the collection freed (until then the
    // heap counts them as used), then collect again for what was allocated meanwhile.
    setTimeout(() => report(), 1_000);
  });
  const report = () => {
    collect();
    const usage = process.memoryUsage();
    seq++;
    if (process.env.BENCH_HEAP_SNAPSHOTS === "1") writeHeapSnapshot(join(dir, `${process.pid}-${seq}.heapsnapshot`));
    const file = join(dir, `${process.pid}.json`);
    writeFileSync(`${file}.tmp`, JSON.stringify({ seq, ...usage }));
    renameSync(`${file}.tmp`, file);
  };
}
