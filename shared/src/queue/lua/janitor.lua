-- Delete consumers that are idle past a limit and have nothing pending (e.g. SIGKILLed ones
-- whose entries were reclaimed). KEYS: stream. ARGV: group, min idle ms, own consumer name.
-- Returns how many were deleted.
local ok, consumers = pcall(redis.call, 'XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
if not ok then return 0 end
local removed = 0
for _, c in ipairs(consumers) do
  local name, pending, idle
  for i = 1, #c, 2 do
    if c[i] == 'name' then name = c[i + 1]
    elseif c[i] == 'pending' then pending = c[i + 1]
    elseif c[i] == 'idle' then idle = c[i + 1] end
  end
  if name and name ~= ARGV[3] and pending == 0 and idle and idle >= tonumber(ARGV[2]) then
    local check = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, name)
    if #check == 0 then
      redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], name)
      removed = removed + 1
    end
  end
end
return removed
