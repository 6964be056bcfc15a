// corral.registry.v1.ClusterService handlers: translate messages, call the domain.
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import {
  type Cluster,
  ClusterService,
  CreateClusterResponseSchema,
  DeleteClusterResponseSchema,
  GetClusterResponseSchema,
  ListClustersResponseSchema,
  ResolveClustersResponseSchema,
  StartClusterResponseSchema,
  StopClusterResponseSchema,
  UpdateClusterResponseSchema,
} from "@corral/proto";
import { requireService, requireTeam } from "@corral/server-kit";
import type { Clusters } from "./clusters.js";
import type { Provisioning } from "./provisioning/provisioning.js";
import type { ClusterRecord } from "./store/cluster-repository.js";
import { clusterMessage } from "./messages.js";
import { pickSpec } from "./spec.js";

export function createClusterService(clusters: Clusters, provisioning: Provisioning): ServiceImpl<typeof ClusterService> {
  async function withStatus(cluster: ClusterRecord): Promise<Cluster> {
    return clusterMessage(cluster, (await provisioning.statusOf([cluster.id])).get(cluster.id));
  }

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
      if (created) await provisioning.specChanged(cluster);
      return create(CreateClusterResponseSchema, { cluster: await withStatus(cluster), created });
    },

    async getCluster(req, ctx) {
      const cluster = await clusters.get(requireTeam(ctx), req.slug);
      return create(GetClusterResponseSchema, { cluster: await withStatus(cluster) });
    },

    async updateCluster(req, ctx) {
      const cluster = await clusters.update(requireTeam(ctx), req.slug, {
        ...(req.name === undefined ? {} : { name: req.name }),
        ...(req.description === undefined ? {} : { description: req.description }),
        spec: pickSpec(req.spec),
      });
      await provisioning.specChanged(cluster);
      return create(UpdateClusterResponseSchema, { cluster: await withStatus(cluster) });
    },

    async deleteCluster(req, ctx) {
      await clusters.delete(requireTeam(ctx), req.slug);
      return create(DeleteClusterResponseSchema, {});
    },

    async listClusters(req, ctx) {
      const page = await clusters.list(requireTeam(ctx), req.pageSize, req.pageToken);
      const status = await provisioning.statusOf(page.items.map((c) => c.id));
      return create(ListClustersResponseSchema, {
        clusters: page.items.map((c) => clusterMessage(c, status.get(c.id))),
        nextPageToken: page.nextPageToken,
      });
    },

    async resolveClusters(req, ctx) {
      requireService(ctx);
      const resolved = await clusters.resolve(req.teamId, req.slugs);
      return create(ResolveClustersResponseSchema, { clusters: resolved.map((c) => clusterMessage(c)) });
    },

    async stopCluster(req, ctx) {
      const teamId = requireTeam(ctx);
      await provisioning.stop(await clusters.get(teamId, req.slug));
      return create(StopClusterResponseSchema, { cluster: await withStatus(await clusters.get(teamId, req.slug)) });
    },

    async startCluster(req, ctx) {
      const teamId = requireTeam(ctx);
      await provisioning.start(await clusters.get(teamId, req.slug));
      return create(StartClusterResponseSchema, { cluster: await withStatus(await clusters.get(teamId, req.slug)) });
    },
  };
}
