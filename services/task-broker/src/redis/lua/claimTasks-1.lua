--[[
  Turns stream entries a broker read earlier (held while no runner had credit, or taken over from
  a broker that died) into leases, or drops them: one call per cluster and batch. Entries read and
  leased at once go through readClaimTasks, which runs the same steps per entry.

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

  Result: a status per entry: 'leased'; 'revoked' (its job or task was revoked after it was
  queued) or 'duplicate' (entry acknowledged and deleted, nothing to run); 'inflight' (this very
  entry already backs a live lease: left pending, nothing to run).
]]
local base = ARGV[4]

-- Queued before a revocation of its job or task (a marker holds the revocation time, ms)?
local function revoked(entry, job, member, enqueued)
  local queuedAt = tonumber(string.match(entry, '^(%d+)'))
  local t = tonumber(enqueued)
  if t and t > 0 and t < queuedAt then queuedAt = t end
  local rj = redis.call('GET', base .. 'rv:j:' .. job)
  if rj and tonumber(rj) >= queuedAt then return true end
  local rt = redis.call('GET', base .. 'rv:t:' .. string.match(member, '^(.*):%d+$'))
  return rt ~= false and tonumber(rt) >= queuedAt
end

local out = {}
for i = 1, (#ARGV - 4) / 9 do
  local a = 4 + 9 * (i - 1)
  local record, stream, entry = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local token, expiry, session, member, job = ARGV[a + 4], ARGV[a + 5], ARGV[a + 6], ARGV[a + 7], ARGV[a + 8]
  local s = redis.call('HGET', record, 's')
  if revoked(entry, job, member, ARGV[a + 9]) then
    if s == false or s == 'queued' then
      redis.call('HSET', record, 's', 'revoked', 'q', stream, 'e', entry, 'j', job)
      redis.call('EXPIRE', record, ARGV[2])
    end
    redis.call('XACK', stream, ARGV[1], entry)
    redis.call('XDEL', stream, entry)
    out[i] = 'revoked'
  elseif s == false or s == 'queued' then
    -- A missing record (its TTL ran out while the task waited) is treated as queued: job-service
    -- fences results by attempt anyway.
    redis.call('HSET', record, 's', 'leased', 'tok', token, 'exp', expiry, 'sid', session,
      'b', ARGV[3], 'q', stream, 'e', entry, 'j', job)
    redis.call('EXPIRE', record, ARGV[2])
    redis.call('ZADD', KEYS[1], expiry, member)
    out[i] = 'leased'
  elseif s == 'leased' and redis.call('HGET', record, 'e') == entry then
    out[i] = 'inflight'
  else
    redis.call('XACK', stream, ARGV[1], entry)
    redis.call('XDEL', stream, entry)
    out[i] = 'duplicate'
  end
end
return out
