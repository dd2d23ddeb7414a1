//! Fleetfront's offline-first client core (`../shared/design.md` section 4). Apps call the
//! [`api::Client`] facade: sign-in, reads from the local SQLite [`store`], mutations that
//! [`local`] applies at once with the domain's rules and queues for the server, the sync
//! [`engine`] (push, [`attachments`] upload, pull) and its status.
//!
//! Reads come from the local store (pulled rows with pending intent on top); writes reach the
//! server on the next round. The wire protocol and its pure rules (cursors, checksums, the
//! dense sequence, the mutations' arguments) live in `fleetfront_domain::sync` and
//! `fleetfront_domain::api::{sync, mutations}`, shared with the server.

#![forbid(unsafe_code)]

pub mod api;
pub mod attachments;
pub mod engine;
pub mod http;
pub mod local;
pub mod store;

pub use api::{Background, Client, ClientError};
pub use engine::{Backoff, SyncEngine, SyncError, SyncReport, SyncStatus};
pub use http::{ApiClient, ApiError};
pub use store::{ApplyReport, RecordReport, Rejection, Store, StoreError};

/// The device's clock (chrono's `clock` feature is off workspace-wide; this is the one place the
/// client reads the time).
pub(crate) fn now() -> chrono::DateTime<chrono::Utc> {
    std::time::SystemTime::now().into()
}
