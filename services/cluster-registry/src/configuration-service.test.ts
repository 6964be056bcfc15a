import { Code, ConnectError } from "@connectrpc/connect";
import { ClusterService, ConfigurationService, LocationService } from "@corral/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { codeOf, startRegistryHarness, type RegistryHarness } from "./test-harness.js";

describe("ConfigurationService", () => {
  let h: RegistryHarness;
  beforeAll(async () => {
    h = await startRegistryHarness("configurations");
  });
  afterAll(() => h?.close());

  it("has corral/default built in, for every team, undeletable", async () => {
    for (const key of [h.teamA.key, h.teamB.key]) {
      const { configuration } = await h.client(ConfigurationService, key).getConfiguration({ name: "corral/default" });
      expect(configuration?.builtin).toBe(true);
      expect(configuration?.spec?.runnerCount).toBeGreaterThan(0);
    }
    expect(await codeOf(h.client(ConfigurationService).deleteConfiguration({ name: "corral/default" }))).toBe(
      Code.FailedPrecondition,
    );
    expect(
      await codeOf(h.client(ConfigurationService).createConfiguration({ name: "corral/default", spec: {} })),
    ).toBe(Code.InvalidArgument);
  });

  it("refuses to delete a configuration a cluster was made from, naming the cluster", async () => {
    const configs = h.client(ConfigurationService);
    await configs.createConfiguration({ name: "team/in-use", spec: { runnerCount: 1 } });
    const { cluster } = await h.client(ClusterService).createCluster({ name: "made from it", configuration: "team/in-use" });
    const err = await configs.deleteConfiguration({ name: "team/in-use" }).catch((e: unknown) => ConnectError.from(e));
    expect(err).toMatchObject({ code: Code.FailedPrecondition });
    expect((err as ConnectError).rawMessage).toContain(cluster!.slug);
    expect((await configs.getConfiguration({ name: "team/in-use" })).configuration?.name).toBe("team/in-use");
    await h.client(ClusterService).deleteCluster({ slug: cluster!.slug });
    await configs.deleteConfiguration({ name: "team/in-use" });
    expect(await codeOf(configs.getConfiguration({ name: "team/in-use" }))).toBe(Code.NotFound);
  });

  it("creates, gets, lists and deletes a team's configurations", async () => {
    const configs = h.client(ConfigurationService);
    const { configuration } = await configs.createConfiguration({
      name: "gpu/large",
      description: "big",
      spec: { runnerCount: 4, runnerMemoryBytes: 2n ** 40n, configuration: "ignored" },
    });
    expect(configuration).toMatchObject({ name: "gpu/large", description: "big", builtin: false });
    expect(configuration?.spec?.runnerMemoryBytes).toBe(2n ** 40n);
    expect(configuration?.spec?.configuration).toBeUndefined();
    expect(await codeOf(configs.createConfiguration({ name: "gpu/large" }))).toBe(Code.AlreadyExists);

    const got = await configs.getConfiguration({ name: "gpu/large" });
    expect(got.configuration?.spec?.runnerCount).toBe(4);

    await configs.createConfiguration({ name: "a-first" });
    await configs.createConfiguration({ name: "z-last" });
    const names: string[] = [];
    let pageToken = "";
    do {
      const page = await configs.listConfigurations({ pageSize: 2, pageToken });
      names.push(...page.configurations.map((c) => c.name));
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    expect(names).toEqual(["a-first", "corral/default", "gpu/large", "z-last"]);

    await configs.deleteConfiguration({ name: "z-last" });
    expect(await codeOf(configs.getConfiguration({ name: "z-last" }))).toBe(Code.NotFound);
    expect(await codeOf(configs.deleteConfiguration({ name: "z-last" }))).toBe(Code.NotFound);
  });

  it("keeps teams' configurations apart", async () => {
    await h.client(ConfigurationService).createConfiguration({ name: "shared-name", spec: { runnerCount: 1 } });
    const b = h.client(ConfigurationService, h.teamB.key);
    expect(await codeOf(b.getConfiguration({ name: "shared-name" }))).toBe(Code.NotFound);
    expect(await codeOf(b.deleteConfiguration({ name: "shared-name" }))).toBe(Code.NotFound);
    const listed = await b.listConfigurations({});
    expect(listed.configurations.map((c) => c.name)).toEqual(["corral/default"]);
    // The same name in another team is a different configuration.
    const { configuration } = await b.createConfiguration({ name: "shared-name", spec: { runnerCount: 2 } });
    expect(configuration?.spec?.runnerCount).toBe(2);
    const a = await h.client(ConfigurationService).getConfiguration({ name: "shared-name" });
    expect(a.configuration?.spec?.runnerCount).toBe(1);
  });

  it("checks the locations and hardware a configuration names", async () => {
    const configs = h.client(ConfigurationService);
    expect(
      await codeOf(configs.createConfiguration({ name: "lost", spec: { locationId: "0190a4d2-0000-7000-8000-000000000000" } })),
    ).toBe(Code.NotFound);
    const theirs = await h.client(LocationService, h.teamB.key).createLocation({ name: "b", provider: "p" });
    expect(
      await codeOf(configs.createConfiguration({ name: "lost", spec: { locationId: theirs.location!.id } })),
    ).toBe(Code.NotFound);
    expect(await codeOf(configs.createConfiguration({ name: "lost", spec: { hardwareId: "nope" } }))).toBe(
      Code.NotFound,
    );
  });

  it("rejects invalid input for every bounded field", async () => {
    const configs = h.client(ConfigurationService);
    for (const name of ["", "n".repeat(129), "/leading-slash", "has space"]) {
      expect(await codeOf(configs.createConfiguration({ name })), name).toBe(Code.InvalidArgument);
    }
    expect(await codeOf(configs.createConfiguration({ name: "ok", description: "d".repeat(2001) }))).toBe(
      Code.InvalidArgument,
    );
    expect(await codeOf(configs.createConfiguration({ name: "ok", spec: { runnerCount: 100_001 } }))).toBe(
      Code.InvalidArgument,
    );
    expect(await codeOf(configs.getConfiguration({ name: "" }))).toBe(Code.InvalidArgument);
    expect(await codeOf(configs.getConfiguration({ name: "n".repeat(129) }))).toBe(Code.InvalidArgument);
    expect(await codeOf(configs.deleteConfiguration({ name: "" }))).toBe(Code.InvalidArgument);
    expect(await codeOf(configs.listConfigurations({ pageSize: 1001 }))).toBe(Code.InvalidArgument);
    expect(await codeOf(configs.listConfigurations({ pageToken: "%%%" }))).toBe(Code.InvalidArgument);
  });
});
