//! The sync protocol's pure rules, shared by the server and every client (`../shared/design.md`
//! section 4): bucket names, cursors, row checksums and the mutation queue's sequence rule.
//!
//! # Buckets
//! A bucket is a named set of rows a principal may read; the server computes a principal's
//! buckets from its token and memberships, and a client never names a private bucket it was
//! not given. Names are `{kind}:{uuid}`: `cat:{business}` (a store's public catalog),
//! `biz:{business}` (a store's operations, for its staff: orders, active deliveries, dedicated
//! drivers, the team and the settings), `drv:{driver}` (a driver's offers, assignments and the
//! orders they reference, only while assigned), `cust:{customer}` (a customer's orders, cart
//! and saved addresses) and `adm:{nil uuid}` (the platform's overview for its admins: businesses
//! with their plan, drivers with their approval).
//!
//! # Versions and checksums
//! Each bucket has a version counter incremented inside the writing transaction, so versions
//! commit in order and a pull that has seen version `v` has seen every row written at or
//! before `v`. A bucket keeps the latest state of each row (or its tombstone) at the version
//! that last wrote it. A bucket's checksum is the sum, modulo 2³², of [`row_checksum`] over its
//! live rows (tombstones do not count); the server keeps it as rows change, the client keeps
//! the same sum over what it applied, and a mismatch after a complete pull means the client
//! must fetch that bucket again from zero.
//!
//! # Mutations
//! A client's writes are mutations with a dense per-client sequence number starting at 1. The
//! server applies sequence `last + 1` next; a sequence at or below `last` is a replay and gets
//! the stored result; one above `last + 1` is a gap the client must fill first
//! ([`SeqCheck`]). A rejected mutation still consumes its sequence number.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::permission::Actor;

/// The kinds of bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BucketKind {
    /// A store's public catalog (`cat:{business}`).
    Catalog,
    /// A store's operations, for its staff (`biz:{business}`).
    Business,
    /// A driver's work (`drv:{driver}`).
    Driver,
    /// A customer's orders, cart and addresses (`cust:{customer}`).
    Customer,
    /// The platform's overview for its admins (`adm:{nil uuid}`): businesses and drivers.
    Platform,
}

impl BucketKind {
    /// The name's prefix.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Catalog => "cat",
            Self::Business => "biz",
            Self::Driver => "drv",
            Self::Customer => "cust",
            Self::Platform => "adm",
        }
    }
}

/// A bucket's name: its kind and the id of whom it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bucket {
    /// What kind of bucket.
    pub kind: BucketKind,
    /// The business, driver or customer it belongs to.
    pub owner: Uuid,
}

impl Bucket {
    /// A store's public catalog.
    pub fn catalog(business: Uuid) -> Self {
        Self {
            kind: BucketKind::Catalog,
            owner: business,
        }
    }

    /// A store's operations.
    pub fn business(business: Uuid) -> Self {
        Self {
            kind: BucketKind::Business,
            owner: business,
        }
    }

    /// A driver's work.
    pub fn driver(driver: Uuid) -> Self {
        Self {
            kind: BucketKind::Driver,
            owner: driver,
        }
    }

    /// A customer's orders.
    pub fn customer(customer: Uuid) -> Self {
        Self {
            kind: BucketKind::Customer,
            owner: customer,
        }
    }

    /// The platform's overview (one bucket, owned by the nil id: the platform itself).
    pub fn platform() -> Self {
        Self {
            kind: BucketKind::Platform,
            owner: Uuid::nil(),
        }
    }
}

impl fmt::Display for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.prefix(), self.owner)
    }
}

/// The buckets `actor` may read: staff their business's catalog and operations, a customer its
/// store's catalog and its own orders, a driver its own work, an admin the platform's overview. The server
/// answers pulls for exactly these (its SQL twin `app_sync_buckets()` scopes the rows), and a
/// client knows from it which buckets to expect.
pub fn readable_buckets(actor: &Actor) -> Vec<Bucket> {
    match actor {
        Actor::Staff { business, .. } => {
            vec![Bucket::catalog(business.0), Bucket::business(business.0)]
        }
        Actor::Customer { customer, business } => {
            vec![Bucket::catalog(business.0), Bucket::customer(customer.0)]
        }
        Actor::Driver { user } => vec![Bucket::driver(user.0)],
        Actor::Admin { .. } => vec![Bucket::platform()],
    }
}

/// Why a bucket name or cursor list did not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    /// Not `{cat|biz|drv|cust|adm}:{uuid}`.
    #[error("unknown bucket {0:?}")]
    UnknownBucket(String),
    /// Not `bucket=version`, or a version that is not a non-negative integer.
    #[error("a cursor is bucket=version with a version of 0 or more, not {0:?}")]
    BadCursor(String),
    /// The same bucket twice.
    #[error("bucket {0} is named twice")]
    Duplicate(String),
    /// More buckets than any principal has.
    #[error("at most {MAX_CURSORS} cursors")]
    TooMany,
}

/// The most cursors one pull may carry.
pub const MAX_CURSORS: usize = 64;

impl FromStr for Bucket {
    type Err = CursorError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let unknown = || CursorError::UnknownBucket(raw.chars().take(80).collect());
        let (prefix, id) = raw.split_once(':').ok_or_else(unknown)?;
        let kind = [
            BucketKind::Catalog,
            BucketKind::Business,
            BucketKind::Driver,
            BucketKind::Customer,
            BucketKind::Platform,
        ]
        .into_iter()
        .find(|k| k.prefix() == prefix)
        .ok_or_else(unknown)?;
        let owner = Uuid::parse_str(id).map_err(|_| unknown())?;
        // Only the canonical hyphenated lower-case form names a bucket.
        if owner.to_string() != id {
            return Err(unknown());
        }
        Ok(Self { kind, owner })
    }
}

impl Serialize for Bucket {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Bucket {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

/// Parses a pull's cursor list, `bucket=version` pairs separated by commas (an empty string is
/// no cursors: a fresh client).
///
/// # Errors
/// [`CursorError`] for a malformed pair, an unknown bucket, a bucket named twice or too many.
pub fn parse_cursors(raw: &str) -> Result<Vec<(Bucket, u64)>, CursorError> {
    let mut out: Vec<(Bucket, u64)> = Vec::new();
    if raw.is_empty() {
        return Ok(out);
    }
    for pair in raw.split(',') {
        if out.len() == MAX_CURSORS {
            return Err(CursorError::TooMany);
        }
        let bad = || CursorError::BadCursor(pair.chars().take(100).collect());
        let (bucket, version) = pair.split_once('=').ok_or_else(bad)?;
        let bucket: Bucket = bucket.parse()?;
        if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let version: u64 = version.parse().map_err(|_| bad())?;
        if out.iter().any(|(b, _)| *b == bucket) {
            return Err(CursorError::Duplicate(bucket.to_string()));
        }
        out.push((bucket, version));
    }
    Ok(out)
}

/// Formats cursors the way [`parse_cursors`] reads them.
pub fn format_cursors(cursors: &[(Bucket, u64)]) -> String {
    cursors
        .iter()
        .map(|(b, v)| format!("{b}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// One row's contribution to its bucket's checksum: the first four bytes, big-endian, of
/// SHA-256 over `"{kind}:{id}:{version}"`. PostgreSQL computes the same with
/// `('x' || encode(substring(sha256(convert_to(kind || ':' || id || ':' || version, 'UTF8'))
/// from 1 for 4), 'hex'))::bit(32)::bigint`.
pub fn row_checksum(kind: &str, id: Uuid, version: u64) -> u32 {
    let digest = Sha256::digest(format!("{kind}:{id}:{version}").as_bytes());
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// Adds a row's checksum to a bucket's (modulo 2³²).
pub fn checksum_add(sum: u32, row: u32) -> u32 {
    sum.wrapping_add(row)
}

/// Takes a row's checksum out of a bucket's (modulo 2³²), when the row changes or is deleted.
pub fn checksum_remove(sum: u32, row: u32) -> u32 {
    sum.wrapping_sub(row)
}

/// What the server does with a pushed mutation's sequence number, given the last one it
/// applied for that client (0 before the first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeqCheck {
    /// The next one: apply it.
    Apply,
    /// Already applied (or rejected): answer the stored result.
    Replay,
    /// A gap: the client must send `expected` first.
    Gap {
        /// The sequence number the server waits for.
        expected: u64,
    },
}

/// Checks a pushed mutation's sequence number against the client's last one.
pub fn check_seq(last: u64, seq: u64) -> SeqCheck {
    if seq == 0 || seq <= last {
        SeqCheck::Replay
    } else if seq == last + 1 {
        SeqCheck::Apply
    } else {
        SeqCheck::Gap { expected: last + 1 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> Uuid {
        Uuid::parse_str("01a213b6-0d3a-76e7-b9b9-db9c9cb0303d").unwrap()
    }

    #[test]
    fn bucket_names_round_trip_and_only_canonical_ones_parse() {
        for b in [
            Bucket::catalog(id()),
            Bucket::business(id()),
            Bucket::driver(id()),
            Bucket::customer(id()),
            Bucket::platform(),
        ] {
            assert_eq!(b.to_string().parse::<Bucket>(), Ok(b));
        }
        assert_eq!(
            Bucket::platform().to_string(),
            "adm:00000000-0000-0000-0000-000000000000"
        );
        assert_eq!(
            Bucket::catalog(id()).to_string(),
            "cat:01a213b6-0d3a-76e7-b9b9-db9c9cb0303d"
        );
        for bad in [
            "",
            "cat",
            "cat:",
            "shop:01a213b6-0d3a-76e7-b9b9-db9c9cb0303d",
            "cat:01A213B6-0D3A-76E7-B9B9-DB9C9CB0303D",
            "cat:01a213b60d3a76e7b9b9db9c9cb0303d",
            "cat:not-a-uuid",
        ] {
            assert!(bad.parse::<Bucket>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn cursors_parse_strictly() {
        let a = Bucket::catalog(id());
        let b = Bucket::driver(id());
        let raw = format_cursors(&[(a, 0), (b, 42)]);
        assert_eq!(parse_cursors(&raw), Ok(vec![(a, 0), (b, 42)]));
        assert_eq!(parse_cursors(""), Ok(vec![]));
        for bad in [
            "cat:01a213b6-0d3a-76e7-b9b9-db9c9cb0303d",
            "cat:01a213b6-0d3a-76e7-b9b9-db9c9cb0303d=",
            "cat:01a213b6-0d3a-76e7-b9b9-db9c9cb0303d=-1",
            "cat:01a213b6-0d3a-76e7-b9b9-db9c9cb0303d=+1",
            "cat:01a213b6-0d3a-76e7-b9b9-db9c9cb0303d=99999999999999999999",
            ",",
        ] {
            assert!(parse_cursors(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_cursors(&format_cursors(&[(a, 1), (a, 2)])),
            Err(CursorError::Duplicate(a.to_string()))
        );
        let many: Vec<(Bucket, u64)> = (0..=MAX_CURSORS as u128)
            .map(|i| (Bucket::customer(Uuid::from_u128(i + 1)), 0))
            .collect();
        assert_eq!(
            parse_cursors(&format_cursors(&many)),
            Err(CursorError::TooMany)
        );
    }

    #[test]
    fn checksums_are_order_free_and_reversible() {
        let rows: Vec<u32> = (1..=50)
            .map(|v| row_checksum("product", Uuid::from_u128(v), v as u64))
            .collect();
        let forward = rows.iter().fold(0, |s, r| checksum_add(s, *r));
        let backward = rows.iter().rev().fold(0, |s, r| checksum_add(s, *r));
        assert_eq!(forward, backward);
        let without_last = checksum_remove(forward, rows[49]);
        assert_eq!(
            without_last,
            rows[..49].iter().fold(0, |s, r| checksum_add(s, *r))
        );
        // A changed version changes the row's contribution.
        assert_ne!(
            row_checksum("product", Uuid::from_u128(1), 1),
            row_checksum("product", Uuid::from_u128(1), 2)
        );
        // The documented SQL expression's input and output for one row.
        assert_eq!(
            row_checksum("product", Uuid::nil(), 7),
            u32::from_be_bytes({
                let d = Sha256::digest(b"product:00000000-0000-0000-0000-000000000000:7");
                [d[0], d[1], d[2], d[3]]
            })
        );
    }

    #[test]
    fn each_principal_reads_its_own_buckets() {
        use crate::id::{BusinessId, CustomerId, UserId};
        let shop = BusinessId(Uuid::from_u128(1));
        let person = Uuid::from_u128(2);
        assert_eq!(
            readable_buckets(&Actor::Staff {
                user: UserId(person),
                business: shop,
                permissions: Default::default(),
            }),
            [Bucket::catalog(shop.0), Bucket::business(shop.0)]
        );
        assert_eq!(
            readable_buckets(&Actor::Customer {
                customer: CustomerId(person),
                business: shop,
            }),
            [Bucket::catalog(shop.0), Bucket::customer(person)]
        );
        assert_eq!(
            readable_buckets(&Actor::Driver {
                user: UserId(person)
            }),
            [Bucket::driver(person)]
        );
        assert_eq!(
            readable_buckets(&Actor::Admin {
                user: UserId(person)
            }),
            [Bucket::platform()]
        );
    }

    #[test]
    fn sequence_numbers_are_dense() {
        assert_eq!(check_seq(0, 1), SeqCheck::Apply);
        assert_eq!(check_seq(5, 6), SeqCheck::Apply);
        assert_eq!(check_seq(5, 5), SeqCheck::Replay);
        assert_eq!(check_seq(5, 1), SeqCheck::Replay);
        assert_eq!(check_seq(5, 0), SeqCheck::Replay);
        assert_eq!(check_seq(5, 8), SeqCheck::Gap { expected: 6 });
    }
}
