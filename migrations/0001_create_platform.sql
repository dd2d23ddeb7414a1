-- Platform foundation: tenancy, accounts, RBAC, audit, plans, subscriptions, storefronts.
--
-- Tenancy rules (see ARCHITECTURE.md):
-- * every tenant table has business_id in its primary key and in every foreign key to another
--   tenant table; uniqueness is per business;
-- * row level security is ENABLED and FORCED on every tenant table, with USING and WITH CHECK;
-- * the server's runtime role fleetfront_app owns nothing and cannot bypass RLS; it sets the
--   principal per transaction with set_config(..., true), read here through the app_* functions.

-- The principal of the current transaction. STABLE SQL functions, read through (select ...) in
-- policies so they are evaluated once per statement.
CREATE FUNCTION app_kind() RETURNS text LANGUAGE sql STABLE
    AS $$ SELECT nullif(current_setting('app.kind', true), '') $$;
CREATE FUNCTION app_business_id() RETURNS uuid LANGUAGE sql STABLE
    AS $$ SELECT nullif(current_setting('app.business_id', true), '')::uuid $$;
CREATE FUNCTION app_user_id() RETURNS uuid LANGUAGE sql STABLE
    AS $$ SELECT nullif(current_setting('app.user_id', true), '')::uuid $$;
CREATE FUNCTION app_customer_id() RETURNS uuid LANGUAGE sql STABLE
    AS $$ SELECT nullif(current_setting('app.customer_id', true), '')::uuid $$;
CREATE FUNCTION app_is_admin() RETURNS boolean LANGUAGE sql STABLE
    AS $$ SELECT coalesce(current_setting('app.kind', true) = 'admin', false) $$;

-- Platform tier --------------------------------------------------------------------------------

CREATE TABLE infrastructures (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    slug        text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO infrastructures (id, name, slug)
VALUES ('00000000-0000-7000-8000-000000000001', 'Fleetfront', 'default');

CREATE TABLE subscription_plans (
    id                  uuid PRIMARY KEY,
    plan_key            text NOT NULL UNIQUE CHECK (plan_key ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    name                text NOT NULL,
    currency            char(3) NOT NULL,
    price_monthly_minor bigint NOT NULL CHECK (price_monthly_minor >= 0),
    price_yearly_minor  bigint NOT NULL CHECK (price_yearly_minor >= 0),
    features            jsonb NOT NULL DEFAULT '{}',
    limits              jsonb NOT NULL DEFAULT '{}',
    is_active           boolean NOT NULL DEFAULT true,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
INSERT INTO subscription_plans (id, plan_key, name, currency, price_monthly_minor, price_yearly_minor, features, limits) VALUES
('00000000-0000-7000-8000-0000000000a1', 'starter', 'Starter', 'EUR', 2900, 29000,
 '{"custom_domain": false, "shared_driver_pool": false, "advanced_analytics": false, "custom_roles": false}',
 '{"staff_seats": 3, "products": 100, "custom_roles": 0, "dedicated_drivers": 2}'),
('00000000-0000-7000-8000-0000000000a2', 'growth', 'Growth', 'EUR', 7900, 79000,
 '{"custom_domain": true, "shared_driver_pool": true, "advanced_analytics": false, "custom_roles": true}',
 '{"staff_seats": 10, "products": 1000, "custom_roles": 3, "dedicated_drivers": 10}'),
('00000000-0000-7000-8000-0000000000a3', 'professional', 'Professional', 'EUR', 19900, 199000,
 '{"custom_domain": true, "shared_driver_pool": true, "advanced_analytics": true, "custom_roles": true}',
 '{"staff_seats": 30, "products": 10000, "custom_roles": 20, "dedicated_drivers": 50}'),
('00000000-0000-7000-8000-0000000000a4', 'enterprise', 'Enterprise', 'EUR', 99900, 999000,
 '{"custom_domain": true, "shared_driver_pool": true, "advanced_analytics": true, "custom_roles": true}',
 '{}');

CREATE TABLE businesses (
    id                  uuid PRIMARY KEY,
    infrastructure_id   uuid NOT NULL REFERENCES infrastructures (id),
    name                text NOT NULL,
    contact_email       text NOT NULL,
    contact_phone       text,
    currency            char(3) NOT NULL,
    time_zone           text NOT NULL,
    delivery_radius_m   integer NOT NULL CHECK (delivery_radius_m BETWEEN 100 AND 100000),
    latitude            double precision NOT NULL CHECK (latitude BETWEEN -90 AND 90),
    longitude           double precision NOT NULL CHECK (longitude BETWEEN -180 AND 180),
    status              text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    shared_pool_opt_in  boolean NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX businesses_created_idx ON businesses (created_at DESC, id DESC);

-- Platform accounts: admins, staff, drivers. Customers live per business (customers table).
CREATE TABLE users (
    id               uuid PRIMARY KEY,
    kind             text NOT NULL CHECK (kind IN ('admin', 'staff', 'driver')),
    email            text NOT NULL UNIQUE CHECK (email = lower(email)),
    password_hash    text,
    full_name        text NOT NULL,
    phone            text,
    status           text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'pending', 'suspended')),
    session_version  bigint NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL DEFAULT now(),
    last_login_at    timestamptz
);

-- The permission catalog (mirrors fleetfront_domain::permission::Permission).
CREATE TABLE permissions (
    key          text PRIMARY KEY,
    description  text NOT NULL
);
INSERT INTO permissions (key, description) VALUES
('business.read', 'See the business settings and dashboard'),
('storefront.manage', 'Change storefront and business settings'),
('staff.read', 'See the team'),
('staff.manage', 'Add, remove and re-role team members'),
('roles.manage', 'Create and edit custom roles'),
('catalog.read', 'See the catalog'),
('catalog.manage', 'Edit the catalog'),
('orders.read', 'See orders'),
('orders.manage', 'Work orders'),
('dispatch.manage', 'Assign drivers'),
('customers.read', 'See customers'),
('customers.export', 'Export customer personal data'),
('analytics.read', 'See analytics'),
('finance.read', 'See financial reports'),
('payments.refund', 'Refund payments'),
('audit.read', 'See the audit log');

-- Refresh tokens of platform accounts: random secrets stored as SHA-256, rotated on every use.
-- A token family is one login; reuse of a rotated token revokes the whole family.
-- scope_business_id is the business context the family was issued for (not tenant-owned data).
CREATE TABLE refresh_tokens (
    id                 uuid PRIMARY KEY,
    family_id          uuid NOT NULL,
    user_id            uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scope_business_id  uuid REFERENCES businesses (id) ON DELETE CASCADE,
    token_hash         bytea NOT NULL UNIQUE,
    expires_at         timestamptz NOT NULL,
    used_at            timestamptz,
    revoked_at         timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);

-- One-time tokens to choose a password (welcome email, staff invitations).
CREATE TABLE password_setup_tokens (
    token_hash  bytea PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- PINs for re-authentication. Failures are counted here so a lock survives restarts.
CREATE TABLE pin_credentials (
    user_id          uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    pin_hash         text NOT NULL,
    failed_attempts  integer NOT NULL DEFAULT 0,
    locked_at        timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- Failed-login windows per account and per client address (keys are 'account:<email>' and
-- 'address:<ip>').
CREATE TABLE auth_throttle (
    key                text PRIMARY KEY,
    failures           integer NOT NULL,
    window_started_at  timestamptz NOT NULL
);

-- Platform-level audit: admin actions, driver actions, failed logins, rejected tokens.
CREATE TABLE platform_audit_log (
    id                  uuid PRIMARY KEY,
    occurred_at         timestamptz NOT NULL DEFAULT now(),
    actor_kind          text,
    actor_id            uuid,
    action              text NOT NULL,
    outcome             text NOT NULL CHECK (outcome IN ('ok', 'denied')),
    target_business_id  uuid,
    resource_type       text,
    resource_id         text,
    request_id          text,
    client_address      text,
    details             jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX platform_audit_log_time_idx ON platform_audit_log (occurred_at DESC);

-- Tenant tier ----------------------------------------------------------------------------------

CREATE TABLE roles (
    business_id  uuid NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    id           uuid NOT NULL,
    key          text NOT NULL CHECK (key ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    name         text NOT NULL,
    is_builtin   boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, id),
    UNIQUE (business_id, key)
);

CREATE TABLE role_permissions (
    business_id  uuid NOT NULL,
    role_id      uuid NOT NULL,
    permission   text NOT NULL REFERENCES permissions (key),
    PRIMARY KEY (business_id, role_id, permission),
    FOREIGN KEY (business_id, role_id) REFERENCES roles (business_id, id) ON DELETE CASCADE
);

CREATE TABLE memberships (
    business_id  uuid NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_id      uuid NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, user_id),
    FOREIGN KEY (business_id, role_id) REFERENCES roles (business_id, id)
);
CREATE INDEX memberships_user_idx ON memberships (user_id);

CREATE TABLE business_subscriptions (
    business_id           uuid NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    id                    uuid NOT NULL,
    plan_id               uuid NOT NULL REFERENCES subscription_plans (id),
    status                text NOT NULL CHECK (status IN ('trial', 'active', 'past_due', 'canceled')),
    billing_interval      text NOT NULL CHECK (billing_interval IN ('monthly', 'yearly')),
    current_period_start  timestamptz NOT NULL,
    current_period_end    timestamptz NOT NULL CHECK (current_period_end > current_period_start),
    features_enabled      jsonb NOT NULL DEFAULT '{}',
    usage_limits          jsonb NOT NULL DEFAULT '{}',
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, id)
);
-- At most one live subscription per business.
CREATE UNIQUE INDEX business_subscriptions_current_idx
    ON business_subscriptions (business_id) WHERE status <> 'canceled';

-- Subdomains and custom domains are one global namespace (they are public host names), so
-- their uniqueness is global; onboarding and changes report a clash without revealing whose.
CREATE TABLE business_storefront_settings (
    business_id      uuid PRIMARY KEY REFERENCES businesses (id) ON DELETE CASCADE,
    subdomain        text NOT NULL CHECK (subdomain ~ '^[a-z0-9]([a-z0-9-]{1,61})[a-z0-9]$'),
    custom_domain    text,
    theme_colors     jsonb NOT NULL DEFAULT '{}',
    operating_hours  jsonb NOT NULL DEFAULT '{}',
    logo_url         text,
    banner_url       text,
    is_published     boolean NOT NULL DEFAULT false,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT storefront_subdomain_key UNIQUE (subdomain),
    CONSTRAINT storefront_custom_domain_key UNIQUE (custom_domain)
);

CREATE TABLE product_categories (
    business_id    uuid NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    id             uuid NOT NULL,
    parent_id      uuid,
    name           text NOT NULL,
    slug           text NOT NULL,
    display_order  integer NOT NULL DEFAULT 0,
    is_active      boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, id),
    UNIQUE (business_id, slug),
    FOREIGN KEY (business_id, parent_id) REFERENCES product_categories (business_id, id)
);

-- Customers belong to one business; the same email may be a customer of several stores.
CREATE TABLE customers (
    business_id       uuid NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    id                uuid NOT NULL,
    email             text NOT NULL CHECK (email = lower(email)),
    phone             text,
    full_name         text NOT NULL,
    password_hash     text,
    loyalty_points    bigint NOT NULL DEFAULT 0,
    total_orders      bigint NOT NULL DEFAULT 0,
    total_spent_minor bigint NOT NULL DEFAULT 0,
    preferences       jsonb NOT NULL DEFAULT '{}',
    session_version   bigint NOT NULL DEFAULT 1,
    created_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, id),
    UNIQUE (business_id, email)
);

CREATE TABLE customer_refresh_tokens (
    business_id  uuid NOT NULL,
    id           uuid NOT NULL,
    family_id    uuid NOT NULL,
    customer_id  uuid NOT NULL,
    token_hash   bytea NOT NULL,
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz,
    revoked_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, id),
    UNIQUE (business_id, token_hash),
    FOREIGN KEY (business_id, customer_id) REFERENCES customers (business_id, id) ON DELETE CASCADE
);
CREATE INDEX customer_refresh_tokens_family_idx ON customer_refresh_tokens (business_id, family_id);

-- Transactional outbox: messages (welcome emails, …) written in the same transaction as the
-- change that causes them, delivered later by a worker.
CREATE TABLE outbox_messages (
    business_id   uuid NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    id            uuid NOT NULL,
    topic         text NOT NULL,
    payload       jsonb NOT NULL,
    attempts      integer NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now(),
    processed_at  timestamptz,
    PRIMARY KEY (business_id, id)
);
CREATE INDEX outbox_messages_pending_idx ON outbox_messages (created_at) WHERE processed_at IS NULL;

-- Append-only audit of every write and every denied attempt inside a business.
CREATE TABLE audit_log (
    business_id     uuid NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    id              uuid NOT NULL,
    occurred_at     timestamptz NOT NULL DEFAULT now(),
    actor_kind      text NOT NULL,
    actor_id        uuid,
    action          text NOT NULL,
    outcome         text NOT NULL CHECK (outcome IN ('ok', 'denied')),
    resource_type   text,
    resource_id     text,
    request_id      text,
    client_address  text,
    details         jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (business_id, id)
);
CREATE INDEX audit_log_time_idx ON audit_log (business_id, occurred_at DESC);

CREATE FUNCTION audit_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit rows cannot be changed or deleted' USING ERRCODE = '42501';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_is_append_only();
CREATE TRIGGER platform_audit_log_append_only BEFORE UPDATE OR DELETE ON platform_audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_is_append_only();

-- Row level security ---------------------------------------------------------------------------

-- Staff-only tenant tables: the business's own staff (and platform admins) see and write them.
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['roles', 'role_permissions', 'memberships', 'business_subscriptions',
                             'business_storefront_settings', 'product_categories', 'outbox_messages']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY tenant_staff ON %I
            USING ((select app_is_admin()) OR business_id = (select app_business_id()) AND (select app_kind()) = 'staff')
            WITH CHECK ((select app_is_admin()) OR business_id = (select app_business_id()) AND (select app_kind()) = 'staff')$p$, t);
    END LOOP;
END $$;

-- Customers: staff of the business; the customer themself; 'auth' (login, registration) inside
-- the one business being signed in to.
ALTER TABLE customers ENABLE ROW LEVEL SECURITY;
ALTER TABLE customers FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_customers ON customers
    USING ((select app_is_admin())
        OR business_id = (select app_business_id()) AND (select app_kind()) IN ('staff', 'auth')
        OR business_id = (select app_business_id()) AND (select app_kind()) = 'customer' AND id = (select app_customer_id()))
    WITH CHECK ((select app_is_admin())
        OR business_id = (select app_business_id()) AND (select app_kind()) IN ('staff', 'auth')
        OR business_id = (select app_business_id()) AND (select app_kind()) = 'customer' AND id = (select app_customer_id()));

ALTER TABLE customer_refresh_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE customer_refresh_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_customer_tokens ON customer_refresh_tokens
    USING (business_id = (select app_business_id()) AND (select app_kind()) = 'auth')
    WITH CHECK (business_id = (select app_business_id()) AND (select app_kind()) = 'auth');

-- Audit: readable by the business's staff and admins; anyone acting in the business may append.
ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_log FORCE ROW LEVEL SECURITY;
CREATE POLICY audit_read ON audit_log FOR SELECT
    USING ((select app_is_admin()) OR business_id = (select app_business_id()) AND (select app_kind()) = 'staff');
CREATE POLICY audit_append ON audit_log FOR INSERT
    WITH CHECK ((select app_is_admin()) OR business_id = (select app_business_id()));

-- Businesses: admins see all; anyone scoped to a business sees that one.
ALTER TABLE businesses ENABLE ROW LEVEL SECURITY;
ALTER TABLE businesses FORCE ROW LEVEL SECURITY;
CREATE POLICY businesses_read ON businesses FOR SELECT
    USING ((select app_is_admin()) OR id = (select app_business_id()));
CREATE POLICY businesses_admin_write ON businesses FOR ALL
    USING ((select app_is_admin())) WITH CHECK ((select app_is_admin()));

-- Users: self, admins, sign-in flows ('auth'), and staff of a business for its own members.
ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
CREATE POLICY users_visible ON users
    USING ((select app_is_admin()) OR (select app_kind()) = 'auth' OR id = (select app_user_id())
        OR (select app_kind()) = 'staff' AND EXISTS (
            SELECT 1 FROM memberships m WHERE m.user_id = users.id AND m.business_id = (select app_business_id())))
    WITH CHECK ((select app_is_admin()) OR (select app_kind()) IN ('auth', 'staff') OR id = (select app_user_id()));

-- Auth-only platform tables.
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['refresh_tokens', 'password_setup_tokens', 'pin_credentials', 'auth_throttle']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY auth_only ON %I
            USING ((select app_kind()) IN ('auth', 'admin'))
            WITH CHECK ((select app_kind()) IN ('auth', 'admin'))$p$, t);
    END LOOP;
END $$;

ALTER TABLE platform_audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE platform_audit_log FORCE ROW LEVEL SECURITY;
CREATE POLICY platform_audit_read ON platform_audit_log FOR SELECT USING ((select app_is_admin()));
CREATE POLICY platform_audit_append ON platform_audit_log FOR INSERT WITH CHECK (true);

-- Begins a request: sets the principal for this transaction and returns what the server must
-- re-check against the token (session version, account and business status, permissions).
-- SECURITY INVOKER: it reads through the same policies as everything else.
CREATE FUNCTION app_begin(p_kind text, p_user uuid, p_customer uuid, p_business uuid)
RETURNS TABLE (session_version bigint, account_active boolean, business_active boolean,
               role_key text, permissions text[])
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM set_config('app.kind', coalesce(p_kind, ''), true),
            set_config('app.user_id', coalesce(p_user::text, ''), true),
            set_config('app.customer_id', coalesce(p_customer::text, ''), true),
            set_config('app.business_id', coalesce(p_business::text, ''), true);
    IF p_kind = 'customer' THEN
        RETURN QUERY SELECT c.session_version, true,
               (SELECT b.status = 'active' FROM businesses b WHERE b.id = p_business),
               NULL::text, ARRAY[]::text[]
          FROM customers c WHERE c.business_id = p_business AND c.id = p_customer;
    ELSIF p_kind = 'staff' THEN
        RETURN QUERY SELECT u.session_version, u.status = 'active',
               (SELECT b.status = 'active' FROM businesses b WHERE b.id = p_business),
               r.key,
               coalesce((SELECT array_agg(rp.permission ORDER BY rp.permission) FROM role_permissions rp
                          WHERE rp.business_id = p_business AND rp.role_id = m.role_id), ARRAY[]::text[])
          FROM users u
          JOIN memberships m ON m.user_id = u.id AND m.business_id = p_business
          JOIN roles r ON r.business_id = m.business_id AND r.id = m.role_id
         WHERE u.id = p_user AND u.kind = 'staff';
    ELSE
        -- A pending account (a driver awaiting approval) may sign in and complete onboarding;
        -- what it may not do yet (go online) is decided by the endpoints that need approval.
        RETURN QUERY SELECT u.session_version, u.status <> 'suspended', true, NULL::text, ARRAY[]::text[]
          FROM users u WHERE u.id = p_user AND u.kind = p_kind;
    END IF;
END $$;

-- Resolves a published or unpublished storefront's business by subdomain, for public routes
-- and customer sign-in, which must find their tenant before any principal exists. It reveals
-- only the business id of a store whose subdomain is already public.
CREATE FUNCTION storefront_business(p_subdomain text) RETURNS TABLE (business_id uuid, is_published boolean, business_active boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT s.business_id, s.is_published, b.status = 'active'
      FROM business_storefront_settings s JOIN businesses b ON b.id = s.business_id
     WHERE s.subdomain = p_subdomain
$$;
REVOKE ALL ON FUNCTION storefront_business(text) FROM PUBLIC;

-- The businesses a user belongs to, for sign-in and business switching (which run before the
-- user is scoped to any one business).
CREATE FUNCTION user_memberships(p_user uuid)
RETURNS TABLE (business_id uuid, business_name text, business_active boolean, role_id uuid, role_key text,
               permissions text[], joined_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT m.business_id, b.name, b.status = 'active', m.role_id, r.key,
           coalesce((SELECT array_agg(rp.permission ORDER BY rp.permission) FROM role_permissions rp
                      WHERE rp.business_id = m.business_id AND rp.role_id = m.role_id), ARRAY[]::text[]),
           m.created_at
      FROM memberships m
      JOIN businesses b ON b.id = m.business_id
      JOIN roles r ON r.business_id = m.business_id AND r.id = m.role_id
     WHERE m.user_id = p_user
     ORDER BY m.created_at, m.business_id
$$;
REVOKE ALL ON FUNCTION user_memberships(uuid) FROM PUBLIC;

-- Whether a subdomain or custom domain is taken, without revealing by whom.
CREATE FUNCTION storefront_host_taken(p_subdomain text, p_custom_domain text, p_except uuid) RETURNS TABLE (subdomain_taken boolean, domain_taken boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT EXISTS (SELECT 1 FROM business_storefront_settings WHERE subdomain = p_subdomain AND business_id IS DISTINCT FROM p_except),
           EXISTS (SELECT 1 FROM business_storefront_settings WHERE p_custom_domain IS NOT NULL AND custom_domain = p_custom_domain AND business_id IS DISTINCT FROM p_except)
$$;
REVOKE ALL ON FUNCTION storefront_host_taken(text, text, uuid) FROM PUBLIC;

-- Grants to the runtime role ---------------------------------------------------------------------

GRANT USAGE ON SCHEMA public TO fleetfront_app;
GRANT SELECT ON infrastructures, subscription_plans, permissions TO fleetfront_app;
GRANT INSERT, UPDATE, DELETE ON subscription_plans TO fleetfront_app;
GRANT SELECT, INSERT, UPDATE ON businesses, users TO fleetfront_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON refresh_tokens, password_setup_tokens, pin_credentials,
    auth_throttle, roles, role_permissions, memberships, business_subscriptions,
    business_storefront_settings, product_categories, customers, customer_refresh_tokens,
    outbox_messages TO fleetfront_app;
GRANT SELECT, INSERT ON audit_log, platform_audit_log TO fleetfront_app;
GRANT EXECUTE ON FUNCTION app_kind(), app_business_id(), app_user_id(), app_customer_id(),
    app_is_admin(), app_begin(text, uuid, uuid, uuid), storefront_business(text), user_memberships(uuid),
    storefront_host_taken(text, text, uuid) TO fleetfront_app;

-- Subscription plans are platform data: admins write them; everyone reads active plans.
ALTER TABLE subscription_plans ENABLE ROW LEVEL SECURITY;
ALTER TABLE subscription_plans FORCE ROW LEVEL SECURITY;
CREATE POLICY plans_read ON subscription_plans FOR SELECT USING (true);
CREATE POLICY plans_admin_insert ON subscription_plans FOR INSERT WITH CHECK ((select app_is_admin()));
CREATE POLICY plans_admin_update ON subscription_plans FOR UPDATE USING ((select app_is_admin())) WITH CHECK ((select app_is_admin()));
CREATE POLICY plans_admin_delete ON subscription_plans FOR DELETE USING ((select app_is_admin()));
