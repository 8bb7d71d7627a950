-- The manager's expected share of admitted buyers who never buy: the prior of the ETA
-- forecast (api/src/outlook/refresh.rs) until the drop has measured its own abandonment.
ALTER TABLE drops
    ADD COLUMN expected_abandon DOUBLE PRECISION NOT NULL DEFAULT 0
        CHECK (expected_abandon >= 0 AND expected_abandon <= 1);
