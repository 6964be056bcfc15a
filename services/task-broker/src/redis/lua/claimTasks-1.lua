--[[
  Turns stream entries a broker just read into leases, or drops them: one call per cluster and
  batch. Duplicate deliveries (an outbox re-send, a re-queued copy, a Redis failover) are
  acknowledged and skipped here.

  KEYS[1] leases zset             corral:{<cluster>}:leases

  ARGV[1] consumer group name
  ARGV[2] record TTL, seconds
  ARGV[3] broker id
  then 9 per entry, from ARGV[4 + 9(i-1)]: its attempt record corral:{<cluster>}:a:<task id>:<attempt>,
  its stream, entry id, lease token, lease expiry (ms since the epoch), session id, lease member
  <task id>:<attempt>, '1' when the task's job (or the task) was revoked, job id

  The caller checks revocations in the same round trip as the claim, so an entry can be leased
  and then found revoked: called again with '1' and the lease's own token, the lease is dropped.

  The per-entry keys travel in ARGV (with the key prefix applied by the caller) so that the one
  declared key routes the call on a Redis Cluster; they share its hash tag, so its slot.

  Result: a status per entry: 'leased'; 'revoked' or 'duplicate' (entry acknowledged and deleted,
  nothing to run); 'inflight' (this very entry already backs a live lease: left pending, nothing
  to run).
]]
local out = {}
for i = 1, (#ARGV - 3) / 9 do
  local a = 3 + 9 * (i - 1)
  local record, stream = ARGV[a + 1], ARGV[a + 2]
  local entry, token, expiry, session = ARGV[a + 3], ARGV[a + 4], ARGV[a + 5], ARGV[a + 6]
  local member, revoked, job = ARGV[a + 7], ARGV[a + 8], ARGV[a + 9]
  local s = redis.call('HGET', record, 's')
  if revoked == '1' then
    local own = s == 'leased' and token ~= '' and redis.call('HGET', record, 'tok') == token
    if s == false or s == 'queued' or own then
      if own then
        redis.call('ZREM', KEYS[1], member)
        redis.call('HDEL', record, 'tok', 'exp', 'sid', 'b')
      end
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
