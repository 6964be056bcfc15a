--[[
  Shared by claimTasks and readClaimTasks: each names it on an `--! include claim-entry` line,
  which scripts.ts replaces with this file (Redis scripts cannot import).

  claimEntry leases one stream entry to a session, or drops it, and answers its status:
  'leased'; 'revoked' (its job or task was revoked after it was queued: a marker
  <base>rv:j:<job id> or <base>rv:t:<task id> holds the revocation time, ms) or 'duplicate'
  (acknowledged and deleted, nothing to run); 'inflight' (this very entry already backs a live
  lease: left pending, nothing to run).

  An attempt with an execution timeout (x, ms, in its record) gets its deadline dl (ms, Redis'
  clock) when leased: heartbeats stop extending the lease after it. A lease joins the expiry set
  `leases` when the script calls flushClaims(leases), which it must before it returns.
]]

-- Within one call (a script runs alone): each job's revocation marker is read once, however many
-- of its entries the call claims, and the leases granted join the expiry set in one ZADD when the
-- script is done (flushClaims, which every script including this one calls before it returns).
local jobMarks = {}
local granted = {}

local function jobMark(base, job)
  local mark = jobMarks[job]
  if mark == nil then
    mark = redis.call('GET', base .. 'rv:j:' .. job)
    jobMarks[job] = mark
  end
  return mark
end

local function flushClaims(leases)
  for i = 1, #granted, 1000 do
    redis.call('ZADD', leases, unpack(granted, i, math.min(i + 999, #granted)))
  end
  granted = {}
end

local function claimEntry(base, leases, group, ttl, broker, record, stream, entry, token, expiry, session, member, job, enqueued)
  local queuedAt = tonumber(string.match(entry, '^(%d+)'))
  local t = tonumber(enqueued)
  if t and t > 0 and t < queuedAt then queuedAt = t end
  local rj = jobMark(base, job)
  local rt = redis.call('GET', base .. 'rv:t:' .. string.match(member, '^(.*):%d+$'))
  local rec = redis.call('HMGET', record, 's', 'x')
  local s = rec[1]
  if (rj and tonumber(rj) >= queuedAt) or (rt and tonumber(rt) >= queuedAt) then
    if s == false or s == 'queued' then
      redis.call('HSET', record, 's', 'revoked', 'q', stream, 'e', entry, 'j', job)
      redis.call('EXPIRE', record, ttl)
    end
    redis.call('XACK', stream, group, entry)
    redis.call('XDEL', stream, entry)
    return 'revoked'
  elseif s == false or s == 'queued' then
    -- A missing record (its TTL ran out while the task waited) is treated as queued: job-service
    -- fences results by attempt anyway.
    redis.call('HSET', record, 's', 'leased', 'tok', token, 'exp', expiry, 'sid', session,
      'b', broker, 'q', stream, 'e', entry, 'j', job)
    if rec[2] then
      local t = redis.call('TIME')
      redis.call('HSET', record, 'dl', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(rec[2]))
    end
    redis.call('EXPIRE', record, ttl)
    granted[#granted + 1] = expiry
    granted[#granted + 1] = member
    return 'leased'
  elseif s == 'leased' and redis.call('HGET', record, 'e') == entry then
    return 'inflight'
  end
  redis.call('XACK', stream, group, entry)
  redis.call('XDEL', stream, entry)
  return 'duplicate'
end
