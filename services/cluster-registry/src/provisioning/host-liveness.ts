// Whether a host can take runners, from its row and the clock: the pure rule the reconciler and
// ListHosts share. A host is OFFLINE once its stream has been gone (or silent) past the grace, so a
// short network blip does not move its runners (the Nomad lesson: a short grace gives false "lost").
import type { HostRow } from "../store/database.js";

export type HostLiveness = "online" | "draining" | "unreachable" | "offline";

export function hostLiveness(host: Pick<HostRow, "connection_id" | "last_seen_time" | "draining">, nowMs: number, graceMs: number): HostLiveness {
  const silentMs = nowMs - host.last_seen_time.getTime();
  if (silentMs > graceMs) return "offline";
  if (host.connection_id === null) return "unreachable";
  return host.draining ? "draining" : "online";
}
