-- Server-side carts: a guest's cart (found by a random token whose SHA-256 is stored) or a
-- customer's one cart per store. Lines reference products and variants; prices are always read
-- fresh, so a cart never holds a stale price.

CREATE FUNCTION app_cart_token_hash() RETURNS bytea LANGUAGE sql STABLE
    AS $$ SELECT decode(nullif(current_setting('app.cart_token_hash', true), ''), 'hex') $$;
GRANT EXECUTE ON FUNCTION app_cart_token_hash() TO fleetfront_app;

CREATE TABLE carts (
    business_id  uuid NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    id           uuid NOT NULL,
    customer_id  uuid,
    token_hash   bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (business_id, id),
    FOREIGN KEY (business_id, customer_id) REFERENCES customers (business_id, id) ON DELETE CASCADE,
    -- A cart belongs to a customer or to whoever holds its token, never both or neither.
    CHECK ((customer_id IS NULL) <> (token_hash IS NULL))
);
CREATE UNIQUE INDEX carts_customer_idx ON carts (business_id, customer_id) WHERE customer_id IS NOT NULL;
CREATE UNIQUE INDEX carts_token_idx ON carts (business_id, token_hash) WHERE token_hash IS NOT NULL;

CREATE TABLE cart_items (
    business_id  uuid NOT NULL,
    cart_id      uuid NOT NULL,
    id           uuid NOT NULL,
    product_id   uuid NOT NULL,
    variant_id   uuid,
    quantity     integer NOT NULL CHECK (quantity BETWEEN 1 AND 999),
    added_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, id),
    FOREIGN KEY (business_id, cart_id) REFERENCES carts (business_id, id) ON DELETE CASCADE,
    FOREIGN KEY (business_id, product_id) REFERENCES products (business_id, id),
    FOREIGN KEY (business_id, variant_id) REFERENCES product_variants (business_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX cart_items_line_idx ON cart_items (business_id, cart_id, product_id, coalesce(variant_id, '00000000-0000-0000-0000-000000000000'));

ALTER TABLE carts ENABLE ROW LEVEL SECURITY;
ALTER TABLE carts FORCE ROW LEVEL SECURITY;
-- A guest (kind public) reaches only the cart whose token it holds; a customer only their own.
CREATE POLICY carts_holder ON carts
    USING ((select app_is_admin())
        OR business_id = (select app_business_id()) AND (select app_kind()) = 'public'
           AND token_hash = (select app_cart_token_hash())
        OR business_id = (select app_business_id()) AND (select app_kind()) = 'customer'
           AND customer_id = (select app_customer_id()))
    WITH CHECK ((select app_is_admin())
        OR business_id = (select app_business_id()) AND (select app_kind()) = 'public'
           AND customer_id IS NULL AND token_hash = (select app_cart_token_hash())
        OR business_id = (select app_business_id()) AND (select app_kind()) = 'customer'
           AND customer_id = (select app_customer_id()));
-- While merging a guest cart into their own, a signed-in customer also holds the guest token.
CREATE POLICY carts_merge ON carts
    USING (business_id = (select app_business_id()) AND (select app_kind()) = 'customer'
           AND customer_id IS NULL AND token_hash = (select app_cart_token_hash()))
    WITH CHECK (business_id = (select app_business_id()) AND (select app_kind()) = 'customer'
           AND customer_id IS NULL AND token_hash = (select app_cart_token_hash()));
-- Staff see their store's carts (abandoned-cart reports).
CREATE POLICY carts_staff_read ON carts FOR SELECT
    USING (business_id = (select app_business_id()) AND (select app_kind()) = 'staff');

ALTER TABLE cart_items ENABLE ROW LEVEL SECURITY;
ALTER TABLE cart_items FORCE ROW LEVEL SECURITY;
-- Lines follow their cart: visible and writable exactly when the cart is.
CREATE POLICY cart_items_follow_cart ON cart_items
    USING (business_id = (select app_business_id()) AND EXISTS (
        SELECT 1 FROM carts c WHERE c.business_id = cart_items.business_id AND c.id = cart_items.cart_id))
    WITH CHECK (business_id = (select app_business_id()) AND EXISTS (
        SELECT 1 FROM carts c WHERE c.business_id = cart_items.business_id AND c.id = cart_items.cart_id));
CREATE POLICY cart_items_admin ON cart_items
    USING ((select app_is_admin())) WITH CHECK ((select app_is_admin()));

-- Customers read their store's published catalog through the `customer_read` policies of
-- migration 0007 (orders), which pricing a cart and checking out share.

GRANT SELECT, INSERT, UPDATE, DELETE ON carts, cart_items TO fleetfront_app;
