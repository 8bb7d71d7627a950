--[[ admit.lua — one admission tick for one drop: expire stale tokens, then move up to N
buyers from the head of the queue to "admitted" and issue each a single-use token.

Why a script: the rate cap and the live-holder cap are only caps if the read of the
bucket/window/holder count and the pop happen atomically; any number of admission
processes may call this concurrently and the caps still hold.

Rate: a token bucket (burst = ceil(rate/4)) smooths admissions; a sliding 1-second window
of past batches makes "admissions in any 1000 ms never exceed rate" exact.

KEYS[1] cfg  KEYS[2] queue  KEYS[3] tokens  KEYS[4] expiry  KEYS[5] holders
KEYS[6] admitted  KEYS[7] bucket (HASH level, ts)  KEYS[8] window (ZSET "first:count" -> ms)
KEYS[9] stock  KEYS[10] admlog (STREAM ts, first, n, lo, hi per batch)  KEYS[11] events (channel)  KEYS[12] expired counter
ARGV[1] now in ms, or "" to use the Redis server clock
ARGV[2] max buyers to admit in this call
ARGV[3] random token prefix (hex); token i of this call is prefix .. "." .. i

Returns {status, admitted_n, admitted_total, queue_len, live_holders, expired_n,
         user1, token1, seq1, user2, ...}
status: ok | no_drop | paused | closed | not_started | sold_out
Publishes a JSON "tick" event on KEYS[11] (one per call) for the api nodes:
{type, now, status, admitted_total, queue_len, rate, live, remaining, admitted?: list of [user, token, expires_ms, seq],
 expired?: list of user}
That is vq_core::domain::DropEvent::Tick (core/src/domain/event.rs); core/tests/lua/events.rs
parses this script's actual message as that type, so keep the two in step.
]]
local function now_ms()
  if ARGV[1] ~= '' then return tonumber(ARGV[1]) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local now = now_ms()
local cfg = redis.call('HMGET', KEYS[1], 'state', 'starts_at', 'rate', 'max_holders', 'ttl')
if not cfg[1] then return {'no_drop', 0, 0, 0, 0, 0} end

-- 1. expired tokens free their slot
local expired_users = {}
local stale = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, 1000)
for _, t in ipairs(stale) do
  local v = redis.call('HGET', KEYS[3], t)
  if v then
    local u = string.sub(v, 3)
    redis.call('HSET', KEYS[3], t, 'E|' .. u)
    if redis.call('HGET', KEYS[5], u) == t then redis.call('HDEL', KEYS[5], u) end
    table.insert(expired_users, u)
  end
  redis.call('ZREM', KEYS[4], t)
end
if #stale > 0 then redis.call('INCRBY', KEYS[12], #stale) end

-- 2. how many may be admitted now
local status = 'ok'
local rate = tonumber(cfg[3])
local stock = tonumber(redis.call('GET', KEYS[9]) or '0')
if cfg[1] ~= 'active' then status = cfg[1]
elseif now < tonumber(cfg[2]) then status = 'not_started'
elseif stock <= 0 then status = 'sold_out' end

local total = tonumber(redis.call('GET', KEYS[6]) or '0')
local qlen = redis.call('ZCARD', KEYS[2])
local live = redis.call('ZCARD', KEYS[4])
local out = {}
local n = 0
if status == 'ok' then
  local burst = math.max(1, math.ceil(rate / 4))
  local b = redis.call('HMGET', KEYS[7], 'level', 'ts')
  local level, ts = tonumber(b[1]) or burst, tonumber(b[2]) or now
  level = math.min(burst, level + math.max(0, now - ts) * rate / 1000)

  redis.call('ZREMRANGEBYSCORE', KEYS[8], '-inf', now - 1000)
  local used = 0
  for _, m in ipairs(redis.call('ZRANGE', KEYS[8], 0, -1)) do
    used = used + tonumber(string.match(m, ':(%d+)$'))
  end

  n = math.min(math.floor(level), rate - used, tonumber(cfg[4]) - live,
               tonumber(ARGV[2]), qlen)
  if n > 0 then
    local ttl = tonumber(cfg[5])
    local popped = redis.call('ZPOPMIN', KEYS[2], n)
    n = #popped / 2
    for i = 1, n do
      local u = popped[2 * i - 1]
      local t = ARGV[3] .. '.' .. i
      redis.call('HSET', KEYS[3], t, 'L|' .. u)
      redis.call('ZADD', KEYS[4], now + ttl, t)
      redis.call('HSET', KEYS[5], u, t)
      table.insert(out, u); table.insert(out, t); table.insert(out, total + i)
    end
    redis.call('INCRBY', KEYS[6], n)
    redis.call('ZADD', KEYS[8], now, (total + 1) .. ':' .. n)
    -- lo/hi: queue scores of the batch's first and last buyer, so an audit can prove
    -- that scores never go down across batches (FIFO over every admission).
    redis.call('XADD', KEYS[10], 'MAXLEN', '~', 100000, '*',
               'ts', now, 'first', total + 1, 'n', n, 'lo', popped[2], 'hi', popped[2 * n])
    level = level - n
    total = total + n
    qlen = qlen - n
    live = live + n
  else
    n = 0
  end
  redis.call('HSET', KEYS[7], 'level', level, 'ts', now)
end

-- 3. one broadcast per tick: api nodes derive every position from it
local adm = {}
for i = 1, #out, 3 do
  table.insert(adm, {out[i], out[i + 1], now + tonumber(cfg[5]), out[i + 2]})
end
local ev = {type = 'tick', now = now, status = status, admitted_total = total,
            queue_len = qlen, rate = rate, live = live, remaining = stock}
if #adm > 0 then ev.admitted = adm end
if #expired_users > 0 then ev.expired = expired_users end
redis.call('PUBLISH', KEYS[11], cjson.encode(ev))

local res = {status, n, total, qlen, live, #stale}
for _, v in ipairs(out) do table.insert(res, v) end
return res
