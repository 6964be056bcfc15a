// The corral executable: bin/corral.js runs this through tsx.
import { registerDemoTemplate } from "./demo/template.js";
import { registerServiceCommands } from "./dev/commands.js";
import { processIo } from "./output.js";
import { runCli } from "./run.js";

registerDemoTemplate();
const code = await runCli(process.argv.slice(2), { io: processIo, extraCommands: [registerServiceCommands] });
process.exitCode = code;
// `corral dev` on the embedded Postgres loads a module whose beforeExit hook calls process.exit(0):
// the command's own exit code wins.
process.on("exit", () => {
  process.exitCode = code;
});
