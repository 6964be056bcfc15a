// Clusters of a team: slugs, the default cluster, specs filled from configurations.
import { sql, type Kysely } from "kysely";
import {
  AlreadyExistsError,
  decodePageToken,
  FailedPreconditionError,
  NotFoundError,
  pageSize,
  toPage,
  UnavailableError,
  type Page,
} from "@corral/server-kit";
import { DEFAULT_CONFIGURATION, type Configurations } from "./configurations.js";
import { generateSlug, isUuid, newId } from "./ids.js";
import { resolveSpecReferences } from "./spec-references.js";
import type { ClusterWork, WorkSource } from "./provisioning/work-source.js";
import { mergeSpec, type SpecFields } from "./spec.js";
import {
  deleteCluster,
  findClusterByName,
  findClusterById,
  findClusterBySlug,
  findClustersBySlugs,
  findDefaultCluster,
  insertCluster,
  listClusters,
  updateCluster,
  type ClusterRecord,
  type NewClusterRecord,
} from "./store/cluster-repository.js";
import { findConfiguration } from "./store/configuration-repository.js";
import type { RegistryDatabase } from "./store/database.js";
import { findTeam } from "./store/team-repository.js";

export const DEFAULT_CLUSTER_NAME = "default";
/** Generated slugs collide with odds of 62^-14; a few draws are plenty. */
const SLUG_ATTEMPTS = 5;

export interface CreateClusterInput {
  name: string;
  description: string;
  slug?: string;
  spec: SpecFields;
  locationId?: string;
  configuration?: string;
  getIfExists: boolean;
}

export interface Clusters {
  create(teamId: string, input: CreateClusterInput): Promise<{ cluster: ClusterRecord; created: boolean }>;
  /** An empty slug is the team's default cluster, created on first use. */
  get(teamId: string, slug: string): Promise<ClusterRecord>;
  getDefault(teamId: string): Promise<ClusterRecord>;
  update(
    teamId: string,
    slug: string,
    changes: { name?: string; description?: string; spec: SpecFields },
  ): Promise<ClusterRecord>;
  /**
   * FAILED_PRECONDITION while the cluster has queued or running tasks (as the broker counts
   * them), unless `force`; UNAVAILABLE when the broker cannot say.
   */
  delete(teamId: string, slug: string, options?: { force?: boolean }): Promise<void>;
  list(teamId: string, pageSize: number, pageToken: string): Promise<Page<ClusterRecord>>;
  /** One cluster per slug, in order; NOT_FOUND for an unknown team or slug. */
  resolve(teamId: string, slugs: string[]): Promise<ClusterRecord[]>;
}

export function createClusters(
  db: Kysely<RegistryDatabase>,
  configurations: Configurations,
  /** The broker's work per cluster id; without it a delete does not check for work. */
  workSource?: WorkSource,
): Clusters {
  /** The configuration's spec under the explicit fields; records which configuration it was. */
  async function fillSpec(
    executor: Kysely<RegistryDatabase>,
    teamId: string,
    configurationName: string,
    explicit: SpecFields,
  ): Promise<SpecFields> {
    const configuration = await findConfiguration(executor, teamId, configurationName);
    if (!configuration) throw new NotFoundError("configuration", configurationName);
    const spec = mergeSpec(configuration.spec, explicit);
    spec.configuration = configuration.name;
    return resolveSpecReferences(executor, teamId, spec);
  }

  async function insertWithFreshSlug(
    dbOrTx: Kysely<RegistryDatabase>,
    cluster: Omit<NewClusterRecord, "slug" | "id">,
  ): Promise<ClusterRecord | undefined> {
    for (let attempt = 0; attempt < SLUG_ATTEMPTS; attempt++) {
      const created = await insertCluster(dbOrTx, { ...cluster, id: newId(), slug: generateSlug(cluster.name) });
      if (created) return created;
      // Only a default cluster can lose to someone else; the caller then reads the winner.
      if (cluster.isDefault) return undefined;
    }
    throw new Error("could not draw an unused cluster slug");
  }

  async function getDefault(teamId: string): Promise<ClusterRecord> {
    const existing = await findDefaultCluster(db, teamId);
    if (existing) return existing;
    const spec = await fillSpec(db, teamId, DEFAULT_CONFIGURATION, {});
    // Concurrent first calls all try; the partial unique index lets one insert and the others
    // read what it made.
    for (let attempt = 0; attempt < SLUG_ATTEMPTS; attempt++) {
      const created = await insertWithFreshSlug(db, {
        teamId,
        name: DEFAULT_CLUSTER_NAME,
        description: "The team's default cluster.",
        spec,
        isDefault: true,
      });
      if (created) return created;
      const winner = await findDefaultCluster(db, teamId);
      if (winner) return winner;
    }
    throw new Error("could not create the default cluster");
  }

  /** By slug, or by id (a UUID that is no slug of the team): Get, Update and Delete take either. */
  async function findBySlug(teamId: string, slug: string): Promise<ClusterRecord> {
    const found = (await findClusterBySlug(db, teamId, slug)) ?? (isUuid(slug) ? await findClusterById(db, teamId, slug) : undefined);
    if (!found) throw new NotFoundError("cluster", slug);
    return found;
  }

  async function create(teamId: string, input: CreateClusterInput, tx: Kysely<RegistryDatabase>) {
    if (input.getIfExists) {
      const existing = await findClusterByName(tx, teamId, input.name);
      if (existing) return { cluster: existing, created: false };
    }
    const explicit: SpecFields = { ...input.spec };
    if (input.locationId !== undefined) explicit.locationId = input.locationId;
    // Everything below runs on `tx`: a second pool connection while holding the lock could
    // exhaust the pool under concurrent calls.
    const named = input.configuration ?? input.spec.configuration;
    const spec = await fillSpec(tx, teamId, named ?? DEFAULT_CONFIGURATION, explicit);
    // Provisioned when the caller asked for runners: in the spec, or through a configuration they
    // named. corral/default's runner_count, filled into every cluster, does not count: a cluster
    // whose runners are started by hand must not get agent-launched ones when its team adds a host.
    const provisioned = explicit.runnerCount !== undefined || (named !== undefined && spec.runnerCount !== undefined);
    const fields = { teamId, name: input.name, description: input.description, spec, isDefault: false, provisioned };
    if (input.slug !== undefined) {
      const created = await insertCluster(tx, { ...fields, id: newId(), slug: input.slug });
      if (!created) throw new AlreadyExistsError(`cluster slug ${JSON.stringify(input.slug)} is taken`);
      return { cluster: created, created: true };
    }
    const created = await insertWithFreshSlug(tx, fields);
    if (!created) throw new Error("cluster insert lost without a conflict");
    return { cluster: created, created: true };
  }

  return {
    getDefault,

    async create(teamId, input) {
      if (!input.getIfExists) return create(teamId, input, db);
      // Two get-if-exists calls for one name must not both create: serialise them per name.
      return db.transaction().execute(async (tx) => {
        await sql`select pg_advisory_xact_lock(hashtextextended(${`cluster-name:${teamId}:${input.name}`}, 0))`.execute(
          tx,
        );
        return create(teamId, input, tx);
      });
    },

    async get(teamId, slug) {
      return slug === "" ? getDefault(teamId) : findBySlug(teamId, slug);
    },

    async update(teamId, slug, changes) {
      const cluster = await findBySlug(teamId, slug);
      if (changes.spec.configuration !== undefined) await configurations.get(teamId, changes.spec.configuration);
      // Only the references this update names are resolved (a name becomes the id stored).
      const spec = mergeSpec(cluster.spec, await resolveSpecReferences(db, teamId, changes.spec));
      const updated = await updateCluster(db, teamId, cluster.id, {
        ...(changes.name === undefined ? {} : { name: changes.name }),
        ...(changes.description === undefined ? {} : { description: changes.description }),
        spec,
        ...(changes.spec.runnerCount === undefined ? {} : { provisioned: true as const }),
      });
      if (!updated) throw new NotFoundError("cluster", slug);
      return updated;
    },

    async delete(teamId, slug, options = {}) {
      const cluster = await findBySlug(teamId, slug);
      if (cluster.isDefault) throw new FailedPreconditionError("the default cluster cannot be deleted");
      if (!options.force && workSource) {
        let work: ClusterWork | undefined;
        try {
          work = (await workSource()).get(cluster.id);
        } catch (err) {
          throw new UnavailableError(`cannot tell whether cluster ${slug} has work (the broker did not answer): retry, or delete with force`, { cause: err });
        }
        if (work && work.queued + work.running > 0) {
          throw new FailedPreconditionError(
            `cluster ${slug} has ${work.queued} queued and ${work.running} running tasks: cancel its jobs first, or delete with force (corral cluster delete --force cancels them)`,
          );
        }
      }
      if (!(await deleteCluster(db, teamId, cluster.id))) throw new NotFoundError("cluster", slug);
    },

    async list(teamId, requestedSize, pageToken) {
      const limit = pageSize(requestedSize);
      const after = decodePageToken(pageToken, isUuid);
      // Every team has a default cluster; listing is a use that creates it.
      if (after === undefined) await getDefault(teamId);
      const rows = await listClusters(db, teamId, after, limit + 1);
      return toPage(rows, limit, (r) => r.id);
    },

    async resolve(teamId, slugs) {
      if (!isUuid(teamId) || !(await findTeam(db, teamId))) throw new NotFoundError("team", teamId);
      const named = [...new Set(slugs.filter((s) => s !== ""))];
      const bySlug = new Map((await findClustersBySlugs(db, teamId, named)).map((c) => [c.slug, c]));
      const defaultCluster = slugs.includes("") ? await getDefault(teamId) : undefined;
      return slugs.map((slug) => {
        const cluster = slug === "" ? defaultCluster : bySlug.get(slug);
        if (!cluster) throw new NotFoundError("cluster", slug);
        return cluster;
      });
    },
  };
}
