import { describe, expect, it } from "vitest";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ExecutionContext } from "./execution-context.js";
import { createJobCache, InMemoryCache, LocalFileCache, type CacheBackend } from "./cache.js";
import { createSdkLogger } from "./logger.js";
import { Task } from "./task.js";
import { rawTask } from "./submission.js";
import { ValidationError } from "./errors.js";

class Dummy extends Task<number | undefined> {
  override execute() {}
}

function context(cache: CacheBackend = new InMemoryCache(), jobId = "job-1") {
  return new ExecutionContext({
    job: { id: jobId, name: "test" },
    task: { id: "t1", attempt: 1, display: "", parentId: "", clusterSlug: "", retryCount: 0, maxRetries: 0 },
    signal: new AbortController().signal,
    logger: createSdkLogger("test", "silent"),
    cache: createJobCache(cache, jobId),
  });
}

describe("ExecutionContext subtasks", () => {
  it("index subtasks in submission order and carry depends_on as sibling indices", () => {
    const ctx = context();
    const same = ctx.submitSubtask(new Dummy(1));
    const other = ctx.submitSubtask(new Dummy(2), { cluster: "other-As3dcSb3D9SAdK", dependsOn: [same] });
    const fan = ctx.submitSubtasks([new Dummy(3), new Dummy(4)], { dependsOn: [same, other], maxRetries: 2 });
    const last = ctx.submitSubtask(new Dummy(5), { dependsOn: fan[1]!, optional: true });
    expect([same.index, other.index, fan[0]!.index, fan[1]!.index, last.index]).toEqual([0, 1, 2, 3, 4]);
    const subs = ctx.result.subtasks;
    expect(subs.map((s) => s.dependsOn)).toEqual([[], [0], [0, 1], [0, 1], [3]]);
    expect(subs[1]!.clusterSlug).toBe("other-As3dcSb3D9SAdK");
    expect(subs[0]!.clusterSlug).toBe("");
    expect(subs[2]!.maxRetries).toBe(2);
    expect(subs[4]!.optional).toBe(true);
    expect(subs.map((s) => new TextDecoder().decode(s.input))).toEqual(["1", "2", "3", "4", "5"]);
  });

  it("rejects a dependency that is not an earlier subtask of the same task", () => {
    const a = context();
    const b = context();
    const h = a.submitSubtask(new Dummy());
    expect(() => b.submitSubtask(new Dummy(), { dependsOn: [h] })).toThrow(ValidationError);
    expect(() => a.submitSubtask(new Dummy(), { dependsOn: [{ index: 0, task: new Dummy() }] })).toThrow(ValidationError);
  });

  it("collapses a repeated dependency", () => {
    const ctx = context();
    const h = ctx.submitSubtask(new Dummy());
    ctx.submitSubtask(new Dummy(), { dependsOn: [h, h] });
    expect(ctx.result.subtasks[1]!.dependsOn).toEqual([0]);
  });
});

describe("ExecutionContext progress and display", () => {
  it("sums add and done per label", () => {
    const ctx = context();
    ctx.progress("tiles").add(10);
    ctx.progress("tiles").done(3).done();
    ctx.progress().add();
    expect(ctx.result.progress.map((p) => [p.label, p.total, p.done])).toEqual([
      ["tiles", 10n, 4n],
      ["", 1n, 0n],
    ]);
    expect(() => ctx.progress("x").add(-1)).toThrow(ValidationError);
  });

  it("bounds the display", () => {
    const ctx = context();
    ctx.setDisplay("hello");
    expect(ctx.result.display).toBe("hello");
    expect(() => ctx.setDisplay("x".repeat(1025))).toThrow(ValidationError);
  });

  it("refuses a display the broker could not store (a NUL, a lone surrogate)", () => {
    const ctx = context();
    expect(() => ctx.setDisplay("a\u0000b")).toThrow(/display: must not contain a NUL/);
    expect(() => ctx.setDisplay("a\ud800")).toThrow(/display: must be well-formed/);
    expect(ctx.result.display ?? "").toBe("");
  });
});

describe("job cache", () => {
  it("scopes keys to the job (memory)", async () => {
    const backend = new InMemoryCache();
    const a = context(backend, "job-a");
    const b = context(backend, "job-b");
    await a.cache.put("k", "va");
    expect(await a.cache.getText("k")).toBe("va");
    expect(await b.cache.get("k")).toBeUndefined();
  });

  it("stores files per job (local filesystem)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "corral-cache-"));
    try {
      const backend = new LocalFileCache(dir);
      const a = context(backend, "job-a");
      await a.cache.put("dir/../weird key.bin", new Uint8Array([1, 2, 3]));
      await a.cache.put("x".repeat(400), "long");
      expect(await a.cache.get("dir/../weird key.bin")).toEqual(new Uint8Array([1, 2, 3]));
      expect(await a.cache.getText("x".repeat(400))).toBe("long");
      expect(await context(new LocalFileCache(dir), "job-b").cache.get("dir/../weird key.bin")).toBeUndefined();
      // Another process (a second backend on the same folder) sees the same entries.
      expect(await context(new LocalFileCache(dir), "job-a").cache.getText("x".repeat(400))).toBe("long");
      await a.cache.delete("dir/../weird key.bin");
      expect(await a.cache.get("dir/../weird key.bin")).toBeUndefined();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("text the services cannot store", () => {
  it("is refused where a task sets it: subtask display and identifier, progress label", () => {
    const ctx = context();
    class Bad extends Task<object> {
      static override identifier = { name: "bad\u0000name", version: "v1.0" };
      execute() {}
    }
    expect(() => ctx.submitSubtask(new Bad({}))).toThrow(/identifier.name: must not contain a NUL/);
    expect(() => ctx.progress("a\u0000b")).toThrow(/progress.label: must not contain a NUL/);
    expect(() => ctx.progress("a\ud800")).toThrow(/progress.label: must be well-formed/);
    expect(() => rawTask({ name: "ok/Task", version: "v1.0" }, {}, { display: "x\u0000" })).toThrow(/display: must not contain a NUL/);
  });
});
