-- Take project ARGV[7]'s lock for task ARGV[5], run by consumer ARGV[6], for ARGV[8] ms (its
-- lease; renewed with it). Free, or already this task's (a retry, a reclaim, a hand-over):
-- taken. Held by another task: the task is deferred atomically (no attempt burnt, its lease
-- dropped) into `project:<p>:waiting`, scored by priority then ready time, and runs when the
-- holder lets go (`hand_over` in the prelude).
-- Returns { outcome, detail }: `acquired`; `waiting` (detail: the holder's id); `cancelled` (an
-- operator asked meanwhile); `stale` (detail: the status; this consumer no longer holds it).
local id, consumer, p, lease = ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8])
local tk = task_key(id)
local f = fields(tk, 'status', 'worker', 'priority', 'ready_ms', 'cancel_requested')
if f[1] ~= 'in_progress' or f[2] ~= consumer then return {'stale', f[1] or 'missing'} end
local lk = project_key(p)
local holder = rcall('GET', lk)
if not holder or holder == id then
  rcall('SET', lk, id, 'PX', lease)
  rcall('HSET', tk, 'project_lock', p)
  return {'acquired', ''}
end
if f[5] == '1' then
  cancel_now(id, 'cancelled while waiting for project ' .. p)
  trim_recent()
  return {'cancelled', ''}
end
rcall('HDEL', tk, 'worker', 'project_lock', 'started_at')
rcall('HINCRBY', tk, 'attempts', -1)
rcall('HSET', tk, 'status', 'pending', 'waiting_for', p, 'waiting_holder', holder,
  'lease_ms', lease)
rcall('ZREM', k('inflight'), id)
local rank = tonumber(string.sub(f[3] or 'P2', 2)) or 2
local score = rank * 1e13 + (tonumber(f[4]) or NOW)
rcall('ZADD', lk .. ':waiting', score, id)
rcall('SADD', k('projects:waiting'), p)
touch(id)
trim_recent()
emit('task.waiting_for_project', id, 'project ' .. p .. ' is busy with task ' .. holder, nil,
  {project = p, holder = holder})
return {'waiting', holder}
