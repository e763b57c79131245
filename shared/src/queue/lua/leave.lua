-- Delete this consumer from the group if nothing is pending for it (DELCONSUMER would drop them).
-- KEYS: stream. ARGV: group, consumer. Returns 1 when deleted.
local ok, p = pcall(redis.call, 'XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if ok and #p == 0 then
  redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
  return 1
end
return 0
