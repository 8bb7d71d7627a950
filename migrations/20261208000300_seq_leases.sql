-- No resale after Redis loss (docs/durability.md, "After Redis loss"). `issued_upto` is the
-- highest admission seq Redis may issue for the drop: an api node raises it here BEFORE it
-- raises the drop's `seq_lease` in Redis, which admit.lua never goes past, so after losing
-- Redis every seq that could carry an acknowledged purchase is at most `issued_upto`.
-- `held_back`: units a confirmed rebuild kept off sale because seqs up to `issued_upto`
-- have no order yet (their purchase may have been acknowledged and its stream entry lost).
CREATE TABLE drop_seq_leases (
    drop_id     BIGINT PRIMARY KEY REFERENCES drops(id) ON DELETE CASCADE,
    issued_upto BIGINT      NOT NULL CHECK (issued_upto >= 0),
    held_back   BIGINT      NOT NULL DEFAULT 0 CHECK (held_back >= 0),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Every rebuild of a drop's Redis state, and the refusals that waited for a manager.
CREATE TABLE drop_rebuilds (
    id             BIGSERIAL PRIMARY KEY,
    drop_id        BIGINT      NOT NULL REFERENCES drops(id) ON DELETE CASCADE,
    at             TIMESTAMPTZ NOT NULL DEFAULT now(),
    trigger        TEXT        NOT NULL CHECK (trigger IN ('cli', 'auto', 'admin')),
    confirmed      BOOLEAN     NOT NULL,
    issued_upto    BIGINT,
    orders_written BIGINT      NOT NULL,
    unwritten_seqs BIGINT      NOT NULL,
    held_back      BIGINT      NOT NULL,
    stock          BIGINT      NOT NULL
);
CREATE INDEX drop_rebuilds_drop ON drop_rebuilds (drop_id, at);
