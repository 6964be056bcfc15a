// A small HTTP/2 (h2c) load balancer for tests, standing in for an ingress: it routes each request
// (gRPC, Connect, unary or streaming) by the gRPC service path to one service's replicas, round
// robin per method (so consecutive runner streams alternate), and skips a replica it cannot reach
// (on localhost a refused connection costs next to nothing, so every request tries in order). A request whose replica fails before answering is
// reset with REFUSED_STREAM (clients see UNAVAILABLE and may retry); one cut after the answer began
// is reset with INTERNAL_ERROR (clients see INTERNAL).
import http2 from "node:http2";
import type { AddressInfo } from "node:net";

const {
  HTTP2_HEADER_STATUS,
  NGHTTP2_CANCEL,
  NGHTTP2_INTERNAL_ERROR,
  NGHTTP2_NO_ERROR,
  NGHTTP2_REFUSED_STREAM,
} = http2.constants;

export interface BalancerRoute {
  /** Path prefix, e.g. `/corral.registry.` */
  prefix: string;
  /** Backend base URLs (`http://127.0.0.1:7701`). */
  backends: string[];
}

export interface Balancer {
  readonly url: string;
  /** Requests forwarded to each backend so far. */
  counts(): Map<string, number>;
  close(): Promise<void>;
}

interface Backend {
  url: string;
  session: http2.ClientHttp2Session | undefined;
  connecting: Promise<http2.ClientHttp2Session> | undefined;
  forwarded: number;
}

const hopHeaders = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "host"]);

function forwardable(headers: http2.IncomingHttpHeaders, keep: string[]): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || hopHeaders.has(name)) continue;
    if (name.startsWith(":") && !keep.includes(name)) continue;
    out[name] = value;
  }
  return out;
}

export async function startBalancer(routes: BalancerRoute[]): Promise<Balancer> {
  const table = routes.map((r) => ({
    prefix: r.prefix,
    /** Round-robin position per request path. */
    next: new Map<string, number>(),
    backends: r.backends.map<Backend>((url) => ({ url, session: undefined, connecting: undefined, forwarded: 0 })),
  }));
  const settings = { maxConcurrentStreams: 100_000, initialWindowSize: 4 * 1024 * 1024 };

  function connect(b: Backend): Promise<http2.ClientHttp2Session> {
    if (b.session && !b.session.closed && !b.session.destroyed) return Promise.resolve(b.session);
    if (b.connecting) return b.connecting;
    const pending = new Promise<http2.ClientHttp2Session>((resolve, reject) => {
      const s = http2.connect(b.url, { settings });
      s.on("error", () => {}); // a refused or dropped connection ends in "close" below
      s.once("connect", () => {
        if (b.connecting === pending) b.connecting = undefined;
        b.session = s;
        resolve(s);
      });
      const forget = () => {
        if (b.session === s) b.session = undefined;
      };
      // A replica that is stopping sends GOAWAY: new requests go to a fresh connection (or elsewhere).
      s.once("goaway", forget);
      s.once("close", () => {
        forget();
        if (b.connecting === pending) b.connecting = undefined;
        reject(new Error(`${b.url} closed`)); // no effect once connected
      });
    });
    b.connecting = pending;
    return pending;
  }

  async function pick(path: string): Promise<{ backend: Backend; session: http2.ClientHttp2Session } | undefined> {
    const route = table.find((r) => path.startsWith(r.prefix));
    if (!route) return undefined;
    const n = route.backends.length;
    const first = route.next.get(path) ?? 0;
    route.next.set(path, (first + 1) % n);
    for (let i = 0; i < n; i++) {
      const backend = route.backends[(first + i) % n]!;
      try {
        return { backend, session: await connect(backend) };
      } catch {
        // try the next replica
      }
    }
    return undefined;
  }

  const server = http2.createServer({ settings });
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (s) => {
    s.on("error", () => {});
    sessions.add(s);
    s.once("close", () => sessions.delete(s));
  });
  server.on("stream", (down, headers) => {
    down.on("error", () => {});
    const path = String(headers[":path"] ?? "");
    void pick(path).then((target) => {
      if (down.closed || down.destroyed) return;
      if (!target) {
        down.close(NGHTTP2_REFUSED_STREAM);
        return;
      }
      target.backend.forwarded++;
      let up: http2.ClientHttp2Stream;
      try {
        up = target.session.request(forwardable(headers, [":method", ":path", ":scheme", ":authority"]), { endStream: false });
      } catch {
        down.close(NGHTTP2_REFUSED_STREAM);
        return;
      }
      let answered = false;
      let trailers: http2.OutgoingHttpHeaders | undefined;
      up.on("error", () => {});
      up.on("response", (h, flags) => {
        answered = true;
        if (down.closed || down.destroyed) return;
        const endStream = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0;
        down.respond(forwardable(h, [HTTP2_HEADER_STATUS]), endStream ? { endStream: true } : { waitForTrailers: true });
        if (!endStream) up.pipe(down);
      });
      up.on("trailers", (t) => {
        trailers = forwardable(t, []);
      });
      down.on("wantTrailers", () => down.sendTrailers(trailers ?? {}));
      up.on("close", () => {
        if (down.closed || down.destroyed) return;
        const code = up.rstCode ?? NGHTTP2_NO_ERROR;
        if (!answered) down.close(NGHTTP2_REFUSED_STREAM);
        // Even CANCEL: the replica went away, the client did not cancel (that case closed `down` first).
        else if (code !== NGHTTP2_NO_ERROR) down.close(NGHTTP2_INTERNAL_ERROR);
      });
      down.on("close", () => {
        if (!up.closed && !up.destroyed) up.close(NGHTTP2_CANCEL);
      });
      down.pipe(up);
    });
  });

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let closing: Promise<void> | undefined;
  return {
    url,
    counts() {
      return new Map(table.flatMap((r) => r.backends.map((b) => [b.url, b.forwarded] as const)));
    },
    close() {
      closing ??= (async () => {
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const s of sessions) s.destroy();
        for (const r of table) for (const b of r.backends) b.session?.destroy();
        await stopped;
      })();
      return closing;
    },
  };
}
