// Checks the subtasks reported with a batch's completions before its transaction: the rules
// protovalidate cannot express, and the clusters they name (remote calls, so before any lock).
// A result that breaks a rule fails its own task, never the batch.
import type { TaskResult, TaskSubmission } from "@corral/proto";
import { InvalidArgumentError, NotFoundError } from "@corral/server-kit";
import type { ClusterResolver, JobsStore, ResolvedCluster } from "./ports.js";
import { clusterOverrides, validateSubmissions } from "./task-plan.js";

export interface CheckedSubtasks {
  /** Result index → reason the result's subtasks break a rule. */
  invalid: Map<number, string>;
  /** Result index → why the result holds text Postgres cannot store; its task fails instead. */
  unstorable: Map<number, string>;
  /** Team id → slug → cluster. */
  clusters: Map<string, Map<string, ResolvedCluster>>;
  /** Task id → its team, for the tasks that reported subtasks. */
  teams: Map<string, string>;
}

export async function checkSubtasks(
  store: JobsStore,
  resolver: ClusterResolver,
  results: TaskResult[],
  maxInputBytes: number,
  unstorable: Map<number, string>,
): Promise<CheckedSubtasks> {
  const invalid = new Map<number, string>();
  const withSubtasks = validSubtasks(results, maxInputBytes, unstorable, invalid);
  const teams = await store.tasks.teamsOfTasks([...new Set(withSubtasks.map((w) => w.taskId))]);
  const slugsByTeam = new Map<string, Set<string>>();
  for (const w of withSubtasks) {
    const team = teams.get(w.taskId);
    if (team === undefined) continue;
    const set = slugsByTeam.get(team) ?? new Set<string>();
    for (const s of clusterOverrides(w.subs)) set.add(s);
    slugsByTeam.set(team, set);
  }
  const clusters = new Map<string, Map<string, ResolvedCluster>>();
  for (const [team, slugs] of slugsByTeam) clusters.set(team, await resolveKnown(resolver, team, slugs));
  for (const w of withSubtasks) {
    const map = clusters.get(teams.get(w.taskId) ?? "");
    const unknown = w.subs.findIndex((s) => s.clusterSlug !== "" && !map?.has(s.clusterSlug));
    if (unknown >= 0) {
      invalid.set(w.index, `results[${w.index}].completed.subtasks[${unknown}].cluster_slug: cluster ${JSON.stringify(w.subs[unknown]!.clusterSlug)} not found`);
    }
  }
  return { invalid, unstorable, clusters, teams };
}

interface WithSubtasks {
  index: number;
  taskId: string;
  subs: TaskSubmission[];
}

/** The storable completions whose subtasks pass validation; the others are recorded in `invalid`. */
function validSubtasks(results: TaskResult[], maxInputBytes: number, unstorable: Map<number, string>, invalid: Map<number, string>): WithSubtasks[] {
  const out: WithSubtasks[] = [];
  results.forEach((r, index) => {
    if (unstorable.has(index)) return;
    if (r.outcome.case !== "completed" || r.outcome.value.subtasks.length === 0) return;
    const subs = r.outcome.value.subtasks;
    try {
      validateSubmissions(subs, `results[${index}].completed.subtasks`, maxInputBytes);
      out.push({ index, taskId: r.taskId, subs });
    } catch (err) {
      if (!(err instanceof InvalidArgumentError)) throw err;
      invalid.set(index, err.message);
    }
  });
  return out;
}

/** The team's clusters among `slugs`: an unknown slug invalidates only the results that name it. */
async function resolveKnown(resolver: ClusterResolver, team: string, slugs: Set<string>): Promise<Map<string, ResolvedCluster>> {
  const pending = new Set(slugs);
  const map = new Map<string, ResolvedCluster>();
  while (pending.size > 0) {
    try {
      for (const [slug, c] of await resolver.resolve(team, [...pending])) map.set(slug, c);
      break;
    } catch (err) {
      if (!(err instanceof NotFoundError) || !pending.has(err.id)) throw err;
      pending.delete(err.id);
    }
  }
  return map;
}
