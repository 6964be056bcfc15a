// One cluster (its dashboard link): spec, state and reason, runners, deployed releases.
import { useSession } from "../api/context.js";
import { Link } from "../app.js";
import { ErrorNote, StateBadge, usePolling } from "../ui/common.js";
import { clusterStateLabel, formatBytes, formatTime, nodeStateLabel } from "../ui/format.js";
import { Code } from "@connectrpc/connect";
import { codeOf } from "../api/errors.js";

export function ClusterPage({ slug }: { slug: string }) {
  const session = useSession();
  const cluster = usePolling((signal) => session.clients.clusters.getCluster({ slug }, { signal }), [slug], 5_000);
  const nodes = usePolling((signal) => session.clients.nodes.listNodes({ clusterSlug: slug, pageSize: 500 }, { signal }), [slug], 5_000);

  if (codeOf(cluster.error) === Code.NotFound) {
    return (
      <>
        <h1>Cluster not found</h1>
        <p role="alert" className="error">
          There is no cluster <code>{slug}</code> for your team.
        </p>
      </>
    );
  }
  const c = cluster.data?.cluster;
  if (!c) {
    return (
      <>
        <h1>Cluster {slug}</h1>
        {cluster.error !== undefined ? <ErrorNote error={cluster.error} /> : <p role="status">Loading…</p>}
      </>
    );
  }
  const spec = c.spec;
  const specRows: Array<[string, string]> = [
    ["Runners", spec?.runnerCount !== undefined ? String(spec.runnerCount) : "by hand"],
    ["CPU cores per runner", spec?.runnerCpuCores !== undefined ? String(spec.runnerCpuCores) : "—"],
    ["Memory per runner", spec?.runnerMemoryBytes !== undefined ? formatBytes(spec.runnerMemoryBytes) : "—"],
    ["GPUs per runner", spec?.runnerGpuCount !== undefined ? String(spec.runnerGpuCount) : "—"],
    ["Hardware", spec?.hardwareId ?? "—"],
    ["Software environment", spec?.softwareEnvironment ?? "—"],
    ["Configuration", spec?.configuration ?? "—"],
    ["Location", spec?.locationId ?? "—"],
    ["Idle timeout", spec?.idleTimeoutSeconds !== undefined ? `${spec.idleTimeoutSeconds} s` : "—"],
  ];
  return (
    <>
      <div className="page-head">
        <h1>
          {c.name || c.slug} <StateBadge label={clusterStateLabel[c.state]} />
        </h1>
        <div className="actions">
          <Link to={`/jobs?cluster=${encodeURIComponent(c.slug)}`}>Jobs on this cluster</Link>
        </div>
      </div>
      {c.stateReason && (
        <p className="note" role="status">
          {c.stateReason}
        </p>
      )}
      <dl className="facts">
        <dt>Slug</dt>
        <dd>
          <code>{c.slug}</code>
          {c.isDefault && <span className="tag">default</span>}
        </dd>
        <dt>Description</dt>
        <dd>{c.description || "—"}</dd>
        <dt>Runners</dt>
        <dd>
          {c.runningRunners} running of {c.desiredRunners} desired
        </dd>
        <dt>Created</dt>
        <dd>{formatTime(c.createTime)}</dd>
      </dl>
      <h2>Spec</h2>
      <dl className="facts">
        {specRows.map(([k, v]) => (
          <div key={k}>
            <dt>{k}</dt>
            <dd>{v}</dd>
          </div>
        ))}
      </dl>
      <h2>Runners</h2>
      {nodes.error !== undefined && <ErrorNote error={nodes.error} />}
      {nodes.data && nodes.data.nodes.length === 0 && <p className="note">No runner has joined this cluster.</p>}
      {nodes.data && nodes.data.nodes.length > 0 && (
        <table className="list" aria-label="Runners">
          <thead>
            <tr>
              <th scope="col">Runner</th>
              <th scope="col">Host name</th>
              <th scope="col">State</th>
              <th scope="col">Busy slots</th>
              <th scope="col">Tasks it runs</th>
              <th scope="col">Last seen</th>
            </tr>
          </thead>
          <tbody>
            {nodes.data.nodes.map((n) => (
              <tr key={n.id}>
                <td>
                  <code>{n.id}</code>
                </td>
                <td>{n.hostname}</td>
                <td>
                  <StateBadge label={nodeStateLabel[n.state]} />
                </td>
                <td>
                  {n.busySlots} / {n.slots}
                </td>
                <td>{n.identifiers.map((i) => `${i.name}@${i.version}`).join(", ")}</td>
                <td>{formatTime(n.lastSeenTime)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h2>Deployed releases</h2>
      {c.deployments.length === 0 ? (
        <p className="note">No release is deployed to this cluster.</p>
      ) : (
        <table className="list" aria-label="Deployed releases">
          <thead>
            <tr>
              <th scope="col">Release</th>
              <th scope="col">Version</th>
              <th scope="col">Digest</th>
              <th scope="col">Deployed</th>
            </tr>
          </thead>
          <tbody>
            {c.deployments.map((d) => (
              <tr key={`${d.release?.name}@${d.release?.version}`}>
                <td>{d.release?.name}</td>
                <td>{d.release?.version}</td>
                <td>
                  <code>{d.release?.digest.slice(0, 19)}</code>
                </td>
                <td>{formatTime(d.deployTime)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
