//! The local SQLite store: what the client pulled (rows by bucket, with each bucket's cursor and
//! checksum), the outbox of mutations not yet decided by the server, the log of decided ones,
//! and a small key/value `meta` table (client id, server URL, session).
//!
//! One writer connection behind a mutex and one read connection, in WAL mode, so readers never
//! wait for a sync and the writer never meets "database is locked" from another connection of
//! ours. A pull's answer is applied in one transaction; so is every outbox change. Nothing is
//! written unless the caller asks (no housekeeping writes while idle).
//!
//! The calls are blocking (rusqlite); async callers run them on a blocking thread
//! (`tokio::task::spawn_blocking`), as the [`crate::engine`] does.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::local::{self, Rows as _};
use chrono::{DateTime, Utc};
use fleetfront_domain::api::location::FixInput;
use fleetfront_domain::api::sync::{Mutation, MutationStatus, PullResponse, PushResponse};
use fleetfront_domain::sync::{
    checksum_add, checksum_remove, format_cursors, row_checksum, Bucket,
};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use serde_json::Value;
use uuid::Uuid;

/// The schema, one migration per version (index 0 is version 1). Each is applied in its own
/// transaction together with the new `PRAGMA user_version`, so an interrupted upgrade leaves
/// the previous version intact. Never edit a released step: add one.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: the first schema: pulled rows, cursors, the outbox and meta.
    "CREATE TABLE sync_buckets (
         bucket   TEXT PRIMARY KEY NOT NULL,
         version  INTEGER NOT NULL,
         checksum INTEGER NOT NULL
     ) STRICT;
     CREATE TABLE sync_rows (
         bucket  TEXT NOT NULL,
         kind    TEXT NOT NULL,
         id      TEXT NOT NULL,
         version INTEGER NOT NULL,
         data    TEXT NOT NULL,
         PRIMARY KEY (bucket, kind, id)
     ) STRICT, WITHOUT ROWID;
     CREATE TABLE outbox (
         seq         INTEGER PRIMARY KEY NOT NULL,
         id          TEXT NOT NULL UNIQUE,
         name        TEXT NOT NULL,
         args        TEXT NOT NULL,
         action_time TEXT NOT NULL
     ) STRICT;
     CREATE TABLE meta (
         key   TEXT PRIMARY KEY NOT NULL,
         value TEXT NOT NULL
     ) STRICT;",
    // 2: decided mutations (rejections keep their message for the UI), when a mutation was
    // queued, reads by kind, and the flag of a bucket whose checksum disagreed.
    "CREATE TABLE mutation_log (
         seq        INTEGER PRIMARY KEY NOT NULL,
         id         TEXT NOT NULL UNIQUE,
         name       TEXT NOT NULL,
         status     TEXT NOT NULL CHECK (status IN ('applied', 'rejected')),
         code       TEXT,
         message    TEXT,
         output     TEXT,
         decided_at TEXT NOT NULL
     ) STRICT;
     ALTER TABLE outbox ADD COLUMN created_at TEXT NOT NULL DEFAULT '';
     UPDATE outbox SET created_at = action_time WHERE created_at = '';
     CREATE INDEX sync_rows_kind_id ON sync_rows (kind, id);
     ALTER TABLE sync_buckets ADD COLUMN resync INTEGER NOT NULL DEFAULT 0;",
    // 3: what pending mutations change locally (shadow rows over the pulled rows, rebuilt by
    // every rebase; `data` NULL hides a pulled row), applied mutations whose effect the next
    // complete pull brings (kept on show until then), and the queue of attachments (proof
    // photos) waiting to upload, by SHA-256.
    "ALTER TABLE mutation_log ADD COLUMN args TEXT;
     ALTER TABLE mutation_log ADD COLUMN action_time TEXT;
     ALTER TABLE mutation_log ADD COLUMN awaiting_pull INTEGER NOT NULL DEFAULT 0;
     CREATE TABLE shadow_rows (
         kind TEXT NOT NULL,
         id   TEXT NOT NULL,
         data TEXT,
         seq  INTEGER NOT NULL,
         PRIMARY KEY (kind, id)
     ) STRICT, WITHOUT ROWID;
     CREATE TABLE attachments (
         sha256       TEXT PRIMARY KEY NOT NULL,
         purpose      TEXT NOT NULL,
         owner_id     TEXT NOT NULL,
         content_type TEXT NOT NULL,
         size         INTEGER NOT NULL,
         path         TEXT NOT NULL,
         uploaded     INTEGER NOT NULL DEFAULT 0,
         done         INTEGER NOT NULL DEFAULT 0,
         attempts     INTEGER NOT NULL DEFAULT 0,
         last_error   TEXT,
         created_at   TEXT NOT NULL
     ) STRICT;",
    // 4: GPS fixes waiting to be sent (their own channel, not mutations: batches with a
    // per-device sequence the server deduplicates), kept while offline.
    "CREATE TABLE location_fixes (
         seq INTEGER PRIMARY KEY NOT NULL,
         fix TEXT NOT NULL
     ) STRICT;",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// How long a connection waits for a lock held by another process before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("local database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The file was written by a newer build (its schema is ahead of ours).
    #[error("local database has schema version {found}, newer than this app's {supported}")]
    TooNew {
        /// The file's version.
        found: u32,
        /// Ours.
        supported: u32,
    },
    /// A migration step failed; the file stays at `version - 1`.
    #[error("migrating the local database to version {version}: {source}")]
    Migration {
        /// The version that failed.
        version: u32,
        /// Why.
        source: rusqlite::Error,
    },
    /// The server's answer breaks the protocol; nothing of it was applied.
    #[error("sync answer refused: {0}")]
    Protocol(String),
    /// A stored value does not parse (a bucket name, an id, JSON, a time).
    #[error("corrupt local data: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether trying again later may succeed (a busy or locked database).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Sqlite(e) => matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            ),
            _ => false,
        }
    }
}

/// Result alias of the store.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What applying one pull did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Rows inserted or updated.
    pub upserted: usize,
    /// Rows deleted by tombstones.
    pub deleted: usize,
    /// Buckets reset (by the server, or after a checksum mismatch) before their rows applied.
    pub reset: Vec<Bucket>,
    /// Buckets dropped because the principal may no longer read them.
    pub removed: Vec<Bucket>,
    /// Buckets whose checksum disagreed with the server's: their cursor went back to 0 and the
    /// next pull fetches them again (their rows stay visible until it arrives).
    pub mismatched: Vec<Bucket>,
}

/// A mutation the server refused, for the UI.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejection {
    /// Its sequence number.
    pub seq: u64,
    /// Its id.
    pub id: Uuid,
    /// `name@version`.
    pub name: String,
    /// The stable error code, if the server gave one.
    pub code: Option<String>,
    /// Why, in words.
    pub message: String,
    /// When the client recorded the decision.
    pub decided_at: DateTime<Utc>,
}

/// What recording a push's answer did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordReport {
    /// Mutations moved to the log as applied.
    pub applied: usize,
    /// Mutations moved to the log as rejected.
    pub rejected: usize,
    /// Results for mutations no longer in the outbox (an answer recorded twice).
    pub already_recorded: usize,
}

/// The local database.
#[derive(Debug)]
pub struct Store {
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
}

impl Store {
    /// Opens (or creates) the database file at `path` and brings its schema up to date.
    ///
    /// # Errors
    /// SQLite errors, [`StoreError::TooNew`] for a file of a newer build, or
    /// [`StoreError::Migration`] when an upgrade step fails (the file keeps its old version and
    /// every pending mutation).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path.as_ref(), MIGRATIONS)
    }

    pub(crate) fn open_with(path: &Path, migrations: &[&str]) -> Result<Self> {
        let mut writer = Connection::open(path)?;
        configure(&writer)?;
        migrate(&mut writer, migrations)?;
        let reader = Connection::open(path)?;
        configure(&reader)?;
        Ok(Self {
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
        })
    }

    fn writer(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a transaction half-done (rusqlite rolls
        // back on drop), so a poisoned lock is still a usable connection.
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn reader(&self) -> MutexGuard<'_, Connection> {
        self.reader.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The schema version of the open file.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn schema_version(&self) -> Result<u32> {
        Ok(self
            .reader()
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    // ---- pulled rows --------------------------------------------------------------------

    /// Applies one pull's answer in one transaction: resets, upserts and tombstones with the
    /// buckets' checksums kept up to date, new cursors, removed buckets; then compares each
    /// complete page's checksum with ours. Either all of it is applied or none.
    ///
    /// # Errors
    /// [`StoreError::Protocol`] for an answer that breaks the protocol (a row newer than its
    /// page, a cursor moving back without a reset), SQLite errors; nothing is applied then.
    pub fn apply_pull(&self, pull: &PullResponse) -> Result<ApplyReport> {
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let report = apply_in(&tx, pull)?;
        // Once a pull is complete it carries the effects of every mutation applied before
        // it: their shadows give way to the server's rows.
        let landed = if pull.more {
            0
        } else {
            tx.prepare_cached("UPDATE mutation_log SET awaiting_pull = 0 WHERE awaiting_pull = 1")?
                .execute([])?
        };
        if landed > 0 || report.upserted + report.deleted > 0 || !report.removed.is_empty() {
            rebase(&tx)?;
        }
        tx.commit()?;
        Ok(report)
    }

    /// The cursors to send with the next pull (`bucket=version,…`; empty for a fresh client).
    ///
    /// # Errors
    /// SQLite errors, or [`StoreError::Corrupt`] for a stored bucket name that does not parse.
    pub fn cursors(&self) -> Result<String> {
        let conn = self.reader();
        let mut stmt =
            conn.prepare_cached("SELECT bucket, version FROM sync_buckets ORDER BY bucket")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (bucket, version) = row?;
            let bucket: Bucket = bucket
                .parse()
                .map_err(|e| StoreError::Corrupt(format!("bucket {bucket:?}: {e}")))?;
            out.push((bucket, to_u64(version)?));
        }
        Ok(format_cursors(&out))
    }

    /// Each bucket's cursor and checksum, as stored.
    ///
    /// # Errors
    /// SQLite errors, or [`StoreError::Corrupt`].
    pub fn buckets(&self) -> Result<BTreeMap<Bucket, (u64, u32)>> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached("SELECT bucket, version, checksum FROM sync_buckets")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (bucket, version, checksum) = row?;
            let bucket: Bucket = bucket
                .parse()
                .map_err(|e| StoreError::Corrupt(format!("bucket {bucket:?}: {e}")))?;
            out.insert(bucket, (to_u64(version)?, to_u32(checksum)?));
        }
        Ok(out)
    }

    /// Every row of a kind the user sees, by id: the pulled rows with what pending mutations
    /// changed on top (see [`crate::local`]). A row present in several buckets (an order in
    /// the store's and its driver's) is returned once.
    ///
    /// # Errors
    /// SQLite errors, or [`StoreError::Corrupt`].
    pub fn rows(&self, kind: &str) -> Result<Vec<(Uuid, Value)>> {
        rows_of(&self.reader(), kind)
    }

    /// One row by kind and id, as the user sees it (pending mutations on top).
    ///
    /// # Errors
    /// SQLite errors, or [`StoreError::Corrupt`].
    pub fn row(&self, kind: &str, id: Uuid) -> Result<Option<Value>> {
        ViewRows(&self.reader()).get(kind, id)
    }

    /// One row by kind and id as the server last sent it (without pending mutations).
    ///
    /// # Errors
    /// SQLite errors, or [`StoreError::Corrupt`].
    pub fn pulled_row(&self, kind: &str, id: Uuid) -> Result<Option<Value>> {
        pulled_row(&self.reader(), kind, id)
    }

    // ---- outbox -------------------------------------------------------------------------

    /// Queues a mutation: the next dense sequence number (one past the highest in the outbox
    /// and the log) and a fresh UUIDv7 id, in one transaction.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn enqueue(&self, name: &str, args: Value, action_time: DateTime<Utc>) -> Result<Mutation> {
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mutation = Mutation {
            seq: next_seq(&tx)?,
            id: Uuid::now_v7(),
            name: name.to_owned(),
            args,
            action_time,
        };
        insert_outbox(&tx, &mutation)?;
        tx.commit()?;
        Ok(mutation)
    }

    /// Does something on this device: applies the mutation to what the user sees at once
    /// (see [`crate::local`]) and queues it for the server, in one transaction. A mutation
    /// the local rules refuse is not queued; the refusal says why, in words.
    ///
    /// # Errors
    /// SQLite errors; the refusal is the inner `Err`.
    pub fn mutate(
        &self,
        name: &str,
        args: Value,
        action_time: DateTime<Utc>,
    ) -> Result<std::result::Result<Mutation, local::Refusal>> {
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let me = account(&tx)?;
        let mut mutation = Mutation {
            seq: 0,
            id: Uuid::now_v7(),
            name: name.to_owned(),
            args,
            action_time,
        };
        let changes = match local::apply(&ViewRows(&tx), me, &mutation)? {
            Ok(changes) => changes,
            Err(refusal) => return Ok(Err(refusal)),
        };
        mutation.seq = next_seq(&tx)?;
        insert_outbox(&tx, &mutation)?;
        write_shadows(&tx, mutation.seq, &changes)?;
        tx.commit()?;
        Ok(Ok(mutation))
    }

    /// Copies the write-ahead log back into the database file as far as no reader needs it
    /// (`PRAGMA wal_checkpoint(PASSIVE)`: never waits, never blocks a reader), so the log
    /// stays small. The sync engine calls it after each round.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn checkpoint(&self) -> Result<()> {
        self.writer()
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// Re-applies every pending mutation over the pulled rows (the shadow rows are rebuilt):
    /// done by every pull and every push's answer, and by hand after the account changes.
    ///
    /// # Errors
    /// SQLite errors, or [`StoreError::Corrupt`].
    pub fn rebase(&self) -> Result<()> {
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        rebase(&tx)?;
        tx.commit()?;
        Ok(())
    }

    /// The oldest `limit` mutations not yet decided, in sequence order.
    ///
    /// # Errors
    /// SQLite errors, or [`StoreError::Corrupt`].
    pub fn pending(&self, limit: usize) -> Result<Vec<Mutation>> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, id, name, args, action_time FROM outbox ORDER BY seq LIMIT ?1",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map([limit], outbox_row)?;
        rows.map(|r| r.map_err(StoreError::from).and_then(parse_outbox))
            .collect()
    }

    /// How many mutations wait for the server.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn pending_count(&self) -> Result<u64> {
        let n: i64 = self
            .reader()
            .query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))?;
        to_u64(n)
    }

    /// Moves every mutation the server decided from the outbox to the log, in one transaction.
    /// Results for mutations already moved are counted and skipped (an answer recorded twice).
    ///
    /// # Errors
    /// [`StoreError::Protocol`] when a result names a sequence number with another id than
    /// ours (nothing is recorded then), SQLite errors.
    pub fn record_results(&self, push: &PushResponse) -> Result<RecordReport> {
        let now = crate::now().to_rfc3339();
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut report = RecordReport::default();
        {
            let mut find =
                tx.prepare_cached("SELECT id, name, args, action_time FROM outbox WHERE seq = ?1")?;
            let mut log = tx.prepare_cached(
                "INSERT INTO mutation_log (seq, id, name, status, code, message, output,
                     decided_at, args, action_time, awaiting_pull)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?;
            let mut delete = tx.prepare_cached("DELETE FROM outbox WHERE seq = ?1")?;
            for result in &push.results {
                let seq = to_i64(result.seq)?;
                let Some((id, name, args, action_time)) = find
                    .query_row([seq], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                        ))
                    })
                    .optional()?
                else {
                    report.already_recorded += 1;
                    continue;
                };
                if parse_uuid(&id)? != result.id {
                    return Err(StoreError::Protocol(format!(
                        "result for seq {} names mutation {}, ours is {id}",
                        result.seq, result.id
                    )));
                }
                let status = match result.status {
                    MutationStatus::Applied => {
                        report.applied += 1;
                        "applied"
                    }
                    MutationStatus::Rejected => {
                        report.rejected += 1;
                        "rejected"
                    }
                };
                let message = match (result.status, &result.message) {
                    (_, Some(m)) => Some(m.clone()),
                    // The UI always has words to show for a rejection.
                    (MutationStatus::Rejected, None) => Some(result.code.as_deref().map_or_else(
                        || "refused by the server".to_owned(),
                        |c| format!("refused by the server ({c})"),
                    )),
                    (MutationStatus::Applied, None) => None,
                };
                log.execute(params![
                    seq,
                    id,
                    name,
                    status,
                    result.code,
                    message,
                    result.output.as_ref().map(Value::to_string),
                    now,
                    args,
                    action_time,
                    result.status == MutationStatus::Applied,
                ])?;
                delete.execute([seq])?;
            }
        }
        // A rejected mutation's local effect goes at once; an applied one's stays on show
        // until the complete pull that brings the server's rows (`awaiting_pull`).
        if report.rejected > 0 {
            rebase(&tx)?;
        }
        tx.commit()?;
        Ok(report)
    }

    /// Every rejected mutation, newest first, with its reason.
    ///
    /// # Errors
    /// SQLite errors, or [`StoreError::Corrupt`].
    pub fn rejections(&self) -> Result<Vec<Rejection>> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, id, name, code, message, decided_at FROM mutation_log
             WHERE status = 'rejected' ORDER BY seq DESC",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, String>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, id, name, code, message, decided_at) = row?;
            out.push(Rejection {
                seq: to_u64(seq)?,
                id: parse_uuid(&id)?,
                name,
                code,
                message: message.unwrap_or_default(),
                decided_at: parse_time(&decided_at)?,
            });
        }
        Ok(out)
    }

    // ---- meta ---------------------------------------------------------------------------

    /// A stored setting.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .reader()
            .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()?)
    }

    /// Stores a setting.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.writer()
            .prepare_cached(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )?
            .execute([key, value])?;
        Ok(())
    }

    /// Removes a setting.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn delete_meta(&self, key: &str) -> Result<()> {
        self.writer()
            .prepare_cached("DELETE FROM meta WHERE key = ?1")?
            .execute([key])?;
        Ok(())
    }

    /// Starts the local copy of another account on this device, in one transaction: the
    /// pulled rows, cursors, shadows, decided log and attachments go, the client id is made
    /// anew on next use (the server's sequence is per client id), and `account` owns what is
    /// queued from now on.
    ///
    /// # Errors
    /// [`StoreError::Protocol`] while mutations are still pending (they belong to the
    /// previous account; nothing changes), SQLite errors.
    pub fn start_account(&self, account: Uuid) -> Result<()> {
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let pending: i64 = tx.query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))?;
        if pending > 0 {
            return Err(StoreError::Protocol(format!(
                "{pending} mutation(s) of the previous account are still pending"
            )));
        }
        tx.execute_batch(
            "DELETE FROM sync_rows; DELETE FROM sync_buckets; DELETE FROM shadow_rows;
             DELETE FROM mutation_log; DELETE FROM attachments;
             DELETE FROM meta WHERE key IN ('client_id', 'last_synced_at');",
        )?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('account_id', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [account.to_string()],
        )?;
        tx.commit()?;
        Ok(())
    }

    // ---- GPS fixes ----------------------------------------------------------------------

    /// Keeps a GPS fix until it is sent, under the device's next fix sequence number (dense,
    /// never reused: kept in `meta.fix_seq`, since sent fixes leave the table); answers it.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn record_fix(&self, fix: &FixInput) -> Result<u64> {
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let last: Option<String> = tx
            .query_row("SELECT value FROM meta WHERE key = 'fix_seq'", [], |r| {
                r.get(0)
            })
            .optional()?;
        let seq = last
            .map(|l| {
                l.parse::<u64>()
                    .map_err(|e| StoreError::Corrupt(format!("fix_seq: {e}")))
            })
            .transpose()?
            .unwrap_or(0)
            + 1;
        let mut fix = fix.clone();
        fix.seq = to_i64(seq)?;
        let text = serde_json::to_string(&fix).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        tx.execute(
            "INSERT INTO location_fixes (seq, fix) VALUES (?1, ?2)",
            params![to_i64(seq)?, text],
        )?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('fix_seq', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [seq.to_string()],
        )?;
        tx.commit()?;
        Ok(seq)
    }

    /// The oldest `limit` fixes not yet sent, in sequence order.
    ///
    /// # Errors
    /// SQLite errors, or [`StoreError::Corrupt`].
    pub fn pending_fixes(&self, limit: usize) -> Result<Vec<FixInput>> {
        let conn = self.reader();
        let mut stmt =
            conn.prepare_cached("SELECT fix FROM location_fixes ORDER BY seq LIMIT ?1")?;
        let rows = stmt.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
            r.get::<_, String>(0)
        })?;
        rows.map(|text| {
            serde_json::from_str(&text?).map_err(|e| StoreError::Corrupt(format!("fix: {e}")))
        })
        .collect()
    }

    /// Forgets the fixes up to `seq` (sent, or refused for good).
    ///
    /// # Errors
    /// SQLite errors.
    pub fn drop_fixes_through(&self, seq: u64) -> Result<()> {
        self.writer()
            .prepare_cached("DELETE FROM location_fixes WHERE seq <= ?1")?
            .execute([to_i64(seq)?])?;
        Ok(())
    }

    /// This installation's id for the GPS channel (made once, kept; the server's fix sequence
    /// is per device).
    ///
    /// # Errors
    /// SQLite errors.
    pub fn device_id(&self) -> Result<String> {
        self.made_once("device_id", || {
            format!("device-{}", Uuid::now_v7().simple())
        })
    }

    /// This installation's client id (made once, on first use, and kept).
    ///
    /// # Errors
    /// SQLite errors, or [`StoreError::Corrupt`].
    pub fn client_id(&self) -> Result<Uuid> {
        parse_uuid(&self.made_once("client_id", || Uuid::now_v7().to_string())?)
    }

    /// The `meta` value of `key`, made by `make` and kept on first use (one transaction, so
    /// two first uses agree).
    fn made_once(&self, key: &str, make: impl FnOnce() -> String) -> Result<String> {
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let existing: Option<String> = tx
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?;
        let value = match existing {
            Some(value) => value,
            None => {
                let value = make();
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                    [key, value.as_str()],
                )?;
                value
            }
        };
        tx.commit()?;
        Ok(value)
    }

    // ---- attachments --------------------------------------------------------------------
    // The queue of files waiting to upload, by SHA-256 (`crate::attachments`).

    /// Queues a file for upload; a file already queued (the same SHA-256) stays as it is.
    /// Returns whether it was new.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn insert_attachment(&self, a: &crate::attachments::Attachment) -> Result<bool> {
        let added = self
            .writer()
            .prepare_cached(
                "INSERT INTO attachments (sha256, purpose, owner_id, content_type, size, path,
                     uploaded, done, attempts, last_error, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT (sha256) DO NOTHING",
            )?
            .execute(params![
                a.sha256,
                a.purpose,
                a.owner_id,
                a.content_type,
                to_i64(a.size)?,
                a.path.to_string_lossy(),
                to_i64(a.uploaded)?,
                a.done,
                a.attempts,
                a.last_error,
                a.created_at.to_rfc3339(),
            ])?;
        Ok(added == 1)
    }

    /// One queued file by its SHA-256.
    ///
    /// # Errors
    /// SQLite errors (a stored value that does not convert among them).
    pub fn attachment(&self, sha256: &str) -> Result<Option<crate::attachments::Attachment>> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT sha256, purpose, owner_id, content_type, size, path, uploaded, done, attempts,
                    last_error, created_at
               FROM attachments WHERE sha256 = ?1",
        )?;
        Ok(stmt.query_row([sha256], Self::attachment_of).optional()?)
    }

    /// How many files wait to upload (the sync status's count).
    ///
    /// # Errors
    /// SQLite errors.
    pub fn pending_attachment_count(&self) -> Result<u64> {
        let n: i64 = self.reader().query_row(
            "SELECT count(*) FROM attachments WHERE done = 0",
            [],
            |r| r.get(0),
        )?;
        to_u64(n)
    }

    /// The files not uploaded yet (and not given up), oldest first.
    ///
    /// # Errors
    /// SQLite errors (a stored value that does not convert among them).
    pub fn pending_attachments(&self) -> Result<Vec<crate::attachments::Attachment>> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT sha256, purpose, owner_id, content_type, size, path, uploaded, done, attempts,
                    last_error, created_at
               FROM attachments WHERE done = 0 ORDER BY created_at, sha256",
        )?;
        let rows = stmt.query_map([], Self::attachment_of)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Records how many bytes of a file the server holds.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn set_attachment_uploaded(&self, sha256: &str, uploaded: u64) -> Result<()> {
        self.writer()
            .prepare_cached("UPDATE attachments SET uploaded = ?2 WHERE sha256 = ?1")?
            .execute(params![sha256, to_i64(uploaded)?])?;
        Ok(())
    }

    /// Marks a file uploaded and verified by the server.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn finish_attachment(&self, sha256: &str) -> Result<()> {
        self.writer()
            .prepare_cached(
                "UPDATE attachments SET uploaded = size, done = 1, last_error = NULL
                  WHERE sha256 = ?1",
            )?
            .execute([sha256])?;
        Ok(())
    }

    /// Records a failed try; `give_up` (a refusal no retry changes) also ends the file's tries,
    /// keeping its error for the app to show.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn fail_attachment(&self, sha256: &str, error: &str, give_up: bool) -> Result<()> {
        self.writer()
            .prepare_cached(
                "UPDATE attachments SET attempts = attempts + 1, last_error = ?2,
                        done = done OR ?3
                  WHERE sha256 = ?1",
            )?
            .execute(params![sha256, error, give_up])?;
        Ok(())
    }

    /// An `attachments` row (columns in table order).
    fn attachment_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<crate::attachments::Attachment> {
        let created_at: String = r.get(10)?;
        Ok(crate::attachments::Attachment {
            sha256: r.get(0)?,
            purpose: r.get(1)?,
            owner_id: r.get(2)?,
            content_type: r.get(3)?,
            size: r.get(4)?,
            path: r.get::<_, String>(5)?.into(),
            uploaded: r.get(6)?,
            done: r.get(7)?,
            attempts: r.get(8)?,
            last_error: r.get(9)?,
            created_at: DateTime::parse_from_rfc3339(&created_at)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(
                        10,
                        rusqlite::types::Type::Text,
                        Box::new(e),
                    )
                })?,
        })
    }
}

/// The rows the user sees through one connection: a shadow row (a pending mutation's
/// change) wins over the pulled row.
struct ViewRows<'c>(&'c Connection);

impl local::Rows for ViewRows<'_> {
    fn all(&self, kind: &str) -> Result<Vec<(Uuid, Value)>> {
        rows_of(self.0, kind)
    }

    fn get(&self, kind: &str, id: Uuid) -> Result<Option<Value>> {
        let shadow: Option<Option<String>> = self
            .0
            .prepare_cached("SELECT data FROM shadow_rows WHERE kind = ?1 AND id = ?2")?
            .query_row(params![kind, id.to_string()], |r| r.get(0))
            .optional()?;
        match shadow {
            Some(data) => data.as_deref().map(parse_json).transpose(),
            None => pulled_row(self.0, kind, id),
        }
    }
}

fn rows_of(conn: &Connection, kind: &str) -> Result<Vec<(Uuid, Value)>> {
    let mut shadows: BTreeMap<Uuid, Option<Value>> = BTreeMap::new();
    {
        let mut stmt = conn.prepare_cached("SELECT id, data FROM shadow_rows WHERE kind = ?1")?;
        let rows = stmt.query_map([kind], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
        })?;
        for row in rows {
            let (id, data) = row?;
            shadows.insert(
                parse_uuid(&id)?,
                data.as_deref().map(parse_json).transpose()?,
            );
        }
    }
    let mut stmt =
        conn.prepare_cached("SELECT id, data FROM sync_rows WHERE kind = ?1 ORDER BY id")?;
    let rows = stmt.query_map([kind], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut out: Vec<(Uuid, Value)> = Vec::new();
    for row in rows {
        let (id, data) = row?;
        let id = parse_uuid(&id)?;
        if out.last().is_some_and(|(last, _)| *last == id) || shadows.contains_key(&id) {
            continue;
        }
        out.push((id, parse_json(&data)?));
    }
    if !shadows.is_empty() {
        out.extend(
            shadows
                .into_iter()
                .filter_map(|(id, data)| data.map(|data| (id, data))),
        );
        out.sort_by_key(|(id, _)| *id);
    }
    Ok(out)
}

fn pulled_row(conn: &Connection, kind: &str, id: Uuid) -> Result<Option<Value>> {
    let data: Option<String> = conn
        .prepare_cached("SELECT data FROM sync_rows WHERE kind = ?1 AND id = ?2 LIMIT 1")?
        .query_row(params![kind, id.to_string()], |r| r.get(0))
        .optional()?;
    data.map(|d| parse_json(&d)).transpose()
}

/// The signed-in account the outbox belongs to (`meta.account_id`), for the local rules.
fn account(conn: &Connection) -> Result<Option<local::Me>> {
    let id: Option<String> = conn
        .prepare_cached("SELECT value FROM meta WHERE key = 'account_id'")?
        .query_row([], |r| r.get(0))
        .optional()?;
    Ok(id
        .map(|id| parse_uuid(&id))
        .transpose()?
        .map(|id| local::Me { id }))
}

/// One past the highest sequence number in the outbox and the log (dense per client).
fn next_seq(conn: &Connection) -> Result<u64> {
    let last: i64 = conn.query_row(
        "SELECT max(coalesce((SELECT max(seq) FROM outbox), 0),
                    coalesce((SELECT max(seq) FROM mutation_log), 0))",
        [],
        |r| r.get(0),
    )?;
    Ok(to_u64(last)? + 1)
}

fn insert_outbox(conn: &Connection, m: &Mutation) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO outbox (seq, id, name, args, action_time, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        to_i64(m.seq)?,
        m.id.to_string(),
        m.name,
        m.args.to_string(),
        m.action_time.to_rfc3339(),
        crate::now().to_rfc3339(),
    ])?;
    Ok(())
}

fn write_shadows(conn: &Connection, seq: u64, changes: &[local::Change]) -> Result<()> {
    let mut put = conn.prepare_cached(
        "INSERT INTO shadow_rows (kind, id, data, seq) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (kind, id) DO UPDATE SET data = excluded.data, seq = excluded.seq",
    )?;
    for change in changes {
        put.execute(params![
            change.kind,
            change.id.to_string(),
            change.data.as_ref().map(Value::to_string),
            to_i64(seq)?,
        ])?;
    }
    Ok(())
}

/// Rebuilds the shadow rows: every pending mutation, in order, over the pulled rows. A
/// pending mutation the local rules now refuse (the store cancelled the order meanwhile)
/// shows nothing and stays queued: the server decides it, and its answer reaches the user.
fn rebase(conn: &Connection) -> Result<()> {
    let shadows: i64 = conn.query_row("SELECT count(*) FROM shadow_rows", [], |r| r.get(0))?;
    let pending: i64 = conn.query_row(
        "SELECT (SELECT count(*) FROM outbox)
              + (SELECT count(*) FROM mutation_log WHERE awaiting_pull = 1)",
        [],
        |r| r.get(0),
    )?;
    if shadows == 0 && pending == 0 {
        return Ok(());
    }
    conn.execute("DELETE FROM shadow_rows", [])?;
    if pending == 0 {
        return Ok(());
    }
    let me = account(conn)?;
    let queued = {
        let mut stmt = conn.prepare_cached(
            "SELECT seq, id, name, args, action_time FROM outbox
             UNION ALL
             SELECT seq, id, name, args, action_time FROM mutation_log
              WHERE awaiting_pull = 1 AND args IS NOT NULL AND action_time IS NOT NULL
             ORDER BY 1",
        )?;
        let rows = stmt.query_map([], outbox_row)?;
        rows.map(|r| r.map_err(StoreError::from).and_then(parse_outbox))
            .collect::<Result<Vec<_>>>()?
    };
    for m in &queued {
        if let Ok(changes) = local::apply(&ViewRows(conn), me, m)? {
            write_shadows(conn, m.seq, &changes)?;
        }
    }
    Ok(())
}

type OutboxRow = (i64, String, String, String, String);

fn outbox_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OutboxRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn parse_outbox((seq, id, name, args, action_time): OutboxRow) -> Result<Mutation> {
    Ok(Mutation {
        seq: to_u64(seq)?,
        id: parse_uuid(&id)?,
        name,
        args: parse_json(&args)?,
        action_time: parse_time(&action_time)?,
    })
}

/// Per-connection settings. WAL lets the reader read while the writer writes; NORMAL is
/// durable across application crashes in WAL mode (a power cut may lose the last commits,
/// never corrupt the file), which the server's stored results make safe to re-push.
fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Corrupt(format!("journal mode {mode}, not wal")));
    }
    // A 16 MiB page cache holds an initial pull of a large catalog without spilling to the
    // file mid-transaction.
    // No automatic checkpoint: SQLite would run it inside whichever commit crosses 1,000 WAL
    // pages (an apply of one row that takes 10–30 ms instead of 0.1); the sync engine
    // checkpoints after each round instead ([`Store::checkpoint`]).
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -16384;
         PRAGMA wal_autocheckpoint = 0;",
    )?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(())
}

/// Brings the schema to `migrations.len()`, one transaction per step with its `user_version`.
fn migrate(conn: &mut Connection, migrations: &[&str]) -> Result<()> {
    let supported = u32::try_from(migrations.len()).expect("a handful of migrations");
    let found: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > supported {
        return Err(StoreError::TooNew { found, supported });
    }
    for (index, step) in migrations.iter().enumerate().skip(found as usize) {
        let version = u32::try_from(index + 1).expect("a handful of migrations");
        let failed = |source| StoreError::Migration { version, source };
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Exclusive)
            .map_err(failed)?;
        tx.execute_batch(step).map_err(failed)?;
        tx.pragma_update(None, "user_version", version)
            .map_err(failed)?;
        tx.commit().map_err(failed)?;
    }
    Ok(())
}

fn apply_in(tx: &Transaction<'_>, pull: &PullResponse) -> Result<ApplyReport> {
    let mut report = ApplyReport::default();
    let mut get_bucket =
        tx.prepare_cached("SELECT version, checksum, resync FROM sync_buckets WHERE bucket = ?1")?;
    let mut put_bucket = tx.prepare_cached(
        "INSERT INTO sync_buckets (bucket, version, checksum, resync) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (bucket) DO UPDATE SET version = excluded.version,
             checksum = excluded.checksum, resync = excluded.resync",
    )?;
    let mut clear_rows = tx.prepare_cached("DELETE FROM sync_rows WHERE bucket = ?1")?;
    let mut old_version = tx.prepare_cached(
        "SELECT version FROM sync_rows WHERE bucket = ?1 AND kind = ?2 AND id = ?3",
    )?;
    let mut upsert = tx.prepare_cached(
        "INSERT INTO sync_rows (bucket, kind, id, version, data) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (bucket, kind, id) DO UPDATE SET
             version = excluded.version, data = excluded.data",
    )?;
    let mut delete =
        tx.prepare_cached("DELETE FROM sync_rows WHERE bucket = ?1 AND kind = ?2 AND id = ?3")?;
    let mut drop_bucket = tx.prepare_cached("DELETE FROM sync_buckets WHERE bucket = ?1")?;

    for page in &pull.buckets {
        let name = page.bucket.to_string();
        let (current, stored_checksum, resync) = get_bucket
            .query_row([&name], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, bool>(2)?,
                ))
            })
            .optional()?
            .unwrap_or((0, 0, false));
        let current = to_u64(current)?;
        let mut checksum = to_u32(stored_checksum)?;
        // While the bucket is known to be empty (new, or just reset) a row can only exist
        // locally if this answer wrote it, so the lookup of its old version is skipped for
        // rows not seen yet: the initial pull of a large bucket costs one statement per row.
        let mut empty = current == 0 && stored_checksum == 0 && !has_rows(tx, &name)?;
        let mut seen: HashSet<(&str, Uuid)> = HashSet::new();
        // A bucket whose checksum disagreed is fetched again from 0; its first page replaces
        // what we had, as a reset from the server would.
        if page.reset || resync {
            clear_rows.execute([&name])?;
            checksum = 0;
            empty = true;
            report.reset.push(page.bucket);
        } else if page.version < current {
            return Err(StoreError::Protocol(format!(
                "bucket {name} went back from version {current} to {} without a reset",
                page.version
            )));
        }
        for row in &page.rows {
            if row.version > page.version || row.version == 0 {
                return Err(StoreError::Protocol(format!(
                    "row {}:{} of bucket {name} has version {}, outside 1..={}",
                    row.kind, row.id, row.version, page.version
                )));
            }
            if row.kind.is_empty() {
                return Err(StoreError::Protocol(format!(
                    "row {} of bucket {name} has no kind",
                    row.id
                )));
            }
            let id = row.id.to_string();
            let previous: Option<i64> = if empty && seen.insert((&row.kind, row.id)) {
                None
            } else {
                old_version
                    .query_row(params![name, row.kind, id], |r| r.get(0))
                    .optional()?
            };
            if let Some(previous) = previous {
                checksum =
                    checksum_remove(checksum, row_checksum(&row.kind, row.id, to_u64(previous)?));
            }
            match &row.data {
                Some(data) => {
                    upsert.execute(params![
                        name,
                        row.kind,
                        id,
                        to_i64(row.version)?,
                        data.to_string()
                    ])?;
                    checksum = checksum_add(checksum, row_checksum(&row.kind, row.id, row.version));
                    report.upserted += 1;
                }
                None => {
                    if previous.is_some() {
                        delete.execute(params![name, row.kind, id])?;
                        report.deleted += 1;
                    }
                }
            }
        }
        let mismatch = page.complete && page.checksum.is_some_and(|theirs| theirs != checksum);
        if mismatch {
            report.mismatched.push(page.bucket);
            put_bucket.execute(params![name, 0, i64::from(checksum), true])?;
        } else {
            put_bucket.execute(params![
                name,
                to_i64(page.version)?,
                i64::from(checksum),
                false
            ])?;
        }
    }
    for bucket in &pull.removed {
        let name = bucket.to_string();
        clear_rows.execute([&name])?;
        drop_bucket.execute([&name])?;
        report.removed.push(*bucket);
    }
    Ok(report)
}

fn has_rows(tx: &Transaction<'_>, bucket: &str) -> Result<bool> {
    Ok(tx
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM sync_rows WHERE bucket = ?1)")?
        .query_row([bucket], |r| r.get(0))?)
}

fn to_u64(v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative counter {v}")))
}

fn to_i64(v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| StoreError::Protocol(format!("counter {v} out of range")))
}

fn to_u32(v: i64) -> Result<u32> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("checksum {v} out of range")))
}

fn parse_uuid(raw: &str) -> Result<Uuid> {
    Uuid::parse_str(raw).map_err(|e| StoreError::Corrupt(format!("id {raw:?}: {e}")))
}

fn parse_json(raw: &str) -> Result<Value> {
    serde_json::from_str(raw).map_err(|e| StoreError::Corrupt(format!("json: {e}")))
}

fn parse_time(raw: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("time {raw:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scratch() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("fleetfront-core-unit-{}", Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("client.db")
    }

    #[test]
    fn a_failing_migration_step_leaves_the_previous_version_and_its_outbox() {
        let path = scratch();
        let store = Store::open(&path).unwrap();
        let queued = store
            .enqueue("order.accept@1", json!({"order": 1}), crate::now())
            .unwrap();
        drop(store);

        // A third step that fails half-way: its first statement must not survive either.
        let mut broken: Vec<&str> = MIGRATIONS.to_vec();
        broken.push("CREATE TABLE extra (x); DROP TABLE outbox; SELECT no_such_function();");
        let err = Store::open_with(&path, &broken).unwrap_err();
        assert!(
            matches!(err, StoreError::Migration { version, .. } if version == SCHEMA_VERSION + 1),
            "{err}"
        );

        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(store.pending(10).unwrap(), vec![queued]);
        let extra: i64 = store
            .reader()
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name = 'extra'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(extra, 0);
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn opening_and_reading_an_up_to_date_file_writes_nothing() {
        let path = scratch();
        drop(Store::open(&path).unwrap());
        let changes = |store: &Store| -> i64 {
            store
                .writer()
                .query_row("PRAGMA data_version", [], |r| r.get(0))
                .unwrap()
        };
        let watcher = Store::open(&path).unwrap();
        let before = changes(&watcher);
        let other = Store::open(&path).unwrap();
        other.cursors().unwrap();
        other.rows("product").unwrap();
        other.pending(10).unwrap();
        assert_eq!(
            changes(&watcher),
            before,
            "another connection committed something"
        );
        other.set_meta("k", "v").unwrap();
        assert_ne!(changes(&watcher), before, "the probe sees real writes");
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }
}
