// A kept field's items carry the bytes they were parsed from, exactly as sent; nothing else does.
import { create, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { EnqueueRequestSchema, ReportResultsRequestSchema, TaskEnvelopeSchema, TaskResultSchema } from "@corral/proto";
import { describe, expect, it } from "vitest";
import { keepWireBytes, parseKeepingBytes, wireBytesOf } from "./wire-bytes.js";

/** An envelope encoded by hand with its fields out of the canonical order, so an encoder would write other bytes. */
function reorderedEnvelope(taskId: string): Uint8Array {
  const identifier = new BinaryWriter().tag(1, WireType.LengthDelimited).string("img/Resize").tag(2, WireType.LengthDelimited).string("v1.0").finish();
  return new BinaryWriter()
    .tag(7, WireType.Varint).uint32(2) // attempt before the ids
    .tag(6, WireType.LengthDelimited).bytes(identifier)
    .tag(1, WireType.LengthDelimited).string(taskId)
    .tag(2, WireType.LengthDelimited).string("job-1")
    .finish();
}

function enqueueBytes(envelopes: Uint8Array[]): Uint8Array {
  const w = new BinaryWriter();
  for (const e of envelopes) w.tag(1, WireType.LengthDelimited).bytes(e);
  return w.finish();
}

describe("wire bytes", () => {
  keepWireBytes(EnqueueRequestSchema, EnqueueRequestSchema.field.tasks);

  it("keeps each item's bytes as sent, not as an encoder would write them", () => {
    const sent = [reorderedEnvelope("t-1"), reorderedEnvelope("t-2"), toBinary(TaskEnvelopeSchema, create(TaskEnvelopeSchema, { taskId: "t-3" }))];
    const req = parseKeepingBytes(EnqueueRequestSchema, enqueueBytes(sent));
    expect(req.tasks.map((t) => t.taskId)).toEqual(["t-1", "t-2", "t-3"]);
    expect(req.tasks[0]!.attempt).toBe(2);
    req.tasks.forEach((t, i) => expect(Buffer.from(wireBytesOf(t)!)).toEqual(Buffer.from(sent[i]!)));
    // What an encoder writes for the first is other bytes (canonical field order): it was not re-encoded.
    expect(Buffer.from(toBinary(TaskEnvelopeSchema, req.tasks[0]!))).not.toEqual(Buffer.from(sent[0]!));
  });

  it("keeps nothing for a type whose field was not named, or for a message made in process", () => {
    const results = create(ReportResultsRequestSchema, { results: [create(TaskResultSchema, { taskId: "t-1", attempt: 1 })] });
    const parsed = parseKeepingBytes(ReportResultsRequestSchema, toBinary(ReportResultsRequestSchema, results));
    expect(wireBytesOf(parsed.results[0]!)).toBeUndefined();
    expect(wireBytesOf(create(TaskEnvelopeSchema, { taskId: "t-4" }))).toBeUndefined();
  });

  it("refuses a field that is not a repeated message field of the type", () => {
    expect(() => keepWireBytes(EnqueueRequestSchema, TaskEnvelopeSchema.field.taskId)).toThrow(/not a repeated message field/);
  });
});
