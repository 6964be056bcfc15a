// The Kubernetes autoscaling path as KEDA walks it: `corral cluster manifests` renders a
// ScaledObject whose metrics-api trigger names a URL on the broker; a GET of that URL with the
// runners' key (bearer, as the TriggerAuthentication gives it) answers JSON whose `valueLocation`
// field is the cluster's backlog: tasks waiting, then held by a runner. The three services run as
// separate processes.
import { Echo, type Client, type Runner } from "@corral/sdk";
import { parseAllDocuments } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../support/cli.js";
import { startRunner, suiteClient, suiteRunner, waitUntil } from "../support/clients.js";
import { startSuite, type Suite } from "../support/suite.js";

interface Trigger {
  type: string;
  metadata: { url: string; valueLocation: string; targetValue: string; authMode: string };
}

describe("KEDA's view of a cluster's backlog", { timeout: 120_000 }, () => {
  let suite: Suite;
  let client: Client;
  let runner: Runner | undefined;

  beforeAll(async () => {
    suite = await startSuite({ label: "e2e-keda" });
    client = suiteClient(suite);
  });
  afterAll(async () => {
    await runner?.stop();
    await suite?.stop();
  });

  it("reads the waiting and then the running tasks through the URL `cluster manifests` renders", async () => {
    const cluster = await client.clusters().create("scaled");
    const rendered = await runCli(["cluster", "manifests", cluster.slug, "--scaler-broker-url", suite.broker.url], {
      env: { CORRAL_URL: suite.registry.url, CORRAL_API_KEY: suite.apiKey },
    });
    expect(rendered.code, rendered.stderr).toBe(0);
    const objects = parseAllDocuments(rendered.stdout).map((d) => d.toJS() as { kind: string; spec: { triggers?: Trigger[] } });
    const [trigger] = objects.find((o) => o.kind === "ScaledObject")!.spec.triggers!;
    expect(trigger!.type).toBe("metrics-api");
    expect(trigger!.metadata.authMode).toBe("bearer");
    /** The whole answer KEDA reads each polling interval. */
    const answer = async () => {
      const res = await fetch(trigger!.metadata.url, { headers: { authorization: `Bearer ${suite.apiKey}` } });
      expect(res.status).toBe(200);
      return (await res.json()) as Record<string, number>;
    };
    /** The value KEDA scales on. */
    const metric = async () => (await answer())[trigger!.metadata.valueLocation];
    expect(await metric()).toBe(0);

    // Two jobs and no runner: both wait, and KEDA would wake the Deployment.
    const jobs = [
      await client.jobs().submit("scaled 1", new Echo({ message: "a", delayMs: 3_000 }), { cluster: cluster.slug }),
      await client.jobs().submit("scaled 2", new Echo({ message: "b", delayMs: 3_000 }), { cluster: cluster.slug }),
    ];
    expect(await metric()).toBe(2);

    // A runner of one slot takes one: still 2 (one waiting, one running), 0 once both are done.
    runner = suiteRunner(suite, { cluster: cluster.slug, tasks: [Echo], concurrency: 1 });
    await startRunner(runner);
    const busy = await waitUntil("a task to run", async () => {
      const a = await answer();
      return a.running === 1 ? a : undefined;
    });
    expect(busy).toEqual({ queued: 1, running: 1, total: 2 });
    for (const job of jobs) await client.jobs().wait(job.id);
    await waitUntil("the backlog to empty", async () => ((await metric()) === 0 ? true : undefined));
  });
});
