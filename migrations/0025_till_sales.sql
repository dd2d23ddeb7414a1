-- Sales at the till (sync mutation `order.create@1`): an order of the `till` channel has nobody
-- to email (no guest email, no notify address: the customer walked away with the goods), keeps
-- how it was paid at the till (`tender`: cash, or a card on the store's terminal — the store
-- holds the money either way, so `payment_method` stays `cash` for payouts) and what the till
-- took down (the customer's name, a note for the kitchen).

ALTER TABLE orders
    ADD COLUMN channel text NOT NULL DEFAULT 'online' CHECK (channel IN ('online', 'till')),
    ADD COLUMN tender text CHECK (tender IN ('cash', 'card_present')),
    ADD COLUMN customer_name text CHECK (char_length(customer_name) BETWEEN 1 AND 100),
    ADD COLUMN note text CHECK (char_length(note) BETWEEN 1 AND 500),
    ALTER COLUMN notify_email DROP NOT NULL;

-- The guest-contact rule of 0007 (an unnamed CHECK) now holds for online orders only.
DO $$
DECLARE
    v_name text;
BEGIN
    SELECT conname INTO STRICT v_name FROM pg_constraint
     WHERE conrelid = 'orders'::regclass AND contype = 'c'
       AND pg_get_constraintdef(oid) LIKE '%customer_id IS NOT NULL%guest_email IS NOT NULL%';
    EXECUTE format('ALTER TABLE orders DROP CONSTRAINT %I', v_name);
END
$$;

ALTER TABLE orders
    ADD CONSTRAINT orders_online_contact_check
        CHECK (channel = 'till' OR customer_id IS NOT NULL OR guest_email IS NOT NULL),
    ADD CONSTRAINT orders_online_notify_check
        CHECK (channel = 'till' OR notify_email IS NOT NULL),
    ADD CONSTRAINT orders_till_tender_check
        CHECK ((channel = 'till') = (tender IS NOT NULL)),
    ADD CONSTRAINT orders_till_cash_check
        CHECK (channel = 'online' OR payment_method = 'cash');

-- The store's board shows what the till took down: 0022's order data, with the till's part on
-- top. The publishing triggers call `sync_order_data` by name, so they pick this one up.
ALTER FUNCTION sync_order_data(uuid, uuid) RENAME TO sync_order_base;

CREATE FUNCTION sync_order_data(p_business uuid, p_id uuid) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT sync_order_base(p_business, p_id)
        || CASE WHEN o.channel = 'till' THEN jsonb_build_object('till', jsonb_build_object(
               'tender', o.tender, 'customer_name', o.customer_name, 'note', o.note))
           ELSE '{}'::jsonb END
      FROM orders o
     WHERE o.business_id = p_business AND o.id = p_id AND o.status <> 'awaiting_payment'
$$;
REVOKE ALL ON FUNCTION sync_order_data(uuid, uuid) FROM PUBLIC;
