-- GCRA rate limit of one bucket, shared by every api process: the budget of a limit
-- holds across the fleet instead of multiplying with the node count. A bucket is one
-- string key holding its theoretical arrival time (TAT, ms, three decimals so rates
-- faster than one per ms stay exact). The key expires when the bucket is full again
-- (or after 1 s, whichever is later), so idle clients cost no memory.
--
-- KEYS[1]  the bucket
-- ARGV[1]  now in ms, or '' to read the Redis server clock (TIME)
-- ARGV[2]  emission interval in ms: one cell refills every this long (> 0)
-- ARGV[3]  burst: cells that may be taken at once (>= 1)
-- ARGV[4]  cost: > 0 takes that many cells if they all fit (else nothing is taken);
--          0 only asks whether one more cell would fit; < 0 gives cells back
--          (a login that turned out right returns the cell it took)
--
-- Returns {allowed, retry_after_ms, remaining}
--   allowed         1 taken / would fit / given back; 0 refused (nothing changed)
--   retry_after_ms  0 when allowed, else how long until the request would fit
--   remaining       whole cells left afterwards

local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local interval = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local window = interval * burst

local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end

local function left(at)
  return math.floor((now + window - at) / interval)
end

local function store(at)
  if at <= now then
    redis.call('DEL', KEYS[1])
  else
    -- At least 1 s: the expiry runs on Redis's clock, `now` may come from the caller's
    -- (a manual test clock, a node a few ms apart), and a bucket that vanished before its
    -- TAT would hand out a full burst again. A TAT left past `now` reads as a full bucket.
    redis.call('SET', KEYS[1], string.format('%.3f', at), 'PX', math.max(1000, math.ceil(at - now)))
  end
end

if cost < 0 then
  tat = tat + cost * interval
  if tat < now then tat = now end
  store(tat)
  return {1, 0, left(tat)}
end

local new_tat = tat + math.max(cost, 1) * interval
local allow_at = new_tat - window
if now < allow_at then
  return {0, math.ceil(allow_at - now), left(tat)}
end
if cost > 0 then
  store(new_tat)
  tat = new_tat
end
return {1, 0, left(tat)}
