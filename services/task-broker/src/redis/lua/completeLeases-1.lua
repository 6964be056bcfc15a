--[[
  Releases leases whose results are durable in job-service: one call per cluster and batch. The
  attempt is done, the lease leaves the expiry set and the stream entry is acknowledged and
  deleted (streams hold only queued and in-flight entries).

  KEYS[1] leases zset             corral:{<cluster>}:leases

  ARGV[1] consumer group name
  ARGV[2] record TTL for the done state, seconds
  ARGV[3] the cluster's key base <key prefix>corral:{<cluster>}: (concurrency slots, gate-slots.lua)
  ARGV[4] wake channel of the cluster
  then 3 per lease, from ARGV[5 + 3(i-1)]: its attempt record corral:{<cluster>}:a:<task id>:<attempt>
  (key prefix applied by the caller, same hash tag as KEYS[1]), lease token, lease member
  <task id>:<attempt>

  A gated attempt's lease frees its concurrency slot here (unless it expired: the reaper did).

  Result: per lease 1 when released, 0 when the token does not match (nothing changed).
  The stream key is read from the record: it shares the cluster's hash tag, so it lives in the
  same slot.
]]
--! include gate-slots
-- The lease set and each stream are changed once per call, for all of its leases (a script runs
-- alone, so nobody sees the state in between).
local released = {}
local entries = {}
local streams = {}
local out = {}
for i = 1, (#ARGV - 4) / 3 do
  local a = 4 + 3 * (i - 1)
  local record, token, member = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local r = redis.call('HMGET', record, 's', 'tok', 'q', 'e', 'ck', 'gq')
  if r[2] ~= token then
    out[i] = 0
  else
    if r[1] == 'leased' then
      released[#released + 1] = member
      if r[5] then freeSlot(ARGV[3], member, r[5], ARGV[4]) end
    end
    if r[1] ~= 'expired' then
      redis.call('HSET', record, 's', 'done')
    end
    -- A gated attempt's record kept its envelope for a give-back (requeueGated): done with it.
    if r[6] then redis.call('HDEL', record, 'task') end
    redis.call('EXPIRE', record, ARGV[2])
    if r[3] and r[4] then
      local ids = entries[r[3]]
      if not ids then
        ids = {}
        entries[r[3]] = ids
        streams[#streams + 1] = r[3]
      end
      ids[#ids + 1] = r[4]
    end
    out[i] = 1
  end
end
for i = 1, #released, 1000 do
  redis.call('ZREM', KEYS[1], unpack(released, i, math.min(i + 999, #released)))
end
for _, stream in ipairs(streams) do
  local ids = entries[stream]
  for i = 1, #ids, 1000 do
    local last = math.min(i + 999, #ids)
    redis.call('XACK', stream, ARGV[1], unpack(ids, i, last))
    redis.call('XDEL', stream, unpack(ids, i, last))
  end
end
return out
