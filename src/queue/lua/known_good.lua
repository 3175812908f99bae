-- Known-good releases of one project: a list of deployment ids (newest first) and a hash of their
-- entries (JSON), both under <base>:releases:<project>. KEYS[1] is the events stream (routing only).
-- ARGV[5] op: "record" or "mark"; ARGV[6] project; ARGV[7] deployment id;
-- record: ARGV[8] entry JSON, ARGV[9] how many releases to keep. Returns 1 when added, 0 when the
--   deployment was already recorded (a retried attempt), so recording is safe to repeat.
-- mark: ARGV[8] new status ("good" or "rolled_back"). Returns 1 when changed, 0 when unknown.
local ids = B .. ':releases:' .. ARGV[6]
local entries = ids .. ':entries'
local id = ARGV[7]
if ARGV[5] == 'record' then
  if rcall('HEXISTS', entries, id) == 1 then return 0 end
  rcall('LPUSH', ids, id)
  rcall('HSET', entries, id, ARGV[8])
  local keep = tonumber(ARGV[9])
  local dropped = rcall('LRANGE', ids, keep, -1)
  for _, old in ipairs(dropped) do rcall('HDEL', entries, old) end
  rcall('LTRIM', ids, 0, keep - 1)
  return 1
end
local raw = rcall('HGET', entries, id)
if not raw then return 0 end
local ok, entry = pcall(cjson.decode, raw)
if not ok or type(entry) ~= 'table' then return 0 end
entry['status'] = ARGV[8]
rcall('HSET', entries, id, cjson.encode(entry))
return 1
