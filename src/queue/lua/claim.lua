-- Claim up to ARGV[7] tasks for consumer ARGV[5], with a lease of ARGV[6] ms.
-- Strict priority P0 > P1 > P2 > P3, FIFO within a priority (LPUSH on enqueue, RPOP here), paused
-- priorities skipped. Each claimed task: status in_progress, attempts + 1, listed in `inflight`
-- scored by its lease deadline. Stale list entries (cancelled or finished tasks) are dropped; an id
-- with no record at all, or whose key is not a hash, is dead-lettered as a stub so an operator can
-- see it. No record can abort the batch.
-- Returns { claimed, skipped }: per claimed task, its id followed by its record as a flat
-- field/value list (as read, then the changed fields: a later pair of a field wins), and { id, outcome, detail, type } per id it did not claim: `dead_lettered` (no record)
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
      -- One RPOP for what is still wanted; every id popped is claimed or accounted for below.
      local ids = redis.call('RPOP', list, want - #out)
      if not ids then break end
      for _, id in ipairs(ids) do
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
          -- One read (HGETALL) and one write per task; the reply is the record as read followed by
          -- the fields the claim changed (the reader keeps a field's last value), so no table of the
          -- record is built. Only the fields the event needs are picked out of it.
          local status, ty, attempts, trace = nil, nil, nil, nil
          for i = 1, #flat, 2 do
            local f = flat[i]
            if f == 'status' then status = flat[i + 1]
            elseif f == 'type' then ty = flat[i + 1]
            elseif f == 'attempts' then attempts = flat[i + 1]
            elseif f == 'trace_id' then trace = flat[i + 1] end
          end
          if status == 'pending' then
            attempts = tostring((tonumber(attempts) or 0) + 1)
            redis.call('HSET', tk, 'status', 'in_progress', 'attempts', attempts,
              'started_at', now_iso(), 'worker', consumer)
            leases[#leases + 1] = NOW + lease
            leases[#leases + 1] = id
            touched[#touched + 1] = NOW
            touched[#touched + 1] = id
            emit('task.started', id, nil,
              {type = ty, priority = prio, status = 'in_progress', attempts = attempts, trace_id = trace})
            local n = #flat
            flat[n + 1], flat[n + 2] = 'status', 'in_progress'
            flat[n + 3], flat[n + 4] = 'attempts', attempts
            flat[n + 5], flat[n + 6] = 'started_at', now_iso()
            flat[n + 7], flat[n + 8] = 'worker', consumer
            -- Not stored: only the consumer uses it (its wait since the task became ready).
            flat[n + 9], flat[n + 10] = 'claimed_ms', tostring(NOW)
            table.insert(flat, 1, id)
            out[#out + 1] = flat
          else
            -- any other status: a stale entry (cancelled / already done); drop it
            skipped[#skipped + 1] = {id, 'stale', status or 'missing', ty or ''}
          end
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
