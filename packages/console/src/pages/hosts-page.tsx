// Hosts running `corral agent`, with capacity and the runners placed on them; says so when this
// server does not offer HostService.
import { useSession } from "../api/context.js";
import { FailureOrUnavailable, StateBadge, usePolling } from "../ui/common.js";
import { formatBytes, formatTime, hostStateLabel } from "../ui/format.js";

export function HostsPage() {
  const session = useSession();
  const hosts = usePolling((signal) => session.clients.hosts.listHosts({ pageSize: 500 }, { signal }), [], 5_000);
  return (
    <>
      <h1>Hosts</h1>
      {hosts.error !== undefined && <FailureOrUnavailable error={hosts.error} what="Hosts" />}
      {hosts.data && hosts.data.hosts.length === 0 && <p className="note">No host has connected.</p>}
      {hosts.data && hosts.data.hosts.length > 0 && (
        <table className="list" aria-label="Hosts">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">State</th>
              <th scope="col">CPU cores (used / all)</th>
              <th scope="col">Memory (used / all)</th>
              <th scope="col">GPUs</th>
              <th scope="col">Runners</th>
              <th scope="col">Last seen</th>
            </tr>
          </thead>
          <tbody>
            {hosts.data.hosts.map((h) => (
              <tr key={h.id}>
                <td>{h.name}</td>
                <td>
                  <StateBadge label={hostStateLabel(h.state)} />
                </td>
                <td>
                  {h.used?.cpuCores ?? 0} / {h.capacity?.cpuCores ?? 0}
                </td>
                <td>
                  {formatBytes(h.used?.memoryBytes ?? 0n)} / {formatBytes(h.capacity?.memoryBytes ?? 0n)}
                </td>
                <td>
                  {h.capacity?.gpuCount ?? 0} {h.capacity?.gpuType}
                </td>
                <td>{h.runners.map((r) => r.clusterSlug).join(", ") || "—"}</td>
                <td>{formatTime(h.lastSeenTime)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
