--[[
  Releases a lease once its result is durable in job-service: the attempt is done, the lease
  leaves the expiry set and the stream entry is acknowledged and deleted (streams hold only
  queued and in-flight entries).

  KEYS[1] attempt record    corral:{<cluster>}:a:<task id>:<attempt>
  KEYS[2] leases zset       corral:{<cluster>}:leases

  ARGV[1] lease token
  ARGV[2] lease member <task id>:<attempt>
  ARGV[3] consumer group name
  ARGV[4] record TTL for the done state, seconds

  Result: 1 when released, 0 when the token does not match (nothing changed).
  The stream key is read from the record: it shares the cluster's hash tag, so it lives in the
  same slot.
]]
local r = redis.call('HMGET', KEYS[1], 's', 'tok', 'q', 'e')
if r[2] ~= ARGV[1] then
  return 0
end
if r[1] == 'leased' then
  redis.call('ZREM', KEYS[2], ARGV[2])
end
if r[1] ~= 'expired' then
  redis.call('HSET', KEYS[1], 's', 'done')
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
if r[3] and r[4] then
  redis.call('XACK', r[3], ARGV[3], r[4])
  redis.call('XDEL', r[3], r[4])
end
return 1
