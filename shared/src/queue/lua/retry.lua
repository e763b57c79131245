-- Schedule a failed job for a later attempt: XACK + XDEL + ZADD delayed, only if this consumer
-- still owns the entry (XPENDING names it).
-- KEYS: stream, delayed. ARGV: group, entry id, due ms, member (JSON {id,a,p,f,r}), consumer.
-- Returns 1 when scheduled, 0 when the entry is not ours (someone else owns it now).
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #p == 0 or p[1][2] ~= ARGV[5] then
  return 0
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
return 1
