--[[ admit.lua — one admission tick for one drop: expire stale tokens, then move up to N
buyers from the head of the queue to "admitted" and issue each a single-use token.

Why a script: the rate cap, the live-holder cap and the stock-aware cap are only caps if the
read of the bucket/window/holder count/stock and the pop happen atomically; any number of
admission processes may call this concurrently and the caps still hold.

Rate: a token bucket (burst = ceil(rate/4)) smooths admissions; a sliding 1-second window
of past batches makes "admissions in any 1000 ms never exceed rate" exact.

Stock-aware cap: live tokens never exceed ceil(stock × overbook). `stock` already excludes
reserved units (purchase decrements it), so it is "remaining − open reservations". `overbook`
is the cfg field (default 1.5); once the drop has sold out (cfg `sold_out_at` set) the factor
is 1: every unit given back is offered as exactly one token, to the earliest buyer waiting.

Leave grace: a buyer whose last-seen (KEYS[14], written by join/touch) is older than cfg
`leave_grace_ms` (default 60000) when they reach the head is removed instead of admitted,
counted in KEYS[15] and listed in the tick event. A buyer without a last-seen entry (e.g.
after a rebuild) counts as present.

KEYS[1] cfg  KEYS[2] queue  KEYS[3] tokens  KEYS[4] expiry  KEYS[5] holders
KEYS[6] admitted  KEYS[7] bucket (HASH level, ts)  KEYS[8] window (ZSET "first:count" -> ms)
KEYS[9] stock  KEYS[10] admlog (STREAM ts, first, n, lo, hi per batch)  KEYS[11] events (channel)
KEYS[12] expired counter  KEYS[13] unpaid (HASH token -> qty, open reservations)
KEYS[14] seen (HASH user -> last-seen ms)  KEYS[15] left counter
KEYS[16] admorder (LIST: "user#n" of every admitted buyer in admission order, n being which
         of the buyer's joins the place came from; the first 1,000,000 admissions only)
KEYS[17] joins   (HASH, written by join.lua: user -> n). The fairness report looks each
         admission's join up in join.lua's own record, never in what this pop returned, so
         an admission out of join order shows as an inversion.
Seq lease: cfg `seq_lease`, when set, is the highest seq this script may issue (the api
writes it to PostgreSQL first, lua/lease.lua raises it here): admissions stop at it until
it is raised, so after a Redis loss the rebuild knows every seq that may hold a purchase.
No `seq_lease` (a drop made by hand, a test): no such cap.
Also kept in cfg for the fairness report: `adm_peak_1s` (most admissions in any 1000 ms
so far) and `sold_out_told` (buyers still queued when the drop turned final sold_out).
ARGV[1] now in ms, or "" to use the Redis server clock
ARGV[2] max buyers to admit in this call
ARGV[3] random token prefix (hex); a token is prefix .. "." .. seq, seq being the buyer's 1-based
        admission order in this drop, so the purchase derives a deterministic order id from
        the token alone (order id = drop id * 2^32 + seq; see purchase.lua)

Returns {status, admitted_n, admitted_total, queue_len, live_holders, expired_n, remaining,
         open_reservations, left_n, left_user1 .. left_userN, user1, token1, seq1, user2, ...}
status: ok | no_drop | needs_rebuild | paused | closed | not_started
        | sold_out_pending (stock 0, but a live token or open reservation may give units back)
        | sold_out (stock 0, no live token, no open reservation: nothing can come back)
no_drop (no cfg) and needs_rebuild (cfg but no stock key) change nothing and publish nothing.
Publishes a JSON "tick" event on KEYS[11] (one per call) for the api nodes:
{type, now, status, admitted_total, queue_len, rate, live, remaining, open, left_total,
 lease?: the seq lease in force, admitted?: list of [user, token, expires_ms, seq],
 expired?: list of user, left?: list of user}
That is vq_core::domain::DropEvent::Tick (core/src/domain/event.rs); core/tests/lua/events.rs
parses this script's actual message as that type, so keep the two in step.
]]
local function now_ms()
  if ARGV[1] ~= '' then return tonumber(ARGV[1]) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local now = now_ms()
local cfg = redis.call('HMGET', KEYS[1], 'state', 'starts_at', 'rate', 'max_holders', 'ttl',
                       'overbook', 'sold_out_at', 'leave_grace_ms', 'seq_lease')
if not cfg[1] then return {'no_drop', 0, 0, 0, 0, 0, 0, 0, 0} end
local stock = redis.call('GET', KEYS[9])
if not stock then return {'needs_rebuild', 0, 0, 0, 0, 0, 0, 0, 0} end
stock = tonumber(stock)
local ttl = tonumber(cfg[5])
local grace = tonumber(cfg[8]) or 60000

-- 1. expired tokens free their slot
local function expire()
  local users = {}
  local stale = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, 1000)
  for _, t in ipairs(stale) do
    local v = redis.call('HGET', KEYS[3], t)
    if v then
      local u = string.sub(v, 3)
      redis.call('HSET', KEYS[3], t, 'E|' .. u)
      if redis.call('HGET', KEYS[5], u) == t then redis.call('HDEL', KEYS[5], u) end
      table.insert(users, u)
    end
    redis.call('ZREM', KEYS[4], t)
  end
  if #stale > 0 then redis.call('INCRBY', KEYS[12], #stale) end
  return users, #stale
end
local expired_users, expired_n = expire()

-- 2. status
local rate = tonumber(cfg[3])
local live = redis.call('ZCARD', KEYS[4])
local open = redis.call('HLEN', KEYS[13])
local status = 'ok'
if cfg[1] ~= 'active' then status = cfg[1]
elseif now < tonumber(cfg[2]) then status = 'not_started'
elseif stock <= 0 then
  redis.call('HSETNX', KEYS[1], 'sold_out_at', now)
  if live > 0 or open > 0 then status = 'sold_out_pending' else status = 'sold_out' end
end

-- 3. how many may be admitted now
local function allowance(level, qlen)
  redis.call('ZREMRANGEBYSCORE', KEYS[8], '-inf', now - 1000)
  local used = 0
  for _, m in ipairs(redis.call('ZRANGE', KEYS[8], 0, -1)) do
    used = used + tonumber(string.match(m, ':(%d+)$'))
  end
  local factor = tonumber(cfg[6]) or 1.5
  if cfg[7] then factor = 1 end
  local cap = math.ceil(stock * factor)
  return math.min(math.floor(level), rate - used, tonumber(cfg[4]) - live, cap - live,
                  tonumber(ARGV[2]), qlen), used
end

-- 4. pop the head: buyers gone past the grace are removed, the others get a token
local function pop(want, total, out, left)
  local got, lo, hi, scanned = 0, nil, nil, 0
  while got < want and scanned < want + 1000 do
    local popped = redis.call('ZPOPMIN', KEYS[2], want - got)
    if #popped == 0 then break end
    for i = 1, #popped, 2 do
      local u, score = popped[i], popped[i + 1]
      scanned = scanned + 1
      local seen = tonumber(redis.call('HGET', KEYS[14], u))
      redis.call('HDEL', KEYS[14], u)
      if seen and now - seen > grace then
        table.insert(left, u)
      else
        got = got + 1
        local t = ARGV[3] .. '.' .. (total + got)
        redis.call('HSET', KEYS[3], t, 'L|' .. u)
        redis.call('ZADD', KEYS[4], now + ttl, t)
        redis.call('HSET', KEYS[5], u, t)
        table.insert(out, u); table.insert(out, t); table.insert(out, total + got)
        if total + got <= 1000000 then
          redis.call('RPUSH', KEYS[16], u .. '#' .. (redis.call('HGET', KEYS[17], u) or '0'))
        end
        lo = lo or score
        hi = score
      end
    end
  end
  return got, lo, hi
end

local total = tonumber(redis.call('GET', KEYS[6]) or '0')
local qlen = redis.call('ZCARD', KEYS[2])
local out, left = {}, {}
local n = 0
if status == 'ok' then
  local burst = math.max(1, math.ceil(rate / 4))
  local b = redis.call('HMGET', KEYS[7], 'level', 'ts')
  local level, ts = tonumber(b[1]) or burst, tonumber(b[2]) or now
  level = math.min(burst, level + math.max(0, now - ts) * rate / 1000)
  local want, used = allowance(level, qlen)
  local lease = tonumber(cfg[9])
  if lease then want = math.max(0, math.min(want, lease - total)) end
  if want > 0 then
    local lo, hi
    n, lo, hi = pop(want, total, out, left)
    if n > 0 then
      redis.call('INCRBY', KEYS[6], n)
      local peak = tonumber(redis.call('HGET', KEYS[1], 'adm_peak_1s') or '0')
      if used + n > peak then redis.call('HSET', KEYS[1], 'adm_peak_1s', used + n) end
      redis.call('ZADD', KEYS[8], now, (total + 1) .. ':' .. n)
      -- lo/hi: queue scores of the batch's first and last buyer, so an audit can prove
      -- that scores never go down across batches (FIFO over every admission).
      redis.call('XADD', KEYS[10], 'MAXLEN', '~', 100000, '*',
                 'ts', now, 'first', total + 1, 'n', n, 'lo', lo, 'hi', hi)
    end
    if #left > 0 then redis.call('INCRBY', KEYS[15], #left) end
    level = level - n
    total = total + n
    qlen = qlen - n - #left
    live = live + n
  end
  redis.call('HSET', KEYS[7], 'level', level, 'ts', now)
end

if status == 'sold_out' then redis.call('HSETNX', KEYS[1], 'sold_out_told', qlen) end

-- 5. one broadcast per tick: api nodes derive every position from it
local adm = {}
for i = 1, #out, 3 do
  table.insert(adm, {out[i], out[i + 1], now + ttl, out[i + 2]})
end
local ev = {type = 'tick', now = now, status = status, admitted_total = total,
            queue_len = qlen, rate = rate, live = live, remaining = stock, open = open,
            left_total = tonumber(redis.call('GET', KEYS[15]) or '0'), lease = tonumber(cfg[9])}
if #adm > 0 then ev.admitted = adm end
if #expired_users > 0 then ev.expired = expired_users end
if #left > 0 then ev.left = left end
redis.call('PUBLISH', KEYS[11], cjson.encode(ev))

local res = {status, n, total, qlen, live, expired_n, stock, open, #left}
for _, u in ipairs(left) do table.insert(res, u) end
for _, v in ipairs(out) do table.insert(res, v) end
return res
