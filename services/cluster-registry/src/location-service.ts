// corral.registry.v1.LocationService handlers.
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  CreateLocationResponseSchema,
  DeleteLocationResponseSchema,
  GetLocationResponseSchema,
  ListLocationsResponseSchema,
  LocationService,
  UpdateLocationResponseSchema,
} from "@corral/proto";
import { requireTeam } from "@corral/server-kit";
import type { Locations } from "./locations.js";
import { locationMessage } from "./messages.js";

export function createLocationService(locations: Locations): ServiceImpl<typeof LocationService> {
  return {
    async createLocation(req, ctx) {
      const location = await locations.create(requireTeam(ctx), {
        name: req.name,
        provider: req.provider,
        region: req.region,
      });
      return create(CreateLocationResponseSchema, { location: locationMessage(location) });
    },

    async updateLocation(req, ctx) {
      const location = await locations.update(requireTeam(ctx), req.id, {
        ...(req.name === undefined ? {} : { name: req.name }),
        ...(req.provider === undefined ? {} : { provider: req.provider }),
        ...(req.region === undefined ? {} : { region: req.region }),
      });
      return create(UpdateLocationResponseSchema, { location: locationMessage(location) });
    },

    async getLocation(req, ctx) {
      const location = await locations.get(requireTeam(ctx), req.id);
      return create(GetLocationResponseSchema, { location: locationMessage(location) });
    },

    async deleteLocation(req, ctx) {
      await locations.delete(requireTeam(ctx), req.id);
      return create(DeleteLocationResponseSchema, {});
    },

    async listLocations(req, ctx) {
      const page = await locations.list(requireTeam(ctx), req.pageSize, req.pageToken);
      return create(ListLocationsResponseSchema, {
        locations: page.items.map(locationMessage),
        nextPageToken: page.nextPageToken,
      });
    },
  };
}
