// Random runs of jobs through every transition, checking after each step that the counters the
// fast paths rely on (job counters, open children, unmet dependencies, the ready set) agree with a
// recount from scratch.
import { JobState, ResultStatus, type TaskEnvelope, type TaskResult } from "@corral/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJobLedger, type JobLedger } from "../job-ledger.js";
import {
  completed,
  createJobsTestDb,
  createRecordingDispatcher,
  createTestClusters,
  expired,
  failed,
  started,
  task,
  type JobsTestDb,
  type RecordingDispatcher,
} from "../testing/job-test-kit.js";
import { COMPUTED, FAILED_OPTIONAL, SKIPPED } from "./states.js";

let t: JobsTestDb;
let dispatcher: RecordingDispatcher;
let ledger: JobLedger;
const team = "team-r";

beforeAll(async () => {
  t = await createJobsTestDb("jobs_invariants");
  dispatcher = createRecordingDispatcher();
  ledger = createJobLedger({ db: t.db, clusters: createTestClusters(), dispatcher });
});
afterAll(async () => {
  await t?.close();
});

function prng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = s;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

function randomSubmissions(rand: () => number, n: number) {
  return Array.from({ length: n }, (_, i) => {
    const deps = i > 0 && rand() < 0.4 ? [Math.floor(rand() * i)] : [];
    return task(`t${i}`, { dependsOn: deps, optional: rand() < 0.35, maxRetries: rand() < 0.3 ? 1 : 0, clusterSlug: rand() < 0.2 ? "gpu" : "" });
  });
}

async function checkInvariants(jobId: string, dispatchable: Map<string, TaskEnvelope>) {
  const job = (await ledger.getJob(team, jobId)).job;
  const tasks = await t.db
    .selectFrom("tasks")
    .select(["id", "parent_id", "state", "attempt", "waiting_deps", "open_children"])
    .where("job_id", "=", jobId)
    .execute();
  const deps = await t.db
    .selectFrom("task_deps")
    .innerJoin("tasks", "tasks.id", "task_deps.task_id")
    .select(["task_deps.task_id", "task_deps.depends_on_id"])
    .where("tasks.job_id", "=", jobId)
    .execute();
  const byState = new Map<number, number>();
  for (const x of tasks) byState.set(x.state, (byState.get(x.state) ?? 0) + 1);
  expect({
    queued: job.queued,
    running: job.running,
    computed: job.computed,
    failed: job.failed,
    skipped: job.skipped,
    failed_optional: job.failed_optional,
    canceled: job.canceled_tasks,
    total: job.total,
  }).toEqual({
    queued: byState.get(1) ?? 0,
    running: byState.get(2) ?? 0,
    computed: byState.get(3) ?? 0,
    failed: byState.get(4) ?? 0,
    skipped: byState.get(5) ?? 0,
    failed_optional: byState.get(6) ?? 0,
    canceled: byState.get(7) ?? 0,
    total: tasks.length,
  });
  const children = new Map<string, typeof tasks>();
  for (const x of tasks) if (x.parent_id) children.set(x.parent_id, [...(children.get(x.parent_id) ?? []), x]);
  const doneMemo = new Map<string, boolean>();
  const done = (x: (typeof tasks)[number]): boolean => {
    const known = doneMemo.get(x.id);
    if (known !== undefined) return known;
    const d = (x.state === COMPUTED || x.state === SKIPPED || x.state === FAILED_OPTIONAL) && (children.get(x.id) ?? []).every(done);
    doneMemo.set(x.id, d);
    return d;
  };
  const byId = new Map(tasks.map((x) => [x.id, x]));
  for (const x of tasks) {
    const open = (children.get(x.id) ?? []).filter((c) => !done(c)).length;
    expect({ id: x.id, open_children: x.open_children }).toEqual({ id: x.id, open_children: open });
    // Unmet dependencies matter for tasks that may still run (now or after a retry); a skipped
    // task keeps whatever count it had.
    if (x.state === SKIPPED || x.state === COMPUTED || x.state === FAILED_OPTIONAL) continue;
    const waiting = deps.filter((d) => d.task_id === x.id && !done(byId.get(d.depends_on_id)!)).length;
    expect({ id: x.id, state: x.state, waiting_deps: x.waiting_deps }).toEqual({ id: x.id, state: x.state, waiting_deps: waiting });
  }
  // What the broker was told is ready is exactly what is queued with its dependencies met.
  const expected = tasks.filter((x) => x.state === 1 && x.waiting_deps === 0).map((x) => `${x.id}@${x.attempt}`).sort();
  const held = [...dispatchable.values()].filter((e) => e.jobId === jobId).map((e) => `${e.taskId}@${e.attempt}`).sort();
  expect(held).toEqual(expected);
  const everythingDone = tasks.filter((x) => !x.parent_id).every(done);
  if (job.failed === 0 && !job.canceled) expect(job.state === JobState.COMPLETED).toBe(everythingDone);
  // The end time is stamped exactly while the job is in a final state.
  const final = [JobState.COMPLETED, JobState.FAILED, JobState.CANCELED].includes(job.state);
  expect({ state: job.state, ended: job.end_time !== null }).toEqual({ state: job.state, ended: final });
  return job;
}

describe("ledger invariants under random runs", () => {
  it.each([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])("keeps every counter consistent (seed %i)", async (seed) => {
    const rand = prng(seed);
    dispatcher.enqueued.length = 0;
    const { job } = await ledger.submitJob({ teamId: team, name: `random-${seed}`, clusterSlug: "", tasks: randomSubmissions(rand, 3 + Math.floor(rand() * 4)) });
    const dispatchable = new Map<string, TaskEnvelope>(dispatcher.enqueued.map((e) => [e.taskId, e]));
    const runningNow = new Map<string, TaskEnvelope>();
    let depth = 0;
    for (let step = 0; step < 50; step++) {
      const roll = rand();
      if (roll < 0.04) {
        await ledger.cancelJob(team, job.id);
        dispatchable.clear();
      } else if (roll < 0.1) {
        dispatcher.enqueued.length = 0;
        await ledger.retryJob(team, job.id);
        for (const e of dispatcher.enqueued) dispatchable.set(e.taskId, e);
      } else {
        const results: TaskResult[] = [];
        for (const e of [...dispatchable.values()]) {
          if (rand() < 0.6) {
            results.push(started(e));
            runningNow.set(e.taskId, e);
            dispatchable.delete(e.taskId);
          }
        }
        for (const e of [...runningNow.values()]) {
          const r = rand();
          if (r < 0.45) {
            const subs = depth < 12 && rand() < 0.6 ? randomSubmissions(rand, 1 + Math.floor(rand() * 4)) : [];
            if (subs.length > 0) depth += 1;
            results.push(completed(e, { subtasks: subs, progress: [{ label: "p", total: 2, done: 1 }] }));
          } else if (r < 0.65) results.push(failed(e));
          else if (r < 0.7) results.push(failed(e, { countsAsRetry: false }));
          else if (r < 0.75) results.push(expired(e));
          else continue;
          runningNow.delete(e.taskId);
        }
        const out = await ledger.reportResults({ results });
        for (const o of out.outcomes) if (o.status !== ResultStatus.APPLIED) runningNow.delete(o.taskId);
        for (const e of out.ready) dispatchable.set(e.taskId, e);
      }
      // Tasks canceled, skipped or re-attempted are no longer dispatchable at the attempt we hold.
      const rows = await t.db.selectFrom("tasks").select(["id", "state", "attempt"]).where("job_id", "=", job.id).execute();
      const live = new Set(rows.filter((r) => r.state === 1).map((r) => `${r.id}@${r.attempt}`));
      for (const [id, e] of dispatchable) if (!live.has(`${id}@${e.attempt}`)) dispatchable.delete(id);
      const running = new Set(rows.filter((r) => r.state === 2).map((r) => `${r.id}@${r.attempt}`));
      for (const [id, e] of runningNow) if (!running.has(`${id}@${e.attempt}`)) runningNow.delete(id);
      await checkInvariants(job.id, dispatchable);
    }
  });
});
