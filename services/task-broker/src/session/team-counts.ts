// Open Work sessions per team on this replica, for the per-team cap (sessions live in their
// replica's memory only, so the cap is per replica).
import { ResourceExhaustedError } from "@corral/server-kit";

export interface TeamCounts {
  /** Throws RESOURCE_EXHAUSTED when the team already holds `max` sessions. */
  check(teamId: string): void;
  add(teamId: string): void;
  remove(teamId: string): void;
}

export function createTeamCounts(max: number): TeamCounts {
  const perTeam = new Map<string, number>();
  return {
    check(teamId) {
      if ((perTeam.get(teamId) ?? 0) >= max) {
        throw new ResourceExhaustedError(
          `the team already holds ${max} open Work sessions on this broker (CORRAL_MAX_SESSIONS_PER_TEAM)`,
        );
      }
    },
    add(teamId) {
      perTeam.set(teamId, (perTeam.get(teamId) ?? 0) + 1);
    },
    remove(teamId) {
      const left = (perTeam.get(teamId) ?? 1) - 1;
      if (left > 0) perTeam.set(teamId, left);
      else perTeam.delete(teamId);
    },
  };
}
