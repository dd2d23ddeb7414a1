-- The storefront's read path in fewer, cheaper statements (see ARCHITECTURE.md, "Performance").
--
-- * storefront_business() becomes PL/pgSQL: a SQL-language function that cannot be inlined
--   (SECURITY DEFINER) plans its query on every call, PL/pgSQL keeps the plan per connection.
-- * storefront_begin() opens a public storefront request in one round trip: it resolves the
--   store, sets the `public` principal for the transaction and returns what every storefront
--   response needs (the business and its currency). It is SECURITY INVOKER: the currency is
--   read through the public policies like everything after it.
-- * Storefront reads run with plan_cache_mode = force_generic_plan, for this transaction only:
--   listing queries carry a search text and keyset values, for which PostgreSQL would otherwise
--   plan every execution anew (~0.4 ms each); every storefront query is scoped by business id
--   and served by the same indexes whatever the values.

CREATE OR REPLACE FUNCTION storefront_business(p_subdomain text)
RETURNS TABLE (business_id uuid, is_published boolean, business_active boolean)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    RETURN QUERY
    SELECT s.business_id, s.is_published, b.status = 'active'
      FROM business_storefront_settings s JOIN businesses b ON b.id = s.business_id
     WHERE s.subdomain = p_subdomain;
END $$;
REVOKE ALL ON FUNCTION storefront_business(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION storefront_business(text) TO fleetfront_app;

CREATE FUNCTION storefront_begin(p_subdomain text)
RETURNS TABLE (business_id uuid, currency text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_business uuid;
BEGIN
    SELECT s.business_id INTO v_business
      FROM storefront_business(p_subdomain) s
     WHERE s.is_published AND s.business_active;
    IF v_business IS NULL THEN
        RETURN;
    END IF;
    PERFORM set_config('app.kind', 'public', true),
            set_config('app.user_id', '', true),
            set_config('app.customer_id', '', true),
            set_config('app.business_id', v_business::text, true),
            set_config('plan_cache_mode', 'force_generic_plan', true);
    RETURN QUERY SELECT b.id, b.currency::text FROM businesses b WHERE b.id = v_business;
END $$;
REVOKE ALL ON FUNCTION storefront_begin(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION storefront_begin(text) TO fleetfront_app;

