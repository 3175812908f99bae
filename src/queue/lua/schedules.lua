-- Schedule ticks. <base>:schedules:next is a zset of schedule names scored by their next tick
-- (epoch ms); the definitions live in the hash <base>:schedules. KEYS[1] is the events stream
-- (routing only). ARGV[5] op:
--   "due": ARGV[6] at most this many. Returns {now_ms, name1, tick1, name2, tick2, ...}: the
--     schedules whose tick is at or before the server's clock.
--   "advance": ARGV[6] name, ARGV[7] the tick just fired, ARGV[8] the next tick ("" = none:
--     the schedule stops). Moves the schedule on only if its tick is still ARGV[7], so of several
--     instances firing one tick exactly one advances it. Returns 1 when advanced, 0 otherwise.
local next_key = B .. ':schedules:next'
if ARGV[5] == 'due' then
  local out = {tostring(NOW)}
  local due = rcall('ZRANGEBYSCORE', next_key, '-inf', NOW, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[6]))
  for i = 1, #due, 2 do
    out[#out + 1] = due[i]
    out[#out + 1] = due[i + 1]
  end
  return out
end
local current = rcall('ZSCORE', next_key, ARGV[6])
if not current or tonumber(current) ~= tonumber(ARGV[7]) then return 0 end
if ARGV[8] == '' then
  rcall('ZREM', next_key, ARGV[6])
else
  rcall('ZADD', next_key, ARGV[8], ARGV[6])
end
return 1
