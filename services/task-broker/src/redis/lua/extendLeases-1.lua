--[[
  Heartbeat: extends every lease of one session in one call.

  KEYS[1] leases zset       corral:{<cluster>}:leases

  ARGV[1] record prefix     <key prefix>corral:{<cluster>}:a: (the record key is prefix .. member;
          same hash tag as KEYS[1], key prefix applied by the caller)
  ARGV[2] session id
  ARGV[3] new expiry, ms since the epoch
  ARGV[4] now, ms since the epoch
  ARGV[5..] lease members <task id>:<attempt>

  A gated attempt's concurrency slot (<key base>cc:<key>, the record prefix without 'a:') follows
  its lease's expiry.

  Result: the members that were NOT extended (expired, completed, or resumed by another
  session): the session has lost them. A lease past its attempt's execution deadline (dl) is
  still held but no longer extended: it expires at its current expiry, a timeout.
]]
local lost = {}
for i = 5, #ARGV do
  local m = ARGV[i]
  local k = ARGV[1] .. m
  local r = redis.call('HMGET', k, 's', 'sid', 'exp', 'dl', 'ck')
  if r[1] == 'leased' and r[2] == ARGV[2] and r[4] and tonumber(r[4]) <= tonumber(ARGV[4]) then
    -- Past its execution deadline: held but not extended; the reaper expires it as a timeout.
  elseif r[1] == 'leased' and r[2] == ARGV[2] and tonumber(r[3]) > tonumber(ARGV[4]) then
    redis.call('HSET', k, 'exp', ARGV[3])
    redis.call('ZADD', KEYS[1], 'XX', ARGV[3], m)
    if r[5] then
      redis.call('ZADD', string.sub(ARGV[1], 1, -3) .. 'cc:' .. r[5], 'XX', ARGV[3], m)
    end
  else
    lost[#lost + 1] = m
  end
end
return lost
