// The patch semantics of test/deploy/kustomize.ts, on their own (manifests.test.ts also compares
// whole renders with `kubectl kustomize` where kubectl is installed).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { applyJsonPatch, renderKustomization, strategicMerge, type Json, type JsonObject } from "./kustomize.js";

describe("strategicMerge", () => {
  it("merges maps, deletes on null, merges containers and env by name, replaces other lists", () => {
    const base: Json = {
      spec: {
        replicas: 1,
        paused: false,
        template: {
          spec: {
            containers: [
              { name: "a", image: "x", env: [{ name: "A", value: "1" }], args: ["one", "two"] },
              { name: "b", image: "y" },
            ],
          },
        },
      },
    };
    const patch: Json = {
      spec: {
        replicas: 3,
        paused: null,
        template: { spec: { containers: [{ name: "a", env: [{ name: "B", value: "2" }], args: ["three"] }] } },
      },
    };
    expect(strategicMerge(base, patch, [])).toEqual({
      spec: {
        replicas: 3,
        template: {
          spec: {
            containers: [
              { name: "a", image: "x", env: [{ name: "B", value: "2" }, { name: "A", value: "1" }], args: ["three"] },
              { name: "b", image: "y" },
            ],
          },
        },
      },
    });
  });
});

describe("applyJsonPatch", () => {
  it("adds, replaces and removes by JSON pointer", () => {
    const doc: JsonObject = { metadata: { name: "g" }, spec: { listeners: [{ name: "http" }], keep: 1, drop: 2 } };
    applyJsonPatch(doc, [
      { op: "add", path: "/metadata/annotations", value: { "a/b": "c" } },
      { op: "replace", path: "/spec/listeners", value: [{ name: "https" }] },
      { op: "add", path: "/spec/listeners/-", value: { name: "extra" } },
      { op: "remove", path: "/spec/drop" },
    ]);
    expect(doc).toEqual({
      metadata: { name: "g", annotations: { "a/b": "c" } },
      spec: { listeners: [{ name: "https" }, { name: "extra" }], keep: 1 },
    });
    expect(() => applyJsonPatch(doc, [{ op: "replace", path: "/spec/missing", value: 1 }])).toThrow();
  });
});

describe("renderKustomization", () => {
  const dir = mkdtempSync(join(tmpdir(), "corral-kustomize-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("refuses kustomization fields it does not implement", () => {
    writeFileSync(join(dir, "kustomization.yaml"), "resources: []\ncommonLabels:\n  a: b\n");
    expect(() => renderKustomization(dir)).toThrow(/commonLabels/);
  });

  it("fails on a patch that matches nothing, instead of rendering without it", () => {
    writeFileSync(
      join(dir, "cm.yaml"),
      "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: real\ndata:\n  A: '1'\n",
    );
    writeFileSync(
      join(dir, "kustomization.yaml"),
      "resources: [cm.yaml]\npatches:\n  - patch: |\n      apiVersion: v1\n      kind: ConfigMap\n      metadata:\n        name: typo\n      data:\n        A: '2'\n",
    );
    expect(() => renderKustomization(dir)).toThrow(/matches nothing/);
  });
});
