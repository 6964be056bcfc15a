// Clients for service-to-service calls: gRPC over h2c with the internal key.
import type { DescService } from "@bufbuild/protobuf";
import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

export interface ServiceClientOptions {
  baseUrl: string;
  /** The internal service key, or a team's API key. */
  apiKey: string;
  /** Per-call deadline in ms (default 30 s). */
  timeoutMs?: number;
}

export function bearer(apiKey: string): Interceptor {
  return (next) => (req) => {
    req.header.set("authorization", `Bearer ${apiKey}`);
    return next(req);
  };
}

export function createServiceClient<S extends DescService>(service: S, options: ServiceClientOptions): Client<S> {
  const transport = createGrpcTransport({
    baseUrl: options.baseUrl,
    interceptors: [bearer(options.apiKey)],
    defaultTimeoutMs: options.timeoutMs ?? 30_000,
    // Services talk over a data-centre network: compressing costs more CPU than it saves.
    acceptCompression: [],
  });
  return createClient(service, transport);
}
