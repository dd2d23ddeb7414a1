//! Measures the local apply of an initial pull of 10,000 catalog rows into an empty,
//! file-backed store, and of one changed row on top of them.
//!
//! `cargo run --release -p fleetfront-core --example apply_10k` (the formal benchmark is the
//! load command's sync suite).

use std::time::Instant;

use fleetfront_core::Store;
use fleetfront_domain::api::sync::{BucketPage, PullResponse, SyncRow};
use fleetfront_domain::sync::Bucket;
use serde_json::json;
use uuid::Uuid;

fn main() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("fleetfront-apply-{}", Uuid::now_v7()));
    std::fs::create_dir_all(&dir)?;
    let bucket = Bucket::catalog(Uuid::from_u128(1));
    let rows: Vec<SyncRow> = (1..=10_000u64)
        .map(|n| SyncRow {
            kind: "product".to_owned(),
            id: Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 + u128::from(n)),
            version: n,
            data: Some(json!({
                "name": format!("Product {n}"),
                "sku": format!("SKU-{n:06}"),
                "price": {"minor": 199 + n % 1000, "currency": "EUR"},
                "category_id": Uuid::from_u128(u128::from(n % 40)),
                "available": n % 17 != 0,
                "description": "A plain product description of a realistic length for a shop.",
            })),
        })
        .collect();
    let bytes = serde_json::to_vec(&rows)?.len();
    let initial = PullResponse {
        buckets: vec![BucketPage {
            bucket,
            reset: false,
            rows,
            version: 10_000,
            complete: true,
            checksum: None,
        }],
        removed: vec![],
        more: false,
    };

    let mut best = f64::MAX;
    for round in 0..5 {
        let store = Store::open(dir.join(format!("round{round}.db")))?;
        let started = Instant::now();
        let report = store.apply_pull(&initial)?;
        let ms = started.elapsed().as_secs_f64() * 1e3;
        best = best.min(ms);
        println!(
            "round {round}: applied {} rows in {ms:.1} ms",
            report.upserted
        );
    }
    println!("initial apply of 10,000 rows ({bytes} bytes of rows as JSON): best {best:.1} ms");

    // The CPU part that is not SQLite: encoding each row's JSON and its checksum.
    let started = Instant::now();
    let mut sink = 0usize;
    for row in &initial.buckets[0].rows {
        sink += row.data.as_ref().map_or(0, |d| d.to_string().len());
        sink += fleetfront_domain::sync::row_checksum(&row.kind, row.id, row.version) as usize % 2;
        sink += row.id.to_string().len();
    }
    println!(
        "of which JSON encoding, ids and checksums: {:.1} ms ({sink})",
        started.elapsed().as_secs_f64() * 1e3
    );

    let store = Store::open(dir.join("round0.db"))?;
    let one = PullResponse {
        buckets: vec![BucketPage {
            bucket,
            reset: false,
            rows: vec![SyncRow {
                version: 10_001,
                data: Some(json!({"name": "Renamed"})),
                ..initial.buckets[0].rows[4_999].clone()
            }],
            version: 10_001,
            complete: false,
            checksum: None,
        }],
        removed: vec![],
        more: false,
    };
    let started = Instant::now();
    store.apply_pull(&one)?;
    println!(
        "one changed row over 10,000: {:.2} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
