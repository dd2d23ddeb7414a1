-- More of what each role needs offline in its sync buckets (`../shared/design.md` section 4),
-- on top of 0022: a store's board (`biz:{business}`) also gets its active deliveries, its
-- dedicated drivers, its team and its settings; a customer (`cust:{customer}`) also gets its
-- cart and its saved addresses. Rows go through 0022's `sync_publish` like every other row; no
-- table, policy or grant of the runtime role is added (it still only SELECTs the sync tables,
-- through 0022's policy), and every function below is revoked from PUBLIC: only the triggers,
-- which run as the owner, call them.
--
-- Row kinds (data as JSON; a tombstone when the row leaves the bucket):
--   biz  delivery  id = delivery id, while the delivery is active: pending, offered,
--                  unassigned (nobody took it: the board must assign by hand), assigned and
--                  the driver's steps up to arrived_at_customer. Delivered, failed and
--                  cancelled deliveries are tombstones (the order row says how it ended).
--   biz  driver    id = driver's user id, while the driver is dedicated to the business
--                  (`driver_businesses`). Never bank details, documents, licence or insurance
--                  numbers, payout accounts or positions (those change every few seconds).
--   biz  staff     id = user id, while the user is a member of the business.
--   biz  settings  id = business id, always.
--   cust cart      id = cart id, while the customer's cart exists (a guest's cart has no
--                  customer and is published nowhere).
--   cust address   id = address id, while the saved address exists.
--
-- Lock order. 0022 takes bucket-row locks in one order so that two writers never wait on each
-- other in opposite orders: `cat:`/`biz:` before the customers' `cust:` (order triggers fire at
-- once, business first), and `drv:` last (deferred to commit). This migration keeps to it:
-- * `cat:` before `cust:`: a catalog edit that deletes a variant removes the cart lines holding
--   it (the foreign key's cascade, which runs before the variant's own sync trigger); the cart
--   trigger then locks the catalog bucket before it writes the customers' carts.
-- * `biz:` delivery rows are written by deferred constraint triggers, at commit, named
--   `sync_biz_*` so that they fire before 0022's `drv:` triggers of the same row event
--   (PostgreSQL fires the triggers of one event in name order). A transaction works the
--   deliveries of one business (a dispatch step, an offer's answer, a driver's step, an
--   assignment), so its first deferred event takes `biz:` before any `drv:`.
--   Those transactions lock the delivery's row first and want `biz:` at commit. A
--   cancellation is the one order transition that locks the delivery after publishing the order
--   to `biz:` (it withdraws the delivery), which would be the opposite order; so a cancelling
--   update of an order locks its delivery's row first (`sync_order_cancel_locks_delivery`
--   below), and whoever holds the delivery commits before the cancellation gets to the bucket.
-- * Settings, driver and staff rows are written at once and take only `biz:` locks; a change
--   that reaches several businesses (a driver going online, a rename) takes their buckets in
--   business id order, and nothing takes two `biz:` buckets in another order.
-- * Cart and address rows take only their customer's `cust:` lock. A transaction that changes a
--   cart and also publishes to the store's `biz:` bucket must write the `biz:` rows first: a
--   checkout that empties the customer's cart deletes it after inserting the order.

-- Shared --------------------------------------------------------------------------------------

-- Locks a bucket's row (made on first use) without writing it, to take a bucket's lock ahead
-- of the write that needs it (see the cart lines' trigger).
CREATE FUNCTION sync_lock_bucket(p_bucket text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    INSERT INTO sync_buckets (bucket) VALUES (p_bucket) ON CONFLICT (bucket) DO NOTHING;
    PERFORM 1 FROM sync_buckets WHERE bucket = p_bucket FOR UPDATE;
END $$;
REVOKE ALL ON FUNCTION sync_lock_bucket(text) FROM PUBLIC;

-- A cancellation locks its order's delivery before the order's own triggers publish it to
-- `biz:` (see "Lock order" above). The transition's transaction holds the order's row lock and
-- locks the delivery next anyway (`dispatch::cancel`), so this adds no new lock order; other
-- updates of an order are skipped by WHEN and lock nothing more.
CREATE FUNCTION sync_order_cancel_locks_delivery() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM 1 FROM deliveries WHERE business_id = NEW.business_id AND order_id = NEW.id FOR UPDATE;
    RETURN NEW;
END $$;
REVOKE ALL ON FUNCTION sync_order_cancel_locks_delivery() FROM PUBLIC;
CREATE TRIGGER sync_order_cancel_locks_delivery BEFORE UPDATE ON orders
    FOR EACH ROW WHEN (NEW.status = 'cancelled' AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION sync_order_cancel_locks_delivery();

-- Deliveries on the board ---------------------------------------------------------------------

-- What the board shows of a delivery while it is active (NULL once delivered, failed or
-- cancelled, or gone): where dispatch stands, who holds it (and the holder's name, who may be
-- a shared-pool driver the business has no driver row for), the steps' server times, how many
-- offers were made (an assignment by hand counts as one) and the open one. Not the drivers'
-- positions, the failure text or proof.
CREATE FUNCTION sync_board_delivery_data(p_business uuid, p_id uuid) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT jsonb_build_object(
        'order_id', d.order_id, 'status', d.status, 'driver_id', d.driver_id,
        'driver_name', u.full_name, 'created_at', d.created_at, 'assigned_at', d.assigned_at,
        'arrived_at_store_at', d.arrived_at_store_at, 'picked_up_at', d.picked_up_at,
        'arrived_at_customer_at', d.arrived_at_customer_at,
        'attempts', (SELECT count(*) FROM dispatch_offers f
                      WHERE f.business_id = d.business_id AND f.delivery_id = d.id),
        'offer', (SELECT jsonb_build_object('driver_id', f.driver_id, 'attempt', f.attempt,
                                            'offered_at', f.offered_at, 'expires_at', f.expires_at)
                    FROM dispatch_offers f
                   WHERE f.business_id = d.business_id AND f.delivery_id = d.id AND f.status = 'open'))
      FROM deliveries d LEFT JOIN users u ON u.id = d.driver_id
     WHERE d.business_id = p_business AND d.id = p_id
       AND d.status IN ('pending', 'offered', 'unassigned', 'assigned', 'arrived_at_store',
                        'picked_up', 'arrived_at_customer')
$$;
REVOKE ALL ON FUNCTION sync_board_delivery_data(uuid, uuid) FROM PUBLIC;

-- Deferred to commit and reading the delivery's current state: a delivery changed several
-- times in one transaction (a dispatch step expires an offer, makes the next and sets the
-- status) is written once; the later calls find the same data and take no lock.
CREATE FUNCTION sync_biz_deliveries() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    v_business  uuid;
    v_id        uuid;
BEGIN
    IF TG_TABLE_NAME = 'deliveries' THEN
        IF TG_OP = 'DELETE' THEN v_business := OLD.business_id; v_id := OLD.id;
        ELSE v_business := NEW.business_id; v_id := NEW.id; END IF;
    ELSE
        -- dispatch_offers: the delivery the offer belongs to.
        IF TG_OP = 'DELETE' THEN v_business := OLD.business_id; v_id := OLD.delivery_id;
        ELSE v_business := NEW.business_id; v_id := NEW.delivery_id; END IF;
    END IF;
    PERFORM sync_publish('biz:' || v_business, 'delivery', v_id,
                         sync_board_delivery_data(v_business, v_id));
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION sync_biz_deliveries() FROM PUBLIC;
-- `sync_biz_*` sorts before 0022's `sync_deliveries` and `sync_dispatch_offers`: `biz:` first.
CREATE CONSTRAINT TRIGGER sync_biz_deliveries AFTER INSERT OR UPDATE OR DELETE ON deliveries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION sync_biz_deliveries();
CREATE CONSTRAINT TRIGGER sync_biz_dispatch_offers AFTER INSERT OR UPDATE OR DELETE ON dispatch_offers
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION sync_biz_deliveries();

-- Drivers -------------------------------------------------------------------------------------

-- A dedicated driver as the business's board shows it (what `GET /api/v1/business/drivers`
-- shows, plus the account's status and approval); NULL when not dedicated to the business.
-- Whether a driver is busy follows from the board's delivery rows.
CREATE FUNCTION sync_business_driver_data(p_business uuid, p_driver uuid) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT jsonb_build_object(
        'full_name', u.full_name, 'phone', u.phone, 'status', u.status,
        'approved', p.approved_at IS NOT NULL, 'vehicle_type', p.vehicle_type,
        'rating_tenths', p.rating_tenths, 'is_online', p.is_online,
        'online_since', p.online_since, 'priority', db.priority)
      FROM driver_businesses db
      JOIN users u ON u.id = db.driver_id
      JOIN driver_profiles p ON p.driver_id = db.driver_id
     WHERE db.business_id = p_business AND db.driver_id = p_driver
$$;
REVOKE ALL ON FUNCTION sync_business_driver_data(uuid, uuid) FROM PUBLIC;

-- A profile change reaches every business the driver is dedicated to, in business id order.
CREATE FUNCTION sync_driver_profiles() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM sync_publish('biz:' || db.business_id, 'driver', NEW.driver_id,
                         sync_business_driver_data(db.business_id, NEW.driver_id))
       FROM driver_businesses db WHERE db.driver_id = NEW.driver_id
      ORDER BY db.business_id;
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION sync_driver_profiles() FROM PUBLIC;
-- Bank details, licence, insurance, plate, payout account and timestamps are not published: the
-- WHEN clause, checked without calling the function, skips updates of those alone.
CREATE TRIGGER sync_driver_profiles AFTER UPDATE ON driver_profiles
    FOR EACH ROW WHEN ((OLD.vehicle_type, OLD.rating_tenths, OLD.is_online, OLD.online_since,
                        OLD.approved_at IS NULL)
                       IS DISTINCT FROM (NEW.vehicle_type, NEW.rating_tenths, NEW.is_online,
                                         NEW.online_since, NEW.approved_at IS NULL))
    EXECUTE FUNCTION sync_driver_profiles();

CREATE FUNCTION sync_driver_businesses() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND (TG_OP = 'DELETE' OR OLD.business_id <> NEW.business_id
                              OR OLD.driver_id <> NEW.driver_id) THEN
        PERFORM sync_publish('biz:' || OLD.business_id, 'driver', OLD.driver_id, NULL);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM sync_publish('biz:' || NEW.business_id, 'driver', NEW.driver_id,
                             sync_business_driver_data(NEW.business_id, NEW.driver_id));
    END IF;
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION sync_driver_businesses() FROM PUBLIC;
CREATE TRIGGER sync_driver_businesses AFTER INSERT OR UPDATE OR DELETE ON driver_businesses
    FOR EACH ROW EXECUTE FUNCTION sync_driver_businesses();

-- Staff ---------------------------------------------------------------------------------------

-- A member of the business's team: name, account status and role. No email, phone or PIN.
CREATE FUNCTION sync_staff_data(p_business uuid, p_user uuid) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT jsonb_build_object(
        'full_name', u.full_name, 'status', u.status, 'role_id', m.role_id,
        'role_key', r.key, 'role_name', r.name, 'joined_at', m.created_at)
      FROM memberships m
      JOIN users u ON u.id = m.user_id
      JOIN roles r ON r.business_id = m.business_id AND r.id = m.role_id
     WHERE m.business_id = p_business AND m.user_id = p_user
$$;
REVOKE ALL ON FUNCTION sync_staff_data(uuid, uuid) FROM PUBLIC;

CREATE FUNCTION sync_memberships() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND (TG_OP = 'DELETE' OR OLD.business_id <> NEW.business_id
                              OR OLD.user_id <> NEW.user_id) THEN
        PERFORM sync_publish('biz:' || OLD.business_id, 'staff', OLD.user_id, NULL);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM sync_publish('biz:' || NEW.business_id, 'staff', NEW.user_id,
                             sync_staff_data(NEW.business_id, NEW.user_id));
    END IF;
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION sync_memberships() FROM PUBLIC;
CREATE TRIGGER sync_memberships AFTER INSERT OR UPDATE OR DELETE ON memberships
    FOR EACH ROW EXECUTE FUNCTION sync_memberships();

-- A renamed role renames its members' rows (one bucket, in user id order).
CREATE FUNCTION sync_roles() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM sync_publish('biz:' || m.business_id, 'staff', m.user_id,
                         sync_staff_data(m.business_id, m.user_id))
       FROM memberships m WHERE m.business_id = NEW.business_id AND m.role_id = NEW.id
      ORDER BY m.user_id;
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION sync_roles() FROM PUBLIC;
CREATE TRIGGER sync_roles AFTER UPDATE ON roles
    FOR EACH ROW WHEN ((OLD.key, OLD.name) IS DISTINCT FROM (NEW.key, NEW.name))
    EXECUTE FUNCTION sync_roles();

-- An account's name, phone or status: a staff member's rows in its businesses; a driver's rows
-- in the businesses it is dedicated to and the board rows of the deliveries it holds, business
-- by business in id order. Sign-ins (last_login_at, session_version) are skipped by WHEN.
CREATE FUNCTION sync_users() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    v_business  uuid;
BEGIN
    IF NEW.kind = 'staff' THEN
        PERFORM sync_publish('biz:' || m.business_id, 'staff', NEW.id,
                             sync_staff_data(m.business_id, NEW.id))
           FROM memberships m WHERE m.user_id = NEW.id
          ORDER BY m.business_id;
    ELSIF NEW.kind = 'driver' THEN
        FOR v_business IN
            SELECT db.business_id FROM driver_businesses db WHERE db.driver_id = NEW.id
             UNION
            SELECT d.business_id FROM deliveries d
             WHERE d.driver_id = NEW.id
               AND d.status IN ('assigned', 'arrived_at_store', 'picked_up', 'arrived_at_customer')
             ORDER BY 1
        LOOP
            -- Not dedicated here (a shared-pool driver): no driver row, and no write.
            PERFORM sync_publish('biz:' || v_business, 'driver', NEW.id,
                                 sync_business_driver_data(v_business, NEW.id));
            PERFORM sync_publish('biz:' || v_business, 'delivery', d.id,
                                 sync_board_delivery_data(v_business, d.id))
               FROM deliveries d
              WHERE d.business_id = v_business AND d.driver_id = NEW.id
                AND d.status IN ('assigned', 'arrived_at_store', 'picked_up', 'arrived_at_customer')
              ORDER BY d.id;
        END LOOP;
    END IF;
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION sync_users() FROM PUBLIC;
CREATE TRIGGER sync_users AFTER UPDATE ON users
    FOR EACH ROW WHEN ((OLD.full_name, OLD.phone, OLD.status)
                       IS DISTINCT FROM (NEW.full_name, NEW.phone, NEW.status))
    EXECUTE FUNCTION sync_users();

-- Settings ------------------------------------------------------------------------------------

-- What a POS needs of its business to work offline: the store (name, currency, time zone,
-- status, where it is and how far it delivers), the storefront (subdomain, opening hours,
-- published), the commerce rules (tax, fulfilment, fees, minimum, acceptance window) and the
-- dispatch rules (offer timeout, shared pool, proof photos, cash cap). Contact details, theme,
-- payout account and timestamps are left out (a no-op save is no change). Default preparation
-- times are per product, in the catalog bucket.
CREATE FUNCTION sync_settings_data(p_business uuid) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT jsonb_build_object(
        'name', b.name, 'currency', b.currency, 'time_zone', b.time_zone, 'status', b.status,
        'latitude', b.latitude, 'longitude', b.longitude, 'delivery_radius_m', b.delivery_radius_m,
        'storefront', (SELECT jsonb_build_object(
                'subdomain', s.subdomain, 'custom_domain', s.custom_domain,
                'is_published', s.is_published, 'operating_hours', s.operating_hours,
                'logo_url', s.logo_url)
              FROM business_storefront_settings s WHERE s.business_id = b.id),
        'commerce', (SELECT jsonb_build_object(
                'tax_rate_bps', c.tax_rate_bps, 'prices_include_tax', c.prices_include_tax,
                'tax_includes_delivery', c.tax_includes_delivery,
                'offers_delivery', c.offers_delivery, 'offers_pickup', c.offers_pickup,
                'delivery_base_fee_minor', c.delivery_base_fee_minor,
                'delivery_fee_per_km_minor', c.delivery_fee_per_km_minor,
                'delivery_included_m', c.delivery_included_m,
                'delivery_max_distance_m', c.delivery_max_distance_m,
                'minimum_order_minor', c.minimum_order_minor,
                'acceptance_window_secs', c.acceptance_window_secs)
              FROM business_commerce_settings c WHERE c.business_id = b.id),
        'dispatch', (SELECT jsonb_build_object(
                'shared_pool_opt_in', ds.shared_pool_opt_in,
                'offer_timeout_secs', ds.offer_timeout_secs,
                'require_proof_photo', ds.require_proof_photo,
                'cash_cap_minor', ds.cash_cap_minor)
              FROM business_dispatch_settings ds WHERE ds.business_id = b.id))
      FROM businesses b WHERE b.id = p_business
$$;
REVOKE ALL ON FUNCTION sync_settings_data(uuid) FROM PUBLIC;

-- One trigger function for the four tables; the argument names the business id's column.
-- Settings change rarely: sync_publish's comparison with the stored row skips a no-op save.
CREATE FUNCTION sync_business_settings() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    v_business uuid := (to_jsonb(NEW) ->> TG_ARGV[0])::uuid;
BEGIN
    PERFORM sync_publish('biz:' || v_business, 'settings', v_business,
                         sync_settings_data(v_business));
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION sync_business_settings() FROM PUBLIC;
CREATE TRIGGER sync_business_settings AFTER INSERT OR UPDATE ON businesses
    FOR EACH ROW EXECUTE FUNCTION sync_business_settings('id');
CREATE TRIGGER sync_business_settings AFTER INSERT OR UPDATE ON business_storefront_settings
    FOR EACH ROW EXECUTE FUNCTION sync_business_settings('business_id');
CREATE TRIGGER sync_business_settings AFTER INSERT OR UPDATE ON business_commerce_settings
    FOR EACH ROW EXECUTE FUNCTION sync_business_settings('business_id');
CREATE TRIGGER sync_business_settings AFTER INSERT OR UPDATE ON business_dispatch_settings
    FOR EACH ROW EXECUTE FUNCTION sync_business_settings('business_id');

-- Carts ---------------------------------------------------------------------------------------

-- A customer's cart: its lines as references and quantities (names and prices are the
-- catalog bucket's, read fresh like the cart endpoints do); NULL for a guest's cart or a cart
-- that is gone. Its timestamps are left out: touching a cart is no change.
CREATE FUNCTION sync_cart_data(p_business uuid, p_id uuid) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT jsonb_build_object(
        'items', coalesce((SELECT jsonb_agg(jsonb_build_object(
                    'id', i.id, 'product_id', i.product_id, 'variant_id', i.variant_id,
                    'quantity', i.quantity, 'added_at', i.added_at) ORDER BY i.added_at, i.id)
                   FROM cart_items i WHERE i.business_id = c.business_id AND i.cart_id = c.id),
                  '[]'::jsonb))
      FROM carts c
     WHERE c.business_id = p_business AND c.id = p_id AND c.customer_id IS NOT NULL
$$;
REVOKE ALL ON FUNCTION sync_cart_data(uuid, uuid) FROM PUBLIC;

-- A customer's cart appears when it is made and leaves when it is deleted. The cart endpoints
-- touch `updated_at` on every change and never move a cart to another customer (a guest cart
-- is merged by copying its lines), so updates that leave the owner alone are skipped by WHEN.
CREATE FUNCTION sync_carts() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.customer_id IS NOT NULL
       AND (TG_OP = 'DELETE' OR OLD.customer_id IS DISTINCT FROM NEW.customer_id) THEN
        PERFORM sync_publish('cust:' || OLD.customer_id, 'cart', OLD.id, NULL);
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.customer_id IS NOT NULL THEN
        PERFORM sync_publish('cust:' || NEW.customer_id, 'cart', NEW.id,
                             sync_cart_data(NEW.business_id, NEW.id));
    END IF;
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION sync_carts() FROM PUBLIC;
CREATE TRIGGER sync_carts AFTER INSERT OR DELETE ON carts
    FOR EACH ROW EXECUTE FUNCTION sync_carts();
CREATE TRIGGER sync_carts_update AFTER UPDATE ON carts
    FOR EACH ROW WHEN (OLD.customer_id IS DISTINCT FROM NEW.customer_id)
    EXECUTE FUNCTION sync_carts();

-- A line change republishes its cart once per statement and cart, however many lines the
-- statement wrote (transition tables need one trigger per event). A guest's cart has no
-- customer: the join finds nothing to write. Lines deleted with their cart (the cascade) find
-- no cart either; the cart's own trigger writes its tombstone.
CREATE FUNCTION sync_cart_items() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM sync_publish('cust:' || c.customer_id, 'cart', c.id,
                             sync_cart_data(c.business_id, c.id))
           FROM (SELECT DISTINCT business_id, cart_id FROM new_lines) k
           JOIN carts c ON c.business_id = k.business_id AND c.id = k.cart_id
          WHERE c.customer_id IS NOT NULL
          ORDER BY c.customer_id, c.id;
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM sync_publish('cust:' || c.customer_id, 'cart', c.id,
                             sync_cart_data(c.business_id, c.id))
           FROM (SELECT business_id, cart_id FROM new_lines
                  UNION SELECT business_id, cart_id FROM old_lines) k
           JOIN carts c ON c.business_id = k.business_id AND c.id = k.cart_id
          WHERE c.customer_id IS NOT NULL
          ORDER BY c.customer_id, c.id;
    ELSE
        -- Lines whose variant is gone were removed by a catalog edit deleting the variant (the
        -- foreign key's cascade): that transaction publishes to the catalog bucket, so its lock
        -- is taken before the customers' (`cat:` before `cust:`).
        PERFORM sync_lock_bucket('cat:' || k.business_id)
           FROM (SELECT DISTINCT l.business_id FROM old_lines l
                  WHERE l.variant_id IS NOT NULL AND NOT EXISTS (
                        SELECT 1 FROM product_variants v
                         WHERE v.business_id = l.business_id AND v.id = l.variant_id)) k
          ORDER BY k.business_id;
        PERFORM sync_publish('cust:' || c.customer_id, 'cart', c.id,
                             sync_cart_data(c.business_id, c.id))
           FROM (SELECT DISTINCT business_id, cart_id FROM old_lines) k
           JOIN carts c ON c.business_id = k.business_id AND c.id = k.cart_id
          WHERE c.customer_id IS NOT NULL
          ORDER BY c.customer_id, c.id;
    END IF;
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION sync_cart_items() FROM PUBLIC;
CREATE TRIGGER sync_cart_items_insert AFTER INSERT ON cart_items
    REFERENCING NEW TABLE AS new_lines FOR EACH STATEMENT EXECUTE FUNCTION sync_cart_items();
CREATE TRIGGER sync_cart_items_update AFTER UPDATE ON cart_items
    REFERENCING OLD TABLE AS old_lines NEW TABLE AS new_lines
    FOR EACH STATEMENT EXECUTE FUNCTION sync_cart_items();
CREATE TRIGGER sync_cart_items_delete AFTER DELETE ON cart_items
    REFERENCING OLD TABLE AS old_lines FOR EACH STATEMENT EXECUTE FUNCTION sync_cart_items();

-- Saved addresses -----------------------------------------------------------------------------

-- A saved address as its customer edits it (timestamps left out).
CREATE FUNCTION sync_address_data(a customer_addresses) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object(
        'label', a.label, 'address_line1', a.address_line1, 'address_line2', a.address_line2,
        'city', a.city, 'postal_code', a.postal_code, 'country', a.country,
        'latitude', a.latitude, 'longitude', a.longitude,
        'delivery_instructions', a.delivery_instructions, 'is_default', a.is_default)
$$;
REVOKE ALL ON FUNCTION sync_address_data(customer_addresses) FROM PUBLIC;

CREATE FUNCTION sync_customer_addresses() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.customer_id = NEW.customer_id
       AND sync_address_data(OLD) = sync_address_data(NEW) THEN
        RETURN NULL;
    END IF;
    IF TG_OP <> 'INSERT' AND (TG_OP = 'DELETE' OR OLD.customer_id <> NEW.customer_id) THEN
        PERFORM sync_publish('cust:' || OLD.customer_id, 'address', OLD.id, NULL);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM sync_publish('cust:' || NEW.customer_id, 'address', NEW.id, sync_address_data(NEW));
    END IF;
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION sync_customer_addresses() FROM PUBLIC;
CREATE TRIGGER sync_customer_addresses AFTER INSERT OR UPDATE OR DELETE ON customer_addresses
    FOR EACH ROW EXECUTE FUNCTION sync_customer_addresses();

-- Existing rows (business buckets first, then the customers').
SELECT sync_publish('biz:' || b.id, 'settings', b.id, sync_settings_data(b.id))
  FROM businesses b ORDER BY b.id;
SELECT sync_publish('biz:' || m.business_id, 'staff', m.user_id,
                    sync_staff_data(m.business_id, m.user_id))
  FROM memberships m ORDER BY m.business_id, m.user_id;
SELECT sync_publish('biz:' || db.business_id, 'driver', db.driver_id,
                    sync_business_driver_data(db.business_id, db.driver_id))
  FROM driver_businesses db ORDER BY db.business_id, db.driver_id;
SELECT sync_publish('biz:' || d.business_id, 'delivery', d.id,
                    sync_board_delivery_data(d.business_id, d.id))
  FROM deliveries d ORDER BY d.business_id, d.id;
SELECT sync_publish('cust:' || c.customer_id, 'cart', c.id, sync_cart_data(c.business_id, c.id))
  FROM carts c WHERE c.customer_id IS NOT NULL ORDER BY c.customer_id, c.id;
SELECT sync_publish('cust:' || a.customer_id, 'address', a.id, sync_address_data(a))
  FROM customer_addresses a ORDER BY a.customer_id, a.id;
