import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BundleCache, BundleDigestError, defaultBundleDir } from "./bundle-cache.js";

const bytes = new TextEncoder().encode("export const answer = 42;\n");
const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

async function* chunks(data: Uint8Array, size = 7): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.length; i += size) yield data.slice(i, i + size);
}

describe("BundleCache", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(os.tmpdir(), "corral-bundles-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("downloads a bundle once, by digest, and serves the cached file afterwards", async () => {
    const cache = new BundleCache(dir);
    let downloads = 0;
    const download = () => {
      downloads++;
      return chunks(bytes);
    };
    const [a, b] = await Promise.all([cache.ensure(digest, download), cache.ensure(digest, download)]);
    expect(a).toBe(b);
    expect(a).toBe(join(dir, `${digest.slice(7)}.mjs`));
    expect(await readFile(a)).toEqual(Buffer.from(bytes));
    await cache.ensure(digest, download);
    expect(downloads).toBe(1);
  });

  it("refuses a download whose digest does not match and leaves nothing behind", async () => {
    const cache = new BundleCache(dir);
    const other = new TextEncoder().encode("export const answer = 43;\n");
    await expect(cache.ensure(digest, () => chunks(other))).rejects.toBeInstanceOf(BundleDigestError);
    expect(await readdir(dir)).toEqual([]);
  });

  it("a download that fails midway leaves no file", async () => {
    const cache = new BundleCache(dir);
    async function* broken() {
      yield bytes.slice(0, 3);
      throw new Error("stream reset");
    }
    await expect(cache.ensure(digest, broken)).rejects.toThrow("stream reset");
    expect(await readdir(dir)).toEqual([]);
  });

  it("a cached file changed on disk is downloaded again", async () => {
    const cache = new BundleCache(dir);
    const path = await cache.ensure(digest, () => chunks(bytes));
    await writeFile(path, "tampered");
    let downloads = 0;
    await cache.ensure(digest, () => {
      downloads++;
      return chunks(bytes);
    });
    expect(downloads).toBe(1);
    expect(await readFile(path)).toEqual(Buffer.from(bytes));
  });

  it("refuses a digest that is not sha256 hex (it names a file)", () => {
    expect(() => new BundleCache(dir).pathOf("sha256:../../etc/passwd")).toThrow(BundleDigestError);
  });

  it("lives under CORRAL_CACHE_DIR when set", () => {
    expect(defaultBundleDir({ CORRAL_CACHE_DIR: "/var/cache/corral" })).toBe("/var/cache/corral/releases");
    expect(defaultBundleDir({ HOME: "/home/ann", XDG_CACHE_HOME: "/xdg" })).toBe("/xdg/corral/releases");
  });
});
