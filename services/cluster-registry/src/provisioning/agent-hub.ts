// The agent streams this registry replica holds, and delivery of the commands owed to them. The
// reconciler (on any replica) only writes placement rows and NOTIFYs `corral_hosts` with the host
// id; the replica holding that host's stream reads what is owed and sends LaunchRunner/StopRunner.
// A periodic sweep covers a lost notification (a LISTEN connection that dropped).
import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import type { Kysely } from "kysely";
import pg from "pg";
import type { Logger } from "pino";
import { CapacitySchema, ConnectResponseSchema, type ConnectResponse } from "@corral/proto";
import type { ApiKeys } from "../api-keys.js";
import type { PlacementRow, RegistryDatabase } from "../store/database.js";
import { markSent, pendingCommands, removePlacements } from "../store/host-repository.js";

export const HOSTS_CHANNEL = "corral_hosts";

/**
 * Where a launched runner connects: `work` must route corral.broker.* (its Work stream) and
 * `registry` corral.registry.* (deployments, releases). Behind one suite URL (an ingress, `corral
 * dev`) both are that URL; services on their own ports give the broker's and the registry's.
 */
export interface RunnerUrls {
  work: string;
  registry: string;
}

export interface AgentHubOptions {
  db: Kysely<RegistryDatabase>;
  apiKeys: ApiKeys;
  replicaId: string;
  /** For LISTEN; without it only the sweep delivers commands placed by other replicas. */
  databaseUrl?: string;
  /** The URLs launched runners connect to. */
  runnerUrls: RunnerUrls;
  stopGraceMs: number;
  sweepIntervalMs: number;
  logger?: Logger;
}

interface Attached {
  teamId: string;
  connectionId: string;
  send(msg: ConnectResponse): boolean;
  /** Deliveries of one host run one at a time; a kick during one runs another after it. */
  running: Promise<void> | undefined;
  again: boolean;
}

export interface AgentHub {
  readonly replicaId: string;
  attach(hostId: string, teamId: string, connectionId: string, send: (msg: ConnectResponse) => boolean): () => void;
  /** Sends whatever is owed to the host, if its stream is here. */
  kick(hostId: string): void;
  /** Host ids whose streams this replica holds, with their connection ids. */
  attached(): Map<string, string>;
  start(): Promise<void>;
  close(): Promise<void>;
}

/** Task slots for a runner given its CPUs: one per core, at least one. */
export function concurrencyFor(cpuCores: number): number {
  return Math.max(1, cpuCores);
}

export function createAgentHub(options: AgentHubOptions): AgentHub {
  const { db, apiKeys } = options;
  const hosts = new Map<string, Attached>();
  let listener: pg.Client | undefined;
  let sweep: NodeJS.Timeout | undefined;
  let closed = false;

  async function launch(p: PlacementRow, a: Attached): Promise<void> {
    const cluster = await db.selectFrom("clusters").select(["slug"]).where("id", "=", p.cluster_id).executeTakeFirst();
    if (!cluster) return;
    const { key, rowId } = await apiKeys.create(p.team_id, `runner ${p.runner_id}`, p.cluster_id);
    const marked = await db.transaction().execute(async (tx) => {
      if (!(await markSent(tx, p.runner_id, p.sent, "launch", rowId))) return false;
      return true;
    });
    if (!marked) {
      // Stopped or taken over meanwhile: the key was never shown to anyone.
      await db.updateTable("api_keys").set({ revoke_time: new Date() }).where("id", "=", rowId).execute();
      return;
    }
    a.send(
      create(ConnectResponseSchema, {
        message: {
          case: "launch",
          value: {
            runnerId: p.runner_id,
            clusterId: p.cluster_id,
            clusterSlug: cluster.slug,
            apiKey: key,
            url: options.runnerUrls.work,
            registryUrl: options.runnerUrls.registry,
            capacity: create(CapacitySchema, {
              cpuCores: p.cpu_cores,
              memoryBytes: BigInt(p.memory_bytes),
              gpuCount: p.gpu_count,
              gpuType: p.gpu_type,
            }),
            concurrency: concurrencyFor(p.cpu_cores),
          },
        },
      }),
    );
  }

  async function deliver(hostId: string, a: Attached): Promise<void> {
    for (const p of await pendingCommands(db, hostId)) {
      if (hosts.get(hostId) !== a) return;
      if (p.desired === "run") {
        await launch(p, a);
      } else if (p.sent === "") {
        // Never launched: nothing to stop.
        await db.transaction().execute((tx) => removePlacements(tx, [p.runner_id]));
      } else if (await markSent(db, p.runner_id, p.sent, "stop")) {
        a.send(
          create(ConnectResponseSchema, {
            message: { case: "stop", value: { runnerId: p.runner_id, grace: durationFromMs(options.stopGraceMs) } },
          }),
        );
      }
    }
  }

  function kick(hostId: string): void {
    const a = hosts.get(hostId);
    if (!a) return;
    if (a.running) {
      a.again = true;
      return;
    }
    a.running = (async () => {
      do {
        a.again = false;
        try {
          await deliver(hostId, a);
        } catch (err) {
          options.logger?.warn({ err, hostId }, "delivering commands to an agent failed; the sweep retries");
        }
      } while (a.again && hosts.get(hostId) === a);
      a.running = undefined;
    })();
  }

  /** A host whose stream is open here is seen: its liveness is the stream's, not only its heartbeats'. */
  async function touchAttached(): Promise<void> {
    for (const [hostId, a] of hosts) {
      await db.updateTable("hosts").set({ last_seen_time: new Date() }).where("id", "=", hostId).where("connection_id", "=", a.connectionId).execute();
    }
  }

  async function listen(): Promise<void> {
    if (!options.databaseUrl || closed) return;
    const client = new pg.Client({ connectionString: options.databaseUrl, application_name: "cluster-registry-listen" });
    client.on("error", () => {
      // The sweep keeps delivering; listen again shortly.
      if (listener === client) listener = undefined;
      void client.end().catch(() => {});
      if (!closed) setTimeout(() => void listen().catch(() => {}), options.sweepIntervalMs).unref();
    });
    client.on("notification", (n) => {
      if (n.channel === HOSTS_CHANNEL && n.payload) kick(n.payload);
    });
    await client.connect();
    await client.query(`listen ${HOSTS_CHANNEL}`);
    if (closed) {
      await client.end();
      return;
    }
    listener = client;
  }

  return {
    replicaId: options.replicaId,
    attach(hostId, teamId, connectionId, send) {
      const a: Attached = { teamId, connectionId, send, running: undefined, again: false };
      hosts.set(hostId, a);
      return () => {
        if (hosts.get(hostId) === a) hosts.delete(hostId);
      };
    },
    kick,
    attached: () => new Map([...hosts].map(([id, a]) => [id, a.connectionId])),
    async start() {
      await listen().catch((err: unknown) => {
        options.logger?.warn({ err }, "LISTEN failed; commands placed by other replicas arrive on the sweep until it works");
        if (!closed) setTimeout(() => void listen().catch(() => {}), options.sweepIntervalMs).unref();
      });
      sweep = setInterval(() => {
        for (const id of hosts.keys()) kick(id);
        void touchAttached().catch((err: unknown) => options.logger?.warn({ err }, "could not mark this replica's hosts seen"));
      }, options.sweepIntervalMs);
      sweep.unref();
    },
    async close() {
      closed = true;
      clearInterval(sweep);
      const l = listener;
      listener = undefined;
      await l?.end().catch(() => {});
      await Promise.all([...hosts.values()].map((a) => a.running));
    },
  };
}
