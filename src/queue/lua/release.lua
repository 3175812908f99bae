-- Hand leases back without burning an attempt (graceful shutdown / pool stop).
-- ARGV[6] consumer; task ids from ARGV[7] on. Returns how many went back to pending.
local consumer = ARGV[6]
local n = 0
for i = 7, #ARGV do
  local id = ARGV[i]
  local tk = task_key(id)
  local f = redis.call('HMGET', tk, 'status', 'worker', 'priority')
  if f[1] == 'in_progress' and f[2] == consumer then
    redis.call('HINCRBY', tk, 'attempts', -1)
    requeue_front(id, f[3], 'handed back on shutdown')
    n = n + 1
  end
end
wake(n)
return n
