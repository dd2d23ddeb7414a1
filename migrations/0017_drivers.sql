-- Drivers (issue 4): the driver's own profile, documents and weekly availability (platform
-- tier: a driver is not owned by any business), the businesses a driver is dedicated to and
-- each business's dispatch settings (tenant tier).
--
-- Bank details are sealed by the server with AES-256-GCM (key FLEETFRONT_DATA_KEY, the
-- driver's id as associated data) before they reach this table; only the last four
-- characters are kept in clear, for display.

CREATE TABLE driver_profiles (
    driver_id                uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    vehicle_type             text CHECK (vehicle_type IN ('bicycle', 'scooter', 'motorcycle', 'car', 'van')),
    vehicle_plate            text CHECK (char_length(vehicle_plate) BETWEEN 2 AND 12),
    license_number           text CHECK (char_length(license_number) BETWEEN 4 AND 32),
    license_expires_on       date,
    insurance_policy         text CHECK (char_length(insurance_policy) BETWEEN 3 AND 64),
    insurance_expires_on     date,
    time_zone                text NOT NULL DEFAULT 'UTC',
    bank_account_ciphertext  bytea,
    bank_account_nonce       bytea CHECK (octet_length(bank_account_nonce) = 12),
    bank_account_last4       text CHECK (bank_account_last4 ~ '^[A-Z0-9]{4}$'),
    rating_tenths            integer CHECK (rating_tenths BETWEEN 10 AND 50),
    is_online                boolean NOT NULL DEFAULT false,
    online_since             timestamptz,
    approved_at              timestamptz,
    approved_by              uuid REFERENCES users (id),
    rejection_reason         text CHECK (char_length(rejection_reason) BETWEEN 1 AND 500),
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now(),
    -- The sealed account, its nonce and its display digits come and go together.
    CHECK ((bank_account_ciphertext IS NULL) = (bank_account_nonce IS NULL)
       AND (bank_account_ciphertext IS NULL) = (bank_account_last4 IS NULL)),
    CHECK (is_online = (online_since IS NOT NULL))
);
CREATE INDEX driver_profiles_online_idx ON driver_profiles (driver_id) WHERE is_online;

-- Every driver account has a profile row from the start, whoever creates the account.
CREATE FUNCTION driver_profile_defaults() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    IF NEW.kind = 'driver' THEN
        INSERT INTO driver_profiles (driver_id) VALUES (NEW.id) ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER users_driver_profile AFTER INSERT ON users
    FOR EACH ROW EXECUTE FUNCTION driver_profile_defaults();
INSERT INTO driver_profiles (driver_id) SELECT id FROM users WHERE kind = 'driver';

CREATE TABLE driver_documents (
    id                uuid PRIMARY KEY,
    driver_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind              text NOT NULL CHECK (kind IN ('license', 'insurance', 'identity', 'vehicle_registration')),
    content_hash      text NOT NULL CHECK (content_hash ~ '^[0-9a-f]{64}$'),
    content_type      text NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png', 'application/pdf')),
    byte_size         bigint NOT NULL CHECK (byte_size BETWEEN 1 AND 10485760),
    status            text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected')),
    rejection_reason  text CHECK (char_length(rejection_reason) BETWEEN 1 AND 500),
    uploaded_at       timestamptz NOT NULL DEFAULT now(),
    reviewed_at       timestamptz,
    reviewed_by       uuid REFERENCES users (id),
    CHECK ((status = 'pending') = (reviewed_at IS NULL)),
    CHECK ((status = 'rejected') = (rejection_reason IS NOT NULL))
);
CREATE INDEX driver_documents_driver_idx ON driver_documents (driver_id, uploaded_at DESC, id DESC);

-- Weekly windows in the driver's local time (driver_profiles.time_zone). Overlaps and the
-- limit of 21 are checked by the server (fleetfront_domain::driver::Schedule) while it holds
-- the profile row locked, so two replacements cannot interleave.
CREATE TABLE driver_availability_windows (
    driver_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    id           uuid NOT NULL,
    day_of_week  smallint NOT NULL CHECK (day_of_week BETWEEN 0 AND 6),
    start_time   time NOT NULL,
    end_time     time NOT NULL,
    PRIMARY KEY (driver_id, id),
    CHECK (end_time > start_time)
);

-- Tenant tier ----------------------------------------------------------------------------------

-- Dedicated drivers: a business's own fleet, asked before the shared pool, by priority.
CREATE TABLE driver_businesses (
    business_id  uuid NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    driver_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    priority     smallint NOT NULL CHECK (priority BETWEEN 1 AND 10),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, driver_id)
);
CREATE INDEX driver_businesses_driver_idx ON driver_businesses (driver_id);

CREATE TABLE business_dispatch_settings (
    business_id          uuid PRIMARY KEY REFERENCES businesses (id) ON DELETE CASCADE,
    shared_pool_opt_in   boolean NOT NULL DEFAULT false,
    offer_timeout_secs   integer NOT NULL DEFAULT 30 CHECK (offer_timeout_secs BETWEEN 10 AND 300),
    require_proof_photo  boolean NOT NULL DEFAULT false,
    cash_cap_minor       bigint NOT NULL DEFAULT 20000 CHECK (cash_cap_minor BETWEEN 0 AND 100000000),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
INSERT INTO business_dispatch_settings (business_id) SELECT id FROM businesses;

CREATE FUNCTION business_dispatch_defaults() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    INSERT INTO business_dispatch_settings (business_id) VALUES (NEW.id) ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;
CREATE TRIGGER businesses_dispatch_defaults AFTER INSERT ON businesses
    FOR EACH ROW EXECUTE FUNCTION business_dispatch_defaults();

-- Row level security ---------------------------------------------------------------------------

-- Profiles: the driver its own, admins all, and a business's staff the drivers dedicated to it
-- (read only; the server selects no bank columns for them, which are sealed in any case).
ALTER TABLE driver_profiles ENABLE ROW LEVEL SECURITY;
ALTER TABLE driver_profiles FORCE ROW LEVEL SECURITY;
CREATE POLICY driver_profiles_own ON driver_profiles
    USING ((select app_is_admin()) OR (select app_kind()) = 'driver' AND driver_id = (select app_user_id()))
    WITH CHECK ((select app_is_admin()) OR (select app_kind()) = 'driver' AND driver_id = (select app_user_id()));
CREATE POLICY driver_profiles_staff_read ON driver_profiles FOR SELECT
    USING ((select app_kind()) = 'staff' AND EXISTS (
        SELECT 1 FROM driver_businesses d
         WHERE d.driver_id = driver_profiles.driver_id AND d.business_id = (select app_business_id())));

-- Documents: the driver reads and uploads its own (always pending, unreviewed); only admins
-- review them.
ALTER TABLE driver_documents ENABLE ROW LEVEL SECURITY;
ALTER TABLE driver_documents FORCE ROW LEVEL SECURITY;
CREATE POLICY driver_documents_admin ON driver_documents
    USING ((select app_is_admin())) WITH CHECK ((select app_is_admin()));
CREATE POLICY driver_documents_own_read ON driver_documents FOR SELECT
    USING ((select app_kind()) = 'driver' AND driver_id = (select app_user_id()));
CREATE POLICY driver_documents_own_upload ON driver_documents FOR INSERT
    WITH CHECK ((select app_kind()) = 'driver' AND driver_id = (select app_user_id())
        AND status = 'pending' AND reviewed_at IS NULL AND reviewed_by IS NULL);

ALTER TABLE driver_availability_windows ENABLE ROW LEVEL SECURITY;
ALTER TABLE driver_availability_windows FORCE ROW LEVEL SECURITY;
CREATE POLICY driver_windows_own ON driver_availability_windows
    USING ((select app_is_admin()) OR (select app_kind()) = 'driver' AND driver_id = (select app_user_id()))
    WITH CHECK ((select app_is_admin()) OR (select app_kind()) = 'driver' AND driver_id = (select app_user_id()));

-- Assignments: admins write; the business's staff read its rows; a driver reads its own.
ALTER TABLE driver_businesses ENABLE ROW LEVEL SECURITY;
ALTER TABLE driver_businesses FORCE ROW LEVEL SECURITY;
CREATE POLICY driver_businesses_admin ON driver_businesses
    USING ((select app_is_admin())) WITH CHECK ((select app_is_admin()));
CREATE POLICY driver_businesses_staff_read ON driver_businesses FOR SELECT
    USING (business_id = (select app_business_id()) AND (select app_kind()) = 'staff');
CREATE POLICY driver_businesses_driver_read ON driver_businesses FOR SELECT
    USING ((select app_kind()) = 'driver' AND driver_id = (select app_user_id()));

ALTER TABLE business_dispatch_settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE business_dispatch_settings FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_staff ON business_dispatch_settings
    USING ((select app_is_admin()) OR business_id = (select app_business_id()) AND (select app_kind()) = 'staff')
    WITH CHECK ((select app_is_admin()) OR business_id = (select app_business_id()) AND (select app_kind()) = 'staff');

-- A business's staff see the accounts of the drivers dedicated to it (name, phone), and a
-- driver sees the names of the businesses it is dedicated to.
CREATE POLICY users_dedicated_drivers ON users FOR SELECT
    USING ((select app_kind()) = 'staff' AND kind = 'driver' AND EXISTS (
        SELECT 1 FROM driver_businesses d
         WHERE d.driver_id = users.id AND d.business_id = (select app_business_id())));
CREATE POLICY businesses_driver_read ON businesses FOR SELECT
    USING ((select app_kind()) = 'driver' AND EXISTS (
        SELECT 1 FROM driver_businesses d
         WHERE d.business_id = businesses.id AND d.driver_id = (select app_user_id())));

GRANT SELECT, INSERT, UPDATE ON driver_profiles, driver_documents, business_dispatch_settings TO fleetfront_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON driver_availability_windows, driver_businesses TO fleetfront_app;
