--[[
  Deletes the stream entries of revoked queued attempts (a canceled job's), so they do not wait in
  the streams until the trim or the record's TTL: one call per cluster and batch.

  KEYS[1] queues set of the cluster   corral:{<cluster>}:queues (names the cluster's slot)

  ARGV[1] consumer group name
  ARGV[2] record TTL, seconds
  then per attempt its record corral:{<cluster>}:a:<task id>:<attempt> (key prefix applied by the
  caller, same hash tag as KEYS[1])

  An attempt still 'queued' has its entry acknowledged (it may be pending, read by a broker that
  has not leased it yet) and deleted, and its record turns 'revoked' (a later enqueue of the same
  attempt is a duplicate). A leased attempt is left to the lease revocation; an unknown one (never
  enqueued, or its record expired) has nothing to delete.

  A gated attempt still 'waiting' turns 'revoked'; claimGated drops it from its key's list.

  Result: the number of entries deleted.
]]
local deleted = 0
for i = 3, #ARGV do
  local record = ARGV[i]
  local s = redis.call('HGET', record, 's')
  if s == 'waiting' then
    redis.call('HSET', record, 's', 'revoked')
    redis.call('EXPIRE', record, ARGV[2])
    deleted = deleted + 1
  elseif s == 'queued' then
    local stream, entry = redis.call('HGET', record, 'q'), redis.call('HGET', record, 'e')
    if stream and entry then
      redis.call('XACK', stream, ARGV[1], entry)
      deleted = deleted + redis.call('XDEL', stream, entry)
    end
    redis.call('HSET', record, 's', 'revoked')
    redis.call('EXPIRE', record, ARGV[2])
  end
end
return deleted
