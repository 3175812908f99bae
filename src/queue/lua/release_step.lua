-- Record the progress of a `release` task in one atomic step: append entries to the record's step
-- history (`steps`, a JSON list, the newest 100 kept) and set or delete fields of the release's
-- progress hash <base>:release:<id>, which then expires with the failed-record retention. A
-- `deployment_id` progress field is also stored on the record in the same step, so the record and
-- the progress never disagree about the deployment.
-- ARGV[5] task id; ARGV[6] JSON list of step entries (may be empty: "[]");
-- ARGV[7..] field, value pairs of the progress hash ("" as a value deletes the field).
-- Returns 1, or 0 (nothing written) when the record is gone.
local id = ARGV[5]
local tk = task_key(id)
if rcall('TYPE', tk).ok ~= 'hash' then return 0 end
local new = cjson.decode(ARGV[6])
if #new > 0 then
  local raw = rcall('HGET', tk, 'steps')
  local ok, list = pcall(cjson.decode, raw or '[]')
  if not ok or type(list) ~= 'table' then list = {} end
  for _, entry in ipairs(new) do table.insert(list, entry) end
  while #list > 100 do table.remove(list, 1) end
  rcall('HSET', tk, 'steps', cjson.encode(list))
end
if #ARGV >= 8 then
  local pk = k('release:' .. id)
  for i = 7, #ARGV - 1, 2 do
    local f, v = ARGV[i], ARGV[i + 1]
    if v == '' then
      rcall('HDEL', pk, f)
    else
      rcall('HSET', pk, f, v)
      if f == 'deployment_id' then rcall('HSET', tk, 'deployment_id', v) end
    end
  end
  rcall('EXPIRE', pk, RETENTION)
end
return 1
