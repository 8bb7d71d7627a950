-- Webhooks: endpoints, the event outbox and per endpoint × event delivery state.
--
-- Events are written by vq_webhook_emit() inside the transaction of the state change they
-- tell about (an order transition, the worker's order insert, a drop's phase change), so
-- a rollback invents none and a commit loses none. The emit fans out to the enabled
-- endpoints subscribed to the type in the same statement; with no subscriber it writes
-- nothing, so the outbox costs the hot paths nothing until someone listens.

CREATE TABLE webhook_endpoints (
    id                   UUID        PRIMARY KEY,
    url                  TEXT        NOT NULL,
    description          TEXT        NOT NULL DEFAULT '',
    events               TEXT[]      NOT NULL,
    include_pii          BOOLEAN     NOT NULL DEFAULT FALSE,
    -- Signing secrets: the current one, and during a rotation's overlap the previous one
    -- until previous_expires_at (both sign every delivery meanwhile).
    secret               TEXT        NOT NULL,
    previous_secret      TEXT,
    previous_expires_at  TIMESTAMPTZ,
    enabled              BOOLEAN     NOT NULL DEFAULT TRUE,
    disabled_reason      TEXT,
    disabled_at          TIMESTAMPTZ,
    -- First failure since the last success: failing for webhooks.disable_after disables.
    failing_since        TIMESTAMPTZ,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE webhook_events (
    seq           BIGSERIAL   PRIMARY KEY,
    id            UUID        NOT NULL UNIQUE,
    type          TEXT        NOT NULL,
    -- Events of one key (an order, a drop) reach each endpoint in seq order.
    ordering_key  TEXT        NOT NULL,
    order_id      BIGINT,
    drop_id       BIGINT,
    -- The order's buyer, for endpoints that asked for personal data (never sent otherwise).
    user_id       UUID,
    created_at    TIMESTAMPTZ NOT NULL,
    data          JSONB       NOT NULL
);

CREATE TABLE webhook_deliveries (
    endpoint_id      UUID        NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_seq        BIGINT      NOT NULL REFERENCES webhook_events (seq),
    ordering_key     TEXT        NOT NULL,
    state            TEXT        NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ NOT NULL,
    -- Held by the worker sending it until then; a worker that dies leaves it to expire.
    lease_until      TIMESTAMPTZ,
    last_status      INTEGER,
    last_error       TEXT,
    delivered_at     TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (endpoint_id, event_seq)
);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (endpoint_id, event_seq)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (endpoint_id, ordering_key, event_seq)
    WHERE state = 'pending';

CREATE TABLE webhook_attempts (
    id           BIGSERIAL   PRIMARY KEY,
    endpoint_id  UUID        NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_seq    BIGINT      NOT NULL REFERENCES webhook_events (seq),
    attempt      INTEGER     NOT NULL,
    status       INTEGER,
    error        TEXT,
    latency_ms   INTEGER     NOT NULL,
    outcome      TEXT        NOT NULL CHECK (outcome IN ('delivered', 'retrying', 'failed')),
    at           TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (endpoint_id, id DESC);

-- Drop phases that move with time or stock are announced once each (the scheduler).
ALTER TABLE drops
    ADD COLUMN wh_prequeue_at TIMESTAMPTZ,
    ADD COLUMN wh_live_at     TIMESTAMPTZ,
    ADD COLUMN wh_sold_out_at TIMESTAMPTZ;

-- Records one event and queues it for every enabled endpoint subscribed to its type;
-- returns how many deliveries were queued (0: nobody listens, nothing written).
CREATE FUNCTION vq_webhook_emit(p_type TEXT, p_key TEXT, p_order BIGINT, p_drop BIGINT,
                                p_user UUID, p_at TIMESTAMPTZ, p_data JSONB)
RETURNS INTEGER LANGUAGE plpgsql AS $$
DECLARE
    v_seq BIGINT;
    v_n   INTEGER;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM webhook_endpoints WHERE enabled AND p_type = ANY (events)) THEN
        RETURN 0;
    END IF;
    INSERT INTO webhook_events (id, type, ordering_key, order_id, drop_id, user_id, created_at, data)
    VALUES (gen_random_uuid(), p_type, p_key, p_order, p_drop, p_user, p_at, p_data)
    RETURNING seq INTO v_seq;
    INSERT INTO webhook_deliveries (endpoint_id, event_seq, ordering_key, next_attempt_at)
    SELECT id, v_seq, p_key, clock_timestamp() FROM webhook_endpoints
    WHERE enabled AND p_type = ANY (events);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END $$;

-- An order event: the order's public fields as data, ordered per order.
CREATE FUNCTION vq_webhook_order(p_type TEXT, p_id BIGINT, p_drop BIGINT, p_user UUID,
                                 p_status TEXT, p_quantity INTEGER, p_amount BIGINT,
                                 p_reason TEXT, p_at TIMESTAMPTZ)
RETURNS INTEGER LANGUAGE sql AS $$
    SELECT vq_webhook_emit(p_type, 'order:' || p_id, p_id, p_drop, p_user, p_at,
        jsonb_strip_nulls(jsonb_build_object('order_id', p_id, 'drop_id', p_drop,
            'status', p_status, 'quantity', p_quantity, 'amount_cents', p_amount,
            'reason', p_reason)));
$$;

-- A drop event: the drop's id, name and state as data, ordered per drop.
CREATE FUNCTION vq_webhook_drop(p_type TEXT, p_drop BIGINT, p_name TEXT, p_state TEXT,
                                p_at TIMESTAMPTZ)
RETURNS INTEGER LANGUAGE sql AS $$
    SELECT vq_webhook_emit(p_type, 'drop:' || p_drop, NULL, p_drop, NULL, p_at,
        jsonb_build_object('drop_id', p_drop, 'product_name', p_name, 'state', p_state));
$$;

-- Drops whose phases passed before webhooks existed are not announced after the fact.
UPDATE drops SET wh_prequeue_at = now()
WHERE starts_at - make_interval(secs => prequeue_s) <= now();
UPDATE drops SET wh_live_at = now() WHERE starts_at <= now();
UPDATE drops SET wh_sold_out_at = now() WHERE remaining_synced = 0;
