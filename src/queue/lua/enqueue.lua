-- Enqueue a batch of tasks atomically.
-- ARGV[5] idempotency TTL (s, as a string: passed on to SET as it is); then per task:
--   id, priority, run_at_ms (0 = now), idempotency key ('' = none), n, then n field/value pairs.
-- Returns { position, existing id } (position from 1, in submission order) for each task whose
-- idempotency key matched an existing task, which was then not created; every other task given
-- was created. (Only the exceptions are listed: a batch's reply stays small.)
-- One HSET per record (a ready task's `ready_ms` included); the event is built from the fields
-- given, and the recent-index entries of the batch go in one ZADD.
-- The fields come in the order the store sends them (type, status, trace_id, priority, source,
-- max_retries, created_at, then attempts when not 0, payload when not {}, then the optional ones,
-- see TaskRecord::to_fields): the event's fields are read at their usual places.

-- The value of field `name` among the pairs ARGV[first..last]: looked up at pair `slot` first (the
-- order the store sends them in), else searched for.
local function field_at(first, last, name, slot)
  local at = first + 2 * slot
  if ARGV[at] == name then return ARGV[at + 1] end
  for j = first, last - 1, 2 do
    if ARGV[j] == name then return ARGV[j + 1] end
  end
  return nil
end

-- The attempts of a new task: written (after created_at, pair 7) only when not 0.
local function attempts_at(first, last)
  local at = first + 14
  if at < last and ARGV[at] == 'attempts' then return ARGV[at + 1] end
  return '0'
end

local out = {}
local ready = 0
local touched, nt = {}, 0
-- Ready ids per priority, in submission order: one LPUSH per priority at the end (the same order
-- as one LPUSH each).
local pushes = {}
-- Pair counts met so far, as numbers (a batch has a handful of distinct counts: no tonumber,
-- which runs strtod, per task).
local COUNTS = {}
local i, argc, pos = 6, #ARGV, 0
while i <= argc do
  pos = pos + 1
  local id, prio, run_at, idem, n_s = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local n = COUNTS[n_s]
  if not n then
    n = tonumber(n_s) or 0
    COUNTS[n_s] = n
  end
  local first = i + 5
  i = first + 2 * n
  local existing = nil
  if idem ~= '' then
    local ik = k('idem:' .. idem)
    local prev = rcall('GET', ik)
    if prev and rcall('EXISTS', task_key(prev)) == 1 then
      existing = prev
    else
      rcall('SET', ik, id, 'EX', ARGV[5])
    end
  end
  if existing then
    out[#out + 1] = {pos, existing}
  else
    local last = first + 2 * n - 1
    local delayed = run_at ~= '0' and (tonumber(run_at) or 0) > NOW
    -- The given pairs go to HSET straight from ARGV (no table of them is built).
    if delayed then
      rcall('HSET', task_key(id), unpack(ARGV, first, last))
      rcall('ZADD', k('delayed'), ARGV[first - 3], id)
    else
      rcall('HSET', task_key(id), 'ready_ms', NOW_S, unpack(ARGV, first, last))
      local list = pushes[prio]
      if not list then
        list = {}
        pushes[prio] = list
      end
      list[#list + 1] = id
      ready = ready + 1
    end
    nt = nt + 2
    touched[nt - 1], touched[nt] = NOW_S, id
    -- The id, type, priority, status and attempts are the store's own (a UUID, names, a
    -- count); only the trace id is free text.
    local trace = field_at(first, last, 'trace_id', 2) or ''
    if find(trace, SEP, 1, true) then trace = sep_free(trace) end
    emit_flat('task.created', id, field_at(first, last, 'type', 0) or '', prio,
      field_at(first, last, 'status', 1) or '', attempts_at(first, last), trace)
  end
end
for prio, ids in pairs(pushes) do
  rcall('LPUSH', k('pending:' .. prio), unpack(ids))
end
if nt > 0 then
  rcall('ZADD', k('recent'), unpack(touched))
end
trim_recent()
wake(ready)
return out
