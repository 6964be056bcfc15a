// Run in a child process by `corral release publish` (inspect-bundle.ts): imports the bundle and
// sends back, over IPC, the task identifiers it exports, or why it could not be loaded.
import { register } from "node:module";
import { pathToFileURL } from "node:url";
import { taskIdentifiersOf } from "@corral/sdk";

register(new URL("./corral-resolve-hooks.mjs", import.meta.url));

const send = (message: unknown) =>
  new Promise<void>((resolve) => {
    if (!process.send) return resolve();
    process.send(message, () => resolve());
  });

const path = process.argv[2]!;
try {
  const mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  await send({ ok: true, identifiers: taskIdentifiersOf(mod) });
} catch (err) {
  await send({ ok: false, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) });
}
// The bundle may have left timers or sockets open at import: they must not keep this process.
process.exit(0);
