-- Replay dead-lettered task ARGV[5]: back to pending with a fresh attempt budget.
-- Returns replayed | not_found | stub (a dead-lettered id that never had a record: nothing to run) |
-- <current status> (only failed tasks can be replayed).
local id = ARGV[5]
local tk = task_key(id)
local f = fields(tk, 'status', 'priority', 'type')
if not f[1] then return 'not_found' end
if f[1] ~= 'failed' then return f[1] end
if f[3] == 'unknown' then return 'stub' end
rcall('ZREM', k('failed'), id)
rcall('PERSIST', tk)
rcall('HSET', tk, 'status', 'pending', 'attempts', 0, 'ready_ms', NOW)
-- A replay is a fresh start: a deploy creates a new deployment rather than resume the failed one.
rcall('HDEL', tk, 'completed_at', 'started_at', 'worker', 'cancel_requested', 'deployment_id', 'inspector_url', 'result')
-- ... and a release starts afresh: its stored progress (deployment, steps done) is dropped.
rcall('DEL', k('release:' .. id))
rcall('LPUSH', k('pending:' .. f[2]), id)
touch(id)
emit('task.requeued', id, 'replayed by an operator')
trim_recent()
wake(1)
return 'replayed'
