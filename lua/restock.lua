--[[ restock.lua — give the stock of one cancelled/failed/expired/returned order back, once.

Why a script: the "already applied?" check and the increments must be atomic, so a retry
after a crash (PostgreSQL not yet told it was applied) or two appliers running at once can
never restock the same order twice. It never creates the stock key: if the drop's Redis
state is gone, nothing is applied and the caller retries after a rebuild.

KEYS[1] stock  KEYS[2] buyers (HASH user -> qty)  KEYS[3] restocked (SET of order ids)
KEYS[4] reservations (HASH token -> ...)  KEYS[5] events (channel)  KEYS[6] cfg
KEYS[7] unpaid (HASH token -> qty: open reservations)
ARGV[1] order id  ARGV[2] user id  ARGV[3] quantity  ARGV[4] token

Returns {"applied", remaining} when applied now, {"already", remaining} when it had been
applied before, {"no_drop", 0} without cfg, {"needs_rebuild", 0} with cfg but no stock key.
The purchase receipt is kept, so a purchase retry still replays its success.
Publishes {"type":"restock","remaining":N} when applied, so rooms can reopen.
]]
if redis.call('EXISTS', KEYS[6]) == 0 then return {'no_drop', 0} end
local stock = redis.call('GET', KEYS[1])
if not stock then return {'needs_rebuild', 0} end
if redis.call('SADD', KEYS[3], ARGV[1]) == 0 then
  return {'already', tonumber(stock)}
end
local qty = tonumber(ARGV[3])
local left = redis.call('INCRBY', KEYS[1], qty)
if redis.call('HINCRBY', KEYS[2], ARGV[2], -qty) <= 0 then
  redis.call('HDEL', KEYS[2], ARGV[2])
end
redis.call('HDEL', KEYS[4], ARGV[4])
redis.call('HDEL', KEYS[7], ARGV[4])
redis.call('PUBLISH', KEYS[5], cjson.encode({type = 'restock', remaining = left}))
return {'applied', left}
