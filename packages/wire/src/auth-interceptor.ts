// The client side of Corral's API-key auth: every request carries `Authorization: Bearer <key>`.
// The SDK's Client and the services' clients for each other send their key the same way.
import type { Interceptor } from "@connectrpc/connect";

/** Adds `Authorization: Bearer <key>` to every request that does not already carry one. */
export function createAuthInterceptor(apiKey: string): Interceptor {
  return (next) => async (req) => {
    // A header set on the call itself (another key for one request) wins over the transport's key.
    if (!req.header.has("authorization")) req.header.set("authorization", `Bearer ${apiKey}`);
    return next(req);
  };
}
