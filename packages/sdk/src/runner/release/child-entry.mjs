// Entry of a release's child process: TypeScript sources through tsx (Corral has no build step),
// a resolve hook so a bundle that left @corral/* imports external finds this SDK, then the child's loop.
import { register as registerHooks } from "node:module";
import { register } from "tsx/esm/api";

register();
registerHooks("./sdk-resolve-hooks.mjs", import.meta.url);
await import("./release-child.ts");
