// A fan-out across two clusters: Render, on the default cluster, submits one Tile per row to a
// "quickstart gpu" cluster; one runner per cluster runs them in this process.
import { Client, Task, type ExecutionContext } from "@corral/sdk";

class Tile extends Task<{ row: number }> {
  static override identifier = { name: "quickstart/Tile", version: "v1.0" };
  override execute(ctx: ExecutionContext) {
    ctx.progress("tiles").done(1);
  }
}
class Render extends Task<{ rows: number; tilesCluster: string }> {
  static override identifier = { name: "quickstart/Render", version: "v1.0" };
  override execute(ctx: ExecutionContext) {
    for (let row = 0; row < this.input.rows; row++) {
      ctx.submitSubtask(new Tile({ row }), { cluster: this.input.tilesCluster });
    }
    ctx.progress("tiles").add(this.input.rows);
  }
}

const client = new Client(); // CORRAL_URL (default http://127.0.0.1:7700) and CORRAL_API_KEY
const gpu = await client.clusters().create("quickstart gpu", { getIfExists: true });
const job = await client.jobs().submit("render", new Render({ rows: 48, tilesCluster: gpu.slug }));

// Each runner runs until it is stopped.
const runners = [
  client.runner({ tasks: [Render] }), // the team's default cluster
  client.runner({ cluster: gpu.slug, tasks: [Tile], concurrency: 8 }),
];
for (const runner of runners) void runner.runForever();
await client.jobs().wait(job.id, {
  onProgress: ({ job }) => console.log(job.progress.map((p) => `${p.label} ${p.done}/${p.total}`).join(", ")),
});
await Promise.all(runners.map((runner) => runner.stop()));
