import { describe, expect, it } from "vitest";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AgentFlagError, parseLabels, resolveCapacity, resolveHostName } from "./capacity.js";

const noGpus = join(tmpdir(), "corral-no-such-gpu-dir");

function flagError(fn: () => unknown): AgentFlagError {
  try {
    fn();
  } catch (err) {
    if (err instanceof AgentFlagError) return err;
    throw err;
  }
  throw new Error("expected an AgentFlagError");
}

describe("resolveCapacity", () => {
  it("takes the flags given", () => {
    expect(resolveCapacity({ cpus: "8", memory: "32GiB", gpus: "2", gpuType: "A100" }, noGpus)).toMatchObject({
      cpuCores: 8,
      memoryBytes: 32n * 1024n ** 3n,
      gpuCount: 2,
      gpuType: "A100",
    });
  });

  it("detects what is not given, GPUs from the NVIDIA driver's folder", () => {
    const dir = mkdtempSync(join(tmpdir(), "corral-gpus-"));
    mkdirSync(join(dir, "0000:01:00.0"));
    writeFileSync(join(dir, "0000:01:00.0", "information"), "Model: \t NVIDIA A100-SXM4-40GB\nIRQ: 1\n");
    const c = resolveCapacity({}, dir);
    expect(c.cpuCores).toBeGreaterThan(0);
    expect(c.memoryBytes).toBeGreaterThan(0n);
    expect(c).toMatchObject({ gpuCount: 1, gpuType: "NVIDIA A100-SXM4-40GB" });
  });

  it.each([
    [{ cpus: "-1" }, "--cpus"],
    [{ cpus: "abc" }, "--cpus"],
    [{ cpus: "0" }, "--cpus"],
    [{ cpus: "2.5" }, "--cpus"],
    [{ memory: "32XB" }, "--memory"],
    [{ memory: "0" }, "--memory"],
    [{ gpus: "1.5" }, "--gpus"],
    [{ gpus: "2000" }, "--gpus"],
    [{ gpuType: "x".repeat(129) }, "--gpu-type"],
  ])("refuses %j naming %s", (flags, flag) => {
    const err = flagError(() => resolveCapacity(flags, noGpus));
    expect(err.flag).toBe(flag);
    expect(err.message.startsWith(`${flag}: `)).toBe(true);
  });
});

describe("parseLabels and resolveHostName", () => {
  it("reads key=value labels, a value may hold '='", () => {
    expect(parseLabels(["zone=a", "expr=x=y"])).toEqual({ zone: "a", expr: "x=y" });
  });

  it("refuses a label without a key or '='", () => {
    expect(flagError(() => parseLabels(["novalue"])).flag).toBe("--label");
    expect(flagError(() => parseLabels(["=v"])).flag).toBe("--label");
  });

  it("refuses a host name the registry would refuse", () => {
    expect(resolveHostName("gpu-01.lab")).toBe("gpu-01.lab");
    expect(flagError(() => resolveHostName("bad name")).flag).toBe("--name");
  });
});
