//! The delivery workflow on real PostgreSQL through the HTTP router: a driver walks its
//! delivery step by step with the order and the customer's tracking following, delivering
//! records exactly one earnings row (a repeat is superseded), proof photos and cash are checked,
//! skipping the pickup needs evidence, a failure before pickup and a staff reassignment offer
//! the delivery to somebody else, a cancelled order tells its driver, and other drivers and
//! businesses see nothing.

#![allow(clippy::unwrap_used)] // A failed unwrap in a test is a failed test.

mod common;
#[path = "support/stripe_standin.rs"]
mod stripe_standin;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use chrono::Utc;
use common::fleet::{
    accepted_order_with_token, answer, assignments, driver, only_offer, shop, Shop,
};
use common::{Reply, TestApp};
use fleetfront_domain::distance::metres_between;
use fleetfront_domain::value::Coordinates;
use serde_json::{json, Value};
use uuid::Uuid;

const BOUNDARY: &str = "delivery-proof-boundary";

/// The store's position (`TestApp::open_store`) and the fleet helpers' drop-off.
const STORE: (f64, f64) = (60.17, 24.94);
const DROP_OFF: (f64, f64) = (60.175, 24.94);

/// The first bytes of a PNG: enough for the sniffer, which reads the signature.
fn png(extra: u8) -> Vec<u8> {
    let mut bytes = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    bytes.extend_from_slice(&[0, 0, 0, 13, b'I', b'H', b'D', b'R', extra]);
    bytes
}

/// An accepted cash order whose delivery `token`'s driver accepted; returns (order, delivery,
/// tracking token).
async fn held(t: &TestApp, shop: &Shop, token: &str) -> (Uuid, Uuid, String) {
    let (order, tracking) = accepted_order_with_token(t, shop).await;
    let offer = only_offer(&assignments(t, token).await);
    let taken = answer(t, token, &offer, "accept")
        .await
        .expect(StatusCode::OK);
    let delivery = taken["delivery_id"].as_str().unwrap().parse().unwrap();
    (order, delivery, tracking)
}

async fn report(t: &TestApp, token: &str, delivery: Uuid, body: Value) -> Reply {
    t.send(
        Method::PATCH,
        &format!("/api/v1/driver/deliveries/{delivery}/status"),
        Some(token),
        Some(body),
    )
    .await
}

async fn staff_order(t: &TestApp, shop: &Shop, order: Uuid, event: Value) {
    t.send(
        Method::PATCH,
        &format!("/api/v1/business/orders/{order}"),
        Some(&shop.owner),
        Some(event),
    )
    .await
    .expect(StatusCode::OK);
}

async fn upload(t: &TestApp, token: &str, delivery: Uuid, bytes: &[u8]) -> Reply {
    let mut body = Vec::new();
    body.extend_from_slice(
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"door.png\"\r\nContent-Type: image/png\r\n\r\n")
            .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("/api/v1/driver/deliveries/{delivery}/proof"))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(Body::from(body))
        .unwrap();
    t.raw(request).await
}

/// The field error codes of a problem.
fn field_codes(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["code"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[track_caller]
fn expect_field(reply: &Reply, status: StatusCode, problem: &str, field: &str) {
    reply.expect_problem(status, problem);
    assert_eq!(
        field_codes(&reply.body),
        vec![field.to_owned()],
        "{}",
        reply.body
    );
}

async fn order_status(t: &TestApp, order: Uuid) -> String {
    sqlx::query_scalar("SELECT status FROM orders WHERE id = $1")
        .bind(order)
        .fetch_one(&t.db.pools.owner)
        .await
        .unwrap()
}

async fn count(t: &TestApp, sql: &str, id: Uuid) -> i64 {
    sqlx::query_scalar(sql)
        .bind(id)
        .fetch_one(&t.db.pools.owner)
        .await
        .unwrap()
}

/// The emails of `template` in the outbox, as (to, order id).
async fn emails(t: &TestApp, template: &str) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT payload->>'to', payload->>'order_id' FROM outbox_messages \
          WHERE payload->>'template' = $1 ORDER BY created_at",
    )
    .bind(template)
    .fetch_all(&t.db.pools.owner)
    .await
    .unwrap()
}

async fn email_of(t: &TestApp, user: Uuid) -> String {
    sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
        .bind(user)
        .fetch_one(&t.db.pools.owner)
        .await
        .unwrap()
}

fn now_evidence() -> Value {
    json!({"latitude": DROP_OFF.0, "longitude": DROP_OFF.1})
}

#[tokio::test]
async fn the_driver_walks_the_steps_and_the_order_and_tracking_follow() {
    let t = TestApp::new().await;
    let shop = shop(&t, "delivery-walk").await;
    let (ann, ann_token) = driver(&t, "Ann", (60.171, 24.94), Some((shop.business, 1))).await;
    // The platform's rates for the order's currency: 1.20 per km from the first metre, a 10 %
    // commission and a ×1.2 surge.
    let currency: String =
        sqlx::query_scalar("SELECT currency::text FROM businesses WHERE id = $1")
            .bind(shop.business)
            .fetch_one(&t.db.pools.owner)
            .await
            .unwrap();
    sqlx::query(
        "INSERT INTO driver_pay_rates (currency, per_km_minor, included_metres, commission_bps, surge_bps) \
         VALUES ($1, 120, 0, 1000, 12000)",
    )
    .bind(&currency)
    .execute(&t.db.pools.owner)
    .await
    .unwrap();
    let (order, delivery, tracking) = held(&t, &shop, &ann_token).await;
    let tracking_url = format!("/api/v1/orders/{order}/tracking?token={tracking}");

    let at_store = report(
        &t,
        &ann_token,
        delivery,
        json!({"status": "arrived_at_store"}),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(at_store["status"], "arrived_at_store");
    assert_eq!(at_store["outcome"], "applied");
    assert!(at_store["steps"]["arrived_at_store_at"].is_string());
    assert_eq!(order_status(&t, order).await, "confirmed");
    // The driver's list shows where the delivery is.
    let list = assignments(&t, &ann_token).await;
    assert_eq!(list["assignments"][0]["status"], "arrived_at_store");

    // The courier takes the bag although nobody marked the order ready: the physical event
    // wins, and the order's skipped statuses are filled in.
    let picked = report(&t, &ann_token, delivery, json!({"status": "picked_up"}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(picked["status"], "picked_up");
    assert_eq!(order_status(&t, order).await, "picked_up");
    let view = t
        .send(Method::GET, &tracking_url, None, None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(view["status"], "picked_up");
    let filled: Vec<(&str, bool)> = view["history"]
        .as_array()
        .unwrap()
        .iter()
        .skip(2)
        .map(|h| (h["to"].as_str().unwrap(), h["filled_in"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        filled,
        [("preparing", true), ("ready", true), ("picked_up", false)],
        "{view}"
    );
    assert!(view["courier"].is_object(), "{view}");

    report(
        &t,
        &ann_token,
        delivery,
        json!({"status": "arrived_at_customer", "position": now_evidence(), "recorded_at": Utc::now()}),
    )
    .await
    .expect(StatusCode::OK);
    // The customer sees the steps, with the courier's position while it holds the delivery.
    let view = t
        .send(Method::GET, &tracking_url, None, None)
        .await
        .expect(StatusCode::OK);
    let steps = view["delivery_events"].as_array().unwrap();
    let kinds: Vec<&str> = steps.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        vec![
            "driver_assigned",
            "driver_at_store",
            "picked_up",
            "driver_arrived"
        ]
    );
    assert_eq!(steps[3]["position"]["latitude"], DROP_OFF.0);
    let delivered = report(
        &t,
        &ann_token,
        delivery,
        json!({"status": "delivered", "position": now_evidence(), "recorded_at": Utc::now(),
               "cash_collected": {"amount_minor": 1300}}),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(delivered["status"], "delivered");
    assert_eq!(delivered["outcome"], "applied");
    assert!(delivered["steps"]["finished_at"].is_string());
    assert!(delivered["steps"]["finished_recorded_at"].is_string());
    assert_eq!(delivered["cash"]["collected"]["minor"], 1300);
    assert_eq!(delivered["cash"]["shortfall"]["minor"], 0);
    assert_eq!(order_status(&t, order).await, "delivered");
    let view = t
        .send(Method::GET, &tracking_url, None, None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(view["status"], "delivered");
    let steps = view["delivery_events"].as_array().unwrap();
    assert_eq!(steps.len(), 5, "{view}");
    assert!(
        steps.iter().all(|e| e.get("position").is_none()),
        "no positions once the delivery is over: {view}"
    );
    assert!(
        view.get("courier").is_none() || view["courier"].is_null(),
        "{view}"
    );

    // Every step is a tracking event of the order, with the position where one was sent.
    let kinds: Vec<(String, Option<f64>)> = sqlx::query_as(
        "SELECT kind, latitude FROM order_tracking_events WHERE order_id = $1 \
            AND details ? 'delivery_id' ORDER BY at, id",
    )
    .bind(order)
    .fetch_all(&t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(
        kinds,
        vec![
            // Where the driver was when it accepted (its latest fix).
            ("driver_assigned".to_owned(), Some(60.171)),
            ("driver_at_store".to_owned(), None),
            ("picked_up".to_owned(), None),
            ("driver_arrived".to_owned(), Some(DROP_OFF.0)),
            ("delivered".to_owned(), Some(DROP_OFF.0)),
        ]
    );

    // Earnings: the 3.00 fee, 1.20 per km over the trip, ×1.2, 10 % commission.
    let metres = metres_between(
        Coordinates::parse(STORE.0, STORE.1).unwrap(),
        Coordinates::parse(DROP_OFF.0, DROP_OFF.1).unwrap(),
    );
    let share = |amount: i64, bps: i64| (amount * bps + 5_000).div_euclid(10_000);
    let distance_fee = (120 * i64::from(metres) + 500).div_euclid(1_000);
    let fees = 300 + distance_fee;
    let surge = share(fees, 2_000);
    let platform_fee = share(fees + surge, 1_000);
    let gross = fees + surge;
    let row: (i64, i32, i64, i64, i32, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT delivery_fee_minor, distance_metres, distance_fee_minor, tip_minor, surge_bps, surge_minor, \
                platform_fee_minor, gross_minor, net_minor FROM driver_earnings WHERE delivery_id = $1",
    )
    .bind(delivery)
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(
        row,
        (
            300,
            i32::try_from(metres).unwrap(),
            distance_fee,
            0,
            12_000,
            surge,
            platform_fee,
            gross,
            gross - platform_fee
        )
    );
    assert_eq!(delivered["earnings"]["net"]["minor"], gross - platform_fee);
    assert_eq!(delivered["trip_metres"], metres);

    // A repeated `delivered` (an offline retry) is recorded as superseded and pays nothing more.
    let again = report(
        &t,
        &ann_token,
        delivery,
        json!({"status": "delivered", "cash_collected": {"amount_minor": 1300}}),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(again["outcome"], "superseded");
    assert_eq!(
        count(
            &t,
            "SELECT count(*) FROM driver_earnings WHERE delivery_id = $1",
            delivery
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &t,
            "SELECT count(*) FROM driver_cash WHERE delivery_id = $1",
            delivery
        )
        .await,
        1
    );
    // The driver's own view of the delivery carries its log; so does the business's.
    let mine = t
        .send(
            Method::GET,
            &format!("/api/v1/driver/deliveries/{delivery}"),
            Some(&ann_token),
            None,
        )
        .await
        .expect(StatusCode::OK);
    let outcomes: Vec<&str> = mine["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        vec!["applied", "applied", "applied", "applied", "superseded"]
    );
    assert_eq!(mine["driver_id"], ann.to_string());
    let theirs = t
        .send(
            Method::GET,
            &format!("/api/v1/business/deliveries/{delivery}"),
            Some(&shop.owner),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(theirs["events"].as_array().unwrap().len(), 5);
    assert_eq!(theirs["earnings"]["gross"]["minor"], gross);
    // A finished delivery takes no more photos.
    upload(&t, &ann_token, delivery, &png(1))
        .await
        .expect_problem(StatusCode::CONFLICT, "conflict");
}

#[tokio::test]
async fn a_required_proof_photo_is_uploaded_checked_and_shown_to_staff_only() {
    let t = TestApp::new().await;
    let shop = shop(&t, "delivery-proof").await;
    sqlx::query(
        "UPDATE business_dispatch_settings SET require_proof_photo = true WHERE business_id = $1",
    )
    .bind(shop.business)
    .execute(&t.db.pools.owner)
    .await
    .unwrap();
    let (_, ann_token) = driver(&t, "Ann", (60.171, 24.94), Some((shop.business, 1))).await;
    let (_, ben_token) = driver(&t, "Ben", (60.19, 24.94), Some((shop.business, 2))).await;
    let (order, delivery, _) = held(&t, &shop, &ann_token).await;
    let list = assignments(&t, &ann_token).await;
    assert_eq!(list["assignments"][0]["proof_required"], true);
    staff_order(&t, &shop, order, json!({"type": "mark_ready"})).await;
    report(&t, &ann_token, delivery, json!({"status": "picked_up"}))
        .await
        .expect(StatusCode::OK);
    let cash = json!({"amount_minor": 1300});

    let refused = report(
        &t,
        &ann_token,
        delivery,
        json!({"status": "delivered", "cash_collected": cash}),
    )
    .await;
    expect_field(
        &refused,
        StatusCode::CONFLICT,
        "invalid_transition",
        "proof_required",
    );
    // (A named photo not uploaded yet is accepted with the proof pending: tests/uploads.rs.)

    // Bad uploads: not an image, too large, another driver's delivery.
    upload(&t, &ann_token, delivery, b"just some words, not a photo")
        .await
        .expect_problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_image_type");
    let mut huge = png(0);
    huge.resize(10 * 1024 * 1024 + 1, 0);
    upload(&t, &ann_token, delivery, &huge)
        .await
        .expect_problem(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    upload(&t, &ben_token, delivery, &png(0))
        .await
        .expect_problem(StatusCode::NOT_FOUND, "not_found");

    let first = upload(&t, &ann_token, delivery, &png(7))
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(first["content_type"], "image/png");
    assert_eq!(first["byte_size"], png(7).len());
    let again = upload(&t, &ann_token, delivery, &png(7))
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(again, first);
    assert_eq!(
        count(
            &t,
            "SELECT count(*) FROM delivery_proofs WHERE delivery_id = $1",
            delivery
        )
        .await,
        1
    );
    let sha = first["sha256"].as_str().unwrap().to_owned();

    // Without a named photo, the latest upload is the proof.
    let delivered = report(
        &t,
        &ann_token,
        delivery,
        json!({"status": "delivered", "cash_collected": cash}),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(delivered["proof_sha256"], sha);
    assert_eq!(delivered["proofs"][0]["sha256"], sha);

    // Staff see the photo; nobody else does.
    let url = format!("/api/v1/business/deliveries/{delivery}/proof/{sha}");
    let request = Request::builder()
        .method(Method::GET)
        .uri(&url)
        .header(header::AUTHORIZATION, format!("Bearer {}", shop.owner))
        .body(Body::empty())
        .unwrap();
    let response = t.raw(request).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.content_type, "image/png");
    t.send(Method::GET, &url, None, None)
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
    t.send(Method::GET, &url, Some(&ann_token), None)
        .await
        .expect_problem(StatusCode::FORBIDDEN, "forbidden");
    let other = shop_of_other(&t).await;
    t.send(Method::GET, &url, Some(&other), None)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "not_found");
    t.send(
        Method::GET,
        &format!("/api/v1/business/deliveries/{delivery}"),
        Some(&other),
        None,
    )
    .await
    .expect_problem(StatusCode::NOT_FOUND, "not_found");
}

/// The owner's token of another business.
async fn shop_of_other(t: &TestApp) -> String {
    t.open_store("delivery-other", "growth").await.1
}

#[tokio::test]
async fn cash_on_delivery_is_checked_and_a_shortfall_recorded_with_its_reason() {
    let t = TestApp::new().await;
    let shop = shop(&t, "delivery-cash").await;
    let (ann, ann_token) = driver(&t, "Ann", (60.171, 24.94), Some((shop.business, 1))).await;
    let (order, delivery, _) = held(&t, &shop, &ann_token).await;
    staff_order(&t, &shop, order, json!({"type": "mark_ready"})).await;
    report(&t, &ann_token, delivery, json!({"status": "picked_up"}))
        .await
        .expect(StatusCode::OK);

    let missing = report(&t, &ann_token, delivery, json!({"status": "delivered"})).await;
    expect_field(
        &missing,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
        "cash_amount_required",
    );
    let over = report(
        &t,
        &ann_token,
        delivery,
        json!({"status": "delivered", "cash_collected": {"amount_minor": 1301}}),
    )
    .await;
    expect_field(
        &over,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
        "cash_over_due",
    );
    let short = report(
        &t,
        &ann_token,
        delivery,
        json!({"status": "delivered", "cash_collected": {"amount_minor": 1000}}),
    )
    .await;
    expect_field(
        &short,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
        "shortfall_reason_required",
    );
    assert_eq!(order_status(&t, order).await, "picked_up");

    let delivered = report(
        &t,
        &ann_token,
        delivery,
        json!({"status": "delivered", "cash_collected": {"amount_minor": 1000,
            "shortfall_reason": "the customer had only 10 euros"}}),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(delivered["cash"]["shortfall"]["minor"], 300);
    let row: (Uuid, String, i64, i64, i64, String) = sqlx::query_as(
        "SELECT driver_id, kind, amount_minor, due_minor, shortfall_minor, shortfall_reason \
           FROM driver_cash WHERE delivery_id = $1",
    )
    .bind(delivery)
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(
        row,
        (
            ann,
            "collected".to_owned(),
            1000,
            1300,
            300,
            "the customer had only 10 euros".to_owned()
        )
    );
}

#[tokio::test]
async fn another_driver_sees_nothing_and_skipping_the_pickup_needs_evidence() {
    let t = TestApp::new().await;
    let shop = shop(&t, "delivery-skip").await;
    let (_, ann_token) = driver(&t, "Ann", (60.171, 24.94), Some((shop.business, 1))).await;
    let (_, ben_token) = driver(&t, "Ben", (60.19, 24.94), Some((shop.business, 2))).await;
    let (order, delivery, _) = held(&t, &shop, &ann_token).await;

    // Another driver: as if it did not exist.
    report(
        &t,
        &ben_token,
        delivery,
        json!({"status": "arrived_at_store"}),
    )
    .await
    .expect_problem(StatusCode::NOT_FOUND, "not_found");
    t.send(
        Method::GET,
        &format!("/api/v1/driver/deliveries/{delivery}"),
        Some(&ben_token),
        None,
    )
    .await
    .expect_problem(StatusCode::NOT_FOUND, "not_found");
    // Staff are not drivers.
    report(
        &t,
        &shop.owner,
        delivery,
        json!({"status": "arrived_at_store"}),
    )
    .await
    .expect_problem(StatusCode::FORBIDDEN, "forbidden");

    let blind = report(
        &t,
        &ann_token,
        delivery,
        json!({"status": "arrived_at_customer"}),
    )
    .await;
    expect_field(
        &blind,
        StatusCode::CONFLICT,
        "invalid_transition",
        "delivery_evidence_required",
    );
    let future = report(
        &t,
        &ann_token,
        delivery,
        json!({"status": "arrived_at_customer", "position": now_evidence(),
               "recorded_at": Utc::now() + chrono::Duration::minutes(10)}),
    )
    .await;
    expect_field(
        &future,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
        "in_future",
    );
    // A customer reason needs the goods picked up first.
    let early = report(
        &t,
        &ann_token,
        delivery,
        json!({"status": "failed", "failure": {"code": "customer_unreachable"}}),
    )
    .await;
    expect_field(
        &early,
        StatusCode::CONFLICT,
        "invalid_transition",
        "reason_needs_pickup",
    );

    staff_order(&t, &shop, order, json!({"type": "mark_ready"})).await;
    let arrived = report(
        &t,
        &ann_token,
        delivery,
        json!({"status": "arrived_at_customer", "position": now_evidence(), "recorded_at": Utc::now()}),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(arrived["status"], "arrived_at_customer");
    let steps: Vec<(String, bool)> = arrived["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["to_status"].as_str().unwrap().to_owned(),
                e["filled_in"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        vec![
            ("arrived_at_store".to_owned(), true),
            ("picked_up".to_owned(), true),
            ("arrived_at_customer".to_owned(), false),
        ]
    );
    assert!(arrived["steps"]["picked_up_at"].is_string());
    assert_eq!(order_status(&t, order).await, "picked_up");
    // After pickup a failure stays with its driver and tells the business.
    let failed = report(
        &t,
        &ann_token,
        delivery,
        json!({"status": "failed", "failure": {"code": "customer_unreachable"}}),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["failure"]["code"], "customer_unreachable");
    assert_eq!(emails(&t, "delivery_failed").await.len(), 1);
}

#[tokio::test]
async fn a_failure_before_pickup_offers_the_delivery_to_somebody_else() {
    let t = TestApp::new().await;
    let shop = shop(&t, "delivery-fail").await;
    let (ann, ann_token) = driver(&t, "Ann", (60.171, 24.94), Some((shop.business, 1))).await;
    let (_, ben_token) = driver(&t, "Ben", (60.175, 24.94), Some((shop.business, 1))).await;
    let (order, delivery, _) = held(&t, &shop, &ann_token).await;
    report(
        &t,
        &ann_token,
        delivery,
        json!({"status": "arrived_at_store"}),
    )
    .await
    .expect(StatusCode::OK);

    let failed = report(
        &t,
        &ann_token,
        delivery,
        json!({"status": "failed", "failure": {"code": "other", "text": "flat tyre"}}),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(failed["outcome"], "applied");
    // Back to looking for a driver: Ann no longer holds it and is not asked again; Ben is.
    assert!(failed.get("driver_id").is_none(), "{failed}");
    let mine = assignments(&t, &ann_token).await;
    assert!(mine["offers"].as_array().unwrap().is_empty(), "{mine}");
    assert!(mine["assignments"].as_array().unwrap().is_empty(), "{mine}");
    let offer = only_offer(&assignments(&t, &ben_token).await);
    let taken = answer(&t, &ben_token, &offer, "accept")
        .await
        .expect(StatusCode::OK);
    assert_eq!(taken["delivery_id"], delivery.to_string());
    assert_eq!(taken["status"], "assigned");
    assert_eq!(order_status(&t, order).await, "confirmed");
    // The customer sees the change of driver, not a failed delivery.
    let kinds: Vec<String> = sqlx::query_scalar(
        "SELECT kind FROM order_tracking_events WHERE order_id = $1 AND details ? 'delivery_id' \
          ORDER BY at, id",
    )
    .bind(order)
    .fetch_all(&t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(
        kinds,
        vec![
            "driver_assigned",
            "driver_at_store",
            "driver_reassigned",
            "driver_assigned"
        ]
    );
    assert_eq!(
        emails(&t, "delivery_failed").await,
        vec![(
            sqlx::query_scalar::<_, String>("SELECT contact_email FROM businesses WHERE id = $1")
                .bind(shop.business)
                .fetch_one(&t.db.pools.owner)
                .await
                .unwrap(),
            order.to_string()
        )]
    );
    // A late report of Ann's (an offline phone catching up) is recorded and changes nothing;
    // her own log shows what she did.
    let late = report(&t, &ann_token, delivery, json!({"status": "picked_up"}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(late["outcome"], "superseded");
    assert_eq!(late["status"], "assigned");
    let log = t
        .send(
            Method::GET,
            &format!("/api/v1/driver/deliveries/{delivery}"),
            Some(&ann_token),
            None,
        )
        .await
        .expect(StatusCode::OK);
    let commands: Vec<&str> = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["command"].as_str().unwrap())
        .collect();
    assert_eq!(commands, vec!["arrive_at_store", "fail", "pick_up"]);
    assert!(
        log.get("driver_id").is_none(),
        "Ann does not learn who has it now: {log}"
    );
    assert_eq!(
        count(
            &t,
            "SELECT count(*) FROM delivery_events WHERE driver_id = $1",
            ann
        )
        .await,
        3
    );
}

#[tokio::test]
async fn staff_reassign_before_pickup_and_not_after() {
    let t = TestApp::new().await;
    let shop = shop(&t, "delivery-reassign").await;
    let (ann, ann_token) = driver(&t, "Ann", (60.171, 24.94), Some((shop.business, 1))).await;
    let (_, ben_token) = driver(&t, "Ben", (60.175, 24.94), Some((shop.business, 1))).await;
    let (order, delivery, _) = held(&t, &shop, &ann_token).await;
    let url = format!("/api/v1/business/deliveries/{delivery}/reassign");

    // Only the business's staff with dispatch rights.
    t.send(Method::POST, &url, Some(&ann_token), None)
        .await
        .expect_problem(StatusCode::FORBIDDEN, "forbidden");
    let other = shop_of_other(&t).await;
    t.send(Method::POST, &url, Some(&other), None)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "not_found");

    let view = t
        .send(Method::POST, &url, Some(&shop.owner), None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(view["status"], "offered", "{view}");
    assert_eq!(view["events"][0]["command"], "reassign");
    assert_eq!(
        emails(&t, "delivery_reassigned").await,
        vec![(email_of(&t, ann).await, order.to_string())]
    );
    let late = report(
        &t,
        &ann_token,
        delivery,
        json!({"status": "arrived_at_store"}),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(late["outcome"], "superseded");
    let offer = only_offer(&assignments(&t, &ben_token).await);
    answer(&t, &ben_token, &offer, "accept")
        .await
        .expect(StatusCode::OK);
    // Reassigning a delivery nobody holds is a conflict; after pickup it is refused.
    staff_order(&t, &shop, order, json!({"type": "mark_ready"})).await;
    report(&t, &ben_token, delivery, json!({"status": "picked_up"}))
        .await
        .expect(StatusCode::OK);
    let late = t.send(Method::POST, &url, Some(&shop.owner), None).await;
    expect_field(
        &late,
        StatusCode::CONFLICT,
        "invalid_transition",
        "delivery_forbidden",
    );
}

#[tokio::test]
async fn cancelling_the_order_before_pickup_tells_the_driver() {
    let t = TestApp::new().await;
    let shop = shop(&t, "delivery-cancel").await;
    let (ann, ann_token) = driver(&t, "Ann", (60.171, 24.94), Some((shop.business, 1))).await;
    let (order, delivery, _) = held(&t, &shop, &ann_token).await;
    report(
        &t,
        &ann_token,
        delivery,
        json!({"status": "arrived_at_store"}),
    )
    .await
    .expect(StatusCode::OK);

    staff_order(
        &t,
        &shop,
        order,
        json!({"type": "cancel", "reason": "out of soup"}),
    )
    .await;
    let (command, from, to, driver): (String, String, String, Option<Uuid>) = sqlx::query_as(
        "SELECT command, from_status, to_status, driver_id FROM delivery_events \
          WHERE delivery_id = $1 AND command = 'cancel'",
    )
    .bind(delivery)
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(
        (command.as_str(), from.as_str(), to.as_str(), driver),
        ("cancel", "arrived_at_store", "cancelled", Some(ann))
    );
    assert_eq!(
        emails(&t, "delivery_cancelled").await,
        vec![(email_of(&t, ann).await, order.to_string())]
    );
    // Her phone's late report finds the delivery cancelled: recorded, nothing changes.
    let late = report(&t, &ann_token, delivery, json!({"status": "picked_up"}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(late["outcome"], "superseded");
    assert_eq!(late["status"], "cancelled");
    assert_eq!(order_status(&t, order).await, "cancelled");
    assert!(assignments(&t, &ann_token).await["assignments"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_delivered_card_order_is_captured() {
    let t = TestApp::new().await;
    let standin = stripe_standin::StandIn::start().await;
    let gateway = fleetfront_server::payments::stripe::StripeGateway::new(
        &standin.base_url,
        stripe_standin::SECRET_KEY,
    )
    .unwrap();
    assert!(t
        .app
        .configure_stripe(fleetfront_server::payments::webhook::Stripe::new(
            gateway,
            "whsec_delivery_test"
        )));
    let shop = shop(&t, "delivery-card").await;
    let (_, ann_token) = driver(&t, "Ann", (60.171, 24.94), Some((shop.business, 1))).await;
    let placed = t
        .send_with(
            Method::POST,
            "/api/v1/customers/guest-checkout",
            None,
            Some(json!({
                "store": shop.subdomain,
                "email": "guest@example.test",
                "phone": "+358401234567",
                "items": [{"product_id": shop.product, "variant_id": shop.variant, "quantity": 1}],
                "fulfilment": {"kind": "delivery", "address": {"address_line1": "Main Street 1",
                    "city": "Helsinki", "country": "FI", "latitude": DROP_OFF.0, "longitude": DROP_OFF.1}},
                "payment": {"method": "card", "token": "pm_card_visa"},
                "expected_total_minor": 1300,
            })),
            &[("Idempotency-Key", &Uuid::new_v4().to_string())],
        )
        .await
        .expect(StatusCode::CREATED);
    let order: Uuid = placed["id"].as_str().unwrap().parse().unwrap();
    staff_order(&t, &shop, order, json!({"type": "accept", "prep_time": 15})).await;
    let offer = only_offer(&assignments(&t, &ann_token).await);
    let taken = answer(&t, &ann_token, &offer, "accept")
        .await
        .expect(StatusCode::OK);
    let delivery: Uuid = taken["delivery_id"].as_str().unwrap().parse().unwrap();
    assert!(taken.get("cash_to_collect").is_none());
    staff_order(&t, &shop, order, json!({"type": "mark_ready"})).await;
    report(&t, &ann_token, delivery, json!({"status": "picked_up"}))
        .await
        .expect(StatusCode::OK);
    // No cash on a card order.
    let cash = report(
        &t,
        &ann_token,
        delivery,
        json!({"status": "delivered", "cash_collected": {"amount_minor": 1300}}),
    )
    .await;
    expect_field(
        &cash,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
        "cash_not_due",
    );
    report(&t, &ann_token, delivery, json!({"status": "delivered"}))
        .await
        .expect(StatusCode::OK);
    let (status, payment): (String, String) =
        sqlx::query_as("SELECT status, payment_status FROM orders WHERE id = $1")
            .bind(order)
            .fetch_one(&t.db.pools.owner)
            .await
            .unwrap();
    assert_eq!(
        (status.as_str(), payment.as_str()),
        ("delivered", "captured")
    );
    let reference: String =
        sqlx::query_scalar("SELECT payment_reference FROM orders WHERE id = $1")
            .bind(order)
            .fetch_one(&t.db.pools.owner)
            .await
            .unwrap();
    assert_eq!(
        standin.requests("POST", &format!("/v1/payment_intents/{reference}/capture")),
        1
    );
}
