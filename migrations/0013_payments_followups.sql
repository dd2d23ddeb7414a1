-- Payments follow-ups: orders awaiting the customer's card authentication (3-D Secure), the
-- payment jobs that move money after an order's status change, and customers' saved cards
-- (the provider's tokens only).
--
-- Tenancy as in 0007/0008: business_id leads every key and every foreign key between tenant
-- tables; RLS is enabled and forced with USING and WITH CHECK on every tenant table.
--
-- Who sees what:
-- * kind `customer`: their own provider account and saved cards (nobody else but platform
--   admins sees them);
-- * the business's staff (and platform admins): the payment jobs of their business (their
--   order transitions add them);
-- * kind `order_worker`: the order system. It runs the payment jobs of every business (claimed
--   with `FOR UPDATE SKIP LOCKED`, like the acceptance timeout) and confirms or expires orders
--   awaiting payment; for that it reads the commerce settings and the subscription of the one
--   business it is scoped to (`app.business_id`), records that business's platform fees, and
--   releases or drops the confirmation email held back for an order awaiting payment.

-- Orders awaiting payment ----------------------------------------------------------------------

ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check CHECK (status IN
    ('awaiting_payment', 'pending', 'confirmed', 'preparing', 'ready', 'picked_up', 'delivered',
     'rejected', 'cancelled', 'refunded'));
ALTER TABLE orders DROP CONSTRAINT orders_payment_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_payment_status_check CHECK (payment_status IN
    ('unpaid', 'requires_action', 'authorized', 'captured', 'released', 'refunded'));
-- The expiry scan of abandoned authentications (the deadline is the payment deadline then).
CREATE INDEX orders_awaiting_payment_deadline_idx ON orders (acceptance_deadline)
    WHERE status = 'awaiting_payment';

-- Payment jobs ---------------------------------------------------------------------------------

-- A payment effect of a committed order transition (capture, release, refund), written in the
-- transition's own transaction and performed afterwards with the same idempotency key until
-- the gateway answers (retry rule: fleetfront_domain::retry). One job per order and effect.
CREATE TABLE payment_jobs (
    business_id         uuid NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    id                  uuid NOT NULL,
    order_id            uuid NOT NULL,
    effect              text NOT NULL CHECK (effect IN ('capture', 'release', 'refund')),
    idempotency_key     text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    payment_method      text NOT NULL CHECK (payment_method IN ('cash', 'card')),
    gateway_payment_id  text NOT NULL CHECK (length(gateway_payment_id) BETWEEN 1 AND 255),
    -- What to capture or refund; NULL for a release.
    amount_minor        bigint CHECK (amount_minor >= 0),
    currency            char(3) NOT NULL,
    attempts            integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- Due from then; while an attempt runs, its lease (a crashed runner's job comes back).
    next_attempt_at     timestamptz NOT NULL DEFAULT now(),
    last_error          text,
    -- The gateway's id of what moved (Stripe `pi_…`, `re_…`).
    gateway_result_id   text,
    completed_at        timestamptz,
    -- Given up (a permanent refusal or too many attempts): kept for an operator.
    failed_at           timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, id),
    UNIQUE (business_id, order_id, effect),
    UNIQUE (business_id, idempotency_key),
    FOREIGN KEY (business_id, order_id) REFERENCES orders (business_id, id)
);
CREATE INDEX payment_jobs_due_idx ON payment_jobs (next_attempt_at)
    WHERE completed_at IS NULL AND failed_at IS NULL;

ALTER TABLE payment_jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE payment_jobs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_staff ON payment_jobs
    USING ((select app_is_admin()) OR business_id = (select app_business_id()) AND (select app_kind()) = 'staff')
    WITH CHECK ((select app_is_admin()) OR business_id = (select app_business_id()) AND (select app_kind()) = 'staff');
-- The order system claims due jobs across businesses (as it claims expired orders) and works
-- each one scoped to its business.
CREATE POLICY order_worker ON payment_jobs
    USING ((select app_kind()) = 'order_worker')
    WITH CHECK ((select app_kind()) = 'order_worker');

-- What the order system needs of the one business it is scoped to ------------------------------

CREATE POLICY order_worker_read ON business_commerce_settings FOR SELECT
    USING ((select app_kind()) = 'order_worker' AND business_id = (select app_business_id()));
CREATE POLICY order_worker_read ON business_subscriptions FOR SELECT
    USING ((select app_kind()) = 'order_worker' AND business_id = (select app_business_id()));
CREATE POLICY order_worker ON platform_fees
    USING ((select app_kind()) = 'order_worker' AND business_id = (select app_business_id()))
    WITH CHECK ((select app_kind()) = 'order_worker' AND business_id = (select app_business_id()));
-- The confirmation email of an order awaiting payment is held back (next_attempt_at =
-- 'infinity') until the payment holds, and dropped (failed_at) when the order ends unpaid.
CREATE POLICY order_worker_held ON outbox_messages
    USING ((select app_kind()) = 'order_worker' AND business_id = (select app_business_id()))
    WITH CHECK ((select app_kind()) = 'order_worker' AND business_id = (select app_business_id()));

-- Saved payment methods ------------------------------------------------------------------------

-- A customer's account at the payment provider (Stripe `cus_…`), created once, the first time
-- they save a card: saved cards are attached to it.
CREATE TABLE customer_gateway_accounts (
    business_id          uuid NOT NULL,
    customer_id          uuid NOT NULL,
    gateway              text NOT NULL CHECK (gateway IN ('stripe')),
    gateway_customer_id  text NOT NULL CHECK (length(gateway_customer_id) BETWEEN 1 AND 255),
    created_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, customer_id, gateway),
    UNIQUE (business_id, gateway, gateway_customer_id),
    FOREIGN KEY (business_id, customer_id) REFERENCES customers (business_id, id) ON DELETE CASCADE
);

-- A customer's saved card: the provider's token (`pm_…`) and what to show, never card data.
CREATE TABLE customer_payment_methods (
    business_id                uuid NOT NULL,
    id                         uuid NOT NULL,
    customer_id                uuid NOT NULL,
    payment_type               text NOT NULL CHECK (payment_type IN ('card')),
    gateway                    text NOT NULL CHECK (gateway IN ('stripe')),
    gateway_payment_method_id  text NOT NULL CHECK (gateway_payment_method_id ~ '^pm_[A-Za-z0-9_]{1,252}$'),
    card_brand                 text CHECK (length(card_brand) BETWEEN 1 AND 32),
    card_last4                 char(4) CHECK (card_last4 ~ '^[0-9]{4}$'),
    card_exp_month             smallint CHECK (card_exp_month BETWEEN 1 AND 12),
    card_exp_year              smallint CHECK (card_exp_year BETWEEN 2000 AND 2200),
    is_default                 boolean NOT NULL DEFAULT false,
    created_at                 timestamptz NOT NULL DEFAULT now(),
    updated_at                 timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, id),
    UNIQUE (business_id, customer_id, gateway_payment_method_id),
    FOREIGN KEY (business_id, customer_id) REFERENCES customers (business_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX customer_payment_methods_one_default_idx
    ON customer_payment_methods (business_id, customer_id) WHERE is_default;

-- Only the customer (and platform admins) see a customer's provider account and saved cards;
-- the store's staff have no use for them.
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['customer_gateway_accounts', 'customer_payment_methods']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY customer_owner ON %I
            USING ((select app_is_admin())
                OR business_id = (select app_business_id()) AND (select app_kind()) = 'customer' AND customer_id = (select app_customer_id()))
            WITH CHECK ((select app_is_admin())
                OR business_id = (select app_business_id()) AND (select app_kind()) = 'customer' AND customer_id = (select app_customer_id()))$p$, t);
    END LOOP;
END $$;

-- Grants ---------------------------------------------------------------------------------------

GRANT SELECT, INSERT, UPDATE ON payment_jobs TO fleetfront_app;
GRANT SELECT, INSERT ON customer_gateway_accounts TO fleetfront_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON customer_payment_methods TO fleetfront_app;
