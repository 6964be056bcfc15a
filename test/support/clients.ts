// SDK clients and runners for a suite whose services run as separate processes. Clients take one
// base URL and production routes by the gRPC service path (an ingress); here a transport does the
// same routing in-process: corral.registry.* to the registry, corral.jobs.* to job-service and
// corral.broker.* to the broker.
import type { Transport } from "@connectrpc/connect";
import { createServiceClient } from "@corral/server-kit";
import { DispatchService } from "@corral/proto";
import { Client, createSdkLogger, createTransport, type Protocol, type Runner, type RunnerOptions } from "@corral/sdk";
import type { Suite } from "./suite.js";

/** A transport that sends each call to the service process owning its service name. */
export function createRoutingTransport(suite: Suite, options: { apiKey: string; protocol: Protocol }): Transport {
  const make = (baseUrl: string) => createTransport({ baseUrl, apiKey: options.apiKey, protocol: options.protocol });
  const routes: Array<[string, Transport]> = [
    ["corral.registry.", make(suite.registry.url)],
    ["corral.jobs.", make(suite.jobs.url)],
    ["corral.broker.", make(suite.broker.url)],
  ];
  const pick = (typeName: string): Transport => {
    const route = routes.find(([prefix]) => typeName.startsWith(prefix));
    if (!route) throw new Error(`no service process serves ${typeName}`);
    return route[1];
  };
  return {
    unary: (method, signal, timeoutMs, header, input, contextValues) =>
      pick(method.parent.typeName).unary(method, signal, timeoutMs, header, input, contextValues),
    stream: (method, signal, timeoutMs, header, input, contextValues) =>
      pick(method.parent.typeName).stream(method, signal, timeoutMs, header, input, contextValues),
  };
}

/** A Client of the suite (Connect over HTTP/2), for the suite's team or another key. */
export function suiteClient(suite: Suite, apiKey = suite.apiKey): Client {
  return new Client({ url: suite.registry.url, apiKey, transport: createRoutingTransport(suite, { apiKey, protocol: "connect" }) });
}

// Quiet: the tasks that fail on purpose would log a warning each.
const quiet = createSdkLogger("e2e-runner", process.env.CORRAL_LOG_LEVEL ?? "error");

/** A runner of the suite over gRPC, quiet unless CORRAL_LOG_LEVEL says otherwise. */
export function suiteRunner(suite: Suite, options: Omit<RunnerOptions, "url" | "apiKey" | "transport">, apiKey = suite.apiKey): Runner {
  return suiteClient(suite, apiKey).runner({
    logger: quiet,
    idleMs: 300,
    drainGraceMs: 2_000,
    ackTimeoutMs: 2_000,
    ...options,
    transport: createRoutingTransport(suite, { apiKey, protocol: "grpc" }),
  });
}

/** Starts a runner and resolves once the broker has welcomed it. */
export async function startRunner(runner: Runner): Promise<{ runner: Runner; done: Promise<void> }> {
  const welcomed = new Promise<void>((resolve) => runner.on("welcome", resolve));
  const done = runner.runForever({ handleSignals: false });
  await Promise.race([welcomed, done.then(() => Promise.reject(new Error(`runner ${runner.id} stopped before its Welcome`)))]);
  return { runner, done };
}

/** The broker's internal dispatch API, called with the suite's service key. */
export function dispatchClient(suite: Suite) {
  return createServiceClient(DispatchService, { baseUrl: suite.broker.url, apiKey: suite.serviceKey, timeoutMs: 5_000 });
}

/**
 * Polls `probe` until it returns a value other than undefined/false; for states that have no
 * event to await (a task reaching QUEUED on a server). Throws with `what` after the timeout.
 */
export async function waitUntil<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 20; ; delay = Math.min(delay * 2, 250)) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, delay));
  }
}
