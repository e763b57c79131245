-- Renew the lease of entries this consumer still owns: XCLAIM … 0 … JUSTID (resets the idle
-- time; JUSTID leaves the delivery count alone) only where XPENDING names this consumer, so an
-- entry another worker reclaimed after we stalled is never taken back.
-- KEYS: stream. ARGV: group, consumer, then entry ids.
-- Returns the ids that are no longer ours (reclaimed elsewhere, or settled and gone).
local lost = {}
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if #p == 1 and p[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
  else
    table.insert(lost, ARGV[i])
  end
end
return lost
