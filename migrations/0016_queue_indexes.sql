-- Queue scans that stay cheap with a backlog. The background tasks claim the next due row with
-- `... ORDER BY <due time>, id LIMIT 1 FOR UPDATE SKIP LOCKED`; an index on the due time alone
-- made PostgreSQL read and sort every due row for each claim (measured: 1–2.6 ms per claim with
-- a few thousand pending orders or unsent emails during the load benchmark). With `id` in the
-- index the first due row is read straight off it.

DROP INDEX outbox_messages_due_idx;
CREATE INDEX outbox_messages_due_idx ON outbox_messages (next_attempt_at, id)
    WHERE processed_at IS NULL AND failed_at IS NULL;

DROP INDEX payment_jobs_due_idx;
CREATE INDEX payment_jobs_due_idx ON payment_jobs (next_attempt_at, id)
    WHERE completed_at IS NULL AND failed_at IS NULL;

-- The acceptance and payment deadlines are scanned together (orders::run_due).
DROP INDEX orders_pending_deadline_idx;
DROP INDEX orders_awaiting_payment_deadline_idx;
CREATE INDEX orders_open_deadline_idx ON orders (acceptance_deadline, id)
    WHERE status IN ('pending', 'awaiting_payment');
