-- Claim up to ARGV[7] tasks for consumer ARGV[5], with a lease of ARGV[6] ms.
-- Strict priority P0 > P1 > P2 > P3, FIFO within a priority (LPUSH on enqueue, RPOP here), paused
-- priorities skipped. Each claimed task: status in_progress, attempts + 1, listed in `inflight`
-- scored by its lease deadline. Stale list entries (cancelled or finished tasks) are dropped; an id
-- with no record at all, or whose key is not a hash, is dead-lettered as a stub so an operator can
-- see it. No record can abort the batch.
-- Returns { claimed, skipped }: per claimed task, its id followed by its record after the claim as
-- a flat field/value list, and { id, outcome, detail, type } per id it did not claim: `dead_lettered` (no record)
-- or `stale` (the entry outlived a cancelled or finished task).
local consumer, lease, want = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
local paused = {}
for _, p in ipairs(redis.call('SMEMBERS', k('paused'))) do paused[p] = true end
local out = {}
local skipped = {}

-- A minimal record for an id that has none, so it can be dead-lettered visibly.
local function stub(tk, id, prio)
  redis.call('HSET', tk, 'task_id', id, 'type', 'unknown', 'priority', prio, 'payload', '{}',
    'attempts', 0, 'max_retries', 0, 'created_at', now_iso())
end
-- Lease and recent-index entries of the whole batch, written with one ZADD each at the end.
local leases, touched = {}, {}
for _, prio in ipairs({'P0', 'P1', 'P2', 'P3'}) do
  if #out >= want then break end
  if not paused[prio] then
    local list = k('pending:' .. prio)
    while #out < want do
      local id = redis.call('RPOP', list)
      if not id then break end
      local tk = task_key(id)
      local flat = redis.pcall('HGETALL', tk)
      if type(flat) == 'table' and flat.err then
        -- Not a hash (written by hand): keep it for inspection, dead-letter a stub in its place.
        local kind = redis.call('TYPE', tk)['ok'] or 'value'
        redis.call('RENAME', tk, k('corrupt:' .. id))
        stub(tk, id, prio)
        local why = 'the task key held a ' .. kind .. ', not a task record; kept as corrupt:' .. id
        dead_letter(id, why)
        skipped[#skipped + 1] = {id, 'dead_lettered', why, 'unknown'}
      elseif #flat == 0 then
        stub(tk, id, prio)
        local why = 'the queue held an id with no task record (written to Redis by hand?)'
        dead_letter(id, why)
        skipped[#skipped + 1] = {id, 'dead_lettered', why, 'unknown'}
      else
        local rec = {}
        for i = 1, #flat, 2 do rec[flat[i]] = flat[i + 1] end
        if rec.status == 'pending' then
          -- One read (HGETALL) and one write per task; the reply is the updated record.
          local attempts = tostring((tonumber(rec.attempts) or 0) + 1)
          redis.call('HSET', tk, 'status', 'in_progress', 'attempts', attempts,
            'started_at', now_iso(), 'worker', consumer, 'claimed_ms', NOW)
          rec.status, rec.attempts, rec.started_at = 'in_progress', attempts, now_iso()
          rec.worker, rec.claimed_ms = consumer, tostring(NOW)
          leases[#leases + 1] = NOW + lease
          leases[#leases + 1] = id
          touched[#touched + 1] = NOW
          touched[#touched + 1] = id
          emit('task.started', id, nil, rec)
          local reply = {id}
          for f, v in pairs(rec) do
            reply[#reply + 1] = f
            reply[#reply + 1] = v
          end
          out[#out + 1] = reply
        else
          -- any other status: a stale entry (cancelled / already done); drop it
          skipped[#skipped + 1] = {id, 'stale', rec.status or 'missing', rec.type or ''}
        end
      end
    end
  end
end
if #leases > 0 then
  redis.call('ZADD', k('inflight'), unpack(leases))
  redis.call('ZADD', k('recent'), unpack(touched))
  trim_recent()
end
return {out, skipped}
