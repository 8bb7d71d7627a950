--[[ rate.lua — set a drop's admission rate (the cfg `rate` admit.lua reads) and record the
change in the drop's rate log.

Why a script: the autopilot decides from the rate it read; between its read and its write a
manager may have taken the rate back by hand (which turns the autopilot off). Checking
"autopilot still on, rate still the one I read" and writing the rate and its log entry must
be one step, or the manager's rate could be overwritten, or a change go unrecorded.

KEYS[1] cfg  KEYS[2] stock (never created)  KEYS[3] ratelog (LIST of JSON
        {t_ms, old, new, reason}, the newest last, capped at ARGV[6] entries)
ARGV[1] now in ms, or "" to use the Redis server clock
ARGV[2] new rate (integer >= 1)
ARGV[3] reason (wire name, see vq_core::autopilot::Reason)
ARGV[4] mode: "auto" (the autopilot: only while cfg `ap` is "1" and cfg `rate` equals
        ARGV[5]) or "manual" (a manager: always written and recorded, even when unchanged)
ARGV[5] the rate the autopilot decided from ("" in manual mode)
ARGV[6] most log entries kept

Also writes cfg `rate_reason` and `rate_at` (the last change, for the admin view).

Returns {status, old_rate}
status: ok (written, recorded) | unchanged (auto: the new rate is the current one; nothing
        written) | off (auto: the autopilot is off) | moved (auto: the rate is no longer
        ARGV[5]) | no_drop (no cfg) | needs_rebuild (cfg but no stock key); nothing is
        written but on ok.
]]
local cfg = redis.call('HMGET', KEYS[1], 'state', 'rate', 'ap')
if not cfg[1] then return {'no_drop', 0} end
if redis.call('EXISTS', KEYS[2]) == 0 then return {'needs_rebuild', 0} end
local old = tonumber(cfg[2]) or 0
local new = tonumber(ARGV[2])
if ARGV[4] == 'auto' then
  if cfg[3] ~= '1' then return {'off', old} end
  if old ~= tonumber(ARGV[5]) then return {'moved', old} end
  if new == old then return {'unchanged', old} end
end

local now
if ARGV[1] ~= '' then now = tonumber(ARGV[1]) else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
redis.call('HSET', KEYS[1], 'rate', new, 'rate_reason', ARGV[3], 'rate_at', now)
redis.call('RPUSH', KEYS[3], cjson.encode({t_ms = now, old = old, new = new, reason = ARGV[3]}))
redis.call('LTRIM', KEYS[3], -tonumber(ARGV[6]), -1)
return {'ok', old}
