// The fast pass must never call valid what protovalidate calls invalid. Random requests of every
// method of every Corral service (strings around each length limit, pattern breakers, non-ASCII
// and surrogate pairs, lists around their limits, oneofs and nested messages set or not) go
// through both; where the fast pass says valid, protovalidate must agree.
import { create, type DescField, type DescMessage, type DescService } from "@bufbuild/protobuf";
import { reflect, type ReflectMessage } from "@bufbuild/protobuf/reflect";
import { createValidator } from "@bufbuild/protovalidate";
import * as proto from "@corral/proto";
import { describe, expect, it } from "vitest";
import { createFastValidator } from "./fast-validator.js";

const services = (Object.values(proto) as unknown[]).filter(
  (v): v is DescService => typeof v === "object" && v !== null && (v as { kind?: string }).kind === "service",
);
const requestTypes: DescMessage[] = [
  ...new Map(services.flatMap((s) => s.methods.map((m) => [m.input.typeName, m.input] as const))).values(),
];

/** A seeded generator, so a failure can be replayed. */
function random(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pieces = ["a", "Z", "0", "9", "-", "_", ".", "/", "v", "1", " ", "\t", "\n", "\v", "\u00a0", "é", "😀", "x"];
/** Lengths near the limits our contracts use. */
const lengths = [0, 1, 2, 3, 5, 20, 63, 64, 65, 99, 100, 101, 127, 128, 129, 256, 257, 1024, 1025];

function makeString(rnd: () => number): string {
  const shape = rnd();
  if (shape < 0.25) return `v${Math.floor(rnd() * 10)}.${Math.floor(rnd() * 10)}`;
  if (shape < 0.4) return "";
  const n = lengths[Math.floor(rnd() * lengths.length)]!;
  const plain = rnd() < 0.6;
  let out = "";
  for (let i = 0; i < n; i++) out += plain ? "abcXYZ019-"[Math.floor(rnd() * 10)] : pieces[Math.floor(rnd() * pieces.length)];
  return out;
}

function makeNumber(field: DescField, rnd: () => number): number | bigint {
  const near = [0, 1, 2, 16, 64, 100, 1000, 1001, 10000, 10001, 100000, 100001, 65536][Math.floor(rnd() * 13)]!;
  const scalar = field.fieldKind === "scalar" || field.fieldKind === "list" ? field.scalar : undefined;
  if (scalar === 3 || scalar === 4 || scalar === 18 || scalar === 6 || scalar === 16) return BigInt(near);
  if (scalar === 1 || scalar === 2) return near + 0.5;
  return near;
}

function fill(msg: ReflectMessage, rnd: () => number, depth: number): void {
  const desc = msg.desc;
  for (const oneof of desc.oneofs) {
    if (rnd() < 0.2) continue;
    const f = oneof.fields[Math.floor(rnd() * oneof.fields.length)]!;
    setField(msg, f, rnd, depth);
  }
  for (const f of desc.fields) {
    if (f.oneof) continue;
    if (rnd() < 0.3) continue;
    setField(msg, f, rnd, depth);
  }
}

function setField(msg: ReflectMessage, f: DescField, rnd: () => number, depth: number): void {
  switch (f.fieldKind) {
    case "scalar":
      msg.set(f, scalarValue(f, f.scalar, rnd));
      return;
    case "enum":
      msg.set(f, Math.floor(rnd() * (f.enum.values.length + 1)));
      return;
    case "message": {
      if (depth > 4) return;
      const inner = reflect(f.message);
      fill(inner, rnd, depth + 1);
      msg.set(f, inner);
      return;
    }
    case "list": {
      const list = msg.get(f);
      const n = [0, 1, 2, 3, 17][Math.floor(rnd() * 5)]!;
      for (let i = 0; i < n; i++) {
        if (f.listKind === "message") {
          if (depth > 4) return;
          const inner = reflect(f.message);
          fill(inner, rnd, depth + 1);
          list.add(inner);
        } else if (f.listKind === "enum") {
          list.add(Math.floor(rnd() * (f.enum.values.length + 1)));
        } else {
          list.add(scalarValue(f, f.scalar, rnd));
        }
      }
      return;
    }
    case "map": {
      const map = msg.get(f);
      const n = [0, 1, 2, 65][Math.floor(rnd() * 4)]!;
      for (let i = 0; i < n; i++) {
        const key = f.mapKey === 9 ? (rnd() < 0.1 ? "" : makeString(rnd) + String(i)) : i;
        if (f.mapKind === "message") {
          if (depth > 4) return;
          const inner = reflect(f.message);
          fill(inner, rnd, depth + 1);
          map.set(key, inner);
        } else if (f.mapKind === "enum") {
          map.set(key, 0);
        } else {
          map.set(key, scalarValue(f, f.scalar, rnd));
        }
      }
      return;
    }
  }
}

function scalarValue(f: DescField, scalar: number, rnd: () => number): unknown {
  if (scalar === 9) return makeString(rnd);
  if (scalar === 12) return new Uint8Array(Math.floor(rnd() * 4));
  if (scalar === 8) return rnd() < 0.5;
  return makeNumber(f, rnd);
}

describe("fast validator", () => {
  const fast = createFastValidator();
  const slow = createValidator();

  it("has a fast pass for the requests that come in bulk", () => {
    for (const schema of [proto.SubmitJobRequestSchema, proto.EnqueueRequestSchema, proto.ReportResultsRequestSchema, proto.WorkRequestSchema]) {
      expect(fast.unsupported(schema), schema.typeName).toBeUndefined();
    }
  });

  it("never passes a request protovalidate rejects (random requests of every method)", () => {
    expect(requestTypes.length).toBeGreaterThan(30);
    let passed = 0;
    let rejectedBySlow = 0;
    for (const schema of requestTypes) {
      const check = fast.of(schema);
      if (!check) continue;
      const rnd = random(schema.typeName.length * 7919);
      for (let i = 0; i < 400; i++) {
        const msg = reflect(schema);
        fill(msg, rnd, 0);
        const message = msg.message;
        const verdict = slow.validate(schema, message as never).kind;
        if (verdict !== "valid") rejectedBySlow++;
        if (check(message)) {
          passed++;
          expect(verdict, `${schema.typeName} #${i}`).toBe("valid");
        }
      }
    }
    // The generator makes both kinds, and the fast pass is used for real.
    expect(passed).toBeGreaterThan(1000);
    expect(rejectedBySlow).toBeGreaterThan(1000);
  });

  it("passes the ordinary valid messages itself", () => {
    const ok = [
      create(proto.SubmitJobRequestSchema, { name: "job", tasks: [{ identifier: { name: "bench/Noop", version: "v1.0" }, clusterSlug: "gpu-1" }] }),
      create(proto.ReportResultsRequestSchema, {
        brokerId: "b",
        results: [{ taskId: "t1", attempt: 1, outcome: { case: "completed", value: { display: "é😀" } } }],
      }),
      create(proto.WorkRequestSchema, { message: { case: "credit", value: { n: 5 } } }),
    ];
    for (const m of ok) {
      expect(slow.validate(m.$typeName === "corral.jobs.v1.SubmitJobRequest" ? proto.SubmitJobRequestSchema : m.$typeName === "corral.broker.v1.WorkRequest" ? proto.WorkRequestSchema : proto.ReportResultsRequestSchema, m as never).kind).toBe("valid");
    }
    expect(fast.of(proto.SubmitJobRequestSchema)!(ok[0])).toBe(true);
    expect(fast.of(proto.ReportResultsRequestSchema)!(ok[1])).toBe(true);
    expect(fast.of(proto.WorkRequestSchema)!(ok[2])).toBe(true);
  });

  it("leaves to protovalidate what it cannot tell: lengths in code points, patterns, limits", () => {
    const check = fast.of(proto.SubmitJobRequestSchema)!;
    const task = (over: object) => create(proto.SubmitJobRequestSchema, { name: "j", tasks: [{ identifier: { name: "a", version: "v1.0" }, ...over }] });
    // 1,024 characters of display are allowed, counted in code points: 600 emoji are 1,200 UTF-16 units.
    expect(check(task({ display: "😀".repeat(600) }))).toBe(true);
    expect(check(task({ display: "😀".repeat(1025) }))).toBe(false);
    expect(check(task({ clusterSlug: "no spaces" }))).toBe(false);
    expect(check(task({ maxRetries: 1001 }))).toBe(false);
    expect(check(create(proto.SubmitJobRequestSchema, { name: "j", tasks: [] }))).toBe(false);
    expect(check(create(proto.SubmitJobRequestSchema, { name: "j", tasks: [{}] }))).toBe(false);
  });
});
