-- Delete one dead letter. KEYS: dead index, dead items, dead counts. ARGV: dead id.
-- Returns 1 when deleted, 0 when it did not exist.
local rec = redis.call('HGET', KEYS[2], ARGV[1])
if not rec then
  return 0
end
local ok, d = pcall(cjson.decode, rec)
local q = 'unknown'
if ok and type(d) == 'table' and type(d.queue) == 'string' then q = d.queue end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HINCRBY', KEYS[3], q, -1)
redis.call('HINCRBY', KEYS[3], ':bytes', -#rec)
return 1
