-- Sync for platform admins: one `adm:{nil uuid}` bucket with what the admin console lists
-- offline — the businesses (name, status, plan and subscription status) and the drivers (name,
-- account status, approval, rejection, vehicle). Nothing that changes with every order or every
-- GPS fix is published here (no online flag, no counters): the bucket's row lock is shared by
-- the whole platform, so only rare, administrative changes may take it.
--
-- Lock order: the `adm:` triggers are deferred constraint triggers named `zz_…`, so at commit they
-- fire after every immediate bucket trigger and after the other deferred ones of the same
-- table; the platform bucket is the last lock such a transaction takes.

ALTER TABLE sync_buckets DROP CONSTRAINT sync_buckets_bucket_check;
ALTER TABLE sync_buckets ADD CONSTRAINT sync_buckets_bucket_check
    CHECK (bucket ~ '^(cat|biz|drv|cust|adm):[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$');

-- 0022's buckets, plus the platform bucket for admins.
CREATE OR REPLACE FUNCTION app_sync_buckets() RETURNS text[] LANGUAGE sql STABLE AS $$
    SELECT CASE app_kind()
        WHEN 'staff' THEN ARRAY['cat:' || app_business_id(), 'biz:' || app_business_id()]
        WHEN 'customer' THEN ARRAY['cat:' || app_business_id(), 'cust:' || app_customer_id()]
        WHEN 'driver' THEN ARRAY['drv:' || app_user_id()]
        WHEN 'admin' THEN ARRAY['adm:00000000-0000-0000-0000-000000000000']
        ELSE ARRAY[]::text[]
    END
$$;

CREATE FUNCTION sync_admin_business_data(p_id uuid) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT jsonb_build_object(
        'name', b.name, 'status', b.status, 'currency', b.currency, 'time_zone', b.time_zone,
        'created_at', b.created_at,
        'plan', (SELECT jsonb_build_object('plan_key', p.plan_key, 'name', p.name,
                        'status', s.status, 'billing_interval', s.billing_interval,
                        'current_period_end', s.current_period_end)
                   FROM business_subscriptions s JOIN subscription_plans p ON p.id = s.plan_id
                  WHERE s.business_id = b.id AND s.status <> 'canceled'))
      FROM businesses b WHERE b.id = p_id
$$;
REVOKE ALL ON FUNCTION sync_admin_business_data(uuid) FROM PUBLIC;

CREATE FUNCTION sync_admin_driver_data(p_id uuid) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT jsonb_build_object(
        'full_name', u.full_name, 'status', u.status, 'created_at', u.created_at,
        'approved', p.approved_at IS NOT NULL, 'approved_at', p.approved_at,
        'rejection_reason', p.rejection_reason, 'vehicle_type', p.vehicle_type)
      FROM users u LEFT JOIN driver_profiles p ON p.driver_id = u.id
     WHERE u.id = p_id AND u.kind = 'driver'
$$;
REVOKE ALL ON FUNCTION sync_admin_driver_data(uuid) FROM PUBLIC;

-- Publishes the current state (NULL data, a tombstone, once the row is gone); `sync_publish`
-- compares with what the bucket holds and writes nothing when nothing shown changed.
-- Each table's branch reads only its own columns (PL/pgSQL prepares a statement when it first
-- runs, so a branch never taken never looks for another table's column).
CREATE FUNCTION sync_admin_rows() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    v_row  record := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    v_kind text := 'driver';
    v_id   uuid;
BEGIN
    IF TG_TABLE_NAME = 'businesses' THEN
        v_kind := 'business';
        v_id := v_row.id;
    ELSIF TG_TABLE_NAME = 'business_subscriptions' THEN
        v_kind := 'business';
        v_id := v_row.business_id;
    ELSIF TG_TABLE_NAME = 'users' THEN
        IF v_row.kind <> 'driver' THEN
            RETURN NULL;
        END IF;
        v_id := v_row.id;
    ELSE
        v_id := v_row.driver_id;
    END IF;
    PERFORM sync_publish('adm:00000000-0000-0000-0000-000000000000', v_kind, v_id,
                         CASE v_kind WHEN 'business' THEN sync_admin_business_data(v_id)
                                     ELSE sync_admin_driver_data(v_id) END);
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION sync_admin_rows() FROM PUBLIC;

CREATE CONSTRAINT TRIGGER zz_sync_adm_businesses AFTER INSERT OR UPDATE OR DELETE ON businesses
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION sync_admin_rows();
CREATE CONSTRAINT TRIGGER zz_sync_adm_subscriptions AFTER INSERT OR UPDATE OR DELETE ON business_subscriptions
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION sync_admin_rows();
-- Sign-ins (`last_login_at`) and session bumps change nothing shown: no trigger call.
CREATE CONSTRAINT TRIGGER zz_sync_adm_users AFTER INSERT OR UPDATE OF full_name, status OR DELETE ON users
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION sync_admin_rows();
-- Going online and offline is not published (see above): only the approval and the vehicle.
CREATE CONSTRAINT TRIGGER zz_sync_adm_driver_profiles
    AFTER INSERT OR UPDATE OF approved_at, rejection_reason, vehicle_type OR DELETE ON driver_profiles
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION sync_admin_rows();

-- Backfill.
SELECT sync_publish('adm:00000000-0000-0000-0000-000000000000', 'business', b.id,
                    sync_admin_business_data(b.id))
  FROM businesses b ORDER BY b.id;
SELECT sync_publish('adm:00000000-0000-0000-0000-000000000000', 'driver', u.id,
                    sync_admin_driver_data(u.id))
  FROM users u WHERE u.kind = 'driver' ORDER BY u.id;
