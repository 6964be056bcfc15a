// Serves mounts over real HTTP/2 on a free loopback port for tests, with a fixed key table.
import type { Logger } from "pino";
import type { Caller } from "../auth.js";
import type { ConnectionLimits } from "../connection-guard.js";
import { createServer, type CorralServer, type ServiceMount } from "../server.js";

export const TEST_SERVICE_KEY = "corral_test_service_key_0123456789abcdef";

export interface TestServer {
  url: string;
  port: number;
  server: CorralServer;
  serviceKey: string;
  close(): Promise<void>;
}

export async function startTestServer(options: {
  mounts: ServiceMount[];
  /** API key → caller. */
  keys?: Record<string, Caller>;
  name?: string;
  compressMinBytes?: number;
  /** A fixed port (a restarted peer); 0 or absent: a free one. */
  port?: number;
  readMaxBytes?: number;
  /** false: every call through connect-node (the fast path's reference). */
  unaryFastPath?: boolean;
  /** false: streaming calls through connect-node (the stream fast path's reference). */
  streamFastPath?: boolean;
  logger?: Logger;
  connectionLimits?: Partial<ConnectionLimits>;
}): Promise<TestServer> {
  const keys = options.keys ?? {};
  const server = createServer({
    name: options.name ?? "test",
    mounts: options.mounts,
    port: options.port ?? 0,
    verifier: { verify: async (key) => keys[key] },
    serviceKey: TEST_SERVICE_KEY,
    compressMinBytes: options.compressMinBytes,
    readMaxBytes: options.readMaxBytes,
    unaryFastPath: options.unaryFastPath,
    streamFastPath: options.streamFastPath,
    logger: options.logger,
    connectionLimits: options.connectionLimits,
  });
  await server.listen();
  server.setServing(true);
  return {
    url: server.url,
    port: server.port,
    server,
    serviceKey: TEST_SERVICE_KEY,
    close: () => server.close(1_000),
  };
}
