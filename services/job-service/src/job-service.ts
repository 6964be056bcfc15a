// corral.jobs.v1.JobService handlers: translate proto to the domain and back; the caller's team
// scopes everything. Grouped by concern in handlers/: commands, reads, whole-job views.
import type { ServiceImpl } from "@connectrpc/connect";
import type { JobService } from "@corral/proto";
import { jobCommandHandlers } from "./handlers/job-command-handlers.js";
import { jobReadHandlers } from "./handlers/job-read-handlers.js";
import { jobViewHandlers } from "./handlers/job-view-handlers.js";
import type { JobLedger } from "./job-ledger.js";

export function createJobServiceImpl(ledger: JobLedger): ServiceImpl<typeof JobService> {
  return { ...jobCommandHandlers(ledger), ...jobReadHandlers(ledger), ...jobViewHandlers(ledger) };
}
