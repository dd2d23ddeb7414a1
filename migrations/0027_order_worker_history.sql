-- The order system (`order_worker`, the principal a delivery step switches to) reads an order's
-- last event time: `orders::transition` never logs an event before the one that committed first
-- (events are ordered by commit, the order's row lock serializes them).
CREATE POLICY order_worker_history_read ON order_status_history FOR SELECT
    USING ((select app_kind()) = 'order_worker' AND business_id = (select app_business_id()));
