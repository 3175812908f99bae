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
local B = ARGV[1]
local STREAM_MAX = ARGV[2]
local RECENT_MAX = tonumber(ARGV[3])
-- ARGV[4] is "<completed and cancelled retention>:<failed retention>", in seconds.
local RETENTION_DONE = tonumber(string.match(ARGV[4], '^(%d+)'))
local RETENTION = tonumber(string.match(ARGV[4], ':(%d+)$'))

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

local T = redis.call('TIME')
local NOW = tonumber(T[1]) * 1000 + math.floor(tonumber(T[2]) / 1000)
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
  local r = redis.pcall('HMGET', tk, ...)
  if type(r) == 'table' and r.err then return {} end
  return r
end

-- Record that a task changed state: capped stream (for replay/audit) + pub/sub (for live watchers).
-- `rec` (optional) holds the record's current type, priority, status, attempts and trace_id when
-- the caller already has them; otherwise they are read. (cjson costs about what concatenating the
-- body in Lua does, ~3 us an event; see docs/benchmarks.md.)
-- `extra` (optional) holds more fields for the body (e.g. the project a task waits for).
local function emit(event, id, reason, rec, extra)
  if not rec then
    local f = fields(task_key(id), 'type', 'priority', 'status', 'attempts', 'trace_id')
    rec = {type = f[1], priority = f[2], status = f[3], attempts = f[4], trace_id = f[5]}
  end
  local body = {event = event, task_id = id, type = rec.type or '', priority = rec.priority or '',
                status = rec.status or '', attempts = tonumber(rec.attempts or '0') or 0,
                trace_id = rec.trace_id or '', ts = now_iso()}
  if reason and reason ~= '' then body.reason = reason end
  if extra then for f, v in pairs(extra) do body[f] = v end end
  local json = cjson.encode(body)
  redis.call('XADD', k('events'), 'MAXLEN', '~', STREAM_MAX, '*', 'event', event, 'task_id', id, 'data', json)
  redis.call('PUBLISH', k('events:' .. event), json)
end

-- Keep the dashboard's "recent" index ordered by last change.
local function touch(id) redis.call('ZADD', k('recent'), NOW, id) end
local function trim_recent() redis.call('ZREMRANGEBYRANK', k('recent'), 0, -(RECENT_MAX + 1)) end

-- Wake up to n blocked consumers (tokens are capped so an idle queue can't grow the list).
local function wake(n)
  if n <= 0 then return end
  if n > 256 then n = 256 end
  local toks = {}
  for i = 1, n do toks[i] = '1' end
  redis.call('LPUSH', k('wake'), unpack(toks))
  redis.call('LTRIM', k('wake'), 0, 1023)
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
    local top = redis.call('ZPOPMIN', wk)
    if #top == 0 then
      redis.call('SREM', k('projects:waiting'), p)
      return
    end
    local id = top[1]
    local tk = task_key(id)
    local f = fields(tk, 'status', 'waiting_for', 'priority', 'lease_ms')
    if f[1] == 'pending' and f[2] == p then
      redis.call('HDEL', tk, 'waiting_for', 'waiting_holder')
      redis.call('HSET', tk, 'project_lock', p)
      redis.call('SET', project_key(p), id, 'PX', tonumber(f[4]) or 30000)
      redis.call('RPUSH', k('pending:' .. f[3]), id)
      if redis.call('ZCARD', wk) == 0 then redis.call('SREM', k('projects:waiting'), p) end
      touch(id)
      emit('task.requeued', id, 'project ' .. p .. ' is free')
      wake(1)
      return
    end
  end
end

-- Task `id` stops holding or waiting for its project (it finished, failed, was handed back or
-- reclaimed): free the lock if it is this task's and hand it to the best waiter.
local function free_project(id, tk)
  local f = fields(tk, 'project_lock', 'waiting_for')
  if f[2] then
    redis.call('ZREM', project_key(f[2]) .. ':waiting', id)
    redis.call('HDEL', tk, 'waiting_for', 'waiting_holder')
  end
  local p = f[1]
  if not p then return end
  redis.call('HDEL', tk, 'project_lock')
  local lk = project_key(p)
  local holder = redis.call('GET', lk)
  if holder == id then redis.call('DEL', lk) end
  if holder == id or not holder then hand_over(p) end
end

-- Task `id` will retry after `backoff` ms. A deploy whose deployment exists (it is still
-- building on Vercel; the retry resumes it) keeps its project until then plus what is left of its
-- lease; any other task lets go of it now.
local function keep_project_through(id, tk, backoff)
  local f = fields(tk, 'project_lock', 'deployment_id')
  local lk = f[1] and project_key(f[1])
  if f[2] and lk and redis.call('GET', lk) == id then
    redis.call('PEXPIRE', lk, backoff + math.max(redis.call('PTTL', lk), 0))
  else
    free_project(id, tk)
  end
end

-- Per-second throughput buckets for "completed/failed in the last 1 m / 5 m".
local function count_outcome(outcome, n)
  local key = k('tp:' .. outcome .. ':' .. math.floor(NOW / 1000))
  redis.call('INCRBY', key, n)
  redis.call('EXPIRE', key, 600)
  redis.call('HINCRBY', k('counters'), outcome .. '_total', n)
end

-- Finished records stay readable for their retention (failed ones longer, to be replayed), then
-- expire; completed and cancelled ones are also indexed in `done` so their number can be capped.
local function finish(tk, status, extra_field, extra_value)
  free_project(string.sub(tk, #B + 7), tk)
  if extra_field then
    redis.call('HSET', tk, 'status', status, 'completed_at', now_iso(), extra_field, extra_value)
  else
    redis.call('HSET', tk, 'status', status, 'completed_at', now_iso())
  end
  redis.call('HDEL', tk, 'worker', 'cancel_requested')
  redis.call('EXPIRE', tk, status == 'failed' and RETENTION or RETENTION_DONE)
end

-- Move a task to the dead-letter set with its reason (kept, replayable, for the retention period).
local function dead_letter(id, reason)
  local tk = task_key(id)
  finish(tk, 'failed', 'error', reason)
  redis.call('ZREM', k('inflight'), id)
  redis.call('ZADD', k('failed'), NOW, id)
  redis.call('ZREMRANGEBYSCORE', k('failed'), '-inf', NOW - RETENTION * 1000)
  count_outcome('failed', 1)
  touch(id)
  emit('task.failed', id, reason)
end

-- Mark a task cancelled (an operator asked; it is not running).
local function cancel_now(id, reason)
  local tk = task_key(id)
  redis.call('ZREM', k('inflight'), id)
  redis.call('ZREM', k('delayed'), id)
  redis.call('ZREM', k('retry'), id)
  finish(tk, 'cancelled')
  redis.call('ZADD', k('done'), NOW, id)
  if reason then redis.call('HSET', tk, 'error', reason) end
  redis.call('HINCRBY', k('counters'), 'cancelled_total', 1)
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
  redis.call('HSET', tk, 'status', 'pending')
  redis.call('HDEL', tk, 'worker')
  redis.call('ZREM', k('inflight'), id)
  redis.call('RPUSH', k('pending:' .. prio), id)
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
  redis.call('HINCRBY', tk, 'attempts', -1)
  requeue_front(id, f[3], reason)
  return {id, 'requeued', '', ty}, true
end
