-- Offline-first sync (`../shared/design.md` section 4, issue 5): buckets of rows with a
-- commit-ordered, gap-free version per bucket, kept by triggers on the tables they mirror, and
-- the per-client mutation log of `POST /api/v1/sync/push`.
--
-- Platform tables: bucket names carry their owner (`cat:{business}`, `biz:{business}`,
-- `drv:{driver}`, `cust:{customer}`), so there is no business_id column. The runtime role may
-- only SELECT them, and a policy shows it only the buckets of the transaction's principal
-- (`app_sync_buckets()`); every write goes through the SECURITY DEFINER `sync_publish`, which
-- only the owner's trigger functions may call.

CREATE TABLE sync_buckets (
    bucket    text PRIMARY KEY CHECK (bucket ~ '^(cat|biz|drv|cust):[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'),
    version   bigint NOT NULL DEFAULT 0 CHECK (version >= 0),
    -- The sum modulo 2^32 of the live rows' row_checksum (fleetfront_domain::sync).
    checksum  bigint NOT NULL DEFAULT 0 CHECK (checksum BETWEEN 0 AND 4294967295)
);

CREATE TABLE sync_rows (
    bucket        text NOT NULL REFERENCES sync_buckets (bucket) ON DELETE CASCADE,
    kind          text NOT NULL,
    id            uuid NOT NULL,
    version       bigint NOT NULL CHECK (version > 0),
    -- NULL: a tombstone (the row left the bucket).
    data          jsonb,
    -- This row's contribution to its bucket's checksum; 0 for a tombstone.
    row_checksum  bigint NOT NULL CHECK (row_checksum BETWEEN 0 AND 4294967295),
    PRIMARY KEY (bucket, kind, id)
);
CREATE INDEX sync_rows_version_idx ON sync_rows (bucket, version);

-- The buckets the transaction's principal may read: staff their business's catalog and
-- operations, a customer its store's catalog and its own orders, a driver its own work.
-- Admins read none yet.
CREATE FUNCTION app_sync_buckets() RETURNS text[] LANGUAGE sql STABLE AS $$
    SELECT CASE app_kind()
        WHEN 'staff' THEN ARRAY['cat:' || app_business_id(), 'biz:' || app_business_id()]
        WHEN 'customer' THEN ARRAY['cat:' || app_business_id(), 'cust:' || app_customer_id()]
        WHEN 'driver' THEN ARRAY['drv:' || app_user_id()]
        ELSE ARRAY[]::text[]
    END
$$;

ALTER TABLE sync_buckets ENABLE ROW LEVEL SECURITY;
ALTER TABLE sync_buckets FORCE ROW LEVEL SECURITY;
CREATE POLICY principal_read ON sync_buckets FOR SELECT
    USING (bucket = ANY ((select app_sync_buckets())::text[]));
ALTER TABLE sync_rows ENABLE ROW LEVEL SECURITY;
ALTER TABLE sync_rows FORCE ROW LEVEL SECURITY;
CREATE POLICY principal_read ON sync_rows FOR SELECT
    USING (bucket = ANY ((select app_sync_buckets())::text[]));

-- The same as fleetfront_domain::sync::row_checksum.
CREATE FUNCTION sync_row_checksum(p_kind text, p_id uuid, p_version bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT ('x' || encode(substring(sha256(convert_to(p_kind || ':' || p_id || ':' || p_version, 'UTF8'))
             from 1 for 4), 'hex'))::bit(32)::bigint
$$;

-- Writes one row's new state (NULL: a tombstone) into a bucket. Taking the bucket's row lock
-- with the version increment serializes the writers of one bucket until they commit, so
-- versions commit in order without gaps: a reader that sees version v sees every row written
-- at or before v. A write that changes nothing (same data, or a tombstone for a row the bucket
-- never had) takes no lock and leaves the version alone. Callers publish to a business's
-- `biz:` bucket before its customers' `cust:` buckets, so two writers never wait on each other
-- in opposite orders.
CREATE FUNCTION sync_publish(p_bucket text, p_kind text, p_id uuid, p_data jsonb) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    v_old   sync_rows%ROWTYPE;
    v_found boolean;
    v_ver   bigint;
    v_sum   bigint;
    v_bucket_sum bigint;
BEGIN
    SELECT * INTO v_old FROM sync_rows WHERE bucket = p_bucket AND kind = p_kind AND id = p_id;
    v_found := FOUND;
    IF (NOT v_found AND p_data IS NULL) OR (v_found AND v_old.data IS NOT DISTINCT FROM p_data) THEN
        RETURN;
    END IF;
    -- Lock the bucket (made on first use), then write its row once: a hot counter row gets one
    -- new tuple version per publish, not two.
    INSERT INTO sync_buckets (bucket) VALUES (p_bucket) ON CONFLICT (bucket) DO NOTHING;
    SELECT version + 1, checksum INTO v_ver, v_bucket_sum FROM sync_buckets
     WHERE bucket = p_bucket FOR UPDATE;
    -- Read again under the bucket lock: a writer that committed meanwhile may have changed it.
    SELECT * INTO v_old FROM sync_rows WHERE bucket = p_bucket AND kind = p_kind AND id = p_id;
    v_found := FOUND;
    v_sum := CASE WHEN p_data IS NULL THEN 0 ELSE sync_row_checksum(p_kind, p_id, v_ver) END;
    INSERT INTO sync_rows (bucket, kind, id, version, data, row_checksum)
        VALUES (p_bucket, p_kind, p_id, v_ver, p_data, v_sum)
        ON CONFLICT (bucket, kind, id) DO UPDATE
        SET version = EXCLUDED.version, data = EXCLUDED.data, row_checksum = EXCLUDED.row_checksum;
    UPDATE sync_buckets
       SET version = v_ver,
           checksum = ((v_bucket_sum - CASE WHEN v_found THEN v_old.row_checksum ELSE 0 END + v_sum)
                       % 4294967296 + 4294967296) % 4294967296
     WHERE bucket = p_bucket;
END $$;
REVOKE ALL ON FUNCTION sync_publish(text, text, uuid, jsonb) FROM PUBLIC;

-- Catalog -----------------------------------------------------------------------------------------

-- What a store's public catalog shows of a product; NULL when it is not public (unpublished or
-- archived). Cost, stock and timestamps are left out (a sale or a no-op save is no change).
CREATE FUNCTION sync_product_data(p products) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p.is_published AND p.archived_at IS NULL THEN jsonb_build_object(
        'sku', p.sku, 'name', p.name, 'description', p.description, 'price_minor', p.price_minor,
        'category_id', p.category_id, 'preparation_time_minutes', p.preparation_time_minutes,
        'rating_count', p.rating_count, 'rating_sum', p.rating_sum) END
$$;

CREATE FUNCTION sync_variant_data(v product_variants, p_public boolean) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_public THEN jsonb_build_object(
        'product_id', v.product_id, 'name', v.name, 'sku', v.sku,
        'price_adjustment_minor', v.price_adjustment_minor, 'options', v.options,
        'display_order', v.display_order) END
$$;

CREATE FUNCTION sync_category_data(c product_categories) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN c.is_active THEN jsonb_build_object(
        'parent_id', c.parent_id, 'name', c.name, 'slug', c.slug,
        'display_order', c.display_order) END
$$;

CREATE FUNCTION sync_products() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    v_old   jsonb;
    v_new   jsonb;
    v_row   products;
    v_var   product_variants;
BEGIN
    IF TG_OP = 'DELETE' THEN
        v_row := OLD;
    ELSE
        v_row := NEW;
        v_new := sync_product_data(NEW);
    END IF;
    IF TG_OP <> 'INSERT' THEN
        v_old := sync_product_data(OLD);
    END IF;
    IF TG_OP = 'UPDATE' AND v_old IS NOT DISTINCT FROM v_new THEN
        RETURN NULL;
    END IF;
    PERFORM sync_publish('cat:' || v_row.business_id, 'product', v_row.id, v_new);
    -- A product going public or private takes its variants along.
    IF TG_OP = 'UPDATE' AND (v_old IS NULL) <> (v_new IS NULL) THEN
        FOR v_var IN SELECT * FROM product_variants
                      WHERE business_id = v_row.business_id AND product_id = v_row.id LOOP
            PERFORM sync_publish('cat:' || v_row.business_id, 'variant', v_var.id,
                                 sync_variant_data(v_var, v_new IS NOT NULL));
        END LOOP;
    END IF;
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION sync_products() FROM PUBLIC;
CREATE TRIGGER sync_products AFTER INSERT OR UPDATE OR DELETE ON products
    FOR EACH ROW EXECUTE FUNCTION sync_products();

CREATE FUNCTION sync_product_variants() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    v_row     product_variants;
    v_public  boolean;
    v_old     jsonb;
    v_new     jsonb;
BEGIN
    IF TG_OP = 'DELETE' THEN v_row := OLD; ELSE v_row := NEW; END IF;
    SELECT coalesce(bool_or(p.is_published AND p.archived_at IS NULL), false) INTO v_public
      FROM products p WHERE p.business_id = v_row.business_id AND p.id = v_row.product_id;
    IF TG_OP <> 'DELETE' THEN v_new := sync_variant_data(NEW, v_public); END IF;
    IF TG_OP <> 'INSERT' THEN v_old := sync_variant_data(OLD, v_public); END IF;
    -- A stock change alone is not published (stock is not part of the catalog rows).
    IF TG_OP = 'UPDATE' AND v_old IS NOT DISTINCT FROM v_new THEN
        RETURN NULL;
    END IF;
    PERFORM sync_publish('cat:' || v_row.business_id, 'variant', v_row.id, v_new);
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION sync_product_variants() FROM PUBLIC;
-- A stock change (every sale) leaves the published columns alone: the WHEN clause, checked
-- without calling the function, skips it.
CREATE TRIGGER sync_product_variants AFTER INSERT OR DELETE ON product_variants
    FOR EACH ROW EXECUTE FUNCTION sync_product_variants();
CREATE TRIGGER sync_product_variants_update AFTER UPDATE ON product_variants
    FOR EACH ROW WHEN ((OLD.product_id, OLD.name, OLD.sku, OLD.price_adjustment_minor, OLD.options,
                        OLD.display_order)
                       IS DISTINCT FROM (NEW.product_id, NEW.name, NEW.sku, NEW.price_adjustment_minor,
                                         NEW.options, NEW.display_order))
    EXECUTE FUNCTION sync_product_variants();

CREATE FUNCTION sync_product_categories() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    v_row  product_categories;
    v_old  jsonb;
    v_new  jsonb;
BEGIN
    IF TG_OP = 'DELETE' THEN v_row := OLD; ELSE v_row := NEW; v_new := sync_category_data(NEW); END IF;
    IF TG_OP <> 'INSERT' THEN v_old := sync_category_data(OLD); END IF;
    IF TG_OP = 'UPDATE' AND v_old IS NOT DISTINCT FROM v_new THEN
        RETURN NULL;
    END IF;
    PERFORM sync_publish('cat:' || v_row.business_id, 'category', v_row.id, v_new);
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION sync_product_categories() FROM PUBLIC;
CREATE TRIGGER sync_product_categories AFTER INSERT OR UPDATE OR DELETE ON product_categories
    FOR EACH ROW EXECUTE FUNCTION sync_product_categories();

-- Orders ------------------------------------------------------------------------------------------

-- What staff and the ordering customer see of an order, with its lines; NULL while it awaits
-- the customer's payment step (hidden from the board) or when it is gone. Never the tracking
-- token's hash or the payment reference.
CREATE FUNCTION sync_order_data(p_business uuid, p_id uuid) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT jsonb_build_object(
        'customer_id', o.customer_id, 'guest_email', o.guest_email, 'guest_phone', o.guest_phone,
        'status', o.status, 'fulfilment', o.fulfilment, 'delivery_address', o.delivery_address,
        'scheduled_for', o.scheduled_for, 'currency', o.currency,
        'subtotal_minor', o.subtotal_minor, 'discount_minor', o.discount_minor,
        'tax_minor', o.tax_minor, 'tax_included', o.tax_included,
        'delivery_fee_minor', o.delivery_fee_minor, 'tip_minor', o.tip_minor,
        'total_minor', o.total_minor, 'discount_code', o.discount_code,
        'payment_method', o.payment_method, 'payment_status', o.payment_status,
        'placed_at', o.placed_at, 'accepted_at', o.accepted_at,
        'acceptance_deadline', o.acceptance_deadline, 'prep_time_minutes', o.prep_time_minutes,
        'cancellation_reason', o.cancellation_reason, 'updated_at', o.updated_at,
        'items', coalesce((SELECT jsonb_agg(jsonb_build_object(
                    'line_no', i.line_no, 'product_id', i.product_id, 'variant_id', i.variant_id,
                    'product_name', i.product_name, 'variant_name', i.variant_name,
                    'unit_price_minor', i.unit_price_minor, 'quantity', i.quantity,
                    'line_total_minor', i.line_total_minor) ORDER BY i.line_no)
                   FROM order_items i WHERE i.business_id = o.business_id AND i.order_id = o.id),
                  '[]'::jsonb))
      FROM orders o
     WHERE o.business_id = p_business AND o.id = p_id AND o.status <> 'awaiting_payment'
$$;
REVOKE ALL ON FUNCTION sync_order_data(uuid, uuid) FROM PUBLIC;

-- Publishes an order's current state to its business's bucket and then its customer's.
CREATE FUNCTION sync_publish_order(p_business uuid, p_id uuid, p_customer uuid, p_old_customer uuid)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    v_data jsonb := sync_order_data(p_business, p_id);
BEGIN
    PERFORM sync_publish('biz:' || p_business, 'order', p_id, v_data);
    IF p_old_customer IS NOT NULL AND p_old_customer IS DISTINCT FROM p_customer THEN
        PERFORM sync_publish('cust:' || p_old_customer, 'order', p_id, NULL);
    END IF;
    IF p_customer IS NOT NULL THEN
        PERFORM sync_publish('cust:' || p_customer, 'order', p_id, v_data);
    END IF;
END $$;
REVOKE ALL ON FUNCTION sync_publish_order(uuid, uuid, uuid, uuid) FROM PUBLIC;

CREATE FUNCTION sync_orders() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        -- Columns that are not published (tracking hash, payment reference) change nothing.
        IF (to_jsonb(OLD) - 'tracking_token_hash' - 'payment_reference')
           = (to_jsonb(NEW) - 'tracking_token_hash' - 'payment_reference') THEN
            RETURN NULL;
        END IF;
        PERFORM sync_publish_order(NEW.business_id, NEW.id, NEW.customer_id, OLD.customer_id);
    ELSE
        PERFORM sync_publish_order(OLD.business_id, OLD.id, NULL, OLD.customer_id);
    END IF;
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION sync_orders() FROM PUBLIC;
-- A new order is published by the insert of its lines (every order has lines, written in
-- its transaction right after it), so checkout publishes it once.
CREATE TRIGGER sync_orders AFTER UPDATE OR DELETE ON orders
    FOR EACH ROW EXECUTE FUNCTION sync_orders();

-- A line change republishes its order (lines are written with the order, in its transaction),
-- once per statement and order however many lines the statement wrote: checkout inserts all
-- its lines in one statement, so an order is published twice (its row, then its lines), not
-- once per line. Transition tables need one trigger per event.
CREATE FUNCTION sync_order_items() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM sync_publish_order(o.business_id, o.id, o.customer_id, NULL)
           FROM (SELECT DISTINCT business_id, order_id FROM new_lines) k
           JOIN orders o ON o.business_id = k.business_id AND o.id = k.order_id
          ORDER BY o.business_id, o.id;
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM sync_publish_order(o.business_id, o.id, o.customer_id, NULL)
           FROM (SELECT business_id, order_id FROM new_lines
                  UNION SELECT business_id, order_id FROM old_lines) k
           JOIN orders o ON o.business_id = k.business_id AND o.id = k.order_id
          ORDER BY o.business_id, o.id;
    ELSE
        PERFORM sync_publish_order(o.business_id, o.id, o.customer_id, NULL)
           FROM (SELECT DISTINCT business_id, order_id FROM old_lines) k
           JOIN orders o ON o.business_id = k.business_id AND o.id = k.order_id
          ORDER BY o.business_id, o.id;
    END IF;
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION sync_order_items() FROM PUBLIC;
CREATE TRIGGER sync_order_items_insert AFTER INSERT ON order_items
    REFERENCING NEW TABLE AS new_lines FOR EACH STATEMENT EXECUTE FUNCTION sync_order_items();
CREATE TRIGGER sync_order_items_update AFTER UPDATE ON order_items
    REFERENCING OLD TABLE AS old_lines NEW TABLE AS new_lines
    FOR EACH STATEMENT EXECUTE FUNCTION sync_order_items();
CREATE TRIGGER sync_order_items_delete AFTER DELETE ON order_items
    REFERENCING OLD TABLE AS old_lines FOR EACH STATEMENT EXECUTE FUNCTION sync_order_items();

-- Drivers -----------------------------------------------------------------------------------------

-- What a driver sees of an order it is offered or holds: where it goes, what it carries and
-- what to collect; the customer's phone only once the driver holds it. A snapshot taken when
-- the offer or the delivery changes (the order's own status is the business's and customer's;
-- the driver follows the delivery's).
CREATE FUNCTION sync_driver_order(p_business uuid, p_id uuid, p_holder boolean) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT jsonb_build_object(
        'id', o.id, 'business_id', o.business_id, 'fulfilment', o.fulfilment,
        'delivery_address', o.delivery_address, 'scheduled_for', o.scheduled_for,
        'payment_method', o.payment_method, 'currency', o.currency, 'total_minor', o.total_minor,
        'items', coalesce((SELECT jsonb_agg(jsonb_build_object(
                    'product_name', i.product_name, 'variant_name', i.variant_name,
                    'quantity', i.quantity) ORDER BY i.line_no)
                   FROM order_items i WHERE i.business_id = o.business_id AND i.order_id = o.id),
                  '[]'::jsonb))
        || CASE WHEN p_holder THEN jsonb_build_object('guest_phone', o.guest_phone) ELSE '{}'::jsonb END
      FROM orders o WHERE o.business_id = p_business AND o.id = p_id
$$;
REVOKE ALL ON FUNCTION sync_driver_order(uuid, uuid, boolean) FROM PUBLIC;

-- A delivery while its driver holds it (NULL once finished or cancelled).
CREATE FUNCTION sync_delivery_data(d deliveries) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT CASE WHEN d.status IN ('assigned', 'arrived_at_store', 'picked_up', 'arrived_at_customer')
        THEN jsonb_build_object(
            'business_id', d.business_id, 'order_id', d.order_id, 'status', d.status,
            'assigned_at', d.assigned_at, 'arrived_at_store_at', d.arrived_at_store_at,
            'picked_up_at', d.picked_up_at, 'arrived_at_customer_at', d.arrived_at_customer_at,
            'order', sync_driver_order(d.business_id, d.order_id, true)) END
$$;
REVOKE ALL ON FUNCTION sync_delivery_data(deliveries) FROM PUBLIC;

-- An offer while it is open (NULL once answered, expired or withdrawn).
CREATE FUNCTION sync_offer_data(f dispatch_offers) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT CASE WHEN f.status = 'open' THEN jsonb_build_object(
            'business_id', f.business_id, 'delivery_id', f.delivery_id, 'attempt', f.attempt,
            'offered_at', f.offered_at, 'expires_at', f.expires_at,
            'order', (SELECT sync_driver_order(d.business_id, d.order_id, false) FROM deliveries d
                       WHERE d.business_id = f.business_id AND d.id = f.delivery_id)) END
$$;
REVOKE ALL ON FUNCTION sync_offer_data(dispatch_offers) FROM PUBLIC;

-- The driver triggers are deferred to commit and read the rows' current state: a delivery or
-- offer changed several times in one transaction is published once, and the `drv:` bucket
-- locks are taken after every `cat:`/`biz:`/`cust:` lock of the transaction (those triggers
-- fire at once), so a delivery step and an order transition of the same business never wait
-- on each other in opposite orders.
CREATE FUNCTION sync_deliveries() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    v_business    uuid;
    v_id          uuid;
    v_old_driver  uuid;
    v_found       boolean;
    d             deliveries;
BEGIN
    IF TG_OP = 'DELETE' THEN
        v_business := OLD.business_id; v_id := OLD.id;
    ELSE
        v_business := NEW.business_id; v_id := NEW.id;
    END IF;
    IF TG_OP <> 'INSERT' THEN v_old_driver := OLD.driver_id; END IF;
    SELECT * INTO d FROM deliveries WHERE business_id = v_business AND id = v_id;
    v_found := FOUND;
    IF v_found AND d.driver_id IS NOT NULL THEN
        PERFORM sync_publish('drv:' || d.driver_id, 'delivery', v_id, sync_delivery_data(d));
    END IF;
    IF v_old_driver IS NOT NULL AND (NOT v_found OR d.driver_id IS DISTINCT FROM v_old_driver) THEN
        PERFORM sync_publish('drv:' || v_old_driver, 'delivery', v_id, NULL);
    END IF;
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION sync_deliveries() FROM PUBLIC;
CREATE CONSTRAINT TRIGGER sync_deliveries AFTER INSERT OR UPDATE OR DELETE ON deliveries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION sync_deliveries();

-- An open offer is in its driver's bucket; answered, expired or withdrawn, it is a tombstone.
CREATE FUNCTION sync_dispatch_offers() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    v_business  uuid;
    v_id        uuid;
    v_driver    uuid;
    f           dispatch_offers;
    v_data      jsonb;
BEGIN
    IF TG_OP = 'DELETE' THEN
        v_business := OLD.business_id; v_id := OLD.id; v_driver := OLD.driver_id;
    ELSE
        v_business := NEW.business_id; v_id := NEW.id; v_driver := NEW.driver_id;
    END IF;
    SELECT * INTO f FROM dispatch_offers WHERE business_id = v_business AND id = v_id;
    IF FOUND THEN
        v_data := sync_offer_data(f);
    END IF;
    PERFORM sync_publish('drv:' || v_driver, 'offer', v_id, v_data);
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION sync_dispatch_offers() FROM PUBLIC;
CREATE CONSTRAINT TRIGGER sync_dispatch_offers AFTER INSERT OR UPDATE OR DELETE ON dispatch_offers
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION sync_dispatch_offers();

-- Existing rows.
SELECT sync_publish('cat:' || c.business_id, 'category', c.id, sync_category_data(c))
  FROM product_categories c ORDER BY c.business_id, c.id;
SELECT sync_publish('cat:' || p.business_id, 'product', p.id, sync_product_data(p))
  FROM products p ORDER BY p.business_id, p.id;
SELECT sync_publish('cat:' || v.business_id, 'variant', v.id,
                    sync_variant_data(v, p.is_published AND p.archived_at IS NULL))
  FROM product_variants v JOIN products p ON p.business_id = v.business_id AND p.id = v.product_id
 ORDER BY v.business_id, v.id;
SELECT sync_publish_order(o.business_id, o.id, o.customer_id, NULL)
  FROM orders o ORDER BY o.business_id, o.placed_at, o.id;
SELECT sync_publish('drv:' || d.driver_id, 'delivery', d.id, sync_delivery_data(d))
  FROM deliveries d WHERE d.driver_id IS NOT NULL ORDER BY d.driver_id, d.id;
SELECT sync_publish('drv:' || f.driver_id, 'offer', f.id, sync_offer_data(f))
  FROM dispatch_offers f WHERE f.status = 'open' ORDER BY f.driver_id, f.id;

-- Push: the per-client mutation log --------------------------------------------------------------

-- The principal a sync client belongs to, as `{kind}:{account id}`.
CREATE FUNCTION app_sync_principal() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE app_kind()
        WHEN 'customer' THEN 'customer:' || app_customer_id()
        WHEN 'staff' THEN 'staff:' || app_user_id()
        WHEN 'driver' THEN 'driver:' || app_user_id()
        WHEN 'admin' THEN 'admin:' || app_user_id()
    END
$$;

CREATE TABLE sync_clients (
    client_id   uuid PRIMARY KEY,
    principal   text NOT NULL,
    last_seq    bigint NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sync_mutations (
    client_id    uuid NOT NULL REFERENCES sync_clients (client_id) ON DELETE CASCADE,
    seq          bigint NOT NULL CHECK (seq > 0),
    id           uuid NOT NULL,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    status       text NOT NULL CHECK (status IN ('applied', 'rejected')),
    code         text,
    message      text,
    output       jsonb,
    action_time  timestamptz NOT NULL,
    applied_at   timestamptz NOT NULL,
    PRIMARY KEY (client_id, seq),
    CONSTRAINT sync_mutations_id_key UNIQUE (client_id, id)
);

-- A client id of another principal is invisible: the push's insert does nothing, its read
-- finds nothing, and it answers 409 without saying whose it is.
ALTER TABLE sync_clients ENABLE ROW LEVEL SECURITY;
ALTER TABLE sync_clients FORCE ROW LEVEL SECURITY;
CREATE POLICY own_clients ON sync_clients
    USING (principal = (select app_sync_principal()))
    WITH CHECK (principal = (select app_sync_principal()));
ALTER TABLE sync_mutations ENABLE ROW LEVEL SECURITY;
ALTER TABLE sync_mutations FORCE ROW LEVEL SECURITY;
CREATE POLICY own_mutations ON sync_mutations
    USING (EXISTS (SELECT 1 FROM sync_clients c WHERE c.client_id = sync_mutations.client_id))
    WITH CHECK (EXISTS (SELECT 1 FROM sync_clients c WHERE c.client_id = sync_mutations.client_id));

GRANT SELECT ON sync_buckets, sync_rows TO fleetfront_app;
GRANT SELECT, INSERT, UPDATE ON sync_clients TO fleetfront_app;
GRANT SELECT, INSERT ON sync_mutations TO fleetfront_app;
GRANT EXECUTE ON FUNCTION app_sync_buckets(), app_sync_principal() TO fleetfront_app;
