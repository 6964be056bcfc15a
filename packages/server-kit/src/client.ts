// Clients for service-to-service calls: gRPC over h2c (or TLS) with the internal key. Unary calls
// are written straight onto an HTTP/2 session (@corral/wire's h2-transport, in gRPC); the client is
// Connect's, typed per service.
import type { DescService } from "@bufbuild/protobuf";
import { createClient, type Client, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { createAuthInterceptor, createH2Transport } from "@corral/wire";

export interface ServiceClientOptions {
  baseUrl: string;
  /** The internal service key, or a team's API key. */
  apiKey: string;
  /** Per-call deadline in ms (default 30 s). */
  timeoutMs?: number;
}

/** Adds `Authorization: Bearer <key>` to every request: @corral/wire's auth interceptor. */
export const bearer = createAuthInterceptor;

/** One HTTP/2 session to a service, for every client of its services (see createServiceClient). */
export function createServiceTransport(options: ServiceClientOptions): Transport {
  const defaultTimeoutMs = options.timeoutMs ?? 30_000;
  const interceptors = [bearer(options.apiKey)];
  return createH2Transport({
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
}

export function createServiceClient<S extends DescService>(service: S, options: ServiceClientOptions): Client<S> {
  return createClient(service, createServiceTransport(options));
}
