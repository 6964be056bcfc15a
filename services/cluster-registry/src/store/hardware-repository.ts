import { sql, type Kysely } from "kysely";
import type { RegistryDatabase } from "./database.js";

export interface HardwareRecord {
  id: string;
  teamId: string;
  name: string;
  gpuCount: number;
  gpuType: string;
  cpuCores: number;
  memoryBytes: bigint;
  createTime: Date;
}

// memory_bytes is numeric(20,0) (uint64 does not fit int8); read it as text to keep every digit.
function selectHardware(db: Kysely<RegistryDatabase>) {
  return db
    .selectFrom("hardware")
    .select([
      "id",
      "team_id",
      "name",
      "gpu_count",
      "gpu_type",
      "cpu_cores",
      sql<string>`memory_bytes::text`.as("memory_bytes"),
      "create_time",
    ]);
}

function toRecord(row: {
  id: string;
  team_id: string;
  name: string;
  gpu_count: number;
  gpu_type: string;
  cpu_cores: number;
  memory_bytes: string;
  create_time: Date;
}): HardwareRecord {
  return {
    id: row.id,
    teamId: row.team_id,
    name: row.name,
    gpuCount: row.gpu_count,
    gpuType: row.gpu_type,
    cpuCores: row.cpu_cores,
    memoryBytes: BigInt(row.memory_bytes),
    createTime: row.create_time,
  };
}

export async function insertHardware(
  db: Kysely<RegistryDatabase>,
  hardware: Omit<HardwareRecord, "createTime">,
): Promise<HardwareRecord> {
  const row = await db
    .insertInto("hardware")
    .values({
      id: hardware.id,
      team_id: hardware.teamId,
      name: hardware.name,
      gpu_count: hardware.gpuCount,
      gpu_type: hardware.gpuType,
      cpu_cores: hardware.cpuCores,
      memory_bytes: hardware.memoryBytes.toString(),
    })
    .returning("create_time")
    .executeTakeFirstOrThrow();
  return { ...hardware, createTime: row.create_time };
}

export async function findHardware(
  db: Kysely<RegistryDatabase>,
  teamId: string,
  id: string,
): Promise<HardwareRecord | undefined> {
  const row = await selectHardware(db).where("team_id", "=", teamId).where("id", "=", id).executeTakeFirst();
  return row && toRecord(row);
}

export async function listHardware(
  db: Kysely<RegistryDatabase>,
  teamId: string,
  after: string | undefined,
  limit: number,
): Promise<HardwareRecord[]> {
  let query = selectHardware(db).where("team_id", "=", teamId);
  if (after !== undefined) query = query.where("id", ">", after);
  const rows = await query.orderBy("id").limit(limit).execute();
  return rows.map(toRecord);
}
