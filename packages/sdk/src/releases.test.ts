import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createRouterTransport } from "@connectrpc/connect";
import { PublishReleaseResponseSchema, ReleaseSchema, ReleaseService, type PublishReleaseRequest } from "@corral/proto";
import { afterAll, describe, expect, it } from "vitest";
import { Client } from "./client.js";
import { ReleaseDigestError, ReleaseNotFoundError } from "./index.js";

const digestOf = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** A release service whose download sends `served` for a release claiming `claimed`. */
function clientServing(claimed: Uint8Array, served: Uint8Array, received: PublishReleaseRequest[] = []) {
  const release = create(ReleaseSchema, { name: "render", version: "1.0.0", digest: digestOf(claimed), sizeBytes: BigInt(claimed.length) });
  return new Client({
    transport: createRouterTransport(({ service }) => {
      service(ReleaseService, {
        async publishRelease(requests) {
          for await (const r of requests) received.push(r);
          return create(PublishReleaseResponseSchema, { release, created: true });
        },
        async *downloadRelease(req) {
          if (req.name !== "render") throw new ConnectError(`release "${req.name}@${req.version}" not found`, Code.NotFound);
          yield { part: { case: "release", value: release } };
          for (let at = 0; at < served.length; at += 1000) yield { part: { case: "chunk", value: served.subarray(at, at + 1000) } };
        },
      });
    }),
  });
}

describe("client.releases()", () => {
  const dir = mkdtempSync(join(tmpdir(), "corral-sdk-releases-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("publishes a header with digest and size, then the bytes in chunks of at most 1 MiB", async () => {
    const bundle = new Uint8Array(2.5 * 1024 * 1024).fill(7);
    const received: PublishReleaseRequest[] = [];
    await clientServing(bundle, bundle, received).releases().publish(bundle, {
      name: "render",
      version: "1.0.0",
      manifest: { identifiers: ["render/Tile@v1.2"], nodeEngine: ">=20", source: { directory: "/src" } },
    });
    const [header, ...chunks] = received;
    expect(header?.part.case).toBe("header");
    const h = header!.part.value as { digest: string; sizeBytes: bigint; manifest: { identifiers: unknown[] } };
    expect(h.digest).toBe(digestOf(bundle));
    expect(h.sizeBytes).toBe(BigInt(bundle.length));
    expect(h.manifest.identifiers).toEqual([expect.objectContaining({ name: "render/Tile", version: "v1.2" })]);
    expect(chunks.map((c) => (c.part.value as Uint8Array).length)).toEqual([1024 * 1024, 1024 * 1024, 512 * 1024]);
  });

  it("downloads to a file only when the bytes match the digest", async () => {
    const bundle = new Uint8Array(5_000).fill(1);
    const good = join(dir, "good.mjs");
    await clientServing(bundle, bundle).releases().download("render", "1.0.0", good);
    expect(readFileSync(good).equals(Buffer.from(bundle))).toBe(true);

    const bad = join(dir, "bad.mjs");
    const tampered = new Uint8Array(5_000).fill(2);
    await expect(clientServing(bundle, tampered).releases().download("render", "1.0.0", bad)).rejects.toBeInstanceOf(ReleaseDigestError);
    expect(existsSync(bad)).toBe(false);
    await expect(clientServing(bundle, bundle.subarray(0, 4_000)).releases().download("render", "1.0.0", bad)).rejects.toBeInstanceOf(ReleaseDigestError);
  });

  it("throws ReleaseNotFoundError for a release that does not exist", async () => {
    const err = await clientServing(new Uint8Array(1), new Uint8Array(1)).releases().download("nope", "1.0.0", join(dir, "x")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ReleaseNotFoundError);
  });
});
