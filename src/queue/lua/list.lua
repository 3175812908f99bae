-- One page of a listing: walk index ARGV[5] (`recent` or `failed`) newest first, from the cursor
-- on, and return the records that match the filters. Read-only.
--   ARGV[6] limit (records returned at most)   ARGV[7] scan budget (index entries examined at most)
--   ARGV[8] cursor score ('' = from the newest entry)   ARGV[9] cursor id
--   ARGV[10] status, ARGV[11] type, ARGV[12] priority, ARGV[13] id prefix ('' = any)
-- The walk order is the index's: score descending, equal scores by member descending (ZREVRANGE).
-- A cursor is the (score, id) of the last entry examined; the page after it starts at the first
-- entry that sorts after that pair, found with ZCOUNT and a binary search among equal scores, so
-- it stays put while new entries arrive at the head and whether or not its own entry still exists.
-- Only `status`, `type` and `priority` are read (HMGET) to filter; whole records (HGETALL) are read
-- for the matches alone. Missing records and keys that are not hashes are skipped.
-- Returns { examined, next, matches }: next = { score, id } of the last entry examined, or {}
-- when the index holds nothing after it; matches = { id, flat field/value list } per record.
local index, limit, budget = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
local cursor_score, cursor_id = ARGV[8], ARGV[9]
local want_status, want_type, want_prio, prefix = ARGV[10], ARGV[11], ARGV[12], ARGV[13]
if index ~= 'recent' and index ~= 'failed' then
  return redis.error_reply('list: unknown index ' .. index)
end
local key = k(index)
-- Index entries fetched per ZREVRANGE.
local CHUNK = 100

-- Byte order (memcmp), the order Redis gives equal-score members; Lua's `<` follows the locale.
local function before(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

-- Rank (0-based, newest first) of the first entry after the cursor.
local function start_rank()
  if cursor_score == '' then return 0 end
  local lo = rcall('ZCOUNT', key, '(' .. cursor_score, '+inf')
  local hi = lo + rcall('ZCOUNT', key, cursor_score, cursor_score)
  -- Ranks lo .. hi-1 hold the cursor's score, members descending: find the first one below its id.
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    local m = rcall('ZREVRANGE', key, mid, mid)[1]
    if m and before(m, cursor_id) then hi = mid else lo = mid + 1 end
  end
  return lo
end

-- Whether entry `id` passes the filters. Only the three small filter fields are read; a missing
-- record, or a key that is not a hash (the read fails, caught by pcall), never matches.
local function wanted(id)
  if prefix ~= '' and string.sub(id, 1, #prefix) ~= prefix then return false end
  local f = rpcall('HMGET', task_key(id), 'status', 'type', 'priority')
  if type(f) ~= 'table' or f.err or not (f[1] or f[2] or f[3]) then return false end
  return (want_status == '' or f[1] == want_status) and (want_type == '' or f[2] == want_type)
    and (want_prio == '' or f[3] == want_prio)
end

local total = rcall('ZCARD', key)
local rank = start_rank()
local examined, ids, last = 0, {}, nil
while #ids < limit and examined < budget and rank < total do
  local n = math.min(CHUNK, budget - examined)
  local chunk = rcall('ZREVRANGE', key, rank, rank + n - 1, 'WITHSCORES')
  if #chunk == 0 then break end
  for i = 1, #chunk, 2 do
    examined, rank = examined + 1, rank + 1
    last = {chunk[i + 1], chunk[i]}
    if wanted(chunk[i]) then ids[#ids + 1] = chunk[i] end
    if #ids >= limit then break end
  end
end

local matches = {}
for _, id in ipairs(ids) do
  local flat = rpcall('HGETALL', task_key(id))
  if type(flat) == 'table' and not flat.err and #flat > 0 then
    matches[#matches + 1] = {id, flat}
  end
end
local after = {}
if last and rank < total then after = last end
return {examined, after, matches}
