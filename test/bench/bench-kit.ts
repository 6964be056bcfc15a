// What the bench scripts share: a process's CPU and memory from /proc, and waiting for a job's end.
import { readFileSync } from "node:fs";
import { JobState } from "@corral/proto";
import type { Client } from "@corral/sdk";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function procStats(pid: number): { rssMb: number; cpuTicks: number; exitedChildTicks: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15 of /proc/pid/stat (index 11 and 12 after the comm);
  // cutime and cstime (16, 17) hold what its children used once they exited and were reaped.
  return {
    rssMb: rssKb / 1024,
    cpuTicks: Number(fields[11]) + Number(fields[12]),
    exitedChildTicks: Number(fields[13]) + Number(fields[14]),
  };
}

const terminal = new Set([JobState.COMPLETED, JobState.FAILED, JobState.CANCELED]);

/** Polls the job's progress every `pollMs` until it ends; its end state. */
export async function waitJob(client: Client, jobId: string, pollMs: number, timeoutMs = 600_000): Promise<JobState> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const p = await client.jobs().progress(jobId);
    if (terminal.has(p.state)) return p.state;
    if (Date.now() > deadline) throw new Error(`job ${jobId} did not finish in time (state ${JobState[p.state]})`);
    await sleep(pollMs);
  }
}
