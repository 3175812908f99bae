-- A consumer stopped a running task because an operator cancelled it. ARGV[6] consumer,
-- ARGV[7] task id, ARGV[8] record TTL (s). Returns 1 when the task was marked cancelled.
local consumer, id, ttl = ARGV[6], ARGV[7], tonumber(ARGV[8])
local tk = task_key(id)
local f = redis.call('HMGET', tk, 'status', 'worker')
if f[1] ~= 'in_progress' or f[2] ~= consumer then return 0 end
redis.call('ZREM', k('inflight'), id)
redis.call('HSET', tk, 'status', 'cancelled', 'completed_at', NOW_ISO, 'error', 'cancelled while running')
redis.call('HDEL', tk, 'worker', 'cancel_requested')
redis.call('EXPIRE', tk, ttl)
redis.call('HINCRBY', k('counters'), 'cancelled_total', 1)
touch(id)
emit('task.cancelled', id)
trim_recent()
return 1
