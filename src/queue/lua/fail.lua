-- Record failed attempts of consumer ARGV[5]; then quadruples: id, reason, retryable ('1'/'0'),
-- back-off ms. Only the consumer that holds the task can fail it: a stale report from a consumer
-- whose lease lapsed (the task was reclaimed, maybe claimed again) is ignored.
-- This script alone decides what a failure leads to:
--   an operator cancelled it while it ran          -> cancelled
--   retryable and attempts <= max_retries          -> retrying, scheduled in `retry` at now + back-off
--   otherwise                                      -> failed, dead-lettered in `failed` (replayable)
-- Returns, per task, { id, outcome, detail, type }: `retrying` (detail: when, epoch ms),
-- `dead_lettered` (detail: the reason stored), `cancelled` (detail: the reason stored) or `stale`.
local consumer = ARGV[5]
local out = {}
for i = 6, #ARGV, 4 do
  local id, reason, retryable, backoff = ARGV[i], ARGV[i + 1], ARGV[i + 2] == '1', tonumber(ARGV[i + 3])
  local tk = task_key(id)
  local f = fields(tk, 'status', 'attempts', 'max_retries', 'worker', 'cancel_requested', 'type')
  local ty = f[6] or ''
  if f[1] == 'in_progress' and f[4] == consumer then
    local attempts, max_retries = tonumber(f[2]) or 0, tonumber(f[3]) or 0
    if f[5] == '1' then
      local why = 'cancelled while running; last error: ' .. reason
      cancel_now(id, why)
      out[#out + 1] = {id, 'cancelled', why, ty}
    elseif retryable and attempts <= max_retries then
      local at = NOW + backoff
      rcall('HSET', tk, 'status', 'retrying', 'error', reason)
      rcall('HDEL', tk, 'worker')
      rcall('ZREM', k('inflight'), id)
      rcall('ZADD', k('retry'), at, id)
      keep_project_through(id, tk, backoff)
      count_outcome('retried', 1)
      touch(id)
      emit('task.retrying', id, reason)
      out[#out + 1] = {id, 'retrying', tostring(at), ty}
    else
      if retryable then
        reason = reason .. ' (gave up after ' .. attempts .. ' attempts)'
      end
      dead_letter(id, reason)
      out[#out + 1] = {id, 'dead_lettered', reason, ty}
    end
  else
    out[#out + 1] = {id, 'stale', f[1] or 'missing', ty}
  end
end
trim_recent()
return out
