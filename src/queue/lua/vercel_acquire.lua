-- Take one token from the cluster-wide Vercel rate limiter (a token bucket shared by every
-- instance), honouring a shared "hold until" set after a 429. Uses the Redis clock so instances
-- with skewed clocks agree. ARGV[5] calls per minute (0 = unlimited), ARGV[6] burst size.
-- Returns { wait_ms, reason }: wait_ms = 0 means the call may go now; otherwise try again after
-- wait_ms. reason is ok | bucket | retry_after.
local rate, burst = tonumber(ARGV[5]), tonumber(ARGV[6])
local now = NOW
local hold = tonumber(rcall('GET', k('vercel:hold_until')) or '0') or 0
if hold > now then return {hold - now, 'retry_after'} end
if rate <= 0 then return {0, 'ok'} end
local per_ms = rate / 60000
local b = rcall('HMGET', k('vercel:bucket'), 'tokens', 'ts')
local tokens = tonumber(b[1]) or burst
local ts = tonumber(b[2]) or now
if now > ts then tokens = math.min(burst, tokens + (now - ts) * per_ms) end
local wait, reason = 0, 'ok'
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) / per_ms)
  reason = 'bucket'
end
rcall('HSET', k('vercel:bucket'), 'tokens', tostring(tokens), 'ts', now)
rcall('PEXPIRE', k('vercel:bucket'), 600000)
return {wait, reason}
