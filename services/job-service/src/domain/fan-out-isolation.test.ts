// A 10,000-subtask result's transaction locks only its own job (and its team's usage row): held
// open just before commit, with every subtask written, another team's result still applies and
// its job completes. The broker's lanes rely on this to keep one team's fan-out from stalling others.
import { JobState, ResultStatus } from "@corral/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJobLedger, type JobLedger } from "../job-ledger.js";
import { createJobsStore } from "../store/jobs-store.js";
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
import { applyResults } from "./apply-results.js";
import type { JobsStore } from "./ports.js";
import { DEFAULT_MAX_INPUT_BYTES } from "./task-plan.js";
import { UNLIMITED_OPEN_TASKS } from "./team-quota.js";

const FAN_OUT = 10_000;

let t: JobsTestDb;
let dispatcher: RecordingDispatcher;
let ledger: JobLedger;

beforeAll(async () => {
  t = await createJobsTestDb("jobs_fanout_isolation");
  dispatcher = createRecordingDispatcher();
  ledger = createJobLedger({ db: t.db, clusters: createTestClusters(), dispatcher });
});
afterAll(async () => {
  await t?.close();
});

/** The store, except that a transaction adding `threshold` open tasks or more waits for `release` before it commits. */
function holdingStore(threshold: number) {
  const store = createJobsStore(t.db);
  let arrive!: () => void;
  let release!: () => void;
  const arrived = new Promise<void>((resolve) => (arrive = resolve));
  const released = new Promise<void>((resolve) => (release = resolve));
  const held: JobsStore = {
    ...store,
    transaction: (work) =>
      store.transaction((tx) =>
        work({
          ...tx,
          usage: {
            ...tx.usage,
            async addOpenTasks(deltas, limit) {
              const refused = await tx.usage.addOpenTasks(deltas, limit);
              if ([...deltas.values()].some((d) => d >= threshold)) {
                arrive();
                await released;
              }
              return refused;
            },
          },
        }),
      ),
  };
  return { store: held, arrived, release };
}

async function submitRoot(teamId: string, name: string) {
  dispatcher.enqueued.length = 0;
  const { job } = await ledger.submitJob({ teamId, name, clusterSlug: "", tasks: [task(name)] });
  const root = dispatcher.enqueued[0]!;
  await ledger.reportResults({ results: [started(root)] });
  return { jobId: job.id, root };
}

const tasksOf = async (jobId: string) =>
  Number((await t.db.selectFrom("tasks").select((eb) => eb.fn.countAll().as("n")).where("job_id", "=", jobId).executeTakeFirstOrThrow()).n);

describe("a fan-out's transaction", () => {
  it("does not hold up another team's result: that job completes while the fan-out is uncommitted", async () => {
    const fan = await submitRoot("team-fan", "fan");
    const ping = await submitRoot("team-ping", "ping");
    const { store, arrived, release } = holdingStore(FAN_OUT / 2);
    const subtasks = Array.from({ length: FAN_OUT }, (_, i) => task("child", { display: `child ${i}` }));
    const heavy = applyResults(store, createTestClusters(), { results: [completed(fan.root, { subtasks })] }, {
      maxInputBytes: DEFAULT_MAX_INPUT_BYTES,
      maxOpenTasks: UNLIMITED_OPEN_TASKS,
    });
    try {
      await arrived;
      // Every subtask row is written and the fan-out's locks are held: the other team is not stopped.
      const out = await ledger.reportResults({ results: [completed(ping.root)] });
      expect(out.outcomes.map((o) => o.status)).toEqual([ResultStatus.APPLIED]);
      expect((await ledger.getJob("team-ping", ping.jobId)).job.state).toBe(JobState.COMPLETED);
      expect(await tasksOf(fan.jobId)).toBe(1);
    } finally {
      release();
    }
    const applied = await heavy;
    expect(applied.ready).toHaveLength(FAN_OUT);
    expect(await tasksOf(fan.jobId)).toBe(FAN_OUT + 1);
  });
});
