-- Record successful outcomes. ARGV[6] record TTL (s); then pairs: id, result JSON.
-- A task already terminal (completed elsewhere after a reclaim, cancelled) is left alone: delivery is
-- at-least-once, the first outcome wins. Returns the number of tasks completed by this call.
local ttl = tonumber(ARGV[6])
local done = 0
for i = 7, #ARGV, 2 do
  local id, result = ARGV[i], ARGV[i + 1]
  local tk = task_key(id)
  local status = redis.call('HGET', tk, 'status')
  if status == 'in_progress' or status == 'pending' or status == 'retrying' then
    if status == 'pending' then
      redis.call('LREM', k('pending:' .. redis.call('HGET', tk, 'priority')), 0, id)
    end
    redis.call('ZREM', k('retry'), id)
    redis.call('HSET', tk, 'status', 'completed', 'completed_at', NOW_ISO, 'result', result)
    redis.call('HDEL', tk, 'worker', 'cancel_requested')
    redis.call('ZREM', k('inflight'), id)
    redis.call('EXPIRE', tk, ttl)
    touch(id)
    emit('task.completed', id)
    done = done + 1
  end
end
if done > 0 then
  count_outcome('completed', done)
  trim_recent()
end
return done
