-- Move a job to the dead letters (only if this consumer still owns it: XPENDING names it), then
-- trim the store by age and count.
-- KEYS: stream, dead index (ZSET id -> last failure ms), dead items (HASH id -> JSON),
--       dead counts (HASH queue -> count).
-- ARGV: group, entry id, dead id, record JSON, queue, now ms, max entries, max age ms, consumer.
-- Returns {stored (1/0), queues trimmed by age, queues trimmed by count}; at most 100 of each.
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #p == 0 or p[1][2] ~= ARGV[9] then
  return {0, {}, {}}
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[3], ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[6], ARGV[3])
redis.call('HINCRBY', KEYS[4], ARGV[5], 1)
local function drop(ids, out)
  for _, id in ipairs(ids) do
    local rec = redis.call('HGET', KEYS[3], id)
    local q = 'unknown'
    if rec then
      local ok, d = pcall(cjson.decode, rec)
      if ok and type(d) == 'table' and type(d.queue) == 'string' then q = d.queue end
      redis.call('HDEL', KEYS[3], id)
      redis.call('HINCRBY', KEYS[4], q, -1)
    end
    redis.call('ZREM', KEYS[2], id)
    table.insert(out, q)
  end
end
local aged = {}
local cutoff = tonumber(ARGV[6]) - tonumber(ARGV[8])
drop(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. cutoff, 'LIMIT', 0, 100), aged)
local counted = {}
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[7])
if excess > 0 then
  if excess > 100 then excess = 100 end
  drop(redis.call('ZRANGE', KEYS[2], 0, excess - 1), counted)
end
return {1, aged, counted}
