// Jobs and tasks from the SDK print as plain values, and stay the protobuf messages they were.
import { inspect } from "node:util";
import { create, equals, toBinary } from "@bufbuild/protobuf";
import { createRouterTransport } from "@connectrpc/connect";
import { JobSchema, JobService, JobState, TaskState } from "@corral/proto";
import { describe, expect, it } from "vitest";
import { Client } from "./client.js";

const job = {
  id: "j-1",
  name: "tiles",
  clusterSlug: "demo",
  state: JobState.RUNNING,
  progress: [{ label: "tiles", total: 24n, done: 3n }],
  stats: { tasksByState: { queued: 1, running: 2, total: 3 }, computeTime: { seconds: 2n, nanos: 500_000_000 } },
};

const client = new Client({
  transport: createRouterTransport((router) =>
    router.service(JobService, {
      getJob: () => ({ job }),
      listTasks: () => ({ tasks: [{ id: "t-1", jobId: "j-1", identifier: { name: "my/Leaf", version: "v1.0" }, state: TaskState.QUEUED }] }),
    }),
  ),
});

describe("SDK values print well", () => {
  it("JSON.stringify(job) gives state names and plain numbers", async () => {
    const found = await client.jobs().find("j-1");
    const json = JSON.parse(JSON.stringify(found)) as Record<string, unknown>;
    expect(json).toMatchObject({
      id: "j-1",
      state: "running",
      progress: [{ label: "tiles", total: 24, done: 3 }],
      stats: { computeTimeMs: 2500, tasksByState: { queued: 1, running: 2, total: 3 } },
    });
    expect(json).not.toHaveProperty("$typeName");
  });

  it("console.log(job) shows the same plain view", async () => {
    const text = inspect(await client.jobs().find("j-1"));
    expect(text).toContain("state: 'running'");
    expect(text).toContain("total: 24");
    expect(text).not.toContain("$typeName");
    expect(text).not.toContain("24n");
  });

  it("tasks print with their identifier and state by name", async () => {
    const [task] = await client.jobs().tasks("j-1");
    expect(JSON.parse(JSON.stringify(task))).toMatchObject({ id: "t-1", identifier: "my/Leaf@v1.0", state: "queued" });
  });

  it("the fields users read are unchanged, and the value is still the message", async () => {
    const found = await client.jobs().find("j-1");
    expect(found.state).toBe(JobState.RUNNING);
    expect(found.progress[0]!.total).toBe(24n);
    expect(equals(JobSchema, found, create(JobSchema, job))).toBe(true);
    expect(toBinary(JobSchema, found)).toEqual(toBinary(JobSchema, create(JobSchema, job)));
  });
});
