--[[ manage.lua — apply a manager's change (state, configuration fields) to a drop's cfg.

Why a script: the mirror of a manager action must never paper over lost Redis state. The
fields are written only when both the cfg hash and the stock key exist, checked in the same
atomic step; the stock key is never created here (only drop creation and rebuild may).

KEYS[1] cfg  KEYS[2] stock
ARGV field1, value1, field2, value2, ... (at least one pair)

Returns "ok" (written), "no_drop" (neither key: unknown here, the caller asks PostgreSQL)
or "needs_rebuild" (one of the two is missing: nothing written).
]]
local has_cfg = redis.call('EXISTS', KEYS[1]) == 1
local has_stock = redis.call('EXISTS', KEYS[2]) == 1
if not has_cfg and not has_stock then return 'no_drop' end
if not (has_cfg and has_stock) then return 'needs_rebuild' end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 'ok'
