//! Drivers' live locations through HTTP on a real PostgreSQL: a batch is visible at once to the
//! admin's nearest-drivers read, written to `driver_locations` by the flusher, deduplicated by
//! device and sequence, refused whole when any fix is impossible, refused for pending drivers
//! and other kinds of accounts, and restored after a restart.

#![allow(clippy::unwrap_used)] // A failed unwrap in a test is a failed test.

mod common;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use chrono::{DateTime, Utc};
use common::{TestApp, PASSWORD};
use fleetfront_domain::UserId;
use serde_json::{json, Value};
use uuid::Uuid;

const INGEST: &str = "/api/v1/driver/location";

/// Registers a driver; returns (id, access token). Pending until approved.
async fn register_driver(t: &TestApp, name: &str) -> (Uuid, String) {
    let body = t
        .send(
            Method::POST,
            "/api/v1/auth/driver/register",
            None,
            Some(json!({
                "email": format!("{name}-{}@drivers.test", Uuid::new_v4().simple()),
                "password": PASSWORD,
                "full_name": name,
                "phone": "+358401234567",
            })),
        )
        .await
        .expect(StatusCode::CREATED);
    let id = Uuid::parse_str(body["principal"]["id"].as_str().unwrap()).unwrap();
    (id, body["access_token"].as_str().unwrap().to_owned())
}

/// Approves a driver the way an admin's approval does: the account becomes active.
async fn approve(t: &TestApp, driver: Uuid) {
    sqlx::query("UPDATE users SET status = 'active' WHERE id = $1")
        .bind(driver)
        .execute(&t.db.pools.owner)
        .await
        .unwrap();
}

async fn approved_driver(t: &TestApp, name: &str) -> (Uuid, String) {
    let (id, token) = register_driver(t, name).await;
    approve(t, id).await;
    (id, token)
}

fn fix(seq: i64, latitude: f64, longitude: f64, recorded_at: DateTime<Utc>) -> Value {
    json!({
        "latitude": latitude,
        "longitude": longitude,
        "accuracy_m": 8.0,
        "heading_deg": 90.0,
        "speed_mps": 6.5,
        "recorded_at": recorded_at,
        "seq": seq,
    })
}

/// Three fixes a few seconds apart around (lat, lon), seq `first..first+3`.
fn batch(device: &str, first: i64, lat: f64, lon: f64) -> Value {
    let now = Utc::now();
    let fixes: Vec<Value> = (0..3)
        .map(|i| {
            fix(
                first + i,
                lat + 0.0001 * i as f64,
                lon,
                now - chrono::Duration::seconds(10 - 3 * i),
            )
        })
        .collect();
    json!({"device_id": device, "fixes": fixes})
}

async fn stored_rows(t: &TestApp, driver: Uuid) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM driver_locations WHERE driver_id = $1")
        .bind(driver)
        .fetch_one(&t.db.pools.owner)
        .await
        .unwrap()
}

/// Waits until the driver has `expected` stored rows (the flusher writes within ~250 ms).
async fn wait_for_rows(t: &TestApp, driver: Uuid, expected: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let n = stored_rows(t, driver).await;
        if n == expected {
            return;
        }
        assert!(
            n < expected && tokio::time::Instant::now() < deadline,
            "expected {expected} stored rows, found {n}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn nearest(t: &TestApp, admin: &str, lat: f64, lon: f64) -> Vec<Value> {
    t.send(
        Method::GET,
        &format!("/api/v1/admin/drivers/locations?near={lat},{lon}&k=5"),
        Some(admin),
        None,
    )
    .await
    .expect(StatusCode::OK)["drivers"]
        .as_array()
        .unwrap()
        .clone()
}

/// An app over a fresh database with its location flusher running.
async fn start() -> TestApp {
    let t = TestApp::new().await;
    t.app.locations.spawn_flusher(t.app.db.clone()).unwrap();
    t
}

#[tokio::test]
async fn a_batch_is_visible_at_once_persisted_and_deduplicated() {
    let t = start().await;
    let admin = t.admin_token().await;
    let (driver, token) = approved_driver(&t, "Ada").await;
    let (other, other_token) = approved_driver(&t, "Bo").await;

    let reply = t
        .send(
            Method::POST,
            INGEST,
            Some(&token),
            Some(batch("phone-1", 1, 60.1700, 24.9400)),
        )
        .await
        .expect(StatusCode::ACCEPTED);
    assert_eq!(reply, json!({"accepted": 3, "duplicates": 0}));
    t.send(
        Method::POST,
        INGEST,
        Some(&other_token),
        Some(batch("phone-9", 1, 60.1800, 24.9400)),
    )
    .await
    .expect(StatusCode::ACCEPTED);

    // Visible as soon as the request answered: nearest first, with the newest fix.
    let found = nearest(&t, &admin, 60.1702, 24.9400).await;
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0]["driver_id"], driver.to_string());
    assert!(found[0]["distance_m"].as_u64().unwrap() <= 1, "{found:?}");
    assert_eq!(found[0]["live"], true);
    assert_eq!(found[1]["driver_id"], other.to_string());
    assert!((1_000..1_200).contains(&found[1]["distance_m"].as_u64().unwrap()));

    // Written by the flusher.
    wait_for_rows(&t, driver, 3).await;
    wait_for_rows(&t, other, 3).await;

    // The same batch again is acknowledged and ignored; an overlapping one adds what is new.
    let again = t
        .send(
            Method::POST,
            INGEST,
            Some(&token),
            Some(batch("phone-1", 1, 60.1700, 24.9400)),
        )
        .await
        .expect(StatusCode::ACCEPTED);
    assert_eq!(again, json!({"accepted": 0, "duplicates": 3}));
    let overlap = t
        .send(
            Method::POST,
            INGEST,
            Some(&token),
            Some(batch("phone-1", 3, 60.1700, 24.9400)),
        )
        .await
        .expect(StatusCode::ACCEPTED);
    assert_eq!(overlap, json!({"accepted": 2, "duplicates": 1}));
    // Another device of the same driver numbers its own fixes.
    let tablet = t
        .send(
            Method::POST,
            INGEST,
            Some(&token),
            Some(batch("tablet", 1, 60.1700, 24.9400)),
        )
        .await
        .expect(StatusCode::ACCEPTED);
    assert_eq!(tablet, json!({"accepted": 3, "duplicates": 0}));
    wait_for_rows(&t, driver, 8).await;
    let stored: (f64, f64, String) = sqlx::query_as(
        "SELECT latitude, accuracy_m, device_id FROM driver_locations WHERE driver_id = $1 AND seq = 1 AND device_id = 'phone-1'",
    )
    .bind(driver)
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(stored, (60.17, 8.0, "phone-1".to_owned()));
}

#[tokio::test]
async fn an_impossible_fix_refuses_the_whole_batch() {
    let t = start().await;
    let admin = t.admin_token().await;
    let (driver, token) = approved_driver(&t, "Cy").await;
    let mut body = batch("phone-1", 1, 60.17, 24.94);
    body["fixes"][1]["latitude"] = json!(91.0);
    body["fixes"][2]["speed_mps"] = json!(250.0);
    let reply = t.send(Method::POST, INGEST, Some(&token), Some(body)).await;
    reply.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let fields: Vec<&str> = reply.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["fixes[1].latitude", "fixes[2].speed_mps"]);

    // Null island, a fix from the future, seq going backwards, and a teleport.
    let now = Utc::now();
    let cases = [
        vec![fix(1, 0.0, 0.0, now)],
        vec![fix(1, 60.17, 24.94, now + chrono::Duration::minutes(5))],
        vec![fix(2, 60.17, 24.94, now), fix(1, 60.17, 24.94, now)],
        vec![
            fix(1, 60.17, 24.94, now - chrono::Duration::seconds(1)),
            fix(2, 60.27, 24.94, now),
        ],
    ];
    for fixes in cases {
        let reply = t
            .send(
                Method::POST,
                INGEST,
                Some(&token),
                Some(json!({"device_id": "phone-1", "fixes": fixes})),
            )
            .await;
        reply.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    }
    let empty = t
        .send(
            Method::POST,
            INGEST,
            Some(&token),
            Some(json!({"device_id": "phone-1", "fixes": []})),
        )
        .await;
    empty.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");

    // Nothing recorded in memory...
    assert!(t.app.locations.store.latest(UserId(driver)).is_none());
    assert!(nearest(&t, &admin, 60.17, 24.94).await.is_empty());
    // ...nor queued: a valid batch sent afterwards is all that reaches the table, and its
    // sequence numbers (which the refused batches used too) are new.
    let ok = t
        .send(
            Method::POST,
            INGEST,
            Some(&token),
            Some(batch("phone-1", 1, 60.17, 24.94)),
        )
        .await
        .expect(StatusCode::ACCEPTED);
    assert_eq!(ok, json!({"accepted": 3, "duplicates": 0}));
    wait_for_rows(&t, driver, 3).await;
}

#[tokio::test]
async fn only_approved_drivers_send_locations() {
    let t = start().await;
    let admin = t.admin_token().await;
    let (pending, pending_token) = register_driver(&t, "Pending").await;
    let body = batch("phone-1", 1, 60.17, 24.94);

    let reply = t
        .send(
            Method::POST,
            INGEST,
            Some(&pending_token),
            Some(body.clone()),
        )
        .await;
    reply.expect_problem(StatusCode::FORBIDDEN, "account_inactive");
    assert!(t.app.locations.store.latest(UserId(pending)).is_none());

    // Other kinds of accounts: an admin, a business's staff, nobody.
    let (_, owner) = t.business(&admin, "locshop", "starter").await;
    for token in [&admin, &owner] {
        let reply = t
            .send(Method::POST, INGEST, Some(token), Some(body.clone()))
            .await;
        reply.expect_problem(StatusCode::FORBIDDEN, "forbidden");
    }
    let reply = t.send(Method::POST, INGEST, None, Some(body.clone())).await;
    reply.expect_problem(StatusCode::UNAUTHORIZED, "unauthenticated");

    // Once approved, the same token works.
    approve(&t, pending).await;
    t.send(Method::POST, INGEST, Some(&pending_token), Some(body))
        .await
        .expect(StatusCode::ACCEPTED);

    // The nearest-drivers read is for admins only, and checks its query.
    for token in [&owner, &pending_token] {
        t.send(
            Method::GET,
            "/api/v1/admin/drivers/locations?near=60.17,24.94",
            Some(token),
            None,
        )
        .await
        .expect_problem(StatusCode::FORBIDDEN, "forbidden");
    }
    let bad = t
        .send(
            Method::GET,
            "/api/v1/admin/drivers/locations?near=north&k=0",
            Some(&admin),
            None,
        )
        .await;
    bad.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(bad.body["errors"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn the_latest_position_survives_a_restart() {
    let t = start().await;
    let (driver, token) = approved_driver(&t, "Dee").await;
    t.send(
        Method::POST,
        INGEST,
        Some(&token),
        Some(batch("phone-1", 1, 60.20, 24.90)),
    )
    .await
    .expect(StatusCode::ACCEPTED);
    let before = t.app.locations.store.latest(UserId(driver)).unwrap().0;
    wait_for_rows(&t, driver, 3).await;

    let t = t.restart().await;
    assert!(t.app.locations.store.latest(UserId(driver)).is_none());
    let restored = t
        .app
        .locations
        .restore(&t.app.db, t.app.clock.now())
        .await
        .unwrap();
    assert_eq!(restored, 1);
    t.app.locations.spawn_flusher(t.app.db.clone()).unwrap();
    let after = t.app.locations.store.latest(UserId(driver)).unwrap().0;
    assert_eq!(after.seq(), 3);
    assert_eq!(after, before);
    let admin = t.admin_token().await;
    let found = nearest(&t, &admin, 60.20, 24.90).await;
    assert_eq!(found[0]["driver_id"], driver.to_string());

    // The device's sequence is remembered too: a re-sent batch is still a duplicate.
    let again = t
        .send(
            Method::POST,
            INGEST,
            Some(&token),
            Some(batch("phone-1", 1, 60.20, 24.90)),
        )
        .await
        .expect(StatusCode::ACCEPTED);
    assert_eq!(again, json!({"accepted": 0, "duplicates": 3}));
}

#[tokio::test]
async fn retention_deletes_old_rows_only() {
    let t = start().await;
    let (driver, token) = approved_driver(&t, "Eve").await;
    t.send(
        Method::POST,
        INGEST,
        Some(&token),
        Some(batch("phone-1", 1, 60.20, 24.90)),
    )
    .await
    .expect(StatusCode::ACCEPTED);
    wait_for_rows(&t, driver, 3).await;
    sqlx::query(
        "UPDATE driver_locations SET received_at = now() - interval '8 days' WHERE seq < 3",
    )
    .execute(&t.db.pools.owner)
    .await
    .unwrap();
    let cutoff = Utc::now() - chrono::Duration::days(7);
    let deleted = fleetfront_server::locations::prune(&t.app.db, cutoff)
        .await
        .unwrap();
    assert_eq!(deleted, 2);
    assert_eq!(stored_rows(&t, driver).await, 1);
}

/// Row level security on `driver_locations`, as the runtime role: a driver inserts and reads
/// only its own rows, the flusher's principal only inserts, the keeper only reads and deletes,
/// and nobody else sees anything.
#[tokio::test]
async fn driver_locations_policies_hold_for_the_runtime_role() {
    use fleetfront_server::db::set_principal;

    let t = start().await;
    let (a, token) = approved_driver(&t, "Fay").await;
    let (b, _) = approved_driver(&t, "Gus").await;
    t.send(
        Method::POST,
        INGEST,
        Some(&token),
        Some(batch("phone-1", 1, 60.2, 24.9)),
    )
    .await
    .expect(StatusCode::ACCEPTED);
    wait_for_rows(&t, a, 3).await;

    let insert = "INSERT INTO driver_locations (driver_id, device_id, seq, latitude, longitude, \
                  accuracy_m, recorded_at, received_at) VALUES ($1, 'x', 100, 60.2, 24.9, 5, now(), now())";
    // Runs `sql` (bound to `driver`) as `kind` on the runtime role; Ok(rows) or the error.
    async fn as_kind(
        t: &TestApp,
        kind: &str,
        user: Option<Uuid>,
        sql: &str,
        driver: Uuid,
    ) -> Result<u64, sqlx::Error> {
        let mut tx = t.db.pools.app.begin().await.unwrap();
        set_principal(&mut tx, kind, user, None, None)
            .await
            .unwrap();
        let result = if sql.starts_with("SELECT") {
            sqlx::query_scalar::<_, i64>(sql)
                .bind(driver)
                .fetch_one(&mut *tx)
                .await
                .map(|n| n as u64)
        } else {
            sqlx::query(sql)
                .bind(driver)
                .execute(&mut *tx)
                .await
                .map(|r| r.rows_affected())
        };
        tx.rollback().await.unwrap();
        result
    }
    let count = "SELECT count(*) FROM driver_locations WHERE driver_id = $1";
    let delete = "DELETE FROM driver_locations WHERE driver_id = $1";

    // A driver: its own rows only.
    assert_eq!(as_kind(&t, "driver", Some(a), count, a).await.unwrap(), 3);
    assert_eq!(as_kind(&t, "driver", Some(b), count, a).await.unwrap(), 0);
    assert_eq!(as_kind(&t, "driver", Some(a), insert, a).await.unwrap(), 1);
    assert!(as_kind(&t, "driver", Some(b), insert, a).await.is_err());
    assert_eq!(as_kind(&t, "driver", Some(a), delete, a).await.unwrap(), 0);
    // The flusher: inserts for anybody, reads and deletes nothing.
    assert_eq!(
        as_kind(&t, "location_writer", None, insert, b)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        as_kind(&t, "location_writer", None, count, a)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        as_kind(&t, "location_writer", None, delete, a)
            .await
            .unwrap(),
        0
    );
    // The keeper: reads and deletes, inserts nothing.
    assert_eq!(
        as_kind(&t, "location_keeper", None, count, a)
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        as_kind(&t, "location_keeper", None, delete, a)
            .await
            .unwrap(),
        3
    );
    assert!(as_kind(&t, "location_keeper", None, insert, a)
        .await
        .is_err());
    // An admin reads; staff, customers, the worker and nobody see nothing and write nothing.
    assert_eq!(
        as_kind(&t, "admin", Some(Uuid::new_v4()), count, a)
            .await
            .unwrap(),
        3
    );
    assert!(as_kind(&t, "admin", Some(Uuid::new_v4()), insert, a)
        .await
        .is_err());
    for kind in ["staff", "customer", "worker", "public", ""] {
        assert_eq!(
            as_kind(&t, kind, None, count, a).await.unwrap(),
            0,
            "{kind}"
        );
        assert!(as_kind(&t, kind, None, insert, a).await.is_err(), "{kind}");
    }
}

/// A driver who goes offline stops being a dispatch candidate at once: its position leaves the
/// live index (the stored fixes stay).
#[tokio::test]
async fn going_offline_removes_the_driver_from_the_live_index() {
    let t = start().await;
    let admin = t.admin_token().await;
    let (driver, token) = approved_driver(&t, "Cy").await;
    t.send(
        Method::POST,
        INGEST,
        Some(&token),
        Some(batch("phone-1", 1, 60.17, 24.94)),
    )
    .await
    .expect(StatusCode::ACCEPTED);
    let ids = |found: &[Value]| -> Vec<String> {
        found
            .iter()
            .map(|d| d["driver_id"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert!(ids(&nearest(&t, &admin, 60.17, 24.94).await).contains(&driver.to_string()));
    t.send(
        Method::PATCH,
        "/api/v1/driver/availability",
        Some(&token),
        Some(json!({"online": false})),
    )
    .await
    .expect(StatusCode::OK);
    assert!(!ids(&nearest(&t, &admin, 60.17, 24.94).await).contains(&driver.to_string()));
    wait_for_rows(&t, driver, 3).await;
}
