// corral.registry.v1.ReleaseService handlers: translate messages, call the domain.
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  DeleteReleaseResponseSchema,
  DeployReleaseResponseSchema,
  DownloadReleaseResponseSchema,
  GetReleaseResponseSchema,
  ListDeploymentsResponseSchema,
  ListReleasesResponseSchema,
  ListReleaseStatusResponseSchema,
  PublishReleaseResponseSchema,
  ReleaseService,
  ReportReleaseStatusResponseSchema,
  UndeployReleaseResponseSchema,
  WatchDeploymentsResponseSchema,
  type PublishReleaseRequest,
} from "@corral/proto";
import { InvalidArgumentError, keyRevocation, NotFoundError, requireClusterAllowed, requireTeam, requireWorker } from "@corral/server-kit";
import type { Clusters } from "./clusters.js";
import type { Deployments } from "./deployments.js";
import type { ReleaseStatus } from "./release-status.js";
import type { Releases } from "./releases.js";
import {
  deploymentMessage,
  loadStateFromMessage,
  manifestFromMessage,
  releaseMessage,
  runnerReleaseStatusMessage,
} from "./release-messages.js";
import type { StoredLoadStatus } from "./store/database.js";

/** The chunks after the header; anything else there is INVALID_ARGUMENT. */
async function* chunksOf(rest: AsyncIterator<PublishReleaseRequest>): AsyncGenerator<Uint8Array> {
  for (;;) {
    const next = await rest.next();
    if (next.done) return;
    if (next.value.part.case !== "chunk") throw new InvalidArgumentError("part", "only chunks may follow the header");
    yield next.value.part.value;
  }
}

export function createReleaseService(
  releases: Releases,
  deployments: Deployments,
  status: ReleaseStatus,
  clusters: Clusters,
): ServiceImpl<typeof ReleaseService> {
  /**
   * The calls a release runner makes take a runner-scoped key too, for its own cluster only: the
   * team, after checking the cluster `slug` names is the key's.
   */
  async function workerOf(ctx: Parameters<typeof requireWorker>[0], slug: string): Promise<string> {
    const worker = requireWorker(ctx);
    if (worker.clusterId !== undefined) requireClusterAllowed(worker, (await clusters.get(worker.teamId, slug)).id);
    return worker.teamId;
  }

  return {
    async publishRelease(requests, ctx) {
      const teamId = requireTeam(ctx);
      const it = requests[Symbol.asyncIterator]();
      const first = await it.next();
      if (first.done || first.value.part.case !== "header") {
        throw new InvalidArgumentError("header", "the first message must be the header");
      }
      const header = first.value.part.value;
      if (header.sizeBytes > BigInt(Number.MAX_SAFE_INTEGER)) {
        throw new InvalidArgumentError("header.size_bytes", "too large");
      }
      const { release, created } = await releases.publish(
        teamId,
        {
          name: header.name,
          version: header.version,
          digest: header.digest,
          sizeBytes: Number(header.sizeBytes),
          manifest: manifestFromMessage(header.manifest!),
        },
        chunksOf(it),
        ctx.signal,
      );
      // An unchanged republish is answered without reading the upload: read the rest anyway (at
      // most the declared size) before answering, since a client still sending would otherwise
      // wait on flow control for a stream nobody reads.
      if (!created) {
        let left = Number(header.sizeBytes);
        for await (const chunk of chunksOf(it)) {
          left -= chunk.byteLength;
          if (left < 0) break;
        }
      }
      return create(PublishReleaseResponseSchema, { release: releaseMessage(release), created });
    },

    async getRelease(req, ctx) {
      const release = await releases.get(requireTeam(ctx), req.name, req.version);
      return create(GetReleaseResponseSchema, { release: releaseMessage(release) });
    },

    async listReleases(req, ctx) {
      const page = await releases.list(requireTeam(ctx), req.name, req.pageSize, req.pageToken);
      return create(ListReleasesResponseSchema, { releases: page.items.map(releaseMessage), nextPageToken: page.nextPageToken });
    },

    async *downloadRelease(req, ctx) {
      const worker = requireWorker(ctx);
      if (worker.clusterId !== undefined) {
        // A runner's key downloads only what is deployed to its cluster.
        const deployed = (await deployments.ofClusters(worker.teamId, [worker.clusterId])).get(worker.clusterId) ?? [];
        if (!deployed.some((d) => d.release.name === req.name && d.release.version === req.version)) {
          throw new NotFoundError("release", `${req.name}@${req.version}`);
        }
      }
      const { release, bytes } = await releases.download(worker.teamId, req.name, req.version, ctx.signal);
      yield create(DownloadReleaseResponseSchema, { part: { case: "release", value: releaseMessage(release) } });
      for await (const chunk of bytes) {
        yield create(DownloadReleaseResponseSchema, { part: { case: "chunk", value: chunk } });
      }
    },

    async deleteRelease(req, ctx) {
      await releases.delete(requireTeam(ctx), req.name, req.version);
      return create(DeleteReleaseResponseSchema, {});
    },

    async deployRelease(req, ctx) {
      const { deployment, replacedVersion } = await deployments.deploy(requireTeam(ctx), req.name, req.version, req.clusterSlug);
      return create(DeployReleaseResponseSchema, { deployment: deploymentMessage(deployment), replacedVersion });
    },

    async undeployRelease(req, ctx) {
      await deployments.undeploy(requireTeam(ctx), req.name, req.clusterSlug);
      return create(UndeployReleaseResponseSchema, {});
    },

    async listDeployments(req, ctx) {
      const list = await deployments.list(requireTeam(ctx), req.clusterSlug);
      return create(ListDeploymentsResponseSchema, { deployments: list.map(deploymentMessage) });
    },

    async *watchDeployments(req, ctx) {
      const teamId = await workerOf(ctx, req.clusterSlug);
      // A revoked key stops the watch (and its listener) at once; the server ends the call with
      // UNAUTHENTICATED.
      const revoked = keyRevocation(ctx);
      const signal = revoked ? AbortSignal.any([ctx.signal, revoked]) : ctx.signal;
      for await (const set of deployments.watch(teamId, req.clusterSlug, signal)) {
        yield create(WatchDeploymentsResponseSchema, {
          deployments: set.deployments.map(deploymentMessage),
          clusterId: set.cluster.id,
          clusterSlug: set.cluster.slug,
        });
      }
      if (revoked?.aborted) throw revoked.reason;
    },

    async reportReleaseStatus(req, ctx) {
      const releases: StoredLoadStatus[] = req.releases.map((r, i) => {
        const state = loadStateFromMessage(r.state);
        if (!state) throw new InvalidArgumentError(`releases[${i}].state`, "must be LOADING, LOADED, FAILED or DRAINING");
        return { name: r.name, version: r.version, state, error: r.error, restarts: r.restarts };
      });
      await status.report(await workerOf(ctx, req.clusterSlug), req.runnerId, req.clusterSlug, releases);
      return create(ReportReleaseStatusResponseSchema, {});
    },

    async listReleaseStatus(req, ctx) {
      const runners = await status.list(requireTeam(ctx), req.clusterSlug);
      return create(ListReleaseStatusResponseSchema, { runners: runners.map(runnerReleaseStatusMessage) });
    },
  };
}
