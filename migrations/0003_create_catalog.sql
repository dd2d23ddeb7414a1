-- The catalog: products and their variants, and public (storefront) read access to the catalog.
--
-- Tenancy as in 0001: business_id leads every key, RLS is enabled and forced with USING and
-- WITH CHECK, SKUs are unique per business. A new principal kind, `public`, is what the server
-- sets for storefront requests (app.business_id = the store resolved from its subdomain): it may
-- only read what a store shows to anybody, through separate FOR SELECT policies, and write
-- nothing.

CREATE TABLE products (
    business_id               uuid NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    id                        uuid NOT NULL,
    sku                       text NOT NULL CHECK (sku ~ '^[A-Z0-9][A-Z0-9._-]{0,63}$'),
    name                      text NOT NULL CHECK (length(name) BETWEEN 1 AND 120),
    description               text CHECK (length(description) <= 5000),
    price_minor               bigint NOT NULL CHECK (price_minor >= 0),
    cost_minor                bigint CHECK (cost_minor >= 0),
    category_id               uuid,
    is_published              boolean NOT NULL DEFAULT false,
    preparation_time_minutes  integer NOT NULL DEFAULT 0 CHECK (preparation_time_minutes BETWEEN 0 AND 600),
    -- Products are archived, never deleted: order lines will keep their own snapshot of what
    -- was sold, and an archived product is neither listed nor editable.
    archived_at               timestamptz,
    -- Full-text search over name (weight A) and description (weight B). The English
    -- configuration stems English words; for other languages it still matches whole words,
    -- since documents and queries go through the same configuration.
    search                    tsvector GENERATED ALWAYS AS (
                                  setweight(to_tsvector('english', name), 'A')
                                  || setweight(to_tsvector('english', coalesce(description, '')), 'B')) STORED,
    created_at                timestamptz NOT NULL DEFAULT now(),
    updated_at                timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, id),
    CONSTRAINT products_sku_key UNIQUE (business_id, sku),
    CONSTRAINT products_category_fkey FOREIGN KEY (business_id, category_id)
        REFERENCES product_categories (business_id, id),
    -- An archived product is never published.
    CONSTRAINT products_archived_unpublished CHECK (archived_at IS NULL OR NOT is_published)
);

-- Listing sorts (keyset pagination on (sort key, id)) over the rows a list can show.
CREATE INDEX products_price_idx ON products (business_id, price_minor, id) WHERE archived_at IS NULL;
CREATE INDEX products_newest_idx ON products (business_id, created_at DESC, id DESC) WHERE archived_at IS NULL;
CREATE INDEX products_name_idx ON products (business_id, lower(name), id) WHERE archived_at IS NULL;
CREATE INDEX products_category_idx ON products (business_id, category_id);
CREATE INDEX products_search_idx ON products USING gin (search);

CREATE TABLE product_variants (
    business_id             uuid NOT NULL,
    id                      uuid NOT NULL,
    product_id              uuid NOT NULL,
    name                    text NOT NULL CHECK (length(name) BETWEEN 1 AND 120),
    sku                     text NOT NULL CHECK (sku ~ '^[A-Z0-9][A-Z0-9._-]{0,63}$'),
    price_adjustment_minor  bigint NOT NULL DEFAULT 0,
    options                 jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(options) = 'object'),
    -- NULL: stock is not tracked (always available); otherwise units on hand.
    stock_quantity          integer CHECK (stock_quantity >= 0),
    display_order           integer NOT NULL DEFAULT 0,
    created_at              timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, id),
    CONSTRAINT product_variants_sku_key UNIQUE (business_id, sku),
    CONSTRAINT product_variants_product_fkey FOREIGN KEY (business_id, product_id)
        REFERENCES products (business_id, id) ON DELETE CASCADE
);
CREATE INDEX product_variants_product_idx ON product_variants (business_id, product_id, display_order);

CREATE INDEX product_categories_parent_idx ON product_categories (business_id, parent_id);

-- Row level security ---------------------------------------------------------------------------

ALTER TABLE products ENABLE ROW LEVEL SECURITY;
ALTER TABLE products FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_staff ON products
    USING ((select app_is_admin()) OR business_id = (select app_business_id()) AND (select app_kind()) = 'staff')
    WITH CHECK ((select app_is_admin()) OR business_id = (select app_business_id()) AND (select app_kind()) = 'staff');
CREATE POLICY public_read ON products FOR SELECT
    USING (business_id = (select app_business_id()) AND (select app_kind()) = 'public'
        AND is_published AND archived_at IS NULL);

ALTER TABLE product_variants ENABLE ROW LEVEL SECURITY;
ALTER TABLE product_variants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_staff ON product_variants
    USING ((select app_is_admin()) OR business_id = (select app_business_id()) AND (select app_kind()) = 'staff')
    WITH CHECK ((select app_is_admin()) OR business_id = (select app_business_id()) AND (select app_kind()) = 'staff');
-- A variant is public when its product is (the product's own policy applies inside EXISTS too;
-- the conditions are repeated so this policy does not depend on that one).
CREATE POLICY public_read ON product_variants FOR SELECT
    USING (business_id = (select app_business_id()) AND (select app_kind()) = 'public'
        AND EXISTS (SELECT 1 FROM products p
                     WHERE p.business_id = product_variants.business_id AND p.id = product_variants.product_id
                       AND p.is_published AND p.archived_at IS NULL));

CREATE POLICY public_read ON product_categories FOR SELECT
    USING (business_id = (select app_business_id()) AND (select app_kind()) = 'public' AND is_active);

CREATE POLICY public_read ON business_storefront_settings FOR SELECT
    USING (business_id = (select app_business_id()) AND (select app_kind()) = 'public' AND is_published);

-- Grants ---------------------------------------------------------------------------------------

-- No DELETE on products: the runtime role can only archive them. Variants are replaced as a
-- list, so they can be deleted.
GRANT SELECT, INSERT, UPDATE ON products TO fleetfront_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON product_variants TO fleetfront_app;
