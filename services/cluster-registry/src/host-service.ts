// corral.registry.v1.HostService: the agent's stream (hello, then runner states, logs and
// heartbeats in; launch and stop commands out), and reading hosts and runner logs.
import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { durationFromMs, timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import type { Kysely } from "kysely";
import {
  ConnectResponseSchema,
  GetHostResponseSchema,
  GetRunnerLogsResponseSchema,
  HostedRunnerState,
  HostService,
  HostState,
  ListHostsResponseSchema,
  LogLineSchema,
  type ConnectRequest,
  type ConnectResponse,
} from "@corral/proto";
import {
  decodePageToken,
  FailedPreconditionError,
  InvalidArgumentError,
  keyRevocation,
  NotFoundError,
  pageSize,
  requireTeam,
  toConnectError,
} from "@corral/server-kit";
import type { Logger } from "pino";
import { hostMessage } from "./host-messages.js";
import { isUuid, newId } from "./ids.js";
import type { AgentHub } from "./provisioning/agent-hub.js";
import { CommandQueue } from "./provisioning/command-queue.js";
import { hostLiveness } from "./provisioning/host-liveness.js";
import type { PlacementRow, PlacementState, RegistryDatabase } from "./store/database.js";
import {
  appendRunnerLogs,
  findHost,
  findPlacement,
  listHostPlacements,
  listPlacements,
  listTeamHosts,
  readRunnerLogs,
  releaseHost,
  removePlacements,
  resetSent,
  touchHost,
  updatePlacementState,
  upsertHost,
} from "./store/host-repository.js";

export interface HostServiceOptions {
  graceMs: number;
  heartbeatIntervalMs: number;
  helloTimeoutMs?: number;
  logLimits: { maxLines: number; maxBytes: number };
  /** Commands buffered for an agent that does not read before its stream is cut. */
  maxQueuedCommands?: number;
  /** The reconciler on this replica: run a pass soon (a runner changed state, a host came or went). */
  poke(): void;
  logger?: Logger;
}

const RUNNER_STATES: Partial<Record<HostedRunnerState, PlacementState>> = {
  [HostedRunnerState.STARTING]: "starting",
  [HostedRunnerState.RUNNING]: "running",
  [HostedRunnerState.RESTARTING]: "restarting",
  [HostedRunnerState.STOPPING]: "stopping",
  [HostedRunnerState.STOPPED]: "stopped",
};

function agentError(err: unknown): ConnectResponse {
  const ce = toConnectError(err);
  return create(ConnectResponseSchema, { message: { case: "error", value: { code: ce.code, message: ce.rawMessage } } });
}

/** Postgres text holds no NUL; an agent relays whatever a runner printed. */
function storable(text: string): string {
  return text.replace(/\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, "\uFFFD");
}

export function createHostService(db: Kysely<RegistryDatabase>, hub: AgentHub, options: HostServiceOptions): ServiceImpl<typeof HostService> {
  /** Slugs of the clusters these runners belong to, by cluster id. */
  async function clusterSlugs(placements: PlacementRow[]): Promise<Map<string, string>> {
    const ids = [...new Set(placements.map((p) => p.cluster_id))];
    if (ids.length === 0) return new Map();
    const rows = await db.selectFrom("clusters").select(["id", "slug"]).where("id", "in", ids).execute();
    return new Map(rows.map((r) => [r.id, r.slug]));
  }

  async function resolveLocation(teamId: string, location: string): Promise<string | null> {
    if (location === "") return null;
    let q = db.selectFrom("locations").select("id").where("team_id", "=", teamId);
    q = isUuid(location) ? q.where((eb) => eb.or([eb("id", "=", location), eb("name", "=", location)])) : q.where("name", "=", location);
    const found = await q.executeTakeFirst();
    if (!found) throw new InvalidArgumentError("hello.location", `no location ${JSON.stringify(location)} in the team`);
    return found.id;
  }

  async function handle(teamId: string, hostId: string, connectionId: string, req: ConnectRequest, queue: CommandQueue<ConnectResponse>): Promise<void> {
    const m = req.message;
    switch (m.case) {
      case "hello":
        throw new InvalidArgumentError("hello", "sent once, first");
      case "heartbeat":
        if (!(await touchHost(db, hostId, connectionId))) {
          throw new FailedPreconditionError("another stream of this host took over");
        }
        return;
      case "runnerState": {
        const state = RUNNER_STATES[m.value.state];
        if (!state) throw new InvalidArgumentError("runner_state.state", "must be a runner state");
        const row = await updatePlacementState(db, hostId, m.value.runnerId, {
          state,
          pid: m.value.pid,
          restarts: m.value.restarts,
          lastExit: storable(m.value.lastExit),
        });
        if (!row) {
          // Not (or no longer) placed here: it has no business running.
          if (state !== "stopped") {
            queue.push(create(ConnectResponseSchema, { message: { case: "stop", value: { runnerId: m.value.runnerId, grace: durationFromMs(0) } } }), () => undefined);
          }
          return;
        }
        if (state === "stopped") {
          // Stopped as told, or gave up: either way its slot is free and its key revoked; the
          // reconciler places a replacement if the cluster still wants one.
          await db.transaction().execute((tx) => removePlacements(tx, [row.runner_id]));
        }
        options.poke();
        return;
      }
      case "logs": {
        const placed = await findPlacement(db, teamId, m.value.runnerId);
        if (!placed || placed.host_id !== hostId) return;
        await appendRunnerLogs(
          db,
          teamId,
          m.value.runnerId,
          m.value.lines.map((l) => ({ time: l.time ? timestampDate(l.time) : new Date(), stream: storable(l.stream), text: storable(l.text) })),
          options.logLimits,
        );
        return;
      }
      default:
        throw new InvalidArgumentError("message", "must be set");
    }
  }

  return {
    async *connect(requests: AsyncIterable<ConnectRequest>, ctx: HandlerContext): AsyncIterable<ConnectResponse> {
      const teamId = requireTeam(ctx);
      const input = requests[Symbol.asyncIterator]();
      let timer: NodeJS.Timeout | undefined;
      const timeoutMs = options.helloTimeoutMs ?? 30_000;
      const silent = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new ConnectError(`no AgentHello within ${timeoutMs} ms`, Code.DeadlineExceeded)), timeoutMs);
      });
      let first: IteratorResult<ConnectRequest>;
      try {
        first = await Promise.race([input.next(), silent]);
      } finally {
        clearTimeout(timer);
      }
      if (first.done) return;
      if (first.value.message.case !== "hello") {
        const err = new InvalidArgumentError("hello", "the first message must be AgentHello");
        yield agentError(err);
        throw err;
      }
      const hello = first.value.message.value;
      const capacity = hello.capacity!;
      let locationId: string | null;
      try {
        locationId = await resolveLocation(teamId, hello.location);
      } catch (err) {
        yield agentError(err);
        throw err;
      }
      const connectionId = randomUUID();
      const host = await upsertHost(db, {
        id: newId(),
        teamId,
        name: hello.name,
        cpuCores: capacity.cpuCores,
        memoryBytes: capacity.memoryBytes,
        gpuCount: capacity.gpuCount,
        gpuType: capacity.gpuType,
        locationId,
        labels: { ...hello.labels },
        agentVersion: hello.agentVersion,
        replicaId: hub.replicaId,
        connectionId,
      });
      // A new stream is owed every command again; the agent ignores launches of runners it runs.
      await resetSent(db, host.id);
      const queue = new CommandQueue<ConnectResponse>(options.maxQueuedCommands ?? 10_000);
      const overflow = () => new ConnectError("the agent does not read its commands", Code.ResourceExhausted);
      const detach = hub.attach(host.id, teamId, connectionId, (msg) => queue.push(msg, overflow));
      const revoked = keyRevocation(ctx);
      const onRevoked = () => queue.end(new ConnectError("the agent's API key was revoked", Code.Unauthenticated));
      revoked?.addEventListener("abort", onRevoked);
      const onAbort = () => queue.end();
      ctx.signal.addEventListener("abort", onAbort);
      try {
        queue.push(
          create(ConnectResponseSchema, {
            message: { case: "welcome", value: { hostId: host.id, heartbeatInterval: durationFromMs(options.heartbeatIntervalMs) } },
          }),
          overflow,
        );
        // Runners the agent still runs that are not placed on it (replaced while it was away) stop.
        const placed = new Set((await listHostPlacements(db, host.id)).map((p) => p.runner_id));
        for (const id of hello.runningRunnerIds) {
          if (!placed.has(id)) {
            queue.push(create(ConnectResponseSchema, { message: { case: "stop", value: { runnerId: id, grace: durationFromMs(0) } } }), overflow);
          }
        }
        hub.kick(host.id);
        options.poke();
        void (async () => {
          try {
            for (;;) {
              const next = await input.next();
              if (next.done) break;
              await handle(teamId, host.id, connectionId, next.value, queue);
            }
            queue.end();
          } catch (err) {
            queue.push(agentError(err), overflow);
            queue.end(err);
          }
        })();
        yield* queue;
      } finally {
        revoked?.removeEventListener("abort", onRevoked);
        ctx.signal.removeEventListener("abort", onAbort);
        detach();
        await releaseHost(db, host.id, connectionId).catch((err: unknown) => options.logger?.warn({ err }, "could not release a host"));
        options.poke();
      }
    },

    async listHosts(req, ctx) {
      const teamId = requireTeam(ctx);
      const limit = pageSize(req.pageSize);
      const after = decodePageToken(req.pageToken);
      const now = Date.now();
      const placements = await listPlacements(db, teamId);
      const slugs = await clusterSlugs(placements);
      const all = (await listTeamHosts(db, teamId))
        .map((h) => hostMessage(h, placements, hostLiveness(h, now, options.graceMs), slugs))
        .filter((h) => req.state === HostState.UNSPECIFIED || h.state === req.state)
        .filter((h) => after === undefined || h.name > after);
      const page = all.slice(0, limit);
      return create(ListHostsResponseSchema, { hosts: page, nextPageToken: all.length > limit ? (page.at(-1)?.name ?? "") : "" });
    },

    async getHost(req, ctx) {
      const teamId = requireTeam(ctx);
      const h = await findHost(db, teamId, req.host, isUuid(req.host));
      if (!h) throw new NotFoundError("host", req.host);
      const placements = await listHostPlacements(db, h.id);
      return create(GetHostResponseSchema, { host: hostMessage(h, placements, hostLiveness(h, Date.now(), options.graceMs), await clusterSlugs(placements)) });
    },

    async getRunnerLogs(req, ctx) {
      const teamId = requireTeam(ctx);
      const logs = await readRunnerLogs(db, teamId, req.runnerId, req.tail === 0 ? 200 : req.tail);
      if (!logs.known && !(await findPlacement(db, teamId, req.runnerId))) throw new NotFoundError("runner", req.runnerId);
      return create(GetRunnerLogsResponseSchema, {
        lines: logs.lines.map((l) => create(LogLineSchema, { time: timestampFromDate(l.time), stream: l.stream, text: l.text })),
        dropped: logs.dropped,
      });
    },
  };
}
