-- One consistent snapshot of the queue for `stats`, the API and the metrics gauges.
-- Returns a flat list: P0..P3 depths, in_flight, retrying, delayed, failed, paused (space-separated),
-- completed_total, failed_total, reclaimed_total, cancelled_total, oldest pending ready_ms (0 = none),
-- completed last 60 s, last 300 s, failed last 60 s, last 300 s, and the server's now (ms).
local out = {}
local oldest = 0
for _, prio in ipairs({'P0', 'P1', 'P2', 'P3'}) do
  local list = k('pending:' .. prio)
  out[#out + 1] = rcall('LLEN', list)
  -- The next to run sit at the right end; requeued tasks (reclaimed, handed back) go there too,
  -- keeping their original ready time, so look at the last several, not just the last one.
  for _, id in ipairs(rcall('LRANGE', list, -64, -1)) do
    local r = tonumber(fields(task_key(id), 'ready_ms')[1])
    if r and (oldest == 0 or r < oldest) then oldest = r end
  end
end
out[#out + 1] = rcall('ZCARD', k('inflight'))
out[#out + 1] = rcall('ZCARD', k('retry'))
out[#out + 1] = rcall('ZCARD', k('delayed'))
out[#out + 1] = rcall('ZCARD', k('failed'))
local paused = rcall('SMEMBERS', k('paused'))
table.sort(paused)
out[#out + 1] = table.concat(paused, ' ')
local c = rcall('HMGET', k('counters'), 'completed_total', 'failed_total', 'reclaimed_total', 'cancelled_total')
for i = 1, 4 do out[#out + 1] = tonumber(c[i] or '0') or 0 end
out[#out + 1] = oldest
local sec = math.floor(NOW / 1000)
for _, outcome in ipairs({'completed', 'failed'}) do
  local keys = {}
  for s = sec - 299, sec do keys[#keys + 1] = k('tp:' .. outcome .. ':' .. s) end
  local vals = rcall('MGET', unpack(keys))
  local m1, m5 = 0, 0
  for idx, v in ipairs(vals) do
    local n = tonumber(v or '0') or 0
    m5 = m5 + n
    if idx > 240 then m1 = m1 + n end
  end
  out[#out + 1] = m1
  out[#out + 1] = m5
end
out[#out + 1] = NOW
return out
