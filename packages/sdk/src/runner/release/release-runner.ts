// A release runner: follows its cluster's deployments (WatchDeployments), keeps each deployed
// release version in its own child process, registers the union of their identifiers on the live
// Work stream, routes each assigned task to the version that serves it, and reports how each
// release loaded. The decisions live in ReleaseSet; this file does the I/O.
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import {
  ReleaseLoadState,
  ReleaseLoadStatusSchema,
  ReleaseService,
  RunnerKind,
  type Assign,
  type Deployment,
} from "@corral/proto";
import type { CacheBackend } from "../../cache.js";
import { toApiError } from "../../errors.js";
import type { TaskIdentifierInit } from "../../identifier.js";
import { createSdkLogger, type Logger } from "../../logger.js";
import { backoffDelay, createTransport, sleep } from "../../transport.js";
import { describeError, TaskRegistry } from "../execute-task.js";
import { Runner, type RunnerLifecycle, type RunnerOptions } from "../runner.js";
import type { TaskOutcome } from "../runner-state.js";
import type { AttemptAbort } from "../attempt-abort.js";
import { DirectExecutor, type AttemptListeners, type TaskExecutor } from "../task-executor.js";
import type { TaskClass } from "../../task.js";
import { resolveScriptPolicy } from "../../tasks/script-policy.js";
import { BundleCache } from "./bundle-cache.js";
import { satisfiesEngine } from "./node-engine.js";
import { releaseFault } from "./release-ipc.js";
import { ReleaseProcess } from "./release-process.js";
import { ReleaseSet, type DeployedRelease, type ReleaseEffect, type VersionState } from "./release-set.js";

export interface ReleaseRunnerOptions extends Omit<RunnerOptions, "tasks" | "executor" | "kind"> {
  /** Transport for ReleaseService calls (default: built from url and apiKey). */
  apiTransport?: Transport;
  /** Where verified bundles are cached (default `$CORRAL_CACHE_DIR/releases` or `~/.cache/corral/releases`). */
  bundleDir?: string;
  /** Child restart backoff after a crash (defaults 500 ms doubling to 30 s, reset after 60 s healthy). */
  restart?: { baseDelayMs?: number; maxDelayMs?: number; healthyAfterMs?: number };
  /**
   * Task classes served in this process while no release is deployed to the cluster (`corral agent`
   * passes the built-in tasks): registered once the deployments watch says there is none, withdrawn
   * live (Reregister) as soon as one is deployed. Tasks already running still finish.
   */
  fallbackTasks?: TaskClass[];
}

const loadStates: Record<VersionState, ReleaseLoadState> = {
  loading: ReleaseLoadState.LOADING,
  loaded: ReleaseLoadState.LOADED,
  failed: ReleaseLoadState.FAILED,
  draining: ReleaseLoadState.DRAINING,
};

/** Errors after which watching again cannot help. */
const fatalCodes = new Set([Code.Unauthenticated, Code.PermissionDenied, Code.NotFound, Code.InvalidArgument]);

function toDeployed(d: Deployment): DeployedRelease | undefined {
  const r = d.release;
  if (!r) return undefined;
  return {
    name: r.name,
    version: r.version,
    digest: r.digest,
    identifiers: (r.manifest?.identifiers ?? []).map((i) => ({ name: i.name, version: i.version })),
    nodeEngine: r.manifest?.nodeEngine ?? "",
  };
}

/**
 * Runs the releases deployed to a cluster. Create it with `client.releaseRunner(...)`.
 *
 * @example
 * const runner = client.releaseRunner({ cluster: "testing-CvufcSxcC9SKfe", concurrency: 8 });
 * await runner.runForever(); // until SIGTERM or stop()
 */
export class ReleaseRunner {
  readonly runner: Runner;
  readonly #options: ReleaseRunnerOptions;
  readonly #set: ReleaseSet;
  readonly #bundles: BundleCache;
  readonly #api: ReturnType<typeof createClient<typeof ReleaseService>>;
  readonly #cache: CacheBackend;
  readonly #logger: Logger;
  readonly #processes = new Map<string, ReleaseProcess>();
  /** Downloads and starts under way, by version key. */
  readonly #loads = new Map<string, AbortController>();
  readonly #closed = new AbortController();
  #watching: Promise<void> | undefined;
  #reporting: Promise<void> | undefined;
  #reportAgain = false;
  #lastDeployments: DeployedRelease[] | undefined;
  readonly #fallback: DirectExecutor | undefined;
  /** True while the cluster has no release deployed and fallback tasks were given. */
  #fallbackActive = false;

  constructor(options: ReleaseRunnerOptions) {
    this.#options = options;
    this.#set = new ReleaseSet({
      restartBaseMs: options.restart?.baseDelayMs,
      restartMaxMs: options.restart?.maxDelayMs,
      healthyAfterMs: options.restart?.healthyAfterMs,
    });
    this.#bundles = new BundleCache(options.bundleDir);
    const logger = options.logger ?? createSdkLogger("corral-runner");
    const executor: TaskExecutor = {
      identifiers: () => (this.#fallbackActive ? this.#fallback!.identifiers() : this.#set.identifiers()),
      canRun: (id) => this.#set.route(id) !== undefined || (this.#fallbackActive && this.#fallback!.canRun(id)),
      execute: (key, assign, abort, listeners) => this.#execute(key, assign, abort, listeners),
    };
    const { fallbackTasks, ...runnerOptions } = options;
    this.runner = new Runner({ ...runnerOptions, logger, executor, kind: RunnerKind.RELEASE });
    // The runner's job cache (the suite's unless the options name one), which child processes reach over IPC.
    this.#cache = this.runner.cache;
    this.#logger = logger.child({ runnerId: this.runner.id });
    this.#fallback =
      fallbackTasks && fallbackTasks.length > 0
        ? new DirectExecutor({ registry: new TaskRegistry(fallbackTasks), cache: this.#cache, logger: this.#logger, scripts: resolveScriptPolicy(options) })
        : undefined;
    const apiKey = options.apiKey ?? process.env.CORRAL_API_KEY;
    this.#api = createClient(
      ReleaseService,
      options.apiTransport ?? createTransport({ baseUrl: options.url ?? process.env.CORRAL_URL ?? "http://127.0.0.1:7700", apiKey }),
    );
  }

  get id(): string {
    return this.runner.id;
  }

  get cluster(): string {
    return this.runner.cluster;
  }

  get lifecycle(): RunnerLifecycle {
    return this.runner.lifecycle;
  }

  /** The identifiers registered now (the union over loaded releases). */
  get identifiers(): TaskIdentifierInit[] {
    return this.#set.identifiers();
  }

  /** How each release version is doing in this runner. */
  statuses() {
    return this.#set.statuses();
  }

  /** The pid of a release version's child process (`name@version`), while it runs. */
  pidOf(release: string): number | undefined {
    return this.#processes.get(release)?.pid;
  }

  /** Follows the cluster's deployments and runs tasks until stop(), SIGTERM/SIGINT or the signal aborts. */
  async runForever(options: { signal?: AbortSignal; handleSignals?: boolean } = {}): Promise<void> {
    this.#watching ??= this.#watch();
    try {
      await this.runner.runForever(options);
    } finally {
      await this.#close();
    }
  }

  /** Drains (running tasks finish in their release processes), then stops every process. */
  async stop(): Promise<void> {
    await this.runner.stop();
    await this.#close();
  }

  async #close(): Promise<void> {
    this.#closed.abort();
    for (const load of this.#loads.values()) load.abort();
    // Out of the map first, as a "stop" effect does: their exits are ours, not crashes to restart.
    const processes = [...this.#processes.values()];
    this.#processes.clear();
    await Promise.all(processes.map((p) => p.stop()));
    await this.#watching;
  }

  /** WatchDeployments, again after a drop with backoff, until the runner closes. */
  async #watch(): Promise<void> {
    let attempt = 0;
    while (!this.#closed.signal.aborted) {
      try {
        for await (const res of this.#api.watchDeployments({ clusterSlug: this.cluster }, { signal: this.#closed.signal })) {
          attempt = 0;
          const deployed = res.deployments.map(toDeployed).filter((d): d is DeployedRelease => d !== undefined);
          this.#logger.info({ releases: deployed.map((d) => `${d.name}@${d.version}`) }, "deployments of %s", res.clusterSlug);
          this.#lastDeployments = deployed;
          this.#apply(this.#set.onDeployments(deployed));
          this.#setFallback(deployed.length === 0);
        }
      } catch (err) {
        if (this.#closed.signal.aborted) return;
        const ce = ConnectError.from(err);
        if (ce.code === Code.Unimplemented) {
          // A registry that serves no releases has none deployed: the fallback tasks, if any, run
          // meanwhile, and the watch is tried again in case the registry is upgraded.
          this.#setFallback(true);
          if (attempt === 0) this.#logger.info("the registry serves no releases; watching again later");
          await sleep(backoffDelay(Math.max(attempt, 6), 500, 60_000), this.#closed.signal).catch(() => undefined);
          attempt = Math.min(attempt + 1, 20);
          continue;
        }
        if (fatalCodes.has(ce.code)) {
          this.#logger.error({ err: toApiError(err) }, "cannot follow the cluster's deployments");
          void this.runner.stop();
          return;
        }
        this.#logger.warn({ code: Code[ce.code], err: ce.rawMessage }, "the deployments watch failed");
      }
      await sleep(backoffDelay(attempt, 500, 15_000), this.#closed.signal).catch(() => undefined);
      attempt = Math.min(attempt + 1, 20);
    }
  }

  /** Serves the fallback tasks (or stops serving them) and registers the change on the live stream. */
  #setFallback(active: boolean): void {
    if (!this.#fallback || this.#fallbackActive === active) return;
    this.#fallbackActive = active;
    this.#logger.info({ identifiers: this.#fallback.identifiers().map((i) => `${i.name}@${i.version}`) }, active ? "no release deployed: serving the fallback tasks" : "a release is deployed: fallback tasks withdrawn");
    this.runner.reregister().catch(() => {});
  }

  #apply(effects: ReleaseEffect[]): void {
    let report = false;
    for (const e of effects) {
      switch (e.kind) {
        case "load":
          void this.#load(e.key, e.release, e.delayMs);
          break;
        case "stop": {
          this.#loads.get(e.key)?.abort();
          const p = this.#processes.get(e.key);
          this.#processes.delete(e.key);
          void p?.stop();
          break;
        }
        case "reregister":
          // Resolves once the broker applied it; a stopping runner's refusal needs no answer.
          this.runner.reregister().catch(() => {});
          break;
        case "report":
          report = true;
          break;
      }
    }
    if (report) this.#report();
  }

  async #load(key: string, release: DeployedRelease, delayMs: number): Promise<void> {
    const abort = new AbortController();
    this.#loads.get(key)?.abort();
    this.#loads.set(key, abort);
    const signal = AbortSignal.any([abort.signal, this.#closed.signal]);
    try {
      if (delayMs > 0) await sleep(delayMs, signal);
      if (!satisfiesEngine(process.version, release.nodeEngine)) {
        throw new Error(`the release needs Node.js ${release.nodeEngine}; this runner runs ${process.version}`);
      }
      const path = await this.#bundles.ensure(release.digest, () => this.#download(release, signal));
      signal.throwIfAborted();
      const proc: ReleaseProcess = new ReleaseProcess({
        release: key,
        bundlePath: path,
        cache: this.#cache,
        logger: this.#logger,
        scripts: {
          allowScripts: this.#options.allowScripts,
          allowScriptsAsRoot: this.#options.allowScriptsAsRoot,
          scriptEnv: this.#options.scriptEnv,
          scriptEnvPass: this.#options.scriptEnvPass,
          scriptCacheDir: this.#options.scriptCacheDir,
        },
        onExit: (reason) => this.#onExit(key, proc, reason),
      });
      this.#processes.set(key, proc);
      const identifiers = await proc.loaded();
      if (signal.aborted || this.#processes.get(key) !== proc) return;
      this.#logger.info({ release: key, pid: proc.pid, identifiers: identifiers.map((i) => `${i.name}@${i.version}`) }, "release loaded");
      this.#apply(this.#set.onLoaded(key, identifiers, Date.now()));
    } catch (err) {
      if (signal.aborted) return;
      const error = err instanceof Error && err.name === "ReleaseLoadError" ? err.message : describeError(err);
      this.#logger.warn({ release: key, error }, "release failed to load");
      this.#apply(this.#set.onLoadFailed(key, error));
    } finally {
      if (this.#loads.get(key) === abort) this.#loads.delete(key);
    }
  }

  async *#download(release: DeployedRelease, signal: AbortSignal): AsyncGenerator<Uint8Array> {
    for await (const part of this.#api.downloadRelease({ name: release.name, version: release.version }, { signal })) {
      if (part.part.case === "chunk") yield part.part.value;
    }
  }

  /** A child ended on its own (a crash, kill -9): withdraw its identifiers, restart it with backoff. */
  #onExit(key: string, proc: ReleaseProcess, reason: string): void {
    if (this.#processes.get(key) !== proc) return; // stopped by us
    this.#processes.delete(key);
    const state = this.#set.state(key);
    if (state !== "loaded" && state !== "draining") return; // still loading: its load reports it
    this.#logger.warn({ release: key, reason, pid: proc.pid }, "release process ended: restarting it");
    this.#apply(this.#set.onExited(key, Date.now(), `its process ended (${reason})`));
  }

  async #execute(_key: string, assign: Assign, abort: AttemptAbort, listeners?: AttemptListeners): Promise<TaskOutcome> {
    const identifier = assign.task!.identifier!;
    const version = this.#set.route(identifier);
    // A fallback task assigned before a deployment withdrew the fallback still runs here.
    if (version === undefined && this.#fallback?.canRun(identifier)) return this.#fallback.execute(_key, assign, abort, listeners);
    const proc = version === undefined ? undefined : this.#processes.get(version);
    if (!version || !proc) return releaseFault(`no release loaded here serves ${identifier.name}@${identifier.version}`);
    this.#set.onTaskStarted(version);
    try {
      return await proc.execute(_key, assign, abort.signal, listeners);
    } finally {
      this.#apply(this.#set.onTaskFinished(version));
    }
  }

  /** ReportReleaseStatus with the statuses now; one call at a time, the latest state wins. */
  #report(): void {
    if (this.#reporting) {
      this.#reportAgain = true;
      return;
    }
    this.#reporting = (async () => {
      let attempt = 0;
      do {
        this.#reportAgain = false;
        const releases = this.#set.statuses().map((s) =>
          create(ReleaseLoadStatusSchema, {
            name: s.name,
            version: s.version,
            state: loadStates[s.state],
            error: s.error.slice(0, 4000),
            restarts: s.restarts,
          }),
        );
        try {
          await this.#api.reportReleaseStatus({ runnerId: this.runner.id, clusterSlug: this.cluster, releases }, { signal: this.#closed.signal });
          attempt = 0;
        } catch (err) {
          if (this.#closed.signal.aborted) break;
          this.#logger.warn({ err: ConnectError.from(err).rawMessage }, "could not report release status");
          this.#reportAgain = true;
          await sleep(backoffDelay(attempt++, 1000, 30_000), this.#closed.signal).catch(() => undefined);
        }
      } while (this.#reportAgain && !this.#closed.signal.aborted);
    })().finally(() => (this.#reporting = undefined));
  }

  /** @internal The deployments last seen (tests). */
  get lastDeployments(): DeployedRelease[] | undefined {
    return this.#lastDeployments;
  }
}
