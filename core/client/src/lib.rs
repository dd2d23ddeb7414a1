//! Fleetfront's offline-first client core (`../shared/design.md` section 4): the local SQLite
//! [`store`] (pulled rows by bucket, the outbox of mutations, their results), the typed
//! [`http`] client of the server's sync API and the [`engine`] that pushes and pulls.
//!
//! Reads come from the local store; writes are queued as mutations and reach the server on the
//! next [`engine::SyncEngine::sync_now`]. The wire protocol and its pure rules (cursors,
//! checksums, the dense sequence) live in `fleetfront_domain::sync` and
//! `fleetfront_domain::api::sync`, shared with the server.

#![forbid(unsafe_code)]

pub mod engine;
pub mod http;
pub mod store;

pub use engine::{Backoff, SyncEngine, SyncError, SyncReport, SyncStatus};
pub use http::{ApiClient, ApiError};
pub use store::{ApplyReport, RecordReport, Rejection, Store, StoreError};

/// The device's clock (chrono's `clock` feature is off workspace-wide; this is the one place the
/// client reads the time).
pub(crate) fn now() -> chrono::DateTime<chrono::Utc> {
    std::time::SystemTime::now().into()
}
