--[[
  Reads new entries of a dispatch group's streams and leases them in the same call: the read, the
  revocation check and the claim cost one round trip. Each entry with a slot goes through
  claimEntry (lua/includes/claim-entry.lua), as in claimTasks.

  KEYS[1] leases zset             corral:{<cluster>}:leases

  ARGV[1] consumer group name
  ARGV[2] consumer (the broker id; also recorded as the lease's broker)
  ARGV[3] COUNT per stream
  ARGV[4] record TTL, seconds
  ARGV[5] lease expiry, ms since the epoch
  ARGV[6] the cluster's key base <key prefix>corral:{<cluster>}: (attempt records <base>a:<member>,
          revocation markers <base>rv:j:<job id> and <base>rv:t:<task id>)
  ARGV[7] n, the number of streams; ARGV[8 .. 7+n] the streams (key prefix applied, same hash tag)
  then the slots, the k-th entry read going to the k-th slot:
  ARGV[8+n] lease token base (slot k's token is <base>.<k-1>, queue-store's slotToken)
  ARGV[9+n] m, the number of sessions; ARGV[10+n .. 9+n+m] their ids
  ARGV[10+n+m] the session of each slot: its index in that list, four hex digits per slot

  Result: per entry read (interleaved across streams, as fair as the group's reads):
  { stream index (1-based), entry id, task, t, m, j, status, slot (1-based, 0 when none) }
  status is claimTasks' ('leased', 'revoked', 'duplicate', 'inflight') or 'unclaimed': no slot
  was left, or the entry carries no attempt member (an older broker wrote it); it stays pending
  for this consumer and the caller claims it later.
]]
--! include claim-entry
local base = ARGV[6]
local n = tonumber(ARGV[7])
local tokenBase = ARGV[8 + n]
local m = tonumber(ARGV[9 + n])
local slotMap = ARGV[10 + n + m]
local slots = #slotMap / 4

local read = { 'XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3], 'STREAMS' }
for i = 1, n do read[#read + 1] = ARGV[7 + i] end
for _ = 1, n do read[#read + 1] = '>' end
local reply = redis.call(unpack(read))
if not reply then return {} end

local index = {}
for i = 1, n do index[ARGV[7 + i]] = i end

local out = {}
local used = 0
local longest = 0
for _, s in ipairs(reply) do
  if #s[2] > longest then longest = #s[2] end
end
for k = 1, longest do
  for _, s in ipairs(reply) do
    local stream, raw = s[1], s[2][k]
    if raw and raw[2] then
      local entry, f = raw[1], {}
      for j = 1, #raw[2], 2 do f[raw[2][j]] = raw[2][j + 1] end
      local status, slot = 'unclaimed', 0
      if f.m and f.j and used < slots then
        used = used + 1
        slot = used
        local session = ARGV[9 + n + tonumber(string.sub(slotMap, 4 * slot - 3, 4 * slot), 16)]
        local token = tokenBase .. '.' .. (slot - 1)
        status = claimEntry(base, KEYS[1], ARGV[1], ARGV[4], ARGV[2], base .. 'a:' .. f.m, stream, entry,
          token, ARGV[5], session, f.m, f.j, f.t)
      end
      out[#out + 1] = { index[stream], entry, f.task or '', f.t or '0', f.m or '', f.j or '', status, slot }
    end
  end
end
flushClaims(KEYS[1])
return out
