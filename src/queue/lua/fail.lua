-- Record failed attempts of consumer ARGV[5]; then quadruples: id, reason, retryable ('1'/'0'),
-- back-off ms. Only the consumer that holds the task can fail it: a stale report from a consumer
-- whose lease lapsed (the task was reclaimed, maybe claimed again) is ignored.
-- Retryable and attempts <= max_retries: `retrying`, scheduled in `retry` at now + back-off.
-- Otherwise: `failed`, dead-lettered in `failed` with the reason (replayable).
-- A task an operator cancelled while it ran is cancelled instead of retried.
-- Returns { retried, dead_lettered }.
local consumer = ARGV[5]
local retried, dead = 0, 0
for i = 6, #ARGV, 4 do
  local id, reason, retryable, backoff = ARGV[i], ARGV[i + 1], ARGV[i + 2] == '1', tonumber(ARGV[i + 3])
  local tk = task_key(id)
  local f = redis.call('HMGET', tk, 'status', 'attempts', 'max_retries', 'worker', 'cancel_requested')
  if f[1] == 'in_progress' and f[4] == consumer then
    local attempts, max_retries = tonumber(f[2]) or 0, tonumber(f[3]) or 0
    if f[5] == '1' then
      cancel_now(id, 'cancelled while running; last error: ' .. reason)
    elseif retryable and attempts <= max_retries then
      redis.call('HSET', tk, 'status', 'retrying', 'error', reason)
      redis.call('HDEL', tk, 'worker')
      redis.call('ZREM', k('inflight'), id)
      redis.call('ZADD', k('retry'), NOW + backoff, id)
      touch(id)
      emit('task.retrying', id, reason)
      retried = retried + 1
    else
      if retryable then
        reason = reason .. ' (gave up after ' .. attempts .. ' attempts)'
      end
      dead_letter(id, reason)
      dead = dead + 1
    end
  end
end
trim_recent()
return {retried, dead}
