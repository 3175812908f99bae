-- Record failed attempts. Then quadruples: id, reason, retryable ('1'/'0'), back-off ms.
-- Only a running task can fail (a stale report after a reclaim is ignored).
-- Retryable and attempts <= max_retries: `retrying`, scheduled in `retry` at now + back-off.
-- Otherwise: `failed`, dead-lettered in `failed` with the reason (replayable).
-- Returns { retried, dead_lettered }.
local retried, dead = 0, 0
for i = 6, #ARGV, 4 do
  local id, reason, retryable, backoff = ARGV[i], ARGV[i + 1], ARGV[i + 2] == '1', tonumber(ARGV[i + 3])
  local tk = task_key(id)
  local f = redis.call('HMGET', tk, 'status', 'attempts', 'max_retries')
  if f[1] == 'in_progress' then
    local attempts, max_retries = tonumber(f[2]) or 0, tonumber(f[3]) or 0
    if retryable and attempts <= max_retries then
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
