-- Give claimed but unstarted entries back to the queue at shutdown: XACK + XDEL + XADD anew.
-- KEYS: stream. ARGV: group, consumer, then per entry: entry id, job id, attempts, payload,
-- first failure ms, redrives.
-- Returns how many were given back (entries no longer ours are skipped).
local n = 0
for i = 3, #ARGV, 6 do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if #p == 1 and p[1][2] == ARGV[2] then
    redis.call('XACK', KEYS[1], ARGV[1], ARGV[i])
    redis.call('XDEL', KEYS[1], ARGV[i])
    redis.call('XADD', KEYS[1], '*', 'id', ARGV[i + 1], 'a', ARGV[i + 2], 'p', ARGV[i + 3], 'f', ARGV[i + 4], 'r', ARGV[i + 5])
    n = n + 1
  end
end
return n
