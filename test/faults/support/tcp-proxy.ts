// A TCP load balancer for broker replicas: each connection goes to the next backend that accepts
// it, so when a replica dies its runners reconnect through the proxy to a live one.
import net from "node:net";

export interface TcpProxy {
  port: number;
  url: string;
  close(): Promise<void>;
}

export async function startTcpProxy(backends: () => number[]): Promise<TcpProxy> {
  let next = 0;
  const sockets = new Set<net.Socket>();
  const connectAny = (ports: number[], i: number, client: net.Socket) => {
    if (i >= ports.length) {
      client.destroy();
      return;
    }
    const port = ports[(next + i) % ports.length]!;
    const upstream = net.connect(port, "127.0.0.1");
    upstream.once("error", () => {
      if (!upstream.readyState || upstream.connecting) connectAny(ports, i + 1, client);
      else client.destroy();
    });
    upstream.once("connect", () => {
      next = (next + i + 1) % ports.length;
      sockets.add(upstream);
      upstream.once("close", () => {
        sockets.delete(upstream);
        client.destroy();
      });
      client.once("close", () => upstream.destroy());
      upstream.on("error", () => client.destroy());
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    });
  };
  const server = net.createServer((client) => {
    client.pause();
    sockets.add(client);
    client.once("close", () => sockets.delete(client));
    client.on("error", () => client.destroy());
    connectAny(backends(), 0, client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
