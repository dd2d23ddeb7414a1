-- What an offer promises its driver, fixed when it is made (`dispatch::step`): the trip to the
-- store from the driver's position then, the trip to the customer and the estimated net
-- earnings. They travel with the offer into the driver's `drv:` bucket together with the
-- store's name and position, so the driver app's offer screen works offline; the customer's
-- name joins the order once the driver holds it. Offers made before this migration have no
-- terms (NULL).

ALTER TABLE dispatch_offers
    ADD COLUMN pickup_metres integer CHECK (pickup_metres >= 0),
    ADD COLUMN dropoff_metres integer CHECK (dropoff_metres >= 0),
    ADD COLUMN estimated_net_minor bigint;

-- 0022's order snapshot for drivers, with the store and, for the holder, the customer's name.
ALTER FUNCTION sync_driver_order(uuid, uuid, boolean) RENAME TO sync_driver_order_base;

CREATE FUNCTION sync_driver_order(p_business uuid, p_id uuid, p_holder boolean) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT sync_driver_order_base(p_business, p_id, p_holder)
        || jsonb_build_object('store', jsonb_build_object(
               'name', b.name, 'phone', b.contact_phone,
               'latitude', b.latitude, 'longitude', b.longitude))
        || CASE WHEN p_holder THEN jsonb_build_object('customer_name',
               (SELECT c.full_name FROM orders o JOIN customers c
                    ON c.business_id = o.business_id AND c.id = o.customer_id
                 WHERE o.business_id = p_business AND o.id = p_id))
           ELSE '{}'::jsonb END
      FROM businesses b WHERE b.id = p_business
$$;
REVOKE ALL ON FUNCTION sync_driver_order(uuid, uuid, boolean) FROM PUBLIC;

-- 0022's open offer, with its terms.
ALTER FUNCTION sync_offer_data(dispatch_offers) RENAME TO sync_offer_data_base;

CREATE FUNCTION sync_offer_data(f dispatch_offers) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT sync_offer_data_base(f) || jsonb_build_object(
        'pickup_metres', f.pickup_metres, 'dropoff_metres', f.dropoff_metres,
        'estimated_earnings_minor', f.estimated_net_minor)
$$;
REVOKE ALL ON FUNCTION sync_offer_data(dispatch_offers) FROM PUBLIC;

-- Open offers and held deliveries show the new fields at once.
SELECT sync_publish('drv:' || d.driver_id, 'delivery', d.id, sync_delivery_data(d))
  FROM deliveries d
 WHERE d.driver_id IS NOT NULL
   AND d.status IN ('assigned', 'arrived_at_store', 'picked_up', 'arrived_at_customer')
 ORDER BY d.driver_id, d.id;
SELECT sync_publish('drv:' || f.driver_id, 'offer', f.id, sync_offer_data(f))
  FROM dispatch_offers f WHERE f.status = 'open' ORDER BY f.driver_id, f.id;
