-- Claim up to ARGV[7] tasks for consumer ARGV[5], with a lease of ARGV[6] ms. ARGV[8] lists,
-- space separated, the task types whose handlers read none of the run-state fields (see below).
-- Strict priority P0 > P1 > P2 > P3, FIFO within a priority (LPUSH on enqueue, RPOP here), paused
-- priorities skipped. Each claimed task: status in_progress, attempts + 1, listed in `inflight`
-- scored by its lease deadline. Stale list entries (cancelled or finished tasks) are dropped; an id
-- with no record at all, or whose key is not a hash, is dead-lettered as a stub so an operator can
-- see it. No record can abort the batch.
-- Returns { claimed, skipped, started_at, claimed_ms }: `claimed` is one flat list holding, per
-- claimed task, the values of CLAIM_FIELDS (HMGET order, false when absent; status and attempts
-- as the claim set them) followed by its priority (the list it was popped from) and its id;
-- `skipped` holds { id, outcome, detail, type } per id it did not claim: `dead_lettered` (no
-- record) or `stale` (the entry outlived a cancelled or finished task); then the batch's start
-- time (RFC 3339) and the claim's time in epoch ms.
-- The claim reads only the fields the consumer and the handlers use (src/queue/lifecycle.rs
-- names them in the same order), not the whole record: every field read costs Redis a string
-- through Lua twice (into the script, back out in the reply). The first BASE fields are read for
-- every task; the run state after them (max_retries, created_at, deployment_id, steps) only for a
-- type not listed in ARGV[8] (deploy and release use it; for the others it comes as false). The
-- id is the key's and the priority the list's, so neither is read.
local CLAIM_FIELDS = {'status', 'type', 'attempts', 'trace_id', 'payload', 'ready_ms',
  'max_retries', 'created_at', 'deployment_id', 'steps'}
local BASE = 6
local NF = #CLAIM_FIELDS
local LIGHT = {}
for t in string.gmatch(ARGV[8] or '', '%S+') do LIGHT[t] = true end
local STRIDE = NF + 2
local consumer, lease, want = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
local paused = {}
for _, p in ipairs(rcall('SMEMBERS', k('paused'))) do paused[p] = true end
local out = {}
local skipped = {}

-- A minimal record for an id that has none, so it can be dead-lettered visibly.
local function stub(tk, id, prio)
  rcall('HSET', tk, 'task_id', id, 'type', 'unknown', 'priority', prio, 'payload', '{}',
    'attempts', 0, 'max_retries', 0, 'created_at', now_iso())
end
-- Lease and recent-index entries of the whole batch, written with one ZADD each at the end
-- (`n` counts the tasks claimed: `#` on a growing table costs a search per use).
local leases, touched, n = {}, {}, 0
-- Every lease of the batch ends at the same time; numbers go to redis.call as strings.
local deadline = int_s(NOW + lease)
-- The next attempt number as a string, for the usual small counts without a conversion.
local NEXT_ATTEMPT = {['0'] = '1', ['1'] = '2', ['2'] = '3', ['3'] = '4', ['4'] = '5', ['5'] = '6'}
for _, prio in ipairs({'P0', 'P1', 'P2', 'P3'}) do
  if n >= want then break end
  if not paused[prio] then
    local list = k('pending:' .. prio)
    while n < want do
      -- One RPOP for what is still wanted; every id popped is claimed or accounted for below.
      local ids = rcall('RPOP', list, int_s(want - n))
      if not ids then break end
      for _, id in ipairs(ids) do
        local tk = task_key(id)
        local v = rpcall('HMGET', tk, unpack(CLAIM_FIELDS, 1, BASE))
        local kind = nil
        if type(v) == 'table' and v.err then
          kind = rcall('TYPE', tk)['ok'] or 'value'
        elseif not v[1] and rcall('EXISTS', tk) == 0 then
          kind = 'none'
        end
        if kind and kind ~= 'none' then
          -- Not a hash (written by hand): keep it for inspection, dead-letter a stub in its place.
          rcall('RENAME', tk, k('corrupt:' .. id))
          stub(tk, id, prio)
          local why = 'the task key held a ' .. kind .. ', not a task record; kept as corrupt:' .. id
          dead_letter(id, why)
          skipped[#skipped + 1] = {id, 'dead_lettered', why, 'unknown'}
        elseif kind == 'none' then
          stub(tk, id, prio)
          local why = 'the queue held an id with no task record (written to Redis by hand?)'
          dead_letter(id, why)
          skipped[#skipped + 1] = {id, 'dead_lettered', why, 'unknown'}
        elseif v[1] == 'pending' then
          -- One read (HMGET) and one write per task; the reply is the values read with the
          -- claim's changes in place.
          -- (A compact record has no attempts field before its first claim.)
          local attempts = NEXT_ATTEMPT[v[3] or '0'] or int_s((tonumber(v[3]) or 0) + 1)
          rcall('HSET', tk, 'status', 'in_progress', 'attempts', attempts,
            'started_at', now_iso(), 'worker', consumer)
          n = n + 1
          leases[2 * n - 1], leases[2 * n] = deadline, id
          touched[2 * n - 1], touched[2 * n] = NOW_S, id
          -- The id (from the list), type and trace id (from the record) may hold anything.
          local eid, ety, etr = id, v[2] or '', v[4] or ''
          if find(eid .. ety .. etr, SEP, 1, true) then
            eid, ety, etr = sep_free(eid), sep_free(ety), sep_free(etr)
          end
          emit_flat('task.started', eid, ety, prio, 'in_progress', attempts, etr)
          v[1], v[3] = 'in_progress', attempts
          if LIGHT[v[2]] then
            for j = BASE + 1, NF do v[j] = false end
          else
            local more = rcall('HMGET', tk, unpack(CLAIM_FIELDS, BASE + 1, NF))
            for j = BASE + 1, NF do v[j] = more[j - BASE] end
          end
          -- One flat reply for the batch (Redis converts every nested table of a reply with a
          -- deferred length of its own): the values read, then the priority (the list it was
          -- on) and the id, STRIDE entries per task.
          local at = (n - 1) * STRIDE
          for j = 1, NF do out[at + j] = v[j] end
          out[at + NF + 1], out[at + NF + 2] = prio, id
        else
          -- any other status: a stale entry (cancelled / already done); drop it
          skipped[#skipped + 1] = {id, 'stale', v[1] or 'missing', v[2] or ''}
        end
      end
    end
  end
end
if n > 0 then
  rcall('ZADD', k('inflight'), unpack(leases))
  rcall('ZADD', k('recent'), unpack(touched))
  trim_recent()
end
-- started_at and claimed_ms (not stored: only the consumer's, its wait since the task became
-- ready) are the same for the whole batch: sent once.
return {out, skipped, now_iso(), NOW_S}
