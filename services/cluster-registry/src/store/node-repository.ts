// Node presence as brokers report it. A node's effective state is OFFLINE when no report arrived
// within the timeout and the broker process that sent its last report has not called within it
// either, whatever the last report said; that is computed here in SQL so filters and pages agree
// with what is shown.
import { sql, type Expression, type Kysely, type RawBuilder, type SqlBool } from "kysely";
import type { NodeRow, RegistryDatabase, StoredHardware, StoredNodeState, StoredRunningTask } from "./database.js";

export interface NodeHardware {
  cpuCores: number;
  gpuCount: number;
  gpuType: string;
  memoryBytes: bigint;
  hostname: string;
  os: string;
  arch: string;
}

export interface NodeRecord {
  teamId: string;
  runnerId: string;
  sessionId: string;
  clusterId: string;
  clusterSlug: string;
  hostname: string;
  hardware: NodeHardware;
  identifiers: { name: string; version: string }[];
  labels: Record<string, string>;
  slots: number;
  busySlots: number;
  brokerId: string;
  state: StoredNodeState;
  connectTime: Date;
  lastSeenTime: Date;
  /** What it ran at its last report; none while OFFLINE. */
  runningTasks: StoredRunningTask[];
  /** The agent host that launched it (its placement), or undefined for a runner started by hand. */
  host: { id: string; name: string } | undefined;
}

export interface NodeReport {
  teamId: string;
  runnerId: string;
  sessionId: string;
  clusterId: string;
  clusterSlug: string;
  hostname: string;
  hardware: NodeHardware;
  identifiers: { name: string; version: string }[];
  labels: Record<string, string>;
  slots: number;
  busySlots: number;
  runningTasks: StoredRunningTask[];
  brokerId: string;
  state: StoredNodeState;
  /** A CONNECTED report: a new session, which replaces whatever session was stored. */
  newSession: boolean;
  /** Undefined: the registry's clock now. */
  connectTime: Date | undefined;
  lastSeenTime: Date | undefined;
}

/** Rows per insert statement, well under Postgres' 65535 bind parameters. */
const CHUNK = 2000;

function hardwareToJson(h: NodeHardware): string {
  const stored: StoredHardware = { ...h, memoryBytes: h.memoryBytes.toString() };
  return JSON.stringify(stored);
}

function hardwareFromJson(h: StoredHardware): NodeHardware {
  return {
    cpuCores: h.cpuCores ?? 0,
    gpuCount: h.gpuCount ?? 0,
    gpuType: h.gpuType ?? "",
    memoryBytes: BigInt(h.memoryBytes ?? "0"),
    hostname: h.hostname ?? "",
    os: h.os ?? "",
    arch: h.arch ?? "",
  };
}

/**
 * Applies reports (at most one per team and runner). A new session (CONNECTED) always replaces
 * the stored one. Another report from a session other than the stored one wins only when that
 * session is newer, and never marks the node offline: late reports from a broker the runner
 * already left must not hide its new session.
 */
export async function upsertNodes(db: Kysely<RegistryDatabase>, reports: NodeReport[], brokerInstance = ""): Promise<void> {
  await db.transaction().execute(async (tx) => {
    if (brokerInstance !== "") await touchBrokerInstance(tx, brokerInstance);
    await upsertChunks(tx, reports.filter((r) => r.newSession), true, brokerInstance);
    await upsertChunks(tx, reports.filter((r) => !r.newSession), false, brokerInstance);
  });
}

/** The broker process `instance` is alive now: the nodes it reported last stay as reported. */
async function touchBrokerInstance(db: Kysely<RegistryDatabase>, instance: string): Promise<void> {
  await db
    .insertInto("broker_instances")
    .values({ instance, last_seen_time: sql<Date>`now()` })
    .onConflict((oc) => oc.column("instance").doUpdateSet({ last_seen_time: sql`excluded.last_seen_time` }))
    .execute();
}

/** The registry's clock `ms` ago. */
const msAgo = (ms: number) => sql<Date>`now() - ${ms} * interval '1 millisecond'`;

/**
 * True for a node that was reported within the timeout, or whose last report came from a broker
 * process that called within the timeout (it keeps its unchanged nodes alive without re-sending them).
 */
export function nodeReportedWithin(timeoutMs: number): RawBuilder<SqlBool> {
  const since = msAgo(timeoutMs);
  return sql<SqlBool>`(nodes.report_time >= ${since} or (nodes.state <> 'offline' and nodes.broker_instance <> '' and exists (
    select 1 from broker_instances b where b.instance = nodes.broker_instance and b.last_seen_time >= ${since})))`;
}

async function upsertChunks(db: Kysely<RegistryDatabase>, reports: NodeReport[], newSessions: boolean, brokerInstance: string): Promise<void> {
  // A CONNECTED report always wins. Any other report of another session wins only when that
  // session started later (its CONNECTED report was lost): start times of two sessions are far
  // apart where last-seen times are not, so brokers' clocks disagreeing a little cannot let a
  // stale session back in.
  const guard = newSessions
    ? sql<SqlBool>`true`
    : sql<SqlBool>`nodes.session_id = excluded.session_id
        or (excluded.state <> 'offline' and excluded.connect_time > nodes.connect_time)`;
  for (let i = 0; i < reports.length; i += CHUNK) {
    const chunk = reports.slice(i, i + CHUNK);
    await db
      .insertInto("nodes")
      .values(
        chunk.map((r) => ({
          team_id: r.teamId,
          runner_id: r.runnerId,
          session_id: r.sessionId,
          cluster_id: r.clusterId,
          cluster_slug: r.clusterSlug,
          hostname: r.hostname,
          hardware: hardwareToJson(r.hardware),
          identifiers: JSON.stringify(r.identifiers),
          labels: JSON.stringify(r.labels),
          slots: r.slots,
          busy_slots: r.busySlots,
          running_tasks: JSON.stringify(r.runningTasks),
          broker_id: r.brokerId,
          broker_instance: brokerInstance,
          state: r.state,
          connect_time: r.connectTime ?? sql<Date>`now()`,
          last_seen_time: r.lastSeenTime ?? sql<Date>`now()`,
          report_time: sql<Date>`now()`,
        })),
      )
      .onConflict((oc) =>
        oc
          .columns(["team_id", "runner_id"])
          .doUpdateSet({
            session_id: sql`excluded.session_id`,
            cluster_id: sql`excluded.cluster_id`,
            cluster_slug: sql`excluded.cluster_slug`,
            hostname: sql`excluded.hostname`,
            hardware: sql`excluded.hardware`,
            identifiers: sql`excluded.identifiers`,
            labels: sql`excluded.labels`,
            slots: sql`excluded.slots`,
            busy_slots: sql`excluded.busy_slots`,
            running_tasks: sql`excluded.running_tasks`,
            broker_id: sql`excluded.broker_id`,
            broker_instance: sql`excluded.broker_instance`,
            // An update from a draining session does not bring it back online.
            state: sql`case when nodes.session_id = excluded.session_id and nodes.state = 'draining'
                        and excluded.state = 'online' then 'draining' else excluded.state end`,
            connect_time: sql`case when nodes.session_id = excluded.session_id
                               then nodes.connect_time else excluded.connect_time end`,
            last_seen_time: sql`case when nodes.session_id = excluded.session_id
                                 then greatest(nodes.last_seen_time, excluded.last_seen_time) else excluded.last_seen_time end`,
            report_time: sql`excluded.report_time`,
          })
          .where(guard),
      )
      .execute();
  }
}

export type NodeStateFilter = StoredNodeState | "running" | undefined;

function selectNodes(db: Kysely<RegistryDatabase>, timeoutMs: number) {
  const stale = sql<SqlBool>`not ${nodeReportedWithin(timeoutMs)}`;
  return {
    stale,
    query: db
      .selectFrom("nodes")
      // The host of a runner an agent launched: its placement names it (runner ids are unique there).
      .leftJoin("placements", (j) => j.onRef("placements.runner_id", "=", "nodes.runner_id").onRef("placements.team_id", "=", "nodes.team_id"))
      .leftJoin("hosts", "hosts.id", "placements.host_id")
      .selectAll("nodes")
      .select(["hosts.id as host_id", "hosts.name as host_name"])
      // Seen as late as its broker process last called, while that broker keeps it.
      .select(
        sql<Date>`greatest(nodes.last_seen_time, (select b.last_seen_time from broker_instances b
          where nodes.state <> 'offline' and nodes.broker_instance <> '' and b.instance = nodes.broker_instance))`.as("seen_time"),
      )
      .select(sql<StoredNodeState>`case when nodes.state <> 'offline' and ${stale} then 'offline' else nodes.state end`.as(
        "effective_state",
      )),
  };
}

function toRecord(
  row: NodeRow & { effective_state: StoredNodeState; seen_time: Date; host_id: string | null; host_name: string | null },
): NodeRecord {
  return {
    teamId: row.team_id,
    runnerId: row.runner_id,
    sessionId: row.session_id,
    clusterId: row.cluster_id,
    clusterSlug: row.cluster_slug,
    hostname: row.hostname,
    hardware: hardwareFromJson(row.hardware),
    identifiers: row.identifiers,
    labels: row.labels,
    slots: row.slots,
    busySlots: row.busy_slots,
    brokerId: row.broker_id,
    state: row.effective_state,
    connectTime: row.connect_time,
    lastSeenTime: row.seen_time,
    runningTasks: row.effective_state === "offline" ? [] : row.running_tasks,
    host: row.host_id === null ? undefined : { id: row.host_id, name: row.host_name ?? "" },
  };
}

export async function findNode(
  db: Kysely<RegistryDatabase>,
  timeoutMs: number,
  teamId: string,
  runnerId: string,
): Promise<NodeRecord | undefined> {
  const { query } = selectNodes(db, timeoutMs);
  const row = await query.where("nodes.team_id", "=", teamId).where("nodes.runner_id", "=", runnerId).executeTakeFirst();
  return row && toRecord(row);
}

export async function listNodes(
  db: Kysely<RegistryDatabase>,
  timeoutMs: number,
  filter: { teamId: string; clusterId?: string; state?: NodeStateFilter; after?: string; limit: number },
): Promise<NodeRecord[]> {
  const { query: base, stale } = selectNodes(db, timeoutMs);
  let query = base.where("nodes.team_id", "=", filter.teamId);
  if (filter.clusterId !== undefined) query = query.where("nodes.cluster_id", "=", filter.clusterId);
  const fresh = sql<SqlBool>`not (${stale})`;
  const stateCondition: Record<Exclude<NodeStateFilter, undefined>, Expression<SqlBool>> = {
    online: sql<SqlBool>`nodes.state = 'online' and ${fresh}`,
    draining: sql<SqlBool>`nodes.state = 'draining' and ${fresh}`,
    running: sql<SqlBool>`nodes.state in ('online', 'draining') and ${fresh}`,
    offline: sql<SqlBool>`(nodes.state = 'offline' or ${stale})`,
  };
  if (filter.state !== undefined) query = query.where(stateCondition[filter.state]);
  if (filter.after !== undefined) query = query.where("nodes.runner_id", ">", filter.after);
  const rows = await query.orderBy("nodes.runner_id").limit(filter.limit).execute();
  return rows.map(toRecord);
}

/**
 * Deletes the nodes with no report for `retentionMs` and no broker process keeping them alive that
 * long (all of them OFFLINE long since: the presence timeout is far shorter), across teams, and the
 * broker processes gone as long; answers how many nodes went. A runner that comes back later
 * registers afresh.
 */
export async function deleteRetiredNodes(db: Kysely<RegistryDatabase>, retentionMs: number): Promise<number> {
  return db.transaction().execute(async (tx) => {
    const result = await sql`delete from nodes where not ${nodeReportedWithin(retentionMs)}`.execute(tx);
    await sql`delete from broker_instances where last_seen_time < ${msAgo(retentionMs)}`.execute(tx);
    return Number(result.numAffectedRows ?? 0n);
  });
}
