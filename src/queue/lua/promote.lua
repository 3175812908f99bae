-- Move due tasks from `delayed` (run_at) and `retry` (back-off) to their pending lists.
-- ARGV[5] batch limit per set. Returns how many were promoted.
local limit = tonumber(ARGV[5])
local n = 0
for _, set in ipairs({'delayed', 'retry'}) do
  local ids = rcall('ZRANGEBYSCORE', k(set), '-inf', NOW, 'LIMIT', 0, limit)
  for _, id in ipairs(ids) do
    rcall('ZREM', k(set), id)
    local tk = task_key(id)
    local f = fields(tk, 'status', 'priority')
    if f[1] == 'pending' or f[1] == 'retrying' then
      rcall('HSET', tk, 'status', 'pending', 'ready_ms', NOW)
      rcall('LPUSH', k('pending:' .. f[2]), id)
      n = n + 1
    end
  end
end
wake(n)
-- A project whose lock lapsed (its holder vanished without a reclaim) with tasks still waiting:
-- hand it to the best waiter.
for _, p in ipairs(rcall('SMEMBERS', k('projects:waiting'))) do
  if rcall('EXISTS', project_key(p)) == 0 then hand_over(p) end
end
-- Dead-lettered records expire after the retention; forget their ids too.
rcall('ZREMRANGEBYSCORE', k('failed'), '-inf', NOW - RETENTION * 1000)
return n
