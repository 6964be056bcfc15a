// The corral executable: bin/corral.js runs this through tsx.
import { registerDemoTemplate } from "./demo/template.js";
import { registerServiceCommands } from "./dev/commands.js";
import { processIo } from "./output.js";
import { runCli } from "./run.js";

registerDemoTemplate();
process.exitCode = await runCli(process.argv.slice(2), { io: processIo, extraCommands: [registerServiceCommands] });
