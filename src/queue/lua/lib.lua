-- Shared prelude, prepended to every script by src/queue/scripts.rs.
--
-- Every script receives the same first four arguments:
--   ARGV[1] key base incl. the hash tag, e.g. "ops:{default}" (all keys of a queue share one slot)
--   ARGV[2] approximate cap of the events stream    ARGV[3] cap of the "recent" index
--   ARGV[4] retention of finished records, seconds
-- and its own arguments from ARGV[5] on.
--
-- Keys, declared and derived (see docs/architecture.md section 4):
--   KEYS[1] is always the events stream "<base>:events": it routes the call to the node that owns
--           the queue's hash slot (on a Redis Cluster, its master).
--   KEYS[2] is always "<base>:migration-guard", a key no script reads or writes. While the slot
--           migrates between cluster nodes, Redis refuses a call that declares a key missing on
--           the node (TRYAGAIN / ASK) before the script runs, so no script can start on one node
--           and fail half-way on a key already moved; the store sends it again after a back-off.
--   Every other key is derived here from ARGV[1] (k(), task_key(), project_key()), so it carries
--   the queue's hash tag and lives in the same slot. Scripts never touch a key outside the tag.
-- Time comes from the Redis server's clock, so instances with skewed clocks still agree on lease
-- deadlines, back-offs and run_at.
-- redis.call and redis.pcall as locals: one upvalue read per call instead of a global and a
-- field lookup (a batch script makes a few calls per task).
local rcall, rpcall = redis.call, redis.pcall
local B = ARGV[1]
local STREAM_MAX = ARGV[2]
local RECENT_MAX = tonumber(ARGV[3])
-- ARGV[4] is "<completed and cancelled retention>:<failed retention>", in seconds.
local RETENTION_DONE_S = string.match(ARGV[4], '^(%d+)')
local RETENTION_S = string.match(ARGV[4], ':(%d+)$')
local RETENTION_DONE = tonumber(RETENTION_DONE_S)
local RETENTION = tonumber(RETENTION_S)
-- The last rank `recent` keeps, as ZREMRANGEBYRANK takes it.
local RECENT_LAST_S = string.format('%d', -(RECENT_MAX + 1))

local function iso(ms)
  -- RFC 3339 UTC from epoch milliseconds (days-from-civil inverse, proleptic Gregorian).
  local secs = math.floor(ms / 1000)
  local days = math.floor(secs / 86400)
  local rem = secs - days * 86400
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return string.format('%04d-%02d-%02dT%02d:%02d:%02d.%03dZ', y, m, d,
    math.floor(rem / 3600), math.floor((rem % 3600) / 60), rem % 60, ms % 1000)
end

local T = rcall('TIME')
local NOW = tonumber(T[1]) * 1000 + math.floor(tonumber(T[2]) / 1000)
-- NOW as the decimal string Redis stores. Numbers are passed to redis.call as strings built once
-- per call: Redis turns every Lua number argument into a string with snprintf("%.17g"), which
-- cost more than the command itself in the batch scripts (one conversion per task per number).
local NOW_S = T[1] .. string.format('%03d', math.floor(tonumber(T[2]) / 1000))
-- The whole part of n as a decimal string (for arguments computed per call, not per task).
local function int_s(n) return string.format('%d', n) end
-- NOW as RFC 3339, formatted on first use only (most calls of a batch-free script need it once,
-- some never).
local NOW_ISO_CACHE = nil
local function now_iso()
  if not NOW_ISO_CACHE then NOW_ISO_CACHE = iso(NOW) end
  return NOW_ISO_CACHE
end

local function k(name) return B .. ':' .. name end
local function task_key(id) return B .. ':task:' .. id end

-- Read fields of a task record. A key that is not a hash (written by hand) reads as missing, so
-- one bad record never aborts a script that handles a whole batch.
local function fields(tk, ...)
  local r = rpcall('HMGET', tk, ...)
  if type(r) == 'table' and r.err then return {} end
  return r
end

-- Record that a task changed state. Events are buffered and written when the script ends
-- (`flush_events`, run by the epilogue scripts.rs appends to every script): one stream entry per
-- run of consecutive events of one kind, at most EVENTS_PER_ENTRY tasks each, instead of one
-- XADD + PUBLISH per task (see docs/architecture.md, "Events"). Two entry formats:
-- * version 3, the batch scripts' (`emit_flat`: enqueue, claim, complete): the rows' six values
--   joined by SEP in one string, no JSON;
-- * version 2, every event with a reason or extra fields (`emit`): `data` is
--   {"v":2,"event":...,"ts":...,"tasks":[row, ...]}.
-- A row is { id, type, priority, status, attempts, trace_id [, reason or '' [, extra]] },
-- attempts as the decimal string the record holds (readers take the string as the number).
local EVENTS_PER_ENTRY = 64
-- The separator of a version-3 entry's values: ASCII "unit separator", which no id, type,
-- priority, status or count this build writes holds. A value that may hold it anyway (a trace id
-- is free text; a hand-written record can hold anything) is checked by the caller of emit_flat
-- with `find(v, SEP, 1, true)` and passed through `sep_free`, so an entry always splits into
-- exactly 6 values per row. (The check is written out at each caller: a Lua function call per
-- value costs more than the JSON encoding it replaces.)
local SEP = '\31'
local find = string.find
-- Runs of consecutive events of one kind: { event = name, rows = { row, ... } } (version 2) or
-- { event = name, flat = { six values per row }, n = rows } (version 3).
local EVENT_RUNS = {}
-- `s` with every SEP replaced by a space.
local function sep_free(s) return (string.gsub(s, SEP, ' ')) end
-- Append a row to the runs as six values, without a table per row (the batch scripts' path).
-- The values hold no SEP (see above).
local function emit_flat(event, id, ty, prio, status, attempts, trace)
  local run = EVENT_RUNS[#EVENT_RUNS]
  if not run or run.event ~= event or not run.flat or run.n >= EVENTS_PER_ENTRY then
    run = {event = event, flat = {}, n = 0}
    EVENT_RUNS[#EVENT_RUNS + 1] = run
  end
  local f, at = run.flat, run.n * 6
  f[at + 1], f[at + 2], f[at + 3], f[at + 4], f[at + 5], f[at + 6] =
    id, ty, prio, status, attempts, trace
  run.n = run.n + 1
end
local function emit(event, id, reason, rec, extra)
  if not rec then
    local f = fields(task_key(id), 'type', 'priority', 'status', 'attempts', 'trace_id')
    rec = {type = f[1], priority = f[2], status = f[3], attempts = f[4], trace_id = f[5]}
  end
  local row = {id, rec.type or '', rec.priority or '', rec.status or '', rec.attempts or '0',
               rec.trace_id or ''}
  if (reason and reason ~= '') or extra then row[7] = reason or '' end
  if extra then row[8] = extra end
  local run = EVENT_RUNS[#EVENT_RUNS]
  if not run or run.event ~= event or not run.rows or #run.rows >= EVENTS_PER_ENTRY then
    run = {event = event, rows = {}}
    EVENT_RUNS[#EVENT_RUNS + 1] = run
  end
  run.rows[#run.rows + 1] = row
end

-- One task's event as a version-1 body (what the stream held per task before version 2, and what
-- pub/sub subscribers still receive).
local function event_body(event, row)
  local body = {event = event, task_id = row[1], type = row[2], priority = row[3], status = row[4],
                attempts = tonumber(row[5]) or 0, trace_id = row[6], ts = now_iso()}
  if row[7] and row[7] ~= '' then body.reason = row[7] end
  if row[8] then for f, v in pairs(row[8]) do body[f] = v end end
  return body
end

-- The rows of a run as tables (for the pub/sub bodies of a version-3 run).
local function run_rows(run)
  if run.rows then return run.rows end
  local rows, f = {}, run.flat
  for r = 0, run.n - 1 do
    local at = r * 6
    rows[r + 1] = {f[at + 1], f[at + 2], f[at + 3], f[at + 4], f[at + 5], f[at + 6]}
  end
  return rows
end

-- Keep about STREAM_MAX task events in the stream: `events:sizes` lists "<entry id> <events>"
-- per entry written here (oldest first) and `events:count` their sum; past the cap the oldest
-- entries are dropped (XTRIM MINID) until the sum fits again.
local function trim_events(added)
  local count = rcall('INCRBY', k('events:count'), int_s(added))
  local cap = tonumber(STREAM_MAX)
  if count <= cap then return end
  local last = nil
  while count > cap do
    local head = rcall('LPOP', k('events:sizes'))
    if not head then count = 0 break end
    local id, n = string.match(head, '^(%d+%-%d+) (%d+)$')
    if id then
      last = id
      count = count - tonumber(n)
    end
  end
  rcall('SET', k('events:count'), math.max(count, 0))
  if last then
    local ms, seq = string.match(last, '^(%d+)%-(%d+)$')
    rcall('XTRIM', k('events'), 'MINID', ms .. '-' .. (tonumber(seq) + 1))
  end
end

-- Write the buffered events: per run one stream entry (`event`, `v`, `n` = its tasks, then
-- version 3: `ts` and `rows` = the values joined by SEP; version 2: `data` = the JSON above), and
-- the version-1 body of each event on `events:<event>` when anyone subscribes to it (no message
-- is built for an empty channel).
local function flush_events()
  if #EVENT_RUNS == 0 then return end
  local patterns = nil
  local added = 0
  for _, run in ipairs(EVENT_RUNS) do
    -- MAXLEN (in entries) only bounds the stream should `events:sizes` be lost; trim_events keeps
    -- it at about STREAM_MAX events.
    local n = run.n or #run.rows
    local n_s = int_s(n)
    local id
    if run.flat then
      id = rcall('XADD', k('events'), 'MAXLEN', '~', STREAM_MAX, '*', 'event', run.event,
        'v', '3', 'n', n_s, 'ts', now_iso(), 'rows', table.concat(run.flat, SEP))
    else
      local data = cjson.encode({v = 2, event = run.event, ts = now_iso(), tasks = run.rows})
      id = rcall('XADD', k('events'), 'MAXLEN', '~', STREAM_MAX, '*', 'event', run.event,
        'v', '2', 'n', n_s, 'data', data)
    end
    rcall('RPUSH', k('events:sizes'), id .. ' ' .. n_s)
    added = added + n
    local chan = k('events:' .. run.event)
    if patterns == nil then patterns = rcall('PUBSUB', 'NUMPAT') end
    if patterns > 0 or rcall('PUBSUB', 'NUMSUB', chan)[2] > 0 then
      for _, row in ipairs(run_rows(run)) do
        rcall('PUBLISH', chan, cjson.encode(event_body(run.event, row)))
      end
    end
  end
  EVENT_RUNS = {}
  trim_events(added)
end

-- Keep the dashboard's "recent" index ordered by last change.
local function touch(id) rcall('ZADD', k('recent'), NOW_S, id) end
local function trim_recent() rcall('ZREMRANGEBYRANK', k('recent'), '0', RECENT_LAST_S) end

-- Wake up to n blocked consumers (tokens are capped so an idle queue can't grow the list).
local function wake(n)
  if n <= 0 then return end
  if n > 256 then n = 256 end
  local toks = {}
  for i = 1, n do toks[i] = '1' end
  rcall('LPUSH', k('wake'), unpack(toks))
  rcall('LTRIM', k('wake'), '0', '1023')
end

-- One change per project at a time: `project:<p>` holds the id of the task allowed to change
-- project <p> (PX = its lease, renewed with it); the task's record names it in `project_lock`.
-- Tasks that found it busy wait in the zset `project:<p>:waiting`, best (priority, ready time)
-- first, and `projects:waiting` lists the projects that have waiters.
local function project_key(p) return k('project:' .. p) end

-- Give project <p>'s lock to its best waiter, if any: the lock is set to that task (PX its
-- lease) and the task goes back to the head of its pending list, so it runs next.
local function hand_over(p)
  local wk = project_key(p) .. ':waiting'
  while true do
    local top = rcall('ZPOPMIN', wk)
    if #top == 0 then
      rcall('SREM', k('projects:waiting'), p)
      return
    end
    local id = top[1]
    local tk = task_key(id)
    local f = fields(tk, 'status', 'waiting_for', 'priority', 'lease_ms')
    if f[1] == 'pending' and f[2] == p then
      rcall('HDEL', tk, 'waiting_for', 'waiting_holder')
      rcall('HSET', tk, 'project_lock', p)
      rcall('SET', project_key(p), id, 'PX', tonumber(f[4]) or 30000)
      rcall('RPUSH', k('pending:' .. f[3]), id)
      if rcall('ZCARD', wk) == 0 then rcall('SREM', k('projects:waiting'), p) end
      touch(id)
      emit('task.requeued', id, 'project ' .. p .. ' is free')
      wake(1)
      return
    end
  end
end

-- Task `id` stops holding or waiting for its project (it finished, failed, was handed back or
-- reclaimed): free the lock if it is this task's and hand it to the best waiter. `read`
-- (optional) holds its `project_lock` and `waiting_for` when the caller already read them.
local function free_project(id, tk, read)
  local f = read or fields(tk, 'project_lock', 'waiting_for')
  if f[2] then
    rcall('ZREM', project_key(f[2]) .. ':waiting', id)
    rcall('HDEL', tk, 'waiting_for', 'waiting_holder')
  end
  local p = f[1]
  if not p then return end
  rcall('HDEL', tk, 'project_lock')
  local lk = project_key(p)
  local holder = rcall('GET', lk)
  if holder == id then rcall('DEL', lk) end
  if holder == id or not holder then hand_over(p) end
end

-- Task `id` will retry after `backoff` ms. A deploy whose deployment exists (it is still
-- building on Vercel; the retry resumes it) keeps its project until then plus what is left of its
-- lease; any other task lets go of it now.
local function keep_project_through(id, tk, backoff)
  local f = fields(tk, 'project_lock', 'deployment_id')
  local lk = f[1] and project_key(f[1])
  if f[2] and lk and rcall('GET', lk) == id then
    rcall('PEXPIRE', lk, backoff + math.max(rcall('PTTL', lk), 0))
  else
    free_project(id, tk)
  end
end

-- Outcomes (completed, failed = dead-lettered, retried, cancelled) recorded by this call, summed
-- per kind and written once when the script ends (`flush_outcomes`, from the epilogue), so a batch
-- costs the same few commands as one task: per kind, the charts' minute hash
-- `stats:<epoch minute>` (Redis clock, kept 25 h; see docs/dashboard.md), the `counters` total
-- (not for retried) and, for completed and failed, the per-second `tp:<outcome>:<sec>` bucket of
-- the live chart (kept 10 minutes).
local OUTCOMES = {}
local OUTCOME_KINDS = {'completed', 'failed', 'retried', 'cancelled'}
local HISTORY_TTL = '90000'
local function count_outcome(outcome, n)
  OUTCOMES[outcome] = (OUTCOMES[outcome] or 0) + n
end
local function flush_outcomes()
  local minute = nil
  for _, outcome in ipairs(OUTCOME_KINDS) do
    local n = OUTCOMES[outcome]
    if n and n > 0 then
      local ns = string.format('%d', n)
      if not minute then minute = k('stats:' .. string.format('%d', math.floor(NOW / 60000))) end
      rcall('HINCRBY', minute, outcome, ns)
      if outcome ~= 'retried' then rcall('HINCRBY', k('counters'), outcome .. '_total', ns) end
      if outcome == 'completed' or outcome == 'failed' then
        local key = k('tp:' .. outcome .. ':' .. T[1])
        rcall('INCRBY', key, ns)
        rcall('EXPIRE', key, '600')
      end
    end
  end
  OUTCOMES = {}
  if minute then rcall('EXPIRE', minute, HISTORY_TTL) end
end

-- Finished records stay readable for their retention (failed ones longer, to be replayed), then
-- expire; completed and cancelled ones are also indexed in `done` so their number can be capped.
-- `read` (optional): the record's `project_lock`, `waiting_for` and `cancel_requested` as the
-- caller read them; then the record keeps `worker` (the consumer that ran it: nothing reads it
-- once the task is finished, and one HDEL per task is saved) and the flag is deleted only if set.
local function finish(tk, status, extra_field, extra_value, read)
  -- (The id is cut from the key only when there may be a project to free.)
  if not read or read[1] or read[2] then free_project(string.sub(tk, #B + 7), tk, read) end
  if extra_field then
    rcall('HSET', tk, 'status', status, 'completed_at', now_iso(), extra_field, extra_value)
  else
    rcall('HSET', tk, 'status', status, 'completed_at', now_iso())
  end
  if not read then
    rcall('HDEL', tk, 'worker', 'cancel_requested')
  elseif read[3] then
    rcall('HDEL', tk, 'cancel_requested')
  end
  rcall('EXPIRE', tk, status == 'failed' and RETENTION_S or RETENTION_DONE_S)
end

-- Move a task to the dead-letter set with its reason (kept, replayable, for the retention period).
local function dead_letter(id, reason)
  local tk = task_key(id)
  finish(tk, 'failed', 'error', reason)
  rcall('ZREM', k('inflight'), id)
  rcall('ZADD', k('failed'), NOW, id)
  rcall('ZREMRANGEBYSCORE', k('failed'), '-inf', NOW - RETENTION * 1000)
  count_outcome('failed', 1)
  touch(id)
  emit('task.failed', id, reason)
end

-- Mark a task cancelled (an operator asked; it is not running).
local function cancel_now(id, reason)
  local tk = task_key(id)
  rcall('ZREM', k('inflight'), id)
  rcall('ZREM', k('delayed'), id)
  rcall('ZREM', k('retry'), id)
  finish(tk, 'cancelled')
  rcall('ZADD', k('done'), NOW, id)
  if reason then rcall('HSET', tk, 'error', reason) end
  count_outcome('cancelled', 1)
  touch(id)
  emit('task.cancelled', id, reason)
end

-- Put a task back at the head of its priority list (it was already waiting its turn once), unless
-- an operator cancelled it meanwhile. It keeps its original ready time, so queue age and wait
-- time count from when it first became ready.
local function requeue_front(id, prio, reason)
  local tk = task_key(id)
  if fields(tk, 'cancel_requested')[1] == '1' then
    cancel_now(id, 'cancelled while running')
    return false
  end
  rcall('HSET', tk, 'status', 'pending')
  rcall('HDEL', tk, 'worker')
  rcall('ZREM', k('inflight'), id)
  rcall('RPUSH', k('pending:' .. prio), id)
  touch(id)
  emit('task.requeued', id, reason)
  return true
end

-- Hand a lease of `consumer` back without burning the attempt (its claim is undone), unless an
-- operator cancelled the task meanwhile. A project lock it holds stays its own for the rest of
-- the lease: it is back at the head of its list and takes the lock again when next claimed. Returns its { id, outcome, detail, type } entry and
-- whether it went back to pending.
local function hand_back(id, consumer, reason)
  local tk = task_key(id)
  local f = fields(tk, 'status', 'worker', 'priority', 'type')
  local ty = f[4] or ''
  if f[1] ~= 'in_progress' or f[2] ~= consumer then
    return {id, 'stale', f[1] or 'missing', ty}, false
  end
  if fields(tk, 'cancel_requested')[1] == '1' then
    cancel_now(id, 'cancelled while running')
    return {id, 'cancelled', 'cancelled while running', ty}, false
  end
  rcall('HINCRBY', tk, 'attempts', -1)
  requeue_front(id, f[3], reason)
  return {id, 'requeued', '', ty}, true
end
