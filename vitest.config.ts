import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["packages/*/src/**/*.test.ts", "services/*/src/**/*.test.ts", "test/**/*.test.ts"],
    exclude: ["**/node_modules/**", "test/bench/**", "test/soak/**"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: more workers only contend; each file has its own database and key prefix.
    maxWorkers: 3,
  },
});
