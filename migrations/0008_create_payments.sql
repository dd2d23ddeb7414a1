-- Payments: the payment ledger of each order, the platform's fees, and the payment provider's
-- webhook events (deduplicated by event id).
--
-- Tenancy as in 0001: business_id leads every key and every foreign key between tenant tables;
-- RLS is enabled and forced with USING and WITH CHECK on every tenant table.
--
-- Who sees what:
-- * the business's staff (and platform admins): the payments and fees of their business;
-- * kind `customer`: the payments of their own orders (read); checkout (`customer`, or `public`
--   for a guest) adds the payment and fee rows of the order it places;
-- * kind `order_worker`: releases the payments of orders it rejects;
-- * kind `payment_webhook`: the webhook processor. It is scoped to the one business named in the
--   provider's own record of the payment (re-fetched from the provider, never taken from the
--   event), and may read and write that business's payment rows and the platform's table of
--   webhook events, nothing else.

CREATE TABLE payment_transactions (
    business_id             uuid NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    id                      uuid NOT NULL,
    order_id                uuid NOT NULL,
    customer_id             uuid,
    amount_minor            bigint NOT NULL CHECK (amount_minor >= 0),
    currency                char(3) NOT NULL,
    payment_method          text NOT NULL CHECK (payment_method IN ('cash', 'card')),
    payment_gateway         text NOT NULL CHECK (payment_gateway IN ('cash', 'stripe')),
    -- The gateway's id of the payment (Stripe `pi_…`); NULL until the gateway answered.
    gateway_transaction_id  text,
    status                  text NOT NULL CHECK (status IN
                                ('pending', 'authorized', 'completed', 'failed', 'refunded', 'canceled')),
    metadata                jsonb NOT NULL DEFAULT '{}',
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, id),
    FOREIGN KEY (business_id, order_id) REFERENCES orders (business_id, id),
    FOREIGN KEY (business_id, customer_id) REFERENCES customers (business_id, id)
);
-- One successful payment per order.
CREATE UNIQUE INDEX payment_transactions_one_completed_key
    ON payment_transactions (business_id, order_id) WHERE status = 'completed';
-- A gateway's payment is recorded once (webhooks find the row by it).
CREATE UNIQUE INDEX payment_transactions_gateway_key
    ON payment_transactions (business_id, payment_gateway, gateway_transaction_id)
    WHERE gateway_transaction_id IS NOT NULL;
CREATE INDEX payment_transactions_order_idx ON payment_transactions (business_id, order_id);

CREATE TABLE platform_fees (
    business_id        uuid NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    id                 uuid NOT NULL,
    order_id           uuid NOT NULL,
    fee_type           text NOT NULL CHECK (fee_type ~ '^[a-z][a-z0-9_]{0,63}$'),
    base_amount_minor  bigint NOT NULL CHECK (base_amount_minor >= 0),
    fee_bps            integer NOT NULL CHECK (fee_bps BETWEEN 0 AND 10000),
    fee_amount_minor   bigint NOT NULL CHECK (fee_amount_minor >= 0),
    currency           char(3) NOT NULL,
    payout_status      text NOT NULL DEFAULT 'pending' CHECK (payout_status IN ('pending', 'paid', 'waived')),
    created_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, id),
    UNIQUE (business_id, order_id, fee_type),
    FOREIGN KEY (business_id, order_id) REFERENCES orders (business_id, id)
);

-- Platform tier: the provider's webhook events, by the provider's event id. A row is written
-- in the same transaction as the payment change the event caused, so an event is either fully
-- processed and recorded, or neither (and the provider's retry processes it again).
CREATE TABLE payment_webhook_events (
    event_id           text PRIMARY KEY CHECK (length(event_id) BETWEEN 1 AND 255),
    provider           text NOT NULL CHECK (provider IN ('stripe')),
    event_type         text NOT NULL,
    -- The business the event's payment belongs to, when known (not tenant-owned data: the
    -- event is the provider's).
    scope_business_id  uuid,
    received_at        timestamptz NOT NULL DEFAULT now(),
    processed_at       timestamptz
);

-- Row level security ---------------------------------------------------------------------------

ALTER TABLE payment_transactions ENABLE ROW LEVEL SECURITY;
ALTER TABLE payment_transactions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_staff ON payment_transactions
    USING ((select app_is_admin()) OR business_id = (select app_business_id()) AND (select app_kind()) = 'staff')
    WITH CHECK ((select app_is_admin()) OR business_id = (select app_business_id()) AND (select app_kind()) = 'staff');
CREATE POLICY customer_read ON payment_transactions FOR SELECT
    USING (business_id = (select app_business_id()) AND (select app_kind()) = 'customer'
        AND customer_id = (select app_customer_id()));
CREATE POLICY payment_webhook ON payment_transactions
    USING (business_id = (select app_business_id()) AND (select app_kind()) = 'payment_webhook')
    WITH CHECK (business_id = (select app_business_id()) AND (select app_kind()) = 'payment_webhook');

-- Checkout runs as the customer (or `public` for a guest) and records the order's payment and
-- fee in the order's own transaction: it may add rows to an order it can see, nothing more.
CREATE POLICY order_party_insert ON payment_transactions FOR INSERT
    WITH CHECK ((select app_kind()) IN ('customer', 'public') AND business_id = (select app_business_id())
        AND EXISTS (SELECT 1 FROM orders o
                     WHERE o.business_id = payment_transactions.business_id AND o.id = payment_transactions.order_id));
-- The acceptance-timeout task releases the payments of the orders it rejects.
CREATE POLICY order_worker ON payment_transactions
    USING ((select app_kind()) = 'order_worker')
    WITH CHECK ((select app_kind()) = 'order_worker');

ALTER TABLE platform_fees ENABLE ROW LEVEL SECURITY;
ALTER TABLE platform_fees FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_staff ON platform_fees
    USING ((select app_is_admin()) OR business_id = (select app_business_id()) AND (select app_kind()) = 'staff')
    WITH CHECK ((select app_is_admin()) OR business_id = (select app_business_id()) AND (select app_kind()) = 'staff');

CREATE POLICY order_party_insert ON platform_fees FOR INSERT
    WITH CHECK ((select app_kind()) IN ('customer', 'public') AND business_id = (select app_business_id())
        AND EXISTS (SELECT 1 FROM orders o
                     WHERE o.business_id = platform_fees.business_id AND o.id = platform_fees.order_id));

ALTER TABLE payment_webhook_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE payment_webhook_events FORCE ROW LEVEL SECURITY;
CREATE POLICY payment_webhook ON payment_webhook_events
    USING ((select app_kind()) IN ('payment_webhook', 'admin'))
    WITH CHECK ((select app_kind()) IN ('payment_webhook', 'admin'));

-- Grants ---------------------------------------------------------------------------------------

GRANT SELECT, INSERT, UPDATE ON payment_transactions, platform_fees, payment_webhook_events TO fleetfront_app;
