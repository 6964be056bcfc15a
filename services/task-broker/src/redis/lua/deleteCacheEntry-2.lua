--[[
  Removes one key of a job's cache and gives its bytes back to the job.

  KEYS[1] the job's entries (hash)   corral:jc:{<team>/<job>}:v
  KEYS[2] the job's byte count       corral:jc:{<team>/<job>}:n

  ARGV[1] key

  Result: 1 when the key had a value, 0 when not.
]]
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  return 0
end
local size = #ARGV[1] + redis.call('HSTRLEN', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[2])
else
  redis.call('DECRBY', KEYS[2], size)
end
return 1
