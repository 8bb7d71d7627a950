--[[ gated_purchase.lua — the gate and the purchase of one request in ONE script call, on one
Redis server or behind Sentinels.

Why: a purchase was two script calls, gate.lua and then purchase.lua: two command dispatches
for Redis and two round trips for the api, on the hottest path there is. The gate's keys
(auth:revoked:{jti}, a bucket per address and per account) hash to other cluster slots than
the drop's, so a cluster keeps the two calls (api/src/drops/purchase.rs).

Not loaded alone: the loader (GATED_PURCHASE in core/src/scripts/mod.rs) puts gate.lua and purchase.lua
before this text, unchanged, as the bodies of the local functions `gate` and `purchase`,
each given its own KEYS and ARGV. So both stay the one source of their rules, their own
tests hold for them, and this glue only splits the arguments and chains the two.

The outcome is the two calls' in a row: a revoked token or the first empty bucket stops
before the purchase is tried (nothing of the drop is read or changed), otherwise the buckets
keep their cells whatever the purchase answers, exactly as before.

KEYS[1..g]      gate.lua's KEYS (g = ARGV[1], may be 0)
KEYS[g+1..]     purchase.lua's KEYS
ARGV[1]         g
ARGV[2]         a: how many of the ARGV after ARGV[2] are gate.lua's
ARGV[3..a+2]    gate.lua's ARGV
ARGV[a+3..]     purchase.lua's ARGV

Returns {'gate', revoked, refused, retry_after_ms} when the gate refused (gate.lua's reply
behind a tag purchase.lua never answers), else purchase.lua's reply as it is.
]]
local g, a = tonumber(ARGV[1]), tonumber(ARGV[2])
local gate_keys, purchase_keys, gate_argv, purchase_argv = {}, {}, {}, {}
for i = 1, #KEYS do
  if i <= g then gate_keys[i] = KEYS[i] else purchase_keys[i - g] = KEYS[i] end
end
for i = 3, #ARGV do
  if i <= a + 2 then gate_argv[i - 2] = ARGV[i] else purchase_argv[i - a - 2] = ARGV[i] end
end

-- One clock read for both: each reads TIME when its "now" argument is '' (gate.lua's ARGV[1],
-- purchase.lua's ARGV[4]), and the two share one instant anyway.
if gate_argv[1] == '' and purchase_argv[4] == '' then
  local t = redis.call('TIME')
  local now = string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
  gate_argv[1], purchase_argv[4] = now, now
end

local v = gate(gate_keys, gate_argv)
if v[1] == 1 or v[2] ~= 0 then return {'gate', v[1], v[2], v[3]} end
return purchase(purchase_keys, purchase_argv)
