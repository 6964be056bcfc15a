--[[
  Adds ready task attempts to their streams, once per (task id, attempt): one call per cluster
  and batch.

  KEYS[1] queues set of the cluster   corral:{<cluster>}:queues

  ARGV[1] consumer group name
  ARGV[2] record TTL, seconds
  ARGV[3] enqueue time, ms since the epoch (dispatch latency)
  then 8 per task, from ARGV[4 + 8(i-1)]: its stream corral:{<cluster>}:q:<name>:<version>, its
  attempt record corral:{<cluster>}:a:<task id>:<attempt> (both with the key prefix applied by the
  caller, same hash tag as KEYS[1]), job id, team id, the TaskEnvelope (base64 protobuf), queue
  name <name>:<version>, attempt member <task id>:<attempt>, execution timeout in ms (0: none;
  kept in the record as x, the claim turns it into the lease's deadline dl)

  Each entry holds the envelope (task), the enqueue time (t), the attempt member (m) and the job id
  (j): a reader claims and checks revocations without decoding the envelope.

  Result: per task 1 when added, 0 when the attempt was already known (queued, leased, done or
  revoked). The caller publishes one wake-up per queue and batch on the cluster's channel.
]]
local out = {}
local known = {}
for i = 1, (#ARGV - 3) / 8 do
  local a = 3 + 8 * (i - 1)
  local stream, record = ARGV[a + 1], ARGV[a + 2]
  if redis.call('EXISTS', record) == 1 then
    out[i] = 0
  else
    -- The group is created with the queue (at id 0, so entries added before it are still
    -- delivered); BUSYGROUP (it exists after all) is ignored.
    if not known[stream] then
      if redis.call('SADD', KEYS[1], ARGV[a + 6]) == 1 or redis.call('EXISTS', stream) == 0 then
        redis.pcall('XGROUP', 'CREATE', stream, ARGV[1], '0', 'MKSTREAM')
      end
      known[stream] = true
    end
    local id = redis.call('XADD', stream, '*', 'task', ARGV[a + 5], 't', ARGV[3], 'm', ARGV[a + 7], 'j', ARGV[a + 3])
    if ARGV[a + 8] ~= '0' then
      redis.call('HSET', record, 's', 'queued', 'j', ARGV[a + 3], 'tm', ARGV[a + 4], 'q', stream, 'e', id, 'x', ARGV[a + 8])
    else
      redis.call('HSET', record, 's', 'queued', 'j', ARGV[a + 3], 'tm', ARGV[a + 4], 'q', stream, 'e', id)
    end
    redis.call('EXPIRE', record, ARGV[2])
    out[i] = 1
  end
end
return out
