import { describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { HardwareSchema, type Hardware } from "@corral/proto";
import { deserializeTaskInput, instantiateTask, serializeTaskInput, Task, taskIdentifier } from "./task.js";
import { ValidationError } from "./errors.js";
import { identifierMatches, parseIdentifier } from "./identifier.js";
import { rawTask, toTaskSubmission } from "./submission.js";

class Plain extends Task<{ url: string; n: number }> {
  override execute() {}
}

class Versioned extends Task<string[]> {
  static override identifier = { name: "images/Resize", version: "v2.3" };
  override execute() {}
}

class NoInput extends Task {
  override execute() {}
}

class ProtoInput extends Task<Hardware> {
  static override identifier = { name: "proto/Input", version: "v1.0" };
  static override inputSchema = HardwareSchema;
  override execute() {}
}

describe("task identifiers", () => {
  it("default to the class name and v0.0", () => {
    expect(taskIdentifier(Plain)).toEqual({ name: "Plain", version: "v0.0" });
    expect(taskIdentifier(new NoInput())).toEqual({ name: "NoInput", version: "v0.0" });
  });

  it("use the static identifier, not an inherited one", () => {
    class Child extends Versioned {}
    expect(taskIdentifier(Versioned)).toEqual({ name: "images/Resize", version: "v2.3" });
    expect(taskIdentifier(Child)).toEqual({ name: "Child", version: "v0.0" });
  });

  it("reject a bad version", () => {
    class Bad extends Task {
      static override identifier = { name: "x", version: "1.0" };
      override execute() {}
    }
    expect(() => taskIdentifier(Bad)).toThrow(ValidationError);
  });

  it("parse name@version and match by major and minor", () => {
    expect(parseIdentifier("corral/Echo@v1.0")).toEqual({ name: "corral/Echo", version: "v1.0" });
    expect(() => parseIdentifier("Plain")).toThrow(expect.objectContaining({ code: Code.InvalidArgument }) as Error);
    expect(() => parseIdentifier("Plain")).toThrow(/identifier\.version.*no version/);
    const runner = { name: "t", version: "v1.4" };
    expect(identifierMatches(runner, { name: "t", version: "v1.2" })).toBe(true);
    expect(identifierMatches(runner, { name: "t", version: "v1.4" })).toBe(true);
    expect(identifierMatches(runner, { name: "t", version: "v1.5" })).toBe(false);
    expect(identifierMatches(runner, { name: "t", version: "v2.0" })).toBe(false);
    expect(identifierMatches(runner, { name: "u", version: "v1.0" })).toBe(false);
  });
});

describe("task input serialisation", () => {
  it("round-trips JSON inputs", () => {
    const t = new Plain({ url: "s3://a", n: 3 });
    const bytes = serializeTaskInput(t);
    expect(new TextDecoder().decode(bytes)).toBe('{"url":"s3://a","n":3}');
    const back = instantiateTask(Plain, bytes) as Plain;
    expect(back).toBeInstanceOf(Plain);
    expect(back.input).toEqual({ url: "s3://a", n: 3 });
  });

  it("sends no bytes for no input", () => {
    expect(serializeTaskInput(new NoInput()).length).toBe(0);
    expect(deserializeTaskInput(NoInput, new Uint8Array(0))).toBeUndefined();
  });

  it("serialises protobuf inputs as binary when the class declares a schema", () => {
    const input = create(HardwareSchema, { cpuCores: 8, memoryBytes: 16n * 1024n ** 3n, hostname: "box" });
    const bytes = serializeTaskInput(new ProtoInput(input));
    expect(bytes[0]).toBe(0x08); // field 1, varint: binary, not JSON
    const back = instantiateTask(ProtoInput, bytes) as ProtoInput;
    expect(back.input.cpuCores).toBe(8);
    expect(back.input.memoryBytes).toBe(16n * 1024n ** 3n);
    expect(back.input.hostname).toBe("box");
  });

  it("rejects an input that is not the declared message", () => {
    expect(() => serializeTaskInput(new ProtoInput({ cpuCores: 1 } as unknown as Hardware))).toThrow(ValidationError);
  });

  it("rejects inputs JSON cannot carry", () => {
    const cyclic: { self?: unknown } = {};
    cyclic.self = cyclic;
    class Cyclic extends Task<unknown> {
      override execute() {}
    }
    const err = (() => {
      try {
        serializeTaskInput(new Cyclic(cyclic));
      } catch (e) {
        return e as ValidationError;
      }
      return undefined;
    })();
    expect(err?.code).toBe(Code.InvalidArgument);
  });
});

describe("submissions", () => {
  it("carry identifier, input and options", () => {
    const s = toTaskSubmission(new Versioned(["a"]), { cluster: "gpu-x1", maxRetries: 3, optional: true, display: "resize" }, [0]);
    expect(s.identifier).toMatchObject({ name: "images/Resize", version: "v2.3" });
    expect(new TextDecoder().decode(s.input)).toBe('["a"]');
    expect(s).toMatchObject({ clusterSlug: "gpu-x1", maxRetries: 3, optional: true, display: "resize", dependsOn: [0] });
  });

  it("validate options before they reach the server", () => {
    expect(() => toTaskSubmission(new NoInput(), { maxRetries: -1 })).toThrow(ValidationError);
    expect(() => toTaskSubmission(new NoInput(), { cluster: "not a slug" })).toThrow(ValidationError);
  });

  it("can be built from an identifier alone", () => {
    const s = rawTask(parseIdentifier("corral/Echo@v1.0"), { message: "hi" });
    expect(s.identifier?.name).toBe("corral/Echo");
    expect(JSON.parse(new TextDecoder().decode(s.input))).toEqual({ message: "hi" });
    expect(rawTask({ name: "x", version: "v0.0" }, new Uint8Array([1, 2])).input).toEqual(new Uint8Array([1, 2]));
  });
});
