#!/usr/bin/env node
// Runs the TypeScript sources through tsx: Corral has no build step.
import { register } from "tsx/esm/api";

register();
await import("../src/main.ts");
