-- Remember the Vercel deployment a task created, the moment Vercel returns it, so a retried or
-- reclaimed attempt resumes it instead of creating a second one. ARGV[5] task id, ARGV[6] id,
-- ARGV[7] Vercel's inspector URL of the deployment ('' = not known; a stored one is kept).
-- Returns 1 when stored (0 when the record is gone).
local tk = task_key(ARGV[5])
if rcall('EXISTS', tk) == 0 then return 0 end
rcall('HSET', tk, 'deployment_id', ARGV[6])
if ARGV[7] and ARGV[7] ~= '' then rcall('HSET', tk, 'inspector_url', ARGV[7]) end
return 1
