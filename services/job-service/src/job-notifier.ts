// One LISTEN connection per process for job changes, fanned out to in-process watchers by job id.
// Writers NOTIFY (channel JOB_CHANGES_CHANNEL, payload = job id) inside their transactions.
import { createPgChannel } from "@corral/server-kit";
import type { JobChanges } from "./domain/ports.js";
import { JOB_CHANGES_CHANNEL } from "./store/database.js";

/** JobChanges over LISTEN; `onChange` is also called after a reconnect. */
export interface JobNotifier extends JobChanges {
  close(): Promise<void>;
}

export function createJobNotifier(options: { url: string; onError?: (err: unknown) => void }): JobNotifier {
  const channel = createPgChannel({ ...options, channel: JOB_CHANGES_CHANNEL, applicationName: "job-service-listen" });
  return {
    subscribe: (jobId, onChange) => channel.subscribe(jobId, onChange),
    close: () => channel.close(),
  };
}
