// The three services in one process on one port, as `corral dev` runs them, on the stores the
// environment names: startSuite's `oneProcess` (the bench's --one-process).
import { readServiceConfig, runComponents } from "@corral/server-kit";
import { createRegistryComponent } from "@corral/cluster-registry/component";
import { createJobsComponent } from "@corral/job-service/component";
import { createBrokerComponent } from "@corral/task-broker/component";

const config = readServiceConfig(7700);
await runComponents({
  name: "corral",
  config,
  build: async ({ logger }) => [await createRegistryComponent(config), await createJobsComponent(config, { logger }), createBrokerComponent(config, { logger })],
});
