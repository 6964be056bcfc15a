import { describe, expect, it } from "vitest";
import { ReleaseSet, type DeployedRelease, type ReleaseEffect } from "./release-set.js";

function release(version: string, ids = [{ name: "geo/Tile", version: "v1.0" }], name = "geo"): DeployedRelease {
  return { name, version, digest: `sha256:${version.replaceAll(".", "").padEnd(64, "0")}`, identifiers: ids, nodeEngine: "" };
}

const kinds = (effects: ReleaseEffect[]) => effects.map((e) => ("key" in e ? `${e.kind} ${e.key}` : e.kind));
const tile = { name: "geo/Tile", version: "v1.0" };

describe("ReleaseSet", () => {
  it("loads a deployed release and registers its identifiers only once it loaded", () => {
    const set = new ReleaseSet();
    expect(kinds(set.onDeployments([release("1.0.0")]))).toEqual(["load geo@1.0.0", "reregister", "report"]);
    expect(set.identifiers()).toEqual([]);
    expect(set.route(tile)).toBeUndefined();
    expect(kinds(set.onLoaded("geo@1.0.0", [tile], 0))).toEqual(["reregister", "report"]);
    expect(set.identifiers()).toEqual([tile]);
    expect(set.route(tile)).toBe("geo@1.0.0");
    expect(set.statuses()).toEqual([{ name: "geo", version: "1.0.0", state: "loaded", error: "", restarts: 0 }]);
  });

  it("an update keeps the old version serving until the new one loaded, then drains it and stops it when idle", () => {
    const set = new ReleaseSet();
    set.onDeployments([release("1.0.0")]);
    set.onLoaded("geo@1.0.0", [tile], 0);
    set.onTaskStarted("geo@1.0.0");
    expect(kinds(set.onDeployments([release("1.1.0")]))).toEqual(["load geo@1.1.0", "reregister", "report"]);
    expect(set.route(tile)).toBe("geo@1.0.0");
    expect(set.state("geo@1.0.0")).toBe("loaded");
    set.onLoaded("geo@1.1.0", [tile], 0);
    expect(set.state("geo@1.0.0")).toBe("draining");
    expect(set.route(tile)).toBe("geo@1.1.0");
    expect(kinds(set.onTaskFinished("geo@1.0.0"))).toEqual(["stop geo@1.0.0", "report"]);
    expect(set.keys).toEqual(["geo@1.1.0"]);
  });

  it("an idle replaced version stops as soon as its successor loaded", () => {
    const set = new ReleaseSet();
    set.onDeployments([release("1.0.0")]);
    set.onLoaded("geo@1.0.0", [tile], 0);
    set.onDeployments([release("1.1.0")]);
    expect(kinds(set.onLoaded("geo@1.1.0", [tile], 0))).toEqual(["stop geo@1.0.0", "reregister", "report"]);
  });

  it("undeploying drains at once: nothing is registered and new tasks have no route", () => {
    const set = new ReleaseSet();
    set.onDeployments([release("1.0.0")]);
    set.onLoaded("geo@1.0.0", [tile], 0);
    set.onTaskStarted("geo@1.0.0");
    expect(kinds(set.onDeployments([]))).toEqual(["reregister", "report"]);
    expect(set.state("geo@1.0.0")).toBe("draining");
    expect(set.identifiers()).toEqual([]);
    expect(set.route(tile)).toBeUndefined();
    expect(kinds(set.onTaskFinished("geo@1.0.0"))).toEqual(["stop geo@1.0.0", "report"]);
  });

  it("a version that fails to load is reported with its error; the version it would replace keeps serving", () => {
    const set = new ReleaseSet();
    set.onDeployments([release("1.0.0")]);
    set.onLoaded("geo@1.0.0", [tile], 0);
    set.onDeployments([release("1.1.0")]);
    expect(kinds(set.onLoadFailed("geo@1.1.0", "boom at import"))).toEqual(["stop geo@1.1.0", "reregister", "report"]);
    expect(set.route(tile)).toBe("geo@1.0.0");
    expect(set.statuses()).toContainEqual({ name: "geo", version: "1.1.0", state: "failed", error: "boom at import", restarts: 0 });
  });

  it("a failed release does not stop the others", () => {
    const set = new ReleaseSet();
    const other = { name: "img/Resize", version: "v2.0" };
    set.onDeployments([release("1.0.0"), release("3.0.0", [other], "img")]);
    set.onLoadFailed("geo@1.0.0", "wrong engine");
    set.onLoaded("img@3.0.0", [other], 0);
    expect(set.identifiers()).toEqual([other]);
    expect(set.route(other)).toBe("img@3.0.0");
  });

  it("a crashed version withdraws its identifiers and restarts with doubling backoff, reset after a healthy minute", () => {
    const set = new ReleaseSet({ random: () => 1 });
    set.onDeployments([release("1.0.0")]);
    set.onLoaded("geo@1.0.0", [tile], 0);
    const first = set.onExited("geo@1.0.0", 1_000, "killed by SIGKILL");
    expect(first[0]).toMatchObject({ kind: "load", key: "geo@1.0.0", delayMs: 500 });
    expect(set.identifiers()).toEqual([]);
    expect(set.statuses()[0]).toMatchObject({ state: "loading", restarts: 1 });
    set.onLoaded("geo@1.0.0", [tile], 2_000);
    expect(set.onExited("geo@1.0.0", 3_000, "crash")[0]).toMatchObject({ delayMs: 1_000 });
    set.onLoaded("geo@1.0.0", [tile], 4_000);
    expect(set.onExited("geo@1.0.0", 4_000 + 60_000, "crash")[0]).toMatchObject({ delayMs: 500 });
    expect(set.statuses()[0]!.restarts).toBe(3);
  });

  it("a draining version that crashes is forgotten, not restarted", () => {
    const set = new ReleaseSet();
    set.onDeployments([release("1.0.0")]);
    set.onLoaded("geo@1.0.0", [tile], 0);
    set.onTaskStarted("geo@1.0.0");
    set.onDeployments([]);
    expect(kinds(set.onExited("geo@1.0.0", 10, "crash"))).toEqual(["reregister", "report"]);
    expect(set.keys).toEqual([]);
  });

  it("new tasks go to the newest deployed version when two are loaded", () => {
    const set = new ReleaseSet();
    set.onDeployments([release("1.0.0")]);
    set.onLoaded("geo@1.0.0", [tile], 0);
    set.onTaskStarted("geo@1.0.0");
    set.onDeployments([release("2.0.0", [{ name: "geo/Tile", version: "v1.1" }])]);
    set.onLoaded("geo@2.0.0", [{ name: "geo/Tile", version: "v1.1" }], 0);
    expect(set.route(tile)).toBe("geo@2.0.0");
    expect(set.identifiers()).toEqual([{ name: "geo/Tile", version: "v1.1" }]);
  });

  it("deploying a version again while it drains makes it serve again", () => {
    const set = new ReleaseSet();
    set.onDeployments([release("1.0.0")]);
    set.onLoaded("geo@1.0.0", [tile], 0);
    set.onTaskStarted("geo@1.0.0");
    set.onDeployments([]);
    set.onDeployments([release("1.0.0")]);
    expect(set.state("geo@1.0.0")).toBe("loaded");
    expect(set.route(tile)).toBe("geo@1.0.0");
  });

  it("undeploying a version still loading stops its load", () => {
    const set = new ReleaseSet();
    set.onDeployments([release("1.0.0")]);
    expect(kinds(set.onDeployments([]))).toEqual(["stop geo@1.0.0", "reregister", "report"]);
    expect(set.onLoaded("geo@1.0.0", [tile], 0)).toEqual([]);
  });
});
