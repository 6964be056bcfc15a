// Teams' API keys: `corral_<key id>_<secret>`. Only sha256 of the secret is stored; secrets are
// 40 random base62 characters (238 bits), so a fast hash is enough and a slow KDF buys nothing.
import { createHash, timingSafeEqual } from "node:crypto";
import type { Kysely } from "kysely";
import {
  AlreadyExistsError,
  decodePageToken,
  InvalidArgumentError,
  NotFoundError,
  pageSize,
  parseApiKey,
  toPage,
  type ApiKeyVerifier,
  type Caller,
  type Page,
} from "@corral/server-kit";
import { isUuid, newId, randomBase62 } from "./ids.js";
import { findApiKeyWithTeam, insertApiKey, listApiKeys, revokeApiKey } from "./store/api-key-repository.js";
import type { ApiKeyRow, RegistryDatabase } from "./store/database.js";
import { ensureTeam } from "./store/team-repository.js";

const KEY_ID_LENGTH = 12;
const SECRET_LENGTH = 40;
/** Operator-chosen keys need enough entropy for a fast hash to stay safe. */
export const MIN_INSTALLED_SECRET_LENGTH = 32;

export interface ApiKeyRecord {
  /** The key id inside the key string. */
  id: string;
  name: string;
  teamId: string;
  createTime: Date;
  revokeTime: Date | undefined;
  /** Set for a runner-scoped key: the one cluster it may work on. */
  clusterId: string | undefined;
}

export interface VerifiedKey {
  teamId: string;
  teamName: string;
  keyId: string;
  clusterId: string | undefined;
}

export interface ApiKeys extends ApiKeyVerifier {
  /** A team key, or with `clusterId` a runner-scoped key that may only work on that cluster. */
  create(teamId: string, name: string, clusterId?: string): Promise<{ apiKey: ApiKeyRecord; key: string; rowId: string }>;
  list(teamId: string, pageSize: number, pageToken: string): Promise<Page<ApiKeyRecord>>;
  revoke(teamId: string, keyId: string): Promise<ApiKeyRecord>;
  /** The team of a valid, unrevoked key; undefined for anything else. */
  resolve(key: string): Promise<VerifiedKey | undefined>;
  /** Creates the team when missing and a new key for it. */
  bootstrap(teamName: string, keyName?: string): Promise<{ teamId: string; key: string }>;
  /**
   * Makes sure `key` (a whole `corral_<id>_<secret>` chosen by an operator) is a key of the team,
   * creating both when missing; safe on every start. A revoked key stays revoked.
   */
  install(teamName: string, key: string, keyName?: string): Promise<{ teamId: string; created: boolean }>;
}

function hashSecret(secret: string): Buffer {
  return createHash("sha256").update(secret, "utf8").digest();
}

function toRecord(row: ApiKeyRow): ApiKeyRecord {
  return {
    id: row.key_id,
    name: row.name,
    teamId: row.team_id,
    createTime: row.create_time,
    revokeTime: row.revoke_time ?? undefined,
    clusterId: row.scope === "runner" ? (row.cluster_id ?? "") : undefined,
  };
}

export function createApiKeys(db: Kysely<RegistryDatabase>): ApiKeys {
  async function create(teamId: string, name: string, clusterId?: string) {
    // A 12-character base62 id collides with odds around 1 in 10^21 per pair; retry anyway.
    for (let attempt = 0; attempt < 5; attempt++) {
      const keyId = randomBase62(KEY_ID_LENGTH);
      const secret = randomBase62(SECRET_LENGTH);
      const row = await insertApiKey(db, {
        id: newId(),
        keyId,
        teamId,
        name,
        secretHash: hashSecret(secret),
        ...(clusterId === undefined ? {} : { clusterId }),
      });
      if (row) return { apiKey: toRecord(row), key: `corral_${keyId}_${secret}`, rowId: row.id };
    }
    throw new Error("could not draw an unused API key id");
  }

  async function resolve(key: string): Promise<VerifiedKey | undefined> {
    const parsed = parseApiKey(key);
    // Every stored secret is 40 characters (created) or 32+ (installed): a shorter one cannot match,
    // so it costs no query.
    if (!parsed || parsed.secret.length < MIN_INSTALLED_SECRET_LENGTH) return undefined;
    const row = await findApiKeyWithTeam(db, parsed.keyId);
    if (!row || row.revoke_time !== null) return undefined;
    const given = hashSecret(parsed.secret);
    if (given.length !== row.secret_hash.length || !timingSafeEqual(given, row.secret_hash)) return undefined;
    return {
      teamId: row.team_id,
      teamName: row.team_name,
      keyId: row.key_id,
      clusterId: row.scope === "runner" ? (row.cluster_id ?? "") : undefined,
    };
  }

  return {
    create,
    resolve,

    async verify(key: string): Promise<Caller | undefined> {
      const verified = await resolve(key);
      return (
        verified && {
          kind: "user",
          teamId: verified.teamId,
          keyId: verified.keyId,
          ...(verified.clusterId === undefined ? {} : { clusterId: verified.clusterId }),
        }
      );
    },

    async list(teamId, requestedSize, pageToken) {
      const limit = pageSize(requestedSize);
      const after = decodePageToken(pageToken, isUuid);
      const rows = await listApiKeys(db, teamId, after, limit + 1);
      const page = toPage(rows, limit, (r) => r.id);
      return { items: page.items.map(toRecord), nextPageToken: page.nextPageToken };
    },

    async revoke(teamId, keyId) {
      const row = await revokeApiKey(db, teamId, keyId);
      if (!row) throw new NotFoundError("api key", keyId);
      return toRecord(row);
    },

    async install(teamName, key, keyName = "bootstrap") {
      const parsed = parseApiKey(key);
      if (!parsed || parsed.secret.length < MIN_INSTALLED_SECRET_LENGTH) {
        throw new InvalidArgumentError(
          "key",
          `must look like corral_<key id>_<secret> with at least ${MIN_INSTALLED_SECRET_LENGTH} base62 characters of secret`,
        );
      }
      const secretHash = hashSecret(parsed.secret);
      const installed = async () => {
        const existing = await findApiKeyWithTeam(db, parsed.keyId);
        if (!existing) return undefined;
        if (existing.team_name !== teamName || !timingSafeEqual(existing.secret_hash, secretHash)) {
          throw new AlreadyExistsError(`another key with the id ${JSON.stringify(parsed.keyId)} exists`);
        }
        return { teamId: existing.team_id, created: false };
      };
      const before = await installed();
      if (before) return before;
      const team = await ensureTeam(db, newId(), teamName);
      const row = await insertApiKey(db, { id: newId(), keyId: parsed.keyId, teamId: team.id, name: keyName, secretHash });
      if (row) return { teamId: team.id, created: true };
      // Another process installed it between our look and our insert.
      const raced = await installed();
      if (!raced) throw new Error("installed key vanished");
      return raced;
    },

    async bootstrap(teamName, keyName = "bootstrap") {
      const team = await ensureTeam(db, newId(), teamName);
      const { key } = await create(team.id, keyName);
      return { teamId: team.id, key };
    },
  };
}
