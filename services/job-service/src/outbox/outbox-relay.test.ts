import { create } from "@bufbuild/protobuf";
import { DispatchAckSchema, TaskState } from "@corral/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJobLedger, type JobLedger } from "../job-ledger.js";
import { DIRECT_READY_MIN } from "../ledger/broker-reports.js";
import { sendBatches } from "./outbox-relay.js";
import { countOutbox } from "../store/outbox-repository.js";
import { findTasks } from "../store/task-query-repository.js";
import {
  completed,
  createJobsTestDb,
  createRecordingDispatcher,
  createTestClusters,
  started,
  task,
  type JobsTestDb,
  type RecordingDispatcher,
} from "../testing/job-test-kit.js";

let t: JobsTestDb;
let dispatcher: RecordingDispatcher;
let ledger: JobLedger;
const team = "team-o";

beforeAll(async () => {
  t = await createJobsTestDb("jobs_outbox");
  dispatcher = createRecordingDispatcher();
  // sweepAfterMs 0: every row not yet acknowledged is due, so tests need not wait.
  ledger = createJobLedger({ db: t.db, clusters: createTestClusters(), dispatcher, sweepAfterMs: 0 });
});
afterAll(async () => {
  await ledger?.relay.close();
  await t?.close();
});

describe("outbox", () => {
  it("keeps rows the broker could not take and re-sends them on the next sweep", async () => {
    dispatcher.failing = true;
    const { job } = await ledger.submitJob({ teamId: team, name: "down", clusterSlug: "", tasks: [task("a"), task("b")] });
    expect(await countOutbox(t.db)).toBe(2);
    await expect(ledger.relay.sweepOnce()).rejects.toThrow();
    dispatcher.failing = false;
    dispatcher.enqueued.length = 0;
    expect(await ledger.relay.sweepOnce()).toBe(2);
    expect(dispatcher.enqueued.map((e) => e.display).sort()).toEqual(["a", "b"]);
    expect(dispatcher.enqueued.every((e) => e.jobId === job.id)).toBe(true);
    expect(await countOutbox(t.db)).toBe(0);
    expect(await ledger.relay.sweepOnce()).toBe(0);
  });

  it("keeps the ready list of a result batch until the broker acknowledges it, or re-sends it", async () => {
    const { job } = await ledger.submitJob({ teamId: team, name: "acks", clusterSlug: "", tasks: [task("p")] });
    const p = dispatcher.enqueued.find((e) => e.jobId === job.id)!;
    const out = await ledger.reportResults({ results: [started(p), completed(p, { subtasks: [task("x"), task("y"), task("z")] })] });
    expect(out.ready).toHaveLength(3);
    expect(await countOutbox(t.db)).toBe(3);
    // Piggybacked ack in the next batch, and an explicit ack.
    const [x, y, z] = out.ready;
    await ledger.reportResults({ results: [started(x!)], dispatched: [create(DispatchAckSchema, { taskId: x!.taskId, attempt: x!.attempt })] });
    expect(await ledger.acknowledgeDispatch([{ taskId: y!.taskId, attempt: y!.attempt }])).toBe(1);
    expect(await countOutbox(t.db)).toBe(1);
    dispatcher.enqueued.length = 0;
    expect(await ledger.relay.sweepOnce()).toBe(1);
    expect(dispatcher.enqueued.map((e) => e.taskId)).toEqual([z!.taskId]);
    expect(await countOutbox(t.db)).toBe(0);
  });

  it("sends a long ready list to the brokers itself, or answers it when they do not take it", async () => {
    const fanOut = async (name: string, brokerDown = false) => {
      dispatcher.enqueued.length = 0;
      const { job } = await ledger.submitJob({ teamId: team, name, clusterSlug: "", tasks: [task("p")] });
      const p = dispatcher.enqueued.find((e) => e.jobId === job.id)!;
      dispatcher.enqueued.length = 0;
      const subtasks = Array.from({ length: DIRECT_READY_MIN }, (_, i) => task(`s${i}`));
      dispatcher.failing = brokerDown;
      return ledger.reportResults({ results: [started(p), completed(p, { subtasks })] }).finally(() => (dispatcher.failing = false));
    };
    // Taken: every subtask went out in the relay's calls (a small first one), none in the answer, no outbox row left.
    const sent = await fanOut("direct");
    expect(sent.ready).toEqual([]);
    expect(dispatcher.enqueued).toHaveLength(DIRECT_READY_MIN);
    expect(new Set(dispatcher.enqueued.map((e) => e.display)).size).toBe(DIRECT_READY_MIN);
    expect(await countOutbox(t.db)).toBe(0);
    // Not taken: the answer carries them, and their outbox rows stay until acknowledged.
    const answered = await fanOut("answered", true);
    expect(answered.ready).toHaveLength(DIRECT_READY_MIN);
    expect(await countOutbox(t.db)).toBe(DIRECT_READY_MIN);
    await ledger.acknowledgeDispatch(answered.ready.map((e) => ({ taskId: e.taskId, attempt: e.attempt })));
    expect(await countOutbox(t.db)).toBe(0);
  });

  it("drops rows of tasks that are no longer queued at that attempt instead of sending them", async () => {
    dispatcher.failing = true;
    const { job } = await ledger.submitJob({ teamId: team, name: "stale", clusterSlug: "", tasks: [task("a")] });
    dispatcher.failing = false;
    await ledger.cancelJob(team, job.id);
    dispatcher.enqueued.length = 0;
    expect(await ledger.relay.sweepOnce()).toBe(0);
    expect(dispatcher.enqueued).toEqual([]);
  });

  it("re-enqueues every queued, dispatchable task of live jobs", async () => {
    const ledger2 = createJobLedger({ db: t.db, clusters: createTestClusters(), dispatcher });
    const { job } = await ledger2.submitJob({
      teamId: "team-requeue",
      name: "all",
      clusterSlug: "",
      tasks: [task("a"), task("b"), task("c", { dependsOn: [0] })],
    });
    dispatcher.enqueued.length = 0;
    const n = await ledger2.relay.requeueAll();
    const mine = dispatcher.enqueued.filter((e) => e.jobId === job.id);
    expect(mine.map((e) => e.display).sort()).toEqual(["a", "b"]);
    expect(n).toBe(dispatcher.enqueued.length);
    // Canceled jobs are not re-sent.
    expect(dispatcher.enqueued.some((e) => e.display === "stale")).toBe(false);
  });

  it("runs the sweeper in the background once started", async () => {
    const ledger3 = createJobLedger({ db: t.db, clusters: createTestClusters(), dispatcher, sweepAfterMs: 0, sweepIntervalMs: 10 });
    dispatcher.failing = true;
    const { job } = await ledger3.submitJob({ teamId: team, name: "bg", clusterSlug: "", tasks: [task("bg")] });
    dispatcher.failing = false;
    const sent = new Promise<void>((resolve) => {
      const enqueue = dispatcher.enqueue;
      dispatcher.enqueue = async (tasks) => {
        await enqueue(tasks);
        if (tasks.some((e) => e.jobId === job.id)) {
          dispatcher.enqueue = enqueue;
          resolve();
        }
      };
    });
    ledger3.relay.start();
    await sent;
    await ledger3.relay.close();
    await ledger3.relay.close();
  });
});

// ResyncDispatch (a broker found its Redis without the marker): attempts leased before the broker
// found it out expire and run again as the next attempt; attempts leased since (their leases are in
// the Redis there is now) keep running; queued tasks are sent to the broker again.
describe("resyncDispatch", () => {
  // Its own database: attempts other tests leave running would count as leased before the loss.
  let t: JobsTestDb;
  let dispatcher: RecordingDispatcher;
  let ledger: JobLedger;
  beforeAll(async () => {
    t = await createJobsTestDb("jobs_outbox_resync");
    dispatcher = createRecordingDispatcher();
    ledger = createJobLedger({ db: t.db, clusters: createTestClusters(), dispatcher, sweepAfterMs: 0 });
  });
  afterAll(async () => {
    await ledger?.relay.close();
    await t?.close();
  });

  it("expires attempts leased before the loss was noticed, keeps later ones, and sends queued tasks again", async () => {
    dispatcher.enqueued.length = 0;
    const { job } = await ledger.submitJob({ teamId: team, name: "resync", clusterSlug: "", tasks: [task("old"), task("new"), task("waiting")] });
    const ready = [...dispatcher.enqueued];
    const by = (display: string) => ready.find((e) => e.display === display)!;
    const noticed = Date.now() - 1_000;
    // The broker reports a start when it leases the attempt, stamped with its own clock.
    await ledger.reportResults({ results: [started(by("old"), "r", noticed - 5_000), started(by("new"), "r", noticed + 500)] });

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

describe("sendBatches", () => {
  it("starts with a small call and grows fourfold to the batch size, covering every row once", () => {
    expect(sendBatches(10_000, 1_000).slice(0, 4)).toEqual([
      [0, 100],
      [100, 500],
      [500, 1_500],
      [1_500, 2_500],
    ]);
    const all = sendBatches(10_000, 1_000);
    expect(all.at(-1)).toEqual([9_500, 10_000]);
    expect(all.every(([s, e], i) => e > s && e - s <= 1_000 && s === (i === 0 ? 0 : all[i - 1]![1]))).toBe(true);
    expect(sendBatches(50, 1_000)).toEqual([[0, 50]]);
    expect(sendBatches(0, 1_000)).toEqual([]);
    expect(sendBatches(7, 2)).toEqual([[0, 2], [2, 4], [4, 6], [6, 7]]);
  });
});
