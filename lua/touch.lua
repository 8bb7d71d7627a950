--[[ touch.lua — record that a queued buyer is still there (open socket, or its close).

Why a script: the last-seen entry must only exist for buyers who hold a place, or the seen
hash would grow with every passer-by; the check and the write must be one step. The api
calls it while a socket is open (well inside the leave grace) and once when it closes, so
the grace of admit.lua/join.lua counts from the moment the buyer went away.

KEYS[1] queue (ZSET)  KEYS[2] seen (HASH user -> last-seen ms)
ARGV[1] user id  ARGV[2] now in ms, or "" to use the Redis server clock

Returns 1 when recorded, 0 when the buyer holds no place in the queue.
]]
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
local now
if ARGV[2] ~= '' then
  now = tonumber(ARGV[2])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
redis.call('HSET', KEYS[2], ARGV[1], now)
return 1
