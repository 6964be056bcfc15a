// job-service alone: `node --import tsx services/job-service/src/main.ts`.
import { readServiceConfig, runComponents } from "@corral/server-kit";
import { createJobsComponent } from "./component.js";

const config = readServiceConfig(7702);
await runComponents({
  name: "job-service",
  config,
  build: async ({ logger }) => [await createJobsComponent(config, { logger })],
});
