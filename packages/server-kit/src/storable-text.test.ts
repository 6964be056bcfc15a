// The text walker finds every string Postgres cannot store, at any depth, and names its path the
// way protovalidate names fields.
import { create, type DescMessage } from "@bufbuild/protobuf";
import { pathToString } from "@bufbuild/protobuf/reflect";
import { StructSchema } from "@bufbuild/protobuf/wkt";
import { HelloSchema, SubmitJobRequestSchema, WorkRequestSchema } from "@corral/proto";
import { describe, expect, it } from "vitest";
import { createTextChecker, unstorableReason } from "./storable-text.js";

const checker = createTextChecker();
const where = (schema: DescMessage, init: unknown) => {
  const found = checker.find(schema, create(schema, init as never));
  return found && { path: pathToString(found.path), forKey: found.forKey, reason: found.reason };
};
const identifier = { name: "a/B", version: "v1.0" };

describe("storable text", () => {
  it("refuses a NUL character and a lone surrogate, and takes any other text", () => {
    expect(unstorableReason("a\u0000b")).toMatch(/NUL/);
    expect(unstorableReason("\ud800")).toMatch(/surrogate/);
    expect(unstorableReason("x\udc00")).toMatch(/surrogate/);
    for (const ok of ["", "plain", "é ü 漢字", "\u{1f600} (a pair)", "\u0001\u007f\uffff"]) expect(unstorableReason(ok), ok).toBeUndefined();
  });

  it("passes a message whose strings are all storable", () => {
    expect(where(SubmitJobRequestSchema, { name: "job", tasks: [{ identifier, display: "ok", input: new Uint8Array([0]) }] })).toBeUndefined();
  });

  it("leaves bytes fields alone: a NUL in an input is data, not text", () => {
    expect(where(SubmitJobRequestSchema, { name: "job", tasks: [{ identifier, input: new Uint8Array([0, 0, 0]) }] })).toBeUndefined();
  });

  it("names a top-level string", () => {
    expect(where(SubmitJobRequestSchema, { name: "jo\u0000b" })).toEqual({ path: "name", forKey: false, reason: expect.stringMatching(/NUL/) });
  });

  it("names a string inside a list of messages by its index", () => {
    const tasks = [{ identifier }, { identifier }, { identifier }, { identifier, display: "x\u0000" }];
    expect(where(SubmitJobRequestSchema, { name: "job", tasks })?.path).toBe("tasks[3].display");
  });

  it("looks into messages nested in messages", () => {
    const tasks = [{ identifier: { name: "a\u0000", version: "v1.0" } }];
    expect(where(SubmitJobRequestSchema, { name: "job", tasks })?.path).toBe("tasks[0].identifier.name");
  });

  it("looks into a list of strings", () => {
    expect(where(HelloSchema, { runnerId: "r", identifiers: [identifier, { name: "b", version: "v1.\ud800" }] })?.path).toBe("identifiers[1].version");
  });

  it("looks at map keys and values, and says which", () => {
    expect(where(HelloSchema, { runnerId: "r", labels: { ok: "fine", bad: "v\u0000" } })).toMatchObject({ path: 'labels["bad"]', forKey: false });
    expect(where(HelloSchema, { runnerId: "r", labels: { "k\u0000": "v" } })).toMatchObject({ path: 'labels["k\u0000"]', forKey: true });
  });

  it("looks into the set case of a oneof, and into a message of its own type nested in it", () => {
    const completed = { case: "completed", value: { lease: { taskId: "t", attempt: 1 }, display: "d\u0000" } };
    expect(where(WorkRequestSchema, { message: completed })?.path).toBe("completed.display");
    const failed = { case: "failed", value: { lease: { taskId: "t", attempt: 1 }, error: "e", progress: [{ label: "\udfff" }] } };
    const batch = { case: "batch", value: { messages: [{ message: { case: "heartbeat", value: {} } }, { message: failed }] } };
    expect(where(WorkRequestSchema, { message: batch })?.path).toBe("batch.messages[1].failed.progress[0].label");
    expect(where(WorkRequestSchema, { message: { case: "credit", value: { n: 1 } } })).toBeUndefined();
  });

  it("follows recursive types (google.protobuf.Struct) to any depth", () => {
    const deep = { fields: { a: { kind: { case: "structValue", value: { fields: { b: { kind: { case: "listValue", value: { values: [{ kind: { case: "stringValue", value: "\u0000" } }] } } } } } } } } };
    expect(where(StructSchema, deep)?.path).toBe('fields["a"].struct_value.fields["b"].list_value.values[0].string_value');
    expect(where(StructSchema, { fields: { a: { kind: { case: "numberValue", value: 1 } } } })).toBeUndefined();
  });

  it("reports the same finding twice in a row (no state kept between calls)", () => {
    const m = create(SubmitJobRequestSchema, { name: "a\u0000" });
    expect(pathToString(checker.find(SubmitJobRequestSchema, m)!.path)).toBe("name");
    expect(pathToString(checker.find(SubmitJobRequestSchema, m)!.path)).toBe("name");
  });
});
