-- Record successful outcomes. ARGV[5] lists, space separated, the task types that never hold a
-- project lock (no handler of theirs takes one, so no hand-over gives them one); from ARGV[6] on,
-- per task: id, result JSON, then the event's type, priority, attempts and trace id as the
-- consumer knows them from its claim, or four '' to have them read from the record (a caller that
-- did not claim the task).
-- A task already terminal (completed elsewhere after a reclaim, cancelled) is left alone: delivery is
-- at-least-once, the first outcome wins.
-- Returns { id, 'stale', status, type } for each task it did not complete (already finished, or
-- its record is gone); every other task given was completed. (Only the exceptions are listed: a
-- batch's reply stays small.)
local out = {}
-- Lease removals and recent-index entries of the whole batch, one command each at the end
-- (`n` counts them: `#` on a growing table costs a search per use).
local released, touched, n = {}, {}, 0
local LOCK_FREE = {}
for t in string.gmatch(ARGV[5], '%S+') do LOCK_FREE[t] = true end
for i = 6, #ARGV, 6 do
  local id, result = ARGV[i], ARGV[i + 1]
  local tk = task_key(id)
  -- One read per task: the status, the project fields finish() would read, and the event's
  -- fields only when the caller does not know them (every field read costs Redis a string into
  -- Lua and a scan of the record).
  local f
  if LOCK_FREE[ARGV[i + 2]] then
    -- Running and of a type that holds no project: only the status is read. (It cannot be
    -- waiting for a project either: a deferred task is pending. A `cancel_requested` an operator
    -- set after the last lease renewal stays on the record: the task completed first.)
    local status = redis.pcall('HGET', tk, 'status')
    if status == 'in_progress' then
      f = {status, ARGV[i + 3], ARGV[i + 2], ARGV[i + 4], ARGV[i + 5], false, false, false}
    end
  end
  if f then
    -- (read above)
  elseif ARGV[i + 2] ~= '' then
    local g = fields(tk, 'status', 'project_lock', 'waiting_for', 'cancel_requested')
    f = {g[1], ARGV[i + 3], ARGV[i + 2], ARGV[i + 4], ARGV[i + 5], g[2], g[3], g[4]}
  else
    f = fields(tk, 'status', 'priority', 'type', 'attempts', 'trace_id', 'project_lock',
      'waiting_for', 'cancel_requested')
  end
  local status = f[1]
  if status == 'in_progress' or status == 'pending' or status == 'retrying' then
    if status == 'pending' then
      -- Reclaimed and requeued meanwhile: its work is done, so take it off the list.
      redis.call('LREM', k('pending:' .. f[2]), 0, id)
    elseif status == 'retrying' then
      redis.call('ZREM', k('retry'), id)
    end
    finish(tk, 'completed', 'result', result, {f[6], f[7], f[8]})
    n = n + 1
    released[n] = id
    touched[2 * n - 1], touched[2 * n] = NOW_S, id
    emit_flat('task.completed', id, f[3] or '', f[2] or '', 'completed', f[4] or '0', f[5] or '')
  else
    out[#out + 1] = {id, 'stale', status or 'missing', f[3] or ''}
  end
end
if n > 0 then
  redis.call('ZREM', k('inflight'), unpack(released))
  redis.call('ZADD', k('recent'), unpack(touched))
  redis.call('ZADD', k('done'), unpack(touched))
  count_outcome('completed', n)
  trim_recent()
end
return out
