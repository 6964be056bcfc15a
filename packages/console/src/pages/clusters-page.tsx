// The team's clusters with their state and runners; each links to its page (its dashboard).
import { useSession } from "../api/context.js";
import { Link } from "../app.js";
import { ErrorNote, StateBadge, usePolling } from "../ui/common.js";
import { clusterStateLabel } from "../ui/format.js";

export function ClustersPage() {
  const session = useSession();
  const clusters = usePolling((signal) => session.clients.clusters.listClusters({ pageSize: 500 }, { signal }), [], 5_000);
  return (
    <>
      <h1>Clusters</h1>
      {clusters.error !== undefined && <ErrorNote error={clusters.error} />}
      {clusters.data && (
        <table className="list" aria-label="Clusters">
          <thead>
            <tr>
              <th scope="col">Slug</th>
              <th scope="col">Name</th>
              <th scope="col">State</th>
              <th scope="col">Runners (running / desired)</th>
              <th scope="col">Releases</th>
            </tr>
          </thead>
          <tbody>
            {clusters.data.clusters.map((c) => (
              <tr key={c.id}>
                <td>
                  <Link to={`/clusters/${encodeURIComponent(c.slug)}`}>{c.slug}</Link>
                  {c.isDefault && <span className="tag">default</span>}
                </td>
                <td>{c.name}</td>
                <td>
                  <StateBadge label={clusterStateLabel[c.state]} />
                </td>
                <td>
                  {c.runningRunners} / {c.desiredRunners}
                </td>
                <td>{c.deployments.map((d) => `${d.release?.name}@${d.release?.version}`).join(", ") || "—"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
