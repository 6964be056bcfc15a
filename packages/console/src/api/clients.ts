// Connect clients for every service the console calls, on the origin that served it (the suite's
// port, or the gateway in front of the services), with the tab's API key as a bearer token.
import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { ApiKeyService, ClusterService, HostService, JobService, NodeService, ReleaseService } from "@corral/proto";

export interface Clients {
  jobs: Client<typeof JobService>;
  clusters: Client<typeof ClusterService>;
  nodes: Client<typeof NodeService>;
  apiKeys: Client<typeof ApiKeyService>;
  hosts: Client<typeof HostService>;
  releases: Client<typeof ReleaseService>;
}

export function createClients(apiKey: string): Clients {
  const bearer: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${apiKey}`);
    return next(req);
  };
  const transport = createConnectTransport({
    baseUrl: window.location.origin,
    // JSON would need the type registry for google.protobuf.Any; binary is smaller anyway.
    useBinaryFormat: true,
    interceptors: [bearer],
  });
  return {
    jobs: createClient(JobService, transport),
    clusters: createClient(ClusterService, transport),
    nodes: createClient(NodeService, transport),
    apiKeys: createClient(ApiKeyService, transport),
    hosts: createClient(HostService, transport),
    releases: createClient(ReleaseService, transport),
  };
}
