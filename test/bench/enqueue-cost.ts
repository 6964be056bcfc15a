// The broker's CPU per enqueued envelope: Enqueue calls of 1,000 envelopes over gRPC from 3 lanes,
// as job-service's outbox relay sends them, against a suite of the three services. Prints one
// JSON line per round (the first round after a warm-up of 10 calls).
//   npx tsx test/bench/enqueue-cost.ts [rounds, default 4]
// To compare two commits, run it in a checkout of each, alternating.
import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { DispatchService, TaskEnvelopeSchema } from "@corral/proto";
import { createServiceClient } from "@corral/server-kit";
import { startSuite } from "../support/suite.js";
import { procStats } from "./bench-kit.js";

const rounds = Number(process.argv[2] ?? 4);
const CALLS = 30;
const PER_CALL = 1_000;

/** CPU of a process so far, ms (10 ms ticks). */
const cpuMs = (pid: number) => procStats(pid).cpuTicks * 10;

const suite = await startSuite({ label: "bench-enqueue" });
// As job-service calls the broker: gRPC on one HTTP/2 session, the internal key.
const dispatch = createServiceClient(DispatchService, { baseUrl: suite.broker.url, apiKey: suite.serviceKey });
const jobId = randomUUID();
const envelopes = (n: number) =>
  Array.from({ length: n }, () =>
    create(TaskEnvelopeSchema, {
      taskId: randomUUID(),
      jobId,
      teamId: suite.teamId,
      clusterId: "c-bench",
      clusterSlug: "default",
      identifier: { name: "bench/Noop", version: "v1.0" },
      attempt: 1,
      display: "bench/Noop",
      jobName: "bench-enqueue",
      traceparent: `00-${jobId.replace(/-/g, "")}-0123456789abcdef-01`,
    }),
  );
try {
  for (let i = 0; i < 10; i++) await dispatch.enqueue({ tasks: envelopes(PER_CALL) });
  for (let round = 0; round < rounds; round++) {
    const calls = Array.from({ length: CALLS }, () => envelopes(PER_CALL));
    const cpu0 = cpuMs(suite.broker.child.pid!);
    const t0 = performance.now();
    let next = 0;
    await Promise.all([0, 1, 2].map(async () => {
      while (next < calls.length) await dispatch.enqueue({ tasks: calls[next++]! });
    }));
    const n = CALLS * PER_CALL;
    const us = ((cpuMs(suite.broker.child.pid!) - cpu0) * 1000) / n;
    console.log(JSON.stringify({ round, envelopes: n, broker_cpu_us_per_envelope: Math.round(us * 10) / 10, ms: Math.round(performance.now() - t0) }));
  }
} finally {
  await suite.stop();
}
