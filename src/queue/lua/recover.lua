-- A consumer whose claim got no answer (a broken connection, a timeout: Redis may have run it)
-- hands back every task leased to it at once, without burning the attempts, instead of leaving
-- them stranded until their leases lapse. ARGV[5] consumer.
-- Returns, per task found, { id, outcome, detail, type }: `requeued` or `cancelled`.
local consumer = ARGV[5]
local out = {}
local n = 0
for _, id in ipairs(rcall('ZRANGE', k('inflight'), 0, -1)) do
  local f = fields(task_key(id), 'status', 'worker')
  if f[1] == 'in_progress' and f[2] == consumer then
    local entry, requeued = hand_back(id, consumer, 'handed back: the claim reply was lost')
    out[#out + 1] = entry
    if requeued then n = n + 1 end
  end
end
wake(n)
return out
