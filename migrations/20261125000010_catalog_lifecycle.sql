-- Catalog, order lifecycle, exactly-once restocks, wishlist and notifications.

CREATE TABLE products (
    id           BIGSERIAL PRIMARY KEY,
    name         TEXT        NOT NULL,
    description  TEXT        NOT NULL DEFAULT '',
    price_cents  BIGINT      NOT NULL CHECK (price_cents >= 0),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

ALTER TABLE drops
    ADD COLUMN product_id           BIGINT REFERENCES products (id),
    ADD COLUMN remaining_synced     INTEGER,
    ADD COLUMN synced_at            TIMESTAMPTZ,
    ADD COLUMN prequeue_notified_at TIMESTAMPTZ;

ALTER TABLE orders
    ADD COLUMN updated_at          TIMESTAMPTZ,
    ADD COLUMN payment_attempted_at TIMESTAMPTZ,
    ADD COLUMN paid_at             TIMESTAMPTZ,
    ADD COLUMN shipped_at          TIMESTAMPTZ,
    ADD COLUMN delivered_at        TIMESTAMPTZ,
    ADD COLUMN return_requested_at TIMESTAMPTZ,
    ADD COLUMN closed_at           TIMESTAMPTZ,
    ADD COLUMN payment_ref         TEXT,
    ADD COLUMN failure_reason      TEXT,
    ADD CONSTRAINT orders_status_known CHECK (status IN (
        'PENDING_PAYMENT', 'PAID', 'SHIPPING', 'DELIVERED', 'RETURN_REQUESTED', 'RETURNED',
        'CANCELLED', 'PAYMENT_FAILED', 'EXPIRED'));

CREATE INDEX orders_user ON orders (user_id, id DESC);
CREATE INDEX orders_open ON orders (status, reserved_at)
    WHERE status IN ('PENDING_PAYMENT', 'PAID', 'SHIPPING', 'RETURN_REQUESTED');

-- Outbox of stock to give back: written in the same transaction as the status change that
-- frees the stock, applied to Redis by an idempotent script, then marked applied.
CREATE TABLE restocks (
    order_id    BIGINT      PRIMARY KEY REFERENCES orders (id),
    drop_id     BIGINT      NOT NULL REFERENCES drops (id),
    user_id     UUID        NOT NULL,
    token       TEXT        NOT NULL,
    quantity    INTEGER     NOT NULL CHECK (quantity > 0),
    reason      TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    applied_at  TIMESTAMPTZ
);
CREATE INDEX restocks_pending ON restocks (order_id) WHERE applied_at IS NULL;

CREATE TABLE wishlist (
    user_id     UUID        NOT NULL,
    product_id  BIGINT      NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    note        TEXT        NOT NULL DEFAULT '',
    notify      BOOLEAN     NOT NULL DEFAULT TRUE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, product_id)
);

CREATE TABLE notifications (
    id          BIGSERIAL   PRIMARY KEY,
    user_id     UUID        NOT NULL,
    kind        TEXT        NOT NULL,
    drop_id     BIGINT      NOT NULL REFERENCES drops (id) ON DELETE CASCADE,
    message     TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    emailed_at  TIMESTAMPTZ,
    read_at     TIMESTAMPTZ,
    UNIQUE (user_id, kind, drop_id)
);
CREATE INDEX notifications_user ON notifications (user_id, id DESC);
