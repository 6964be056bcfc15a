// The minimum rate an HTTP/1.1 request body must arrive at: a client that trickles a body holds a
// whole connection, so one that averages below the rate is cut off (connection-guard.ts).

export interface BodyProgress {
  /** When the request's headers were read (ms). */
  startedAt: number;
  /** Bytes received since then. */
  bytes: number;
}

export interface BodyRate {
  /** Bytes per second a body must average once `graceMs` has passed; 0: no minimum. */
  minBytesPerSecond: number;
  graceMs: number;
}

/** Whether a request body still arriving at `now` trickles too slowly to keep waiting for. */
export function bodyTooSlow(progress: BodyProgress, rate: BodyRate, now: number): boolean {
  const elapsed = now - progress.startedAt;
  if (rate.minBytesPerSecond <= 0 || elapsed <= rate.graceMs) return false;
  return (progress.bytes * 1000) / elapsed < rate.minBytesPerSecond;
}
