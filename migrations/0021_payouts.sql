-- Payouts (issue 4): what the platform owes each business and each driver per period, and
-- which ledger rows each payout covers, so nothing is paid twice.
--
-- * `business_payouts` (tenant): one per (business, period, currency) under the unique
--   `payout_key` (fleetfront-domain `payout::payout_key_in`). `business_payout_items` names the
--   order completions, card refunds and cash deposits (cash a driver handed to the business,
--   which the business keeps) a payout covers; its primary key (business, kind, item) lets
--   each be covered once. `platform_fees.payout_id` marks the order commissions withheld.
-- * `driver_payouts` (platform tier: a driver works for several businesses, and is paid once
--   per period and currency for all of them). `driver_earnings.payout_id` marks the earnings
--   covered; the cash the driver holds is netted when the payout is processed, with `settled`
--   rows in `driver_cash` that name the payout.
-- * Status: pending → processing → paid | failed (retryable) | carried_over (the party owed
--   the platform: nothing moved, the balance goes into its next payout, `carried_into_id`).
-- * `payout_account` on businesses and driver profiles: the payment provider's connected
--   account transfers go to (Stripe `acct_…`).
--
-- Principals: admins read and write everything; a business's staff read their business's
-- payouts and items (the server also asks for `finance.read`); a driver reads its own payouts.

ALTER TABLE businesses
    ADD COLUMN payout_account text CHECK (payout_account ~ '^acct_[A-Za-z0-9]{1,250}$');
ALTER TABLE driver_profiles
    ADD COLUMN payout_account text CHECK (payout_account ~ '^acct_[A-Za-z0-9]{1,250}$');

CREATE TABLE business_payouts (
    business_id            uuid NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    id                     uuid NOT NULL,
    payout_key             text NOT NULL CHECK (payout_key ~ '^payout:business:'),
    period_kind            text NOT NULL CHECK (period_kind IN ('day', 'week')),
    period_start           timestamptz NOT NULL,
    period_end             timestamptz NOT NULL,
    currency               char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    status                 text NOT NULL DEFAULT 'pending'
                           CHECK (status IN ('pending', 'processing', 'paid', 'failed', 'carried_over')),
    gross_revenue_minor    bigint NOT NULL CHECK (gross_revenue_minor >= 0),
    platform_fees_minor    bigint NOT NULL,
    driver_payments_minor  bigint NOT NULL CHECK (driver_payments_minor >= 0),
    refunds_minor          bigint NOT NULL CHECK (refunds_minor >= 0),
    cash_kept_minor        bigint NOT NULL CHECK (cash_kept_minor >= 0),
    carried_over_minor     bigint NOT NULL DEFAULT 0 CHECK (carried_over_minor <= 0),
    net_minor              bigint NOT NULL,
    orders                 integer NOT NULL CHECK (orders >= 0),
    transfer_id            text CHECK (transfer_id ~ '^tr_[A-Za-z0-9_]{1,250}$'),
    failure_reason         text CHECK (char_length(failure_reason) BETWEEN 1 AND 1000),
    attempts               integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    processing_started_at  timestamptz,
    processed_at           timestamptz,
    processed_by           uuid REFERENCES users (id),
    carried_into_id        uuid,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, id),
    UNIQUE (business_id, payout_key),
    FOREIGN KEY (business_id, carried_into_id) REFERENCES business_payouts (business_id, id),
    CHECK (period_end > period_start),
    CHECK (net_minor = gross_revenue_minor - platform_fees_minor - driver_payments_minor
                       - refunds_minor - cash_kept_minor + carried_over_minor),
    CHECK ((status = 'paid' AND net_minor > 0) = (transfer_id IS NOT NULL)),
    CHECK ((status IN ('paid', 'carried_over')) = (processed_at IS NOT NULL)),
    CHECK (status = 'carried_over' OR carried_into_id IS NULL)
);
CREATE INDEX business_payouts_list_idx ON business_payouts (business_id, period_start DESC, id);
CREATE INDEX business_payouts_status_idx ON business_payouts (status, period_start DESC);

-- What a business payout covers, with the amounts it counted: order completions and card
-- refunds (by order), and cash drivers handed to the business (by `driver_cash` row).
CREATE TABLE business_payout_items (
    business_id         uuid NOT NULL,
    kind                text NOT NULL CHECK (kind IN ('order', 'refund', 'deposit')),
    -- The order (kinds order, refund) or the driver_cash row (deposit).
    item_id             uuid NOT NULL,
    order_id            uuid,
    cash_id             uuid,
    payout_id           uuid NOT NULL,
    at                  timestamptz NOT NULL,
    currency            char(3) NOT NULL,
    total_minor         bigint NOT NULL DEFAULT 0 CHECK (total_minor >= 0),
    platform_fee_minor  bigint NOT NULL DEFAULT 0 CHECK (platform_fee_minor >= 0),
    driver_cost_minor   bigint NOT NULL DEFAULT 0 CHECK (driver_cost_minor >= 0),
    kept_minor          bigint NOT NULL DEFAULT 0 CHECK (kept_minor >= 0),
    refund_minor        bigint NOT NULL DEFAULT 0 CHECK (refund_minor >= 0),
    fee_returned_minor  bigint NOT NULL DEFAULT 0 CHECK (fee_returned_minor >= 0),
    PRIMARY KEY (business_id, kind, item_id),
    FOREIGN KEY (business_id, payout_id) REFERENCES business_payouts (business_id, id) ON DELETE CASCADE,
    FOREIGN KEY (business_id, order_id) REFERENCES orders (business_id, id),
    FOREIGN KEY (business_id, cash_id) REFERENCES driver_cash (business_id, id),
    CHECK (CASE kind WHEN 'deposit' THEN cash_id = item_id AND order_id IS NULL
                     ELSE order_id = item_id AND cash_id IS NULL END)
);
CREATE INDEX business_payout_items_payout_idx ON business_payout_items (business_id, payout_id);

ALTER TABLE platform_fees ADD COLUMN payout_id uuid,
    ADD FOREIGN KEY (business_id, payout_id) REFERENCES business_payouts (business_id, id);
CREATE INDEX platform_fees_payout_idx ON platform_fees (business_id, payout_id);
CREATE INDEX platform_fees_created_idx ON platform_fees (business_id, created_at);

CREATE TABLE driver_payouts (
    id                     uuid PRIMARY KEY,
    driver_id              uuid NOT NULL REFERENCES users (id),
    payout_key             text NOT NULL UNIQUE CHECK (payout_key ~ '^payout:driver:'),
    period_kind            text NOT NULL CHECK (period_kind IN ('day', 'week')),
    period_start           timestamptz NOT NULL,
    period_end             timestamptz NOT NULL,
    currency               char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    status                 text NOT NULL DEFAULT 'pending'
                           CHECK (status IN ('pending', 'processing', 'paid', 'failed', 'carried_over')),
    earnings_minor         bigint NOT NULL CHECK (earnings_minor >= 0),
    -- Cash netted: an estimate until processed, then what the settled rows took.
    cash_kept_minor        bigint NOT NULL,
    carried_over_minor     bigint NOT NULL DEFAULT 0 CHECK (carried_over_minor <= 0),
    net_minor              bigint NOT NULL,
    deliveries             integer NOT NULL CHECK (deliveries >= 0),
    transfer_id            text CHECK (transfer_id ~ '^tr_[A-Za-z0-9_]{1,250}$'),
    failure_reason         text CHECK (char_length(failure_reason) BETWEEN 1 AND 1000),
    attempts               integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- Set when the cash was netted (first processing attempt); later attempts keep it.
    cash_settled_at        timestamptz,
    processing_started_at  timestamptz,
    processed_at           timestamptz,
    processed_by           uuid REFERENCES users (id),
    carried_into_id        uuid REFERENCES driver_payouts (id),
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CHECK (period_end > period_start),
    CHECK (net_minor = earnings_minor - cash_kept_minor + carried_over_minor),
    CHECK ((status = 'paid' AND net_minor > 0) = (transfer_id IS NOT NULL)),
    CHECK ((status IN ('paid', 'carried_over')) = (processed_at IS NOT NULL)),
    CHECK (status = 'carried_over' OR carried_into_id IS NULL)
);
CREATE INDEX driver_payouts_driver_idx ON driver_payouts (driver_id, period_start DESC);
CREATE INDEX driver_payouts_status_idx ON driver_payouts (status, period_start DESC);

ALTER TABLE driver_earnings ADD COLUMN payout_id uuid REFERENCES driver_payouts (id);
CREATE INDEX driver_earnings_unpaid_idx ON driver_earnings (driver_id, earned_at) WHERE payout_id IS NULL;
ALTER TABLE driver_cash ADD FOREIGN KEY (payout_id) REFERENCES driver_payouts (id);

-- Row level security ---------------------------------------------------------------------------

ALTER TABLE business_payouts ENABLE ROW LEVEL SECURITY;
ALTER TABLE business_payouts FORCE ROW LEVEL SECURITY;
CREATE POLICY admin_all ON business_payouts
    USING ((select app_is_admin()))
    WITH CHECK ((select app_is_admin()));
CREATE POLICY staff_read ON business_payouts FOR SELECT
    USING (business_id = (select app_business_id()) AND (select app_kind()) = 'staff');

ALTER TABLE business_payout_items ENABLE ROW LEVEL SECURITY;
ALTER TABLE business_payout_items FORCE ROW LEVEL SECURITY;
CREATE POLICY admin_all ON business_payout_items
    USING ((select app_is_admin()))
    WITH CHECK ((select app_is_admin()));
CREATE POLICY staff_read ON business_payout_items FOR SELECT
    USING (business_id = (select app_business_id()) AND (select app_kind()) = 'staff');

ALTER TABLE driver_payouts ENABLE ROW LEVEL SECURITY;
ALTER TABLE driver_payouts FORCE ROW LEVEL SECURITY;
CREATE POLICY admin_all ON driver_payouts
    USING ((select app_is_admin()))
    WITH CHECK ((select app_is_admin()));
CREATE POLICY driver_own_read ON driver_payouts FOR SELECT
    USING ((select app_kind()) = 'driver' AND driver_id = (select app_user_id()));

GRANT SELECT, INSERT, UPDATE ON business_payouts, business_payout_items, driver_payouts TO fleetfront_app;
