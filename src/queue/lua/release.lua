-- Hand leases back without burning an attempt (the pool drains, or a batch ran past its time).
-- ARGV[5] consumer; task ids from ARGV[6] on, in the order they were claimed.
-- They are handed back last first, so that each list's head again holds the oldest (FIFO kept).
-- Returns, per task in the order given, { id, outcome, detail, type }: `requeued` (back at the head of its list),
-- `cancelled` (an operator cancelled it meanwhile) or `stale` (this consumer no longer held it).
local consumer = ARGV[5]
local out = {}
local n = 0
for i = #ARGV, 6, -1 do
  local entry, requeued = hand_back(ARGV[i], consumer, 'handed back by its consumer')
  out[i - 5] = entry
  if requeued then n = n + 1 end
end
wake(n)
return out
