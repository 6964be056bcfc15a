// Runners as nodes. Brokers report sessions (ReportPresence); the broker names the team, so a
// runner cannot place itself in another team. A node no broker reported within the timeout, and
// whose broker process has not called within it either, reads as OFFLINE.
import type { Kysely } from "kysely";
import { decodePageToken, InvalidArgumentError, NotFoundError, pageSize, toPage, type Page } from "@corral/server-kit";
import type { Clusters } from "./clusters.js";
import { isUuid } from "./ids.js";
import type { RegistryDatabase, StoredNodeState } from "./store/database.js";
import {
  findNode,
  listNodes,
  upsertNodes,
  type NodeRecord,
  type NodeReport,
  type NodeStateFilter,
} from "./store/node-repository.js";
import { findExistingTeamIds } from "./store/team-repository.js";

export const DEFAULT_NODE_TIMEOUT_MS = 60_000;
/** ListRunningNodes has no pages; this bounds one answer. */
export const MAX_RUNNING_NODES = 10_000;
const MAX_RUNNER_ID_LENGTH = 128;

export type PresenceEventKind = "connected" | "updated" | "draining" | "disconnected";

export interface PresenceInput extends Omit<NodeReport, "state" | "newSession"> {
  event: PresenceEventKind;
}

const STATE_OF_EVENT: Record<PresenceEventKind, StoredNodeState> = {
  connected: "online",
  updated: "online",
  draining: "draining",
  disconnected: "offline",
};

export interface Nodes {
  /** `brokerInstance`: the broker process reporting, which keeps the nodes it reported alive while it calls. */
  report(reports: PresenceInput[], brokerInstance?: string): Promise<void>;
  get(teamId: string, runnerId: string): Promise<NodeRecord>;
  /** An empty cluster slug lists every cluster's nodes. */
  list(
    teamId: string,
    filter: { clusterSlug: string; state: StoredNodeState | undefined; pageSize: number; pageToken: string },
  ): Promise<Page<NodeRecord>>;
  listRunning(teamId: string, clusterSlug: string): Promise<NodeRecord[]>;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function createNodes(
  db: Kysely<RegistryDatabase>,
  clusters: Clusters,
  options: { timeoutMs?: number } = {},
): Nodes {
  const timeoutMs = options.timeoutMs ?? DEFAULT_NODE_TIMEOUT_MS;

  async function clusterIdOf(teamId: string, clusterSlug: string): Promise<string | undefined> {
    return clusterSlug === "" ? undefined : (await clusters.get(teamId, clusterSlug)).id;
  }

  async function list(
    teamId: string,
    clusterSlug: string,
    state: NodeStateFilter,
    after: string | undefined,
    limit: number,
  ) {
    const clusterId = await clusterIdOf(teamId, clusterSlug);
    return listNodes(db, timeoutMs, {
      teamId,
      ...(clusterId === undefined ? {} : { clusterId }),
      ...(state === undefined ? {} : { state }),
      ...(after === undefined ? {} : { after }),
      limit,
    });
  }

  return {
    async report(reports, brokerInstance = "") {
      if (reports.length === 0 && brokerInstance === "") return;
      reports.forEach((r, i) => {
        if (r.runnerId === "" || r.runnerId.length > MAX_RUNNER_ID_LENGTH) {
          throw new InvalidArgumentError(`reports[${i}].node.id`, `must be 1 to ${MAX_RUNNER_ID_LENGTH} characters`);
        }
      });
      // A report for a team that does not exist is dropped rather than failing the batch: brokers
      // send every session's presence together, and nobody could be shown that node anyway.
      const teams = await findExistingTeamIds(db, [...new Set(reports.map((r) => r.teamId))].filter(isUuid));
      // One row may be changed once per statement: keep each runner's last report of the batch.
      const latest = new Map<string, NodeReport>();
      for (const { event, ...r } of reports) {
        if (!teams.has(r.teamId)) continue;
        latest.set(`${r.teamId}\u0000${r.runnerId}`, {
          ...r,
          state: STATE_OF_EVENT[event],
          newSession: event === "connected",
        });
      }
      // One lock order for every writer, so two brokers' overlapping batches cannot deadlock.
      const rows = [...latest.values()].sort((a, b) =>
        a.teamId === b.teamId ? compare(a.runnerId, b.runnerId) : compare(a.teamId, b.teamId),
      );
      await upsertNodes(db, rows, brokerInstance);
    },

    async get(teamId, runnerId) {
      const found = await findNode(db, timeoutMs, teamId, runnerId);
      if (!found) throw new NotFoundError("node", runnerId);
      return found;
    },

    async list(teamId, filter) {
      const limit = pageSize(filter.pageSize);
      const rows = await list(teamId, filter.clusterSlug, filter.state, decodePageToken(filter.pageToken), limit + 1);
      return toPage(rows, limit, (r) => r.runnerId);
    },

    async listRunning(teamId, clusterSlug) {
      return list(teamId, clusterSlug, "running", undefined, MAX_RUNNING_NODES);
    },
  };
}
