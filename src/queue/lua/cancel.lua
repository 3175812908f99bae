-- Cancel task ARGV[5]. Waiting tasks are cancelled at once; a running one is flagged and its
-- consumer stops it at the next lease renewal.
-- Returns the outcome: cancelled | cancelling | not_found | <terminal status>.
local id = ARGV[5]
local tk = task_key(id)
local f = fields(tk, 'status', 'priority')
local status = f[1]
if not status then return 'not_found' end
if status == 'in_progress' then
  rcall('HSET', tk, 'cancel_requested', '1')
  return 'cancelling'
end
if status == 'pending' or status == 'retrying' then
  rcall('LREM', k('pending:' .. f[2]), 0, id)
  cancel_now(id)
  trim_recent()
  return 'cancelled'
end
return status
