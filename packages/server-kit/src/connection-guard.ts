// Keeps idle, slow and vanished connections from holding the process: admission against the
// connection budget, a deadline for a socket's first bytes, an idle timeout for HTTP/2 sessions
// without open streams, a PING the peer of a session with open streams must answer, and a minimum
// rate for HTTP/1.1 request bodies. Timers are per connection or one sweep per process, never per
// request, so the unary fast path and the runner stream pay nothing.
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
  /**
   * An HTTP/2 session with open streams is sent a PING this often (ms; 0: never), and closed when
   * the peer has not answered within `http2PingTimeoutMs`: a runner whose machine vanished without
   * closing its connection holds no stream, lease or node for longer than that.
   */
  http2PingIntervalMs: number;
  http2PingTimeoutMs: number;
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
  http2PingIntervalMs: 60_000,
  http2PingTimeoutMs: 20_000,
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
  | "http2_ping_timeout"
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
  /** Applies the preface deadline, the idle timeout and the PINGs to a new HTTP/2 session. */
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
  const pings = createPingSweep(limits, events);

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
      // An open stream is activity even when silent (a runner's Work stream, a WatchJob that waits
      // for changes); Node's session timeout counts only frames, so the streams are counted here.
      let open = 0;
      const closed = () => {
        if (--open === 0) pings.forget(session);
      };
      session.on("stream", (stream: http2.ServerHttp2Stream) => {
        if (open++ === 0) pings.watch(session);
        stream.on("close", closed);
      });
      session.once("close", () => pings.forget(session));
      if (limits.http2IdleTimeoutMs <= 0) return;
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
      pings.close();
    },
  };
}

interface PingSweep {
  /** The session has open streams: PING it from now on. */
  watch(session: http2.Http2Session): void;
  /** The session has no open stream any more, or closed. */
  forget(session: http2.Http2Session): void;
  close(): void;
}

/** What a watched session's PINGs stand at; `sentAt` is set while one is unanswered. */
interface PingState {
  answeredAt: number;
  sentAt: number | undefined;
}

/**
 * One sweep per process over the sessions with open streams: each is sent a PING once
 * `http2PingIntervalMs` has passed since its last answer, and destroyed when one goes unanswered
 * for `http2PingTimeoutMs`. A session whose peer answers costs one PING per interval.
 */
function createPingSweep(limits: ConnectionLimits, events: ConnectionEvents): PingSweep {
  const watched = new Map<http2.Http2Session, PingState>();
  let timer: NodeJS.Timeout | undefined;
  const everyMs = limits.http2PingIntervalMs;
  const stop = () => {
    if (timer) clearInterval(timer);
    timer = undefined;
  };
  const sweep = () => {
    const now = Date.now();
    for (const [session, state] of watched) {
      if (session.destroyed || session.closed) {
        watched.delete(session);
      } else if (state.sentAt !== undefined) {
        if (now - state.sentAt < limits.http2PingTimeoutMs) continue;
        watched.delete(session);
        events.cut?.("http2_ping_timeout");
        session.destroy();
      } else if (now - state.answeredAt >= everyMs) {
        state.sentAt = now;
        // false: the session cannot send one now (too many unanswered); it counts as unanswered.
        session.ping((err) => {
          if (err) return;
          state.answeredAt = Date.now();
          state.sentAt = undefined;
        });
      }
    }
    if (watched.size === 0) stop();
  };
  return {
    watch(session) {
      if (everyMs <= 0 || watched.has(session)) return;
      watched.set(session, { answeredAt: Date.now(), sentAt: undefined });
      if (!timer) {
        // A quarter of the shorter period: a PING goes at most that late, a cut at most that late.
        timer = setInterval(sweep, Math.max(50, Math.min(everyMs, limits.http2PingTimeoutMs) / 4));
        timer.unref();
      }
    },
    forget(session) {
      watched.delete(session);
      if (watched.size === 0) stop();
    },
    close() {
      stop();
      watched.clear();
    },
  };
}
