// Release bundles on disk, by digest: downloaded once, verified against their sha256 digest while
// they stream into a temporary file, and renamed into place only when the digest matched, so the
// cache never holds a partial or altered bundle under a digest's name.
import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, rename, rm, stat } from "node:fs/promises";
import os from "node:os";
import { join } from "node:path";

export class BundleDigestError extends Error {
  override name = "BundleDigestError";
}

const digestPattern = /^sha256:([0-9a-f]{64})$/;

/** The cache folder: `$CORRAL_CACHE_DIR/releases`, else `$XDG_CACHE_HOME/corral/releases`, else `~/.cache/corral/releases`. */
export function defaultBundleDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CORRAL_CACHE_DIR) return join(env.CORRAL_CACHE_DIR, "releases");
  return join(env.XDG_CACHE_HOME || join(os.homedir(), ".cache"), "corral", "releases");
}

async function fileDigest(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest("hex")}`;
}

export class BundleCache {
  readonly dir: string;
  readonly #inFlight = new Map<string, Promise<string>>();

  constructor(dir = defaultBundleDir()) {
    this.dir = dir;
  }

  /** Where the bundle of this digest lives once cached (.mjs: Node imports it as an ES module). */
  pathOf(digest: string): string {
    const m = digestPattern.exec(digest);
    if (!m) throw new BundleDigestError(`${JSON.stringify(digest)} is not a sha256 digest`);
    return join(this.dir, `${m[1]}.mjs`);
  }

  /**
   * The path of the verified bundle, downloading it with `download` when it is not cached (or the
   * cached file no longer matches). Concurrent calls for one digest share one download.
   */
  ensure(digest: string, download: () => AsyncIterable<Uint8Array>): Promise<string> {
    const path = this.pathOf(digest);
    let pending = this.#inFlight.get(digest);
    if (!pending) {
      pending = this.#ensure(digest, path, download).finally(() => this.#inFlight.delete(digest));
      this.#inFlight.set(digest, pending);
    }
    return pending;
  }

  async #ensure(digest: string, path: string, download: () => AsyncIterable<Uint8Array>): Promise<string> {
    if (await this.#has(path)) {
      // A file edited or cut short on disk is not what was published: fetch it again.
      if ((await fileDigest(path)) === digest) return path;
      await rm(path, { force: true });
    }
    await mkdir(this.dir, { recursive: true });
    const tmp = `${path}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`;
    const hash = createHash("sha256");
    const file = await open(tmp, "w", 0o600);
    try {
      for await (const chunk of download()) {
        hash.update(chunk);
        await file.write(chunk);
      }
      await file.sync();
    } catch (err) {
      await file.close().catch(() => undefined);
      await rm(tmp, { force: true });
      throw err;
    }
    await file.close();
    const got = `sha256:${hash.digest("hex")}`;
    if (got !== digest) {
      await rm(tmp, { force: true });
      throw new BundleDigestError(`the downloaded bundle's digest is ${got}, not ${digest}`);
    }
    await rename(tmp, path);
    return path;
  }

  async #has(path: string): Promise<boolean> {
    try {
      return (await stat(path)).isFile();
    } catch {
      return false;
    }
  }
}
