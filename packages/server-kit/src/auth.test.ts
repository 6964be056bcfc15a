import { createContextValues, type HandlerContext } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { callerKey, requireClusterAllowed, requireTeam, requireWorker, type Caller } from "./auth.js";
import { PermissionDeniedError } from "./errors.js";

function ctxOf(caller: Caller): HandlerContext {
  const values = createContextValues();
  values.set(callerKey, caller);
  return { values } as HandlerContext;
}

const team: Caller = { kind: "user", teamId: "t1", keyId: "k1" };
const runner: Caller = { kind: "user", teamId: "t1", keyId: "k2", clusterId: "c1" };

describe("caller scopes", () => {
  it("a team key passes requireTeam and may name any of its clusters", () => {
    expect(requireTeam(ctxOf(team))).toBe("t1");
    const worker = requireWorker(ctxOf(team));
    expect(worker).toEqual({ teamId: "t1", clusterId: undefined });
    expect(() => requireClusterAllowed(worker, "c9")).not.toThrow();
  });

  it("a runner key is refused by requireTeam (deny by default) and may name only its cluster", () => {
    expect(() => requireTeam(ctxOf(runner))).toThrow(PermissionDeniedError);
    const worker = requireWorker(ctxOf(runner));
    expect(worker).toEqual({ teamId: "t1", clusterId: "c1" });
    expect(() => requireClusterAllowed(worker, "c1")).not.toThrow();
    expect(() => requireClusterAllowed(worker, "c2")).toThrow(PermissionDeniedError);
  });

  it("a runner key bound to no cluster can name none", () => {
    expect(() => requireClusterAllowed({ clusterId: "" }, "c1")).toThrow(PermissionDeniedError);
  });
});
