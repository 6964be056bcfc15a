import { describe, expect, it } from "vitest";
import { parseRunnerPrefix, runnerCommand } from "./runner-command.js";

const launch = { runnerId: "r-7", clusterId: "c", clusterSlug: "etl-AAAA", apiKey: "corral_scoped1_secretsecretsecret", url: "", concurrency: 0 };

describe("runnerCommand", () => {
  it("starts a release runner by default, serving the built-in tasks until a release is deployed", () => {
    const c = runnerCommand(launch, ["node", "corral.js"], "http://registry:7700");
    expect(c.command).toBe("node");
    expect(c.args).toEqual(["corral.js", "runner", "start", "--cluster", "etl-AAAA", "--runner-id", "r-7", "--concurrency", "1", "--fallback-builtins"]);
    // The key travels in the environment, never on the command line (ps shows arguments to everyone).
    expect(c.args.join(" ")).not.toContain("corral_scoped1");
    expect(c.env).toEqual({
      CORRAL_URL: "http://registry:7700",
      CORRAL_REGISTRY_URL: "http://registry:7700",
      CORRAL_API_KEY: launch.apiKey,
      CORRAL_PARENT_PIPE_FD: "3",
    });
  });

  it("serves the built-in tasks when asked, and uses the launch's url when it names one", () => {
    const c = runnerCommand({ ...launch, url: "http://broker:7703", concurrency: 4 }, ["corral"], "http://registry:7700", "builtins");
    expect(c.args).toEqual(["runner", "start", "--cluster", "etl-AAAA", "--runner-id", "r-7", "--concurrency", "4", "--builtins"]);
    expect(c.env.CORRAL_URL).toBe("http://broker:7703");
  });

  it("sends the Work stream to the launch's url and release calls to its registry_url", () => {
    const c = runnerCommand({ ...launch, url: "http://broker:7703", registryUrl: "http://registry:7701" }, ["corral"], "http://agent-side:7700");
    expect(c.env).toMatchObject({ CORRAL_URL: "http://broker:7703", CORRAL_REGISTRY_URL: "http://registry:7701" });
  });
});

describe("parseRunnerPrefix (CORRAL_AGENT_RUNNER_COMMAND)", () => {
  it("reads words or a JSON array; empty means the default", () => {
    expect(parseRunnerPrefix("node  /opt/fake.mjs")).toEqual(["node", "/opt/fake.mjs"]);
    expect(parseRunnerPrefix('["/usr/bin/node", "/path with space/x.mjs"]')).toEqual(["/usr/bin/node", "/path with space/x.mjs"]);
    expect(parseRunnerPrefix(undefined)).toBeUndefined();
    expect(parseRunnerPrefix("  ")).toBeUndefined();
    expect(() => parseRunnerPrefix("[1]")).toThrow(/CORRAL_AGENT_RUNNER_COMMAND/);
  });
});
