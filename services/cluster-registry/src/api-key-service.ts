// corral.registry.v1.ApiKeyService handlers.
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  ApiKeyScope,
  ApiKeyService,
  CreateApiKeyResponseSchema,
  ListApiKeysResponseSchema,
  RevokeApiKeyResponseSchema,
  VerifyApiKeyResponseSchema,
} from "@corral/proto";
import { NotFoundError, parseApiKey, requireService, requireTeam } from "@corral/server-kit";
import type { ApiKeys } from "./api-keys.js";
import { apiKeyMessage } from "./messages.js";

export function createApiKeyService(apiKeys: ApiKeys): ServiceImpl<typeof ApiKeyService> {
  return {
    async createApiKey(req, ctx) {
      const { apiKey, key } = await apiKeys.create(requireTeam(ctx), req.name);
      return create(CreateApiKeyResponseSchema, { apiKey: apiKeyMessage(apiKey), key });
    },

    async listApiKeys(req, ctx) {
      const page = await apiKeys.list(requireTeam(ctx), req.pageSize, req.pageToken);
      return create(ListApiKeysResponseSchema, {
        apiKeys: page.items.map(apiKeyMessage),
        nextPageToken: page.nextPageToken,
      });
    },

    async revokeApiKey(req, ctx) {
      const apiKey = await apiKeys.revoke(requireTeam(ctx), req.id);
      return create(RevokeApiKeyResponseSchema, { apiKey: apiKeyMessage(apiKey) });
    },

    // Unknown, malformed and revoked keys all answer NOT_FOUND: the calling service's own key
    // was fine, the key it asks about does not resolve.
    async verifyApiKey(req, ctx) {
      requireService(ctx);
      const verified = await apiKeys.resolve(req.key);
      if (!verified) throw new NotFoundError("api key", parseApiKey(req.key)?.keyId ?? "");
      return create(VerifyApiKeyResponseSchema, {
        teamId: verified.teamId,
        keyId: verified.keyId,
        teamName: verified.teamName,
        scope: verified.clusterId === undefined ? ApiKeyScope.UNSPECIFIED : ApiKeyScope.RUNNER,
        clusterId: verified.clusterId ?? "",
      });
    },
  };
}
