-- Delivery workflow (issue 4): the driver's steps on a delivery (arrived at store → picked up →
-- arrived at customer → delivered, or failed), each logged with position and time; proof
-- photos; the cash a driver collects; the driver's earnings per delivery, written in the same
-- transaction as `delivered`; and the platform's driver pay rates.
--
-- Principals:
-- * a driver reads its own delivery events, proofs, earnings and cash, and uploads proof
--   photos for a delivery it holds;
-- * kind `order_worker` (the order system): the server applies a delivery step in the
--   driver's transaction once the driver's own principal has read and locked the delivery it
--   holds, then switches to `order_worker` scoped to the delivery's business
--   (`app.business_id`) for the writes the step causes (the delivery, its log, the order's
--   transition and payment jobs, the earnings, the cash). Every policy for it below is scoped
--   to that business;
-- * staff of the business read all of it for their business and record cash deposits;
-- * platform admins read and write everything; they set the pay rates.

-- Deliveries: the workflow's statuses. A driver holds the delivery from `assigned` on;
-- a delivery that fails before pickup or is reassigned goes back to `pending` without a driver
-- (its log keeps who had it), one that fails after pickup stays `failed` with its driver.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_status_check;
ALTER TABLE deliveries DROP CONSTRAINT deliveries_check;
ALTER TABLE deliveries
    ADD CONSTRAINT deliveries_status_check CHECK (status IN (
        'pending', 'offered', 'unassigned', 'assigned', 'arrived_at_store', 'picked_up',
        'arrived_at_customer', 'delivered', 'failed', 'cancelled')),
    ADD CONSTRAINT deliveries_holder_check CHECK (
        (status IN ('assigned', 'arrived_at_store', 'picked_up', 'arrived_at_customer', 'delivered', 'failed'))
        = (driver_id IS NOT NULL AND assigned_at IS NOT NULL)),
    -- Server times of the steps (the commit order), and the device's time of the final one:
    -- reports use the real time of the hand-over, which an offline driver may sync later.
    ADD COLUMN arrived_at_store_at     timestamptz,
    ADD COLUMN picked_up_at            timestamptz,
    ADD COLUMN arrived_at_customer_at  timestamptz,
    ADD COLUMN finished_at             timestamptz,
    ADD COLUMN finished_recorded_at    timestamptz,
    ADD COLUMN failure_code            text CHECK (failure_code IN (
        'customer_unreachable', 'wrong_address', 'refused', 'damaged', 'other')),
    ADD COLUMN failure_text            text CHECK (char_length(failure_text) BETWEEN 1 AND 500),
    ADD COLUMN proof_sha256            text CHECK (proof_sha256 ~ '^[0-9a-f]{64}$'),
    -- The trip from the store to the drop-off, in metres, as paid.
    ADD COLUMN trip_metres             integer CHECK (trip_metres >= 0),
    ADD CONSTRAINT deliveries_finished_check CHECK (
        (status IN ('delivered', 'failed')) = (finished_at IS NOT NULL)),
    ADD CONSTRAINT deliveries_failure_check CHECK ((status = 'failed') = (failure_code IS NOT NULL));

-- Every step sent to a delivery, applied or superseded (a late report is kept, not applied).
CREATE TABLE delivery_events (
    business_id  uuid NOT NULL,
    id           uuid NOT NULL,
    delivery_id  uuid NOT NULL,
    -- The driver holding the delivery when the step was sent.
    driver_id    uuid REFERENCES users (id),
    command      text NOT NULL CHECK (command IN (
        'arrive_at_store', 'pick_up', 'arrive_at_customer', 'deliver', 'fail', 'reassign', 'cancel')),
    from_status  text NOT NULL,
    to_status    text NOT NULL,
    outcome      text NOT NULL CHECK (outcome IN ('applied', 'superseded')),
    filled_in    boolean NOT NULL DEFAULT false,
    by_party     text NOT NULL CHECK (by_party IN ('driver', 'staff', 'system', 'admin')),
    actor_id     uuid,
    at           timestamptz NOT NULL,
    recorded_at  timestamptz,
    latitude     double precision CHECK (latitude BETWEEN -90 AND 90),
    longitude    double precision CHECK (longitude BETWEEN -180 AND 180),
    details      jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (business_id, id),
    FOREIGN KEY (business_id, delivery_id) REFERENCES deliveries (business_id, id) ON DELETE CASCADE,
    CHECK ((latitude IS NULL) = (longitude IS NULL))
);
CREATE INDEX delivery_events_delivery_idx ON delivery_events (business_id, delivery_id, at, id);
CREATE INDEX delivery_events_driver_idx ON delivery_events (driver_id, at) WHERE driver_id IS NOT NULL;

-- Proof photos, content-addressed (the bytes live in the blob store under their SHA-256).
CREATE TABLE delivery_proofs (
    business_id   uuid NOT NULL,
    delivery_id   uuid NOT NULL,
    sha256        text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    content_type  text NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png', 'image/webp')),
    byte_size     integer NOT NULL CHECK (byte_size BETWEEN 1 AND 10485760),
    uploaded_by   uuid NOT NULL REFERENCES users (id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, delivery_id, sha256),
    FOREIGN KEY (business_id, delivery_id) REFERENCES deliveries (business_id, id) ON DELETE CASCADE
);

-- The platform's terms for drivers' pay, per currency (platform tier). Without a row for a
-- currency the fee and the tip are passed through whole (no distance rate, no commission).
CREATE TABLE driver_pay_rates (
    currency         char(3) PRIMARY KEY CHECK (currency ~ '^[A-Z]{3}$'),
    per_km_minor     bigint NOT NULL DEFAULT 0 CHECK (per_km_minor BETWEEN 0 AND 1000000),
    included_metres  integer NOT NULL DEFAULT 0 CHECK (included_metres BETWEEN 0 AND 100000),
    commission_bps   integer NOT NULL DEFAULT 0 CHECK (commission_bps BETWEEN 0 AND 10000),
    surge_bps        integer NOT NULL DEFAULT 10000 CHECK (surge_bps BETWEEN 10000 AND 50000),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    updated_by       uuid REFERENCES users (id)
);

-- A driver's earnings for one delivered order (fleetfront-domain `earnings::compute`),
-- exactly one per delivery, committed with the `delivered` step.
CREATE TABLE driver_earnings (
    business_id         uuid NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    id                  uuid NOT NULL,
    delivery_id         uuid NOT NULL,
    order_id            uuid NOT NULL,
    driver_id           uuid NOT NULL REFERENCES users (id),
    currency            char(3) NOT NULL,
    delivery_fee_minor  bigint NOT NULL CHECK (delivery_fee_minor >= 0),
    distance_metres     integer NOT NULL CHECK (distance_metres >= 0),
    distance_fee_minor  bigint NOT NULL CHECK (distance_fee_minor >= 0),
    tip_minor           bigint NOT NULL CHECK (tip_minor >= 0),
    surge_bps           integer NOT NULL CHECK (surge_bps BETWEEN 10000 AND 50000),
    surge_minor         bigint NOT NULL CHECK (surge_minor >= 0),
    platform_fee_minor  bigint NOT NULL CHECK (platform_fee_minor >= 0),
    gross_minor         bigint NOT NULL,
    net_minor           bigint NOT NULL CHECK (net_minor >= 0),
    -- Server time of the delivered step, and the device's time of the hand-over.
    earned_at           timestamptz NOT NULL,
    recorded_at         timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, id),
    UNIQUE (business_id, delivery_id),
    FOREIGN KEY (business_id, delivery_id) REFERENCES deliveries (business_id, id),
    FOREIGN KEY (business_id, order_id) REFERENCES orders (business_id, id),
    CHECK (gross_minor = delivery_fee_minor + distance_fee_minor + surge_minor + tip_minor),
    CHECK (net_minor = gross_minor - platform_fee_minor)
);
CREATE INDEX driver_earnings_driver_idx ON driver_earnings (driver_id, earned_at);
CREATE INDEX driver_earnings_business_idx ON driver_earnings (business_id, earned_at);

-- Cash a driver holds for a business: collected on a cash order's delivery (what it took,
-- what was due, the shortfall and why), handed back to the business (a deposit), or netted
-- against the driver's earnings in a processed payout (settled, with the payout's id).
-- What a driver holds for a business is `collected − deposited − settled`.
CREATE TABLE driver_cash (
    business_id       uuid NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    id                uuid NOT NULL,
    driver_id         uuid NOT NULL REFERENCES users (id),
    kind              text NOT NULL CHECK (kind IN ('collected', 'deposited', 'settled')),
    delivery_id       uuid,
    order_id          uuid,
    currency          char(3) NOT NULL,
    amount_minor      bigint NOT NULL CHECK (amount_minor >= 0),
    due_minor         bigint CHECK (due_minor >= 0),
    shortfall_minor   bigint CHECK (shortfall_minor >= 0),
    shortfall_reason  text CHECK (char_length(shortfall_reason) BETWEEN 1 AND 500),
    at                timestamptz NOT NULL,
    recorded_at       timestamptz,
    recorded_by       uuid REFERENCES users (id),
    -- The payout that netted it (kind `settled`); the foreign key comes with the payouts.
    payout_id         uuid,
    created_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, id),
    FOREIGN KEY (business_id, delivery_id) REFERENCES deliveries (business_id, id),
    FOREIGN KEY (business_id, order_id) REFERENCES orders (business_id, id),
    -- A collection belongs to its delivery and states what was due; a deposit or a
    -- settlement to neither.
    CHECK ((kind = 'collected') = (delivery_id IS NOT NULL AND order_id IS NOT NULL AND due_minor IS NOT NULL
                                   AND shortfall_minor IS NOT NULL)),
    CHECK (kind = 'deposited' OR amount_minor + shortfall_minor = due_minor),
    CHECK (kind = 'deposited' OR amount_minor > 0 OR shortfall_reason IS NOT NULL),
    CHECK (shortfall_reason IS NULL OR shortfall_minor > 0),
    CHECK ((kind = 'settled') = (payout_id IS NOT NULL))
);
CREATE UNIQUE INDEX driver_cash_one_per_delivery ON driver_cash (business_id, delivery_id) WHERE kind = 'collected';
CREATE INDEX driver_cash_driver_idx ON driver_cash (driver_id, business_id, at);

-- Row level security ---------------------------------------------------------------------------

-- The order system applies delivery steps for the business it is scoped to.
CREATE POLICY order_worker ON deliveries
    USING ((select app_kind()) = 'order_worker' AND business_id = (select app_business_id()))
    WITH CHECK ((select app_kind()) = 'order_worker' AND business_id = (select app_business_id()));
CREATE POLICY order_worker ON dispatch_offers
    USING ((select app_kind()) = 'order_worker' AND business_id = (select app_business_id()))
    WITH CHECK ((select app_kind()) = 'order_worker' AND business_id = (select app_business_id()));
CREATE POLICY order_worker_read ON business_dispatch_settings FOR SELECT
    USING ((select app_kind()) = 'order_worker' AND business_id = (select app_business_id()));
CREATE POLICY order_worker_read ON businesses FOR SELECT
    USING ((select app_kind()) = 'order_worker' AND id = (select app_business_id()));
-- Completing an order counts it for its customer (`total_orders`, `total_spent_minor`).
CREATE POLICY order_worker_count ON customers FOR UPDATE
    USING ((select app_kind()) = 'order_worker' AND business_id = (select app_business_id()))
    WITH CHECK ((select app_kind()) = 'order_worker' AND business_id = (select app_business_id()));
CREATE POLICY order_worker_read ON customers FOR SELECT
    USING ((select app_kind()) = 'order_worker' AND business_id = (select app_business_id()));

ALTER TABLE delivery_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE delivery_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_staff ON delivery_events
    USING ((select app_is_admin()) OR business_id = (select app_business_id()) AND (select app_kind()) = 'staff')
    WITH CHECK ((select app_is_admin()) OR business_id = (select app_business_id()) AND (select app_kind()) = 'staff');
CREATE POLICY order_worker ON delivery_events
    USING ((select app_kind()) = 'order_worker' AND business_id = (select app_business_id()))
    WITH CHECK ((select app_kind()) = 'order_worker' AND business_id = (select app_business_id()));
CREATE POLICY dispatcher ON delivery_events
    USING ((select app_kind()) = 'dispatcher')
    WITH CHECK ((select app_kind()) = 'dispatcher');
CREATE POLICY driver_own_read ON delivery_events FOR SELECT
    USING ((select app_kind()) = 'driver' AND driver_id = (select app_user_id()));

ALTER TABLE delivery_proofs ENABLE ROW LEVEL SECURITY;
ALTER TABLE delivery_proofs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_staff ON delivery_proofs FOR SELECT
    USING ((select app_is_admin()) OR business_id = (select app_business_id()) AND (select app_kind()) = 'staff');
CREATE POLICY order_worker ON delivery_proofs
    USING ((select app_kind()) = 'order_worker' AND business_id = (select app_business_id()))
    WITH CHECK ((select app_kind()) = 'order_worker' AND business_id = (select app_business_id()));
CREATE POLICY driver_own_read ON delivery_proofs FOR SELECT
    USING ((select app_kind()) = 'driver' AND uploaded_by = (select app_user_id()));
-- A driver adds proof only to a delivery it holds.
CREATE POLICY driver_upload ON delivery_proofs FOR INSERT
    WITH CHECK ((select app_kind()) = 'driver' AND uploaded_by = (select app_user_id()) AND EXISTS (
        SELECT 1 FROM deliveries d
         WHERE d.business_id = delivery_proofs.business_id AND d.id = delivery_proofs.delivery_id
           AND d.driver_id = (select app_user_id())));

ALTER TABLE driver_pay_rates ENABLE ROW LEVEL SECURITY;
ALTER TABLE driver_pay_rates FORCE ROW LEVEL SECURITY;
CREATE POLICY admin_all ON driver_pay_rates
    USING ((select app_is_admin()))
    WITH CHECK ((select app_is_admin()));
-- Drivers see the terms they work under; the dispatcher (offer estimates) and the order system
-- (earnings) apply them.
CREATE POLICY readers ON driver_pay_rates FOR SELECT
    USING ((select app_kind()) IN ('driver', 'dispatcher', 'order_worker'));

ALTER TABLE driver_earnings ENABLE ROW LEVEL SECURITY;
ALTER TABLE driver_earnings FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_staff ON driver_earnings FOR SELECT
    USING ((select app_is_admin()) OR business_id = (select app_business_id()) AND (select app_kind()) = 'staff');
CREATE POLICY admin_write ON driver_earnings
    USING ((select app_is_admin()))
    WITH CHECK ((select app_is_admin()));
CREATE POLICY order_worker ON driver_earnings
    USING ((select app_kind()) = 'order_worker' AND business_id = (select app_business_id()))
    WITH CHECK ((select app_kind()) = 'order_worker' AND business_id = (select app_business_id()));
CREATE POLICY driver_own_read ON driver_earnings FOR SELECT
    USING ((select app_kind()) = 'driver' AND driver_id = (select app_user_id()));

ALTER TABLE driver_cash ENABLE ROW LEVEL SECURITY;
ALTER TABLE driver_cash FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_staff ON driver_cash
    USING ((select app_is_admin()) OR business_id = (select app_business_id()) AND (select app_kind()) = 'staff')
    WITH CHECK ((select app_is_admin()) OR business_id = (select app_business_id()) AND (select app_kind()) = 'staff');
CREATE POLICY order_worker ON driver_cash
    USING ((select app_kind()) = 'order_worker' AND business_id = (select app_business_id()))
    WITH CHECK ((select app_kind()) = 'order_worker' AND business_id = (select app_business_id()));
-- Ranking needs the cash each candidate holds (the business's cash cap).
CREATE POLICY dispatcher_read ON driver_cash FOR SELECT
    USING ((select app_kind()) = 'dispatcher');
CREATE POLICY driver_own_read ON driver_cash FOR SELECT
    USING ((select app_kind()) = 'driver' AND driver_id = (select app_user_id()));

GRANT SELECT, INSERT, UPDATE ON delivery_events, delivery_proofs, driver_pay_rates, driver_earnings,
    driver_cash TO fleetfront_app;

-- Customer tracking's ETA goes at the courier's vehicle speed, but customers and
-- tracking-token holders may not read driver profiles: this tells them the vehicle type alone,
-- and only of a driver holding a delivery in progress (the caller finds the delivery under its
-- own row level security first).
CREATE FUNCTION courier_vehicle(p_driver uuid) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT p.vehicle_type FROM driver_profiles p
     WHERE p.driver_id = p_driver AND EXISTS (
        SELECT 1 FROM deliveries d
         WHERE d.driver_id = p_driver
           AND d.status IN ('assigned', 'arrived_at_store', 'picked_up', 'arrived_at_customer'))
$$;
REVOKE ALL ON FUNCTION courier_vehicle(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION courier_vehicle(uuid) TO fleetfront_app;

-- Added with the workflow's server side -------------------------------------------------------

-- The order system records the tracking events of the steps it applies.
CREATE POLICY order_worker_track ON order_tracking_events FOR INSERT
    WITH CHECK ((select app_kind()) = 'order_worker' AND business_id = (select app_business_id()));
-- A business's staff and the order system read the account (for its email address) of a
-- driver holding one of the business's deliveries, to tell the driver when the delivery is
-- taken away or its order cancelled.
CREATE POLICY users_delivery_holders ON users FOR SELECT
    USING ((select app_kind()) IN ('staff', 'order_worker') AND kind = 'driver' AND EXISTS (
        SELECT 1 FROM deliveries d
         WHERE d.business_id = (select app_business_id()) AND d.driver_id = users.id));
