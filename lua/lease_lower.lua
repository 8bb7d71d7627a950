--[[ lease_lower.lua — lowers a drop's seq lease (cfg `seq_lease`) to its admission counter
when nobody waits (api/src/drops/lease.rs), so that PostgreSQL, lowered right after under the
lease row's lock, holds exactly the seqs that were issued.

Why a script: the read of the counter and the write of the lease must be one step, or a
tick between them could issue a seq above the new lease.

KEYS[1] cfg  KEYS[2] admitted (the admission counter)
Returns the lease in force afterwards, or -1 when there is no cfg or no lease (nothing written).
]]
local cur = redis.call('HGET', KEYS[1], 'seq_lease')
if not cur then return -1 end
local admitted = tonumber(redis.call('GET', KEYS[2]) or '0')
if admitted < tonumber(cur) then
  redis.call('HSET', KEYS[1], 'seq_lease', admitted)
  return admitted
end
return tonumber(cur)
