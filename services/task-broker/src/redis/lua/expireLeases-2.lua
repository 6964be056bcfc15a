--[[
  Reaper step for one cluster: moves every lease past its expiry out of the lease set (ZREM: of
  two replicas running this at once, only one gets each lease), acknowledges and deletes its
  stream entry and parks it in the expiring set until its expiry is reported to job-service.
  Parked leases whose report deadline passed (the reporting replica died) are handed out again.

  KEYS[1] leases zset       corral:{<cluster>}:leases
  KEYS[2] expiring zset     corral:{<cluster>}:expiring

  ARGV[1] now, ms since the epoch
  ARGV[2] most leases to expire in this call
  ARGV[3] report deadline, ms since the epoch
  ARGV[4] consumer group name
  ARGV[5] record TTL for the expired state, seconds
  ARGV[6] record prefix     <key prefix>corral:{<cluster>}:a: (the record key is prefix .. member;
          same hash tag as KEYS[1], key prefix applied by the caller)
  ARGV[7] the cluster's key base <key prefix>corral:{<cluster>}: (a gated attempt's expired lease
          frees its concurrency slot, gate-slots.lua)
  ARGV[8] wake channel of the cluster

  Result: flat list of member, job id, session id, broker id, timed out ('1' when the lease ran
  out after the attempt's execution deadline dl, else ''), per lease to report.
]]
--! include gate-slots
local out = {}
local stuck = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, m in ipairs(stuck) do
  redis.call('ZADD', KEYS[2], ARGV[3], m)
  local r = redis.call('HMGET', ARGV[6] .. m, 'j', 'sid', 'b', 'to')
  out[#out + 1] = m
  out[#out + 1] = r[1] or ''
  out[#out + 1] = r[2] or ''
  out[#out + 1] = r[3] or ''
  out[#out + 1] = r[4] or ''
end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, m in ipairs(due) do
  redis.call('ZREM', KEYS[1], m)
  local k = ARGV[6] .. m
  local r = redis.call('HMGET', k, 's', 'q', 'e', 'j', 'sid', 'b', 'dl', 'ck')
  if r[1] == 'leased' then
    if r[8] then freeSlot(ARGV[7], m, r[8], ARGV[8]) end
    local timedOut = ''
    if r[7] and tonumber(r[7]) <= tonumber(ARGV[1]) then timedOut = '1' end
    redis.call('HSET', k, 's', 'expired', 'to', timedOut)
    redis.call('EXPIRE', k, ARGV[5])
    if r[2] and r[3] then
      redis.call('XACK', r[2], ARGV[4], r[3])
      redis.call('XDEL', r[2], r[3])
    end
    redis.call('ZADD', KEYS[2], ARGV[3], m)
    out[#out + 1] = m
    out[#out + 1] = r[4] or ''
    out[#out + 1] = r[5] or ''
    out[#out + 1] = r[6] or ''
    out[#out + 1] = timedOut
  end
end
return out
