-- Reclaim tasks whose lease lapsed (the worker crashed, was killed, or lost Redis). Safe to run from
-- every instance at once: each step is atomic and re-checks the lease deadline.
-- ARGV[5] batch limit. A task that has used all its attempts (it keeps killing workers) is
-- dead-lettered; the others go back to the head of their priority list.
-- Returns { requeued, types of the dead-lettered tasks }.
local limit = tonumber(ARGV[5])
local ids = redis.call('ZRANGEBYSCORE', k('inflight'), '-inf', NOW, 'LIMIT', 0, limit)
local requeued, dead, dead_types = 0, 0, {}
for _, id in ipairs(ids) do
  local tk = task_key(id)
  local f = redis.call('HMGET', tk, 'status', 'attempts', 'max_retries', 'priority', 'cancel_requested')
  if f[1] ~= 'in_progress' then
    redis.call('ZREM', k('inflight'), id)
  elseif f[5] == '1' then
    cancel_now(id, 'cancelled while running (its worker died)')
  elseif (tonumber(f[2]) or 0) > (tonumber(f[3]) or 0) then
    dead_letter(id, 'lease expired on attempt ' .. f[2] .. ' of ' .. ((tonumber(f[3]) or 0) + 1) ..
      ': the worker died or hung while running it')
    dead = dead + 1
    dead_types[#dead_types + 1] = redis.call('HGET', tk, 'type') or 'unknown'
  else
    if requeue_front(id, f[4], 'lease expired: the worker died or hung') then
      requeued = requeued + 1
    end
  end
end
if requeued > 0 then
  redis.call('HINCRBY', k('counters'), 'reclaimed_total', requeued)
  wake(requeued)
end
if requeued + dead > 0 then trim_recent() end
return {requeued, dead_types}
