//! The sync engine: one `sync_now` round (push what is queued, then pull until up to date) and
//! the status the apps show. Uploads never hold back downloads for longer than one push: a
//! rejected mutation is decided and logged like an applied one, so the queue always moves.
//!
//! The store's calls are blocking, so the engine runs them on tokio's blocking threads.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::http::{ApiClient, ApiError};
use crate::store::{Store, StoreError};

/// The most mutations one push carries (the server accepts 1–500).
pub const PUSH_BATCH: usize = 500;

/// How many pulls one `sync_now` makes at most before it stops and reports (a safety net
/// against a server that keeps answering `more`; 2,000 pages of 1,000 rows is two million).
const MAX_PULLS: usize = 2_000;

/// The most GPS fixes one batch carries (the server takes 1–500).
const FIX_BATCH: usize = 500;

/// Fixes older than this are not sent (the server keeps a day; a little margin for the trip).
const FIX_MAX_AGE_HOURS: i64 = 23;

/// The `meta` key of the last successful round's time.
const LAST_SYNCED_AT: &str = "last_synced_at";

/// What went wrong in a sync round.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The local database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The server call failed.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The server's answers do not let the round go on (e.g. it decided none of a push).
    #[error("sync stalled: {0}")]
    Stalled(String),
    /// A blocking task died.
    #[error("sync task failed: {0}")]
    Task(String),
}

impl SyncError {
    /// Whether the next round may succeed without anybody doing anything.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Store(e) => e.is_retryable(),
            Self::Api(e) => e.is_retryable(),
            Self::Stalled(_) => true,
            Self::Task(_) => false,
        }
    }
}

/// What the apps show about sync.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncStatus {
    /// Whether the last round reached the server.
    pub online: bool,
    /// Mutations waiting for the server.
    pub pending: u64,
    /// When a round last finished.
    pub last_synced_at: Option<DateTime<Utc>>,
    /// The last round's error, in words, if it failed.
    pub last_error: Option<String>,
    /// Attachments (proof photos) still waiting to upload.
    pub pending_uploads: u64,
}

/// What one round did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Mutations the server applied.
    pub applied: usize,
    /// Mutations the server rejected (see [`Store::rejections`]).
    pub rejected: usize,
    /// Pull requests made.
    pub pulls: usize,
    /// Rows upserted or deleted locally.
    pub rows_changed: usize,
    /// Buckets whose checksum disagreed and were fetched again.
    pub refetched: usize,
    /// Attachments (proof photos) now complete on the server.
    pub uploaded: usize,
    /// Attachments that failed this round (tried again next round).
    pub upload_failures: usize,
    /// GPS fixes the server took this round (duplicates of earlier sends included).
    pub fixes_sent: usize,
}

/// Pushes and pulls for one store and one signed-in client.
#[derive(Debug)]
pub struct SyncEngine {
    store: Arc<Store>,
    api: Mutex<ApiClient>,
    pull_limit: Option<u32>,
    status: Mutex<SyncStatus>,
    round: tokio::sync::Mutex<()>,
}

impl SyncEngine {
    /// An engine over `store`, talking through `api` (signed in). The status starts from what
    /// the store knows: the pending count and the last successful round's time.
    pub fn new(store: Arc<Store>, api: ApiClient) -> Self {
        let status = SyncStatus {
            online: false,
            pending: store.pending_count().unwrap_or(0),
            last_synced_at: store
                .meta(LAST_SYNCED_AT)
                .ok()
                .flatten()
                .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| t.with_timezone(&Utc)),
            last_error: None,
            pending_uploads: store.pending_attachment_count().unwrap_or(0),
        };
        Self {
            store,
            api: Mutex::new(api),
            pull_limit: None,
            status: Mutex::new(status),
            round: tokio::sync::Mutex::new(()),
        }
    }

    /// Sets the rows asked per pull (the server's default when unset).
    #[must_use]
    pub fn with_pull_limit(mut self, limit: u32) -> Self {
        self.pull_limit = Some(limit);
        self
    }

    /// Replaces the access token (after a refresh or a new sign-in); the next request uses it.
    pub fn set_access_token(&self, token: Option<String>) {
        self.api
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .access_token = token;
    }

    /// The API client as it is now (cheap: reqwest's client is shared).
    pub fn api(&self) -> ApiClient {
        self.api.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The status as of the last round.
    pub fn status(&self) -> SyncStatus {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// One round: push every queued mutation (batches of [`PUSH_BATCH`]) and record the
    /// results, then pull until the server has nothing more, applying each answer atomically.
    /// Rounds never overlap: a second call waits for the first.
    ///
    /// # Errors
    /// [`SyncError`]; what was done before the failure stays done, and
    /// [`SyncEngine::status`] carries the error.
    pub async fn sync_now(&self) -> Result<SyncReport, SyncError> {
        let _round = self.round.lock().await;
        let outcome = self.round().await;
        // The log written by this round goes into the file now, between rounds, rather than
        // inside some later commit; a failure here is not the round's.
        let _ = self.blocking(|s| s.checkpoint()).await;
        let finished = crate::now();
        if outcome.is_ok() {
            // Kept so that the apps show it after a restart; a failure here is not the round's.
            let _ = self
                .blocking(move |s| s.set_meta(LAST_SYNCED_AT, &finished.to_rfc3339()))
                .await;
        }
        let pending = self.blocking(|s| s.pending_count()).await.ok();
        let uploads = self.blocking(|s| s.pending_attachment_count()).await.ok();
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(pending) = pending {
            status.pending = pending;
        }
        if let Some(uploads) = uploads {
            status.pending_uploads = uploads;
        }
        match &outcome {
            Ok(_) => {
                status.online = true;
                status.last_synced_at = Some(finished);
                status.last_error = None;
            }
            Err(e) => {
                status.online = !matches!(e, SyncError::Api(api) if api.is_offline());
                status.last_error = Some(e.to_string());
            }
        }
        outcome
    }

    async fn round(&self) -> Result<SyncReport, SyncError> {
        let mut report = SyncReport::default();
        let api = self.api();
        let client_id: Uuid = self.blocking(|s| s.client_id()).await?;
        loop {
            let batch = self.blocking(|s| s.pending(PUSH_BATCH)).await?;
            if batch.is_empty() {
                break;
            }
            let answer = api.push(client_id, batch).await?;
            let recorded = {
                let answer = answer.clone();
                self.blocking(move |s| s.record_results(&answer)).await?
            };
            report.applied += recorded.applied;
            report.rejected += recorded.rejected;
            if recorded.applied + recorded.rejected == 0 {
                return Err(SyncError::Stalled(format!(
                    "the server decided none of the pushed mutations (its last seq is {})",
                    answer.last_seq
                )));
            }
        }
        // Photos go after the mutations that name them (the server accepts a step whose
        // photo is still on its way) and before the pull; a failed upload is retried next
        // round and never holds back the download.
        let uploads = crate::attachments::upload_pending(&self.store, &api)
            .await
            .map_err(|e| match e {
                crate::attachments::AttachmentError::Store(e) => SyncError::Store(e),
                other => SyncError::Task(other.to_string()),
            })?;
        report.uploaded = uploads.completed;
        report.upload_failures = uploads.failed;
        let mut refetches = 0;
        loop {
            if report.pulls == MAX_PULLS {
                return Err(SyncError::Stalled(format!(
                    "still more to pull after {MAX_PULLS} pulls"
                )));
            }
            let cursors = self.blocking(|s| s.cursors()).await?;
            let answer = api.pull(&cursors, self.pull_limit).await?;
            report.pulls += 1;
            let more = answer.more;
            let applied = self.blocking(move |s| s.apply_pull(&answer)).await?;
            report.rows_changed += applied.upserted + applied.deleted;
            report.refetched += applied.mismatched.len();
            // A bucket that disagreed is fetched again now, a few times at most: a server that
            // keeps disagreeing is reported by the next round rather than looped on.
            let refetch = !applied.mismatched.is_empty() && refetches < 3;
            if refetch {
                refetches += 1;
            }
            if !more && !refetch {
                break;
            }
        }
        // GPS fixes go last: they never hold back the mutations or the download.
        report.fixes_sent = self.send_fixes(&api).await?;
        Ok(report)
    }

    /// Sends the kept GPS fixes in batches of 500, oldest first, and forgets each batch the
    /// server answered: taken (a resent fix is a duplicate there, not a second fix) or refused
    /// as implausible (it never will be taken: the queue moves on). Fixes older than the
    /// server keeps are dropped unsent.
    async fn send_fixes(&self, api: &ApiClient) -> Result<usize, SyncError> {
        let mut sent = 0;
        loop {
            let batch = self.blocking(|s| s.pending_fixes(FIX_BATCH)).await?;
            let Some(last) = batch.last().map(|f| u64::try_from(f.seq).unwrap_or(0)) else {
                return Ok(sent);
            };
            let oldest = crate::now() - chrono::Duration::hours(FIX_MAX_AGE_HOURS);
            let fresh: Vec<_> = batch
                .into_iter()
                .filter(|f| f.recorded_at > oldest)
                .collect();
            if !fresh.is_empty() {
                let device = self.blocking(|s| s.device_id()).await?;
                let count = fresh.len();
                match api.send_locations(&device, fresh).await {
                    Ok(_) => sent += count,
                    Err(ApiError::Problem { status: 422, .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            self.blocking(move |s| s.drop_fixes_through(last)).await?;
        }
    }

    async fn blocking<T, F>(&self, f: F) -> Result<T, SyncError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| SyncError::Task(e.to_string()))?
            .map_err(SyncError::Store)
    }
}

/// How retries after failed rounds are spaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay.
    pub base: Duration,
    /// The longest delay.
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(300),
        }
    }
}

impl Backoff {
    /// The delay before retry number `attempt` (0 for the first retry): `base · 2^attempt`
    /// capped at `cap`, of which the upper half is scaled by `jitter` (0.0–1.0, clamped) so
    /// that many devices coming back online together spread out, and no delay is shorter than
    /// half its step. Pure: the caller supplies the randomness ([`jitter`]).
    pub fn delay(self, attempt: u32, jitter: f64) -> Duration {
        let step = self
            .base
            .checked_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX))
            .unwrap_or(self.cap)
            .min(self.cap);
        let half = step / 2;
        let jitter = if jitter.is_nan() {
            0.0
        } else {
            jitter.clamp(0.0, 1.0)
        };
        half + half.mul_f64(jitter)
    }
}

/// A random number in 0.0–1.0 for [`Backoff::delay`] (from a random UUID's bits, so the crate
/// needs no random number generator of its own).
pub fn jitter() -> f64 {
    let bits = Uuid::new_v4().as_u128() as u64 >> 11;
    bits as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_jitters_within_the_upper_half() {
        let b = Backoff {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
        };
        assert_eq!(b.delay(0, 1.0), Duration::from_secs(1));
        assert_eq!(b.delay(0, 0.0), Duration::from_millis(500));
        assert_eq!(b.delay(3, 1.0), Duration::from_secs(8));
        assert_eq!(b.delay(3, 0.0), Duration::from_secs(4));
        assert_eq!(b.delay(3, 0.5), Duration::from_secs(6));
        assert_eq!(b.delay(6, 1.0), Duration::from_secs(60));
        for attempt in [7, 31, 32, 1_000, u32::MAX] {
            assert_eq!(b.delay(attempt, 1.0), Duration::from_secs(60), "{attempt}");
            assert_eq!(b.delay(attempt, 0.0), Duration::from_secs(30), "{attempt}");
        }
        // Out-of-range jitter is clamped, never longer than the cap nor shorter than half.
        assert_eq!(b.delay(10, 7.0), Duration::from_secs(60));
        assert_eq!(b.delay(10, -1.0), Duration::from_secs(30));
        assert_eq!(b.delay(10, f64::NAN), Duration::from_secs(30));
        let mut last = Duration::ZERO;
        for attempt in 0..20 {
            let d = b.delay(attempt, 1.0);
            assert!(d >= last && d <= b.cap);
            last = d;
        }
    }

    #[test]
    fn jitter_stays_in_range() {
        for _ in 0..1_000 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j), "{j}");
        }
    }

    #[test]
    fn a_huge_base_is_capped() {
        let b = Backoff {
            base: Duration::from_secs(u64::MAX / 2),
            cap: Duration::from_secs(10),
        };
        assert_eq!(b.delay(5, 1.0), Duration::from_secs(10));
    }
}
