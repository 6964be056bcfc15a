// Members of a dispatch group take turns, and keep taking them in order as members leave.
import { expect, it } from "vitest";
import { testSession } from "../test-support/sessions.js";
import { createGroupMembers } from "./group-members.js";

const session = (id: string, slots = 1) => testSession(id, { slots });

it("gives turns round-robin and keeps the order when members before, at or after the turn leave", () => {
  const members = createGroupMembers();
  const [a, b, c, d, e] = ["a", "b", "c", "d", "e"].map((id) => session(id, 100));
  for (const s of [a, b, c, d, e]) members.add(s!);
  const turns = (n: number) => members.reserveSlots(n).map((s) => s.id);
  expect(turns(2)).toEqual(["a", "b"]);
  // The next turn is c's; a member before it leaves.
  members.remove(a!);
  expect(turns(1)).toEqual(["c"]);
  // The next turn is d's; d itself leaves, so it passes to e.
  members.remove(d!);
  expect(turns(1)).toEqual(["e"]);
  // The next turn wraps to b; the last member leaves (after the turn).
  members.remove(e!);
  expect(turns(3)).toEqual(["b", "c", "b"]);
  members.remove(a!); // not a member any more: nothing changes
  expect(members.size).toBe(2);
  members.remove(c!);
  members.remove(b!);
  expect(members.size).toBe(0);
  expect(turns(1)).toEqual([]);
});

it("removes thousands of members one by one", () => {
  const members = createGroupMembers();
  const all = Array.from({ length: 5_000 }, (_, i) => session(`s${i}`));
  for (const s of all) members.add(s);
  expect(members.available()).toBe(5_000);
  for (const s of all.slice(0, 4_999)) members.remove(s);
  expect(members.size).toBe(1);
  expect(members.reserveNext()?.id).toBe("s4999");
});
