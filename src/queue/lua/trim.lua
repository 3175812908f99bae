-- Keep finished records bounded by count as well as by age: at most ARGV[5] completed and
-- cancelled records (the `done` index) and ARGV[6] dead-lettered ones (the `failed` index); the
-- oldest beyond the cap are deleted, at most ARGV[7] per index per call. Index entries of records
-- that already expired are forgotten too. Returns { completed deleted, failed deleted }.
local keep_done, keep_failed, max = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
rcall('ZREMRANGEBYSCORE', k('done'), '-inf', NOW - RETENTION_DONE * 1000)
local function trim(index, keep, status)
  local n = rcall('ZCARD', k(index)) - keep
  if n <= 0 then return 0 end
  if n > max then n = max end
  local deleted = 0
  for _, id in ipairs(rcall('ZRANGE', k(index), 0, n - 1)) do
    local tk = task_key(id)
    -- A record replayed or re-run since (no longer in this state) is left alone.
    local s = fields(tk, 'status')[1]
    if s == status or (status == 'completed' and s == 'cancelled') then
      rcall('UNLINK', tk)
      deleted = deleted + 1
    end
  end
  rcall('ZREMRANGEBYRANK', k(index), 0, n - 1)
  return deleted
end
return {trim('done', keep_done, 'completed'), trim('failed', keep_failed, 'failed')}
