// `corral job submit demo`: the Mandelbrot map-reduce on the default cluster (or --cluster), with
// its tiles on the demo-tiles cluster that `corral dev` creates and serves.
import { registerJobTemplate } from "../templates.js";
import { DEMO_TILES_CLUSTER, Render } from "./mandelbrot.js";

export function registerDemoTemplate(): void {
  registerJobTemplate("demo", {
    description: "Mandelbrot map-reduce: tiles fan out to the demo-tiles cluster, then assemble into the runner's .corral/demo/",
    build: () => ({
      name: "demo: mandelbrot",
      tasks: [
        new Render({
          width: 120,
          height: 48,
          tiles: 24,
          maxIterations: 500,
          tilesCluster: DEMO_TILES_CLUSTER,
          // Empty: Assemble writes into its runner's demo folder (`corral dev`: <data dir>/demo).
          outDir: "",
        }),
      ],
    }),
  });
}
