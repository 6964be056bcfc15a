// corral.registry.v1.RouteService handlers.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  CreateRouteResponseSchema,
  DeleteRouteResponseSchema,
  GetRouteResponseSchema,
  ListRoutesResponseSchema,
  RouteSchema,
  RouteService,
  type Route,
} from "@corral/proto";
import { requireTeam } from "@corral/server-kit";
import type { Routes } from "./routes.js";
import type { RouteRecord } from "./store/route-repository.js";

export function routeMessage(r: RouteRecord): Route {
  return create(RouteSchema, {
    id: r.id,
    identifier: { name: r.name, version: r.version },
    method: r.method,
    url: r.url,
    headers: r.headers,
    timeoutMs: r.timeoutMs,
    retry: { maxAttempts: r.maxAttempts, initialBackoffMs: r.initialBackoffMs, maxBackoffMs: r.maxBackoffMs },
    description: r.description,
    createTime: timestampFromDate(r.createTime),
  });
}

export function createRouteService(routes: Routes): ServiceImpl<typeof RouteService> {
  return {
    async createRoute(req, ctx) {
      const route = await routes.create(requireTeam(ctx), {
        // identifier is required by the request's rules.
        name: req.identifier!.name,
        version: req.identifier!.version,
        method: req.method,
        url: req.url,
        headers: req.headers,
        timeoutMs: req.timeoutMs,
        retry: {
          maxAttempts: req.retry?.maxAttempts ?? 0,
          initialBackoffMs: req.retry?.initialBackoffMs ?? 0,
          maxBackoffMs: req.retry?.maxBackoffMs ?? 0,
        },
        description: req.description,
      });
      return create(CreateRouteResponseSchema, { route: routeMessage(route) });
    },

    async getRoute(req, ctx) {
      return create(GetRouteResponseSchema, { route: routeMessage(await routes.get(requireTeam(ctx), req.id)) });
    },

    async listRoutes(req, ctx) {
      const page = await routes.list(requireTeam(ctx), req.pageSize, req.pageToken);
      return create(ListRoutesResponseSchema, { routes: page.items.map(routeMessage), nextPageToken: page.nextPageToken });
    },

    async deleteRoute(req, ctx) {
      await routes.delete(requireTeam(ctx), req.id);
      return create(DeleteRouteResponseSchema, {});
    },
  };
}
