// GPU detection from the NVIDIA driver's files (a folder laid out like /proc/driver/nvidia/gpus),
// and the environment overriding it.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { detectHardware, detectNvidiaGpus } from "./hardware.js";

const root = mkdtempSync(join(tmpdir(), "corral-gpus-"));
const gpus = join(root, "gpus");
for (const [bus, model] of [
  ["0000:3b:00.0", "NVIDIA A100-SXM4-80GB"],
  ["0000:86:00.0", "NVIDIA A100-SXM4-80GB"],
]) {
  mkdirSync(join(gpus, bus!), { recursive: true });
  writeFileSync(join(gpus, bus!, "information"), `Model: \t\t ${model}\nIRQ:   \t\t 42\nBus Location: \t ${bus}\n`);
}
const saved = { count: process.env.CORRAL_GPU_COUNT, type: process.env.CORRAL_GPU_TYPE };

afterEach(() => {
  for (const [k, v] of [["CORRAL_GPU_COUNT", saved.count], ["CORRAL_GPU_TYPE", saved.type]] as const) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("hardware", () => {
  it("counts the GPUs the NVIDIA driver lists, with the first one's model", () => {
    expect(detectNvidiaGpus(gpus)).toEqual({ count: 2, type: "NVIDIA A100-SXM4-80GB" });
    expect(detectNvidiaGpus(join(root, "no-driver"))).toEqual({ count: 0, type: "" });
  });

  it("reports detected GPUs unless the environment or the options say otherwise", () => {
    delete process.env.CORRAL_GPU_COUNT;
    delete process.env.CORRAL_GPU_TYPE;
    expect(detectHardware({}, gpus)).toMatchObject({ gpuCount: 2, gpuType: "NVIDIA A100-SXM4-80GB" });
    expect(detectHardware({}, join(root, "no-driver"))).toMatchObject({ gpuCount: 0, gpuType: "" });
    process.env.CORRAL_GPU_COUNT = "1";
    process.env.CORRAL_GPU_TYPE = "L4";
    expect(detectHardware({}, gpus)).toMatchObject({ gpuCount: 1, gpuType: "L4" });
    expect(detectHardware({ gpuCount: 0, gpuType: "" }, gpus)).toMatchObject({ gpuCount: 0, gpuType: "" });
  });
});
