-- Extend the leases consumer ARGV[5] holds by ARGV[6] ms (and the project locks they hold); task
-- ids from ARGV[7] on.
-- Returns { lost, cancel }: ids whose lease this consumer no longer holds (reclaimed elsewhere or
-- finished), and ids an operator asked to cancel while they run.
local consumer, lease = ARGV[5], tonumber(ARGV[6])
local lost, cancel = {}, {}
for i = 7, #ARGV do
  local id = ARGV[i]
  local f = fields(task_key(id), 'status', 'worker', 'cancel_requested', 'project_lock')
  if f[1] == 'in_progress' and f[2] == consumer and rcall('ZSCORE', k('inflight'), id) then
    rcall('ZADD', k('inflight'), 'XX', NOW + lease, id)
    -- The project lock it holds lives as long as its lease.
    if f[4] and rcall('GET', project_key(f[4])) == id then
      rcall('PEXPIRE', project_key(f[4]), lease)
    end
    if f[3] == '1' then cancel[#cancel + 1] = id end
  else
    lost[#lost + 1] = id
  end
end
return {lost, cancel}
