--[[
  Re-binds leases a runner held on an earlier stream to its new session, when they still exist,
  have not expired and the token matches. Extends them as a heartbeat would.

  KEYS[1] leases zset       corral:{<cluster>}:leases
  KEYS[2] record prefix     corral:{<cluster>}:a:

  ARGV[1] session id
  ARGV[2] broker id
  ARGV[3] new expiry, ms since the epoch
  ARGV[4] now, ms since the epoch
  ARGV[5..] pairs: lease member <task id>:<attempt>, token

  Result: flat list of member, job id for every resumed lease.
]]
local out = {}
for i = 5, #ARGV, 2 do
  local m = ARGV[i]
  local k = KEYS[2] .. m
  local r = redis.call('HMGET', k, 's', 'tok', 'exp', 'j')
  if r[1] == 'leased' and r[2] == ARGV[i + 1] and tonumber(r[3]) > tonumber(ARGV[4]) then
    redis.call('HSET', k, 'sid', ARGV[1], 'b', ARGV[2], 'exp', ARGV[3])
    redis.call('ZADD', KEYS[1], ARGV[3], m)
    out[#out + 1] = m
    out[#out + 1] = r[4] or ''
  end
end
return out
