// corral.registry.v1.NodeService handlers.
import { create } from "@bufbuild/protobuf";
import { timestampDate, timestampMs } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  GetNodeResponseSchema,
  ListNodesResponseSchema,
  ListRunningNodesResponseSchema,
  NodeService,
  PresenceEvent,
  ReportPresenceResponseSchema,
  type PresenceReport,
} from "@corral/proto";
import { InvalidArgumentError, requireService, requireTeam } from "@corral/server-kit";
import { nodeMessage, nodeStateFromMessage } from "./messages.js";
import type { Nodes, PresenceEventKind, PresenceInput } from "./nodes.js";

const EVENTS: Partial<Record<PresenceEvent, PresenceEventKind>> = {
  [PresenceEvent.CONNECTED]: "connected",
  [PresenceEvent.UPDATED]: "updated",
  [PresenceEvent.DRAINING]: "draining",
  [PresenceEvent.DISCONNECTED]: "disconnected",
};

function presenceInput(report: PresenceReport, index: number): PresenceInput {
  const event = EVENTS[report.event];
  const node = report.node;
  // protovalidate rejects these first; the checks keep the handler honest when called directly.
  if (!event) throw new InvalidArgumentError(`reports[${index}].event`, "must be a presence event");
  if (!node) throw new InvalidArgumentError(`reports[${index}].node`, "is required");
  const hw = node.hardware;
  return {
    event,
    teamId: report.teamId,
    runnerId: node.id,
    sessionId: node.sessionId,
    clusterId: node.clusterId,
    clusterSlug: node.clusterSlug,
    hostname: node.hostname,
    hardware: {
      cpuCores: hw?.cpuCores ?? 0,
      gpuCount: hw?.gpuCount ?? 0,
      gpuType: hw?.gpuType ?? "",
      memoryBytes: hw?.memoryBytes ?? 0n,
      hostname: hw?.hostname ?? "",
      os: hw?.os ?? "",
      arch: hw?.arch ?? "",
    },
    identifiers: node.identifiers.map((i) => ({ name: i.name, version: i.version })),
    labels: { ...node.labels },
    slots: node.slots,
    busySlots: node.busySlots,
    runningTasks: node.runningTasks.map((t) => ({
      taskId: t.taskId,
      attempt: t.attempt,
      name: t.identifier?.name ?? "",
      version: t.identifier?.version ?? "",
      jobId: t.jobId,
      sinceMs: t.since ? timestampMs(t.since) : 0,
    })),
    brokerId: node.brokerId,
    connectTime: node.connectTime && timestampDate(node.connectTime),
    lastSeenTime: node.lastSeenTime && timestampDate(node.lastSeenTime),
  };
}

export function createNodeService(nodes: Nodes): ServiceImpl<typeof NodeService> {
  return {
    async listNodes(req, ctx) {
      const page = await nodes.list(requireTeam(ctx), {
        clusterSlug: req.clusterSlug,
        state: nodeStateFromMessage(req.state),
        pageSize: req.pageSize,
        pageToken: req.pageToken,
      });
      return create(ListNodesResponseSchema, { nodes: page.items.map(nodeMessage), nextPageToken: page.nextPageToken });
    },

    async getNode(req, ctx) {
      const node = await nodes.get(requireTeam(ctx), req.id);
      return create(GetNodeResponseSchema, { node: nodeMessage(node) });
    },

    async listRunningNodes(req, ctx) {
      const running = await nodes.listRunning(requireTeam(ctx), req.clusterSlug);
      return create(ListRunningNodesResponseSchema, { nodes: running.map(nodeMessage) });
    },

    async reportPresence(req, ctx) {
      requireService(ctx);
      await nodes.report(req.reports.map(presenceInput), req.brokerInstance);
      return create(ReportPresenceResponseSchema, { keepsInstances: true });
    },
  };
}
