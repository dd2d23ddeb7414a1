-- Reviews: a customer's review of a completed order (overall, food, delivery) with the
-- business's reply, and per-product ratings from the same order (verified purchases), which the
-- business approves before the storefront shows them.
--
-- Tenancy as in 0001: business_id leads every key and every foreign key between tenant tables;
-- RLS is enabled and forced with USING and WITH CHECK on both tables.
--
-- Who sees a review:
-- * the business's staff (and platform admins): everything of their business (reply, moderate);
-- * kind `customer`: their own reviews (SELECT and INSERT only, never UPDATE), and only of their
--   own completed orders (delivered, picked up for a pickup order, or refunded after either);
-- * kind `public`: approved product reviews of published, not archived products.
--
-- Products keep `rating_count` and `rating_sum` of their approved reviews, changed in the same
-- transaction as the approval, so listings never aggregate per request.

ALTER TABLE products
    ADD COLUMN rating_count integer NOT NULL DEFAULT 0 CHECK (rating_count >= 0),
    ADD COLUMN rating_sum   bigint  NOT NULL DEFAULT 0 CHECK (rating_sum >= 0);

CREATE TABLE order_reviews (
    business_id          uuid NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    id                   uuid NOT NULL,
    order_id             uuid NOT NULL,
    customer_id          uuid NOT NULL,
    overall_rating       smallint NOT NULL CHECK (overall_rating BETWEEN 1 AND 5),
    food_quality_rating  smallint CHECK (food_quality_rating BETWEEN 1 AND 5),
    -- NULL for pickup orders (nobody delivered them).
    delivery_rating      smallint CHECK (delivery_rating BETWEEN 1 AND 5),
    review_text          text CHECK (length(review_text) BETWEEN 1 AND 2000),
    business_reply       text CHECK (length(business_reply) BETWEEN 1 AND 2000),
    replied_at           timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, id),
    CONSTRAINT order_reviews_order_key UNIQUE (business_id, order_id),
    FOREIGN KEY (business_id, order_id) REFERENCES orders (business_id, id),
    FOREIGN KEY (business_id, customer_id) REFERENCES customers (business_id, id),
    CHECK ((business_reply IS NULL) = (replied_at IS NULL))
);
CREATE INDEX order_reviews_newest_idx ON order_reviews (business_id, created_at DESC, id DESC);

CREATE TABLE product_reviews (
    business_id        uuid NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    id                 uuid NOT NULL,
    product_id         uuid NOT NULL,
    customer_id        uuid NOT NULL,
    order_id           uuid NOT NULL,
    rating             smallint NOT NULL CHECK (rating BETWEEN 1 AND 5),
    review_text        text CHECK (length(review_text) BETWEEN 1 AND 2000),
    verified_purchase  boolean NOT NULL DEFAULT false,
    is_approved        boolean NOT NULL DEFAULT false,
    created_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, id),
    CONSTRAINT product_reviews_once UNIQUE (business_id, customer_id, product_id, order_id),
    FOREIGN KEY (business_id, product_id) REFERENCES products (business_id, id),
    FOREIGN KEY (business_id, customer_id) REFERENCES customers (business_id, id),
    FOREIGN KEY (business_id, order_id) REFERENCES orders (business_id, id)
);
CREATE INDEX product_reviews_order_idx ON product_reviews (business_id, order_id);
-- The storefront's list: approved reviews of one product, newest first.
CREATE INDEX product_reviews_public_idx ON product_reviews (business_id, product_id, created_at DESC, id DESC)
    WHERE is_approved;

-- Row level security ---------------------------------------------------------------------------

ALTER TABLE order_reviews ENABLE ROW LEVEL SECURITY;
ALTER TABLE order_reviews FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_staff ON order_reviews
    USING ((select app_is_admin()) OR business_id = (select app_business_id()) AND (select app_kind()) = 'staff')
    WITH CHECK ((select app_is_admin()) OR business_id = (select app_business_id()) AND (select app_kind()) = 'staff');
CREATE POLICY customer_read ON order_reviews FOR SELECT
    USING (business_id = (select app_business_id()) AND (select app_kind()) = 'customer'
        AND customer_id = (select app_customer_id()));
-- The orders policies apply inside EXISTS too; the conditions are repeated so this policy does
-- not depend on them.
CREATE POLICY customer_write ON order_reviews FOR INSERT
    WITH CHECK (business_id = (select app_business_id()) AND (select app_kind()) = 'customer'
        AND customer_id = (select app_customer_id())
        AND EXISTS (SELECT 1 FROM orders o
                     WHERE o.business_id = order_reviews.business_id AND o.id = order_reviews.order_id
                       AND o.customer_id = order_reviews.customer_id
                       AND (o.status IN ('delivered', 'refunded') OR o.fulfilment = 'pickup' AND o.status = 'picked_up')));

ALTER TABLE product_reviews ENABLE ROW LEVEL SECURITY;
ALTER TABLE product_reviews FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_staff ON product_reviews
    USING ((select app_is_admin()) OR business_id = (select app_business_id()) AND (select app_kind()) = 'staff')
    WITH CHECK ((select app_is_admin()) OR business_id = (select app_business_id()) AND (select app_kind()) = 'staff');
CREATE POLICY customer_read ON product_reviews FOR SELECT
    USING (business_id = (select app_business_id()) AND (select app_kind()) = 'customer'
        AND customer_id = (select app_customer_id()));
-- A customer rates only what their own completed order contained, unapproved.
CREATE POLICY customer_write ON product_reviews FOR INSERT
    WITH CHECK (business_id = (select app_business_id()) AND (select app_kind()) = 'customer'
        AND customer_id = (select app_customer_id()) AND NOT is_approved
        AND EXISTS (SELECT 1 FROM orders o
                     WHERE o.business_id = product_reviews.business_id AND o.id = product_reviews.order_id
                       AND o.customer_id = product_reviews.customer_id
                       AND (o.status IN ('delivered', 'refunded') OR o.fulfilment = 'pickup' AND o.status = 'picked_up'))
        AND EXISTS (SELECT 1 FROM order_items i
                     WHERE i.business_id = product_reviews.business_id AND i.order_id = product_reviews.order_id
                       AND i.product_id = product_reviews.product_id));
CREATE POLICY public_read ON product_reviews FOR SELECT
    USING (business_id = (select app_business_id()) AND (select app_kind()) = 'public' AND is_approved
        AND EXISTS (SELECT 1 FROM products p
                     WHERE p.business_id = product_reviews.business_id AND p.id = product_reviews.product_id
                       AND p.is_published AND p.archived_at IS NULL));

-- Permission -----------------------------------------------------------------------------------

-- Mirrors fleetfront_domain::permission::Permission::ReviewsManage; the owner and manager
-- built-in roles of existing businesses get it, as new businesses do from BuiltinRole.
INSERT INTO permissions (key, description) VALUES ('reviews.manage', 'Reply to and moderate reviews');
INSERT INTO role_permissions (business_id, role_id, permission)
SELECT business_id, id, 'reviews.manage' FROM roles WHERE is_builtin AND key IN ('owner', 'manager')
ON CONFLICT DO NOTHING;

-- Grants ---------------------------------------------------------------------------------------

-- No DELETE: a review is hidden (product reviews) or answered, never removed by the app.
GRANT SELECT, INSERT, UPDATE ON order_reviews, product_reviews TO fleetfront_app;
