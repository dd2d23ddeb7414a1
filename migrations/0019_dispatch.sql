-- Dispatch (issue 4): one delivery per delivery order, and the offers of that delivery to one
-- driver at a time (tenant tier).
--
-- Principals:
-- * staff of the business read their deliveries and offers and write them through the server
--   (the delivery is created in the order's acceptance transaction; manual assignment);
-- * a driver reads the offers addressed to it and answers them (open → accepted/declined), and
--   reads and takes (on accept) the deliveries it was offered;
-- * kind `dispatcher`: the server's dispatch step and offer-timeout task. It reads and writes
--   deliveries and offers of every business (the timeout scan crosses businesses), and reads
--   what ranking needs: drivers' accounts and profiles, dedicated drivers, dispatch settings.
--   It writes outbox rows and audit rows of the business it is scoped to (`app.business_id`).

CREATE TABLE deliveries (
    business_id  uuid NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    id           uuid NOT NULL,
    order_id     uuid NOT NULL,
    driver_id    uuid REFERENCES users (id),
    -- pending: looking for a driver; offered: an offer is open; unassigned: nobody left (the
    -- business was told); assigned: a driver holds it. Later steps belong to the workflow.
    status       text NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'offered', 'unassigned', 'assigned', 'cancelled')),
    assigned_at  timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, id),
    UNIQUE (business_id, order_id),
    FOREIGN KEY (business_id, order_id) REFERENCES orders (business_id, id) ON DELETE CASCADE,
    CHECK ((status = 'assigned') = (driver_id IS NOT NULL AND assigned_at IS NOT NULL))
);
CREATE INDEX deliveries_driver_idx ON deliveries (driver_id) WHERE driver_id IS NOT NULL;
-- The timeout task also picks up deliveries that wait for their next offer.
CREATE INDEX deliveries_waiting_idx ON deliveries (created_at, id) WHERE status IN ('pending', 'offered');
CREATE INDEX deliveries_board_idx ON deliveries (business_id, created_at DESC);

CREATE TABLE dispatch_offers (
    business_id  uuid NOT NULL,
    id           uuid NOT NULL,
    delivery_id  uuid NOT NULL,
    driver_id    uuid NOT NULL REFERENCES users (id),
    attempt      integer NOT NULL CHECK (attempt >= 1),
    status       text NOT NULL DEFAULT 'open'
                 CHECK (status IN ('open', 'accepted', 'declined', 'expired', 'withdrawn')),
    offered_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    answered_at  timestamptz,
    score        bigint NOT NULL,
    reason       text NOT NULL CHECK (char_length(reason) BETWEEN 1 AND 500),
    PRIMARY KEY (business_id, id),
    UNIQUE (business_id, delivery_id, attempt),
    FOREIGN KEY (business_id, delivery_id) REFERENCES deliveries (business_id, id) ON DELETE CASCADE,
    CHECK (expires_at > offered_at),
    CHECK ((status = 'open') = (answered_at IS NULL))
);
-- One driver at a time, and never two holders of one delivery.
CREATE UNIQUE INDEX dispatch_offers_one_open ON dispatch_offers (business_id, delivery_id) WHERE status = 'open';
CREATE UNIQUE INDEX dispatch_offers_one_accepted ON dispatch_offers (business_id, delivery_id) WHERE status = 'accepted';
CREATE INDEX dispatch_offers_due_idx ON dispatch_offers (expires_at, id) WHERE status = 'open';
CREATE INDEX dispatch_offers_driver_idx ON dispatch_offers (driver_id, status);

-- Row level security ---------------------------------------------------------------------------

ALTER TABLE deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE deliveries FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_staff ON deliveries
    USING ((select app_is_admin()) OR business_id = (select app_business_id()) AND (select app_kind()) = 'staff')
    WITH CHECK ((select app_is_admin()) OR business_id = (select app_business_id()) AND (select app_kind()) = 'staff');
CREATE POLICY dispatcher ON deliveries
    USING ((select app_kind()) = 'dispatcher')
    WITH CHECK ((select app_kind()) = 'dispatcher');
-- A driver sees the deliveries it holds or was offered.
CREATE POLICY driver_read ON deliveries FOR SELECT
    USING ((select app_kind()) = 'driver' AND (driver_id = (select app_user_id()) OR EXISTS (
        SELECT 1 FROM dispatch_offers o
         WHERE o.business_id = deliveries.business_id AND o.delivery_id = deliveries.id
           AND o.driver_id = (select app_user_id()))));
-- A customer (own orders) and a tracking-token holder (that order) see the order's delivery:
-- the orders policies decide which orders they see.
CREATE POLICY order_viewer_read ON deliveries FOR SELECT
    USING ((select app_kind()) IN ('customer', 'public') AND EXISTS (
        SELECT 1 FROM orders o WHERE o.business_id = deliveries.business_id AND o.id = deliveries.order_id));
-- A driver takes a delivery whose offer to it is open or that it accepted, for itself only.
CREATE POLICY driver_take ON deliveries FOR UPDATE
    USING ((select app_kind()) = 'driver' AND EXISTS (
        SELECT 1 FROM dispatch_offers o
         WHERE o.business_id = deliveries.business_id AND o.delivery_id = deliveries.id
           AND o.driver_id = (select app_user_id()) AND o.status IN ('open', 'accepted')))
    WITH CHECK ((select app_kind()) = 'driver' AND driver_id = (select app_user_id()) AND status = 'assigned');

ALTER TABLE dispatch_offers ENABLE ROW LEVEL SECURITY;
ALTER TABLE dispatch_offers FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_staff ON dispatch_offers
    USING ((select app_is_admin()) OR business_id = (select app_business_id()) AND (select app_kind()) = 'staff')
    WITH CHECK ((select app_is_admin()) OR business_id = (select app_business_id()) AND (select app_kind()) = 'staff');
CREATE POLICY dispatcher ON dispatch_offers
    USING ((select app_kind()) = 'dispatcher')
    WITH CHECK ((select app_kind()) = 'dispatcher');
CREATE POLICY driver_own_read ON dispatch_offers FOR SELECT
    USING ((select app_kind()) = 'driver' AND driver_id = (select app_user_id()));
CREATE POLICY driver_own_answer ON dispatch_offers FOR UPDATE
    USING ((select app_kind()) = 'driver' AND driver_id = (select app_user_id()) AND status = 'open')
    WITH CHECK ((select app_kind()) = 'driver' AND driver_id = (select app_user_id())
        AND status IN ('accepted', 'declined', 'expired'));

-- What the dispatcher reads to rank drivers and to describe the delivery.
CREATE POLICY dispatcher_read ON driver_profiles FOR SELECT
    USING ((select app_kind()) = 'dispatcher');
CREATE POLICY dispatcher_read ON users FOR SELECT
    USING ((select app_kind()) = 'dispatcher' AND kind = 'driver');
CREATE POLICY dispatcher_read ON driver_businesses FOR SELECT
    USING ((select app_kind()) = 'dispatcher');
CREATE POLICY dispatcher_read ON business_dispatch_settings FOR SELECT
    USING ((select app_kind()) = 'dispatcher');
CREATE POLICY dispatcher_read ON orders FOR SELECT
    USING ((select app_kind()) = 'dispatcher');
CREATE POLICY dispatcher_read ON order_items FOR SELECT
    USING ((select app_kind()) = 'dispatcher');
CREATE POLICY dispatcher_read ON businesses FOR SELECT
    USING ((select app_kind()) = 'dispatcher');
CREATE POLICY dispatcher_messages ON outbox_messages FOR INSERT
    WITH CHECK ((select app_kind()) = 'dispatcher' AND business_id = (select app_business_id()));

-- A business's staff may check that a shared-pool driver is a driver they may assign by hand
-- (online, approved) without seeing the profile: the server asks this function.
CREATE FUNCTION dispatch_driver_ready(p_driver uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT EXISTS (
        SELECT 1 FROM users u JOIN driver_profiles p ON p.driver_id = u.id
         WHERE u.id = p_driver AND u.kind = 'driver' AND u.status = 'active' AND p.is_online)
$$;
REVOKE ALL ON FUNCTION dispatch_driver_ready(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dispatch_driver_ready(uuid) TO fleetfront_app;

GRANT SELECT, INSERT, UPDATE ON deliveries, dispatch_offers TO fleetfront_app;
