// cluster-registry alone: `node --import tsx services/cluster-registry/src/main.ts` (or `corral serve cluster-registry`).
import { readServiceConfig, runComponents } from "@corral/server-kit";
import { createRegistryComponent } from "./component.js";

const config = readServiceConfig(7701);
await runComponents({ name: "cluster-registry", config, build: async () => [await createRegistryComponent(config)] });
