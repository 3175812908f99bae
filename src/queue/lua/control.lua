-- Record an operator's pool command so every instance converges on it (each instance reads the
-- `control` hash every second). ARGV[5] scope: '' for the whole cluster or an instance id;
-- ARGV[6] command: start | stop | restart; ARGV[7] concurrency ('' = unchanged).
-- A cluster-wide command replaces per-instance overrides. Returns the control hash, flattened.
local scope, command, concurrency = ARGV[5], ARGV[6], ARGV[7]
local key = k('control')
local suffix = scope == '' and '' or (':' .. scope)
if scope == '' then
  for _, f in ipairs(rcall('HKEYS', key)) do
    if string.sub(f, 1, 6) == 'state:' or string.sub(f, 1, 12) == 'concurrency:' then
      rcall('HDEL', key, f)
    end
  end
end
if command == 'stop' then
  rcall('HSET', key, 'state' .. suffix, 'stopped')
else
  rcall('HSET', key, 'state' .. suffix, 'running')
end
if command == 'restart' then
  rcall('HINCRBY', key, 'restart_gen' .. suffix, 1)
end
if concurrency ~= '' then
  rcall('HSET', key, 'concurrency' .. suffix, concurrency)
elseif command ~= 'stop' then
  -- start/restart without a size: back to the instances' own WORKER_CONCURRENCY.
  rcall('HDEL', key, 'concurrency' .. suffix)
end
rcall('HSET', key, 'updated_at', now_iso())
return rcall('HGETALL', key)
