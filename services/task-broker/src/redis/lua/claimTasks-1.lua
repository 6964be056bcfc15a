--[[
  Turns stream entries a broker read earlier (held while no runner had credit, or taken over from
  a broker that died) into leases, or drops them: one call per cluster and batch. Entries read and
  leased at once go through readClaimTasks; both run claimEntry per entry.

  KEYS[1] leases zset             corral:{<cluster>}:leases

  ARGV[1] consumer group name
  ARGV[2] record TTL, seconds
  ARGV[3] broker id
  ARGV[4] the cluster's key base <key prefix>corral:{<cluster>}: (same hash tag as KEYS[1]);
          revocation markers are <base>rv:j:<job id> and <base>rv:t:<task id>
  then 9 per entry, from ARGV[5 + 9(i-1)]: its attempt record corral:{<cluster>}:a:<task id>:<attempt>,
  its stream, entry id, lease token, lease expiry (ms since the epoch), session id, lease member
  <task id>:<attempt>, job id, enqueue time (ms, 0 when unknown)

  The per-entry keys travel in ARGV (with the key prefix applied by the caller) so that the one
  declared key routes the call on a Redis Cluster; they share its hash tag, so its slot.

  Result: claimEntry's status per entry ('leased', 'revoked', 'duplicate', 'inflight').
]]
--! include claim-entry
local out = {}
for i = 1, (#ARGV - 4) / 9 do
  local a = 4 + 9 * (i - 1)
  out[i] = claimEntry(ARGV[4], KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3],
    ARGV[a + 4], ARGV[a + 5], ARGV[a + 6], ARGV[a + 7], ARGV[a + 8], ARGV[a + 9])
end
flushClaims(KEYS[1])
return out
