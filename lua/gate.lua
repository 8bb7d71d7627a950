-- The gate of a hot request (join, purchase) on one Redis server or behind Sentinels: the
-- access token's revocation mark and every rate-limit bucket of the request in ONE script
-- call, where a pipeline of EXISTS and one ratelimit.lua call per bucket cost Redis a
-- command dispatch, a script call and a TIME each. Its keys live on different cluster
-- slots, so a cluster keeps the pipeline's concurrent commands (api/src/limits/gate.rs).
--
-- The buckets are GCRA exactly as in ratelimit.lua (same key, same stored TAT, so both
-- scripts may serve one bucket), taken one cell each, in order, as sequential checks would:
-- a revoked token takes nothing; the first refusal stops there, the buckets before it keep
-- their cell and the ones after it are not touched.
--
-- KEYS[1]     the token's revocation key when ARGV[2] is '1'; else the first bucket
-- KEYS[...]   the buckets, in the order they are checked
-- ARGV[1]     now in ms, or '' to read the Redis server clock (TIME)
-- ARGV[2]     '1' when KEYS[1] is a revocation key, '0' when there is none
-- ARGV[3..]   per bucket: emission interval in ms (> 0), then burst (>= 1)
--
-- Returns {revoked, refused, retry_after_ms}
--   revoked         1 when the revocation key exists (then nothing was taken), else 0
--   refused         0 when every bucket gave a cell; else the 1-based index of the first
--                   bucket (counting buckets only) that refused
--   retry_after_ms  how long until that bucket would give a cell (0 when none refused)

local first = 1
if ARGV[2] == '1' then
  if redis.call('EXISTS', KEYS[1]) == 1 then return {1, 0, 0} end
  first = 2
end

local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

for i = first, #KEYS do
  local b = i - first
  local interval = tonumber(ARGV[3 + 2 * b])
  local window = interval * tonumber(ARGV[4 + 2 * b])
  local tat = tonumber(redis.call('GET', KEYS[i])) or now
  if tat < now then tat = now end
  local new_tat = tat + interval
  if now < new_tat - window then
    return {0, b + 1, math.ceil(new_tat - window - now)}
  end
  -- '%d': an integer written as such, not through Lua's '%.14g' of a number argument
  redis.call('SET', KEYS[i], string.format('%.3f', new_tat),
    'PX', string.format('%d', math.max(1000, math.ceil(new_tat - now))))
end
return {0, 0, 0}
