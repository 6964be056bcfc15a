// Clients for service-to-service calls: gRPC over h2c (or TLS) with the internal key. Unary calls
// are written straight onto an HTTP/2 session (the SDK's h2-transport.ts, in gRPC); the client is
// Connect's, typed per service.
import type { DescService } from "@bufbuild/protobuf";
import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { createH2Transport } from "@corral/sdk/h2-transport";

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
  const defaultTimeoutMs = options.timeoutMs ?? 30_000;
  const interceptors = [bearer(options.apiKey)];
  const transport = createH2Transport({
    baseUrl: options.baseUrl,
    protocol: "grpc",
    interceptors,
    defaultTimeoutMs,
    streams: () =>
      createGrpcTransport({
        baseUrl: options.baseUrl,
        interceptors,
        defaultTimeoutMs,
        // Services talk over a data-centre network: compressing costs more CPU than it saves.
        acceptCompression: [],
      }),
  });
  return createClient(service, transport);
}
