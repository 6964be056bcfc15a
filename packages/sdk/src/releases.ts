// client.releases(): publish task bundles, download them, deploy them to clusters, watch a
// cluster's deployments and read how its release runners loaded them. Publishing takes a bundle
// already built (`corral release publish` builds one with esbuild); the SDK never bundles.
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { once } from "node:events";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { createClient, type Client as RpcClient, type Transport } from "@connectrpc/connect";
import {
  PublishReleaseRequestSchema,
  ReleaseLoadState,
  ReleaseService,
  type Deployment,
  type Release,
  type RunnerReleaseStatus,
  type WatchDeploymentsResponse,
} from "@corral/proto";
import { ApiError, Code, rpc, toApiError } from "./errors.js";
import { parseIdentifier, type TaskIdentifierInit } from "./identifier.js";
import { collectPages } from "./paginate.js";

/** Bytes per upload message: the server takes at most 1 MiB per chunk. */
export const RELEASE_CHUNK_BYTES = 1024 * 1024;

/** Where a release was built from. */
export type ReleaseSourceInput =
  | { directory: string }
  | { git: { url: string; ref: string; commit: string; dir?: string } };

export interface ReleaseManifestInput {
  /** The task identifiers the bundle exports (`name@v1.0` strings or objects); at least one. */
  identifiers: Array<string | TaskIdentifierInit>;
  /** package.json engines.node, e.g. ">=20". */
  nodeEngine?: string;
  /** The entry module the bundle was built from, relative to the source. */
  entry?: string;
  source?: ReleaseSourceInput;
}

export interface PublishReleaseOptions {
  name: string;
  /** Semantic version, e.g. 1.4.0. */
  version: string;
  manifest: ReleaseManifestInput;
  signal?: AbortSignal;
}

/** A bundle to publish: its bytes, or the path of a file holding them (read twice, never whole). */
export type ReleaseBundle = Uint8Array | { path: string };

export type ReleaseLoadStateName = "loading" | "loaded" | "failed" | "draining";

const loadStates: Record<ReleaseLoadStateName, ReleaseLoadState> = {
  loading: ReleaseLoadState.LOADING,
  loaded: ReleaseLoadState.LOADED,
  failed: ReleaseLoadState.FAILED,
  draining: ReleaseLoadState.DRAINING,
};

export function releaseLoadStateName(state: ReleaseLoadState): ReleaseLoadStateName | undefined {
  return (Object.keys(loadStates) as ReleaseLoadStateName[]).find((k) => loadStates[k] === state);
}

export interface ReleaseLoadStatusInput {
  name: string;
  version: string;
  state: ReleaseLoadStateName;
  error?: string;
  restarts?: number;
}

/** The downloaded bytes do not hash to the release's digest (or are not its size). */
export class ReleaseDigestError extends ApiError {
  constructor(message: string) {
    super(Code.DataLoss, message);
    this.name = "ReleaseDigestError";
  }
}

function digestOf(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

async function fileDigest(path: string): Promise<{ digest: string; sizeBytes: number }> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: RELEASE_CHUNK_BYTES })) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { digest: `sha256:${hash.digest("hex")}`, sizeBytes: size };
}

function manifestMessage(m: ReleaseManifestInput) {
  const source = m.source;
  return {
    identifiers: m.identifiers.map((i) => (typeof i === "string" ? parseIdentifier(i) : i)),
    nodeEngine: m.nodeEngine ?? "",
    entry: m.entry ?? "",
    source:
      source === undefined
        ? undefined
        : "directory" in source
          ? { source: { case: "directory" as const, value: { path: source.directory } } }
          : { source: { case: "git" as const, value: { ...source.git, dir: source.git.dir ?? "" } } },
  };
}

export class ReleaseClient {
  readonly #rpc: RpcClient<typeof ReleaseService>;

  constructor(transport: Transport) {
    this.#rpc = createClient(ReleaseService, transport);
  }

  /**
   * Publishes a built bundle as release `name`@`version`, in chunks. A name and version never
   * change: the same bytes again answer `created: false`; other bytes throw AlreadyExistsError.
   * A bundle over the server's limit throws ResourceError.
   *
   * @example
   * const { release } = await client.releases().publish({ path: "dist/bundle.mjs" }, {
   *   name: "render", version: "1.4.0", manifest: { identifiers: ["render-tile@v1.0"], nodeEngine: ">=20" },
   * });
   */
  async publish(bundle: ReleaseBundle, options: PublishReleaseOptions): Promise<{ release: Release; created: boolean }> {
    const { digest, sizeBytes } =
      bundle instanceof Uint8Array ? { digest: digestOf(bundle), sizeBytes: bundle.length } : await fileDigest(bundle.path);
    const header = {
      name: options.name,
      version: options.version,
      digest,
      sizeBytes: BigInt(sizeBytes),
      manifest: manifestMessage(options.manifest),
    };
    type Part = MessageInitShape<typeof PublishReleaseRequestSchema>;
    async function* parts(): AsyncGenerator<Part> {
      yield { part: { case: "header", value: header } };
      if (bundle instanceof Uint8Array) {
        for (let at = 0; at < bundle.length; at += RELEASE_CHUNK_BYTES) {
          yield { part: { case: "chunk", value: bundle.subarray(at, at + RELEASE_CHUNK_BYTES) } };
        }
        return;
      }
      for await (const chunk of createReadStream(bundle.path, { highWaterMark: RELEASE_CHUNK_BYTES })) {
        yield { part: { case: "chunk", value: chunk as Buffer } };
      }
    }
    const res = await rpc(() => this.#rpc.publishRelease(parts(), { signal: options.signal }));
    return { release: res.release!, created: res.created };
  }

  /** A release; without a version, the name's newest. Throws ReleaseNotFoundError. */
  async get(name: string, version = ""): Promise<Release> {
    const res = await rpc(() => this.#rpc.getRelease({ name, version }));
    return res.release!;
  }

  /** The team's releases (of one name when given), by name, newest version first. */
  async list(options: { name?: string } = {}): Promise<Release[]> {
    return collectPages(async (pageToken) => {
      const res = await rpc(() => this.#rpc.listReleases({ name: options.name ?? "", pageSize: 500, pageToken }));
      return { items: res.releases, nextPageToken: res.nextPageToken };
    });
  }

  /**
   * The release and its bundle's bytes as they arrive. The digest is checked at the end: a
   * mismatch throws ReleaseDigestError from the iteration, so use the bytes only once it finished.
   *
   * @example
   * const { release, bytes } = await client.releases().stream("render", "1.4.0");
   * for await (const chunk of bytes) out.write(chunk);
   */
  async stream(name: string, version: string, options: { signal?: AbortSignal } = {}): Promise<{ release: Release; bytes: AsyncGenerator<Uint8Array> }> {
    const done = new AbortController();
    const outer = options.signal;
    const forward = () => done.abort(outer?.reason);
    if (outer?.aborted) forward();
    else outer?.addEventListener("abort", forward, { once: true });
    const responses = this.#rpc.downloadRelease({ name, version }, { signal: done.signal })[Symbol.asyncIterator]();
    const stop = () => {
      outer?.removeEventListener("abort", forward);
      done.abort();
    };
    let first;
    try {
      first = await responses.next();
    } catch (err) {
      stop();
      throw toApiError(err);
    }
    if (first.done || first.value.part.case !== "release") {
      stop();
      throw new ApiError(Code.Internal, "the download did not start with its release");
    }
    const release = first.value.part.value;
    async function* bytes(): AsyncGenerator<Uint8Array> {
      const hash = createHash("sha256");
      let size = 0;
      try {
        for (;;) {
          const next = await responses.next();
          if (next.done) break;
          if (next.value.part.case !== "chunk") continue;
          hash.update(next.value.part.value);
          size += next.value.part.value.length;
          yield next.value.part.value;
        }
      } catch (err) {
        throw toApiError(err);
      } finally {
        stop();
      }
      const digest = `sha256:${hash.digest("hex")}`;
      if (digest !== release.digest || BigInt(size) !== release.sizeBytes) {
        throw new ReleaseDigestError(`release ${name}@${version}: downloaded ${size} bytes hashing to ${digest}, expected ${release.sizeBytes} bytes ${release.digest}`);
      }
    }
    return { release, bytes: bytes() };
  }

  /**
   * Downloads the release's bundle to `path`, verified against its digest: the file appears only
   * when every byte matched.
   *
   * @example
   * const release = await client.releases().download("render", "1.4.0", "/var/cache/corral/render-1.4.0.mjs");
   */
  async download(name: string, version: string, path: string, options: { signal?: AbortSignal } = {}): Promise<Release> {
    const { release, bytes } = await this.stream(name, version, options);
    const partial = `${path}.${process.pid}.partial`;
    const out = createWriteStream(partial);
    try {
      for await (const chunk of bytes) {
        if (!out.write(chunk)) await once(out, "drain");
      }
      out.end();
      await once(out, "finish");
      await rename(partial, path);
      return release;
    } catch (err) {
      out.destroy();
      await rm(partial, { force: true });
      throw err;
    }
  }

  /** Deletes a release version; a deployed one throws FailedPreconditionError. */
  async delete(name: string, version: string): Promise<void> {
    await rpc(() => this.#rpc.deleteRelease({ name, version }));
  }

  /**
   * Deploys the release version to a cluster (default: the team's default cluster), replacing
   * another version of the same name there.
   *
   * @example
   * const { replacedVersion } = await client.releases().deploy("render", "1.4.0", { cluster: "render-farm-CvufcSxcC9SKfe" });
   */
  async deploy(name: string, version: string, options: { cluster?: string } = {}): Promise<{ deployment: Deployment; replacedVersion: string }> {
    const res = await rpc(() => this.#rpc.deployRelease({ name, version, clusterSlug: options.cluster ?? "" }));
    return { deployment: res.deployment!, replacedVersion: res.replacedVersion };
  }

  /** Takes the release (any version) off the cluster. */
  async undeploy(name: string, options: { cluster?: string } = {}): Promise<void> {
    await rpc(() => this.#rpc.undeployRelease({ name, clusterSlug: options.cluster ?? "" }));
  }

  /** Deployments of one cluster, or of every cluster of the team. */
  async deployments(options: { cluster?: string } = {}): Promise<Deployment[]> {
    const res = await rpc(() => this.#rpc.listDeployments({ clusterSlug: options.cluster ?? "" }));
    return res.deployments;
  }

  /**
   * The cluster's whole deployment set now, then again after every change, until `signal` aborts
   * or the server drains (the iteration then ends; watch again, elsewhere).
   *
   * @example
   * for await (const { deployments } of client.releases().watch({ cluster, signal })) apply(deployments);
   */
  async *watch(options: { cluster?: string; signal?: AbortSignal } = {}): AsyncGenerator<WatchDeploymentsResponse> {
    // Stopping early must end the HTTP/2 stream too (see jobs().watch): abort the call.
    const done = new AbortController();
    const outer = options.signal;
    const forward = () => done.abort(outer?.reason);
    if (outer?.aborted) forward();
    else outer?.addEventListener("abort", forward, { once: true });
    try {
      for await (const set of this.#rpc.watchDeployments({ clusterSlug: options.cluster ?? "" }, { signal: done.signal })) {
        yield set;
      }
    } catch (err) {
      throw toApiError(err);
    } finally {
      outer?.removeEventListener("abort", forward);
      done.abort();
    }
  }

  /** What each release runner of the cluster last reported about loading its releases. */
  async status(options: { cluster?: string } = {}): Promise<RunnerReleaseStatus[]> {
    const res = await rpc(() => this.#rpc.listReleaseStatus({ clusterSlug: options.cluster ?? "" }));
    return res.runners;
  }

  /** For release runners: replaces this runner's report of how its releases loaded. */
  async reportStatus(runnerId: string, releases: ReleaseLoadStatusInput[], options: { cluster?: string } = {}): Promise<void> {
    await rpc(() =>
      this.#rpc.reportReleaseStatus({
        runnerId,
        clusterSlug: options.cluster ?? "",
        releases: releases.map((r) => ({ name: r.name, version: r.version, state: loadStates[r.state], error: r.error ?? "", restarts: r.restarts ?? 0 })),
      }),
    );
  }
}
