import { EventEmitter } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { AssignSchema, type Assign } from "@corral/proto";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InMemoryCache } from "../../cache.js";
import type { ProgressSnapshot } from "../execute-task.js";
import { ReleaseLoadError, ReleaseProcess } from "./release-process.js";

// A bundle as publishing leaves it: an ES module whose @corral/sdk import the child resolves.
const bundle = `
import { Task } from "@corral/sdk";
export class Other extends Task {
  static identifier = { name: "t/Other", version: "v1.0" };
  async execute() {}
}
export class Work extends Task {
  static identifier = { name: "t/Work", version: "v1.2" };
  async execute(ctx) {
    ctx.logger.info({ n: this.input.n }, "working");
    ctx.setDisplay("ran in " + process.pid);
    ctx.progress("tiles").add(2).done(1);
    await ctx.cache.put("seen", "yes " + (await ctx.cache.getText("given")));
    ctx.submitSubtask(new Other({ from: this.input.n }));
    if (this.input.wait) {
      process.send({ type: "log", line: JSON.stringify({ level: 30, msg: "waiting" }) });
      await new Promise((_, reject) => ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason)));
    }
  }
}
export default [Other];
`;

function assign(taskId: string, input: unknown, identifier = { name: "t/Work", version: "v1.0" }): Assign {
  return create(AssignSchema, {
    lease: { taskId, attempt: 1, token: "tok" },
    task: {
      taskId,
      jobId: "job-1",
      teamId: "team",
      clusterId: "c",
      identifier,
      attempt: 1,
      input: new TextEncoder().encode(JSON.stringify(input)),
    },
  });
}

describe("ReleaseProcess", () => {
  let dir: string;
  const lines: string[] = [];
  const logged = new EventEmitter();
  const logger = pino({ level: "info" }, {
    write: (l: string) => {
      lines.push(l);
      logged.emit("line", l);
    },
  });
  const cache = new InMemoryCache();
  const options = (bundlePath: string) => ({ release: "t@1.0.0", bundlePath, cache, logger, scripts: {} });

  beforeAll(async () => {
    dir = await mkdtemp(join(os.tmpdir(), "corral-release-"));
    await writeFile(join(dir, "good.mjs"), bundle);
    await writeFile(join(dir, "throws.mjs"), `throw new Error("no config at import");`);
    await writeFile(join(dir, "empty.mjs"), `export const x = 1;`);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("loads the bundle in its own process and reports the task classes it exports, default array included", async () => {
    const p = new ReleaseProcess(options(join(dir, "good.mjs")));
    try {
      expect(p.pid).not.toBe(process.pid);
      const ids = await p.loaded();
      expect(ids.sort((a, b) => a.name.localeCompare(b.name))).toEqual([
        { name: "t/Other", version: "v1.0" },
        { name: "t/Work", version: "v1.2" },
      ]);
    } finally {
      await p.stop();
    }
  });

  it("runs a task with a full context: display, progress, subtasks, the runner's job cache and forwarded logs", async () => {
    await cache.put("job-1", "given", new TextEncoder().encode("hello"));
    const p = new ReleaseProcess(options(join(dir, "good.mjs")));
    try {
      await p.loaded();
      const outcome = await p.execute("a#1", assign("a", { n: 7 }), new AbortController().signal);
      expect(outcome).toMatchObject({ kind: "completed", display: `ran in ${p.pid}` });
      if (outcome.kind !== "completed") throw new Error("not completed");
      expect(outcome.subtasks).toHaveLength(1);
      expect(outcome.subtasks[0]!.identifier).toMatchObject({ name: "t/Other", version: "v1.0" });
      expect(new TextDecoder().decode(outcome.subtasks[0]!.input)).toBe('{"from":7}');
      expect(outcome.progress).toMatchObject([{ label: "tiles", total: 2n, done: 1n }]);
      expect(new TextDecoder().decode(await cache.get("job-1", "seen"))).toBe("yes hello");
      const logged = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === "working");
      expect(logged).toMatchObject({ n: 7, release: "t@1.0.0", taskId: "a", level: 30 });
    } finally {
      await p.stop();
    }
  });

  it("sends the task's ctx.logger records to the attempt's task log, before its result", async () => {
    const p = new ReleaseProcess(options(join(dir, "good.mjs")));
    try {
      await p.loaded();
      const taskLog: string[] = [];
      const outcome = await p.execute("b#1", assign("b", { n: 3 }), new AbortController().signal, { onLog: (line) => taskLog.push(line) });
      expect(outcome.kind).toBe("completed");
      expect(taskLog.map((l) => JSON.parse(l) as Record<string, unknown>)).toMatchObject([{ msg: "working", n: 3, taskId: "b", level: 30 }]);
    } finally {
      await p.stop();
    }
  });

  it("a cancel aborts the task's signal", async () => {
    const p = new ReleaseProcess(options(join(dir, "good.mjs")));
    try {
      await p.loaded();
      const controller = new AbortController();
      const waiting = new Promise<void>((resolve) => {
        const onLine = (l: string) => {
          if (!l.includes('"waiting"')) return;
          logged.off("line", onLine);
          resolve();
        };
        logged.on("line", onLine);
      });
      const running = p.execute("b#1", assign("b", { n: 1, wait: true }), controller.signal);
      await waiting;
      controller.abort(new Error("job canceled"));
      const outcome = await running;
      expect(outcome).toMatchObject({ kind: "failed", countsAsRetry: true });
      expect(outcome.kind === "failed" && outcome.error).toContain("job canceled");
    } finally {
      await p.stop();
    }
  });

  it("passes a running task's progress and display to the runner while the task still runs", async () => {
    const p = new ReleaseProcess(options(join(dir, "good.mjs")));
    try {
      await p.loaded();
      const controller = new AbortController();
      let seen: (() => ProgressSnapshot) | undefined;
      const reported = new Promise<void>((resolve) => {
        const running = p.execute("e#1", assign("e", { n: 1, wait: true }), controller.signal, {
          onProgress: (read) => {
            seen = read;
            resolve();
          },
        });
        void running.then(() => resolve());
      });
      await reported;
      expect(seen, "progress came before the task ended").toBeDefined();
      expect(seen!()).toMatchObject({ display: `ran in ${p.pid}`, progress: [{ label: "tiles", total: 2n, done: 1n }] });
      controller.abort(new Error("done looking"));
    } finally {
      await p.stop();
    }
  });

  it("when the process is killed mid-task, the task comes back as the runner's fault (not counted as a retry)", async () => {
    const p = new ReleaseProcess(options(join(dir, "good.mjs")));
    await p.loaded();
    const running = p.execute("c#1", assign("c", { n: 1, wait: true }), new AbortController().signal);
    process.kill(p.pid!, "SIGKILL");
    const outcome = await running;
    expect(outcome).toMatchObject({ kind: "failed", countsAsRetry: false, unrecoverable: false });
    expect(await p.exited()).toBe("killed by SIGKILL");
    expect(await p.execute("d#1", assign("d", {}), new AbortController().signal)).toMatchObject({ countsAsRetry: false });
  });

  it("a bundle that throws at import fails to load with its error", async () => {
    const p = new ReleaseProcess(options(join(dir, "throws.mjs")));
    try {
      const err = await p.loaded().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ReleaseLoadError);
      expect((err as Error).message).toContain("no config at import");
    } finally {
      await p.stop();
    }
  });

  it("a bundle without task classes fails to load", async () => {
    const p = new ReleaseProcess(options(join(dir, "empty.mjs")));
    try {
      await expect(p.loaded()).rejects.toThrow("exports no task classes");
    } finally {
      await p.stop();
    }
  });
});
