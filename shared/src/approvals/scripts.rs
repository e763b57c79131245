//! The Lua scripts behind the store's status changes: each checks the current status first,
//! so two operators deciding at once get one success and one conflict.

pub(super) const CREATE_LUA: &str = r#"
-- KEYS: item, pending, all, conversation pointer, decided
-- ARGV: id, doc, score, created_ms, message_id, now_ms, key prefix for items, retention secs,
--       key prefix for evidence
if redis.call('EXISTS', KEYS[1]) == 1 then return 'exists' end
local status = 'pending'
local current = redis.call('GET', KEYS[4])
if current and current ~= ARGV[1] then
  local current_key = ARGV[7] .. current
  local current_msg = tonumber(redis.call('HGET', current_key, 'message_id') or '0')
  if current_msg > tonumber(ARGV[5]) then
    status = 'superseded'
  elseif redis.call('HGET', current_key, 'status') == 'pending' then
    redis.call('HSET', current_key, 'status', 'superseded', 'updated_at_ms', ARGV[6])
    redis.call('ZREM', KEYS[2], current)
    redis.call('EXPIRE', current_key, ARGV[8])
    redis.call('EXPIRE', ARGV[9] .. current, ARGV[8])
    redis.call('ZADD', KEYS[5], ARGV[6], current)
  end
end
redis.call('HSET', KEYS[1], 'doc', ARGV[2], 'status', status, 'message_id', ARGV[5], 'updated_at_ms', ARGV[6])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
if status == 'pending' then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
  redis.call('SET', KEYS[4], ARGV[1])
else
  redis.call('EXPIRE', KEYS[1], ARGV[8])
  redis.call('EXPIRE', ARGV[9] .. ARGV[1], ARGV[8])
  redis.call('ZADD', KEYS[5], ARGV[6], ARGV[1])
end
return status
"#;

pub(super) const DECIDE_LUA: &str = r#"
-- KEYS: item, pending, decided, awaiting follow-up, evidence
-- ARGV: id, new status, decision json, now_ms, retention secs,
--       final ('1': nothing more is owed, the retention starts), follow-up ('1': a job is owed)
if redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'pending' then return 'conflict:' .. status end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'decision', ARGV[3], 'updated_at_ms', ARGV[4])
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[7] == '1' then redis.call('ZADD', KEYS[4], ARGV[4], ARGV[1]) end
if ARGV[6] == '1' then
  redis.call('EXPIRE', KEYS[1], ARGV[5])
  redis.call('EXPIRE', KEYS[5], ARGV[5])
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
end
return 'ok'
"#;

pub(super) const SUPERSEDE_LUA: &str = r#"
-- KEYS: conversation pointer, pending, decided
-- ARGV: newer message id, now_ms, item key prefix, retention secs, evidence key prefix
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
local key = ARGV[3] .. current
local msg = tonumber(redis.call('HGET', key, 'message_id') or '0')
if msg >= tonumber(ARGV[1]) then return 0 end
if redis.call('HGET', key, 'status') ~= 'pending' then return 0 end
redis.call('HSET', key, 'status', 'superseded', 'updated_at_ms', ARGV[2])
redis.call('ZREM', KEYS[2], current)
redis.call('EXPIRE', key, ARGV[4])
redis.call('EXPIRE', ARGV[5] .. current, ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[2], current)
return 1
"#;

pub(super) const TRANSITION_LUA: &str = r#"
-- KEYS: item, pending, decided, awaiting follow-up, evidence
-- ARGV: id, expected statuses (comma list), new status, now_ms, field, value, retention secs,
--       final ('1': nothing more is owed, the retention starts)
if redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end
local status = redis.call('HGET', KEYS[1], 'status')
local ok = false
for s in string.gmatch(ARGV[2], '[^,]+') do if s == status then ok = true end end
if not ok then return 'conflict:' .. status end
redis.call('HSET', KEYS[1], 'status', ARGV[3], 'updated_at_ms', ARGV[4])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], ARGV[5], ARGV[6]) end
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[8] == '1' then
  redis.call('ZREM', KEYS[4], ARGV[1])
  redis.call('EXPIRE', KEYS[1], ARGV[7])
  redis.call('EXPIRE', KEYS[5], ARGV[7])
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
end
return 'ok'
"#;

pub(super) const SWEEP_ONE_LUA: &str = r#"
-- Forgets one approval decided before the retention cut-off (the item, its evidence and
-- outcome, its index entries, the conversation pointers that still name it).
-- KEYS: item, evidence, outcome, all, decided, awaiting, conversation pointer, learning last
-- ARGV: id
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'pending' then
  redis.call('ZREM', KEYS[5], ARGV[1])
  return 0
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
redis.call('ZREM', KEYS[6], ARGV[1])
if redis.call('GET', KEYS[7]) == ARGV[1] then redis.call('DEL', KEYS[7]) end
if redis.call('GET', KEYS[8]) == ARGV[1] then redis.call('DEL', KEYS[8]) end
return 1
"#;
