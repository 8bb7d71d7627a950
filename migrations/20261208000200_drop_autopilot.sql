-- A drop's autopilot (docs/autopilot.md): the band its admission rate moves in and the two
-- targets it watches. All four set, or none (autopilot off: the rate is the manager's).
ALTER TABLE drops
    ADD COLUMN autopilot_min_rate INTEGER,
    ADD COLUMN autopilot_max_rate INTEGER,
    ADD COLUMN autopilot_p99_ms INTEGER,
    ADD COLUMN autopilot_lag_s INTEGER,
    ADD CONSTRAINT drops_autopilot_whole CHECK (
        (autopilot_min_rate IS NULL AND autopilot_max_rate IS NULL
            AND autopilot_p99_ms IS NULL AND autopilot_lag_s IS NULL)
        OR (autopilot_min_rate >= 1 AND autopilot_max_rate >= autopilot_min_rate
            AND autopilot_p99_ms >= 1 AND autopilot_lag_s >= 1));
