--[[
  Leases waiting gated attempts (enqueueGated) of a dispatch group's band queues into its slots,
  in one call: per band queue (in the order given: highest priority first, or lowest on the
  caller's starvation turn) it takes turns on the ring of gate keys, each key starting at most
  one attempt per pass over the ring (one key's burst does not hold up the others), passes going
  on while the last one started something and slots are left. The head of a key's list
  starts when
    - its concurrency key runs fewer than the attempt's limit (the running attempts are
      <base>cc:<key>, lease member -> lease expiry; members whose lease expired before the cutoff
      are dropped: a lease lost with its record cannot hold a slot forever), and
    - its rate limit had fewer than its limit of starts in the last period (<base>rl:<name>,
      member -> start time at Redis' clock, ms; a start at t counts the starts after t - period).
  A key at its concurrency limit is parked off the ring (gate-slots.lua) until one of its slots
  frees (<base>gn counts the waiting attempts per band queue down as they leave their lists);
  a key held by its rate limit stays on the ring and the call answers when the limit
  allows the next start. Each call also checks one parked key for lost leases.

  KEYS[1] leases zset             corral:{<cluster>}:leases

  ARGV[1] the cluster's key base <key prefix>corral:{<cluster>}:
  ARGV[2] broker id
  ARGV[3] record TTL, seconds
  ARGV[4] lease expiry, ms since the epoch
  ARGV[5] holder cutoff, ms since the epoch
  ARGV[6] wake channel of the cluster
  ARGV[7] n, the number of band queues; ARGV[8 .. 7+n] the band queues <name>:<version>[!p<N>]
  ARGV[8+n] lease token base (slot k's token is <base>.<k-1>, as readClaimTasks)
  ARGV[9+n] m, the number of sessions; ARGV[10+n .. 9+n+m] their ids
  ARGV[10+n+m] the session of each slot: its index in that list, four hex digits per slot

  Result: { Redis time ms, ms at which a rate limit allows the next start (0: none held a key
  back), { band index (1-based), member, task, t, j, slot (1-based) } per attempt leased }
]]
--! include gate-slots
local base = ARGV[1]
local cutoff = tonumber(ARGV[5])
local channel = ARGV[6]
local n = tonumber(ARGV[7])
local tokenBase = ARGV[8 + n]
local m = tonumber(ARGV[9 + n])
local slotMap = ARGV[10 + n + m]
local slots = #slotMap / 4
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

-- One parked key a call: were its slots held by leases lost with their records?
local parked = redis.call('SRANDMEMBER', base .. 'pk')
if parked and redis.call('ZREMRANGEBYSCORE', base .. 'cc:' .. parked, '-inf', '(' .. cutoff) > 0 then
  unparkKey(base, parked, channel)
end

local out = {}
local used = 0
local retryAt = 0
for i = 1, n do
  if used >= slots then break end
  local bq = ARGV[7 + i]
  local ring = base .. 'gr:' .. bq
  -- A pass gives every key on the ring one turn; passes go on while one of them started something.
  local turns = redis.call('LLEN', ring)
  local started = false
  while used < slots do
    if turns == 0 then
      if not started then break end
      turns = redis.call('LLEN', ring)
      started = false
      if turns == 0 then break end
    end
    turns = turns - 1
    local gk = redis.call('LPOP', ring)
    if not gk then break end
    local list = base .. 'gw:' .. bq .. '|' .. gk
    local member, rec
    -- The head still waiting; attempts revoked (or lost) meanwhile leave the list here.
    while true do
      member = redis.call('LINDEX', list, 0)
      if not member then break end
      local record = base .. 'a:' .. member
      rec = redis.call('HMGET', record, 's', 'j', 't', 'ck', 'cl', 'rn', 'rl', 'rp', 'task', 'x')
      if rec[1] == 'waiting' then
        local queuedAt = tonumber(rec[3]) or 0
        local rj = redis.call('GET', base .. 'rv:j:' .. rec[2])
        local rt = redis.call('GET', base .. 'rv:t:' .. string.match(member, '^(.*):%d+$'))
        if (rj and tonumber(rj) >= queuedAt) or (rt and tonumber(rt) >= queuedAt) then
          redis.call('HSET', record, 's', 'revoked')
          redis.call('EXPIRE', record, ARGV[3])
        else
          break
        end
      end
      redis.call('LPOP', list)
      redis.call('HINCRBY', base .. 'gn', bq, -1)
    end
    if member then
      local verdict = 'start'
      local ck, rn = rec[4], rec[6]
      if ck then
        local cc = base .. 'cc:' .. ck
        redis.call('ZREMRANGEBYSCORE', cc, '-inf', '(' .. cutoff)
        if redis.call('ZCARD', cc) >= tonumber(rec[5]) then verdict = 'full' end
      end
      if verdict == 'start' and rn then
        local log, limit, period = base .. 'rl:' .. rn, tonumber(rec[7]), tonumber(rec[8])
        redis.call('ZREMRANGEBYSCORE', log, '-inf', now - period)
        local count = redis.call('ZCARD', log)
        if count >= limit then
          verdict = 'rate'
          -- The start that must leave the window first: the (count - limit + 1)-th oldest.
          local oldest = redis.call('ZRANGE', log, count - limit, count - limit, 'WITHSCORES')
          local at = tonumber(oldest[2]) + period
          if retryAt == 0 or at < retryAt then retryAt = at end
        end
      end
      if verdict == 'full' then
        redis.call('SADD', base .. 'cp:' .. ck, bq)
        redis.call('SADD', base .. 'pk', ck)
      elseif verdict == 'rate' then
        redis.call('RPUSH', ring, gk)
      else
        redis.call('LPOP', list)
        redis.call('HINCRBY', base .. 'gn', bq, -1)
        used = used + 1
        started = true
        local session = ARGV[9 + n + tonumber(string.sub(slotMap, 4 * used - 3, 4 * used), 16)]
        local record = base .. 'a:' .. member
        redis.call('HSET', record, 's', 'leased', 'tok', tokenBase .. '.' .. (used - 1), 'exp', ARGV[4],
          'sid', session, 'b', ARGV[2], 'st', now)
        if rec[10] then redis.call('HSET', record, 'dl', now + tonumber(rec[10])) end
        redis.call('EXPIRE', record, ARGV[3])
        redis.call('ZADD', KEYS[1], ARGV[4], member)
        if ck then redis.call('ZADD', base .. 'cc:' .. ck, ARGV[4], member) end
        if rn then
          local log = base .. 'rl:' .. rn
          redis.call('ZADD', log, now, member)
          redis.call('PEXPIRE', log, tonumber(rec[8]) + 1000)
        end
        if redis.call('LLEN', list) > 0 then redis.call('RPUSH', ring, gk) end
        out[#out + 1] = { i, member, rec[9] or '', rec[3] or '0', rec[2] or '', used }
      end
    end
  end
end
return { now, retryAt, out }
