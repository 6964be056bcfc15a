// ResyncDispatch: a broker found its Redis empty, so every lease and queued stream entry is gone.
// Attempts running since before the broker found it out are recorded as expired (fenced by
// attempt, so a result that still arrives for one is rejected as stale and the next attempt runs
// once); those that started later hold leases in the Redis there is now and keep running. Then
// every queued task is sent again (the broker deduplicates per task attempt). Running it twice is
// harmless.
import { create } from "@bufbuild/protobuf";
import { TaskResultSchema } from "@corral/proto";
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import type { ApplyResultsInput } from "../domain/apply-results.js";
import type { JobsDatabase } from "../store/database.js";
import { runningAttemptsPage } from "../store/resync-repository.js";

export interface ResyncDeps {
  db: Kysely<JobsDatabase>;
  reportResults(input: ApplyResultsInput): Promise<unknown>;
  requeueAll(): Promise<number>;
  logger?: Logger;
}

export async function resyncDispatch(
  deps: ResyncDeps,
  reason: string,
  lostSince: Date = new Date(),
): Promise<{ expired: number; requeued: number }> {
  let expired = 0;
  let after = "";
  for (;;) {
    const page = await runningAttemptsPage(deps.db, lostSince, after, 500);
    if (page.length === 0) break;
    await deps.reportResults({
      results: page.map((t) =>
        create(TaskResultSchema, { taskId: t.id, attempt: t.attempt, outcome: { case: "expired", value: {} } }),
      ),
    });
    expired += page.length;
    after = page[page.length - 1]!.id;
  }
  const requeued = await deps.requeueAll();
  // A broker's first start on a new deployment asks too and finds nothing: not worth a warning.
  const level = expired + requeued > 0 ? "warn" : "info";
  deps.logger?.[level]({ reason, expired, requeued }, "dispatch resynchronised after the broker lost its Redis data");
  return { expired, requeued };
}
