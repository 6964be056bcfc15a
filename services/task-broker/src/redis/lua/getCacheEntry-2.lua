--[[
  Reads one key of a job's cache and pushes the job's expiry out (a cache in use stays).

  KEYS[1] the job's entries (hash)   corral:jc:{<team>/<job>}:v
  KEYS[2] the job's byte count       corral:jc:{<team>/<job>}:n

  ARGV[1] key, ARGV[2] retention, seconds

  Result: {1, value} when the key has a value, {0} when not.
]]
local value = redis.call('HGET', KEYS[1], ARGV[1])
if redis.call('EXPIRE', KEYS[1], ARGV[2]) == 1 then
  redis.call('EXPIRE', KEYS[2], ARGV[2])
end
if value then
  return {1, value}
end
return {0}
