// Granting what a claim of a dispatch group leased: each lease goes to Assignments (an Assign to
// its session), unless its session closed or moved to another group meanwhile: then it goes back
// to its stream. Credit left unused (revoked, duplicate or in-flight entries) wakes the group.
import type { Logger } from "pino";
import type { ClaimRequest, ClaimStatus, QueueStore } from "../redis/queue-store.js";
import type { RunnerSession } from "../runner-session.js";
import type { Assignments } from "../session/assignments.js";
import type { DispatchGroup } from "./dispatch-group.js";
import type { GroupMembership } from "./dispatch-groups.js";

export interface GrantContext {
  queues: QueueStore;
  membership: GroupMembership;
  assignments: Assignments;
  logger: Logger;
}

/**
 * Hands out what a claim leased (the sessions' reservations are already undone); leases of a
 * session that closed meanwhile go back to their streams.
 */
export async function grantLeases(
  g: DispatchGroup,
  ctx: GrantContext,
  requests: ClaimRequest[],
  targets: RunnerSession[],
  statuses: ClaimStatus[],
): Promise<void> {
  let unused = false;
  const orphaned: ClaimRequest[] = [];
  requests.forEach((r, i) => {
    if (statuses[i] !== "leased") unused = true;
    // The stream ended, or the runner reregistered away from this group, while this entry was
    // being claimed: it goes back to its stream for the group that reads it now.
    else if (targets[i]!.state === "closed" || ctx.membership.groupOf(targets[i]!.id) !== g) orphaned.push(r);
    else ctx.assignments.granted(targets[i]!, r.entry, r.token, r.expiryMs);
  });
  if (orphaned.length > 0) {
    await ctx.queues.release(orphaned).catch((err: unknown) => {
      ctx.logger.warn({ err, count: orphaned.length }, "could not give back leases of a closed session; they expire");
    });
    unused = true;
    // A session that moved to another group reads there with the credit this left open.
    for (const r of orphaned) {
      const moved = ctx.membership.groupOf(r.sessionId);
      if (moved && moved !== g) moved.signal.wake();
    }
  }
  // Revoked, duplicate or in-flight entries left their session's credit open: read again.
  if (unused) g.signal.wake();
}

