//! The server side of offline-first sync (`../shared/design.md` section 4): which buckets a
//! principal reads, and the pull read over `sync_buckets`/`sync_rows` (migration 0022).
//!
//! Triggers on the mirrored tables (products, variants, categories, orders and their lines)
//! write the buckets through the `SECURITY DEFINER` `sync_publish`, inside the writing
//! transaction: it increments the bucket's version under the bucket's row lock, so versions
//! commit in order and without gaps, and a pull reading one snapshot never skips a row. The
//! runtime role may only read the sync tables, and a policy shows it only its principal's
//! buckets (`app_sync_buckets()`, the SQL twin of `fleetfront_domain::sync::readable_buckets`).
//!
//! Push (the mutation log) is in [`push`].

pub mod push;

use std::collections::HashMap;

use fleetfront_domain::api::sync::{BucketPage, PullResponse, SyncRow};
use fleetfront_domain::sync::{Bucket, CursorError};

use crate::db::Tx;
use crate::error::{Error, Result};

/// Rows in a pull when the client names no limit.
pub const DEFAULT_PULL_LIMIT: u32 = 1000;
/// The most rows one pull may ask for.
pub const MAX_PULL_LIMIT: u32 = 5000;

/// A parsed pull request: the cursors and the row budget.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pull {
    /// The client's cursors.
    pub cursors: Vec<(Bucket, u64)>,
    /// The most rows in the answer.
    pub limit: u32,
}

impl Pull {
    /// Parses the query's values.
    ///
    /// # Errors
    /// `validation_failed` naming `cursors` or `limit`.
    pub fn parse(cursors: Option<&str>, limit: Option<u32>) -> Result<Pull> {
        let cursors =
            fleetfront_domain::sync::parse_cursors(cursors.unwrap_or("")).map_err(|e| {
                let code = match e {
                    CursorError::UnknownBucket(_) => "unknown_bucket",
                    CursorError::BadCursor(_) => "invalid",
                    CursorError::Duplicate(_) => "duplicate",
                    CursorError::TooMany => "too_many",
                };
                Error::field("cursors", code, e.to_string())
            })?;
        let limit = limit.unwrap_or(DEFAULT_PULL_LIMIT);
        if !(1..=MAX_PULL_LIMIT).contains(&limit) {
            return Err(Error::field(
                "limit",
                "out_of_range",
                format!("limit is 1 to {MAX_PULL_LIMIT}"),
            ));
        }
        Ok(Pull { cursors, limit })
    }
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Reads a pull in `tx`, which must be a snapshot (`Db::begin_snapshot_as`) so that every
/// bucket is read at the same point in time. Buckets the client has a cursor for but may not
/// read are listed in `removed` (their rows are never read); buckets the client is up to date
/// with are left out. A cursor above a bucket's head (the bucket was rebuilt, or the cursor
/// came from elsewhere) restarts that bucket from 0 with `reset`. A pull from 0 leaves
/// tombstones out: the client has nothing to delete.
///
/// # Errors
/// Database errors.
pub async fn pull(tx: &mut Tx, readable: &[Bucket], req: &Pull) -> Result<PullResponse> {
    let mut removed: Vec<Bucket> = req
        .cursors
        .iter()
        .filter(|(b, _)| !readable.contains(b))
        .map(|(b, _)| *b)
        .collect();
    removed.sort();
    let names: Vec<String> = readable.iter().map(|b| b.to_string()).collect();
    let heads: HashMap<String, (i64, i64)> = sqlx::query_as::<_, (String, i64, i64)>(
        "SELECT bucket, version, checksum FROM sync_buckets WHERE bucket = ANY($1)",
    )
    .bind(&names)
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .map(|(b, v, c)| (b, (v, c)))
    .collect();
    let mut budget = i64::from(req.limit);
    let mut buckets = Vec::new();
    let mut more = false;
    for (bucket, name) in readable.iter().zip(&names) {
        let (head, checksum) = heads.get(name).copied().unwrap_or((0, 0));
        let head = to_u64(head);
        let checksum = u32::try_from(checksum).unwrap_or(0);
        let cursor = req
            .cursors
            .iter()
            .find(|(b, _)| b == bucket)
            .map_or(0, |(_, v)| *v);
        let reset = cursor > head;
        let after = if reset { 0 } else { cursor };
        if after == head {
            if reset {
                buckets.push(BucketPage {
                    bucket: *bucket,
                    reset,
                    rows: Vec::new(),
                    version: head,
                    complete: true,
                    checksum: Some(checksum),
                });
            }
            continue;
        }
        if budget == 0 {
            more = true;
            continue;
        }
        // One row more than the budget tells whether the page is complete.
        let mut rows: Vec<(String, uuid::Uuid, i64, Option<serde_json::Value>)> = sqlx::query_as(
            "SELECT kind, id, version, data FROM sync_rows \
              WHERE bucket = $1 AND version > $2 AND ($2 > 0 OR data IS NOT NULL) \
              ORDER BY version LIMIT $3",
        )
        .bind(name)
        .bind(i64::try_from(after).unwrap_or(i64::MAX))
        .bind(budget + 1)
        .fetch_all(&mut **tx)
        .await?;
        let complete = i64::try_from(rows.len()).unwrap_or(i64::MAX) <= budget;
        if !complete {
            rows.truncate(usize::try_from(budget).unwrap_or(0));
            more = true;
        }
        budget -= i64::try_from(rows.len()).unwrap_or(budget);
        let version = match (complete, rows.last()) {
            (false, Some(last)) => to_u64(last.2),
            _ => head,
        };
        buckets.push(BucketPage {
            bucket: *bucket,
            reset,
            rows: rows
                .into_iter()
                .map(|(kind, id, version, data)| SyncRow {
                    kind,
                    id,
                    version: to_u64(version),
                    data,
                })
                .collect(),
            version,
            complete,
            checksum: complete.then_some(checksum),
        });
    }
    Ok(PullResponse {
        buckets,
        removed,
        more,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_queries_parse() {
        assert_eq!(
            Pull::parse(None, None).ok().map(|p| p.limit),
            Some(DEFAULT_PULL_LIMIT)
        );
        assert!(Pull::parse(None, Some(0)).is_err());
        assert!(Pull::parse(None, Some(MAX_PULL_LIMIT + 1)).is_err());
        assert!(Pull::parse(Some("nope"), None).is_err());
        assert!(Pull::parse(Some(""), Some(MAX_PULL_LIMIT)).is_ok());
    }
}
