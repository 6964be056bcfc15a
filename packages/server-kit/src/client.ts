// Clients for service-to-service calls: gRPC over h2c (or TLS) with the internal key. Unary calls
// go through @grpc/grpc-js (see grpc-js-transport.ts); the client is Connect's, typed per service.
import type { DescService } from "@bufbuild/protobuf";
import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcJsTransport } from "./grpc-js-transport.js";

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
  const transport = createGrpcJsTransport({
    baseUrl: options.baseUrl,
    apiKey: options.apiKey,
    defaultTimeoutMs: options.timeoutMs ?? 30_000,
  });
  return createClient(service, transport);
}
