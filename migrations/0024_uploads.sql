-- Resumable, content-addressed uploads (`../shared/design.md` section 4, "Attachments"): a
-- driver's proof photo taken offline arrives in chunks over a weak link, resumes after a cut
-- from the offset the server reports, and is verified (SHA-256 of the whole, image type from
-- the bytes) before it moves into the blob store. The `delivered` report that names the photo
-- is not held back by its upload: the delivery keeps `proof_sha256` and its proof shows as
-- pending until a `delivery_proofs` row with that hash exists (derived, no flag to keep in
-- step).
--
-- Platform tables: an upload belongs to the account that sends it (a driver works for several
-- businesses), so there is no business_id column; the business comes in only when a completed
-- photo is attached to a delivery (`delivery_proofs`, under its own policies). Partial bytes
-- live here, in PostgreSQL, not on one server's disk, so any instance behind the load balancer
-- takes the next chunk; an upload is at most 10 MiB.

CREATE TABLE uploads (
    owner_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    sha256        text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    -- The whole file's length, as the first chunk declared it.
    length        integer NOT NULL CHECK (length BETWEEN 1 AND 10485760),
    received      integer NOT NULL DEFAULT 0 CHECK (received >= 0 AND received <= length),
    -- Declared by the client until complete, then the type sniffed from the bytes.
    content_type  text NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png', 'image/webp')),
    -- What the completed file is for (`delivery_proof`, with the delivery as `subject_id`).
    purpose       text CHECK (purpose IN ('delivery_proof')),
    subject_id    uuid,
    completed_at  timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner_id, sha256),
    CHECK (completed_at IS NULL OR received = length),
    CHECK ((purpose IS NULL) = (subject_id IS NULL))
);
-- `purge_stale_uploads` finds abandoned partial uploads by their last chunk.
CREATE INDEX uploads_partial_idx ON uploads (updated_at) WHERE completed_at IS NULL;

-- The bytes of a partial upload, one row per chunk at the offset of its first byte; the
-- offsets are contiguous (a chunk overlapping what arrived adds only its new tail). Deleted
-- once the whole file is verified and in the blob store, or discarded on a hash mismatch.
CREATE TABLE upload_chunks (
    owner_id      uuid NOT NULL,
    sha256        text NOT NULL,
    byte_offset   integer NOT NULL CHECK (byte_offset >= 0),
    data          bytea NOT NULL CHECK (octet_length(data) BETWEEN 1 AND 1048576),
    PRIMARY KEY (owner_id, sha256, byte_offset),
    FOREIGN KEY (owner_id, sha256) REFERENCES uploads (owner_id, sha256) ON DELETE CASCADE
);

-- Only the account that sends an upload sees or appends to it (drivers for now).
ALTER TABLE uploads ENABLE ROW LEVEL SECURITY;
ALTER TABLE uploads FORCE ROW LEVEL SECURITY;
CREATE POLICY owner_all ON uploads
    USING ((select app_kind()) = 'driver' AND owner_id = (select app_user_id()))
    WITH CHECK ((select app_kind()) = 'driver' AND owner_id = (select app_user_id()));
ALTER TABLE upload_chunks ENABLE ROW LEVEL SECURITY;
ALTER TABLE upload_chunks FORCE ROW LEVEL SECURITY;
CREATE POLICY owner_all ON upload_chunks
    USING ((select app_kind()) = 'driver' AND owner_id = (select app_user_id()))
    WITH CHECK ((select app_kind()) = 'driver' AND owner_id = (select app_user_id()));

GRANT SELECT, INSERT, UPDATE, DELETE ON uploads, upload_chunks TO fleetfront_app;

-- Deletes partial uploads whose last chunk came before `p_before` (with their bytes) and
-- returns how many. Housekeeping across every account, so it runs as the owner; it reads
-- nothing back and touches only unfinished uploads. Called by `uploads::purge_stale`.
CREATE FUNCTION purge_stale_uploads(p_before timestamptz) RETURNS integer
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    WITH gone AS (
        DELETE FROM uploads WHERE completed_at IS NULL AND updated_at < p_before RETURNING 1
    )
    SELECT count(*)::integer FROM gone
$$;
REVOKE ALL ON FUNCTION purge_stale_uploads(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION purge_stale_uploads(timestamptz) TO fleetfront_app;
