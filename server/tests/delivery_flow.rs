//! The whole delivery, end to end on real PostgreSQL through the HTTP router, as issue 4's
//! "done means" describes it: an order is offered to the nearest driver, the offer times out
//! and goes to a second driver who accepts, the driver reports pickup, uploads the proof photo
//! the business requires and delivers with the cash collected; the driver's earnings are
//! written once and shown, and the business's payout for the day is computed and processed
//! once through the payout gateway (Stripe's Transfers API, played by the local stand-in).
//! The customer's tracking page reflects every step.

#![allow(clippy::unwrap_used)] // A failed unwrap in a test is a failed test.

mod common;
#[path = "support/stripe_standin.rs"]
mod stripe_standin;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::fleet::{
    accepted_order_with_token, answer, assignments, driver, only_offer, run_due_until_handled, shop,
};
use common::{TestApp, PASSWORD};
use fleetfront_server::payments::stripe::StripeGateway;
use fleetfront_server::payments::webhook::Stripe;
use serde_json::{json, Value};
use stripe_standin::{StandIn, SECRET_KEY};
use uuid::Uuid;

const BOUNDARY: &str = "flow-proof-boundary";

/// The drop-off of the fleet helpers' orders.
const DROP_OFF: (f64, f64) = (60.175, 24.94);

/// The start of a PNG, enough for the server's type sniffing.
fn png() -> Vec<u8> {
    vec![
        0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, b'I', b'H', b'D', b'R', 7,
    ]
}

async fn tracking(t: &TestApp, order: Uuid, token: &str) -> Value {
    t.send(
        Method::GET,
        &format!("/api/v1/orders/{order}/tracking?token={token}"),
        None,
        None,
    )
    .await
    .expect(StatusCode::OK)
}

fn kinds(view: &Value) -> Vec<String> {
    view["delivery_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

async fn step(t: &TestApp, token: &str, delivery: &str, body: Value) -> common::Reply {
    t.send(
        Method::PATCH,
        &format!("/api/v1/driver/deliveries/{delivery}/status"),
        Some(token),
        Some(body),
    )
    .await
}

async fn fix(t: &TestApp, token: &str, at: (f64, f64), seq: u64) {
    t.send(
        Method::POST,
        "/api/v1/driver/location",
        Some(token),
        Some(json!({"device_id": "phone-1", "fixes": [{
            "latitude": at.0, "longitude": at.1, "accuracy_m": 5.0, "heading_deg": 0.0,
            "speed_mps": 4.0, "recorded_at": chrono::Utc::now() - chrono::Duration::seconds(1),
            "seq": seq,
        }]})),
    )
    .await
    .expect(StatusCode::ACCEPTED);
}

#[tokio::test]
async fn an_order_is_offered_delivered_paid_and_tracked_end_to_end() {
    let standin = StandIn::start().await;
    let t = TestApp::new().await;
    let gateway = StripeGateway::new(&standin.base_url, SECRET_KEY).unwrap();
    assert!(t.app.configure_stripe(Stripe::new(gateway, "whsec_flow")));
    let shop = shop(&t, "flow").await;
    let owner_pool = &t.db.pools.owner;
    // The platform pays drivers 0.50 per km beyond 1 km, keeps 10 % of the fees.
    sqlx::query(
        "INSERT INTO driver_pay_rates (currency, per_km_minor, included_metres, commission_bps) \
         VALUES ('EUR', 50, 100, 1000)",
    )
    .execute(owner_pool)
    .await
    .unwrap();
    sqlx::query("UPDATE businesses SET payout_account = 'acct_flow' WHERE id = $1")
        .bind(shop.business)
        .execute(owner_pool)
        .await
        .unwrap();
    t.send(
        Method::PATCH,
        "/api/v1/business/dispatch-settings",
        Some(&shop.owner),
        Some(json!({"require_proof_photo": true})),
    )
    .await
    .expect(StatusCode::OK);
    // Two dedicated drivers: Nina next to the store, Omar a little further away.
    let (nina, nina_token) = driver(&t, "Nina", (60.1701, 24.9401), Some((shop.business, 1))).await;
    let (omar, omar_token) = driver(&t, "Omar", (60.172, 24.945), Some((shop.business, 1))).await;

    // The order is accepted: the nearest driver is offered it; the customer sees no courier.
    let (order, token) = accepted_order_with_token(&t, &shop).await;
    let view = tracking(&t, order, &token).await;
    assert_eq!(view["status"], "confirmed");
    assert!(view.get("courier").is_none(), "{view}");
    let first = only_offer(&assignments(&t, &nina_token).await);
    assert!(assignments(&t, &omar_token).await["offers"]
        .as_array()
        .unwrap()
        .is_empty());

    // Nina lets it time out; Omar is offered it; Nina's late accept is refused.
    t.app.clock.advance(31);
    run_due_until_handled(&t).await;
    answer(&t, &nina_token, &first, "accept")
        .await
        .expect_problem(StatusCode::CONFLICT, "offer_expired");
    let second = only_offer(&assignments(&t, &omar_token).await);
    let taken = answer(&t, &omar_token, &second, "accept")
        .await
        .expect(StatusCode::OK);
    let delivery = taken["delivery_id"].as_str().unwrap().to_owned();
    assert_eq!(taken["driver_id"], omar.to_string());
    let view = tracking(&t, order, &token).await;
    assert_eq!(view["courier"]["live"], true, "{view}");
    assert!(view["courier"]["eta_seconds"].as_u64().unwrap() > 0);
    assert_eq!(kinds(&view), ["driver_assigned"]);

    // The store gets it ready; Omar arrives and picks it up.
    t.send(
        Method::PATCH,
        &format!("/api/v1/business/orders/{order}"),
        Some(&shop.owner),
        Some(json!({"type": "mark_ready"})),
    )
    .await
    .expect(StatusCode::OK);
    step(
        &t,
        &omar_token,
        &delivery,
        json!({"status": "arrived_at_store"}),
    )
    .await
    .expect(StatusCode::OK);
    step(&t, &omar_token, &delivery, json!({"status": "picked_up"}))
        .await
        .expect(StatusCode::OK);
    fix(&t, &omar_token, (60.173, 24.94), 2).await;
    let view = tracking(&t, order, &token).await;
    assert_eq!(view["status"], "picked_up");
    assert_eq!(view["courier"]["position"]["latitude"], 60.173);
    assert_eq!(
        kinds(&view),
        ["driver_assigned", "driver_at_store", "picked_up"]
    );

    // At the door: the business requires a proof photo.
    fix(&t, &omar_token, DROP_OFF, 3).await;
    step(
        &t,
        &omar_token,
        &delivery,
        json!({"status": "arrived_at_customer"}),
    )
    .await
    .expect(StatusCode::OK);
    let cash = json!({"amount_minor": 1300});
    let refused = step(
        &t,
        &omar_token,
        &delivery,
        json!({"status": "delivered", "cash_collected": cash}),
    )
    .await;
    refused.expect_problem(StatusCode::CONFLICT, "invalid_transition");
    assert_eq!(refused.body["errors"][0]["code"], "proof_required");
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"door.png\"\r\nContent-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&png());
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    let proof = t
        .raw(
            Request::builder()
                .method(Method::POST)
                .uri(format!("/api/v1/driver/deliveries/{delivery}/proof"))
                .header(header::AUTHORIZATION, format!("Bearer {omar_token}"))
                .header(
                    header::CONTENT_TYPE,
                    format!("multipart/form-data; boundary={BOUNDARY}"),
                )
                .body(Body::from(body))
                .unwrap(),
        )
        .await
        .expect(StatusCode::CREATED);
    let done = step(
        &t,
        &omar_token,
        &delivery,
        json!({"status": "delivered", "cash_collected": cash,
               "position": {"latitude": DROP_OFF.0, "longitude": DROP_OFF.1},
               "recorded_at": chrono::Utc::now() - chrono::Duration::seconds(5)}),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(done["status"], "delivered");
    assert_eq!(done["proofs"][0]["sha256"], proof["sha256"]);
    // 3.00 fee + 0.50/km over the 556 m trip beyond 100 m (0.23) − 10 % of 3.23 (0.32).
    assert_eq!(done["earnings"]["delivery_fee"]["minor"], 300, "{done}");
    assert_eq!(done["earnings"]["distance_fee"]["minor"], 23, "{done}");
    assert_eq!(done["earnings"]["platform_fee"]["minor"], 32, "{done}");
    assert_eq!(done["earnings"]["net"]["minor"], 291, "{done}");
    let view = tracking(&t, order, &token).await;
    assert_eq!(view["status"], "delivered");
    assert!(view.get("courier").is_none(), "{view}");
    assert_eq!(
        kinds(&view),
        [
            "driver_assigned",
            "driver_at_store",
            "picked_up",
            "driver_arrived",
            "delivered"
        ]
    );
    // A retry of the hand-over (a phone that lost the answer) changes nothing.
    step(
        &t,
        &omar_token,
        &delivery,
        json!({"status": "delivered", "cash_collected": cash}),
    )
    .await
    .expect(StatusCode::OK);
    let rows: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM driver_earnings WHERE order_id = $1 AND driver_id = $2",
    )
    .bind(order)
    .bind(omar)
    .fetch_one(owner_pool)
    .await
    .unwrap();
    assert_eq!(rows, 1, "exactly one earnings row");
    let nina_rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM driver_earnings WHERE driver_id = $1")
            .bind(nina)
            .fetch_one(owner_pool)
            .await
            .unwrap();
    assert_eq!(nina_rows, 0);

    // Omar sees the delivery in his earnings, pending, and the cash he holds.
    let earnings = t
        .send(
            Method::GET,
            "/api/v1/driver/earnings?group=day",
            Some(&omar_token),
            None,
        )
        .await
        .expect(StatusCode::OK);
    let totals = &earnings["currencies"][0]["totals"];
    assert_eq!(totals["deliveries"], 1, "{earnings}");
    assert_eq!(totals["net"]["minor"], 291);
    assert_eq!(totals["pending"]["minor"], 291);
    assert_eq!(earnings["cash_held"][0]["held"]["minor"], 1300);

    // The next day the platform pays the business for the day: once, however often asked.
    t.app.clock.advance(86_400);
    let admin = t.admin_token().await;
    let until = (t.app.clock.now() + chrono::Duration::days(1))
        .date_naive()
        .to_string();
    let created = t
        .send(
            Method::POST,
            "/api/v1/admin/payouts/run",
            Some(&admin),
            Some(json!({"grouping": "day", "until": until})),
        )
        .await
        .expect(StatusCode::OK);
    let payout = created["created"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["business_id"] == shop.business.to_string())
        .unwrap_or_else(|| panic!("no business payout in {created}"))
        .clone();
    let money = &payout["business"];
    assert_eq!(money["gross_revenue"]["minor"], 1300, "{payout}");
    assert_eq!(money["driver_payments"]["minor"], 323, "{payout}");
    let net = money["net"]["minor"].as_i64().unwrap();
    assert_eq!(
        net,
        1300 - money["platform_fees"]["minor"].as_i64().unwrap() - 323,
        "{payout}"
    );
    t.send(
        Method::PUT,
        "/api/v1/auth/pin",
        Some(&admin),
        Some(json!({"pin": "2580", "password": PASSWORD})),
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    let elevated = t
        .send(
            Method::POST,
            "/api/v1/auth/pin/verify",
            Some(&admin),
            Some(json!({"pin": "2580", "action": "payout"})),
        )
        .await
        .expect(StatusCode::OK)["elevated_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = payout["id"].as_str().unwrap();
    for _ in 0..2 {
        let paid = t
            .send_with(
                Method::POST,
                &format!("/api/v1/admin/payouts/{id}/process"),
                Some(&admin),
                None,
                &[("X-Fleetfront-Elevation", &elevated)],
            )
            .await
            .expect(StatusCode::OK);
        assert_eq!(paid["status"], "paid", "{paid}");
    }
    let transfers = standin.transfers();
    let to_business: Vec<&Value> = transfers
        .iter()
        .filter(|tr| tr["destination"] == "acct_flow")
        .collect();
    assert_eq!(to_business.len(), 1, "{transfers:?}");
    assert_eq!(to_business[0]["amount"].as_i64().unwrap(), net);
}

/// Two reports of the hand-over at once (a phone retrying while its first request is still
/// running): one applies, the other is superseded, the driver is paid once and the order
/// counts once for its customer.
#[tokio::test]
async fn concurrent_hand_over_reports_pay_once() {
    let t = TestApp::new().await;
    let shop = shop(&t, "flow-race").await;
    let (_, token) = driver(&t, "Rui", (60.1701, 24.9401), Some((shop.business, 1))).await;
    // A signed-in customer's order: completing it counts for the customer.
    let customer = t
        .send(
            Method::POST,
            "/api/v1/auth/customer/register",
            None,
            Some(
                json!({"store": shop.subdomain, "email": "ann@example.test", "password": PASSWORD,
                        "full_name": "Ann Customer"}),
            ),
        )
        .await
        .expect(StatusCode::CREATED)["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let placed = t
        .send_with(
            Method::POST,
            "/api/v1/orders",
            Some(&customer),
            Some(json!({
                "items": [{"product_id": shop.product, "variant_id": shop.variant, "quantity": 1}],
                "fulfilment": {"kind": "delivery", "address": {"address_line1": "Main Street 1",
                    "city": "Helsinki", "country": "FI", "latitude": DROP_OFF.0, "longitude": DROP_OFF.1}},
                "payment": {"method": "cash"},
                "expected_total_minor": 1300,
            })),
            &[("Idempotency-Key", &Uuid::new_v4().to_string())],
        )
        .await
        .expect(StatusCode::CREATED);
    let order: Uuid = placed["id"].as_str().unwrap().parse().unwrap();
    t.send(
        Method::PATCH,
        &format!("/api/v1/business/orders/{order}"),
        Some(&shop.owner),
        Some(json!({"type": "accept", "prep_time": 15})),
    )
    .await
    .expect(StatusCode::OK);
    let offer = only_offer(&assignments(&t, &token).await);
    let delivery = answer(&t, &token, &offer, "accept")
        .await
        .expect(StatusCode::OK)["delivery_id"]
        .as_str()
        .unwrap()
        .to_owned();
    step(&t, &token, &delivery, json!({"status": "picked_up"}))
        .await
        .expect(StatusCode::OK);
    let body = json!({"status": "delivered", "cash_collected": {"amount_minor": 1300}});
    let (a, b) = tokio::join!(
        step(&t, &token, &delivery, body.clone()),
        step(&t, &token, &delivery, body.clone())
    );
    let mut outcomes = vec![
        a.expect(StatusCode::OK)["outcome"]
            .as_str()
            .unwrap()
            .to_owned(),
        b.expect(StatusCode::OK)["outcome"]
            .as_str()
            .unwrap()
            .to_owned(),
    ];
    outcomes.sort();
    assert_eq!(outcomes, ["applied", "superseded"]);
    let owner_pool = &t.db.pools.owner;
    let (earnings, cash, delivered): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM driver_earnings WHERE order_id = $1), \
                (SELECT count(*) FROM driver_cash WHERE order_id = $1), \
                (SELECT count(*) FROM order_status_history WHERE order_id = $1 \
                   AND to_status = 'delivered' AND outcome = 'applied')",
    )
    .bind(order)
    .fetch_one(owner_pool)
    .await
    .unwrap();
    assert_eq!((earnings, cash, delivered), (1, 1, 1));
    let counted: (i64, i64) = sqlx::query_as(
        "SELECT total_orders, total_spent_minor FROM customers WHERE email = 'ann@example.test'",
    )
    .fetch_one(owner_pool)
    .await
    .unwrap();
    assert_eq!(
        counted,
        (1, 1300),
        "the delivered order counts for its customer once"
    );
}
