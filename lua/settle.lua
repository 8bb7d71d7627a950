--[[ settle.lua — ends a staged purchase (purchase.lua with ARGV[5] = "1",
redis.durability = "strict"): commit it once a replica confirmed it, or undo it exactly when
none did, or commit the staged purchases an api node left behind.

Why a script: the commit (order entry + sold-out notice) and the undo (stock, the buyer's
count, reservation, receipt, unpaid mark, and the live token with its expiry and holder slot,
all as before the purchase) must each be one atomic step, and exactly one of them may ever
happen to a staged purchase: both start by removing the staged record, and do nothing when
it is already gone, so a repeat, or an undo racing a commit, changes nothing.

KEYS[1] staged  KEYS[2] orders (STREAM)  KEYS[3] cfg  KEYS[4] events (channel)
KEYS[5] stock  KEYS[6] buyers  KEYS[7] reservations  KEYS[8] unpaid  KEYS[9] receipts
KEYS[10] tokens  KEYS[11] expiry  KEYS[12] holders
ARGV[1] "commit" | "undo" | "stale"
ARGV[2] token (commit, undo) or, for stale, the cutoff in ms: every purchase staged before
        it is committed (its api node died, or its commit was lost in a failover after the
        replica confirmed the staged record: the buyer may hold a 201, so never undo those)
ARGV[3] now in ms (for the sold-out notice)

Returns the number of purchases committed or undone (0: nothing staged under that token).
]]
local function parse(v)
  local user, qty, ts, seq, exp, out = string.match(v, '^([^|]+)|(%d+)|(%d+)|(%d+)|(-?%d+)|([01])$')
  return user, qty, ts, seq, exp, out
end

local function commit(token, v)
  local user, qty, ts, seq, _, out = parse(v)
  redis.call('HDEL', KEYS[1], token)
  redis.call('XADD', KEYS[2], '*', 'token', token, 'user', user, 'qty', qty, 'ts', ts, 'seq', seq)
  if out == '1' then
    redis.call('HSETNX', KEYS[3], 'sold_out_at', ts)
    redis.call('PUBLISH', KEYS[4], cjson.encode({type = 'sold_out', now = tonumber(ARGV[3])}))
  end
end

local function undo(token, v)
  local user, qty, _, _, exp, _ = parse(v)
  redis.call('HDEL', KEYS[1], token)
  redis.call('INCRBY', KEYS[5], qty)
  if redis.call('HINCRBY', KEYS[6], user, -tonumber(qty)) <= 0 then
    redis.call('HDEL', KEYS[6], user)
  end
  redis.call('HDEL', KEYS[7], token)
  redis.call('HDEL', KEYS[8], token)
  redis.call('HDEL', KEYS[9], token)
  redis.call('HSET', KEYS[10], token, 'L|' .. user)
  redis.call('ZADD', KEYS[11], exp, token)
  redis.call('HSET', KEYS[12], user, token)
end

local mode = ARGV[1]
if mode == 'stale' then
  local cutoff, n = tonumber(ARGV[2]), 0
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    local _, _, ts = parse(all[i + 1])
    if tonumber(ts) < cutoff then
      commit(all[i], all[i + 1])
      n = n + 1
    end
  end
  return n
end
local v = redis.call('HGET', KEYS[1], ARGV[2])
if not v then return 0 end
if mode == 'commit' then commit(ARGV[2], v) else undo(ARGV[2], v) end
return 1
