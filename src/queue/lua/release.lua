-- Hand leases back without burning an attempt (graceful shutdown / pool stop).
-- ARGV[5] consumer; task ids from ARGV[6] on.
-- Returns, per task, { id, outcome, detail, type }: `requeued` (back at the head of its list),
-- `cancelled` (an operator cancelled it meanwhile) or `stale` (this consumer no longer held it).
local consumer = ARGV[5]
local out = {}
local n = 0
for i = 6, #ARGV do
  local id = ARGV[i]
  local tk = task_key(id)
  local f = redis.call('HMGET', tk, 'status', 'worker', 'priority', 'type')
  local ty = f[4] or ''
  if f[1] == 'in_progress' and f[2] == consumer then
    redis.call('HINCRBY', tk, 'attempts', -1)
    if requeue_front(id, f[3], 'handed back on shutdown') then
      n = n + 1
      out[#out + 1] = {id, 'requeued', '', ty}
    else
      out[#out + 1] = {id, 'cancelled', 'cancelled while running', ty}
    end
  else
    out[#out + 1] = {id, 'stale', f[1] or 'missing', ty}
  end
end
wake(n)
return out
