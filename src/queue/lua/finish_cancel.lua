-- A consumer stopped a running task because an operator cancelled it. ARGV[5] consumer,
-- ARGV[6] task id.
-- Returns { { id, outcome, detail, type } }: `cancelled`, or `stale` when this consumer no longer
-- held the task.
local consumer, id = ARGV[5], ARGV[6]
local f = fields(task_key(id), 'status', 'worker', 'type')
local ty = f[3] or ''
if f[1] ~= 'in_progress' or f[2] ~= consumer then return {{id, 'stale', f[1] or 'missing', ty}} end
cancel_now(id, 'cancelled while running')
trim_recent()
return {{id, 'cancelled', 'cancelled while running', ty}}
