--[[
  Puts a stream entry a broker read but never leased back at the end of its stream (a broker
  stopping with entries it could not hand out): acknowledge and delete the old entry, add a copy.
  With a lease token, the entry was leased to a session that closed before it got the Assign: that
  lease (and only that one) is dropped and the attempt is queued again.

  KEYS[1] stream
  KEYS[2] attempt record
  KEYS[3] leases zset       corral:{<cluster>}:leases (touched only with a lease token)

  ARGV[1] consumer group name
  ARGV[2] entry id
  ARGV[3] the TaskEnvelope, base64 protobuf
  ARGV[4] original enqueue time, ms
  ARGV[5] wake channel of the cluster
  ARGV[6] queue name <name>:<version>
  ARGV[7] attempt member <task id>:<attempt> (also the lease member)
  ARGV[8] job id
  ARGV[9] optional: the lease token to drop

  Result: the new entry id, or false when the attempt is no longer queued (only acknowledged).
]]
local s = redis.call('HGET', KEYS[2], 's')
if ARGV[9] and ARGV[9] ~= '' and s == 'leased' then
  if redis.call('HGET', KEYS[2], 'tok') ~= ARGV[9] or redis.call('HGET', KEYS[2], 'e') ~= ARGV[2] then
    -- Another lease or another entry: not ours to give back.
    return false
  end
  redis.call('ZREM', KEYS[3], ARGV[7])
  redis.call('HDEL', KEYS[2], 'tok', 'exp', 'sid', 'b')
  redis.call('HSET', KEYS[2], 's', 'queued')
  s = 'queued'
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
if s ~= false and s ~= 'queued' then
  return false
end
local id = redis.call('XADD', KEYS[1], '*', 'task', ARGV[3], 't', ARGV[4], 'm', ARGV[7], 'j', ARGV[8])
if s == 'queued' then
  redis.call('HSET', KEYS[2], 'e', id)
end
redis.call('PUBLISH', ARGV[5], ARGV[6])
return id
