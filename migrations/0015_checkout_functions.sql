-- Checkout in two database round trips (see ARCHITECTURE.md, "Performance"; server/src/orders.rs).
--
-- checkout_context() reads everything a checkout needs to be priced; the server prices it with
-- fleetfront-domain (and authorizes a card); place_order() then writes the order in one
-- statement. Each runs on its own (autocommit): the principal they set with
-- set_config(..., true) lives only for that statement's implicit transaction, exactly as with
-- an explicit BEGIN ... COMMIT. Both are SECURITY INVOKER, so every read and write below goes
-- through the same row level security as before; PL/pgSQL keeps their plans per connection.
--
-- Between the two calls the catalog may change: place_order() checks, under the write, that
-- every line's product is still for sale at the price it was priced at (otherwise it raises
-- FFC01 and the server prices the checkout again, which reports the change), takes stock
-- atomically (FFC02, out of stock) and redeems the discount code (FFC03, used up). Any error
-- rolls the whole statement back: nothing is half-written, not even the idempotency claim.

-- Sets the principal of the current transaction (see app_begin() in 0001 for the staff path).
CREATE FUNCTION checkout_principal(p jsonb, p_business uuid) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM set_config('app.kind', p->>'kind', true),
            set_config('app.user_id', '', true),
            set_config('app.customer_id', coalesce(p->>'customer_id', ''), true),
            set_config('app.business_id', coalesce(p_business::text, ''), true),
            set_config('app.tracking_hash', coalesce(p->>'tracking_hash', ''), true),
            set_config('plan_cache_mode', 'force_generic_plan', true);
END $$;

-- p: {kind: 'public' | 'customer', subdomain (public), business_id and customer_id (customer),
--     validate_session (customer: re-check the session as app_begin() does), principal, key,
--     product_ids, discount_code, address_id, payment_method_id}
CREATE FUNCTION checkout_context(p jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_business uuid;
    v_session jsonb;
    v_products uuid[] := ARRAY(SELECT (jsonb_array_elements_text(p->'product_ids'))::uuid);
    v_out jsonb;
BEGIN
    IF p->>'kind' = 'public' THEN
        SELECT s.business_id INTO v_business FROM storefront_business(p->>'subdomain') s
         WHERE s.is_published AND s.business_active;
        IF v_business IS NULL THEN
            RETURN jsonb_build_object('business_id', NULL);
        END IF;
        PERFORM checkout_principal(p, v_business);
    ELSIF p->>'kind' = 'customer' THEN
        v_business := (p->>'business_id')::uuid;
        IF (p->>'validate_session')::boolean THEN
            SELECT to_jsonb(a) INTO v_session
              FROM app_begin('customer', NULL, (p->>'customer_id')::uuid, v_business) a;
            IF v_session IS NULL THEN
                RETURN jsonb_build_object('business_id', v_business, 'session', NULL);
            END IF;
        END IF;
        PERFORM checkout_principal(p, v_business);
    ELSE
        RAISE EXCEPTION 'checkout_context: unknown principal kind %', p->>'kind';
    END IF;

    SELECT jsonb_build_object(
        'business_id', v_business,
        'session', v_session,
        'stored', (SELECT jsonb_build_object('fingerprint', encode(k.fingerprint, 'hex'),
                                             'status', k.response_status, 'body', k.response_body)
                     FROM idempotency_keys k
                    WHERE k.business_id = v_business AND k.principal = p->>'principal' AND k.key = p->>'key'),
        'store', (SELECT jsonb_build_object(
                     'name', b.name, 'subdomain', s.subdomain, 'currency', b.currency, 'time_zone', b.time_zone,
                     'latitude', b.latitude, 'longitude', b.longitude, 'delivery_radius_m', b.delivery_radius_m,
                     'operating_hours', s.operating_hours, 'is_published', s.is_published,
                     'tax_rate_bps', coalesce(c.tax_rate_bps, 0),
                     'prices_include_tax', coalesce(c.prices_include_tax, true),
                     'tax_includes_delivery', coalesce(c.tax_includes_delivery, false),
                     'offers_delivery', coalesce(c.offers_delivery, true),
                     'offers_pickup', coalesce(c.offers_pickup, true),
                     'delivery_base_fee_minor', coalesce(c.delivery_base_fee_minor, 0),
                     'delivery_fee_per_km_minor', coalesce(c.delivery_fee_per_km_minor, 0),
                     'delivery_included_m', coalesce(c.delivery_included_m, 0),
                     'delivery_max_distance_m', c.delivery_max_distance_m,
                     'minimum_order_minor', coalesce(c.minimum_order_minor, 0),
                     'acceptance_window_secs', coalesce(c.acceptance_window_secs, 180))
                    FROM businesses b JOIN business_storefront_settings s ON s.business_id = b.id
                    LEFT JOIN business_commerce_settings c ON c.business_id = b.id
                   WHERE b.id = v_business AND b.status = 'active'),
        'products', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                         'id', pr.id, 'name', pr.name, 'price_minor', pr.price_minor)), '[]')
                       FROM products pr
                      WHERE pr.business_id = v_business
                        AND pr.id = ANY (v_products)
                        AND pr.is_published AND pr.archived_at IS NULL),
        'variants', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                         'id', v.id, 'product_id', v.product_id, 'name', v.name,
                         'price_adjustment_minor', v.price_adjustment_minor,
                         'stock_quantity', v.stock_quantity)), '[]')
                       FROM product_variants v
                      WHERE v.business_id = v_business
                        AND v.product_id = ANY (v_products)),
        'discount', (SELECT jsonb_build_object(
                         'id', d.id, 'code', d.code, 'percent_bps', d.percent_bps, 'amount_minor', d.amount_minor,
                         'valid_from', d.valid_from, 'valid_until', d.valid_until,
                         'minimum_subtotal_minor', d.minimum_subtotal_minor, 'usage_limit', d.usage_limit,
                         'times_used', d.times_used)
                       FROM discount_codes d
                      WHERE d.business_id = v_business AND lower(d.code) = lower(p->>'discount_code') AND d.is_active),
        'address', (SELECT jsonb_build_object(
                        'address_line1', a.address_line1, 'address_line2', a.address_line2, 'city', a.city,
                        'postal_code', a.postal_code, 'country', trim(a.country), 'latitude', a.latitude,
                        'longitude', a.longitude, 'delivery_instructions', a.delivery_instructions)
                      FROM customer_addresses a
                     WHERE a.business_id = v_business AND a.customer_id = (p->>'customer_id')::uuid
                       AND a.id = (p->>'address_id')::uuid),
        'saved_card', (SELECT jsonb_build_object('token', m.gateway_payment_method_id,
                                                 'gateway_customer', g.gateway_customer_id)
                         FROM customer_payment_methods m
                         LEFT JOIN customer_gateway_accounts g ON g.business_id = m.business_id
                              AND g.customer_id = m.customer_id AND g.gateway = m.gateway
                        WHERE m.business_id = v_business AND m.customer_id = (p->>'customer_id')::uuid
                          AND m.id = (p->>'payment_method_id')::uuid),
        'customer_email', (SELECT cu.email FROM customers cu
                            WHERE cu.business_id = v_business AND cu.id = (p->>'customer_id')::uuid)
    ) INTO v_out;
    RETURN v_out;
END $$;

-- p: {kind, business_id, customer_id, tracking_hash, principal, key, fingerprint (hex),
--     response (the 201 body), lines [{line, product_id, variant_id, price_minor,
--     adjustment_minor}], stock [{variant_id, quantity, line}] (in variant order), discount_id,
--     order, items, payment, history, tracking, outbox, audit (rows as JSON objects)}
-- Returns {outcome: 'placed'} or, when the key was used before, {outcome: 'replay', fingerprint,
-- status, body}, or {outcome: 'conflict'} when a concurrent request with the key rolled back.
CREATE FUNCTION place_order(p jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_business uuid := (p->>'business_id')::uuid;
    v_claimed integer;
    v_stored record;
    v_line record;
BEGIN
    PERFORM checkout_principal(p, v_business);

    INSERT INTO idempotency_keys (business_id, principal, key, fingerprint, response_status, response_body)
    VALUES (v_business, p->>'principal', p->>'key', decode(p->>'fingerprint', 'hex'), 201, p->'response')
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS v_claimed = ROW_COUNT;
    IF v_claimed = 0 THEN
        SELECT k.fingerprint, k.response_status, k.response_body INTO v_stored FROM idempotency_keys k
         WHERE k.business_id = v_business AND k.principal = p->>'principal' AND k.key = p->>'key';
        IF NOT FOUND THEN
            RETURN jsonb_build_object('outcome', 'conflict');
        END IF;
        RETURN jsonb_build_object('outcome', 'replay', 'fingerprint', encode(v_stored.fingerprint, 'hex'),
                                  'status', v_stored.response_status, 'body', v_stored.response_body);
    END IF;

    -- The catalog as it was priced.
    FOR v_line IN SELECT * FROM jsonb_to_recordset(p->'lines')
                  AS l(line integer, product_id uuid, variant_id uuid, price_minor bigint, adjustment_minor bigint)
    LOOP
        PERFORM 1 FROM products pr
         WHERE pr.business_id = v_business AND pr.id = v_line.product_id
           AND pr.is_published AND pr.archived_at IS NULL AND pr.price_minor = v_line.price_minor;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'FFC01', MESSAGE = 'catalog_changed', DETAIL = v_line.line::text;
        END IF;
        IF v_line.variant_id IS NOT NULL THEN
            PERFORM 1 FROM product_variants v
             WHERE v.business_id = v_business AND v.id = v_line.variant_id AND v.product_id = v_line.product_id
               AND v.price_adjustment_minor = v_line.adjustment_minor;
            IF NOT FOUND THEN
                RAISE EXCEPTION USING ERRCODE = 'FFC01', MESSAGE = 'catalog_changed', DETAIL = v_line.line::text;
            END IF;
        END IF;
    END LOOP;

    -- Stock, in variant order so that concurrent checkouts lock rows in one order.
    FOR v_line IN SELECT * FROM jsonb_to_recordset(p->'stock') AS s(variant_id uuid, quantity integer, line integer)
    LOOP
        IF NOT take_stock(v_line.variant_id, v_line.quantity) THEN
            RAISE EXCEPTION USING ERRCODE = 'FFC02', MESSAGE = 'out_of_stock', DETAIL = v_line.line::text;
        END IF;
    END LOOP;
    IF p->>'discount_id' IS NOT NULL AND NOT redeem_discount_code((p->>'discount_id')::uuid) THEN
        RAISE EXCEPTION USING ERRCODE = 'FFC03', MESSAGE = 'discount_exhausted';
    END IF;

    INSERT INTO orders (business_id, id, customer_id, guest_email, guest_phone, notify_email, status, fulfilment,
                        delivery_address, delivery_distance_m, scheduled_for, currency, subtotal_minor, discount_minor,
                        tax_minor, tax_included, delivery_fee_minor, tip_minor, total_minor, discount_code,
                        discount_code_id, payment_method, payment_status, payment_reference, placed_at,
                        acceptance_deadline, tracking_token_hash)
    SELECT business_id, id, customer_id, guest_email, guest_phone, notify_email, status, fulfilment,
           delivery_address, delivery_distance_m, scheduled_for, currency, subtotal_minor, discount_minor,
           tax_minor, tax_included, delivery_fee_minor, tip_minor, total_minor, discount_code,
           discount_code_id, payment_method, payment_status, payment_reference, placed_at,
           acceptance_deadline, decode(p->>'tracking_hash', 'hex')
      FROM jsonb_populate_record(NULL::orders, p->'order');
    INSERT INTO order_items (business_id, order_id, line_no, product_id, variant_id, product_name, variant_name,
                             unit_price_minor, quantity, line_total_minor)
    SELECT business_id, order_id, line_no, product_id, variant_id, product_name, variant_name,
           unit_price_minor, quantity, line_total_minor
      FROM jsonb_populate_recordset(NULL::order_items, p->'items');
    INSERT INTO payment_transactions (business_id, id, order_id, customer_id, amount_minor, currency, payment_method,
                                      payment_gateway, gateway_transaction_id, status)
    SELECT business_id, id, order_id, customer_id, amount_minor, currency, payment_method,
           payment_gateway, gateway_transaction_id, status
      FROM jsonb_populate_record(NULL::payment_transactions, p->'payment');
    INSERT INTO order_status_history (business_id, id, order_id, from_status, to_status, event, outcome, by_party,
                                      actor_id, at)
    SELECT business_id, id, order_id, from_status, to_status, event, outcome, by_party, actor_id, at
      FROM jsonb_populate_record(NULL::order_status_history, p->'history');
    INSERT INTO order_tracking_events (business_id, id, order_id, kind, at)
    SELECT business_id, id, order_id, kind, at
      FROM jsonb_populate_record(NULL::order_tracking_events, p->'tracking');
    INSERT INTO outbox_messages (business_id, id, topic, payload, next_attempt_at)
    SELECT business_id, id, topic, payload, coalesce(next_attempt_at, now())
      FROM jsonb_populate_record(NULL::outbox_messages, p->'outbox');
    INSERT INTO audit_log (business_id, id, actor_kind, actor_id, action, outcome, resource_type, resource_id,
                           request_id, client_address, details)
    SELECT business_id, id, actor_kind, actor_id, action, outcome, resource_type, resource_id,
           request_id, client_address, details
      FROM jsonb_populate_record(NULL::audit_log, p->'audit');
    RETURN jsonb_build_object('outcome', 'placed');
END $$;

REVOKE ALL ON FUNCTION checkout_principal(jsonb, uuid), checkout_context(jsonb), place_order(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION checkout_principal(jsonb, uuid), checkout_context(jsonb), place_order(jsonb) TO fleetfront_app;
