--[[ purchase.lua — the only way stock leaves Redis: burn a token and reserve stock.

Why a script: token check + burn + per-user limit + stock decrement + reservation record +
enqueue for the order writer must be one atomic step, or two requests could both pass the
checks (oversell, double spend) or a reservation could exist without its order message.

Idempotent: a successful purchase leaves a receipt (KEYS[11], kept even when the unit is
later given back), so a retry of the same token by the same account with the same quantity
(e.g. after a lost reply) answers the same "ok" again, flagged as replayed, and changes
nothing. Another account still gets not_your_token; another quantity gets token_used.

KEYS[1] cfg  KEYS[2] tokens  KEYS[3] expiry  KEYS[4] holders  KEYS[5] stock (never created)
KEYS[6] buyers  KEYS[7] orders (STREAM read by the workers)  KEYS[8] events (channel)
KEYS[9] reservations (HASH token -> "user|qty|ms", until given back)  KEYS[10] expired counter
KEYS[11] receipts (HASH token -> "qty|remaining|user_total|ms")
KEYS[12] unpaid (HASH token -> qty: open reservations, until paid or given back)
KEYS[13] staged (HASH token -> "user|qty|ms|seq|expiry|sold_out(0|1)", only with ARGV[5])
ARGV[1] token  ARGV[2] user id  ARGV[3] quantity (>= 1, decimal digits)
ARGV[4] now in ms (decimal digits) or ""
ARGV[5] "1": staged (redis.durability = "strict"): the reservation is made, but its order
        entry (XADD) and the sold-out notice wait in KEYS[13] for lua/settle.lua, which
        commits them once a replica confirmed the reservation, or undoes it all when none
        did. No worker can see a staged purchase, so an undo is exact. Absent: as before.

Order id: admit.lua names a token prefix.seq (seq = admission order in the drop); the seq is
returned and carried in the stream entry, and order id = drop id * 2^32 + seq, so the reply
(and its replay) carries the id of the order the worker will write. seq 0: a token not
named by admit.lua (the worker then lets PostgreSQL pick the id).

Returns {code, ...}
  {"ok", remaining_stock, user_total, replayed(0|1), seq}  stock reserved, order enqueued
  {"no_drop"}          no cfg: unknown here (the caller asks PostgreSQL)
  {"needs_rebuild"}    cfg but no stock key: state lost, nothing changed
  {"invalid_token"}    unknown token              (token kept: nothing to keep)
  {"not_your_token"}   token of another account   (token kept for its owner)
  {"token_used"} / {"token_expired"}
  {"drop_closed"}                                 (token kept)
  {"limit_reached", allowance}   allowance 0: token burned; >0: quantity too big, kept
  {"sold_out", 0}                                 token burned
  {"insufficient_stock", remaining}               quantity too big, token kept
Sets cfg sold_out_at and publishes {"type":"sold_out","now":ms} when the stock reaches 0
(units may still come back: admit.lua's tick status says when nothing can).
]]
-- Numbers go back to Redis as the strings they came in (qty_s, seq_s, now_s): Lua turns a
-- number into a string with sprintf('%.14g'), and the dozen such conversions of a purchase
-- were about 5 % of Redis's instructions per purchase (callgrind; BENCHMARKS.md, section
-- "Instructions and CPU per HTTP purchase").
local token, user, qty_s = ARGV[1], ARGV[2], ARGV[3]
local qty = tonumber(qty_s)
local seq_s = string.match(token, '%.(%d+)$') or '0'
local seq = tonumber(seq_s)
local function now_ms()
  if ARGV[4] ~= '' then return tonumber(ARGV[4]) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local cfg = redis.call('HMGET', KEYS[1], 'state', 'limit')
if not cfg[1] then return {'no_drop'} end
local stock_v = redis.call('GET', KEYS[5])
if not stock_v then return {'needs_rebuild'} end

local v = redis.call('HGET', KEYS[2], token)
if not v then return {'invalid_token'} end
if string.sub(v, 3) ~= user then return {'not_your_token'} end
local st = string.sub(v, 1, 1)
if st == 'U' then
  local r = redis.call('HGET', KEYS[11], token)
  if r then
    local q, left, total = string.match(r, '^(%d+)|(-?%d+)|(%d+)|')
    if tonumber(q) == qty then return {'ok', tonumber(left), tonumber(total), 1, seq} end
  end
  return {'token_used'}
end
if st == 'E' then return {'token_expired'} end

local now = now_ms()
local now_s = ARGV[4] ~= '' and ARGV[4] or string.format('%d', now)
local exp = tonumber(redis.call('ZSCORE', KEYS[3], token) or '0')
if exp <= now then
  redis.call('HSET', KEYS[2], token, 'E|' .. user)
  redis.call('ZREM', KEYS[3], token)
  redis.call('HDEL', KEYS[4], user)
  redis.call('INCR', KEYS[10])
  return {'token_expired'}
end

if cfg[1] == 'closed' then return {'drop_closed'} end

local function burn()
  redis.call('HSET', KEYS[2], token, 'U|' .. user)
  redis.call('ZREM', KEYS[3], token)
  redis.call('HDEL', KEYS[4], user)
end

local bought = tonumber(redis.call('HGET', KEYS[6], user) or '0')
local allowance = tonumber(cfg[2]) - bought
local stock = tonumber(stock_v)
if allowance <= 0 then burn(); return {'limit_reached', 0} end
if stock <= 0 then burn(); return {'sold_out', 0} end
if qty > allowance then return {'limit_reached', allowance} end
if qty > stock then return {'insufficient_stock', stock} end

burn()
local left = redis.call('DECRBY', KEYS[5], qty_s)
local total = redis.call('HINCRBY', KEYS[6], user, qty_s)
redis.call('HSET', KEYS[9], token, user .. '|' .. qty_s .. '|' .. now_s)
redis.call('HSET', KEYS[12], token, qty_s)
redis.call('HSET', KEYS[11], token,
           qty_s .. '|' .. string.format('%d|%d|', left, total) .. now_s)
if ARGV[5] == '1' then
  redis.call('HSET', KEYS[13], token, user .. '|' .. qty_s .. '|' .. now_s .. '|' .. seq_s ..
             '|' .. string.format('%d', exp) .. '|' .. (left == 0 and '1' or '0'))
  return {'ok', left, total, 0, seq}
end
redis.call('XADD', KEYS[7], '*', 'token', token, 'user', user, 'qty', qty_s, 'ts', now_s,
            'seq', seq_s)
if left == 0 then
  redis.call('HSETNX', KEYS[1], 'sold_out_at', now_s)
  redis.call('PUBLISH', KEYS[8], cjson.encode({type = 'sold_out', now = now}))
end
return {'ok', left, total, 0, seq}
