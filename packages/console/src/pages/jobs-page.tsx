// The jobs list: live states and progress, filtered by state, cluster, name and time, paged.
import { useState } from "react";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { JobState, type Job } from "@corral/proto";
import { useSession } from "../api/context.js";
import { Link, signOutIfUnauthenticated } from "../app.js";
import { navigate, useLocation } from "../router.js";
import { ErrorNote, StateBadge, usePolling } from "../ui/common.js";
import { formatTime, jobStateLabel } from "../ui/format.js";

const pageSize = 25;
const stateChoices: Array<[string, JobState[]]> = [
  ["any", []],
  ["queued", [JobState.SUBMITTED]],
  ["running", [JobState.RUNNING, JobState.STARTED]],
  ["succeeded", [JobState.COMPLETED]],
  ["failed", [JobState.FAILED]],
  ["canceled", [JobState.CANCELED]],
];

export function JobsPage() {
  const session = useSession();
  const { search } = useLocation();
  const state = search.get("state") ?? "any";
  const cluster = search.get("cluster") ?? "";
  const name = search.get("name") ?? "";
  const from = search.get("from") ?? "";
  const to = search.get("to") ?? "";
  // Page tokens of the pages before this one, so "Newer" can go back.
  const [tokens, setTokens] = useState<string[]>([""]);
  const token = tokens[tokens.length - 1]!;

  const clusters = usePolling((signal) => session.clients.clusters.listClusters({ pageSize: 100 }, { signal }), []);
  const jobs = usePolling(
    async (signal) => {
      try {
        return await session.clients.jobs.queryJobs(
          {
            states: stateChoices.find(([k]) => k === state)?.[1] ?? [],
            clusterSlugs: cluster ? [cluster] : [],
            name,
            startTime: from ? timestampFromDate(new Date(from)) : undefined,
            endTime: to ? timestampFromDate(new Date(to)) : undefined,
            pageSize,
            pageToken: token,
          },
          { signal },
        );
      } catch (err) {
        signOutIfUnauthenticated(session, err);
        throw err;
      }
    },
    [state, cluster, name, from, to, token],
    2_000,
  );

  function setFilter(key: string, value: string) {
    const next = new URLSearchParams(search);
    if (value) next.set(key, value);
    else next.delete(key);
    setTokens([""]);
    const q = next.toString();
    navigate(`/jobs${q ? `?${q}` : ""}`);
  }

  return (
    <>
      <h1>Jobs</h1>
      <form className="filters" aria-label="Job filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          State
          <select value={state} onChange={(e) => setFilter("state", e.target.value === "any" ? "" : e.target.value)}>
            {stateChoices.map(([k]) => (
              <option key={k} value={k}>
                {k}
              </option>
            ))}
          </select>
        </label>
        <label>
          Cluster
          <select value={cluster} onChange={(e) => setFilter("cluster", e.target.value)}>
            <option value="">any</option>
            {clusters.data?.clusters.map((c) => (
              <option key={c.slug} value={c.slug}>
                {c.slug}
              </option>
            ))}
          </select>
        </label>
        <label>
          Name
          <input type="search" defaultValue={name} onChange={(e) => setFilter("name", e.target.value.trim())} />
        </label>
        <label>
          Submitted after
          <input type="datetime-local" value={from} onChange={(e) => setFilter("from", e.target.value)} />
        </label>
        <label>
          Submitted before
          <input type="datetime-local" value={to} onChange={(e) => setFilter("to", e.target.value)} />
        </label>
      </form>
      {jobs.error !== undefined && <ErrorNote error={jobs.error} />}
      {jobs.data && jobs.data.jobs.length === 0 && <p className="note">No jobs match.</p>}
      {jobs.data && jobs.data.jobs.length > 0 && (
        <table className="list" aria-label="Jobs">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">State</th>
              <th scope="col">Progress</th>
              <th scope="col">Cluster</th>
              <th scope="col">Submitted</th>
              <th scope="col">ID</th>
            </tr>
          </thead>
          <tbody>
            {jobs.data.jobs.map((job) => (
              <JobRow key={job.id} job={job} />
            ))}
          </tbody>
        </table>
      )}
      <div className="pager">
        <button type="button" disabled={tokens.length === 1} onClick={() => setTokens(tokens.slice(0, -1))}>
          Newer
        </button>
        <button
          type="button"
          disabled={!jobs.data?.nextPageToken}
          onClick={() => setTokens([...tokens, jobs.data!.nextPageToken])}
        >
          Older
        </button>
      </div>
    </>
  );
}

function JobRow({ job }: { job: Job }) {
  const counts = job.stats?.tasksByState;
  const total = counts?.total ?? 0;
  const done = counts ? counts.computed + counts.skipped + counts.failedOptional : 0;
  const label = jobStateLabel[job.state];
  return (
    <tr data-job-id={job.id}>
      <td>
        <Link to={`/jobs/${encodeURIComponent(job.id)}`}>{job.name || job.id}</Link>
      </td>
      <td data-testid="job-state">
        <StateBadge label={label} />
      </td>
      <td>
        <progress max={Math.max(total, 1)} value={done} aria-label={`${job.name}: ${done} of ${total} tasks done`} />{" "}
        <span className="count">
          {done}/{total}
        </span>
      </td>
      <td>
        <Link to={`/clusters/${encodeURIComponent(job.clusterSlug)}`}>{job.clusterSlug}</Link>
      </td>
      <td>{formatTime(job.submitTime)}</td>
      <td>
        <code>{job.id}</code>
      </td>
    </tr>
  );
}
