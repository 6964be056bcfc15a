// Keeps idle and slow connections from holding the process: admission against the connection
// budget, a deadline for a socket's first bytes, an idle timeout for HTTP/2 sessions without open
// streams, and a minimum rate for HTTP/1.1 request bodies. Timers are per connection or one sweep
// per process, never per request, so the unary fast path and the runner stream pay nothing.
import type http from "node:http";
import type http2 from "node:http2";
import type net from "node:net";
import { bodyTooSlow } from "./body-rate.js";
import { createConnectionBudget, defaultPerAddress, type ConnectionBudget } from "./connection-budget.js";

export interface ConnectionLimits {
  /** A socket that sends nothing this long after connecting is closed (ms). */
  firstByteTimeoutMs: number;
  /** An HTTP/1.1 request's headers, or an HTTP/2 client's preface and SETTINGS, must arrive within this (ms). */
  headersTimeoutMs: number;
  /** An HTTP/1.1 request must have arrived whole this long after its first byte (ms). */
  requestTimeoutMs: number;
  /**
   * An HTTP/1.1 request body must average at least this many bytes per second once its request is
   * older than `headersTimeoutMs` (a body may start slowly); 0: off.
   */
  minBodyBytesPerSecond: number;
  /** An HTTP/2 session with no open stream and no frame for this long is closed (ms); 0: never. */
  http2IdleTimeoutMs: number;
  /** Connections the process holds at most. */
  maxConnections: number;
  /** Connections one client address holds at most. */
  maxConnectionsPerAddress: number;
}

export const defaultConnectionLimits: ConnectionLimits = {
  firstByteTimeoutMs: 10_000,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 60_000,
  minBodyBytesPerSecond: 240,
  http2IdleTimeoutMs: 5 * 60_000,
  maxConnections: 10_000,
  maxConnectionsPerAddress: defaultPerAddress(10_000),
};

const sweepIntervalMs = 1_000;

/** Why the guard refused or closed a connection (the `reason` of `corral_connections_cut_total`). */
export type CutReason =
  | "address_full"
  | "process_full"
  | "evicted_silent"
  | "first_byte_timeout"
  | "http2_preface_timeout"
  | "http2_idle"
  | "slow_body";

export interface ConnectionEvents {
  opened?(): void;
  released?(): void;
  cut?(reason: CutReason): void;
}

export interface ConnectionGuard {
  readonly limits: ConnectionLimits;
  readonly budget: ConnectionBudget;
  /**
   * Takes a new TCP socket, or closes it at once when its address or the process is full. At the
   * cap, the oldest socket that has not yet said anything gives up its place: a legitimate client
   * speaks first within milliseconds, an idle flood never does.
   */
  admit(socket: net.Socket): boolean;
  /** Arms the first-byte deadline of a plain-text socket. */
  awaitFirstBytes(socket: net.Socket): void;
  /** The socket spoke: its first-byte deadline ends (call before handing it to a protocol server). */
  spoke(socket: net.Socket): void;
  /** Applies the preface deadline and the idle timeout to a new HTTP/2 session. */
  watchSession(session: http2.Http2Session): void;
  /** Watches an HTTP/1.1 request's body for a trickle below the minimum rate. */
  watchBody(req: http.IncomingMessage): void;
  close(): void;
}

interface BodyWatch {
  req: http.IncomingMessage;
  socket: net.Socket;
  startedAt: number;
  bytesAtStart: number;
}

export function createConnectionGuard(limits: ConnectionLimits, events: ConnectionEvents = {}): ConnectionGuard {
  const budget = createConnectionBudget({ max: limits.maxConnections, perAddress: limits.maxConnectionsPerAddress });
  const held = new Map<net.Socket, string>();
  // Insertion order is age: the first entry is the oldest socket still waiting for its first bytes.
  const silent = new Set<net.Socket>();
  const bodies = new Set<BodyWatch>();
  let sweep: NodeJS.Timeout | undefined;

  const release = (socket: net.Socket) => {
    silent.delete(socket);
    const address = held.get(socket);
    if (address === undefined) return;
    held.delete(socket);
    budget.release(address);
    events.released?.();
  };
  const onFirstByteTimeout = function (this: net.Socket) {
    events.cut?.("first_byte_timeout");
    this.destroy();
  };

  // A body may start slowly for as long as a client may take over its headers.
  const rate = { minBytesPerSecond: limits.minBodyBytesPerSecond, graceMs: limits.headersTimeoutMs };
  const sweepBodies = () => {
    const now = Date.now();
    for (const w of bodies) {
      if (w.req.complete || w.socket.destroyed) bodies.delete(w);
      else if (bodyTooSlow({ startedAt: w.startedAt, bytes: w.socket.bytesRead - w.bytesAtStart }, rate, now)) {
        bodies.delete(w);
        events.cut?.("slow_body");
        w.socket.destroy();
      }
    }
    if (bodies.size === 0 && sweep) {
      clearInterval(sweep);
      sweep = undefined;
    }
  };

  return {
    limits,
    budget,
    admit(socket) {
      const address = socket.remoteAddress ?? "";
      let admission = budget.admit(address);
      if (admission === "process-full") {
        const oldest = silent.values().next().value;
        if (oldest) {
          release(oldest);
          events.cut?.("evicted_silent");
          oldest.destroy();
          admission = budget.admit(address);
        }
      }
      if (admission !== "admit") {
        // Closed at once rather than left in a queue: the client learns now and may go elsewhere.
        events.cut?.(admission === "address-full" ? "address_full" : "process_full");
        socket.destroy();
        return false;
      }
      held.set(socket, address);
      events.opened?.();
      socket.once("close", () => release(socket));
      return true;
    },
    awaitFirstBytes(socket) {
      silent.add(socket);
      socket.setTimeout(limits.firstByteTimeoutMs);
      socket.on("timeout", onFirstByteTimeout);
    },
    spoke(socket) {
      silent.delete(socket);
      socket.setTimeout(0);
      socket.off("timeout", onFirstByteTimeout);
    },
    watchSession(session) {
      let settled = false;
      const preface = setTimeout(() => {
        if (settled) return;
        events.cut?.("http2_preface_timeout");
        session.destroy();
      }, limits.headersTimeoutMs);
      preface.unref();
      session.once("remoteSettings", () => {
        settled = true;
        clearTimeout(preface);
      });
      session.once("close", () => clearTimeout(preface));
      if (limits.http2IdleTimeoutMs <= 0) return;
      // An open stream is activity even when silent (a runner's Work stream, a WatchJob that waits
      // for changes); Node's session timeout counts only frames, so the streams are counted here.
      let open = 0;
      const closed = () => open--;
      session.on("stream", (stream: http2.ServerHttp2Stream) => {
        open++;
        stream.on("close", closed);
      });
      // The timer restarts on every frame either way; when it fires with streams open, the frames
      // that close the last of them start it again.
      session.setTimeout(limits.http2IdleTimeoutMs, () => {
        if (open > 0 || session.closed) return;
        events.cut?.("http2_idle");
        session.close();
      });
    },
    watchBody(req) {
      if (limits.minBodyBytesPerSecond <= 0 || req.complete) return;
      const socket = req.socket;
      bodies.add({ req, socket, startedAt: Date.now(), bytesAtStart: socket.bytesRead });
      if (!sweep) {
        sweep = setInterval(sweepBodies, sweepIntervalMs);
        sweep.unref();
      }
    },
    close() {
      if (sweep) clearInterval(sweep);
      sweep = undefined;
      bodies.clear();
    },
  };
}
