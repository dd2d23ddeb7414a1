//! The client core's facade (fleetfront-core `Client`) against the real server over real HTTP:
//! a till and a driver keep working while the network is cut, their changes show at once on
//! the device, reach the server exactly once when it comes back, and what the server refuses is
//! rolled back on the device with the reason in words.

#![allow(clippy::unwrap_used)] // A failed unwrap in a test is a failed test.

mod common;

use chrono::{Duration, Utc};
use common::fleet::{self, accepted_order, driver, shop};
use common::net::Served;
use common::{TestApp, PASSWORD};
use fleetfront_core::{Client, ClientError};
use fleetfront_domain::api::delivery::{
    CashCollectedInput, DeliveryStatusUpdateRequest, ReportedStatus,
};
use fleetfront_domain::api::location::FixInput;
use fleetfront_domain::api::mutations::{SaleItem, SalePayment};
use serde_json::{json, Value};
use uuid::Uuid;

fn db_path(dir: &tempdir::Dir, name: &str) -> std::path::PathBuf {
    dir.path().join(format!("{name}.sqlite"))
}

mod tempdir {
    /// A folder removed when dropped.
    pub struct Dir(std::path::PathBuf);

    impl Dir {
        pub fn new() -> Dir {
            let path =
                std::env::temp_dir().join(format!("fleetfront-client-{}", uuid::Uuid::now_v7()));
            std::fs::create_dir_all(&path).unwrap();
            Dir(path)
        }

        pub fn path(&self) -> &std::path::Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

async fn email_of(t: &TestApp, user: Uuid) -> String {
    sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
        .bind(user)
        .fetch_one(&t.db.pools.owner)
        .await
        .unwrap()
}

async fn pending_order(t: &TestApp, shop: &fleet::Shop) -> Uuid {
    let order = fleet::guest_order(t, shop, json!({"kind": "pickup"}), 1000).await;
    order["id"].as_str().unwrap().parse().unwrap()
}

async fn server_status(t: &TestApp, order: Uuid) -> String {
    sqlx::query_scalar("SELECT status FROM orders WHERE id = $1")
        .bind(order)
        .fetch_one(&t.db.pools.owner)
        .await
        .unwrap()
}

fn status_of(row: &Option<Value>) -> &str {
    row.as_ref()
        .and_then(|r| r["status"].as_str())
        .unwrap_or("<none>")
}

#[tokio::test]
async fn a_till_keeps_working_offline_and_converges_once_online() {
    let t = TestApp::new().await;
    let shop = shop(&t, "clienttill").await;
    let first = pending_order(&t, &shop).await;
    let second = pending_order(&t, &shop).await;
    let mut net = Served::start(t.router.clone()).await;
    let dir = tempdir::Dir::new();
    let till = Client::open(db_path(&dir, "till"), &net.url).unwrap();
    assert!(matches!(
        till.accept_order(first, 10).await,
        Err(ClientError::NotSignedIn)
    ));
    let me = till
        .login(&format!("owner@{}.test", shop.subdomain), PASSWORD)
        .await
        .unwrap();
    assert_eq!(till.current_user().unwrap().id, me.id);
    till.sync_now().await.unwrap();
    assert_eq!(status_of(&till.row("order", first).unwrap()), "pending");
    assert!(till.status().online);

    // The network goes. The till accepts one order (a minute ago by its clock: the action's
    // own time) and accepts then cancels the other; each shows at once.
    net.cut().await;
    let sold_at = Utc::now() - Duration::minutes(1);
    let accept = till
        .mutate(
            "order.accept@1",
            json!({"order_id": first, "prep_time": 10}),
            Some(sold_at),
        )
        .await
        .unwrap();
    // Staff cannot cancel a pending order (they reject it): refused on the device already.
    assert!(matches!(
        till.cancel_order(second, "Out of soup").await,
        Err(ClientError::Refused(_))
    ));
    till.accept_order(second, 10).await.unwrap();
    till.cancel_order(second, "Out of soup").await.unwrap();
    assert_eq!(status_of(&till.row("order", first).unwrap()), "confirmed");
    assert_eq!(status_of(&till.row("order", second).unwrap()), "cancelled");
    // A walk-in customer pays cash for two bowls: the sale shows at once, priced from the
    // catalog on the device.
    let item = SaleItem {
        product_id: shop.product,
        variant_id: Some(shop.variant),
        quantity: 2,
    };
    let (sale, _) = till.sell(vec![item], SalePayment::Cash).await.unwrap();
    let shown = till.row("order", sale).unwrap().unwrap();
    assert_eq!(shown["status"], "confirmed");
    assert_eq!(shown["total_minor"], 2000);
    assert_eq!(shown["till"]["tender"], "cash");
    assert_eq!(till.status().pending, 4);
    assert!(till.sync_now().await.is_err());
    let status = till.status();
    assert!(!status.online);
    assert!(status.last_error.is_some());
    assert_eq!(server_status(&t, first).await, "pending");

    // Back online: one round sends both, once, and the device shows the server's rows.
    net.resume(t.router.clone()).await;
    let report = till.sync_now().await.unwrap();
    assert_eq!((report.applied, report.rejected), (4, 0));
    assert_eq!(server_status(&t, first).await, "confirmed");
    assert_eq!(server_status(&t, second).await, "cancelled");
    let status = till.status();
    assert!(status.online && status.pending == 0 && status.last_error.is_none());
    assert_eq!(
        till.row("order", first).unwrap(),
        till.store().pulled_row("order", first).unwrap()
    );
    assert_eq!(status_of(&till.row("order", first).unwrap()), "confirmed");
    // The action's time is kept beside the time it synced.
    let kept: chrono::DateTime<Utc> =
        sqlx::query_scalar("SELECT action_time FROM sync_mutations WHERE id = $1")
            .bind(accept.id)
            .fetch_one(&t.db.pools.owner)
            .await
            .unwrap();
    assert_eq!(kept.timestamp_millis(), sold_at.timestamp_millis());
    // The sale is the server's now, as the till showed it.
    let sold = till.row("order", sale).unwrap().unwrap();
    assert_eq!(
        Some(&sold),
        till.store().pulled_row("order", sale).unwrap().as_ref()
    );
    assert_eq!(sold["till"]["tender"], "cash");
    assert_eq!(sold["total_minor"], 2000);
    assert_eq!(server_status(&t, sale).await, "confirmed");
    // A second round changes nothing.
    let again = till.sync_now().await.unwrap();
    assert_eq!(
        (again.applied, again.rejected, again.rows_changed),
        (0, 0, 0)
    );
}

#[tokio::test]
async fn an_offer_accepted_offline_after_it_expired_rolls_back_with_the_reason() {
    let t = TestApp::new().await;
    let shop = shop(&t, "clientoffer").await;
    let (ann, _) = driver(&t, "Ann", (60.171, 24.94), Some((shop.business, 1))).await;
    accepted_order(&t, &shop).await;
    let mut net = Served::start(t.router.clone()).await;
    let dir = tempdir::Dir::new();
    let phone = Client::open(db_path(&dir, "ann"), &net.url).unwrap();
    phone
        .login(&email_of(&t, ann).await, PASSWORD)
        .await
        .unwrap();
    phone.sync_now().await.unwrap();
    let offers = phone.offers().unwrap();
    assert_eq!(offers.len(), 1, "{offers:?}");
    let (offer, data) = offers[0].clone();
    let delivery: Uuid = data["delivery_id"].as_str().unwrap().parse().unwrap();

    // Ann taps accept in a tunnel: the device shows the delivery at once.
    net.cut().await;
    phone.accept_offer(offer).await.unwrap();
    assert!(phone.offers().unwrap().is_empty());
    assert_eq!(
        status_of(&phone.row("delivery", delivery).unwrap()),
        "assigned"
    );

    // By the time the accept arrives the offer has expired on the server's clock.
    t.app.clock.advance(31);
    net.resume(t.router.clone()).await;
    let report = phone.sync_now().await.unwrap();
    assert_eq!(report.rejected, 1);
    assert!(phone.row("delivery", delivery).unwrap().is_none());
    let rejections = phone.rejections().unwrap();
    assert_eq!(rejections.len(), 1);
    assert_eq!(rejections[0].code.as_deref(), Some("offer_expired"));
    assert!(!rejections[0].message.is_empty());
    assert_eq!(phone.status().pending, 0);
}

#[tokio::test]
async fn a_driver_finishes_a_delivery_offline_and_it_lands_once() {
    let t = TestApp::new().await;
    let shop = shop(&t, "clientdrive").await;
    let (ann, _) = driver(&t, "Ann", (60.171, 24.94), Some((shop.business, 1))).await;
    let order = accepted_order(&t, &shop).await;
    sqlx::query(
        "UPDATE business_dispatch_settings SET require_proof_photo = true WHERE business_id = $1",
    )
    .bind(shop.business)
    .execute(&t.db.pools.owner)
    .await
    .unwrap();
    let mut net = Served::start(t.router.clone()).await;
    let dir = tempdir::Dir::new();
    let phone = Client::open(db_path(&dir, "ann"), &net.url).unwrap();
    phone
        .login(&email_of(&t, ann).await, PASSWORD)
        .await
        .unwrap();
    phone.sync_now().await.unwrap();
    let (offer, data) = phone.offers().unwrap()[0].clone();
    let delivery: Uuid = data["delivery_id"].as_str().unwrap().parse().unwrap();
    phone.accept_offer(offer).await.unwrap();
    phone.sync_now().await.unwrap();
    let held = phone.row("delivery", delivery).unwrap().unwrap();
    assert_eq!(held["status"], "assigned");
    let total = held["order"]["total_minor"].as_i64().unwrap();

    net.cut().await;
    let step = |status| DeliveryStatusUpdateRequest {
        status,
        position: None,
        recorded_at: None,
        proof_sha256: None,
        cash_collected: None,
        failure: None,
    };
    let picked_at = Utc::now() - Duration::minutes(20);
    let delivered_at = Utc::now() - Duration::minutes(2);
    phone
        .delivery_step(
            delivery,
            &step(ReportedStatus::ArrivedAtStore),
            Some(picked_at),
        )
        .await
        .unwrap();
    phone
        .delivery_step(delivery, &step(ReportedStatus::PickedUp), Some(picked_at))
        .await
        .unwrap();
    // Delivering before arriving at the customer fills the step in, as on the server; cash
    // over the amount due is refused on the device already.
    let mut too_much = step(ReportedStatus::Delivered);
    too_much.cash_collected = Some(CashCollectedInput {
        amount_minor: total + 500,
        shortfall_reason: None,
    });
    assert!(matches!(
        phone
            .delivery_step(delivery, &too_much, Some(delivered_at))
            .await,
        Err(ClientError::Refused(_))
    ));
    // The proof photo is taken offline (600 KB: several chunks) and queued by its hash.
    let photo = dir.path().join("door.png");
    let mut bytes = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    bytes.extend((0..600_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    std::fs::write(&photo, &bytes).unwrap();
    let sha256 = phone.attach_proof(delivery, &photo).await.unwrap();
    assert_eq!(phone.attach_proof(delivery, &photo).await.unwrap(), sha256);
    let mut delivered = step(ReportedStatus::Delivered);
    delivered.proof_sha256 = Some(sha256.clone());
    delivered.cash_collected = Some(CashCollectedInput {
        amount_minor: total,
        shortfall_reason: None,
    });
    phone
        .delivery_step(delivery, &delivered, Some(delivered_at))
        .await
        .unwrap();
    assert_eq!(
        status_of(&phone.row("delivery", delivery).unwrap()),
        "delivered"
    );
    assert_eq!(phone.status().pending, 3);
    assert_eq!(phone.status().pending_uploads, 1);

    // The server restarts while the phone is offline; then the network is back.
    let t = t.restart().await;
    net.resume(t.router.clone()).await;
    let report = phone.sync_now().await.unwrap();
    assert_eq!(
        (report.applied, report.rejected),
        (3, 0),
        "{:?}",
        phone.rejections()
    );
    assert_eq!(report.uploaded, 1);
    // Reports use when it happened, not when it synced: the delivery's completion and the
    // earnings carry the phone's time of the hand-over.
    let (finished, earned): (Option<chrono::DateTime<Utc>>, Option<chrono::DateTime<Utc>>) =
        sqlx::query_as(
            "SELECT d.finished_recorded_at, e.recorded_at FROM deliveries d \
               JOIN driver_earnings e ON e.delivery_id = d.id WHERE d.id = $1",
        )
        .bind(delivery)
        .fetch_one(&t.db.pools.owner)
        .await
        .unwrap();
    assert_eq!(
        finished.map(|t| t.timestamp_millis()),
        Some(delivered_at.timestamp_millis())
    );
    assert_eq!(earned, finished);
    assert_eq!(phone.status().pending_uploads, 0);
    assert_eq!(server_status(&t, order).await, "delivered");
    // The photo arrived exactly once and is the delivery's proof.
    phone.sync_now().await.unwrap();
    let proofs: Vec<String> =
        sqlx::query_scalar("SELECT sha256 FROM delivery_proofs WHERE delivery_id = $1")
            .bind(delivery)
            .fetch_all(&t.db.pools.owner)
            .await
            .unwrap();
    assert_eq!(proofs, [sha256]);
    let earnings: i64 =
        sqlx::query_scalar("SELECT count(*) FROM driver_earnings WHERE delivery_id = $1")
            .bind(delivery)
            .fetch_one(&t.db.pools.owner)
            .await
            .unwrap();
    assert_eq!(earnings, 1);
    // The delivery left the driver's bucket once finished.
    assert!(phone.row("delivery", delivery).unwrap().is_none());
    assert_eq!(phone.status().pending, 0);
}

#[tokio::test]
async fn another_account_cannot_take_over_pending_changes() {
    let t = TestApp::new().await;
    let shop = shop(&t, "clientswitch").await;
    let other = common::fleet::shop(&t, "clientswitch2").await;
    let order = pending_order(&t, &shop).await;
    let mut net = Served::start(t.router.clone()).await;
    let dir = tempdir::Dir::new();
    let path = db_path(&dir, "shared");
    let till = Client::open(&path, &net.url).unwrap();
    till.login(&format!("owner@{}.test", shop.subdomain), PASSWORD)
        .await
        .unwrap();
    till.sync_now().await.unwrap();
    net.cut().await;
    till.accept_order(order, 10).await.unwrap();
    till.logout().await.unwrap();
    assert!(till.current_user().is_none());
    net.resume(t.router.clone()).await;
    let refused = till
        .login(&format!("owner@{}.test", other.subdomain), PASSWORD)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, ClientError::PendingForOtherAccount { pending: 1 }),
        "{refused:?}"
    );
    // The same account signs in again (after an app restart) and sends what waited.
    drop(till);
    let till = Client::open(&path, &net.url).unwrap();
    assert!(till.current_user().is_none());
    till.login(&format!("owner@{}.test", shop.subdomain), PASSWORD)
        .await
        .unwrap();
    assert_eq!(till.sync_now().await.unwrap().applied, 1);
    assert_eq!(server_status(&t, order).await, "confirmed");
    // Now the other account may use the device: it starts from its own data only.
    let mine = till.orders().unwrap().len();
    assert_eq!(mine, 1);
    till.login(&format!("owner@{}.test", other.subdomain), PASSWORD)
        .await
        .unwrap();
    assert!(till.orders().unwrap().is_empty());
    till.sync_now().await.unwrap();
    assert!(till.orders().unwrap().is_empty());
    assert!(!till.products().unwrap().is_empty());
}

#[tokio::test]
async fn a_drivers_positions_wait_offline_and_arrive_once() {
    let t = TestApp::new().await;
    t.app.locations.spawn_flusher(t.app.db.clone()).unwrap();
    let shop = shop(&t, "clientgps").await;
    let (ann, _) = driver(&t, "Ann", (60.171, 24.94), Some((shop.business, 1))).await;
    let mut net = Served::start(t.router.clone()).await;
    let dir = tempdir::Dir::new();
    let phone = Client::open(db_path(&dir, "ann"), &net.url).unwrap();
    phone
        .login(&email_of(&t, ann).await, PASSWORD)
        .await
        .unwrap();
    net.cut().await;
    let fix = |minutes: i64, latitude: f64| FixInput {
        latitude,
        longitude: 24.94,
        accuracy_m: 8.0,
        heading_deg: None,
        speed_mps: Some(4.0),
        recorded_at: Utc::now() - Duration::minutes(minutes),
        seq: 0,
    };
    // A stale fix (older than the server keeps) is dropped unsent, not stuck in the queue.
    phone.record_location(fix(25 * 60, 60.170)).await.unwrap();
    for (minutes, latitude) in [(3, 60.172), (2, 60.173), (0, 60.174)] {
        phone.record_location(fix(minutes, latitude)).await.unwrap();
    }
    assert!(phone.sync_now().await.is_err());
    net.resume(t.router.clone()).await;
    assert_eq!(phone.sync_now().await.unwrap().fixes_sent, 3);
    assert_eq!(phone.sync_now().await.unwrap().fixes_sent, 0);
    // The positions land (written in batches by the server's flusher), each once, in order.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let stored: Vec<(i64, f64)> = sqlx::query_as(
            "SELECT seq, latitude FROM driver_locations WHERE driver_id = $1 AND device_id LIKE 'device-%' ORDER BY seq",
        )
        .bind(ann)
        .fetch_all(&t.db.pools.owner)
        .await
        .unwrap();
        if stored.len() == 3 {
            assert_eq!(stored, [(2, 60.172), (3, 60.173), (4, 60.174)]);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{stored:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Dispatch sees the newest one (newer than the position the phone sent before the cut).
    let (latest, _) = t
        .app
        .locations
        .store
        .latest(fleetfront_domain::UserId(ann))
        .unwrap();
    assert!((latest.latitude() - 60.174).abs() < 1e-9);
}
