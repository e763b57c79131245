-- Enqueue with dedupe, atomically, in one round trip.
-- KEYS: n dedupe keys, then per job: its stream, its delayed set, its burst hash.
-- ARGV: n, ttl_secs, then per job: job_id, payload, burst window ms (0: no burst), burst cap
--       ms, the job as a delayed-set member (JSON).
-- Returns 1 when queued, 0 when any dedupe key already existed (nothing written).
--
-- A job with a burst window waits in the delayed set instead of the stream: due after the
-- window, or at the burst's cap (first job + cap), whichever comes first. A later job of the
-- same burst (same burst hash) replaces the waiting one and restarts the window; once the
-- waiting job was promoted (no longer in the delayed set), a later job starts a new burst.
-- The replaced job's dedupe keys stay: a redelivery of it is still a duplicate.
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
local jobs = (#KEYS - n) / 3
for j = 0, jobs - 1 do
  local stream, delayed, burst = KEYS[n + 1 + j * 3], KEYS[n + 2 + j * 3], KEYS[n + 3 + j * 3]
  local kind = redis.call('TYPE', stream)['ok']
  if kind ~= 'none' and kind ~= 'stream' then
    return redis.error_reply('WRONGTYPE queue key ' .. stream .. ' holds a ' .. kind .. ', not a stream')
  end
  local dkind = redis.call('TYPE', delayed)['ok']
  if dkind ~= 'none' and dkind ~= 'zset' then
    return redis.error_reply('WRONGTYPE delayed key ' .. delayed .. ' holds a ' .. dkind .. ', not a zset')
  end
end
local now = nil
for j = 0, jobs - 1 do
  local stream, delayed, burst = KEYS[n + 1 + j * 3], KEYS[n + 2 + j * 3], KEYS[n + 3 + j * 3]
  local a = 3 + j * 5
  local window, cap = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  if window > 0 then
    if not now then
      local t = redis.call('TIME')
      now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    end
    local first = now
    local waiting = redis.call('HGET', burst, 'm')
    if waiting and redis.call('ZSCORE', delayed, waiting) then
      redis.call('ZREM', delayed, waiting)
      first = tonumber(redis.call('HGET', burst, 'f')) or now
    end
    local due = math.min(now + window, first + cap)
    redis.call('ZADD', delayed, due, ARGV[a + 4])
    redis.call('HSET', burst, 'm', ARGV[a + 4], 'f', first)
    redis.call('PEXPIRE', burst, cap + window + 60000)
  else
    redis.call('XADD', stream, '*', 'id', ARGV[a], 'a', '0', 'p', ARGV[a + 1])
  end
end
for i = 1, n do
  redis.call('SET', KEYS[i], '1', 'EX', ttl)
end
return 1
