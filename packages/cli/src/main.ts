// The corral executable: bin/corral.js runs this through tsx.
import { processIo } from "./output.js";
import { runCli } from "./run.js";

process.exitCode = await runCli(process.argv.slice(2), { io: processIo });
