import { create } from "@bufbuild/protobuf";
import { createClient, createRouterTransport } from "@connectrpc/connect";
import { GetHostnameResponseSchema, RuntimeService } from "@corral/proto";
import { describe, expect, it } from "vitest";
import { createAuthInterceptor } from "./auth-interceptor.js";

describe("createAuthInterceptor", () => {
  const seen: string[] = [];
  const transport = createRouterTransport(
    ({ service }) => {
      service(RuntimeService, {
        getHostname: (_req, ctx) => {
          seen.push(ctx.requestHeader.get("authorization") ?? "");
          return create(GetHostnameResponseSchema, { hostname: "h" });
        },
      });
    },
    { transport: { interceptors: [createAuthInterceptor("corral_key_1")] } },
  );
  const client = createClient(RuntimeService, transport);

  it("sends the key as a bearer token, and lets a call's own authorization header win", async () => {
    seen.length = 0;
    await client.getHostname({});
    await client.getHostname({}, { headers: { authorization: "Bearer corral_key_2" } });
    expect(seen).toEqual(["Bearer corral_key_1", "Bearer corral_key_2"]);
  });
});
