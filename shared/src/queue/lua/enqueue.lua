-- Enqueue with dedupe, atomically, in one round trip.
-- KEYS: n dedupe keys, then one stream key per job.
-- ARGV: n, ttl_secs, then (job_id, payload) per job.
-- Returns 1 when queued, 0 when any dedupe key already existed (nothing written).
local n = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
for i = 1, n do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    return 0
  end
end
for i = 1, n do
  redis.call('SET', KEYS[i], '1', 'EX', ttl)
end
for j = n + 1, #KEYS do
  local k = 3 + (j - n - 1) * 2
  redis.call('XADD', KEYS[j], '*', 'id', ARGV[k], 'a', '0', 'p', ARGV[k + 1])
end
return 1
