-- Enqueue with dedupe, atomically, in one round trip.
-- KEYS: n dedupe keys, then one stream key per job.
-- ARGV: n, ttl_secs, then (job_id, payload) per job.
-- Returns 1 when queued, 0 when any dedupe key already existed (nothing written).
--
-- A Lua script is not rolled back when a command in it fails, so everything that can fail is
-- checked before the first write, and the jobs are written before the dedupe keys: a failure
-- part-way can at worst leave a job without its dedupe key (a retry queues it again, and jobs
-- are idempotent), never a dedupe key without its job (a retry would call it a duplicate and
-- the job would be lost).
local n = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
for i = 1, n do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    return 0
  end
end
for j = n + 1, #KEYS do
  local kind = redis.call('TYPE', KEYS[j])['ok']
  if kind ~= 'none' and kind ~= 'stream' then
    return redis.error_reply('WRONGTYPE queue key ' .. KEYS[j] .. ' holds a ' .. kind .. ', not a stream')
  end
end
for j = n + 1, #KEYS do
  local k = 3 + (j - n - 1) * 2
  redis.call('XADD', KEYS[j], '*', 'id', ARGV[k], 'a', '0', 'p', ARGV[k + 1])
end
for i = 1, n do
  redis.call('SET', KEYS[i], '1', 'EX', ttl)
end
return 1
