// SQL for hosts, the runners placed on them and their bounded logs.
import { sql, type Kysely, type Transaction } from "kysely";
import type { HostRow, PlacementRow, PlacementState, RegistryDatabase } from "./database.js";

type Db = Kysely<RegistryDatabase> | Transaction<RegistryDatabase>;

export interface HostHello {
  id: string;
  teamId: string;
  name: string;
  cpuCores: number;
  memoryBytes: bigint;
  gpuCount: number;
  gpuType: string;
  locationId: string | null;
  labels: Record<string, string>;
  agentVersion: string;
  replicaId: string;
  connectionId: string;
}

/** A host by (team, name): created on first hello, taken over by every later one (a reconnect). */
export async function upsertHost(db: Db, h: HostHello): Promise<HostRow> {
  return db
    .insertInto("hosts")
    .values({
      id: h.id,
      team_id: h.teamId,
      name: h.name,
      cpu_cores: h.cpuCores,
      memory_bytes: String(h.memoryBytes),
      gpu_count: h.gpuCount,
      gpu_type: h.gpuType,
      location_id: h.locationId,
      labels: JSON.stringify(h.labels),
      agent_version: h.agentVersion,
      replica_id: h.replicaId,
      connection_id: h.connectionId,
      connect_time: sql<Date>`now()`,
      last_seen_time: sql<Date>`now()`,
    })
    .onConflict((oc) =>
      oc.columns(["team_id", "name"]).doUpdateSet((eb) => ({
        cpu_cores: eb.ref("excluded.cpu_cores"),
        memory_bytes: eb.ref("excluded.memory_bytes"),
        gpu_count: eb.ref("excluded.gpu_count"),
        gpu_type: eb.ref("excluded.gpu_type"),
        location_id: eb.ref("excluded.location_id"),
        labels: eb.ref("excluded.labels"),
        agent_version: eb.ref("excluded.agent_version"),
        replica_id: eb.ref("excluded.replica_id"),
        connection_id: eb.ref("excluded.connection_id"),
        draining: false,
        connect_time: sql<Date>`now()`,
        last_seen_time: sql<Date>`now()`,
      })),
    )
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** A heartbeat on the stream that holds the host; false when another stream took it over. */
export async function touchHost(db: Db, hostId: string, connectionId: string): Promise<boolean> {
  const r = await db
    .updateTable("hosts")
    .set({ last_seen_time: sql<Date>`now()` })
    .where("id", "=", hostId)
    .where("connection_id", "=", connectionId)
    .executeTakeFirst();
  return r.numUpdatedRows > 0n;
}

/** The stream is gone; a newer stream of the same host is left alone. */
export async function releaseHost(db: Db, hostId: string, connectionId: string): Promise<void> {
  await db
    .updateTable("hosts")
    .set({ replica_id: null, connection_id: null, last_seen_time: sql<Date>`now()` })
    .where("id", "=", hostId)
    .where("connection_id", "=", connectionId)
    .execute();
}

export async function listTeamHosts(db: Db, teamId: string): Promise<HostRow[]> {
  return db.selectFrom("hosts").selectAll().where("team_id", "=", teamId).orderBy("name").execute();
}

export async function findHost(db: Db, teamId: string, idOrName: string, byId: boolean): Promise<HostRow | undefined> {
  let q = db.selectFrom("hosts").selectAll().where("team_id", "=", teamId);
  q = byId ? q.where((eb) => eb.or([eb("id", "=", idOrName), eb("name", "=", idOrName)])) : q.where("name", "=", idOrName);
  return q.executeTakeFirst();
}

export async function listPlacements(db: Db, teamId: string): Promise<PlacementRow[]> {
  return db.selectFrom("placements").selectAll().where("team_id", "=", teamId).orderBy("runner_id").execute();
}

export async function listHostPlacements(db: Db, hostId: string): Promise<PlacementRow[]> {
  return db.selectFrom("placements").selectAll().where("host_id", "=", hostId).orderBy("runner_id").execute();
}

export async function findPlacement(db: Db, teamId: string, runnerId: string): Promise<PlacementRow | undefined> {
  return db.selectFrom("placements").selectAll().where("team_id", "=", teamId).where("runner_id", "=", runnerId).executeTakeFirst();
}

export interface RunnerStateUpdate {
  state: PlacementState;
  pid: number;
  restarts: number;
  lastExit: string;
}

/** What the agent says of a runner on its host; undefined when the runner is not placed there. */
export async function updatePlacementState(
  db: Db,
  hostId: string,
  runnerId: string,
  u: RunnerStateUpdate,
): Promise<PlacementRow | undefined> {
  return db
    .updateTable("placements")
    .set((eb) => ({
      state: u.state,
      pid: u.pid,
      restarts: u.restarts,
      last_exit: u.lastExit,
      start_time: u.state === "running" ? eb.fn.coalesce("start_time", sql<Date>`now()`) : eb.ref("start_time"),
    }))
    .where("host_id", "=", hostId)
    .where("runner_id", "=", runnerId)
    .returningAll()
    .executeTakeFirst();
}

/** Removes placements and revokes the keys minted for them, in the caller's transaction. */
export async function removePlacements(tx: Db, runnerIds: string[]): Promise<void> {
  if (runnerIds.length === 0) return;
  const removed = await tx.deleteFrom("placements").where("runner_id", "in", runnerIds).returning("api_key_id").execute();
  const keys = removed.map((r) => r.api_key_id).filter((k): k is string => k !== null);
  if (keys.length > 0) {
    await tx.updateTable("api_keys").set({ revoke_time: sql<Date>`now()` }).where("id", "in", keys).where("revoke_time", "is", null).execute();
  }
}

/** Commands owed to a host's agent: launches not sent yet, stops not sent yet. */
export async function pendingCommands(db: Db, hostId: string): Promise<PlacementRow[]> {
  return db
    .selectFrom("placements")
    .selectAll()
    .where("host_id", "=", hostId)
    .where((eb) =>
      eb.or([eb.and([eb("desired", "=", "run"), eb("sent", "=", "")]), eb.and([eb("desired", "=", "stop"), eb("sent", "!=", "stop")])]),
    )
    .orderBy("runner_id")
    .execute();
}

/** Records that a command went out; false when the placement changed since it was read. */
export async function markSent(
  tx: Db,
  runnerId: string,
  from: PlacementRow["sent"],
  to: "launch" | "stop",
  apiKeyId?: string,
): Promise<boolean> {
  const r = await tx
    .updateTable("placements")
    .set({ sent: to, ...(apiKeyId === undefined ? {} : { api_key_id: apiKeyId }) })
    .where("runner_id", "=", runnerId)
    .where("sent", "=", from)
    .executeTakeFirst();
  return r.numUpdatedRows > 0n;
}

/** A new stream of a host: every command is owed again (the agent ignores launches it already runs). */
export async function resetSent(db: Db, hostId: string): Promise<void> {
  await db.updateTable("placements").set({ sent: "" }).where("host_id", "=", hostId).execute();
}

export interface LogLineInput {
  time: Date;
  stream: string;
  text: string;
}

/**
 * Appends a runner's lines and trims its kept tail to `maxLines` lines and `maxBytes` bytes, oldest
 * dropped and counted. One transaction: a reader sees the lines and the count agree.
 */
export async function appendRunnerLogs(
  db: Kysely<RegistryDatabase>,
  teamId: string,
  runnerId: string,
  lines: LogLineInput[],
  limits: { maxLines: number; maxBytes: number },
): Promise<void> {
  if (lines.length === 0) return;
  await db.transaction().execute(async (tx) => {
    await tx
      .insertInto("runner_logs")
      .values(lines.map((l) => ({ runner_id: runnerId, time: l.time, stream: l.stream, text: l.text })))
      .execute();
    // The newest lines within both bounds are kept; everything older goes.
    const trimmed = await sql<{ n: string }>`
      with ranked as (
        select seq, sum(octet_length(text)) over (order by seq desc) as bytes,
               row_number() over (order by seq desc) as rn
        from runner_logs where runner_id = ${runnerId}
      ), gone as (
        delete from runner_logs l using ranked r
        where l.runner_id = ${runnerId} and l.seq = r.seq and (r.rn > ${limits.maxLines} or r.bytes > ${limits.maxBytes})
        returning 1
      )
      select count(*)::text as n from gone`.execute(tx);
    const dropped = Number(trimmed.rows[0]?.n ?? "0");
    await tx
      .insertInto("runner_log_stats")
      .values({ runner_id: runnerId, team_id: teamId, dropped })
      .onConflict((oc) =>
        oc.column("runner_id").doUpdateSet((eb) => ({
          dropped: sql`${eb.ref("runner_log_stats.dropped")} + ${dropped}`,
          update_time: sql<Date>`now()`,
        })),
      )
      .execute();
  });
}

export async function readRunnerLogs(
  db: Db,
  teamId: string,
  runnerId: string,
  tail: number,
): Promise<{ lines: { time: Date; stream: string; text: string }[]; dropped: bigint; known: boolean }> {
  const stats = await db
    .selectFrom("runner_log_stats")
    .select(sql<string>`dropped::text`.as("dropped"))
    .where("runner_id", "=", runnerId)
    .where("team_id", "=", teamId)
    .executeTakeFirst();
  if (!stats) return { lines: [], dropped: 0n, known: false };
  const rows = await db
    .selectFrom("runner_logs")
    .select(["seq", "time", "stream", "text"])
    .where("runner_id", "=", runnerId)
    .orderBy("seq", "desc")
    .limit(tail)
    .execute();
  return { lines: rows.reverse().map((r) => ({ time: r.time, stream: r.stream, text: r.text })), dropped: BigInt(stats.dropped), known: true };
}
