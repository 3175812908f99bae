-- Shared prelude, prepended to every script by src/queue/scripts.rs.
--
-- Every script receives the same first five arguments:
--   ARGV[1] key base incl. the hash tag, e.g. "ops:{default}" (all keys of a queue share one slot)
--   ARGV[2] now, epoch milliseconds        ARGV[3] now, RFC 3339 (for record timestamps)
--   ARGV[4] approximate cap of the events stream
--   ARGV[5] cap of the "recent" index
-- and its own arguments from ARGV[6] on. KEYS[1] is always the events stream: it routes the call to
-- the right Cluster node; the other keys are derived from the key base and live in the same slot.
local B = ARGV[1]
local NOW = tonumber(ARGV[2])
local NOW_ISO = ARGV[3]
local STREAM_MAX = ARGV[4]
local RECENT_MAX = tonumber(ARGV[5])

local function k(name) return B .. ':' .. name end
local function task_key(id) return B .. ':task:' .. id end

-- Record that a task changed state: capped stream (for replay/audit) + pub/sub (for live watchers).
local function emit(event, id, reason)
  local tk = task_key(id)
  local f = redis.call('HMGET', tk, 'type', 'priority', 'status', 'attempts', 'trace_id')
  local body = {event = event, task_id = id, type = f[1] or '', priority = f[2] or '',
                status = f[3] or '', attempts = tonumber(f[4] or '0') or 0,
                trace_id = f[5] or '', ts = NOW_ISO}
  if reason and reason ~= '' then body.reason = reason end
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
  if n > 64 then n = 64 end
  local toks = {}
  for i = 1, n do toks[i] = '1' end
  redis.call('LPUSH', k('wake'), unpack(toks))
  redis.call('LTRIM', k('wake'), 0, 1023)
end

-- Per-second throughput buckets for "completed/failed in the last 1 m / 5 m".
local function count_outcome(outcome, n)
  local key = k('tp:' .. outcome .. ':' .. math.floor(NOW / 1000))
  redis.call('INCRBY', key, n)
  redis.call('EXPIRE', key, 600)
  redis.call('HINCRBY', k('counters'), outcome .. '_total', n)
end

-- Move a task to the dead-letter set with its reason.
local function dead_letter(id, reason)
  local tk = task_key(id)
  redis.call('HSET', tk, 'status', 'failed', 'error', reason, 'completed_at', NOW_ISO)
  redis.call('HDEL', tk, 'worker')
  redis.call('ZREM', k('inflight'), id)
  redis.call('ZADD', k('failed'), NOW, id)
  count_outcome('failed', 1)
  touch(id)
  emit('task.failed', id, reason)
end

-- Put a task back at the head of its priority list (it was already waiting its turn once).
local function requeue_front(id, prio, reason)
  local tk = task_key(id)
  redis.call('HSET', tk, 'status', 'pending', 'ready_ms', NOW)
  redis.call('HDEL', tk, 'worker')
  redis.call('ZREM', k('inflight'), id)
  redis.call('RPUSH', k('pending:' .. prio), id)
  touch(id)
  emit('task.requeued', id, reason)
end
