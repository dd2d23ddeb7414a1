-- Orders: commerce settings, discount codes, orders with their item snapshots, the status log,
-- tracking events, and stored responses of idempotent checkout requests.
--
-- Tenancy as in 0001: business_id leads every key and every foreign key between tenant tables;
-- RLS is enabled and forced with USING and WITH CHECK on every table.
--
-- Who sees an order:
-- * the business's staff (and platform admins): everything of their business;
-- * kind `customer`: their own orders (SELECT and INSERT only, never UPDATE);
-- * kind `public`: a guest checkout may INSERT an order without a customer whose tracking hash
--   equals the transaction's `app.tracking_hash`; anybody holding an order's private tracking
--   token may SELECT that one order (the server sets `app.tracking_hash` to the token's SHA-256).
--   With no hash set, `public` sees no order at all;
-- * kind `order_worker`: the acceptance-timeout task, which reads and rejects orders of every
--   business (like the outbox `worker`, it is the one principal that crosses tenants, and only
--   on these tables).
-- Stock and discount usage are changed only through SECURITY DEFINER functions that
-- decrement/increment atomically inside the caller's business (stock of a rejected or
-- cancelled order is put back the same way).

CREATE FUNCTION app_tracking_hash() RETURNS bytea LANGUAGE sql STABLE
    AS $$ SELECT decode(nullif(current_setting('app.tracking_hash', true), ''), 'hex') $$;

-- Commerce settings ----------------------------------------------------------------------------

CREATE TABLE business_commerce_settings (
    business_id                uuid PRIMARY KEY REFERENCES businesses (id) ON DELETE CASCADE,
    tax_rate_bps               integer NOT NULL DEFAULT 0 CHECK (tax_rate_bps BETWEEN 0 AND 10000),
    prices_include_tax         boolean NOT NULL DEFAULT true,
    tax_includes_delivery      boolean NOT NULL DEFAULT false,
    offers_delivery            boolean NOT NULL DEFAULT true,
    offers_pickup              boolean NOT NULL DEFAULT true,
    delivery_base_fee_minor    bigint NOT NULL DEFAULT 0 CHECK (delivery_base_fee_minor >= 0),
    delivery_fee_per_km_minor  bigint NOT NULL DEFAULT 0 CHECK (delivery_fee_per_km_minor >= 0),
    delivery_included_m        integer NOT NULL DEFAULT 0 CHECK (delivery_included_m >= 0),
    -- NULL: the business's delivery radius.
    delivery_max_distance_m    integer CHECK (delivery_max_distance_m BETWEEN 100 AND 100000),
    minimum_order_minor        bigint NOT NULL DEFAULT 0 CHECK (minimum_order_minor >= 0),
    acceptance_window_secs     integer NOT NULL DEFAULT 180 CHECK (acceptance_window_secs BETWEEN 30 AND 3600),
    updated_at                 timestamptz NOT NULL DEFAULT now()
);
INSERT INTO business_commerce_settings (business_id) SELECT id FROM businesses;

-- Every new business gets the defaults, whoever creates it.
CREATE FUNCTION business_commerce_defaults() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    INSERT INTO business_commerce_settings (business_id) VALUES (NEW.id) ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;
CREATE TRIGGER businesses_commerce_defaults AFTER INSERT ON businesses
    FOR EACH ROW EXECUTE FUNCTION business_commerce_defaults();

-- Discount codes -------------------------------------------------------------------------------

CREATE TABLE discount_codes (
    business_id             uuid NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    id                      uuid NOT NULL,
    code                    text NOT NULL CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$'),
    percent_bps             integer CHECK (percent_bps BETWEEN 1 AND 10000),
    amount_minor            bigint CHECK (amount_minor > 0),
    valid_from              timestamptz,
    valid_until             timestamptz,
    minimum_subtotal_minor  bigint NOT NULL DEFAULT 0 CHECK (minimum_subtotal_minor >= 0),
    usage_limit             integer CHECK (usage_limit > 0),
    times_used              integer NOT NULL DEFAULT 0 CHECK (times_used >= 0),
    is_active               boolean NOT NULL DEFAULT true,
    created_at              timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, id),
    -- Exactly one of a percentage and a fixed amount.
    CHECK ((percent_bps IS NULL) <> (amount_minor IS NULL)),
    CHECK (usage_limit IS NULL OR times_used <= usage_limit)
);
CREATE UNIQUE INDEX discount_codes_code_key ON discount_codes (business_id, lower(code));

-- Orders ---------------------------------------------------------------------------------------

CREATE TABLE orders (
    business_id             uuid NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    id                      uuid NOT NULL,
    customer_id             uuid,
    guest_email             text,
    guest_phone             text,
    -- Where confirmation and status emails go (the customer's or the guest's address).
    notify_email            text NOT NULL,
    status                  text NOT NULL DEFAULT 'pending' CHECK (status IN
                                ('pending', 'confirmed', 'preparing', 'ready', 'picked_up', 'delivered',
                                 'rejected', 'cancelled', 'refunded')),
    fulfilment              text NOT NULL CHECK (fulfilment IN ('delivery', 'pickup')),
    -- Snapshot of the drop-off (lines, city, country, latitude, longitude, instructions).
    delivery_address        jsonb,
    delivery_distance_m     integer,
    scheduled_for           timestamptz,
    currency                char(3) NOT NULL,
    subtotal_minor          bigint NOT NULL CHECK (subtotal_minor >= 0),
    discount_minor          bigint NOT NULL DEFAULT 0 CHECK (discount_minor >= 0),
    tax_minor               bigint NOT NULL DEFAULT 0 CHECK (tax_minor >= 0),
    tax_included            boolean NOT NULL,
    delivery_fee_minor      bigint NOT NULL DEFAULT 0 CHECK (delivery_fee_minor >= 0),
    tip_minor               bigint NOT NULL DEFAULT 0 CHECK (tip_minor >= 0),
    total_minor             bigint NOT NULL CHECK (total_minor >= 0),
    discount_code           text,
    discount_code_id        uuid,
    payment_method          text NOT NULL CHECK (payment_method IN ('cash', 'card')),
    payment_status          text NOT NULL CHECK (payment_status IN
                                ('unpaid', 'authorized', 'captured', 'released', 'refunded')),
    payment_reference       text,
    placed_at               timestamptz NOT NULL,
    accepted_at             timestamptz,
    acceptance_deadline     timestamptz NOT NULL,
    prep_time_minutes       integer CHECK (prep_time_minutes BETWEEN 1 AND 240),
    tracking_token_hash     bytea NOT NULL,
    cancellation_reason     text,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, id),
    FOREIGN KEY (business_id, customer_id) REFERENCES customers (business_id, id),
    FOREIGN KEY (business_id, discount_code_id) REFERENCES discount_codes (business_id, id),
    -- A guest order names a way to reach the guest.
    CHECK (customer_id IS NOT NULL OR guest_email IS NOT NULL),
    CHECK (fulfilment = 'pickup' OR delivery_address IS NOT NULL)
);
-- Live-first listing and the acceptance-timeout scan.
CREATE INDEX orders_business_live_idx ON orders (business_id, status, placed_at, id);
CREATE INDEX orders_customer_idx ON orders (business_id, customer_id, placed_at DESC, id DESC);
CREATE INDEX orders_pending_deadline_idx ON orders (acceptance_deadline) WHERE status = 'pending';
CREATE INDEX orders_tracking_idx ON orders (tracking_token_hash);

CREATE TABLE order_items (
    business_id        uuid NOT NULL,
    order_id           uuid NOT NULL,
    line_no            integer NOT NULL CHECK (line_no >= 0),
    product_id         uuid NOT NULL,
    variant_id         uuid,
    product_name       text NOT NULL,
    variant_name       text,
    unit_price_minor   bigint NOT NULL CHECK (unit_price_minor >= 0),
    quantity           integer NOT NULL CHECK (quantity BETWEEN 1 AND 999),
    line_total_minor   bigint NOT NULL CHECK (line_total_minor >= 0),
    PRIMARY KEY (business_id, order_id, line_no),
    FOREIGN KEY (business_id, order_id) REFERENCES orders (business_id, id) ON DELETE CASCADE
);

-- The order status log: every applied step (filled-in steps marked), and superseded or
-- requested events with from = to.
CREATE TABLE order_status_history (
    business_id  uuid NOT NULL,
    id           uuid NOT NULL,
    order_id     uuid NOT NULL,
    from_status  text,
    to_status    text NOT NULL,
    event        text NOT NULL,
    outcome      text NOT NULL DEFAULT 'applied' CHECK (outcome IN ('applied', 'superseded', 'cancellation_requested')),
    by_party     text NOT NULL CHECK (by_party IN ('customer', 'staff', 'driver', 'system', 'admin')),
    actor_id     uuid,
    at           timestamptz NOT NULL,
    reason       text,
    filled_in    boolean NOT NULL DEFAULT false,
    PRIMARY KEY (business_id, id),
    FOREIGN KEY (business_id, order_id) REFERENCES orders (business_id, id) ON DELETE CASCADE
);
CREATE INDEX order_status_history_order_idx ON order_status_history (business_id, order_id, at, id);

CREATE TABLE order_tracking_events (
    business_id  uuid NOT NULL,
    id           uuid NOT NULL,
    order_id     uuid NOT NULL,
    kind         text NOT NULL,
    at           timestamptz NOT NULL,
    latitude     double precision CHECK (latitude BETWEEN -90 AND 90),
    longitude    double precision CHECK (longitude BETWEEN -180 AND 180),
    details      jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (business_id, id),
    FOREIGN KEY (business_id, order_id) REFERENCES orders (business_id, id) ON DELETE CASCADE
);
CREATE INDEX order_tracking_events_order_idx ON order_tracking_events (business_id, order_id, at, id);

-- The first response to an idempotent request, replayed for a retry with the same key.
-- principal: 'customer:<id>' or 'guest:<email>'.
CREATE TABLE idempotency_keys (
    business_id      uuid NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    principal        text NOT NULL,
    key              text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    fingerprint      bytea NOT NULL,
    response_status  integer NOT NULL,
    response_body    jsonb NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, principal, key)
);

-- Row level security ---------------------------------------------------------------------------

ALTER TABLE business_commerce_settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE business_commerce_settings FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_staff ON business_commerce_settings
    USING ((select app_is_admin()) OR business_id = (select app_business_id()) AND (select app_kind()) = 'staff')
    WITH CHECK ((select app_is_admin()) OR business_id = (select app_business_id()) AND (select app_kind()) = 'staff');
CREATE POLICY shopper_read ON business_commerce_settings FOR SELECT
    USING (business_id = (select app_business_id()) AND (select app_kind()) IN ('customer', 'public'));

ALTER TABLE discount_codes ENABLE ROW LEVEL SECURITY;
ALTER TABLE discount_codes FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_staff ON discount_codes
    USING ((select app_is_admin()) OR business_id = (select app_business_id()) AND (select app_kind()) = 'staff')
    WITH CHECK ((select app_is_admin()) OR business_id = (select app_business_id()) AND (select app_kind()) = 'staff');
CREATE POLICY shopper_read ON discount_codes FOR SELECT
    USING (business_id = (select app_business_id()) AND (select app_kind()) IN ('customer', 'public') AND is_active);

ALTER TABLE orders ENABLE ROW LEVEL SECURITY;
ALTER TABLE orders FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_staff ON orders
    USING ((select app_is_admin()) OR business_id = (select app_business_id()) AND (select app_kind()) = 'staff')
    WITH CHECK ((select app_is_admin()) OR business_id = (select app_business_id()) AND (select app_kind()) = 'staff');
CREATE POLICY customer_read ON orders FOR SELECT
    USING (business_id = (select app_business_id()) AND (select app_kind()) = 'customer' AND customer_id = (select app_customer_id()));
CREATE POLICY customer_place ON orders FOR INSERT
    WITH CHECK (business_id = (select app_business_id()) AND (select app_kind()) = 'customer' AND customer_id = (select app_customer_id()));
CREATE POLICY tracking_read ON orders FOR SELECT
    USING ((select app_kind()) = 'public' AND tracking_token_hash = (select app_tracking_hash()));
CREATE POLICY guest_place ON orders FOR INSERT
    WITH CHECK (business_id = (select app_business_id()) AND (select app_kind()) = 'public'
        AND customer_id IS NULL AND tracking_token_hash = (select app_tracking_hash()));
CREATE POLICY order_worker ON orders
    USING ((select app_kind()) = 'order_worker')
    WITH CHECK ((select app_kind()) = 'order_worker');

-- The children of an order: staff of the business; otherwise visible and insertable exactly
-- when the order is visible to the caller (the orders policies apply inside EXISTS).
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['order_items', 'order_status_history', 'order_tracking_events']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY tenant_staff ON %I
            USING ((select app_is_admin()) OR business_id = (select app_business_id()) AND (select app_kind()) = 'staff')
            WITH CHECK ((select app_is_admin()) OR business_id = (select app_business_id()) AND (select app_kind()) = 'staff')$p$, t);
        EXECUTE format($p$CREATE POLICY order_party_read ON %I FOR SELECT
            USING ((select app_kind()) IN ('customer', 'public') AND EXISTS (
                SELECT 1 FROM orders o WHERE o.business_id = %I.business_id AND o.id = %I.order_id))$p$, t, t, t);
        EXECUTE format($p$CREATE POLICY order_party_insert ON %I FOR INSERT
            WITH CHECK ((select app_kind()) IN ('customer', 'public') AND business_id = (select app_business_id()) AND EXISTS (
                SELECT 1 FROM orders o WHERE o.business_id = %I.business_id AND o.id = %I.order_id))$p$, t, t, t);
    END LOOP;
END $$;
CREATE POLICY order_worker_read ON order_items FOR SELECT
    USING ((select app_kind()) = 'order_worker');
CREATE POLICY order_worker_log ON order_status_history FOR INSERT
    WITH CHECK ((select app_kind()) = 'order_worker');

ALTER TABLE idempotency_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE idempotency_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY own_keys ON idempotency_keys
    USING (business_id = (select app_business_id()) AND (
        (select app_kind()) = 'customer' AND principal = 'customer:' || (select app_customer_id())::text
        OR (select app_kind()) = 'public' AND principal LIKE 'guest:%'))
    WITH CHECK (business_id = (select app_business_id()) AND (
        (select app_kind()) = 'customer' AND principal = 'customer:' || (select app_customer_id())::text
        OR (select app_kind()) = 'public' AND principal LIKE 'guest:%'));

-- Checkout runs as the customer (or `public` for a guest): it reads the published catalog and
-- the storefront's hours, and writes the confirmation email to the outbox.
CREATE POLICY customer_read ON products FOR SELECT
    USING (business_id = (select app_business_id()) AND (select app_kind()) = 'customer'
        AND is_published AND archived_at IS NULL);
CREATE POLICY customer_read ON product_variants FOR SELECT
    USING (business_id = (select app_business_id()) AND (select app_kind()) = 'customer'
        AND EXISTS (SELECT 1 FROM products p
                     WHERE p.business_id = product_variants.business_id AND p.id = product_variants.product_id
                       AND p.is_published AND p.archived_at IS NULL));
CREATE POLICY customer_read ON business_storefront_settings FOR SELECT
    USING (business_id = (select app_business_id()) AND (select app_kind()) = 'customer');
CREATE POLICY order_messages ON outbox_messages FOR INSERT
    WITH CHECK (business_id = (select app_business_id()) AND (select app_kind()) IN ('customer', 'public', 'order_worker'));

-- Atomic stock and discount changes ------------------------------------------------------------

-- Takes `p_quantity` units of a tracked variant of the caller's business; false when fewer are
-- on hand. Untracked stock (NULL) always succeeds. Only checkout principals may call it.
CREATE FUNCTION take_stock(p_variant uuid, p_quantity integer) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    v_business uuid := app_business_id();
    v_found boolean;
BEGIN
    IF v_business IS NULL OR app_kind() NOT IN ('customer', 'public') OR p_quantity < 1 THEN
        RETURN false;
    END IF;
    UPDATE product_variants SET stock_quantity = stock_quantity - p_quantity
     WHERE business_id = v_business AND id = p_variant AND stock_quantity >= p_quantity;
    IF FOUND THEN
        RETURN true;
    END IF;
    SELECT stock_quantity IS NULL INTO v_found FROM product_variants
     WHERE business_id = v_business AND id = p_variant;
    RETURN coalesce(v_found, false);
END $$;
REVOKE ALL ON FUNCTION take_stock(uuid, integer) FROM PUBLIC;

-- Counts one use of a discount code of the caller's business; false when it is used up.
CREATE FUNCTION redeem_discount_code(p_code uuid) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    v_business uuid := app_business_id();
BEGIN
    IF v_business IS NULL OR app_kind() NOT IN ('customer', 'public') THEN
        RETURN false;
    END IF;
    UPDATE discount_codes SET times_used = times_used + 1
     WHERE business_id = v_business AND id = p_code AND is_active
       AND (usage_limit IS NULL OR times_used < usage_limit);
    RETURN FOUND;
END $$;
REVOKE ALL ON FUNCTION redeem_discount_code(uuid) FROM PUBLIC;

-- Puts the tracked stock of a rejected or cancelled order back: the business's staff for their
-- own orders, or the acceptance-timeout task. Returns how many variants were restocked.
CREATE FUNCTION return_order_stock(p_business uuid, p_order uuid) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    v_count integer;
BEGIN
    IF NOT (app_kind() = 'order_worker' OR app_kind() = 'staff' AND p_business = app_business_id()) THEN
        RETURN 0;
    END IF;
    UPDATE product_variants v SET stock_quantity = v.stock_quantity + i.quantity
      FROM (SELECT variant_id, sum(quantity)::integer AS quantity FROM order_items
             WHERE business_id = p_business AND order_id = p_order AND variant_id IS NOT NULL
             GROUP BY variant_id) i
     WHERE v.business_id = p_business AND v.id = i.variant_id AND v.stock_quantity IS NOT NULL;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END $$;
REVOKE ALL ON FUNCTION return_order_stock(uuid, uuid) FROM PUBLIC;

-- Grants ---------------------------------------------------------------------------------------

GRANT SELECT, INSERT, UPDATE ON business_commerce_settings, discount_codes, orders TO fleetfront_app;
GRANT SELECT, INSERT ON order_items, order_status_history, order_tracking_events TO fleetfront_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON idempotency_keys TO fleetfront_app;
GRANT EXECUTE ON FUNCTION app_tracking_hash(), take_stock(uuid, integer), redeem_discount_code(uuid),
    return_order_stock(uuid, uuid) TO fleetfront_app;
