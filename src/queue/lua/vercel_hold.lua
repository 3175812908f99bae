-- After a 429: hold every instance's Vercel calls for ARGV[5] ms from now (Redis clock). Never
-- shortens an existing hold. Returns the hold's end (epoch ms).
local wait = math.min(tonumber(ARGV[5]) or 0, 900000) -- never more than 15 minutes
local now = NOW
local want = now + wait
local cur = tonumber(rcall('GET', k('vercel:hold_until')) or '0') or 0
if want > cur then
  rcall('SET', k('vercel:hold_until'), want, 'PX', wait + 1000)
  return want
end
return cur
