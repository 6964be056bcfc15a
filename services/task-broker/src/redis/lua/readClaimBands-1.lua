--[[
  readClaimTasks for a dispatch group that reads priority bands: the same arguments and result,
  but the streams are read one after the other in the order given (highest priority first, or
  lowest first on the caller's starvation turn), each for only as many entries as slots are left,
  so a lower band is read only when the higher ones had fewer entries than slots. Nothing is
  scanned: one XREADGROUP per stream, stopping when the slots are used up. Entries are never
  left 'unclaimed' except those an older broker wrote without their attempt member.

  KEYS[1] leases zset             corral:{<cluster>}:leases

  ARGV[1] .. ARGV[10+n+m]: as readClaimTasks-1 (consumer group, consumer, COUNT per stream (not
  used: each stream is read for the slots left), record TTL, lease expiry, key base, the n streams
  in reading order, token base, the m sessions, the slot map).

  Result: as readClaimTasks-1, per entry read { stream index (1-based), entry id, task, t, m, j,
  status, slot }, in reading order.
]]
--! include claim-entry
local base = ARGV[6]
local n = tonumber(ARGV[7])
local tokenBase = ARGV[8 + n]
local m = tonumber(ARGV[9 + n])
local slotMap = ARGV[10 + n + m]
local slots = #slotMap / 4

local out = {}
local used = 0
for i = 1, n do
  if used >= slots then break end
  local reply = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', slots - used, 'STREAMS', ARGV[7 + i], '>')
  if reply then
    local stream = reply[1][1]
    for _, raw in ipairs(reply[1][2]) do
      if raw[2] then
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
        out[#out + 1] = { i, entry, f.task or '', f.t or '0', f.m or '', f.j or '', status, slot }
      end
    end
  end
end
flushClaims(KEYS[1])
return out
