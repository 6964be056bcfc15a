--[[
  Gives back gated attempts leased to a session that closed before it got the Assign: each lease
  (and only that one: its token must match) is dropped, its concurrency slot and rate-limit start
  are returned, and the attempt waits again at the head of its key's list.

  KEYS[1] leases zset             corral:{<cluster>}:leases

  ARGV[1] the cluster's key base <key prefix>corral:{<cluster>}:
  ARGV[2] wake channel of the cluster
  then 2 per attempt: lease member <task id>:<attempt>, lease token

  Result: the number of attempts given back.
]]
--! include gate-slots
local base, channel = ARGV[1], ARGV[2]
local given = 0
for i = 3, #ARGV, 2 do
  local member, token = ARGV[i], ARGV[i + 1]
  local record = base .. 'a:' .. member
  local r = redis.call('HMGET', record, 's', 'tok', 'gq', 'ck', 'rn')
  if r[1] == 'leased' and r[2] == token and r[3] then
    redis.call('ZREM', KEYS[1], member)
    redis.call('HDEL', record, 'tok', 'exp', 'sid', 'b', 'st', 'dl')
    redis.call('HSET', record, 's', 'waiting')
    redis.call('PERSIST', record)
    if r[4] then freeSlot(base, member, r[4], channel) end
    if r[5] then redis.call('ZREM', base .. 'rl:' .. r[5], member) end
    redis.call('HINCRBY', base .. 'gn', r[3], 1)
    local gk = r[4] and ('k:' .. r[4]) or ('r:' .. r[5])
    if redis.call('LPUSH', base .. 'gw:' .. r[3] .. '|' .. gk, member) == 1 then
      redis.call('LPUSH', base .. 'gr:' .. r[3], gk)
    end
    redis.call('PUBLISH', channel, r[3] .. '!g')
    given = given + 1
  end
end
return given
