// One job: its state and progress, the task graph updating live over WatchJob, task details, and
// cancel / retry. Another team's job answers NOT_FOUND, shown as "not found".
import { useEffect, useMemo, useRef, useState } from "react";
import { Code } from "@connectrpc/connect";
import { JobState, type Job, type Task } from "@corral/proto";
import { useSession } from "../api/context.js";
import { codeOf } from "../api/errors.js";
import { Link, signOutIfUnauthenticated } from "../app.js";
import { TaskGraph } from "../graph/task-graph.js";
import { ErrorNote, StateBadge } from "../ui/common.js";
import { describeBytes, formatTime, isJobEnded, jobStateLabel, taskStateLabel } from "../ui/format.js";
import { loadTaskTree } from "./job-tasks.js";

type Live = "connecting" | "live" | "ended" | "reconnecting";

export function JobPage({ id }: { id: string }) {
  const session = useSession();
  const [job, setJob] = useState<Job>();
  const [tasks, setTasks] = useState<Map<string, Task>>();
  const [error, setError] = useState<unknown>();
  const [live, setLive] = useState<Live>("connecting");
  const [selected, setSelected] = useState<string>();
  const [group, setGroup] = useState<string[]>();
  const [actionError, setActionError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const [renderMs, setRenderMs] = useState<number>();
  const opened = useRef(performance.now());

  useEffect(() => {
    const ac = new AbortController();
    let pending: Task[] = [];
    let loaded = false;
    const apply = (changed: Task[]) => {
      if (!loaded) {
        pending.push(...changed);
        return;
      }
      if (changed.length === 0) return;
      setTasks((prev) => {
        const next = new Map(prev);
        for (const t of changed) next.set(t.id, t);
        return next;
      });
    };
    const watch = async () => {
      for (let attempt = 0; !ac.signal.aborted; attempt++) {
        try {
          let first = true;
          for await (const msg of session.clients.jobs.watchJob({ jobId: id }, { signal: ac.signal })) {
            if (msg.job) setJob(msg.job);
            setLive("live");
            apply(msg.changedTasks);
            if (first) {
              first = false;
              // The tree is read after the watch's first answer, so no change falls between them.
              if (!loaded) {
                const tree = await loadTaskTree(session.clients, id, ac.signal);
                for (const t of pending) tree.set(t.id, t);
                pending = [];
                loaded = true;
                setTasks(tree);
              }
            }
          }
          setLive("ended");
          return;
        } catch (err) {
          if (ac.signal.aborted) return;
          if (signOutIfUnauthenticated(session, err)) return;
          const code = codeOf(err);
          if (code === Code.NotFound || code === Code.InvalidArgument || code === Code.PermissionDenied) {
            setError(err);
            return;
          }
          // A dropped stream (server restart, proxy timeout): reconnect with a growing pause.
          setLive("reconnecting");
          await new Promise((r) => setTimeout(r, Math.min(10_000, 500 * 2 ** attempt)));
        }
      }
    };
    void watch();
    return () => ac.abort();
  }, [id, session]);

  async function act(kind: "cancel" | "retry") {
    setBusy(true);
    setActionError(undefined);
    try {
      const res = kind === "cancel" ? await session.clients.jobs.cancelJob({ jobId: id }) : await session.clients.jobs.retryJob({ jobId: id });
      if (res.job) setJob(res.job);
    } catch (err) {
      if (!signOutIfUnauthenticated(session, err)) setActionError(err);
    } finally {
      setBusy(false);
    }
  }

  if (codeOf(error) === Code.NotFound) {
    return (
      <>
        <h1>Job not found</h1>
        <p role="alert" className="error">
          There is no job <code>{id}</code> for your team. It may belong to another team, or the link is wrong.
        </p>
        <p>
          <Link to="/jobs">Back to jobs</Link>
        </p>
      </>
    );
  }
  if (error) {
    return (
      <>
        <h1>Job</h1>
        <ErrorNote error={error} />
      </>
    );
  }
  if (!job) {
    return (
      <>
        <h1>Job</h1>
        <p role="status">Loading…</p>
      </>
    );
  }

  const label = jobStateLabel[job.state];
  const counts = job.stats?.tasksByState;
  const ended = isJobEnded(job.state);
  return (
    <>
      <div className="page-head">
        <h1>
          {job.name || job.id} <StateBadge label={label} />
        </h1>
        <div className="actions">
          <button type="button" disabled={busy || ended} onClick={() => void act("cancel")}>
            Cancel job
          </button>
          <button type="button" disabled={busy || !ended || job.state === JobState.COMPLETED} onClick={() => void act("retry")}>
            Retry failed tasks
          </button>
        </div>
      </div>
      {actionError !== undefined && <ErrorNote error={actionError} />}
      <dl className="facts">
        <dt>ID</dt>
        <dd>
          <code>{job.id}</code>
        </dd>
        <dt>Cluster</dt>
        <dd>
          <Link to={`/clusters/${encodeURIComponent(job.clusterSlug)}`}>{job.clusterSlug}</Link>
        </dd>
        <dt>Submitted</dt>
        <dd>{formatTime(job.submitTime)}</dd>
        <dt>Ended</dt>
        <dd>{formatTime(job.endTime)}</dd>
        <dt>Tasks</dt>
        <dd data-testid="task-counts">
          {counts
            ? `${counts.total} total: ${counts.queued} queued, ${counts.running} running, ${counts.computed} succeeded, ${counts.failed} failed, ${counts.canceled} canceled, ${counts.skipped} skipped`
            : "—"}
        </dd>
        <dt>Updates</dt>
        <dd data-testid="live-state">{live === "ended" ? "job ended" : live}</dd>
      </dl>
      {job.progress.length > 0 && (
        <ul className="progress-list" aria-label="Progress">
          {job.progress.map((p) => (
            <li key={p.label}>
              {p.label || "progress"}: <progress max={Number(p.total) || 1} value={Number(p.done)} aria-label={p.label || "progress"} />{" "}
              {String(p.done)}/{String(p.total)}
            </li>
          ))}
        </ul>
      )}
      <section className="job-body" aria-label="Task graph and details">
        {tasks ? (
          <TaskGraph
            tasks={tasks}
            onSelectTask={(t) => {
              setSelected(t);
              setGroup(undefined);
            }}
            onSelectGroup={(ids) => {
              setGroup(ids);
              setSelected(undefined);
            }}
            onRendered={() => setRenderMs(Math.round(performance.now() - opened.current))}
          />
        ) : (
          <p role="status" className="graph">
            Loading tasks…
          </p>
        )}
        <aside className="details" aria-label="Task details">
          {selected && tasks?.get(selected) ? (
            <TaskDetails task={tasks.get(selected)!} />
          ) : group && tasks ? (
            <GroupList ids={group} tasks={tasks} onSelect={setSelected} />
          ) : (
            <p className="note">Select a task in the graph to see its details.</p>
          )}
        </aside>
      </section>
      {renderMs !== undefined && (
        <p className="help" data-testid="graph-render-ms">
          Graph drawn {renderMs} ms after the page opened.
        </p>
      )}
    </>
  );
}

function GroupList({ ids, tasks, onSelect }: { ids: string[]; tasks: ReadonlyMap<string, Task>; onSelect(id: string): void }) {
  const shown = ids.slice(0, 200);
  return (
    <>
      <h2>{ids.length} tasks</h2>
      <ul className="group-list">
        {shown.map((id) => {
          const t = tasks.get(id);
          if (!t) return null;
          return (
            <li key={id}>
              <button type="button" className="link" onClick={() => onSelect(id)}>
                {t.display || t.identifier?.name}
              </button>{" "}
              <StateBadge label={taskStateLabel[t.state]} />
            </li>
          );
        })}
      </ul>
      {ids.length > shown.length && <p className="note">and {ids.length - shown.length} more.</p>}
    </>
  );
}

function TaskDetails({ task }: { task: Task }) {
  const session = useSession();
  const [input, setInput] = useState<string>();
  useEffect(() => {
    const ac = new AbortController();
    setInput(undefined);
    (async () => {
      let pageToken = "";
      do {
        const page = await session.clients.jobs.listTasks(
          { jobId: task.jobId, parentId: task.parentId, includeInput: true, pageSize: 1000, pageToken },
          { signal: ac.signal },
        );
        const found = page.tasks.find((t) => t.id === task.id);
        if (found) return setInput(describeBytes(found.input));
        pageToken = page.nextPageToken;
      } while (pageToken);
      setInput("(not found)");
    })().catch(() => !ac.signal.aborted && setInput("(could not be loaded)"));
    return () => ac.abort();
  }, [task.id, task.jobId, task.parentId, session]);

  const label = taskStateLabel[task.state];
  const rows = useMemo(
    () => [
      ["Task", task.identifier ? `${task.identifier.name}@${task.identifier.version}` : "—"],
      ["ID", task.id],
      ["Cluster", task.clusterSlug],
      ["Attempt", `${task.attempt} (retries ${task.retryCount} of ${task.maxRetries}, lease expiries ${task.leaseExpiryCount})`],
      ["Runner", task.runnerId || "—"],
      ["Started", formatTime(task.startTime)],
      ["Stopped", formatTime(task.stopTime)],
      ["Subtasks", String(task.subtaskCount)],
      ["Depends on", task.dependsOn.length ? task.dependsOn.join(", ") : "—"],
      ["Optional", task.optional ? "yes" : "no"],
    ],
    [task],
  );
  return (
    <>
      <h2>
        {task.display || task.identifier?.name} <StateBadge label={label} />
      </h2>
      <dl className="facts">
        {rows.map(([k, v]) => (
          <div key={k}>
            <dt>{k}</dt>
            <dd>{v}</dd>
          </div>
        ))}
      </dl>
      {task.error && (
        <>
          <h3>Error</h3>
          <pre className="error-text">{task.error}</pre>
        </>
      )}
      <h3>Input</h3>
      <pre>{input ?? "Loading…"}</pre>
    </>
  );
}
