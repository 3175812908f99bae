-- The live series of the dashboard: completed and failed per second over the last ARGV[5]
-- seconds of the Redis clock, from the `tp:<outcome>:<sec>` counters the outcome scripts keep.
-- Returns { now (epoch seconds), completed oldest..newest, failed oldest..newest }.
local n = tonumber(ARGV[5])
local sec = math.floor(NOW / 1000)
local out = {sec}
for _, outcome in ipairs({'completed', 'failed'}) do
  local keys = {}
  for s = sec - n + 1, sec do keys[#keys + 1] = k('tp:' .. outcome .. ':' .. s) end
  local vals = rcall('MGET', unpack(keys))
  for _, v in ipairs(vals) do out[#out + 1] = tonumber(v or '0') or 0 end
end
return out
