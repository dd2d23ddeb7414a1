-- Drivers' GPS fixes. The latest position of each driver lives in the server's memory
-- (`server/src/locations.rs`); this table is its durable history, written in bulk by the
-- server's flusher and pruned after a retention period. It is a platform table (drivers are
-- platform accounts), so it has no business_id.
--
-- Principals:
--   driver            inserts and reads its own rows;
--   location_writer   the server's bulk flusher: inserts any driver's rows, reads nothing;
--   location_keeper   the server's start-up restore and retention task: reads and deletes;
--   admin             reads.

CREATE TABLE driver_locations (
    driver_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_id    text NOT NULL CHECK (length(device_id) BETWEEN 1 AND 128),
    seq          bigint NOT NULL CHECK (seq >= 0),
    latitude     double precision NOT NULL CHECK (latitude BETWEEN -90 AND 90),
    longitude    double precision NOT NULL CHECK (longitude BETWEEN -180 AND 180),
    accuracy_m   double precision NOT NULL CHECK (accuracy_m BETWEEN 0 AND 10000),
    heading_deg  double precision CHECK (heading_deg >= 0 AND heading_deg < 360),
    speed_mps    double precision CHECK (speed_mps BETWEEN 0 AND 100),
    recorded_at  timestamptz NOT NULL,
    received_at  timestamptz NOT NULL,
    -- A device numbers its fixes; a re-sent batch is recognised by (driver, device, seq).
    PRIMARY KEY (driver_id, device_id, seq)
);

-- A driver's track, newest first.
CREATE INDEX driver_locations_track_idx ON driver_locations (driver_id, recorded_at DESC);
-- Rows arrive in received_at order, so a BRIN index (a few pages) finds the recent rows for the
-- start-up restore and the old rows for the retention task without a second B-tree to update
-- on every insert.
CREATE INDEX driver_locations_received_brin ON driver_locations USING brin (received_at);

ALTER TABLE driver_locations ENABLE ROW LEVEL SECURITY;
ALTER TABLE driver_locations FORCE ROW LEVEL SECURITY;

CREATE POLICY driver_locations_driver_read ON driver_locations FOR SELECT
    USING ((select app_kind()) = 'driver' AND driver_id = (select app_user_id()));
CREATE POLICY driver_locations_driver_insert ON driver_locations FOR INSERT
    WITH CHECK ((select app_kind()) = 'driver' AND driver_id = (select app_user_id()));
CREATE POLICY driver_locations_writer ON driver_locations FOR INSERT
    WITH CHECK ((select app_kind()) = 'location_writer');
CREATE POLICY driver_locations_keeper_read ON driver_locations FOR SELECT
    USING ((select app_kind()) = 'location_keeper');
CREATE POLICY driver_locations_keeper_prune ON driver_locations FOR DELETE
    USING ((select app_kind()) = 'location_keeper');
CREATE POLICY driver_locations_admin_read ON driver_locations FOR SELECT
    USING ((select app_is_admin()));

GRANT SELECT, INSERT, DELETE ON driver_locations TO fleetfront_app;
