// Published releases and where each is deployed; says so when this server does not offer
// ReleaseService.
import { useSession } from "../api/context.js";
import { FailureOrUnavailable, usePolling } from "../ui/common.js";
import { formatBytes, formatTime } from "../ui/format.js";

export function ReleasesPage() {
  const session = useSession();
  const releases = usePolling((signal) => session.clients.releases.listReleases({ pageSize: 500 }, { signal }), [], 10_000);
  return (
    <>
      <h1>Releases</h1>
      {releases.error !== undefined && <FailureOrUnavailable error={releases.error} what="Releases" />}
      {releases.data && releases.data.releases.length === 0 && <p className="note">No release has been published.</p>}
      {releases.data && releases.data.releases.length > 0 && (
        <table className="list" aria-label="Releases">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Version</th>
              <th scope="col">Size</th>
              <th scope="col">Digest</th>
              <th scope="col">Deployed to</th>
              <th scope="col">Published</th>
            </tr>
          </thead>
          <tbody>
            {releases.data.releases.map((r) => (
              <tr key={r.id}>
                <td>{r.name}</td>
                <td>{r.version}</td>
                <td>{formatBytes(r.sizeBytes)}</td>
                <td>
                  <code>{r.digest.slice(0, 19)}</code>
                </td>
                <td>{r.deployedTo.join(", ") || "—"}</td>
                <td>{formatTime(r.createTime)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
