-- Drops: the durable copy of each drop's configuration (Redis holds the live mirror).
CREATE TABLE drops (
    id              BIGSERIAL PRIMARY KEY,
    product_name    TEXT        NOT NULL,
    price_cents     BIGINT      NOT NULL CHECK (price_cents >= 0),
    stock           INTEGER     NOT NULL CHECK (stock > 0),
    per_user_limit  INTEGER     NOT NULL CHECK (per_user_limit > 0),
    admission_rate  INTEGER     NOT NULL CHECK (admission_rate > 0),
    max_holders     INTEGER     NOT NULL CHECK (max_holders > 0),
    token_ttl_s     INTEGER     NOT NULL CHECK (token_ttl_s > 0),
    prequeue_s      INTEGER     NOT NULL CHECK (prequeue_s >= 0),
    starts_at       TIMESTAMPTZ NOT NULL,
    state           TEXT        NOT NULL DEFAULT 'active'
                    CHECK (state IN ('active', 'paused', 'closed')),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Orders: one row per successful purchase script call; the token id makes writes idempotent.
CREATE TABLE orders (
    id           BIGSERIAL PRIMARY KEY,
    token        TEXT        NOT NULL UNIQUE,
    drop_id      BIGINT      NOT NULL REFERENCES drops (id),
    user_id      UUID        NOT NULL,
    quantity     INTEGER     NOT NULL CHECK (quantity > 0),
    status       TEXT        NOT NULL DEFAULT 'PENDING_PAYMENT',
    reserved_at  TIMESTAMPTZ NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX orders_drop_user ON orders (drop_id, user_id);
