--[[
  Adds ready attempts that name a concurrency key or a rate limit to their key's waiting list
  instead of a stream, once per (task id, attempt): one call per cluster and batch. Attempts
  without either go through enqueueTasks, untouched.

  KEYS[1] queues set of the cluster   corral:{<cluster>}:queues

  ARGV[1] the cluster's key base <key prefix>corral:{<cluster>}:
  ARGV[2] enqueue time, ms since the epoch
  then 11 per task, from ARGV[3 + 11(i-1)]: attempt member <task id>:<attempt>, job id, team id,
  the TaskEnvelope (base64 protobuf), band queue <name>:<version>[!p<N>], execution timeout ms
  (0: none), concurrency key ('' none), its limit, rate limit name ('' none), its limit, its
  period ms

  The attempt record <base>a:<member> holds the envelope and the gate (s 'waiting', no TTL: it is
  the only copy until claimed). Its gate key is 'k:<concurrency key>', else 'r:<rate limit name>';
  the member goes to the end of <base>gw:<band queue>|<gate key>, and a gate key whose list was
  empty (and that is not parked) joins the ring <base>gr:<band queue> that claimGated takes turns
  on. The queue set learns '<band queue>!g' (the dispatch groups find gated queues there), and
  the hash <base>gn counts the attempts waiting per band queue (queue statistics).

  Result: per task 1 when added, 0 when the attempt was already known. The caller publishes one
  wake-up '<band queue>!g' per queue and batch.
]]
local base = ARGV[1]
local out = {}
local known = {}
for i = 1, (#ARGV - 2) / 11 do
  local a = 2 + 11 * (i - 1)
  local member, bq, ck, rn = ARGV[a + 1], ARGV[a + 5], ARGV[a + 7], ARGV[a + 9]
  local record = base .. 'a:' .. member
  if redis.call('EXISTS', record) == 1 then
    out[i] = 0
  else
    if not known[bq] then
      redis.call('SADD', KEYS[1], bq .. '!g')
      known[bq] = true
    end
    redis.call('HSET', record, 's', 'waiting', 'j', ARGV[a + 2], 'tm', ARGV[a + 3], 'task', ARGV[a + 4],
      'gq', bq, 't', ARGV[2])
    if ARGV[a + 6] ~= '0' then redis.call('HSET', record, 'x', ARGV[a + 6]) end
    local gk
    if ck ~= '' then
      redis.call('HSET', record, 'ck', ck, 'cl', ARGV[a + 8])
      gk = 'k:' .. ck
    end
    if rn ~= '' then
      redis.call('HSET', record, 'rn', rn, 'rl', ARGV[a + 10], 'rp', ARGV[a + 11])
      gk = gk or ('r:' .. rn)
    end
    redis.call('HINCRBY', base .. 'gn', bq, 1)
    local list = base .. 'gw:' .. bq .. '|' .. gk
    if redis.call('RPUSH', list, member) == 1 then
      if ck == '' or redis.call('SISMEMBER', base .. 'cp:' .. ck, bq) == 0 then
        redis.call('RPUSH', base .. 'gr:' .. bq, gk)
      end
    end
    out[i] = 1
  end
end
return out
