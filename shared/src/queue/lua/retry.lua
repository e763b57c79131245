-- Schedule a failed job for a later attempt: XACK + XDEL + ZADD delayed, only if still pending.
-- KEYS: stream, delayed. ARGV: group, entry id, due ms, member (JSON {id,a,p,f,r}).
-- Returns 1 when scheduled, 0 when the entry was not pending (someone else owns it now).
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('XDEL', KEYS[1], ARGV[2])
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
  return 1
end
return 0
