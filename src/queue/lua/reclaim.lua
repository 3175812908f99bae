-- Reclaim tasks whose lease lapsed (the worker crashed, was killed, or lost Redis). Safe to run from
-- every instance at once: each step is atomic and re-checks the lease deadline.
-- ARGV[5] batch limit. A task that has used all its attempts (it keeps killing workers) is
-- dead-lettered; the others go back to the head of their priority list.
-- Returns, per task, { id, outcome, detail, type }: `requeued`, `dead_lettered` (detail: the
-- reason), `cancelled` (an operator had asked) or `stale` (the entry outlived its task).
local limit = tonumber(ARGV[5])
local ids = rcall('ZRANGEBYSCORE', k('inflight'), '-inf', NOW, 'LIMIT', 0, limit)
local out = {}
local requeued = 0
for _, id in ipairs(ids) do
  local tk = task_key(id)
  local f = fields(tk, 'status', 'attempts', 'max_retries', 'priority', 'cancel_requested', 'type')
  local ty = f[6] or ''
  if f[1] ~= 'in_progress' then
    rcall('ZREM', k('inflight'), id)
    out[#out + 1] = {id, 'stale', f[1] or 'missing', ty}
  elseif f[5] == '1' then
    local why = 'cancelled while running (its worker died)'
    cancel_now(id, why)
    out[#out + 1] = {id, 'cancelled', why, ty}
  elseif (tonumber(f[2]) or 0) > (tonumber(f[3]) or 0) then
    local why = 'lease expired on attempt ' .. f[2] .. ' of ' .. ((tonumber(f[3]) or 0) + 1) ..
      ': the worker died or hung while running it'
    dead_letter(id, why)
    out[#out + 1] = {id, 'dead_lettered', why, ty}
  elseif requeue_front(id, f[4], 'lease expired: the worker died or hung') then
    -- Its worker is gone: the project it held goes to the next waiter.
    free_project(id, tk)
    requeued = requeued + 1
    out[#out + 1] = {id, 'requeued', '', ty}
  else
    out[#out + 1] = {id, 'cancelled', 'cancelled while running', ty}
  end
end
if requeued > 0 then
  rcall('HINCRBY', k('counters'), 'reclaimed_total', requeued)
  wake(requeued)
end
if #out > 0 then trim_recent() end
return out
