// Which release versions a release runner holds and what each may do, free of I/O: deployments,
// loads, crashes and finished tasks go in; effects (load, stop, restart, reregister, report) come out,
// and route() says which version takes a new task. Load, then swap: a new version takes new tasks
// only once it loaded; the version it replaces drains its running tasks and then stops.
import { backoffDelay } from "../../transport.js";
import { formatIdentifier, identifierMatches, type TaskIdentifierInit } from "../../identifier.js";

/** A release version as a deployment names it. */
export interface DeployedRelease {
  name: string;
  version: string;
  /** "sha256:<hex>" of the bundle. */
  digest: string;
  /** The manifest's identifiers (what publishing found). */
  identifiers: TaskIdentifierInit[];
  /** The manifest's engines.node range; empty accepts any. */
  nodeEngine: string;
}

export type VersionState = "loading" | "loaded" | "failed" | "draining";

export interface VersionStatus {
  name: string;
  version: string;
  state: VersionState;
  error: string;
  restarts: number;
}

export type ReleaseEffect =
  /** Download the bundle if needed and start its process (after delayMs when restarting). */
  | { kind: "load"; key: string; release: DeployedRelease; delayMs: number }
  /** End its process (or its download): the version is gone from the set. */
  | { kind: "stop"; key: string }
  /** The union of identifiers changed: send it on the Work stream. */
  | { kind: "reregister" }
  /** A status changed: report the statuses again. */
  | { kind: "report" };

interface HeldVersion {
  key: string;
  release: DeployedRelease;
  state: VersionState;
  /** Deployed on the cluster now (false: replaced or undeployed, kept only to finish its tasks). */
  deployed: boolean;
  /** Order of deployment: a higher one is newer. */
  seq: number;
  /** What the loaded bundle exports. */
  identifiers: TaskIdentifierInit[];
  error: string;
  restarts: number;
  /** Crashes since it was last healthy for `healthyAfterMs`. */
  crashStreak: number;
  loadedAt: number;
  inFlight: number;
}

export interface ReleaseSetOptions {
  /** Restart backoff after a crash (defaults 500 ms doubling to 30 s). */
  restartBaseMs?: number;
  restartMaxMs?: number;
  /** Loaded this long without a crash resets the backoff (default 60 s). */
  healthyAfterMs?: number;
  random?: () => number;
}

export function releaseKey(r: { name: string; version: string }): string {
  return `${r.name}@${r.version}`;
}

export class ReleaseSet {
  readonly #versions = new Map<string, HeldVersion>();
  readonly #options: Required<ReleaseSetOptions>;
  #seq = 0;

  constructor(options: ReleaseSetOptions = {}) {
    this.#options = {
      restartBaseMs: options.restartBaseMs ?? 500,
      restartMaxMs: options.restartMaxMs ?? 30_000,
      healthyAfterMs: options.healthyAfterMs ?? 60_000,
      random: options.random ?? Math.random,
    };
  }

  /** The cluster's deployments now (the whole set). */
  onDeployments(releases: DeployedRelease[]): ReleaseEffect[] {
    const effects: ReleaseEffect[] = [];
    const wanted = new Map(releases.map((r) => [releaseKey(r), r]));
    for (const [key, release] of wanted) {
      const held = this.#versions.get(key);
      if (!held) {
        this.#versions.set(key, {
          key,
          release,
          state: "loading",
          deployed: true,
          seq: ++this.#seq,
          identifiers: [],
          error: "",
          restarts: 0,
          crashStreak: 0,
          loadedAt: 0,
          inFlight: 0,
        });
        effects.push({ kind: "load", key, release, delayMs: 0 });
      } else if (!held.deployed) {
        // Deployed again (a rollback) while it was still draining: it serves again.
        held.deployed = true;
        held.seq = ++this.#seq;
        if (held.state === "draining") held.state = "loaded";
      }
    }
    for (const held of [...this.#versions.values()]) {
      if (!held.deployed || wanted.has(held.key)) continue;
      held.deployed = false;
    }
    effects.push(...this.#settle(), { kind: "reregister" }, { kind: "report" });
    return effects;
  }

  /** Its process imported the bundle and found these task classes. */
  onLoaded(key: string, identifiers: TaskIdentifierInit[], now: number): ReleaseEffect[] {
    const held = this.#versions.get(key);
    if (!held || held.state !== "loading") return [];
    held.state = "loaded";
    held.identifiers = identifiers.map((i) => ({ name: i.name, version: i.version }));
    held.error = "";
    held.loadedAt = now;
    return [...this.#settle(), { kind: "reregister" }, { kind: "report" }];
  }

  /** It could not load (download, digest, engine, import): reported, not retried until deployed again. */
  onLoadFailed(key: string, error: string): ReleaseEffect[] {
    const held = this.#versions.get(key);
    if (!held || held.state !== "loading") return [];
    held.state = "failed";
    held.error = error;
    held.identifiers = [];
    return [{ kind: "stop", key }, ...this.#settle(), { kind: "reregister" }, { kind: "report" }];
  }

  /**
   * Its process died. Its tasks are the caller's to report; a version still wanted is started
   * again with backoff, and serves nothing until it loaded again.
   */
  onExited(key: string, now: number, error: string): ReleaseEffect[] {
    const held = this.#versions.get(key);
    if (!held || held.state === "failed") return [];
    held.inFlight = 0;
    if (!this.#wanted(held)) {
      this.#versions.delete(key);
      return [...this.#settle(), { kind: "reregister" }, { kind: "report" }];
    }
    if (held.state === "loaded" && now - held.loadedAt >= this.#options.healthyAfterMs) held.crashStreak = 0;
    const delayMs = backoffDelay(held.crashStreak, this.#options.restartBaseMs, this.#options.restartMaxMs, this.#options.random);
    held.crashStreak = Math.min(held.crashStreak + 1, 30);
    held.restarts++;
    held.state = "loading";
    held.identifiers = [];
    held.error = error;
    return [{ kind: "load", key, release: held.release, delayMs }, ...this.#settle(), { kind: "reregister" }, { kind: "report" }];
  }

  onTaskStarted(key: string): void {
    const held = this.#versions.get(key);
    if (held) held.inFlight++;
  }

  onTaskFinished(key: string): ReleaseEffect[] {
    const held = this.#versions.get(key);
    if (!held) return [];
    held.inFlight = Math.max(0, held.inFlight - 1);
    const stopped = this.#settle();
    // A drained version left the set: its status goes away.
    return stopped.length > 0 ? [...stopped, { kind: "report" }] : [];
  }

  /** The version that takes a new task of this identifier: loaded, deployed before replaced, newest first. */
  route(identifier: TaskIdentifierInit): string | undefined {
    let best: HeldVersion | undefined;
    for (const held of this.#versions.values()) {
      if (held.state !== "loaded" || !held.identifiers.some((i) => identifierMatches(i, identifier))) continue;
      if (!best || rank(held) > rank(best)) best = held;
    }
    return best?.key;
  }

  /** What the runner registers: the identifiers of every version that takes new tasks. */
  identifiers(): TaskIdentifierInit[] {
    const out = new Map<string, TaskIdentifierInit>();
    for (const held of this.#versions.values()) {
      if (held.state !== "loaded") continue;
      for (const id of held.identifiers) out.set(formatIdentifier(id), { ...id });
    }
    return [...out.values()].sort((a, b) => formatIdentifier(a).localeCompare(formatIdentifier(b)));
  }

  statuses(): VersionStatus[] {
    return [...this.#versions.values()].map((h) => ({
      name: h.release.name,
      version: h.release.version,
      state: h.state,
      error: h.error,
      restarts: h.restarts,
    }));
  }

  state(key: string): VersionState | undefined {
    return this.#versions.get(key)?.state;
  }

  inFlight(key: string): number {
    return this.#versions.get(key)?.inFlight ?? 0;
  }

  /** Versions held now. */
  get keys(): string[] {
    return [...this.#versions.keys()];
  }

  /**
   * A version not deployed any more stays while it is the newest loaded one of its name and its
   * name's deployed version has not loaded (load, then swap); then it drains, and stops when idle.
   */
  #wanted(held: HeldVersion): boolean {
    if (held.deployed) return true;
    if (held.state !== "loaded") return false;
    const successor = [...this.#versions.values()].find((o) => o !== held && o.release.name === held.release.name && o.deployed);
    if (!successor || successor.state === "loaded") return false;
    // The successor is loading or failed: keep serving, unless a newer loaded version exists.
    return ![...this.#versions.values()].some(
      (o) => o !== held && o.release.name === held.release.name && o.state === "loaded" && o.seq > held.seq,
    );
  }

  #settle(): ReleaseEffect[] {
    const effects: ReleaseEffect[] = [];
    for (const held of [...this.#versions.values()]) {
      if (this.#wanted(held)) continue;
      if (held.state === "loaded") held.state = "draining";
      if (held.state === "draining" && held.inFlight > 0) continue;
      this.#versions.delete(held.key);
      effects.push({ kind: "stop", key: held.key });
    }
    return effects;
  }
}

function rank(held: HeldVersion): number {
  // Deployed versions first; among them, and among the rest, the later deployment.
  return (held.deployed ? 1e12 : 0) + held.seq;
}
