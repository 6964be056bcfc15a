--[[
  Sets one key of a job's cache, within the job's byte limit, and pushes the job's expiry out.

  KEYS[1] the job's entries (hash)   corral:jc:{<team>/<job>}:v
  KEYS[2] the job's byte count       corral:jc:{<team>/<job>}:n

  ARGV[1] key, ARGV[2] value, ARGV[3] the job's byte limit, ARGV[4] retention, seconds

  A key's entry weighs its key's and its value's bytes; an overwrite gives back the old value's.

  Result: {1, bytes of the job now} when set; {0, bytes of the job now} when the value would take
  the job over its limit (nothing changed).
]]
local size = #ARGV[1] + #ARGV[2]
local old = 0
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  old = #ARGV[1] + redis.call('HSTRLEN', KEYS[1], ARGV[1])
end
local total = tonumber(redis.call('GET', KEYS[2]) or '0')
local after = total - old + size
if after > tonumber(ARGV[3]) then
  return {0, total}
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SET', KEYS[2], after, 'EX', ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return {1, after}
