// corral.registry.v1.ConfigurationService handlers.
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  ConfigurationService,
  CreateConfigurationResponseSchema,
  DeleteConfigurationResponseSchema,
  GetConfigurationResponseSchema,
  ListConfigurationsResponseSchema,
} from "@corral/proto";
import { requireTeam } from "@corral/server-kit";
import type { Configurations } from "./configurations.js";
import { configurationMessage } from "./messages.js";
import { pickSpec } from "./spec.js";

export function createConfigurationService(configurations: Configurations): ServiceImpl<typeof ConfigurationService> {
  return {
    async createConfiguration(req, ctx) {
      const configuration = await configurations.create(requireTeam(ctx), {
        name: req.name,
        description: req.description,
        spec: pickSpec(req.spec),
      });
      return create(CreateConfigurationResponseSchema, { configuration: configurationMessage(configuration) });
    },

    async getConfiguration(req, ctx) {
      const configuration = await configurations.get(requireTeam(ctx), req.name);
      return create(GetConfigurationResponseSchema, { configuration: configurationMessage(configuration) });
    },

    async listConfigurations(req, ctx) {
      const page = await configurations.list(requireTeam(ctx), req.pageSize, req.pageToken);
      return create(ListConfigurationsResponseSchema, {
        configurations: page.items.map(configurationMessage),
        nextPageToken: page.nextPageToken,
      });
    },

    async deleteConfiguration(req, ctx) {
      await configurations.delete(requireTeam(ctx), req.name);
      return create(DeleteConfigurationResponseSchema, {});
    },
  };
}
