--[[ places.lua — read the places of many connected buyers of one drop at once, and mark
them present.

Why a script: every open room socket re-reads its exact place now and then (the derived
place drifts when buyers ahead leave) and must mark its buyer present well inside the leave
grace. One join.lua peek per socket was 19,000 script calls every resync interval on a full
node; the api now gathers the sockets due in a short window and asks here once per drop
for up to a few hundred buyers. Only the plain case is answered: a queued buyer with no
token, in a drop that is open with stock left, seen within the grace. Anything else (a
live or run-out token, a stale last-seen, a sold-out or closed drop, no place) answers
"ask again": the api then runs join.lua's peek for that buyer, which owns every other rule.
So this script never changes a place; it only reads ranks and refreshes last-seen.

KEYS[1] cfg      HASH   state, starts_at, leave_grace_ms?
KEYS[2] queue    ZSET   waiting buyers
KEYS[3] holders  HASH   user -> live token
KEYS[4] stock    STRING remaining stock
KEYS[5] admitted STRING total buyers ever admitted
KEYS[6] seen     HASH   user -> last-seen ms
ARGV[1] now in ms, or "" to use the Redis server clock
ARGV[2..] user ids

Returns {admitted_total, prequeue(0|1), r1, r2, ...}: ri is the 0-based rank of the i-th
user, or -1 for "ask again" (join.lua peek). When the drop itself is not in the plain case
(no cfg, no stock key, closed, stock 0) every ri is -1.
]]
local n = #ARGV - 1
local out = {0, 0}
local function all_again()
  for i = 1, n do out[i + 2] = -1 end
  return out
end

local cfg = redis.call('HMGET', KEYS[1], 'state', 'starts_at', 'leave_grace_ms')
if not cfg[1] or cfg[1] == 'closed' then return all_again() end
local stock = tonumber(redis.call('GET', KEYS[4]) or '0')
if stock <= 0 then return all_again() end

local now
if ARGV[1] ~= '' then
  now = tonumber(ARGV[1])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local grace = tonumber(cfg[3]) or 60000
out[1] = tonumber(redis.call('GET', KEYS[5]) or '0')
if now < tonumber(cfg[2]) then out[2] = 1 end

for i = 1, n do
  local user = ARGV[i + 1]
  local r = -1
  if not redis.call('HGET', KEYS[3], user) then
    local rank = redis.call('ZRANK', KEYS[2], user)
    local seen = tonumber(redis.call('HGET', KEYS[6], user))
    if rank and seen and now - seen <= grace then
      redis.call('HSET', KEYS[6], user, now)
      r = rank
    end
  end
  out[i + 2] = r
end
return out
