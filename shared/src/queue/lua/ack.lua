-- Ack a finished job: XACK, and XDEL only if this consumer group still had it pending.
-- KEYS: stream. ARGV: group, entry id. Returns 1 when acked, 0 when it was not pending.
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('XDEL', KEYS[1], ARGV[2])
  return 1
end
return 0
