-- Cancel task ARGV[6]. Waiting tasks are cancelled at once; a running one is flagged and its
-- consumer stops it at the next lease renewal. ARGV[7] record TTL (s).
-- Returns the outcome: cancelled | cancelling | not_found | <terminal status>.
local id, ttl = ARGV[6], tonumber(ARGV[7])
local tk = task_key(id)
local f = redis.call('HMGET', tk, 'status', 'priority')
local status = f[1]
if not status then return 'not_found' end
if status == 'in_progress' then
  redis.call('HSET', tk, 'cancel_requested', '1')
  return 'cancelling'
end
if status == 'pending' or status == 'retrying' then
  redis.call('LREM', k('pending:' .. f[2]), 0, id)
  redis.call('ZREM', k('delayed'), id)
  redis.call('ZREM', k('retry'), id)
  redis.call('HSET', tk, 'status', 'cancelled', 'completed_at', NOW_ISO)
  redis.call('EXPIRE', tk, ttl)
  redis.call('HINCRBY', k('counters'), 'cancelled_total', 1)
  touch(id)
  emit('task.cancelled', id)
  trim_recent()
  return 'cancelled'
end
return status
