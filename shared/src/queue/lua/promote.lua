-- Move due retries from the delayed set back to the stream: one bounded step.
-- KEYS: stream, delayed. ARGV: now ms, limit. Returns how many were moved.
-- A member that is not valid JSON is still moved (as an undecodable entry), so the consumer
-- dead-letters it instead of it vanishing or blocking the set.
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(due) do
  local ok, d = pcall(cjson.decode, m)
  if ok and type(d) == 'table' and type(d.id) == 'string' and type(d.p) == 'string' then
    redis.call('XADD', KEYS[1], '*', 'id', d.id, 'a', tostring(d.a), 'p', d.p, 'f', tostring(d.f), 'r', tostring(d.r))
  else
    redis.call('XADD', KEYS[1], '*', 'id', 'corrupt-delayed-member', 'a', '0', 'p', m)
  end
  redis.call('ZREM', KEYS[2], m)
end
return #due
