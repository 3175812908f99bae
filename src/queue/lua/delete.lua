-- Delete dead-lettered task ARGV[5] for good: its record, its build and release progress, its place in the
-- `failed` and `recent` indexes, and its idempotency key when that still names it. Only a failed
-- task (or a dead-lettered id without a record) can be deleted.
-- Returns deleted | not_found | <current status>.
local id = ARGV[5]
local tk = task_key(id)
local f = fields(tk, 'status', 'idempotency_key')
local listed = rcall('ZSCORE', k('failed'), id)
if not f[1] and not listed then return 'not_found' end
if f[1] and f[1] ~= 'failed' then return f[1] end
if f[2] and f[2] ~= '' and rcall('GET', k('idem:' .. f[2])) == id then
  rcall('DEL', k('idem:' .. f[2]))
end
emit('task.deleted', id, 'deleted by an operator')
rcall('ZREM', k('failed'), id)
rcall('ZREM', k('recent'), id)
rcall('DEL', tk, k('build:' .. id), k('build:' .. id .. ':log'), k('release:' .. id))
return 'deleted'
