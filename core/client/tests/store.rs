//! The store against real files: pull semantics and checksums, atomicity, the outbox's dense
//! sequence across restarts, and schema upgrades that keep pending mutations.

#![allow(clippy::unwrap_used)] // A failed unwrap in a test is a failed test.

use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeZone, Utc};
use fleetfront_core::store::{Store, StoreError, SCHEMA_VERSION};
use fleetfront_domain::api::sync::{
    BucketPage, MutationResult, MutationStatus, PullResponse, PushResponse, SyncRow,
};
use fleetfront_domain::sync::{checksum_add, format_cursors, row_checksum, Bucket};
use serde_json::{json, Value};
use uuid::Uuid;

/// A scratch folder removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("fleetfront-core-{}", Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn db(&self) -> PathBuf {
        self.0.join("client.db")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 + n)
}

fn shop() -> Bucket {
    Bucket::catalog(id(1000))
}

fn ops() -> Bucket {
    Bucket::business(id(1000))
}

fn row(kind: &str, n: u128, version: u64, data: Option<Value>) -> SyncRow {
    SyncRow {
        kind: kind.to_owned(),
        id: id(n),
        version,
        data,
    }
}

fn page(bucket: Bucket, rows: Vec<SyncRow>, version: u64) -> BucketPage {
    BucketPage {
        bucket,
        reset: false,
        rows,
        version,
        complete: false,
        checksum: None,
    }
}

fn pull(buckets: Vec<BucketPage>) -> PullResponse {
    PullResponse {
        buckets,
        removed: vec![],
        more: false,
    }
}

/// The checksum the server keeps for these live rows.
fn expected(rows: &[(&str, u128, u64)]) -> u32 {
    rows.iter().fold(0, |s, (k, n, v)| {
        checksum_add(s, row_checksum(k, id(*n), *v))
    })
}

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap()
}

#[track_caller]
fn checksum_of(store: &Store, bucket: Bucket) -> (u64, u32) {
    store.buckets().unwrap()[&bucket]
}

#[test]
fn upserts_and_tombstones_keep_the_checksum_the_server_computes() {
    let dir = Scratch::new();
    let store = Store::open(dir.db()).unwrap();
    assert_eq!(store.cursors().unwrap(), "");

    let report = store
        .apply_pull(&pull(vec![page(
            shop(),
            vec![
                row("product", 1, 1, Some(json!({"name": "Tea"}))),
                row("product", 2, 2, Some(json!({"name": "Cake"}))),
                row("category", 3, 3, Some(json!({"name": "Drinks"}))),
            ],
            3,
        )]))
        .unwrap();
    assert_eq!(report.upserted, 3);
    assert_eq!(
        checksum_of(&store, shop()),
        (
            3,
            expected(&[("product", 1, 1), ("product", 2, 2), ("category", 3, 3)])
        )
    );
    assert_eq!(store.cursors().unwrap(), format_cursors(&[(shop(), 3)]));
    assert_eq!(
        store.rows("product").unwrap(),
        vec![
            (id(1), json!({"name": "Tea"})),
            (id(2), json!({"name": "Cake"}))
        ]
    );

    // Tea changes, Cake leaves; the server's checksum at 5 agrees with ours.
    let mut next = page(
        shop(),
        vec![
            row("product", 1, 4, Some(json!({"name": "Green tea"}))),
            row("product", 2, 5, None),
        ],
        5,
    );
    next.complete = true;
    next.checksum = Some(expected(&[("product", 1, 4), ("category", 3, 3)]));
    let report = store.apply_pull(&pull(vec![next])).unwrap();
    assert_eq!((report.upserted, report.deleted), (1, 1));
    assert!(report.mismatched.is_empty());
    assert_eq!(
        checksum_of(&store, shop()),
        (5, expected(&[("product", 1, 4), ("category", 3, 3)]))
    );
    assert_eq!(
        store.row("product", id(1)).unwrap(),
        Some(json!({"name": "Green tea"}))
    );
    assert_eq!(store.row("product", id(2)).unwrap(), None);

    // A tombstone for a row we never had, and the same page applied twice, change nothing.
    let replay = pull(vec![page(
        shop(),
        vec![
            row("product", 9, 5, None),
            row("product", 1, 4, Some(json!({"name": "Green tea"}))),
        ],
        5,
    )]);
    store.apply_pull(&replay).unwrap();
    store.apply_pull(&replay).unwrap();
    assert_eq!(
        checksum_of(&store, shop()),
        (5, expected(&[("product", 1, 4), ("category", 3, 3)]))
    );
}

#[test]
fn reset_replaces_a_bucket_and_removed_drops_it() {
    let dir = Scratch::new();
    let store = Store::open(dir.db()).unwrap();
    store
        .apply_pull(&pull(vec![
            page(
                shop(),
                vec![
                    row("product", 1, 1, Some(json!(1))),
                    row("product", 2, 2, Some(json!(2))),
                ],
                2,
            ),
            page(ops(), vec![row("order", 7, 1, Some(json!({"n": 7})))], 1),
        ]))
        .unwrap();

    let mut reset = page(shop(), vec![row("product", 3, 9, Some(json!(3)))], 9);
    reset.reset = true;
    let report = store
        .apply_pull(&PullResponse {
            buckets: vec![reset],
            removed: vec![ops()],
            more: false,
        })
        .unwrap();
    assert_eq!(report.reset, vec![shop()]);
    assert_eq!(report.removed, vec![ops()]);
    assert_eq!(store.rows("product").unwrap(), vec![(id(3), json!(3))]);
    assert_eq!(
        checksum_of(&store, shop()),
        (9, expected(&[("product", 3, 9)]))
    );
    assert_eq!(store.rows("order").unwrap(), vec![]);
    assert_eq!(store.cursors().unwrap(), format_cursors(&[(shop(), 9)]));
}

#[test]
fn a_row_in_two_buckets_reads_once_and_leaves_with_its_last_bucket() {
    let dir = Scratch::new();
    let store = Store::open(dir.db()).unwrap();
    let driver = Bucket::driver(id(2000));
    store
        .apply_pull(&pull(vec![
            page(ops(), vec![row("order", 7, 1, Some(json!({"n": 7})))], 1),
            page(driver, vec![row("order", 7, 4, Some(json!({"n": 7})))], 4),
        ]))
        .unwrap();
    assert_eq!(store.rows("order").unwrap().len(), 1);
    // Unassigned: the driver's bucket loses the order, the store's still has it.
    store
        .apply_pull(&pull(vec![page(driver, vec![row("order", 7, 5, None)], 5)]))
        .unwrap();
    assert_eq!(store.rows("order").unwrap().len(), 1);
    assert_eq!(checksum_of(&store, driver), (5, 0));
}

#[test]
fn a_checksum_mismatch_sends_the_bucket_back_to_zero_and_keeps_rows_until_the_refetch() {
    let dir = Scratch::new();
    let store = Store::open(dir.db()).unwrap();
    let mut first = page(
        shop(),
        vec![
            row("product", 1, 1, Some(json!(1))),
            row("product", 2, 2, Some(json!(2))),
        ],
        2,
    );
    first.complete = true;
    // The server also has product 5, which we never received.
    first.checksum = Some(expected(&[
        ("product", 1, 1),
        ("product", 2, 2),
        ("product", 5, 2),
    ]));
    let report = store.apply_pull(&pull(vec![first])).unwrap();
    assert_eq!(report.mismatched, vec![shop()]);
    assert_eq!(store.cursors().unwrap(), format_cursors(&[(shop(), 0)]));
    assert_eq!(
        store.rows("product").unwrap().len(),
        2,
        "rows stay visible meanwhile"
    );

    // The refetch from 0 replaces the bucket's rows even without a reset flag.
    let mut again = page(
        shop(),
        vec![
            row("product", 2, 2, Some(json!(2))),
            row("product", 5, 2, Some(json!(5))),
        ],
        2,
    );
    again.complete = true;
    again.checksum = Some(expected(&[("product", 2, 2), ("product", 5, 2)]));
    let report = store.apply_pull(&pull(vec![again])).unwrap();
    assert_eq!(report.reset, vec![shop()]);
    assert!(report.mismatched.is_empty());
    assert_eq!(
        store
            .rows("product")
            .unwrap()
            .iter()
            .map(|(i, _)| *i)
            .collect::<Vec<_>>(),
        vec![id(2), id(5)]
    );
    assert_eq!(store.cursors().unwrap(), format_cursors(&[(shop(), 2)]));
}

#[test]
fn a_bad_page_leaves_nothing_half_applied() {
    let dir = Scratch::new();
    let store = Store::open(dir.db()).unwrap();
    store
        .apply_pull(&pull(vec![page(
            shop(),
            vec![row("product", 1, 1, Some(json!(1)))],
            1,
        )]))
        .unwrap();
    let before = (
        store.cursors().unwrap(),
        store.buckets().unwrap(),
        store.rows("product").unwrap(),
    );

    // The first page is fine; the second carries a row newer than its page.
    let mut bad = pull(vec![
        page(
            shop(),
            vec![
                row("product", 1, 2, None),
                row("product", 4, 3, Some(json!(4))),
            ],
            3,
        ),
        page(
            ops(),
            vec![
                row("order", 7, 1, Some(json!(7))),
                row("order", 8, 9, Some(json!(8))),
            ],
            2,
        ),
    ]);
    bad.removed = vec![];
    let err = store.apply_pull(&bad).unwrap_err();
    assert!(matches!(err, StoreError::Protocol(_)), "{err}");
    assert_eq!(
        (
            store.cursors().unwrap(),
            store.buckets().unwrap(),
            store.rows("product").unwrap()
        ),
        before
    );
    assert_eq!(store.rows("order").unwrap(), vec![]);

    // A cursor moving back without a reset is refused the same way.
    let back = pull(vec![page(shop(), vec![], 0)]);
    assert!(matches!(
        store.apply_pull(&back),
        Err(StoreError::Protocol(_))
    ));
    assert_eq!(store.cursors().unwrap(), before.0);
}

fn decided(m: &fleetfront_domain::api::sync::Mutation, status: MutationStatus) -> MutationResult {
    MutationResult {
        seq: m.seq,
        id: m.id,
        status,
        code: (status == MutationStatus::Rejected).then(|| "out_of_stock".to_owned()),
        message: (status == MutationStatus::Rejected).then(|| "The last cake was sold".to_owned()),
        output: (status == MutationStatus::Applied).then(|| json!({"order": 1})),
    }
}

#[test]
fn the_outbox_sequence_stays_dense_across_restarts_and_decisions() {
    let dir = Scratch::new();
    let (a, b, c) = {
        let store = Store::open(dir.db()).unwrap();
        let a = store
            .enqueue("order.create@1", json!({"lines": 1}), at(1))
            .unwrap();
        let b = store
            .enqueue("order.create@1", json!({"lines": 2}), at(2))
            .unwrap();
        let c = store.enqueue("order.accept@1", json!({}), at(3)).unwrap();
        (a, b, c)
    };
    assert_eq!((a.seq, b.seq, c.seq), (1, 2, 3));
    assert!(a.id < b.id && b.id < c.id, "UUIDv7 ids grow");

    let store = Store::open(dir.db()).unwrap();
    assert_eq!(
        store.pending(10).unwrap(),
        vec![a.clone(), b.clone(), c.clone()]
    );
    assert_eq!(store.pending(2).unwrap(), vec![a.clone(), b.clone()]);
    let report = store
        .record_results(&PushResponse {
            results: vec![
                decided(&a, MutationStatus::Applied),
                decided(&b, MutationStatus::Rejected),
            ],
            last_seq: 2,
        })
        .unwrap();
    assert_eq!((report.applied, report.rejected), (1, 1));
    assert_eq!(store.pending(10).unwrap(), vec![c.clone()]);
    let rejections = store.rejections().unwrap();
    assert_eq!(rejections.len(), 1);
    assert_eq!(
        (rejections[0].seq, rejections[0].message.as_str()),
        (2, "The last cake was sold")
    );
    assert_eq!(rejections[0].code.as_deref(), Some("out_of_stock"));

    // The same answer again (a retried push) records nothing twice.
    let again = store
        .record_results(&PushResponse {
            results: vec![decided(&a, MutationStatus::Applied)],
            last_seq: 2,
        })
        .unwrap();
    assert_eq!(again.already_recorded, 1);

    // A result naming another mutation at our seq is refused whole.
    let mut wrong = decided(&c, MutationStatus::Applied);
    wrong.id = Uuid::now_v7();
    assert!(matches!(
        store.record_results(&PushResponse {
            results: vec![wrong],
            last_seq: 3
        }),
        Err(StoreError::Protocol(_))
    ));
    assert_eq!(store.pending_count().unwrap(), 1);

    // With the outbox empty the next seq still follows the log.
    store
        .record_results(&PushResponse {
            results: vec![decided(&c, MutationStatus::Applied)],
            last_seq: 3,
        })
        .unwrap();
    assert_eq!(store.pending_count().unwrap(), 0);
    drop(store);
    let store = Store::open(dir.db()).unwrap();
    let d = store.enqueue("order.ready@1", json!({}), at(4)).unwrap();
    assert_eq!(d.seq, 4);
}

#[test]
fn the_client_id_is_made_once() {
    let dir = Scratch::new();
    let first = Store::open(dir.db()).unwrap().client_id().unwrap();
    let store = Store::open(dir.db()).unwrap();
    assert_eq!(store.client_id().unwrap(), first);
    store.set_meta("server_url", "https://a.example").unwrap();
    store.set_meta("server_url", "https://b.example").unwrap();
    assert_eq!(
        store.meta("server_url").unwrap().as_deref(),
        Some("https://b.example")
    );
    store.delete_meta("server_url").unwrap();
    assert_eq!(store.meta("server_url").unwrap(), None);
}

/// Schema version 1 exactly as it shipped; never change this copy when migrations change.
const SCHEMA_V1: &str = "
    CREATE TABLE sync_buckets (bucket TEXT PRIMARY KEY NOT NULL, version INTEGER NOT NULL,
        checksum INTEGER NOT NULL) STRICT;
    CREATE TABLE sync_rows (bucket TEXT NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL,
        version INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (bucket, kind, id))
        STRICT, WITHOUT ROWID;
    CREATE TABLE outbox (seq INTEGER PRIMARY KEY NOT NULL, id TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL, args TEXT NOT NULL, action_time TEXT NOT NULL) STRICT;
    CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) STRICT;
    PRAGMA user_version = 1;";

fn make_v1(path: &Path, pending: &[(i64, Uuid)]) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(SCHEMA_V1).unwrap();
    for (seq, id) in pending {
        conn.execute(
            "INSERT INTO outbox (seq, id, name, args, action_time) VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![
                seq,
                id.to_string(),
                "cash.collect@1",
                r#"{"minor":1250}"#,
                at(*seq).to_rfc3339()
            ],
        )
        .unwrap();
    }
    conn.execute(
        "INSERT INTO sync_buckets (bucket, version, checksum) VALUES (?1, 7, ?2)",
        rusqlite::params![
            shop().to_string(),
            i64::from(expected(&[("product", 1, 7)]))
        ],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO sync_rows (bucket, kind, id, version, data) VALUES (?1, 'product', ?2, 7, '1')",
        rusqlite::params![shop().to_string(), id(1).to_string()],
    )
    .unwrap();
}

#[test]
fn an_upgrade_from_schema_1_keeps_pending_mutations_and_cursors() {
    let dir = Scratch::new();
    let pending = [(1, Uuid::now_v7()), (2, Uuid::now_v7())];
    make_v1(&dir.db(), &pending);

    let store = Store::open(dir.db()).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    let queued = store.pending(10).unwrap();
    assert_eq!(
        queued.iter().map(|m| (m.seq, m.id)).collect::<Vec<_>>(),
        pending
            .iter()
            .map(|(s, i)| (*s as u64, *i))
            .collect::<Vec<_>>()
    );
    assert_eq!(queued[0].args, json!({"minor": 1250}));
    assert_eq!(queued[0].action_time, at(1));
    assert_eq!(store.cursors().unwrap(), format_cursors(&[(shop(), 7)]));
    assert_eq!(
        store
            .enqueue("cash.collect@1", json!({}), at(3))
            .unwrap()
            .seq,
        3
    );
    // The migrated bucket keeps applying incrementally.
    store
        .apply_pull(&pull(vec![page(
            shop(),
            vec![row("product", 1, 8, Some(json!(2)))],
            8,
        )]))
        .unwrap();
    assert_eq!(
        checksum_of(&store, shop()),
        (8, expected(&[("product", 1, 8)]))
    );
    drop(store);
    // Opening an up-to-date file again migrates nothing.
    assert_eq!(Store::open(dir.db()).unwrap().pending_count().unwrap(), 3);
}

#[test]
fn a_file_from_a_newer_build_is_refused_untouched() {
    let dir = Scratch::new();
    {
        let conn = rusqlite::Connection::open(dir.db()).unwrap();
        conn.execute_batch("CREATE TABLE future (x); PRAGMA user_version = 99;")
            .unwrap();
    }
    assert!(matches!(
        Store::open(dir.db()),
        Err(StoreError::TooNew { found: 99, .. })
    ));
}

#[test]
fn reads_go_on_while_a_large_pull_is_applied() {
    let dir = Scratch::new();
    let store = std::sync::Arc::new(Store::open(dir.db()).unwrap());
    store
        .apply_pull(&pull(vec![page(
            ops(),
            vec![row("order", 1, 1, Some(json!(1)))],
            1,
        )]))
        .unwrap();
    let rows: Vec<SyncRow> = (1..=5_000u64)
        .map(|n| row("product", u128::from(n), n, Some(json!({"n": n}))))
        .collect();
    let big = pull(vec![page(shop(), rows, 5_000)]);
    let writer = {
        let store = std::sync::Arc::clone(&store);
        std::thread::spawn(move || store.apply_pull(&big).map(|r| r.upserted))
    };
    // Every read sees either none or all of the pull, and none fails with a lock error.
    let mut reads = 0;
    while !writer.is_finished() || reads == 0 {
        let products = store.rows("product").unwrap().len();
        assert!(products == 0 || products == 5_000, "{products}");
        assert_eq!(store.rows("order").unwrap().len(), 1);
        reads += 1;
    }
    assert_eq!(writer.join().unwrap().unwrap(), 5_000);
    assert_eq!(store.rows("product").unwrap().len(), 5_000);
}
