-- Enqueue a batch of tasks atomically.
-- ARGV[5] idempotency TTL (s); then per task:
--   id, priority, run_at_ms (0 = now), idempotency key ('' = none), n, then n field/value pairs.
-- Returns, per task: { id, created } where created is 1, or 0 when an idempotency key matched an
-- existing task (the id returned is then the existing one).
local idem_ttl = tonumber(ARGV[5])
local out = {}
local ready = 0
local i = 6
while i <= #ARGV do
  local id, prio, run_at, idem, n = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3], tonumber(ARGV[i + 4])
  local first = i + 5
  i = first + 2 * n
  local existing = nil
  if idem ~= '' then
    local ik = k('idem:' .. idem)
    local prev = redis.call('GET', ik)
    if prev and redis.call('EXISTS', task_key(prev)) == 1 then
      existing = prev
    else
      redis.call('SET', ik, id, 'EX', idem_ttl)
    end
  end
  if existing then
    out[#out + 1] = {existing, 0}
  else
    local tk = task_key(id)
    local args = {}
    for j = first, first + 2 * n - 1 do args[#args + 1] = ARGV[j] end
    redis.call('HSET', tk, unpack(args))
    if run_at > NOW then
      redis.call('ZADD', k('delayed'), run_at, id)
    else
      redis.call('HSET', tk, 'ready_ms', NOW)
      redis.call('LPUSH', k('pending:' .. prio), id)
      ready = ready + 1
    end
    touch(id)
    emit('task.created', id)
    out[#out + 1] = {id, 1}
  end
end
trim_recent()
wake(ready)
return out
