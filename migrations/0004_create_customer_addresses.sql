-- Customers' delivery addresses: per business (a store's customers are that store's), with
-- coordinates for the delivery-radius check and at most one default address per customer.

CREATE TABLE customer_addresses (
    business_id            uuid NOT NULL,
    id                     uuid NOT NULL,
    customer_id            uuid NOT NULL,
    label                  text,
    address_line1          text NOT NULL,
    address_line2          text,
    city                   text NOT NULL,
    postal_code            text,
    country                char(2) NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
    latitude               double precision NOT NULL CHECK (latitude BETWEEN -90 AND 90),
    longitude              double precision NOT NULL CHECK (longitude BETWEEN -180 AND 180),
    delivery_instructions  text,
    is_default             boolean NOT NULL DEFAULT false,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, id),
    FOREIGN KEY (business_id, customer_id) REFERENCES customers (business_id, id) ON DELETE CASCADE
);
CREATE INDEX customer_addresses_customer_idx ON customer_addresses (business_id, customer_id);
CREATE UNIQUE INDEX customer_addresses_one_default_idx
    ON customer_addresses (business_id, customer_id) WHERE is_default;

ALTER TABLE customer_addresses ENABLE ROW LEVEL SECURITY;
ALTER TABLE customer_addresses FORCE ROW LEVEL SECURITY;
-- The customer sees and edits their own addresses; the store's staff see them (to deliver).
CREATE POLICY customer_addresses_owner ON customer_addresses
    USING ((select app_is_admin())
        OR business_id = (select app_business_id()) AND (select app_kind()) = 'customer' AND customer_id = (select app_customer_id()))
    WITH CHECK ((select app_is_admin())
        OR business_id = (select app_business_id()) AND (select app_kind()) = 'customer' AND customer_id = (select app_customer_id()));
CREATE POLICY customer_addresses_staff_read ON customer_addresses FOR SELECT
    USING (business_id = (select app_business_id()) AND (select app_kind()) = 'staff');

GRANT SELECT, INSERT, UPDATE, DELETE ON customer_addresses TO fleetfront_app;
