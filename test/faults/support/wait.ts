// Waiting on conditions that have no event, and printing a run's figures for the README.
import { appendFileSync } from "node:fs";

export async function untilTrue(what: string, probe: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 20; ; delay = Math.min(delay * 2, 250)) {
    if (await probe()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, delay));
  }
}

/** Prints the figures of a fault run (and appends them to $CORRAL_FAULT_REPORT when set). */
export function report(fault: string, figures: Record<string, number>): void {
  const line = `${fault}: ${JSON.stringify(figures)}`;
  console.log(line);
  if (process.env.CORRAL_FAULT_REPORT) appendFileSync(process.env.CORRAL_FAULT_REPORT, `${line}\n`);
}

/** Reads one counter or gauge (summed over its labels) from a service's /metrics. */
export async function metricValue(baseUrl: string, name: string): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  let sum = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}
