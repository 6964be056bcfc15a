--[[
  Re-binds leases a runner held on an earlier stream to its new session, when they still exist,
  have not expired and the token matches. Extends them as a heartbeat would.

  KEYS[1] leases zset       corral:{<cluster>}:leases

  ARGV[1] record prefix     <key prefix>corral:{<cluster>}:a: (the record key is prefix .. member;
          same hash tag as KEYS[1], key prefix applied by the caller)
  ARGV[2] session id
  ARGV[3] broker id
  ARGV[4] new expiry, ms since the epoch
  ARGV[5] now, ms since the epoch
  ARGV[6..] pairs: lease member <task id>:<attempt>, token

  Result: flat list of member, job id, stream key (the record's q, with the key prefix) for every
  resumed lease.
]]
local out = {}
for i = 6, #ARGV, 2 do
  local m = ARGV[i]
  local k = ARGV[1] .. m
  local r = redis.call('HMGET', k, 's', 'tok', 'exp', 'j', 'dl', 'q', 'ck')
  if r[1] == 'leased' and r[2] == ARGV[i + 1] and tonumber(r[3]) > tonumber(ARGV[5]) then
    redis.call('HSET', k, 'sid', ARGV[2], 'b', ARGV[3])
    -- Past its execution deadline a lease is not extended (see extendLeases).
    if not r[5] or tonumber(r[5]) > tonumber(ARGV[5]) then
      redis.call('HSET', k, 'exp', ARGV[4])
      redis.call('ZADD', KEYS[1], ARGV[4], m)
      -- A gated attempt's concurrency slot follows its lease (see extendLeases).
      if r[7] then
        redis.call('ZADD', string.sub(ARGV[1], 1, -3) .. 'cc:' .. r[7], 'XX', ARGV[4], m)
      end
    end
    out[#out + 1] = m
    out[#out + 1] = r[4] or ''
    out[#out + 1] = r[6] or ''
  end
end
return out
