--[[
  Shared by the scripts that end a gated attempt's lease (completeLeases, expireLeases,
  requeueGated) and by claimGated: each names it on an `--! include gate-slots` line.

  A concurrency key's running attempts are the sorted set <base>cc:<key> (lease member -> lease
  expiry, ms). A key found at its limit is parked: taken off the rings of the band queues it waits
  in, which are remembered in the set <base>cp:<key> (and the key in <base>pk). Freeing a slot
  puts a parked key back on those rings and publishes '<band queue>!g' on the cluster's wake
  channel, so the dispatch groups reading them claim again.
]]
local function unparkKey(base, ck, channel)
  local parked = base .. 'cp:' .. ck
  local queues = redis.call('SMEMBERS', parked)
  if #queues == 0 then return end
  redis.call('DEL', parked)
  redis.call('SREM', base .. 'pk', ck)
  for _, bq in ipairs(queues) do
    redis.call('RPUSH', base .. 'gr:' .. bq, 'k:' .. ck)
    if channel ~= '' then redis.call('PUBLISH', channel, bq .. '!g') end
  end
end

-- The lease `member` of concurrency key `ck` ended: its slot is free (ZREM: exactly once).
local function freeSlot(base, member, ck, channel)
  if redis.call('ZREM', base .. 'cc:' .. ck, member) == 1 then
    unparkKey(base, ck, channel)
  end
end
