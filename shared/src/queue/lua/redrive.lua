-- Re-enqueue a dead letter with a fresh attempt count and remove it from the store, atomically.
-- KEYS: stream, dead index, dead items, dead counts.
-- ARGV: dead id, queue, job id, payload, redrives (after this one).
-- Returns 1 when re-enqueued, 0 when the dead letter no longer exists.
local rec = redis.call('HGET', KEYS[3], ARGV[1])
if not rec then
  return 0
end
redis.call('XADD', KEYS[1], '*', 'id', ARGV[3], 'a', '0', 'p', ARGV[4], 'f', '0', 'r', ARGV[5])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HINCRBY', KEYS[4], ARGV[2], -1)
redis.call('HINCRBY', KEYS[4], ':bytes', -#rec)
return 1
