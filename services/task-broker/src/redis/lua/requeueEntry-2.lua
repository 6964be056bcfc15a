--[[
  Puts a stream entry a broker read but never leased back at the end of its stream (a broker
  stopping with entries it could not hand out): acknowledge and delete the old entry, add a copy.

  KEYS[1] stream
  KEYS[2] attempt record

  ARGV[1] consumer group name
  ARGV[2] entry id
  ARGV[3] the TaskEnvelope, base64 protobuf
  ARGV[4] original enqueue time, ms
  ARGV[5] wake channel of the cluster
  ARGV[6] queue name <name>:<version>

  Result: the new entry id, or false when the attempt is no longer queued (only acknowledged).
]]
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
local s = redis.call('HGET', KEYS[2], 's')
if s ~= false and s ~= 'queued' then
  return false
end
local id = redis.call('XADD', KEYS[1], '*', 'task', ARGV[3], 't', ARGV[4])
if s == 'queued' then
  redis.call('HSET', KEYS[2], 'e', id)
end
redis.call('PUBLISH', ARGV[5], ARGV[6])
return id
