// Why queued work waits, from the online runners: one test per rule.
import { describe, expect, it } from "vitest";
import { jobWaitReasons, runnerMissing, serves } from "./wait-reasons.js";

const id = (s: string) => {
  const [name, version] = s.split("@");
  return { name: name!, version: version! };
};
const group = (cluster: string, identifier: string, n = 1) => ({
  cluster_slug: cluster,
  identifier_name: id(identifier).name,
  identifier_version: id(identifier).version,
  n,
});

describe("serves", () => {
  it("takes the same name and major with a minor at least the task's", () => {
    expect(serves(id("my/Leaf@v1.3"), id("my/Leaf@v1.2"))).toBe(true);
    expect(serves(id("my/Leaf@v1.2"), id("my/Leaf@v1.2"))).toBe(true);
    expect(serves(id("my/Leaf@v1.1"), id("my/Leaf@v1.2"))).toBe(false);
    expect(serves(id("my/Leaf@v2.5"), id("my/Leaf@v1.2"))).toBe(false);
    expect(serves(id("my/Root@v1.2"), id("my/Leaf@v1.2"))).toBe(false);
  });
});

describe("runnerMissing", () => {
  it("names the cluster when it has no online runner", () => {
    expect(runnerMissing("gpu", id("my/Leaf@v1.2"), new Map())).toBe("no online runner on cluster gpu");
  });

  it("names the identifier when the cluster's runners do not serve it", () => {
    const online = new Map([["gpu", [[id("my/Leaf@v1.0"), id("my/Root@v1.0")]]]]);
    expect(runnerMissing("gpu", id("my/Leaf@v1.2"), online)).toBe("no online runner on cluster gpu serves my/Leaf@v1.2");
  });

  it("has nothing to say when some runner serves it", () => {
    const online = new Map([["gpu", [[id("my/Root@v1.0")], [id("my/Leaf@v1.4")]]]]);
    expect(runnerMissing("gpu", id("my/Leaf@v1.2"), online)).toBeUndefined();
  });
});

describe("jobWaitReasons", () => {
  it("gives one reason per cluster without runners and per identifier not served, with the tasks each holds back", () => {
    const online = new Map([["cpu", [[id("my/Root@v1.0")]]]]);
    const reasons = jobWaitReasons(
      [group("gpu", "my/Leaf@v1.0", 2), group("gpu", "my/Stem@v1.0", 3), group("cpu", "my/Leaf@v1.2", 4), group("cpu", "my/Root@v1.0", 5)],
      online,
    );
    expect(reasons).toEqual([
      { clusterSlug: "gpu", identifier: undefined, tasks: 5, message: "no online runner on cluster gpu" },
      { clusterSlug: "cpu", identifier: id("my/Leaf@v1.2"), tasks: 4, message: "no online runner on cluster cpu serves my/Leaf@v1.2" },
    ]);
  });
});
