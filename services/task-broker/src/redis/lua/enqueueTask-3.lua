--[[
  Adds a ready task attempt to its stream, once per (task id, attempt).

  KEYS[1] stream            corral:{<cluster>}:q:<name>:<version>
  KEYS[2] attempt record    corral:{<cluster>}:a:<task id>:<attempt>
  KEYS[3] queues set        corral:{<cluster>}:queues

  ARGV[1] consumer group name
  ARGV[2] task id
  ARGV[3] attempt
  ARGV[4] job id
  ARGV[5] team id
  ARGV[6] the TaskEnvelope, base64 protobuf
  ARGV[7] enqueue time, ms since the epoch (dispatch latency)
  ARGV[8] record TTL, seconds
  ARGV[9] queue name <name>:<version>

  Result: 1 when added, 0 when the attempt was already known (queued, leased, done or revoked).
  The caller publishes one wake-up per queue and batch (not per task) on the cluster's channel.
]]
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
-- The group is created with the queue (at id 0, so entries added before it are still delivered);
-- BUSYGROUP (it exists after all) is ignored.
if redis.call('SADD', KEYS[3], ARGV[9]) == 1 or redis.call('EXISTS', KEYS[1]) == 0 then
  redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', 'MKSTREAM')
end
local id = redis.call('XADD', KEYS[1], '*', 'task', ARGV[6], 't', ARGV[7])
redis.call('HSET', KEYS[2], 's', 'queued', 'j', ARGV[4], 'tm', ARGV[5], 'q', KEYS[1], 'e', id)
redis.call('EXPIRE', KEYS[2], ARGV[8])
return 1
