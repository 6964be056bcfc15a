import { availableParallelism } from "node:os";
import { describe, expect, it } from "vitest";
import { ConfigError } from "./config.js";
import { readServiceConfig } from "./service-config.js";

describe("readServiceConfig", () => {
  it("scavenges on helper threads only on machines with more than 4 CPUs, unless told", () => {
    expect(readServiceConfig(0, {}).parallelScavenge).toBe(availableParallelism() > 4);
    expect(readServiceConfig(0, { CORRAL_GC_PARALLEL_SCAVENGE: "on" }).parallelScavenge).toBe(true);
    expect(readServiceConfig(0, { CORRAL_GC_PARALLEL_SCAVENGE: "false" }).parallelScavenge).toBe(false);
    expect(() => readServiceConfig(0, { CORRAL_GC_PARALLEL_SCAVENGE: "sometimes" })).toThrow(ConfigError);
  });
});
