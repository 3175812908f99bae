-- Claim up to ARGV[7] tasks for consumer ARGV[5], with a lease of ARGV[6] ms.
-- Strict priority P0 > P1 > P2 > P3, FIFO within a priority (LPUSH on enqueue, RPOP here), paused
-- priorities skipped. Each claimed task: status in_progress, attempts + 1, listed in `inflight`
-- scored by its lease deadline. Stale list entries (cancelled or finished tasks) are dropped; an id
-- with no record at all is dead-lettered as a stub so an operator can see it.
-- Returns a list of HGETALL replies, one per claimed task.
local consumer, lease, want = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
local paused = {}
for _, p in ipairs(redis.call('SMEMBERS', k('paused'))) do paused[p] = true end
local out = {}
for _, prio in ipairs({'P0', 'P1', 'P2', 'P3'}) do
  if #out >= want then break end
  if not paused[prio] then
    local list = k('pending:' .. prio)
    while #out < want do
      local id = redis.call('RPOP', list)
      if not id then break end
      local tk = task_key(id)
      local status = redis.call('HGET', tk, 'status')
      if status == 'pending' then
        redis.call('HINCRBY', tk, 'attempts', 1)
        redis.call('HSET', tk, 'status', 'in_progress', 'started_at', NOW_ISO, 'worker', consumer,
          'claimed_ms', NOW)
        redis.call('ZADD', k('inflight'), NOW + lease, id)
        touch(id)
        emit('task.started', id)
        out[#out + 1] = redis.call('HGETALL', tk)
      elseif not status then
        redis.call('HSET', tk, 'task_id', id, 'type', 'unknown', 'priority', prio, 'payload', '{}',
          'attempts', 0, 'max_retries', 0, 'created_at', NOW_ISO)
        dead_letter(id, 'the queue held an id with no task record (written to Redis by hand?)')
      end
    end
  end
end
if #out > 0 then trim_recent() end
return out
