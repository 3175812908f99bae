-- Hand leases back without burning an attempt (the pool drains: stop, restart, shutdown).
-- ARGV[5] consumer; task ids from ARGV[6] on.
-- Returns, per task, { id, outcome, detail, type }: `requeued` (back at the head of its list),
-- `cancelled` (an operator cancelled it meanwhile) or `stale` (this consumer no longer held it).
local consumer = ARGV[5]
local out = {}
local n = 0
for i = 6, #ARGV do
  local entry, requeued = hand_back(ARGV[i], consumer, 'handed back: the pool is draining')
  out[#out + 1] = entry
  if requeued then n = n + 1 end
end
wake(n)
return out
