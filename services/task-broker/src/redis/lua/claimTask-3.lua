--[[
  Turns a stream entry a broker just read into a lease, or drops it. Duplicate deliveries (an
  outbox re-send, a re-queued copy, a Redis failover) are acknowledged and skipped here.

  KEYS[1] attempt record    corral:{<cluster>}:a:<task id>:<attempt>
  KEYS[2] leases zset       corral:{<cluster>}:leases
  KEYS[3] stream            the entry's stream

  ARGV[1] consumer group name
  ARGV[2] entry id
  ARGV[3] lease token
  ARGV[4] lease expiry, ms since the epoch
  ARGV[5] session id
  ARGV[6] broker id
  ARGV[7] lease member <task id>:<attempt>
  ARGV[8] '1' when the task's job (or the task) was revoked
  ARGV[9] record TTL, seconds
  ARGV[10] job id

  Result: 'leased'; 'revoked' or 'duplicate' (entry acknowledged and deleted, nothing to run); 'inflight'
  (this very entry already backs a live lease: left pending, nothing to run).
]]
local s = redis.call('HGET', KEYS[1], 's')
if ARGV[8] == '1' then
  if s == false or s == 'queued' then
    redis.call('HSET', KEYS[1], 's', 'revoked', 'q', KEYS[3], 'e', ARGV[2], 'j', ARGV[10])
    redis.call('EXPIRE', KEYS[1], ARGV[9])
  end
  redis.call('XACK', KEYS[3], ARGV[1], ARGV[2])
  redis.call('XDEL', KEYS[3], ARGV[2])
  return 'revoked'
end
-- A missing record (its TTL ran out while the task waited) is treated as queued: job-service
-- fences results by attempt anyway.
if s == false or s == 'queued' then
  redis.call('HSET', KEYS[1], 's', 'leased', 'tok', ARGV[3], 'exp', ARGV[4], 'sid', ARGV[5],
    'b', ARGV[6], 'q', KEYS[3], 'e', ARGV[2], 'j', ARGV[10])
  redis.call('EXPIRE', KEYS[1], ARGV[9])
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[7])
  return 'leased'
end
if s == 'leased' and redis.call('HGET', KEYS[1], 'e') == ARGV[2] then
  return 'inflight'
end
redis.call('XACK', KEYS[3], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[3], ARGV[2])
return 'duplicate'
