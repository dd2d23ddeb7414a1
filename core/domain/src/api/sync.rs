//! Sync protocol wire types: `GET /api/v1/sync/pull` and `POST /api/v1/sync/push` (rules in
//! [`crate::sync`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::sync::Bucket;

/// Query of `GET /api/v1/sync/pull`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[serde(deny_unknown_fields)]
pub struct PullQuery {
    /// The client's cursors, `bucket=version` pairs separated by commas
    /// ([`crate::sync::parse_cursors`]); absent or empty for a fresh client, which then
    /// starts every bucket it may read at 0.
    #[serde(default)]
    pub cursors: Option<String>,
    /// The most rows in the answer over all buckets (1–5,000; 1,000 by default).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// One row of a bucket as of the version that last wrote it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SyncRow {
    /// The row's kind (`product`, `variant`, `category`, `order`, `delivery`, `offer` …).
    pub kind: String,
    /// The row's id.
    pub id: Uuid,
    /// The bucket version that wrote this state.
    pub version: u64,
    /// The row's data; absent for a tombstone (the row left the bucket).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub data: Option<Value>,
}

/// One bucket's part of a pull.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BucketPage {
    /// The bucket.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "cat:01a213b6-0d3a-76e7-b9b9-db9c9cb0303d"))]
    pub bucket: Bucket,
    /// Drop every local row of this bucket before applying `rows` (the client's cursor was
    /// from before the bucket's history the server keeps, or the checksum disagreed).
    #[serde(default)]
    pub reset: bool,
    /// The rows changed after the client's cursor, in version order.
    pub rows: Vec<SyncRow>,
    /// The cursor to send next time, once these rows are applied.
    pub version: u64,
    /// Whether `version` is the bucket's head (nothing newer was left out).
    pub complete: bool,
    /// The bucket's checksum at `version` when `complete` ([`crate::sync`]); the client
    /// compares it with its own after applying the page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<u32>,
}

/// Answer of `GET /api/v1/sync/pull`: every bucket the principal may read, read in one
/// snapshot; the client applies the whole answer in one local transaction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PullResponse {
    /// The buckets with changes (a bucket the client is up to date with is left out).
    pub buckets: Vec<BucketPage>,
    /// Buckets the client sent a cursor for that the principal may no longer read: drop their
    /// rows (a driver unassigned from an order, a staff member who left).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub removed: Vec<Bucket>,
    /// Whether some bucket has more rows: pull again with the new cursors.
    pub more: bool,
}

/// One mutation a client queued.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Mutation {
    /// Dense per client, from 1.
    pub seq: u64,
    /// The mutation's own id (UUIDv7), the idempotency key of what it creates.
    pub id: Uuid,
    /// `name@version`, e.g. `order.accept@1`.
    pub name: String,
    /// The mutation's arguments.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub args: Value,
    /// When the user did it on the device (kept beside the server's time; reports use it).
    pub action_time: DateTime<Utc>,
}

/// Body of `POST /api/v1/sync/push`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PushRequest {
    /// The device's client id (one per installation and account).
    pub client_id: Uuid,
    /// Mutations in sequence order (1–500).
    pub mutations: Vec<Mutation>,
}

/// What became of a mutation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MutationStatus {
    /// Applied (a late event recorded as superseded counts as applied: nothing to undo).
    Applied,
    /// Refused by the rules: the client rolls it back and shows `message`.
    Rejected,
}

/// The stored result of one mutation (a replay answers the same).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MutationResult {
    /// The mutation's sequence number.
    pub seq: u64,
    /// The mutation's id.
    pub id: Uuid,
    /// Applied or rejected.
    pub status: MutationStatus,
    /// The stable error code of a rejection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Why, in words, for the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// What the mutation produced (e.g. the created order's id and number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub output: Option<Value>,
}

/// Answer of `POST /api/v1/sync/push`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PushResponse {
    /// One result per mutation sent, in order.
    pub results: Vec<MutationResult>,
    /// The last sequence number the server has for this client.
    pub last_seq: u64,
}
