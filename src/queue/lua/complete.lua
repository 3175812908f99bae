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
-- What finish() is told of a running task of a lock-free type: no project held or awaited, no
-- cancel flag read (one table for all of them).
local NOTHING_HELD = {false, false, false}

-- The task's status, priority, type, attempts, trace id and the fields finish() reads, with one
-- read of the record: the event's fields are the consumer's when it gave them (ARGV[i + 2] on),
-- and every field read costs Redis a string into Lua and a scan of the record.
local function read(i, tk)
  local ty = ARGV[i + 2]
  if LOCK_FREE[ty] then
    -- Running and of a type that holds no project: only the status is read. (It cannot be
    -- waiting for a project either: a deferred task is pending. A `cancel_requested` an operator
    -- set after the last lease renewal stays on the record: the task completed first.)
    local status = rpcall('HGET', tk, 'status')
    if status == 'in_progress' then
      return status, ARGV[i + 3], ty, ARGV[i + 4], ARGV[i + 5], NOTHING_HELD
    end
  end
  if ty ~= '' then
    local g = fields(tk, 'status', 'project_lock', 'waiting_for', 'cancel_requested')
    return g[1], ARGV[i + 3], ty, ARGV[i + 4], ARGV[i + 5], {g[2], g[3], g[4]}
  end
  local f = fields(tk, 'status', 'priority', 'type', 'attempts', 'trace_id', 'project_lock',
    'waiting_for', 'cancel_requested')
  return f[1], f[2], f[3], f[4], f[5], {f[6], f[7], f[8]}
end

for i = 6, #ARGV, 6 do
  local id = ARGV[i]
  local tk = task_key(id)
  local status, prio, ty, attempts, trace, held = read(i, tk)
  if status == 'in_progress' or status == 'pending' or status == 'retrying' then
    if status == 'pending' then
      -- Reclaimed and requeued meanwhile: its work is done, so take it off the list.
      rcall('LREM', k('pending:' .. prio), 0, id)
    elseif status == 'retrying' then
      rcall('ZREM', k('retry'), id)
    end
    finish(tk, 'completed', 'result', ARGV[i + 1], held)
    n = n + 1
    released[n] = id
    touched[2 * n - 1], touched[2 * n] = NOW_S, id
    -- The trace id (as the claim read it) may hold anything; so may the id and type when they
    -- were read from the record. (A consumer's facts name a type by its own spelling, and it
    -- completes only tasks whose id decoded as a UUID.)
    local eid, ety, etr = id, ty or '', trace or ''
    if ARGV[i + 2] == '' then
      if find(eid .. ety .. etr, SEP, 1, true) then
        eid, ety, etr = sep_free(eid), sep_free(ety), sep_free(etr)
      end
    elseif find(etr, SEP, 1, true) then
      etr = sep_free(etr)
    end
    emit_flat('task.completed', eid, ety, prio or '', 'completed', attempts or '0', etr)
  else
    out[#out + 1] = {id, 'stale', status or 'missing', ty or ''}
  end
end
if n > 0 then
  rcall('ZREM', k('inflight'), unpack(released))
  rcall('ZADD', k('recent'), unpack(touched))
  rcall('ZADD', k('done'), unpack(touched))
  count_outcome('completed', n)
  trim_recent()
end
return out
