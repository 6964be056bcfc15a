--[[
  Heartbeat: extends every lease of one session in one call.

  KEYS[1] leases zset       corral:{<cluster>}:leases
  KEYS[2] record prefix     corral:{<cluster>}:a:  (the record key is prefix .. member)

  ARGV[1] session id
  ARGV[2] new expiry, ms since the epoch
  ARGV[3] now, ms since the epoch
  ARGV[4..] lease members <task id>:<attempt>

  Result: the members that were NOT extended (expired, completed, or resumed by another
  session): the session has lost them.
]]
local lost = {}
for i = 4, #ARGV do
  local m = ARGV[i]
  local k = KEYS[2] .. m
  local r = redis.call('HMGET', k, 's', 'sid', 'exp')
  if r[1] == 'leased' and r[2] == ARGV[1] and tonumber(r[3]) > tonumber(ARGV[3]) then
    redis.call('HSET', k, 'exp', ARGV[2])
    redis.call('ZADD', KEYS[1], 'XX', ARGV[2], m)
  else
    lost[#lost + 1] = m
  end
end
return lost
