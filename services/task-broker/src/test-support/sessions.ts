// Runner sessions for unit tests of the pieces that take them (presence, dispatch groups, logs):
// one team, one cluster, no identifiers unless given.
import { RunnerSession } from "../runner-session.js";

export function testSession(
  id: string,
  init: Partial<Pick<ConstructorParameters<typeof RunnerSession>[0], "slots" | "identifiers" | "cluster" | "teamId" | "runnerId">> = {},
): RunnerSession {
  return new RunnerSession({
    id,
    teamId: "team-1",
    runnerId: `runner-${id}`,
    cluster: { id: "cluster-1", slug: "c-1" },
    identifiers: [],
    queues: [],
    slots: 2,
    hardware: undefined,
    labels: {},
    sdkVersion: "test",
    ...init,
  });
}
