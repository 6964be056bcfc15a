// corral.registry.v1.ClusterService handlers: translate messages, call the domain.
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import {
  ClusterService,
  CreateClusterResponseSchema,
  DeleteClusterResponseSchema,
  GetClusterResponseSchema,
  ListClustersResponseSchema,
  ResolveClustersResponseSchema,
  UpdateClusterResponseSchema,
} from "@corral/proto";
import { requireService, requireTeam } from "@corral/server-kit";
import type { Clusters } from "./clusters.js";
import { clusterMessage } from "./messages.js";
import { pickSpec } from "./spec.js";

export function createClusterService(clusters: Clusters): ServiceImpl<typeof ClusterService> {
  return {
    async createCluster(req, ctx) {
      const teamId = requireTeam(ctx);
      const { cluster, created } = await clusters.create(teamId, {
        name: req.name,
        description: req.description,
        ...(req.slug === undefined ? {} : { slug: req.slug }),
        spec: pickSpec(req.spec),
        ...(req.locationId === undefined ? {} : { locationId: req.locationId }),
        ...(req.configuration === undefined ? {} : { configuration: req.configuration }),
        getIfExists: req.getIfExists,
      });
      return create(CreateClusterResponseSchema, { cluster: clusterMessage(cluster), created });
    },

    async getCluster(req, ctx) {
      const cluster = await clusters.get(requireTeam(ctx), req.slug);
      return create(GetClusterResponseSchema, { cluster: clusterMessage(cluster) });
    },

    async updateCluster(req, ctx) {
      const cluster = await clusters.update(requireTeam(ctx), req.slug, {
        ...(req.name === undefined ? {} : { name: req.name }),
        ...(req.description === undefined ? {} : { description: req.description }),
        spec: pickSpec(req.spec),
      });
      return create(UpdateClusterResponseSchema, { cluster: clusterMessage(cluster) });
    },

    async deleteCluster(req, ctx) {
      await clusters.delete(requireTeam(ctx), req.slug);
      return create(DeleteClusterResponseSchema, {});
    },

    async listClusters(req, ctx) {
      const page = await clusters.list(requireTeam(ctx), req.pageSize, req.pageToken);
      return create(ListClustersResponseSchema, {
        clusters: page.items.map(clusterMessage),
        nextPageToken: page.nextPageToken,
      });
    },

    async resolveClusters(req, ctx) {
      requireService(ctx);
      const resolved = await clusters.resolve(req.teamId, req.slugs);
      return create(ResolveClustersResponseSchema, { clusters: resolved.map(clusterMessage) });
    },

    stopCluster() {
      throw new ConnectError("StopCluster is not served yet", Code.Unimplemented);
    },

    startCluster() {
      throw new ConnectError("StartCluster is not served yet", Code.Unimplemented);
    },
  };
}
