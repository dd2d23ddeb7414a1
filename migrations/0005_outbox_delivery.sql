-- Delivery of the transactional outbox: retry bookkeeping, and the `worker` principal the
-- background sender runs as. The worker is the one principal that reads across businesses, and
-- only these tables: the outbox itself and what it needs to brand a message.

ALTER TABLE outbox_messages
    ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN last_error text,
    ADD COLUMN failed_at timestamptz;

DROP INDEX outbox_messages_pending_idx;
CREATE INDEX outbox_messages_due_idx ON outbox_messages (next_attempt_at)
    WHERE processed_at IS NULL AND failed_at IS NULL;

CREATE POLICY outbox_worker ON outbox_messages
    USING ((select app_kind()) = 'worker')
    WITH CHECK ((select app_kind()) = 'worker');
CREATE POLICY businesses_worker_read ON businesses FOR SELECT
    USING ((select app_kind()) = 'worker');
CREATE POLICY storefront_worker_read ON business_storefront_settings FOR SELECT
    USING ((select app_kind()) = 'worker');

-- Wake the sender as soon as a message is committed (it also polls, so a lost notification
-- only delays a message).
CREATE FUNCTION notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('fleetfront_outbox', '');
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_messages_notify AFTER INSERT ON outbox_messages
    FOR EACH STATEMENT EXECUTE FUNCTION notify_outbox();
