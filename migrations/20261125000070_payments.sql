-- Payments outside the database transaction, prices fixed at reservation, refunds.
--
-- CHARGING is committed before the provider is called (with the order id as idempotency
-- key) and finalised afterwards; the scheduler resolves orders a crash left in it.
-- amount_cents is what the holder pays, fixed when the worker writes the order, so a later
-- price edit does not change it. Refunds (cancel after payment, returns) are recorded here.

ALTER TABLE orders
    ADD COLUMN amount_cents   BIGINT,
    ADD COLUMN payment_method TEXT,
    ADD COLUMN refund_ref     TEXT,
    ADD COLUMN refunded_at    TIMESTAMPTZ,
    DROP CONSTRAINT orders_status_known,
    ADD CONSTRAINT orders_status_known CHECK (status IN (
        'PENDING_PAYMENT', 'CHARGING', 'PAID', 'SHIPPING', 'DELIVERED', 'RETURN_REQUESTED',
        'RETURNED', 'CANCELLED', 'PAYMENT_FAILED', 'EXPIRED'));

UPDATE orders o SET amount_cents = o.quantity * d.price_cents
FROM drops d WHERE d.id = o.drop_id AND o.amount_cents IS NULL;

ALTER TABLE orders
    ALTER COLUMN amount_cents SET NOT NULL,
    ADD CONSTRAINT orders_amount_known CHECK (amount_cents >= 0);

CREATE INDEX orders_charging ON orders (payment_attempted_at) WHERE status = 'CHARGING';
CREATE INDEX orders_refund_due ON orders (id)
    WHERE paid_at IS NOT NULL AND refunded_at IS NULL AND status IN ('CANCELLED', 'RETURNED');
