-- Move a job to the dead letters (only if this consumer still owns it: XPENDING names it), then
-- trim the store by age, count and bytes, oldest first, never trimming a letter of a
-- protected queue (an approved reply not yet sent is owed to a customer).
-- KEYS: stream, dead index (ZSET id -> last failure ms), dead items (HASH id -> JSON),
--       dead counts (HASH queue -> count, plus ':bytes' -> bytes of all records).
-- ARGV: group, entry id, dead id, record JSON, queue, now ms, max entries, max age ms, consumer,
--       max bytes, protected queues (comma-separated).
-- Returns {stored (1/0), queues trimmed by age, by count, by bytes, queues whose letters were
-- kept although over a bound}; at most 200 entries are looked at per call.
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #p == 0 or p[1][2] ~= ARGV[9] then
  return {0, {}, {}, {}, {}}
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
local previous = redis.call('HGET', KEYS[3], ARGV[3])
if previous then
  redis.call('HINCRBY', KEYS[4], ':bytes', -#previous)
else
  redis.call('HINCRBY', KEYS[4], ARGV[5], 1)
end
redis.call('HSET', KEYS[3], ARGV[3], ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[6], ARGV[3])
redis.call('HINCRBY', KEYS[4], ':bytes', #ARGV[4])

local protected = {}
for q in string.gmatch(ARGV[11], '[^,]+') do protected[q] = true end
local function queue_of(rec)
  if rec then
    local ok, d = pcall(cjson.decode, rec)
    if ok and type(d) == 'table' and type(d.queue) == 'string' then return d.queue end
  end
  return 'unknown'
end
local refused = {}
-- Drops one letter unless its queue is protected; returns the bytes freed, or false.
local function try_drop(id, out)
  local rec = redis.call('HGET', KEYS[3], id)
  local q = queue_of(rec)
  if protected[q] then
    table.insert(refused, q)
    return false
  end
  local size = 0
  if rec then
    size = #rec
    redis.call('HDEL', KEYS[3], id)
    redis.call('HINCRBY', KEYS[4], q, -1)
    redis.call('HINCRBY', KEYS[4], ':bytes', -size)
  end
  redis.call('ZREM', KEYS[2], id)
  table.insert(out, q)
  return size
end

local budget = 200
local aged = {}
local cutoff = tonumber(ARGV[6]) - tonumber(ARGV[8])
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. cutoff, 'LIMIT', 0, 100)) do
  budget = budget - 1
  try_drop(id, aged)
end

local counted, sized = {}, {}
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[7])
local bytes = tonumber(redis.call('HGET', KEYS[4], ':bytes') or '0')
local max_bytes = tonumber(ARGV[10])
local kept = 0 -- protected letters at the front of the index, skipped
while (over > 0 or bytes > max_bytes) and budget > 0 do
  local ids = redis.call('ZRANGE', KEYS[2], kept, kept + 49)
  if #ids == 0 then break end
  for _, id in ipairs(ids) do
    if (over <= 0 and bytes <= max_bytes) or budget <= 0 then break end
    budget = budget - 1
    local out = sized
    if over > 0 then out = counted end
    local freed = try_drop(id, out)
    if freed then
      over = over - 1
      bytes = bytes - freed
    else
      kept = kept + 1
    end
  end
end
return {1, aged, counted, sized, refused}
