// Why queued tasks that could start do not: no online runner on their cluster, or none there serves
// their identifier (same name and major, a minor at least the task's). Pure: the online runners
// come from the broker's sessions (RunnerPresence), the tasks from the job's queued ready tasks.

/** A task identifier as stored and as runners register it. */
export interface IdentifierRef {
  name: string;
  version: string;
}

/** Each cluster slug's online (not draining) runners, each as the identifiers it serves. */
export type OnlineRunners = ReadonlyMap<string, readonly (readonly IdentifierRef[])[]>;

/** Queued tasks of one job that could start now, grouped by cluster and identifier. */
export interface ReadyGroup {
  cluster_slug: string;
  identifier_name: string;
  identifier_version: string;
  n: number;
}

export interface WaitReasonRow {
  clusterSlug: string;
  /** Undefined: the cluster has no online runner at all. */
  identifier: IdentifierRef | undefined;
  tasks: number;
  message: string;
}

function parse(version: string): { major: number; minor: number } | undefined {
  const m = /^v(\d+)\.(\d+)$/.exec(version);
  return m ? { major: Number(m[1]), minor: Number(m[2]) } : undefined;
}

/** A runner registered as `registered` may take a task of `requested`. */
export function serves(registered: IdentifierRef, requested: IdentifierRef): boolean {
  if (registered.name !== requested.name) return false;
  const r = parse(registered.version);
  const q = parse(requested.version);
  return !!r && !!q && r.major === q.major && r.minor >= q.minor;
}

/** Why a ready queued task of `identifier` on `clusterSlug` cannot start, or undefined when a runner serves it. */
export function runnerMissing(clusterSlug: string, identifier: IdentifierRef, online: OnlineRunners): string | undefined {
  const runners = online.get(clusterSlug) ?? [];
  if (runners.length === 0) return `no online runner on cluster ${clusterSlug}`;
  if (runners.some((ids) => ids.some((r) => serves(r, identifier)))) return undefined;
  return `no online runner on cluster ${clusterSlug} serves ${identifier.name}@${identifier.version}`;
}

/** The reasons a job's ready queued tasks wait, one per cluster (no runner) or cluster and identifier. */
export function jobWaitReasons(groups: readonly ReadyGroup[], online: OnlineRunners): WaitReasonRow[] {
  const out = new Map<string, WaitReasonRow>();
  for (const g of groups) {
    const identifier = { name: g.identifier_name, version: g.identifier_version };
    const message = runnerMissing(g.cluster_slug, identifier, online);
    if (message === undefined) continue;
    const noRunner = (online.get(g.cluster_slug) ?? []).length === 0;
    const key = noRunner ? g.cluster_slug : `${g.cluster_slug}\n${identifier.name}@${identifier.version}`;
    const seen = out.get(key);
    if (seen) seen.tasks += g.n;
    else out.set(key, { clusterSlug: g.cluster_slug, identifier: noRunner ? undefined : identifier, tasks: g.n, message });
  }
  return [...out.values()];
}
