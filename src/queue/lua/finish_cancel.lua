-- A consumer stopped a running task because an operator cancelled it. ARGV[5] consumer,
-- ARGV[6] task id. Returns 1 when the task was marked cancelled.
local consumer, id = ARGV[5], ARGV[6]
local f = redis.call('HMGET', task_key(id), 'status', 'worker')
if f[1] ~= 'in_progress' or f[2] ~= consumer then return 0 end
cancel_now(id, 'cancelled while running')
trim_recent()
return 1
