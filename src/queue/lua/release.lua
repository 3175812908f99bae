-- Hand leases back without burning an attempt (graceful shutdown / pool stop).
-- ARGV[5] consumer; task ids from ARGV[6] on. Returns how many went back to pending.
local consumer = ARGV[5]
local n = 0
for i = 6, #ARGV do
  local id = ARGV[i]
  local tk = task_key(id)
  local f = redis.call('HMGET', tk, 'status', 'worker', 'priority')
  if f[1] == 'in_progress' and f[2] == consumer then
    redis.call('HINCRBY', tk, 'attempts', -1)
    if requeue_front(id, f[3], 'handed back on shutdown') then n = n + 1 end
  end
end
wake(n)
return n
