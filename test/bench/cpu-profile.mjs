// Preloaded with NODE_OPTIONS=--import (which refuses --cpu-prof): profiles the process with the
// inspector and writes a .cpuprofile into BENCH_PROFILE_DIR when it exits.
import { Session } from "node:inspector";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

const dir = process.env.BENCH_PROFILE_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post("Profiler.enable");
  session.post("Profiler.setSamplingInterval", { interval: 200 });
  session.post("Profiler.start");
  process.once("exit", () => {
    // The same-thread inspector session answers synchronously.
    session.post("Profiler.stop", (err, res) => {
      if (!err) writeFileSync(join(dir, `${process.env.BENCH_PROFILE_LABEL ? `${process.env.BENCH_PROFILE_LABEL}-` : ""}${process.argv[process.argv.length - 1].replace(/\W+/g, "_")}-${process.pid}.cpuprofile`), JSON.stringify(res.profile));
    });
  });
}
