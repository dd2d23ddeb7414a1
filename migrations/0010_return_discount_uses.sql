-- A rejected or cancelled order gives its discount code's use back, like its stock: the
-- business's staff for their own orders, or the order system (`order_worker`: the acceptance
-- timeout, and a customer's own cancellation, which the server checks as the customer first).
-- Returns whether a use was given back.
CREATE FUNCTION return_discount_use(p_business uuid, p_order uuid) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    IF NOT (app_kind() = 'order_worker' OR app_kind() = 'staff' AND p_business = app_business_id()) THEN
        RETURN false;
    END IF;
    UPDATE discount_codes d SET times_used = d.times_used - 1
      FROM orders o
     WHERE o.business_id = p_business AND o.id = p_order AND o.status IN ('rejected', 'cancelled')
       AND d.business_id = o.business_id AND d.id = o.discount_code_id AND d.times_used > 0;
    RETURN FOUND;
END $$;
REVOKE ALL ON FUNCTION return_discount_use(uuid, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION return_discount_use(uuid, uuid) TO fleetfront_app;
