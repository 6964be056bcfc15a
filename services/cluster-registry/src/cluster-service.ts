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
import type { Deployments } from "./deployments.js";
import type { Provisioning } from "./provisioning/provisioning.js";
import { clusterMessage } from "./messages.js";
import { deploymentMessage } from "./release-messages.js";
import type { ClusterRecord } from "./store/cluster-repository.js";
import { pickSpec } from "./spec.js";

export function createClusterService(clusters: Clusters, provisioning: Provisioning, deployments: Deployments): ServiceImpl<typeof ClusterService> {
  /** The clusters as messages with their provisioning state and deployments (one query each for all of them). */
  async function withStatus(teamId: string, list: ClusterRecord[]): Promise<Cluster[]> {
    const [status, byCluster] = await Promise.all([
      provisioning.statusOf(list.map((c) => c.id)),
      deployments.ofClusters(teamId, list.map((c) => c.id)),
    ]);
    return list.map((c) => clusterMessage(c, status.get(c.id), (byCluster.get(c.id) ?? []).map(deploymentMessage)));
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
      return create(CreateClusterResponseSchema, { cluster: (await withStatus(teamId, [cluster]))[0], created });
    },

    async getCluster(req, ctx) {
      const teamId = requireTeam(ctx);
      const cluster = await clusters.get(teamId, req.slug);
      const [message] = await withStatus(teamId, [cluster]);
      return create(GetClusterResponseSchema, { cluster: message });
    },

    async updateCluster(req, ctx) {
      const teamId = requireTeam(ctx);
      const cluster = await clusters.update(teamId, req.slug, {
        ...(req.name === undefined ? {} : { name: req.name }),
        ...(req.description === undefined ? {} : { description: req.description }),
        spec: pickSpec(req.spec),
      });
      await provisioning.specChanged(cluster);
      const [message] = await withStatus(teamId, [cluster]);
      return create(UpdateClusterResponseSchema, { cluster: message });
    },

    async deleteCluster(req, ctx) {
      await clusters.delete(requireTeam(ctx), req.slug, { force: req.force });
      return create(DeleteClusterResponseSchema, {});
    },

    async listClusters(req, ctx) {
      const teamId = requireTeam(ctx);
      const page = await clusters.list(teamId, req.pageSize, req.pageToken);
      return create(ListClustersResponseSchema, {
        clusters: await withStatus(teamId, page.items),
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
      return create(StopClusterResponseSchema, { cluster: (await withStatus(teamId, [await clusters.get(teamId, req.slug)]))[0] });
    },

    async startCluster(req, ctx) {
      const teamId = requireTeam(ctx);
      await provisioning.start(await clusters.get(teamId, req.slug));
      return create(StartClusterResponseSchema, { cluster: (await withStatus(teamId, [await clusters.get(teamId, req.slug)]))[0] });
    },
  };
}
