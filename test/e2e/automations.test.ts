// Automations across real processes: two job-service replicas fire an every-second schedule with
// exactly one job per fire time; an S3 trigger against an S3-compatible server (SigV4 checked)
// submits one job per new object.
import aws4 from "aws4";
import { JobService } from "@corral/proto";
import { createServiceClient } from "@corral/server-kit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { suiteClient } from "../support/clients.js";
import { spawnService, type ServiceProcess } from "../support/processes.js";
import { startTestS3Server, type TestS3Server } from "../support/s3-server.js";
import { startSuite, type Suite } from "../support/suite.js";

const S3_KEY_ID = "AKIATESTAUTOMATIONS";
const S3_SECRET = "test-secret-automations";

let suite: Suite;
let second: ServiceProcess;
let s3: TestS3Server;
let cluster: string;

beforeAll(async () => {
  s3 = await startTestS3Server({ [S3_KEY_ID]: S3_SECRET });
  suite = await startSuite({
    label: "automations_e2e",
    services: ["registry", "jobs", "broker"],
    env: { CORRAL_AUTOMATION_STORAGE_POLL: "200ms", TEST_S3_SECRET: S3_SECRET },
  });
  second = await spawnService({ name: "job-service-2", entry: "services/job-service/src/main.ts", env: suite.env });
  cluster = (await suiteClient(suite).clusters().create("automations")).slug;
}, 120_000);
afterAll(async () => {
  await second?.stop(5_000);
  await suite?.stop();
  await s3?.close();
});

const jobsRpc = () => createServiceClient(JobService, { baseUrl: suite.jobs.url, apiKey: suite.apiKey });

async function inputsOf(automationId: string): Promise<Record<string, any>[]> {
  const { jobs } = await jobsRpc().queryJobs({ automationId, pageSize: 1000, ascending: true });
  const out = [];
  for (const j of jobs) {
    const { tasks } = await jobsRpc().listTasks({ jobId: j.id, includeInput: true });
    out.push(JSON.parse(new TextDecoder().decode(tasks[0]!.input)));
  }
  return out;
}

async function until<T>(what: string, f: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe("automations across job-service replicas", () => {
  it("an every-second schedule has exactly one job per fire time with two replicas running", async () => {
    const client = suiteClient(suite);
    const a = await client.automations().create({ name: "every-second", task: "e2e/Tick@v1.0", cluster, triggers: [{ cron: "* * * * * *" }] });
    await until("8 fires", async () => ((await inputsOf(a.id)).length >= 8 ? true : undefined));
    await client.automations().pause(a.id);
    const times = (await inputsOf(a.id)).map((i) => new Date(i.scheduledTime as string).getTime()).sort((x, y) => x - y);
    // Every scheduled second from the first to the last has exactly one job.
    const expected = Array.from({ length: (times[times.length - 1]! - times[0]!) / 1000 + 1 }, (_, i) => times[0]! + i * 1000);
    expect(times).toEqual(expected);
    const shown = await client.automations().find(a.id, { recentFires: 1000 });
    expect(shown.recentFires.filter((f) => f.jobId !== "").length).toBe(times.length);
  }, 90_000);

  it("an S3 trigger submits one job per new object, with its location and size", async () => {
    const client = suiteClient(suite);
    const a = await client.automations().create({
      name: "s3-ingest",
      task: "e2e/Ingest@v1.0",
      cluster,
      input: { kind: "s3" },
      triggers: [{ s3: { bucket: "data", prefix: "in/", endpoint: s3.url, accessKeyId: S3_KEY_ID, secretAccessKeyRef: "env:TEST_S3_SECRET" } }],
    });
    // Signed PUTs through aws4, checked by the server's own SigV4 verification.
    const put = async (key: string, body: string) => {
      const url = new URL(s3.url);
      const req = aws4.sign(
        { host: url.host, path: `/data/${key}`, method: "PUT", service: "s3", region: "us-east-1", body, headers: {} },
        { accessKeyId: S3_KEY_ID, secretAccessKey: S3_SECRET },
      );
      const res = await fetch(`${s3.url}/data/${key}`, { method: "PUT", headers: req.headers as Record<string, string>, body });
      expect(res.status).toBe(200);
    };
    for (let i = 0; i < 5; i++) await put(`in/obj-${i}.txt`, `x`.repeat(i + 1));
    await put("other/skip.txt", "not under the prefix");
    await until("5 jobs", async () => ((await inputsOf(a.id)).length >= 5 ? true : undefined));
    for (let i = 5; i < 8; i++) await put(`in/obj-${i}.txt`, `x`.repeat(i + 1));
    const inputs = await until("8 jobs", async () => {
      const got = await inputsOf(a.id);
      return got.length >= 8 ? got : undefined;
    });
    expect(inputs.length).toBe(8);
    expect(inputs.map((i) => i.object.location).sort()).toEqual(Array.from({ length: 8 }, (_, i) => `s3://data/in/obj-${i}.txt`));
    expect(inputs.every((i) => i.kind === "s3" && i.object.size === Number(/obj-(\d)/.exec(i.object.key)![1]) + 1)).toBe(true);
    expect(s3.refused).toBe(0);
    // The reference is shown as given, never the secret.
    const shown = await client.automations().find(a.id);
    expect(JSON.stringify(shown.triggers[0]!.kind.value)).not.toContain(S3_SECRET);
  }, 90_000);
});
