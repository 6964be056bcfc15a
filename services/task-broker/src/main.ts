// task-broker alone: `node --import tsx services/task-broker/src/main.ts`.
import { readServiceConfig, runComponents } from "@corral/server-kit";
import { createBrokerComponent } from "./component.js";

const config = readServiceConfig(7703);
await runComponents({
  name: "task-broker",
  config,
  build: async ({ logger }) => [createBrokerComponent(config, { logger })],
});
