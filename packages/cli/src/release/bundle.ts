// Builds a task package into one self-contained ESM file with esbuild: its npm dependencies inside,
// Node's built-in modules and @corral/* left as imports (the release runner provides the SDK, so a
// task's Task and ExecutionContext are the runner's own), for Node 20 and later.
import { join, resolve } from "node:path";
import { build, type Message } from "esbuild";
import { UsageError } from "../exit-codes.js";

/**
 * CommonJS dependencies that `require()` a built-in need a `require` in an ES module; esbuild's
 * shim throws without one.
 */
const requireShim = 'import { createRequire as __corralCreateRequire } from "node:module";\nconst require = __corralCreateRequire(import.meta.url);';

function formatMessages(messages: Message[]): string {
  return messages
    .slice(0, 10)
    .map((m) => (m.location ? `${m.location.file}:${m.location.line}:${m.location.column}: ${m.text}` : m.text))
    .join("\n");
}

/** Bundles `entry` (relative to `dir`) into `outfile`. */
export async function bundlePackage(dir: string, entry: string, outfile: string): Promise<void> {
  try {
    const result = await build({
      absWorkingDir: resolve(dir),
      entryPoints: [join(resolve(dir), entry)],
      outfile,
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      banner: { js: requireShim },
      external: ["@corral/*"],
      logLevel: "silent",
      write: true,
    });
    if (result.errors.length > 0) throw new UsageError(`cannot bundle ${entry}:\n${formatMessages(result.errors)}`);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    const errors = (err as { errors?: Message[] }).errors;
    if (errors?.length) throw new UsageError(`cannot bundle ${entry}:\n${formatMessages(errors)}`);
    throw err;
  }
}
