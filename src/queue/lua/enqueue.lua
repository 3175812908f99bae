-- Enqueue a batch of tasks atomically.
-- ARGV[5] idempotency TTL (s); then per task:
--   id, priority, run_at_ms (0 = now), idempotency key ('' = none), n, then n field/value pairs.
-- Returns, per task: { id, created } where created is 1, or 0 when an idempotency key matched an
-- existing task (the id returned is then the existing one).
-- One HSET per record (a ready task's `ready_ms` included); the event is built from the fields
-- given, and the recent-index entries of the batch go in one ZADD.
local idem_ttl = tonumber(ARGV[5])
local out = {}
local ready = 0
local touched = {}
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
    local args, rec = {}, {}
    for j = first, first + 2 * n - 1, 2 do
      local f, v = ARGV[j], ARGV[j + 1]
      args[#args + 1] = f
      args[#args + 1] = v
      if f == 'type' or f == 'priority' or f == 'status' or f == 'attempts' or f == 'trace_id' then
        rec[f] = v
      end
    end
    local delayed = run_at > NOW
    if not delayed then
      args[#args + 1] = 'ready_ms'
      args[#args + 1] = NOW
    end
    redis.call('HSET', task_key(id), unpack(args))
    if delayed then
      redis.call('ZADD', k('delayed'), run_at, id)
    else
      redis.call('LPUSH', k('pending:' .. prio), id)
      ready = ready + 1
    end
    touched[#touched + 1] = NOW
    touched[#touched + 1] = id
    emit('task.created', id, nil, rec)
    out[#out + 1] = {id, 1}
  end
end
if #touched > 0 then
  redis.call('ZADD', k('recent'), unpack(touched))
end
trim_recent()
wake(ready)
return out
