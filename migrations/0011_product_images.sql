-- Product images: the business's pictures of a product, stored by content (SHA-256) in the
-- server's blob store, with their thumbnails, order and one primary image per product.
--
-- Tenancy as in 0003: business_id leads every key and every foreign key, RLS is enabled and
-- forced with USING and WITH CHECK, and the `public` principal reads only the images of
-- published products that are not archived (as with variants). The bytes themselves are served
-- by hash from `GET /api/v1/images/{hash}`, which asks `product_image_content_type()`.

CREATE TABLE product_images (
    business_id    uuid NOT NULL,
    id             uuid NOT NULL,
    product_id     uuid NOT NULL,
    -- SHA-256 of the uploaded bytes, lower-case hex: the blob's address in the store.
    content_hash   text NOT NULL CHECK (content_hash ~ '^[0-9a-f]{64}$'),
    -- Sniffed from the bytes, never taken from the upload's name or declared type.
    content_type   text NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png', 'image/webp')),
    width          integer NOT NULL CHECK (width > 0),
    height         integer NOT NULL CHECK (height > 0),
    byte_size      bigint NOT NULL CHECK (byte_size > 0),
    -- The generated sizes, smallest first: [{"width", "height", "hash", "content_type",
    -- "byte_size"}], each blob stored by its own hash.
    thumbnails     jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(thumbnails) = 'array'),
    display_order  integer NOT NULL DEFAULT 0 CHECK (display_order >= 0),
    is_primary     boolean NOT NULL DEFAULT false,
    alt_text       text CHECK (length(alt_text) BETWEEN 1 AND 300),
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, id),
    -- The same bytes once per product: uploading them again returns the existing image.
    CONSTRAINT product_images_content_key UNIQUE (business_id, product_id, content_hash),
    CONSTRAINT product_images_product_fkey FOREIGN KEY (business_id, product_id)
        REFERENCES products (business_id, id) ON DELETE CASCADE
);
-- At most one primary image per product.
CREATE UNIQUE INDEX product_images_one_primary ON product_images (business_id, product_id) WHERE is_primary;
-- Serving by hash, across businesses (through the function below).
CREATE INDEX product_images_hash_idx ON product_images (content_hash);
CREATE INDEX product_images_thumbnails_idx ON product_images USING gin (thumbnails jsonb_path_ops);

ALTER TABLE product_images ENABLE ROW LEVEL SECURITY;
ALTER TABLE product_images FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_staff ON product_images
    USING ((select app_is_admin()) OR business_id = (select app_business_id()) AND (select app_kind()) = 'staff')
    WITH CHECK ((select app_is_admin()) OR business_id = (select app_business_id()) AND (select app_kind()) = 'staff');
-- An image is public when its product is (conditions repeated, as for variants, so this policy
-- does not depend on the product's own).
CREATE POLICY public_read ON product_images FOR SELECT
    USING (business_id = (select app_business_id()) AND (select app_kind()) = 'public'
        AND EXISTS (SELECT 1 FROM products p
                     WHERE p.business_id = product_images.business_id AND p.id = product_images.product_id
                       AND p.is_published AND p.archived_at IS NULL));

-- The content type of a product image's blob (original or thumbnail) by its hash, for serving
-- bytes by hash before any principal exists (an <img> carries no token). It reveals only the
-- type of bytes whose SHA-256 the caller already knows, and only for blobs that some product
-- image uses, so other blobs of the store (such as delivery proof photos) are not served here.
CREATE FUNCTION product_image_content_type(p_hash text) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    (SELECT content_type FROM product_images WHERE content_hash = p_hash LIMIT 1)
    UNION ALL
    (SELECT t ->> 'content_type' FROM product_images i, jsonb_array_elements(i.thumbnails) t
      WHERE i.thumbnails @> jsonb_build_array(jsonb_build_object('hash', p_hash))
        AND t ->> 'hash' = p_hash LIMIT 1)
    LIMIT 1
$$;
REVOKE ALL ON FUNCTION product_image_content_type(text) FROM PUBLIC;

GRANT SELECT, INSERT, UPDATE, DELETE ON product_images TO fleetfront_app;
GRANT EXECUTE ON FUNCTION product_image_content_type(text) TO fleetfront_app;
