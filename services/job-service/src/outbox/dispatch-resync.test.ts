// ResyncDispatch (a broker found its Redis without the marker): attempts leased before the broker
// found it out expire and run again as the next attempt; attempts leased since (their leases are in
// the Redis there is now) keep running; queued tasks are sent to the broker again.
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { TaskResultSchema, TaskStartedSchema, TaskState } from "@corral/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJobLedger, type JobLedger } from "../job-ledger.js";
import { findTasks } from "../store/task-query-repository.js";
import {
  createJobsTestDb,
  createRecordingDispatcher,
  createTestClusters,
  task,
  type JobsTestDb,
  type RecordingDispatcher,
} from "../testing/job-test-kit.js";

let t: JobsTestDb;
let dispatcher: RecordingDispatcher;
let ledger: JobLedger;
const team = "team-r";

beforeAll(async () => {
  t = await createJobsTestDb("jobs_resync");
  dispatcher = createRecordingDispatcher();
  ledger = createJobLedger({ db: t.db, clusters: createTestClusters(), dispatcher });
});
afterAll(async () => {
  await ledger?.relay.close();
  await t?.close();
});

/** The broker reports a start when it leases the attempt, stamped with its own clock. */
const leasedAt = (target: { taskId: string; attempt: number }, ms: number) =>
  create(TaskResultSchema, {
    taskId: target.taskId,
    attempt: target.attempt,
    outcome: { case: "started", value: create(TaskStartedSchema, { runnerId: "r", startTime: timestampFromMs(ms) }) },
  });

describe("resyncDispatch", () => {
  it("expires attempts leased before the loss was noticed, keeps later ones, and sends queued tasks again", async () => {
    dispatcher.enqueued.length = 0;
    const { job } = await ledger.submitJob({ teamId: team, name: "resync", clusterSlug: "", tasks: [task("old"), task("new"), task("waiting")] });
    const ready = [...dispatcher.enqueued];
    const by = (display: string) => ready.find((e) => e.display === display)!;
    const noticed = Date.now() - 1_000;
    await ledger.reportResults({ results: [leasedAt(by("old"), noticed - 5_000), leasedAt(by("new"), noticed + 500)] });

    dispatcher.enqueued.length = 0;
    const { expired, requeued } = await ledger.resyncDispatch("test", new Date(noticed));
    expect(expired).toBe(1);
    const rows = await findTasks(t.db, job.id, ready.map((e) => e.taskId));
    const state = (display: string) => rows.find((r) => r.id === by(display).taskId)!;
    expect([state("old").state, state("old").attempt]).toEqual([TaskState.QUEUED, by("old").attempt + 1]);
    expect([state("new").state, state("new").attempt]).toEqual([TaskState.RUNNING, by("new").attempt]);
    expect(state("waiting").state).toBe(TaskState.QUEUED);
    // The expired attempt's successor and the task that never left the queue go to the broker again.
    expect(requeued).toBeGreaterThanOrEqual(2);
    expect(dispatcher.enqueued.map((e) => [e.display, e.attempt])).toEqual(
      expect.arrayContaining([
        ["old", by("old").attempt + 1],
        ["waiting", by("waiting").attempt],
      ]),
    );
    expect(dispatcher.enqueued.some((e) => e.display === "new")).toBe(false);
  });
});
