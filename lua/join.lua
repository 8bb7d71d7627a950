--[[ join.lua — put a buyer in a drop's waiting room (idempotent), or peek at their place.

Why a script: the state/stock/limit checks and the insert must be one atomic step, so a
buyer can never hold two places or join a closed drop between the check and the ZADD.

Both join and peek record the buyer as present (KEYS[11] last-seen = now). A queued buyer
whose last-seen is older than cfg `leave_grace_ms` (default 60000) has left: the place is
dropped and counted (KEYS[12]); a join then queues them again at the back, a peek answers
not_queued. A pre-queue joiner's pseudonym also goes into the draw list (KEYS[13], same
score), so the draw can be published and checked after start; a buyer who leaves stays on
that list (they were drawn). Once stock is 0 nobody new may join. A queued buyer is told
sold_out too but keeps the place (waitlist, detail "waiting"): units given back later go to
the earliest waiter (admit.lua), whose next join/peek then answers admitted. Whether units
may still come back (sold_out_pending) or not (sold_out) is the status of admit.lua's tick.

KEYS[1] cfg      HASH  state, starts_at, prequeue, limit, leave_grace_ms?, joins_cap?
KEYS[2] queue    ZSET  member=user, score: the draw score in [0,1) before start, 1+seq after
KEYS[3] seq      STRING join counter after start
KEYS[4] holders  HASH  user -> live token
KEYS[5] buyers   HASH  user -> quantity bought
KEYS[6] stock    STRING remaining stock (never created here)
KEYS[7] tokens   HASH  token -> "L|user" | "U|user" | "E|user"
KEYS[8] expiry   ZSET  live token -> expiry ms
KEYS[9] admitted STRING total buyers ever admitted (popped from the queue)
KEYS[10] expired STRING count of tokens that expired unused
KEYS[11] seen    HASH  user -> last-seen ms
KEYS[12] left    STRING count of buyers removed after the leave grace
KEYS[13] draw    ZSET  pseudonym -> draw score of every pre-queue joiner (revealed after start)
KEYS[14] joins   HASH  the join record the fairness report checks admissions against, written
                 here and nowhere else: field user -> how many times the buyer queued (n),
                 field "user#n" -> the queue score that join got, while the hash has fewer
                 than cfg `joins_cap` fields (default 2,000,000: memory stays bounded)
ARGV[1] user id
ARGV[2] now in ms, or "" to use the Redis server clock
ARGV[3] the buyer's draw score in [0,1) for a pre-queue joiner: the first 52 bits of
        HMAC-SHA256(seed, pseudonym), computed by the api (the seed must not reach anyone
        before start, and Lua has no HMAC); exact in a double, so the queue order at start
        is the order anyone recomputes from the revealed seed (vq_core::fairness)
ARGV[4] "join" or "peek" (peek never inserts)
ARGV[5] the buyer's per-drop pseudonym, recorded in KEYS[13] when joining in the pre-queue

Returns one of
  {"queued", rank0, admitted_total, prequeue(0|1)}
  {"admitted", token, expires_at_ms, seq}   seq: the admission order admit.lua named the
                                       token with (prefix.seq); 0 for a token not so named
  {"not_queued"}                       (peek only: a join would queue the buyer)
  {"err", code, detail}  code: no_drop (no cfg) | needs_rebuild (cfg but no stock key)
                               | closed | sold_out | limit_reached | not_open
                         detail of sold_out: "waiting" when the buyer keeps a place
]]
local function now_ms()
  if ARGV[2] ~= '' then return tonumber(ARGV[2]) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local user = ARGV[1]
local cfg = redis.call('HMGET', KEYS[1], 'state', 'starts_at', 'prequeue', 'limit',
                       'leave_grace_ms', 'joins_cap')
if not cfg[1] then return {'err', 'no_drop', ''} end
local stock = redis.call('GET', KEYS[6])
if not stock then return {'err', 'needs_rebuild', ''} end
stock = tonumber(stock)
local now = now_ms()

local tok = redis.call('HGET', KEYS[4], user)
if tok then
  local exp = tonumber(redis.call('ZSCORE', KEYS[8], tok) or '0')
  if exp > now then
    return {'admitted', tok, exp, tonumber(string.match(tok, '%.(%d+)$') or '0')}
  end
  -- the turn ran out: free the slot now; the buyer may queue again at the back
  redis.call('HSET', KEYS[7], tok, 'E|' .. user)
  redis.call('ZREM', KEYS[8], tok)
  redis.call('HDEL', KEYS[4], user)
  redis.call('INCR', KEYS[10])
end

if cfg[1] == 'closed' then return {'err', 'closed', ''} end

local admitted = tonumber(redis.call('GET', KEYS[9]) or '0')
local starts_at = tonumber(cfg[2])
local pre = 0
if now < starts_at then pre = 1 end
local rank = redis.call('ZRANK', KEYS[2], user)
if rank then
  local seen = tonumber(redis.call('HGET', KEYS[11], user))
  if seen and now - seen > (tonumber(cfg[5]) or 60000) then
    redis.call('ZREM', KEYS[2], user)
    redis.call('HDEL', KEYS[11], user)
    redis.call('INCR', KEYS[12])
    rank = nil
  end
end
if rank then
  redis.call('HSET', KEYS[11], user, now)
  if stock <= 0 then return {'err', 'sold_out', 'waiting'} end
  return {'queued', rank, admitted, pre}
end
if stock <= 0 then return {'err', 'sold_out', ''} end

local bought = tonumber(redis.call('HGET', KEYS[5], user) or '0')
if bought >= tonumber(cfg[4]) then return {'err', 'limit_reached', tostring(bought)} end

local opens_at = starts_at - tonumber(cfg[3])
if now < opens_at then return {'err', 'not_open', tostring(opens_at)} end
-- a peek answers every reason a join would be refused (the room page shows it without
-- opening a socket), and not_queued only when a join would queue the buyer
if ARGV[4] == 'peek' then return {'not_queued'} end

local score
if pre == 1 then
  score = tonumber(ARGV[3])
  redis.call('ZADD', KEYS[13], 'NX', score, ARGV[5])
else
  score = 1 + redis.call('INCR', KEYS[3])
end
redis.call('ZADD', KEYS[2], 'NX', score, user)
redis.call('HSET', KEYS[11], user, now)
local nth = redis.call('HINCRBY', KEYS[14], user, 1)
if redis.call('HLEN', KEYS[14]) < (tonumber(cfg[6]) or 2000000) then
  redis.call('HSET', KEYS[14], user .. '#' .. nth, score)
end
return {'queued', redis.call('ZRANK', KEYS[2], user), admitted, pre}
