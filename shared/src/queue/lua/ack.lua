-- Ack a finished job: XACK + XDEL, only if this consumer still owns it (XPENDING names it), so a
-- worker that stalled and was replaced cannot settle its successor's attempt.
-- KEYS: stream. ARGV: group, entry id, consumer. Returns 1 when acked, 0 when not ours.
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #p == 0 or p[1][2] ~= ARGV[3] then
  return 0
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
