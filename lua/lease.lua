--[[ lease.lua — raises a drop's seq lease: cfg `seq_lease`, the highest admission seq
admit.lua may issue. The caller (api/src/drops/lease.rs) has already written at least this
value to PostgreSQL (drop_seq_leases.issued_upto), so after Redis loses the drop, the
rebuild knows every seq that may carry an acknowledged purchase.

Why a script: raise-only, and only on a drop Redis still has (a lost drop must not get a
cfg hash back from here; only creation and the rebuild write the configuration).

KEYS[1] cfg
ARGV[1] the new lease (decimal digits)
Returns the lease in force afterwards, or -1 when there is no cfg (nothing written).
]]
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local cur = tonumber(redis.call('HGET', KEYS[1], 'seq_lease') or '-1')
local new = tonumber(ARGV[1])
if new > cur then
  redis.call('HSET', KEYS[1], 'seq_lease', ARGV[1])
  return new
end
return cur
