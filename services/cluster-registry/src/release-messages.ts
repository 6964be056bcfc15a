// Release, deployment and load-status records to the corral.registry.v1 messages clients see, and
// the manifest and load states back from them.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  DeploymentSchema,
  ReleaseLoadState,
  ReleaseLoadStatusSchema,
  ReleaseManifestSchema,
  ReleaseSchema,
  ReleaseSourceSchema,
  RunnerReleaseStatusSchema,
  TaskIdentifierSchema,
  type Deployment,
  type Release,
  type ReleaseLoadStatus,
  type ReleaseManifest,
  type RunnerReleaseStatus,
} from "@corral/proto";
import type { StoredLoadState, StoredLoadStatus, StoredManifest } from "./store/database.js";
import type { DeploymentRecord, ReleaseRecord } from "./store/release-repository.js";
import type { ReleaseStatusRecord } from "./store/release-status-repository.js";

export function manifestFromMessage(m: ReleaseManifest): StoredManifest {
  const source = m.source?.source;
  return {
    identifiers: m.identifiers.map((i) => ({ name: i.name, version: i.version })),
    nodeEngine: m.nodeEngine,
    entry: m.entry,
    ...(source?.case === "directory"
      ? { source: { directory: { path: source.value.path } } }
      : source?.case === "git"
        ? { source: { git: { url: source.value.url, ref: source.value.ref, commit: source.value.commit, dir: source.value.dir } } }
        : {}),
  };
}

export function manifestMessage(m: StoredManifest): ReleaseManifest {
  const source = m.source;
  return create(ReleaseManifestSchema, {
    identifiers: m.identifiers.map((i) => create(TaskIdentifierSchema, i)),
    nodeEngine: m.nodeEngine,
    entry: m.entry,
    ...(source === undefined
      ? {}
      : {
          source: create(ReleaseSourceSchema, {
            source: "directory" in source ? { case: "directory", value: source.directory } : { case: "git", value: source.git },
          }),
        }),
  });
}

export function releaseMessage(r: ReleaseRecord): Release {
  return create(ReleaseSchema, {
    id: r.id,
    name: r.name,
    version: r.version,
    digest: r.digest,
    sizeBytes: BigInt(r.sizeBytes),
    manifest: manifestMessage(r.manifest),
    createTime: timestampFromDate(r.createTime),
    deployedTo: r.deployedTo,
  });
}

export function deploymentMessage(d: DeploymentRecord): Deployment {
  return create(DeploymentSchema, {
    clusterId: d.clusterId,
    clusterSlug: d.clusterSlug,
    release: releaseMessage(d.release),
    deployTime: timestampFromDate(d.deployTime),
  });
}

const LOAD_STATES: Record<StoredLoadState, ReleaseLoadState> = {
  loading: ReleaseLoadState.LOADING,
  loaded: ReleaseLoadState.LOADED,
  failed: ReleaseLoadState.FAILED,
  draining: ReleaseLoadState.DRAINING,
};

export function loadStateFromMessage(state: ReleaseLoadState): StoredLoadState | undefined {
  return (Object.keys(LOAD_STATES) as StoredLoadState[]).find((k) => LOAD_STATES[k] === state);
}

export function loadStatusMessage(s: StoredLoadStatus): ReleaseLoadStatus {
  return create(ReleaseLoadStatusSchema, { ...s, state: LOAD_STATES[s.state] });
}

export function runnerReleaseStatusMessage(r: ReleaseStatusRecord): RunnerReleaseStatus {
  return create(RunnerReleaseStatusSchema, {
    runnerId: r.runnerId,
    clusterSlug: r.clusterSlug,
    releases: r.releases.map(loadStatusMessage),
    reportTime: timestampFromDate(r.reportTime),
  });
}
