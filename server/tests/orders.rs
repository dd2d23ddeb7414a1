//! Orders end to end on real PostgreSQL, through the HTTP router: checkout (account and guest,
//! cash), idempotent retries, price changes, opening hours, delivery radius, the last-item race,
//! discount codes, the business working the order, the acceptance timeout, tracking, and
//! cross-tenant access.

#![allow(clippy::unwrap_used)] // A failed unwrap in a test is a failed test.

mod common;
#[path = "support/stripe_standin.rs"]
mod stripe_standin;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::{TestApp, PASSWORD};
use serde_json::{json, Value};
use tower::ServiceExt;
use uuid::Uuid;

/// One onboarded, published store with one product (1250) and its tracked variant (+250).
struct Shop {
    business: Uuid,
    owner: String,
    subdomain: String,
    product: Uuid,
    variant: Uuid,
}

async fn shop(t: &TestApp, subdomain: &str, stock: i64) -> Shop {
    let (business, owner) = t.open_store(subdomain, "growth").await;
    // Delivery: 3.00 base within 1 km, 1.00 per started km beyond; 24 % tax included.
    t.set_delivery_fees(business, 2400).await;
    let (product, variant) = t
        .product_with_variant(
            &owner,
            json!({
                "sku": "PIZZA", "name": "Pizza <Margherita>", "price_minor": 1250, "is_published": true,
                "variants": [{"name": "Large", "sku": "PIZZA-L", "price_adjustment_minor": 250, "stock_quantity": stock}]
            }),
        )
        .await;
    Shop {
        business,
        owner,
        subdomain: subdomain.to_owned(),
        product,
        variant,
    }
}

async fn customer(t: &TestApp, shop: &Shop, email: &str) -> String {
    t.send(
        Method::POST,
        "/api/v1/auth/customer/register",
        None,
        Some(json!({"store": shop.subdomain, "email": email, "password": PASSWORD, "full_name": "Ann Customer"})),
    )
    .await
    .expect(StatusCode::CREATED)["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn near() -> Value {
    json!({"address_line1": "Main Street 1", "city": "Helsinki", "country": "FI", "latitude": 60.175, "longitude": 24.94})
}

fn pickup(shop: &Shop, quantity: i64, total: i64) -> Value {
    json!({
        "items": [{"product_id": shop.product, "variant_id": shop.variant, "quantity": quantity}],
        "fulfilment": {"kind": "pickup"},
        "payment": {"method": "cash"},
        "expected_total_minor": total,
    })
}

fn guest(shop: &Shop, mut order: Value) -> Value {
    order["store"] = json!(shop.subdomain);
    order["email"] = json!("guest@example.test");
    order["phone"] = json!("+358401234567");
    order
}

async fn place(t: &TestApp, token: &str, key: &str, body: Value) -> common::Reply {
    t.send_with(
        Method::POST,
        "/api/v1/orders",
        Some(token),
        Some(body),
        &[("Idempotency-Key", key)],
    )
    .await
}

async fn place_guest(t: &TestApp, key: &str, body: Value) -> common::Reply {
    t.send_with(
        Method::POST,
        "/api/v1/customers/guest-checkout",
        None,
        Some(body),
        &[("Idempotency-Key", key)],
    )
    .await
}

async fn count(t: &TestApp, sql: &str, business: Uuid) -> i64 {
    sqlx::query_scalar(sql)
        .bind(business)
        .fetch_one(&t.db.pools.owner)
        .await
        .unwrap()
}

async fn stock(t: &TestApp, shop: &Shop) -> i32 {
    sqlx::query_scalar(
        "SELECT stock_quantity FROM product_variants WHERE business_id = $1 AND id = $2",
    )
    .bind(shop.business)
    .bind(shop.variant)
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap()
}

/// Counts of everything a checkout writes, to prove a refused one wrote nothing.
async fn written(t: &TestApp, business: Uuid) -> Vec<i64> {
    let mut counts = Vec::new();
    for table in [
        "orders",
        "order_items",
        "order_status_history",
        "order_tracking_events",
        "idempotency_keys",
        "outbox_messages",
        "payment_transactions",
        "platform_fees",
    ] {
        counts.push(
            count(
                t,
                &format!("SELECT count(*) FROM {table} WHERE business_id = $1"),
                business,
            )
            .await,
        );
    }
    counts
}

async fn work(t: &TestApp, shop: &Shop, order: &str, event: Value) -> Value {
    t.send(
        Method::PATCH,
        &format!("/api/v1/business/orders/{order}"),
        Some(&shop.owner),
        Some(event),
    )
    .await
    .expect(StatusCode::OK)
}

#[tokio::test]
async fn customer_to_business_flow_with_cash() {
    let t = TestApp::new().await;
    let shop = shop(&t, "flow-shop", 5).await;
    let ann = customer(&t, &shop, "ann@example.test").await;

    // Browse.
    let products = t
        .send(
            Method::GET,
            "/api/v1/storefronts/flow-shop/products",
            None,
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert!(products.to_string().contains(&shop.product.to_string()));

    // Check out: 2 × 15.00 delivered 556 m away (3.00 fee) = 33.00, 24 % tax included.
    let mut body = pickup(&shop, 2, 3300);
    body["fulfilment"] = json!({"kind": "delivery", "address": near()});
    body["items"][0]["expected_unit_price_minor"] = json!(1500);
    let order = place(&t, &ann, "flow-1", body)
        .await
        .expect(StatusCode::CREATED);
    let id = order["id"].as_str().unwrap().to_owned();
    assert_eq!(order["status"], "pending");
    assert_eq!(order["total"]["minor"], 3300);
    assert_eq!(order["delivery_fee"]["minor"], 300);
    assert_eq!(
        order["tax"]["minor"], 581,
        "24 % contained in the goods' 30.00, not in the delivery fee"
    );
    assert_eq!(order["payment_status"], "authorized");
    assert_eq!(stock(&t, &shop).await, 3);
    let confirmation: Value = sqlx::query_scalar(
        "SELECT payload FROM outbox_messages WHERE business_id = $1 AND payload->>'template' = 'order_confirmation'",
    )
    .bind(shop.business)
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(confirmation["to"], "ann@example.test");
    assert_eq!(confirmation["total"], "33.00 EUR");
    let link = confirmation["tracking_url"].as_str().unwrap();
    assert!(
        link.contains("flow-shop.")
            && link.contains(&format!("/api/v1/orders/{id}/tracking?token=")),
        "{link}"
    );

    // The business sees it first on its board and works it.
    let board = t
        .send(
            Method::GET,
            "/api/v1/business/orders?status=pending",
            Some(&shop.owner),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(board["items"][0]["id"], id.as_str());
    let accepted = work(&t, &shop, &id, json!({"type": "accept", "prep_time": 20})).await;
    assert_eq!(accepted["status"], "confirmed");
    assert_eq!(accepted["prep_time_minutes"], 20);
    work(&t, &shop, &id, json!({"type": "start_preparing"})).await;
    let ready = work(&t, &shop, &id, json!({"type": "mark_ready"})).await;
    assert_eq!(ready["status"], "ready");
    // A late repeat is recorded, not applied.
    let late = work(&t, &shop, &id, json!({"type": "start_preparing"})).await;
    assert_eq!(late["status"], "ready");
    // Staff may not cancel... a pending order only; an order that is ready can't be accepted.
    t.send(
        Method::PATCH,
        &format!("/api/v1/business/orders/{id}"),
        Some(&shop.owner),
        Some(json!({"type": "deliver"})),
    )
    .await
    .expect_problem(StatusCode::CONFLICT, "invalid_transition");

    // The customer tracks it.
    let tracking = t
        .send(
            Method::GET,
            &format!("/api/v1/orders/{id}/tracking"),
            Some(&ann),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(tracking["status"], "ready");
    let steps: Vec<String> = tracking["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            format!(
                "{}>{}:{}",
                h["from"].as_str().unwrap_or("-"),
                h["to"].as_str().unwrap(),
                h["outcome"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            "->pending:applied",
            "pending>confirmed:applied",
            "confirmed>preparing:applied",
            "preparing>ready:applied",
            "ready>ready:superseded"
        ]
    );
    assert!(tracking["estimated_ready_at"].is_string());
    let mine = t
        .send(Method::GET, "/api/v1/customers/me/orders", Some(&ann), None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(mine["items"][0]["id"], id.as_str());
    let statuses = count(
        &t,
        "SELECT count(*) FROM outbox_messages WHERE business_id = $1 AND payload->>'template' = 'order_status'",
        shop.business,
    )
    .await;
    assert_eq!(statuses, 3, "confirmed, preparing, ready");
    let audited = count(
        &t,
        "SELECT count(*) FROM audit_log WHERE business_id = $1 AND action IN ('order.place', 'order.update') AND outcome = 'ok'",
        shop.business,
    )
    .await;
    assert_eq!(
        audited, 5,
        "placed, accepted, preparing, ready, and the late repeat"
    );

    // Another customer of the store cannot see it.
    let bob = customer(&t, &shop, "bob@example.test").await;
    t.send(
        Method::GET,
        &format!("/api/v1/orders/{id}/tracking"),
        Some(&bob),
        None,
    )
    .await
    .expect_problem(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn guest_checkout_and_tracking_by_token() {
    let t = TestApp::new().await;
    let shop = shop(&t, "guest-shop", 5).await;
    let order = place_guest(&t, "g-1", guest(&shop, pickup(&shop, 1, 1500)))
        .await
        .expect(StatusCode::CREATED);
    let id = order["id"].as_str().unwrap();
    let token = order["tracking_token"].as_str().unwrap();
    assert!(order["customer_id"].is_null());
    let tracking = t
        .send(
            Method::GET,
            &format!("/api/v1/orders/{id}/tracking?token={token}"),
            None,
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(tracking["status"], "pending");
    assert_eq!(tracking["items"][0]["product_name"], "Pizza <Margherita>");
    // A pickup order collected at the store captures the cash.
    for event in [
        json!({"type": "accept", "prep_time": 10}),
        json!({"type": "mark_ready"}),
    ] {
        work(&t, &shop, id, event).await;
    }
    let collected = work(&t, &shop, id, json!({"type": "pick_up"})).await;
    assert_eq!(collected["status"], "picked_up");
    assert_eq!(collected["payment_status"], "captured");
    t.send(
        Method::GET,
        &format!("/api/v1/orders/{id}/tracking?token=wrong"),
        None,
        None,
    )
    .await
    .expect_problem(StatusCode::NOT_FOUND, "not_found");
    t.send(
        Method::GET,
        &format!("/api/v1/orders/{id}/tracking"),
        None,
        None,
    )
    .await
    .expect_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
    // Guests give an inline address, never a saved one, and a valid email.
    let mut bad = guest(&shop, pickup(&shop, 1, 1500));
    bad["email"] = json!("not-an-email");
    let before = written(&t, shop.business).await;
    place_guest(&t, "g-2", bad)
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let mut bad = guest(&shop, pickup(&shop, 1, 1500));
    bad["fulfilment"] = json!({"kind": "delivery", "address_id": Uuid::now_v7()});
    place_guest(&t, "g-3", bad)
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let mut bad = guest(&shop, pickup(&shop, 1, 1500));
    bad["store"] = json!("no-such-store");
    place_guest(&t, "g-4", bad)
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(written(&t, shop.business).await, before);
}

#[tokio::test]
async fn retries_with_the_same_key_place_one_order() {
    let t = TestApp::new().await;
    let shop = shop(&t, "retry-shop", 5).await;
    let ann = customer(&t, &shop, "ann@example.test").await;
    let first = place(&t, &ann, "same-key", pickup(&shop, 1, 1500))
        .await
        .expect(StatusCode::CREATED);
    let again = place(&t, &ann, "same-key", pickup(&shop, 1, 1500))
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(first["id"], again["id"]);
    assert_eq!(
        count(
            &t,
            "SELECT count(*) FROM orders WHERE business_id = $1",
            shop.business
        )
        .await,
        1
    );
    assert_eq!(stock(&t, &shop).await, 4, "one decrement");
    // Concurrent duplicates too.
    let replies = concurrently(&t, 4, |_| {
        request(
            "/api/v1/orders",
            Some(&ann),
            "dup-key",
            pickup(&shop, 1, 1500),
        )
    })
    .await;
    let ids: std::collections::BTreeSet<String> = replies
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, StatusCode::CREATED, "{body}");
            body["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(stock(&t, &shop).await, 3);
    // The same key with another body is refused, and writes nothing.
    let before = written(&t, shop.business).await;
    place(&t, &ann, "same-key", pickup(&shop, 2, 3000))
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused");
    // No key at all.
    t.send(
        Method::POST,
        "/api/v1/orders",
        Some(&ann),
        Some(pickup(&shop, 1, 1500)),
    )
    .await
    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(written(&t, shop.business).await, before);
}

#[tokio::test]
async fn a_changed_price_is_reported_and_nothing_is_written() {
    let t = TestApp::new().await;
    let shop = shop(&t, "price-shop", 5).await;
    let ann = customer(&t, &shop, "ann@example.test").await;
    let before = written(&t, shop.business).await;
    let mut body = pickup(&shop, 1, 1400);
    body["items"][0]["expected_unit_price_minor"] = json!(1400);
    let reply = place(&t, &ann, "p-1", body).await;
    reply.expect_problem(StatusCode::CONFLICT, "price_changed");
    let fields: Vec<&str> = reply.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["items[0]", "expected_total_minor"]);
    assert!(
        reply.body["detail"].as_str().unwrap().contains("15.00 EUR"),
        "{}",
        reply.body
    );
    assert_eq!(written(&t, shop.business).await, before);
    assert_eq!(stock(&t, &shop).await, 5);
    // The same key may be used again once the customer confirms the new total.
    let mut body = pickup(&shop, 1, 1500);
    body["items"][0]["expected_unit_price_minor"] = json!(1500);
    place(&t, &ann, "p-1", body)
        .await
        .expect(StatusCode::CREATED);
}

#[tokio::test]
async fn closed_store_scheduled_time_and_delivery_radius() {
    let t = TestApp::new().await;
    let shop = shop(&t, "hours-shop", 5).await;
    let ann = customer(&t, &shop, "ann@example.test").await;
    let before = written(&t, shop.business).await;
    // Outside the delivery radius (about 14 km away; the store delivers 4 km).
    let mut far = pickup(&shop, 1, 1800);
    far["fulfilment"] = json!({"kind": "delivery", "address": {"address_line1": "Far 1", "city": "Espoo", "country": "FI", "latitude": 60.30, "longitude": 24.94}});
    place(&t, &ann, "h-1", far)
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "outside_delivery_area");
    // Open 08:00-20:00 Helsinki time: tomorrow 03:00 UTC is before opening.
    t.send(
        Method::PATCH,
        "/api/v1/business/storefront",
        Some(&shop.owner),
        Some(json!({"operating_hours": {"monday": [{"open": "08:00", "close": "20:00"}], "tuesday": [{"open": "08:00", "close": "20:00"}],
            "wednesday": [{"open": "08:00", "close": "20:00"}], "thursday": [{"open": "08:00", "close": "20:00"}],
            "friday": [{"open": "08:00", "close": "20:00"}], "saturday": [{"open": "08:00", "close": "20:00"}],
            "sunday": [{"open": "08:00", "close": "20:00"}]}})),
    )
    .await
    .expect(StatusCode::OK);
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).date_naive();
    let mut early = pickup(&shop, 1, 1500);
    early["scheduled_for"] = json!(tomorrow.and_hms_opt(3, 0, 0).unwrap().and_utc());
    place(&t, &ann, "h-2", early)
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "store_closed");
    let mut noon = pickup(&shop, 1, 1500);
    noon["scheduled_for"] = json!(tomorrow.and_hms_opt(10, 0, 0).unwrap().and_utc());
    assert_eq!(written(&t, shop.business).await, before);
    place(&t, &ann, "h-3", noon)
        .await
        .expect(StatusCode::CREATED);
    // Closed every day: as soon as possible is refused.
    t.send(
        Method::PATCH,
        "/api/v1/business/storefront",
        Some(&shop.owner),
        Some(json!({"operating_hours": {}})),
    )
    .await
    .expect(StatusCode::OK);
    place(&t, &ann, "h-4", pickup(&shop, 1, 1500))
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "store_closed");
}

fn request(path: &str, token: Option<&str>, key: &str, body: Value) -> Request<Body> {
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json")
        .header("Idempotency-Key", key);
    if let Some(token) = token {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    builder.body(Body::from(body.to_string())).unwrap()
}

/// Sends `n` requests at once; returns each status and body.
async fn concurrently(
    t: &TestApp,
    n: usize,
    make: impl Fn(usize) -> Request<Body>,
) -> Vec<(StatusCode, Value)> {
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let router = t.router.clone();
            let request = make(i);
            tokio::spawn(async move {
                let response = router.oneshot(request).await.unwrap();
                let status = response.status();
                let bytes = http_body_util::BodyExt::collect(response.into_body())
                    .await
                    .unwrap()
                    .to_bytes();
                (
                    status,
                    serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                )
            })
        })
        .collect();
    let mut replies = Vec::new();
    for handle in handles {
        replies.push(handle.await.unwrap());
    }
    replies
}

#[tokio::test]
async fn the_last_item_is_sold_once() {
    let t = TestApp::new().await;
    let shop = shop(&t, "race-shop", 1).await;
    let replies = concurrently(&t, 8, |i| {
        let mut body = guest(&shop, pickup(&shop, 1, 1500));
        body["email"] = json!(format!("buyer{i}@example.test"));
        request(
            "/api/v1/customers/guest-checkout",
            None,
            &format!("race-{i}"),
            body,
        )
    })
    .await;
    let won = replies
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    assert_eq!(won, 1, "{replies:?}");
    for (status, body) in &replies {
        assert!(
            *status == StatusCode::CREATED
                || (*status == StatusCode::CONFLICT && body["code"] == "out_of_stock"),
            "{status} {body}"
        );
    }
    assert_eq!(stock(&t, &shop).await, 0);
    assert_eq!(
        count(
            &t,
            "SELECT count(*) FROM orders WHERE business_id = $1",
            shop.business
        )
        .await,
        1
    );
}

#[tokio::test]
async fn discount_codes_valid_expired_and_used_up() {
    let t = TestApp::new().await;
    let shop = shop(&t, "deal-shop", 50).await;
    let ann = customer(&t, &shop, "ann@example.test").await;
    for (code, extra) in [
        (
            "TENOFF",
            "percent_bps, usage_limit) VALUES ($1, $2, $3, 1000, 1",
        ),
        (
            "OLD",
            "amount_minor, valid_until) VALUES ($1, $2, $3, 200, now() - interval '1 day'",
        ),
    ] {
        sqlx::query(&format!(
            "INSERT INTO discount_codes (business_id, id, code, {extra})"
        ))
        .bind(shop.business)
        .bind(Uuid::now_v7())
        .bind(code)
        .execute(&t.db.pools.owner)
        .await
        .unwrap();
    }
    let with = |code: &str, total: i64| {
        let mut body = pickup(&shop, 2, total);
        body["discount_code"] = json!(code);
        body
    };
    let before = written(&t, shop.business).await;
    place(&t, &ann, "d-1", with("old", 2800))
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "discount_invalid");
    place(&t, &ann, "d-2", with("NOPE", 3000))
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "discount_invalid");
    assert_eq!(written(&t, shop.business).await, before);
    let order = place(&t, &ann, "d-3", with("tenoff", 2700))
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(order["discount"]["minor"], 300);
    assert_eq!(order["discount_code"], "TENOFF");
    place(&t, &ann, "d-4", with("TENOFF", 2700))
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "discount_invalid");
    let used: i32 = sqlx::query_scalar(
        "SELECT times_used FROM discount_codes WHERE business_id = $1 AND code = 'TENOFF'",
    )
    .bind(shop.business)
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(used, 1);
}

#[tokio::test]
async fn pending_orders_past_the_acceptance_window_are_rejected() {
    let t = TestApp::new().await;
    let shop = shop(&t, "late-shop", 5).await;
    let order = place_guest(&t, "late-1", guest(&shop, pickup(&shop, 1, 1500)))
        .await
        .expect(StatusCode::CREATED);
    let id: Uuid = order["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(stock(&t, &shop).await, 4);
    // Not yet due.
    assert_eq!(
        fleetfront_server::orders::run_due(&t.app, t.app.clock.now())
            .await
            .unwrap(),
        0
    );
    // The deadline is in the database: a restarted server (fresh state, fresh clock) finds it.
    let t = t.restart().await;
    t.app.clock.advance(181);
    assert_eq!(
        fleetfront_server::orders::run_due(&t.app, t.app.clock.now())
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        fleetfront_server::orders::run_due(&t.app, t.app.clock.now())
            .await
            .unwrap(),
        0
    );
    let (status, payment, reason): (String, String, Option<String>) = sqlx::query_as(
        "SELECT status, payment_status, cancellation_reason FROM orders WHERE business_id = $1 AND id = $2",
    )
    .bind(shop.business)
    .bind(id)
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(
        (status.as_str(), payment.as_str()),
        ("rejected", "released")
    );
    assert_eq!(
        reason.as_deref(),
        Some(fleetfront_domain::order::ACCEPTANCE_TIMEOUT_REASON)
    );
    assert_eq!(
        ledger(&t, &shop, &id.to_string()).await[0].0,
        "canceled",
        "the timeout's release reaches the ledger"
    );
    let by: String = sqlx::query_scalar(
        "SELECT by_party FROM order_status_history WHERE business_id = $1 AND order_id = $2 AND to_status = 'rejected'",
    )
    .bind(shop.business)
    .bind(id)
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(by, "system");
    assert_eq!(
        stock(&t, &shop).await,
        5,
        "the rejected order's stock is for sale again"
    );
    let told = count(
        &t,
        "SELECT count(*) FROM outbox_messages WHERE business_id = $1 AND payload->>'template' = 'order_status' AND payload->>'status' = 'rejected'",
        shop.business,
    )
    .await;
    assert_eq!(told, 1);
    // Accepting it now is a late event: recorded, not applied.
    let late = work(
        &t,
        &shop,
        &id.to_string(),
        json!({"type": "accept", "prep_time": 5}),
    )
    .await;
    assert_eq!(late["status"], "rejected");
}

#[tokio::test]
async fn other_stores_orders_are_not_found_and_audited() {
    let t = TestApp::new().await;
    let a = shop(&t, "a-shop", 5).await;
    let b = shop(&t, "b-shop", 5).await;
    let b_order = place_guest(&t, "x-1", guest(&b, pickup(&b, 1, 1500)))
        .await
        .expect(StatusCode::CREATED);
    let b_id = b_order["id"].as_str().unwrap();
    let ann = customer(&t, &a, "ann@example.test").await;
    for (method, path, token, body) in [
        (
            Method::GET,
            format!("/api/v1/business/orders/{b_id}"),
            a.owner.as_str(),
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/business/orders/{b_id}"),
            a.owner.as_str(),
            Some(json!({"type": "accept", "prep_time": 5})),
        ),
        (
            Method::GET,
            format!("/api/v1/orders/{b_id}/tracking"),
            ann.as_str(),
            None,
        ),
    ] {
        let before = count(
            &t,
            "SELECT count(*) FROM audit_log WHERE business_id = $1 AND outcome = 'denied'",
            a.business,
        )
        .await;
        t.send(method.clone(), &path, Some(token), body)
            .await
            .expect_problem(StatusCode::NOT_FOUND, "not_found");
        let after = count(
            &t,
            "SELECT count(*) FROM audit_log WHERE business_id = $1 AND outcome = 'denied'",
            a.business,
        )
        .await;
        assert_eq!(after, before + 1, "{method} {path} not audited");
    }
    let board = t
        .send(Method::GET, "/api/v1/business/orders", Some(&a.owner), None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(board["items"].as_array().unwrap().len(), 0);
    // B's order is untouched.
    let status: String = sqlx::query_scalar("SELECT status FROM orders WHERE business_id = $1")
        .bind(b.business)
        .fetch_one(&t.db.pools.owner)
        .await
        .unwrap();
    assert_eq!(status, "pending");
}

#[tokio::test]
async fn bad_checkouts_are_4xx_and_write_nothing() {
    let t = TestApp::new().await;
    let shop = shop(&t, "bad-shop", 5).await;
    let ann = customer(&t, &shop, "ann@example.test").await;
    let before = written(&t, shop.business).await;
    let cases: Vec<(Value, StatusCode, &str)> = vec![
        (
            json!({"items": [], "fulfilment": {"kind": "pickup"}, "payment": {"method": "cash"}, "expected_total_minor": 0}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            {
                let mut b = pickup(&shop, 0, 0);
                b["tip_minor"] = json!(-1);
                b
            },
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            {
                let mut b = pickup(&shop, 1, 1500);
                b["items"][0]["product_id"] = json!(Uuid::now_v7());
                b
            },
            StatusCode::CONFLICT,
            "item_unavailable",
        ),
        (
            {
                let mut b = pickup(&shop, 1, 1500);
                b["items"][0]["variant_id"] = Value::Null;
                b
            },
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (pickup(&shop, 6, 9000), StatusCode::CONFLICT, "out_of_stock"),
        (
            {
                let mut b = pickup(&shop, 1, 1500);
                b["payment"] = json!({"method": "card", "token": "pm_card_visa"});
                b
            },
            StatusCode::UNPROCESSABLE_ENTITY,
            "payment_method_unavailable",
        ),
        (
            {
                let mut b = pickup(&shop, 1, 3100);
                b["tip_minor"] = json!(1600);
                b
            },
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
    ];
    for (i, (body, status, code)) in cases.into_iter().enumerate() {
        let reply = place(&t, &ann, &format!("bad-{i}"), body).await;
        assert!(!reply.status.is_server_error());
        reply.expect_problem(status, code);
    }
    // A staff token is not a customer's.
    place(&t, &shop.owner, "bad-staff", pickup(&shop, 1, 1500))
        .await
        .expect_problem(StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(written(&t, shop.business).await, before);
    assert_eq!(stock(&t, &shop).await, 5);
    // Unpublished products are not for sale.
    t.send(
        Method::PATCH,
        &format!("/api/v1/business/products/{}", shop.product),
        Some(&shop.owner),
        Some(json!({"is_published": false})),
    )
    .await
    .expect(StatusCode::OK);
    place(&t, &ann, "bad-draft", pickup(&shop, 1, 1500))
        .await
        .expect_problem(StatusCode::CONFLICT, "item_unavailable");
    assert_eq!(written(&t, shop.business).await, before);
}

#[tokio::test]
async fn the_board_is_live_first_and_pages_with_a_cursor() {
    let t = TestApp::new().await;
    let shop = shop(&t, "board-shop", 50).await;
    let mut ids = Vec::new();
    for i in 0..4 {
        let order = place_guest(&t, &format!("b-{i}"), guest(&shop, pickup(&shop, 1, 1500)))
            .await
            .expect(StatusCode::CREATED);
        ids.push(order["id"].as_str().unwrap().to_owned());
    }
    // 0: done (rejected), 1: in progress, 2 and 3: pending.
    work(
        &t,
        &shop,
        &ids[0],
        json!({"type": "reject", "reason": "out of dough"}),
    )
    .await;
    work(
        &t,
        &shop,
        &ids[1],
        json!({"type": "accept", "prep_time": 10}),
    )
    .await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/business/orders?limit=1&cursor={c}"),
            None => "/api/v1/business/orders?limit=1".to_owned(),
        };
        let page = t
            .send(Method::GET, &path, Some(&shop.owner), None)
            .await
            .expect(StatusCode::OK);
        for item in page["items"].as_array().unwrap() {
            seen.push(item["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        seen,
        [
            ids[2].clone(),
            ids[3].clone(),
            ids[1].clone(),
            ids[0].clone()
        ]
    );
    let rejected = t
        .send(
            Method::GET,
            "/api/v1/business/orders?status=rejected",
            Some(&shop.owner),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(rejected["items"][0]["cancellation_reason"], "out of dough");
    assert_eq!(rejected["items"].as_array().unwrap().len(), 1);
    t.send(
        Method::GET,
        "/api/v1/business/orders?status=lost",
        Some(&shop.owner),
        None,
    )
    .await
    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    t.send(
        Method::GET,
        "/api/v1/business/orders?cursor=nonsense",
        Some(&shop.owner),
        None,
    )
    .await
    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    // Staff reject a pending order (cancelling one is the customer's); an accepted one they
    // cancel with a reason, which both sides see, and its stock is for sale again.
    t.send(
        Method::PATCH,
        &format!("/api/v1/business/orders/{}", ids[2]),
        Some(&shop.owner),
        Some(json!({"type": "cancel", "reason": "no driver"})),
    )
    .await
    .expect_problem(StatusCode::CONFLICT, "invalid_transition");
    let before = stock(&t, &shop).await;
    let cancelled = work(
        &t,
        &shop,
        &ids[1],
        json!({"type": "cancel", "reason": "oven broke"}),
    )
    .await;
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["cancellation_reason"], "oven broke");
    assert_eq!(cancelled["payment_status"], "released");
    assert_eq!(stock(&t, &shop).await, before + 1);
    // A role with orders.read only sees the board but cannot work it.
    t.send(
        Method::POST,
        "/api/v1/business/roles",
        Some(&shop.owner),
        Some(json!({"key": "viewer", "name": "Viewer", "permissions": ["orders.read"]})),
    )
    .await
    .expect(StatusCode::CREATED);
    t.send(
        Method::POST,
        "/api/v1/business/staff",
        Some(&shop.owner),
        Some(json!({"email": "viewer@board-shop.test", "full_name": "Viewer", "role": "viewer", "password": PASSWORD})),
    )
    .await
    .expect(StatusCode::CREATED);
    let viewer = t.login("viewer@board-shop.test", PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    t.send(Method::GET, "/api/v1/business/orders", Some(&viewer), None)
        .await
        .expect(StatusCode::OK);
    t.send(
        Method::PATCH,
        &format!("/api/v1/business/orders/{}", ids[2]),
        Some(&viewer),
        Some(json!({"type": "accept", "prep_time": 5})),
    )
    .await
    .expect_problem(StatusCode::FORBIDDEN, "forbidden");
}

/// A store whose card payments go to a fresh Stripe stand-in.
async fn card_shop(t: &TestApp, subdomain: &str, stock: i64) -> (stripe_standin::StandIn, Shop) {
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
            "whsec_orders_test"
        )));
    (standin, shop(t, subdomain, stock).await)
}

fn releases(standin: &stripe_standin::StandIn) -> usize {
    (1..=10)
        .map(|n| {
            standin.requests(
                "POST",
                &format!("/v1/payment_intents/pi_standin{n:08}/cancel"),
            )
        })
        .sum()
}

/// The catalog may change while the server waits for a card authorization (between reading
/// the checkout's context and writing the order): the order is written only when every line is
/// still for sale at the price it was priced at, and in stock. Otherwise nothing is written,
/// the answer says what changed, and the authorization is released.
#[tokio::test]
async fn a_catalog_change_during_card_authorization_refuses_the_order_and_releases_the_card() {
    let t = TestApp::new().await;
    let (standin, shop) = card_shop(&t, "race-shop", 1).await;
    let ann = customer(&t, &shop, "ann@example.test").await;
    let card = |total: i64| {
        let mut body = pickup(&shop, 1, total);
        body["payment"] = json!({"method": "card", "token": "pm_card_visa"});
        body
    };
    let before = written(&t, shop.business).await;

    // The price goes up while Stripe is being asked.
    let (arrived, release) = standin.hold_next("/v1/payment_intents");
    let raise = async {
        arrived.await.unwrap();
        sqlx::query("UPDATE products SET price_minor = price_minor + 100 WHERE business_id = $1 AND id = $2")
            .bind(shop.business)
            .bind(shop.product)
            .execute(&t.db.pools.owner)
            .await
            .unwrap();
        release.send(()).unwrap();
    };
    let (reply, ()) = tokio::join!(place(&t, &ann, "race-1", card(1500)), raise);
    reply.expect_problem(StatusCode::CONFLICT, "price_changed");
    assert_eq!(written(&t, shop.business).await, before);
    assert_eq!(standin.intents_created(), 1);
    assert_eq!(
        releases(&standin),
        1,
        "the unused authorization is released"
    );

    // The last unit is sold to someone else while Stripe is being asked.
    let (arrived, release) = standin.hold_next("/v1/payment_intents");
    let sell = async {
        arrived.await.unwrap();
        place_guest(&t, "race-guest", guest(&shop, pickup(&shop, 1, 1600)))
            .await
            .expect(StatusCode::CREATED);
        release.send(()).unwrap();
    };
    let (reply, ()) = tokio::join!(place(&t, &ann, "race-2", card(1600)), sell);
    reply.expect_problem(StatusCode::CONFLICT, "out_of_stock");
    assert_eq!(stock(&t, &shop).await, 0);
    assert_eq!(
        count(
            &t,
            "SELECT count(*) FROM orders WHERE business_id = $1",
            shop.business
        )
        .await,
        1,
        "only the guest's order"
    );
    assert_eq!(standin.intents_created(), 2);
    assert_eq!(releases(&standin), 2);
}

#[tokio::test]
async fn card_checkout_authorizes_once_and_captures_on_collection() {
    let t = TestApp::new().await;
    let (standin, shop) = card_shop(&t, "card-shop", 5).await;
    let ann = customer(&t, &shop, "ann@example.test").await;
    let card = |total: i64, token: &str| {
        let mut body = pickup(&shop, 1, total);
        body["payment"] = json!({"method": "card", "token": token});
        body
    };
    let order = place(&t, &ann, "card-1", card(1500, "pm_card_visa"))
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(order["payment_method"], "card");
    assert_eq!(order["payment_status"], "authorized");
    let again = place(&t, &ann, "card-1", card(1500, "pm_card_visa"))
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(again["id"], order["id"]);
    assert_eq!(standin.intents_created(), 1, "a retry authorizes nothing");
    let id = order["id"].as_str().unwrap();
    let reference: String = sqlx::query_scalar(
        "SELECT payment_reference FROM orders WHERE business_id = $1 AND id = $2::uuid",
    )
    .bind(shop.business)
    .bind(id)
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(standin.intent(&reference)["status"], "requires_capture");

    // Refused orders write nothing; a quote that no longer holds is refused before any
    // authorization is asked for.
    let before = written(&t, shop.business).await;
    place(&t, &ann, "card-2", card(1400, "pm_card_visa"))
        .await
        .expect_problem(StatusCode::CONFLICT, "price_changed");
    assert_eq!(standin.intents_created(), 1);
    let cancels = releases(&standin);
    assert_eq!(cancels, 0, "nothing was authorized, so nothing is released");
    place(&t, &ann, "card-3", card(1500, "pm_card_chargeDeclined"))
        .await
        .expect_problem(StatusCode::PAYMENT_REQUIRED, "payment_declined");
    assert_eq!(written(&t, shop.business).await, before);

    // Collected at the store: the card is captured.
    work(&t, &shop, id, json!({"type": "accept", "prep_time": 10})).await;
    work(&t, &shop, id, json!({"type": "mark_ready"})).await;
    assert_eq!(
        ledger(&t, &shop, id).await,
        vec![(
            "authorized".to_owned(),
            1500,
            "stripe".to_owned(),
            Some(reference.clone())
        )],
        "checkout records the authorization with the order"
    );
    let collected = work(&t, &shop, id, json!({"type": "pick_up"})).await;
    assert_eq!(collected["payment_status"], "captured");
    assert_eq!(standin.intent(&reference)["status"], "succeeded");
    assert_eq!(
        ledger(&t, &shop, id).await,
        vec![(
            "completed".to_owned(),
            1500,
            "stripe".to_owned(),
            Some(reference.clone())
        )]
    );
    // Growth plan: 4 % of 15.00.
    assert_eq!(fees(&t, &shop, id).await, vec![(1500, 400, 60)]);

    // Refunded through Stripe, partly: the ledger follows.
    let elevated = elevate(&t, &shop.owner, "refund").await;
    let refunded = refund(
        &t,
        &shop.owner,
        Some(&elevated),
        id,
        json!({"reason": "late", "amount_minor": 500}),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(refunded["payment_status"], "refunded");
    assert_eq!(ledger(&t, &shop, id).await[0].0, "refunded");
    assert_eq!(
        standin.requests("POST", "/v1/refunds"),
        1,
        "one refund at the provider"
    );

    // A rejected card order's authorization is released, and the ledger says so.
    let other = place(&t, &ann, "card-4", card(1500, "pm_card_visa"))
        .await
        .expect(StatusCode::CREATED);
    let other = other["id"].as_str().unwrap();
    let rejected = work(
        &t,
        &shop,
        other,
        json!({"type": "reject", "reason": "kitchen closed early"}),
    )
    .await;
    assert_eq!(rejected["payment_status"], "released");
    let ledger_rows = ledger(&t, &shop, other).await;
    assert_eq!(ledger_rows.len(), 1);
    assert_eq!(ledger_rows[0].0, "canceled");
    assert_eq!(
        standin.intent(ledger_rows[0].3.as_deref().unwrap())["status"],
        "canceled"
    );
    assert!(
        fees(&t, &shop, other).await.is_empty(),
        "no fee on a released payment"
    );
}

/// The ledger rows of an order: (status, amount, gateway, gateway id).
async fn ledger(
    t: &TestApp,
    shop: &Shop,
    order: &str,
) -> Vec<(String, i64, String, Option<String>)> {
    sqlx::query_as(
        "SELECT status, amount_minor, payment_gateway, gateway_transaction_id FROM payment_transactions \
         WHERE business_id = $1 AND order_id = $2::uuid ORDER BY created_at, id",
    )
    .bind(shop.business)
    .bind(order)
    .fetch_all(&t.db.pools.owner)
    .await
    .unwrap()
}

/// The platform fee rows of an order: (base, bps, fee).
async fn fees(t: &TestApp, shop: &Shop, order: &str) -> Vec<(i64, i32, i64)> {
    sqlx::query_as(
        "SELECT base_amount_minor, fee_bps, fee_amount_minor FROM platform_fees \
         WHERE business_id = $1 AND order_id = $2::uuid AND fee_type = 'order_commission'",
    )
    .bind(shop.business)
    .bind(order)
    .fetch_all(&t.db.pools.owner)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_collected_cash_order_has_one_completed_payment_and_one_fee() {
    let t = TestApp::new().await;
    let shop = shop(&t, "cash-ledger", 5).await;
    let ann = customer(&t, &shop, "ann@example.test").await;
    let mut body = pickup(&shop, 2, 3000 + 200);
    body["tip_minor"] = json!(200);
    let order = place(&t, &ann, "cash-1", body)
        .await
        .expect(StatusCode::CREATED);
    let id = order["id"].as_str().unwrap();
    let placed = ledger(&t, &shop, id).await;
    assert_eq!(placed.len(), 1);
    assert_eq!(
        (placed[0].0.as_str(), placed[0].1, placed[0].2.as_str()),
        ("authorized", 3200, "cash")
    );
    assert!(
        fees(&t, &shop, id).await.is_empty(),
        "no fee before the money is taken"
    );

    work(&t, &shop, id, json!({"type": "accept", "prep_time": 10})).await;
    work(&t, &shop, id, json!({"type": "mark_ready"})).await;
    let collected = work(&t, &shop, id, json!({"type": "pick_up"})).await;
    assert_eq!(collected["payment_status"], "captured");
    let done = ledger(&t, &shop, id).await;
    assert_eq!(done.len(), 1, "exactly one payment row");
    assert_eq!((done[0].0.as_str(), done[0].1), ("completed", 3200));
    // Growth plan, 4 % of what the store earned (the tip is not commissioned): 4 % of 30.00.
    assert_eq!(fees(&t, &shop, id).await, vec![(3000, 400, 120)]);
    // A late repeat of the collection changes nothing.
    t.send(
        Method::PATCH,
        &format!("/api/v1/business/orders/{id}"),
        Some(&shop.owner),
        Some(json!({"type": "pick_up"})),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(ledger(&t, &shop, id).await.len(), 1);
    assert_eq!(fees(&t, &shop, id).await.len(), 1);
}

/// An elevated token for `action` of the signed-in staff member, after setting their PIN.
async fn elevate(t: &TestApp, access: &str, action: &str) -> String {
    t.send(
        Method::PUT,
        "/api/v1/auth/pin",
        Some(access),
        Some(json!({"pin": "2580", "password": PASSWORD})),
    )
    .await;
    t.send(
        Method::POST,
        "/api/v1/auth/pin/verify",
        Some(access),
        Some(json!({"pin": "2580", "action": action})),
    )
    .await
    .expect(StatusCode::OK)["elevated_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn refund(
    t: &TestApp,
    token: &str,
    elevated: Option<&str>,
    order: &str,
    body: Value,
) -> common::Reply {
    let headers: Vec<(&str, &str)> = elevated
        .map(|e| ("x-fleetfront-elevation", e))
        .into_iter()
        .collect();
    t.send_with(
        Method::POST,
        &format!("/api/v1/business/orders/{order}/refund"),
        Some(token),
        Some(body),
        &headers,
    )
    .await
}

/// A collected cash pickup order of `shop` (total 15.00); returns its id.
async fn collected(t: &TestApp, shop: &Shop, key: &str) -> String {
    let order = place_guest(t, key, guest(shop, pickup(shop, 1, 1500)))
        .await
        .expect(StatusCode::CREATED);
    let id = order["id"].as_str().unwrap().to_owned();
    work(t, shop, &id, json!({"type": "accept", "prep_time": 10})).await;
    work(t, shop, &id, json!({"type": "mark_ready"})).await;
    work(t, shop, &id, json!({"type": "pick_up"})).await;
    id
}

#[tokio::test]
async fn refunds_need_the_permission_and_a_pin_elevated_token() {
    let t = TestApp::new().await;
    let shop = shop(&t, "refund-shop", 5).await;
    let id = collected(&t, &shop, "r-1").await;
    let why = json!({"reason": "the pizza was cold"});

    // Not through the order board, which needs neither the permission nor the PIN.
    t.send(
        Method::PATCH,
        &format!("/api/v1/business/orders/{id}"),
        Some(&shop.owner),
        Some(json!({"type": "refund", "reason": "sneaky"})),
    )
    .await
    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    // Without elevation.
    refund(&t, &shop.owner, None, &id, why.clone())
        .await
        .expect_problem(StatusCode::FORBIDDEN, "elevation_required");
    // Elevated for another action.
    let other = elevate(&t, &shop.owner, "role_change").await;
    refund(&t, &shop.owner, Some(&other), &id, why.clone())
        .await
        .expect_problem(StatusCode::FORBIDDEN, "elevation_required");
    assert_eq!(ledger(&t, &shop, &id).await[0].0, "completed");

    // A staff member without payments.refund, even elevated.
    t.send(
        Method::POST,
        "/api/v1/business/staff",
        Some(&shop.owner),
        Some(json!({"email": "clerk@refund-shop.test", "full_name": "Clerk", "role": "staff", "password": PASSWORD})),
    )
    .await
    .expect(StatusCode::CREATED);
    let clerk = t.login("clerk@refund-shop.test", PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let clerk_elevated = elevate(&t, &clerk, "refund").await;
    refund(&t, &clerk, Some(&clerk_elevated), &id, why.clone())
        .await
        .expect_problem(StatusCode::FORBIDDEN, "forbidden");

    // Validation: blank reason, too large an amount, unknown fields.
    let elevated = elevate(&t, &shop.owner, "refund").await;
    refund(
        &t,
        &shop.owner,
        Some(&elevated),
        &id,
        json!({"reason": " "}),
    )
    .await
    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    refund(
        &t,
        &shop.owner,
        Some(&elevated),
        &id,
        json!({"reason": "x", "amount_minor": 1501}),
    )
    .await
    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    refund(
        &t,
        &shop.owner,
        Some(&elevated),
        &id,
        json!({"reason": "x", "status": "refunded"}),
    )
    .await
    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(ledger(&t, &shop, &id).await[0].0, "completed");

    // Elevated owner: refunded, through the state machine, into the ledger and the audit log.
    let refunded = refund(&t, &shop.owner, Some(&elevated), &id, why.clone())
        .await
        .expect(StatusCode::OK);
    assert_eq!(refunded["status"], "refunded");
    assert_eq!(refunded["payment_status"], "refunded");
    let rows = ledger(&t, &shop, &id).await;
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].0.as_str(), rows[0].1), ("refunded", 1500));
    assert_eq!(
        count(
            &t,
            "SELECT count(*) FROM audit_log WHERE business_id = $1 AND action = 'order.refund'",
            shop.business
        )
        .await,
        1
    );
    let reason: Option<String> = sqlx::query_scalar(
        "SELECT reason FROM order_status_history WHERE business_id = $1 AND order_id = $2::uuid AND to_status = 'refunded'",
    )
    .bind(shop.business)
    .bind(&id)
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(reason.as_deref(), Some("the pizza was cold"));

    // Twice, or an order not complete yet: 409.
    refund(&t, &shop.owner, Some(&elevated), &id, why.clone())
        .await
        .expect_problem(StatusCode::CONFLICT, "invalid_transition");
    let pending = place_guest(&t, "r-2", guest(&shop, pickup(&shop, 1, 1500)))
        .await
        .expect(StatusCode::CREATED);
    refund(
        &t,
        &shop.owner,
        Some(&elevated),
        pending["id"].as_str().unwrap(),
        why.clone(),
    )
    .await
    .expect_problem(StatusCode::CONFLICT, "invalid_transition");

    // A partial refund is recorded with its amount.
    let second = collected(&t, &shop, "r-3").await;
    refund(
        &t,
        &shop.owner,
        Some(&elevated),
        &second,
        json!({"reason": "one slice missing", "amount_minor": 300}),
    )
    .await
    .expect(StatusCode::OK);
    let refunded_minor: i64 = sqlx::query_scalar(
        "SELECT (metadata->>'refunded_minor')::bigint FROM payment_transactions WHERE business_id = $1 AND order_id = $2::uuid",
    )
    .bind(shop.business)
    .bind(&second)
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(refunded_minor, 300);
}

#[tokio::test]
async fn refunding_another_stores_order_is_not_found_and_audited() {
    let t = TestApp::new().await;
    let a = shop(&t, "a-refund", 5).await;
    let b = shop(&t, "b-refund", 5).await;
    let b_id = collected(&t, &b, "b-1").await;
    let elevated = elevate(&t, &a.owner, "refund").await;
    let denied = "SELECT count(*) FROM audit_log WHERE business_id = $1 AND outcome = 'denied'";
    let before = count(&t, denied, a.business).await;
    refund(
        &t,
        &a.owner,
        Some(&elevated),
        &b_id,
        json!({"reason": "not mine"}),
    )
    .await
    .expect_problem(StatusCode::NOT_FOUND, "not_found");
    assert_eq!(count(&t, denied, a.business).await, before + 1);
    assert_eq!(ledger(&t, &b, &b_id).await[0].0, "completed");
}

#[tokio::test]
async fn commerce_settings_and_discount_codes_drive_the_next_checkout() {
    let t = TestApp::new().await;
    let shop = shop(&t, "policy-shop", 10).await;
    let ann = customer(&t, &shop, "ann@example.test").await;
    let settings = t
        .send(
            Method::GET,
            "/api/v1/business/commerce-settings",
            Some(&shop.owner),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(settings["tax_rate_bps"], 2400);
    assert_eq!(settings["acceptance_window_secs"], 180);

    // Invalid changes are refused field by field and change nothing.
    for bad in [
        json!({"tax_rate_bps": 10001}),
        json!({"acceptance_window_secs": 5}),
        json!({"delivery_base_fee_minor": -1}),
        json!({"delivery_max_distance_m": 10}),
        json!({"offers_delivery": false, "offers_pickup": false}),
        json!({"business_id": shop.business}),
    ] {
        t.send(
            Method::PATCH,
            "/api/v1/business/commerce-settings",
            Some(&shop.owner),
            Some(bad.clone()),
        )
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    }
    // Turning pickup off where delivery is already off is refused against the stored state.
    t.send(
        Method::PATCH,
        "/api/v1/business/commerce-settings",
        Some(&shop.owner),
        Some(json!({"offers_delivery": false})),
    )
    .await
    .expect(StatusCode::OK);
    t.send(
        Method::PATCH,
        "/api/v1/business/commerce-settings",
        Some(&shop.owner),
        Some(json!({"offers_pickup": false})),
    )
    .await
    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");

    // 10 % on top of the prices from now on.
    let changed = t
        .send(
            Method::PATCH,
            "/api/v1/business/commerce-settings",
            Some(&shop.owner),
            Some(json!({"tax_rate_bps": 1000, "prices_include_tax": false, "offers_delivery": true, "acceptance_window_secs": 600})),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(changed["tax_rate_bps"], 1000);
    assert_eq!(changed["prices_include_tax"], false);
    assert_eq!(changed["offers_pickup"], true);
    let order = place(&t, &ann, "tax-1", pickup(&shop, 1, 1650))
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(order["tax"]["minor"], 150, "{order}");
    assert_eq!(order["total"]["minor"], 1650);
    assert_eq!(
        count(
            &t,
            "SELECT count(*) FROM audit_log WHERE business_id = $1 AND action = 'commerce_settings.update' AND outcome = 'ok'",
            shop.business
        )
        .await,
        2
    );

    // Discount codes.
    let created = t
        .send(
            Method::POST,
            "/api/v1/business/discount-codes",
            Some(&shop.owner),
            Some(json!({"code": "Save10", "percent_bps": 1000, "usage_limit": 5})),
        )
        .await
        .expect(StatusCode::CREATED);
    let code_id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["times_used"], 0);
    let taken = t
        .send(
            Method::POST,
            "/api/v1/business/discount-codes",
            Some(&shop.owner),
            Some(json!({"code": "SAVE10", "amount_minor": 100})),
        )
        .await;
    taken.expect_problem(StatusCode::CONFLICT, "conflict");
    assert_eq!(taken.body["errors"][0]["field"], "code", "{}", taken.body);
    for bad in [
        json!({"code": "-bad", "amount_minor": 100}),
        json!({"code": "BOTH", "amount_minor": 100, "percent_bps": 100}),
        json!({"code": "NONE"}),
        json!({"code": "LATE", "amount_minor": 100, "valid_from": "2030-01-02T00:00:00Z", "valid_until": "2030-01-01T00:00:00Z"}),
        json!({"code": "ZERO", "amount_minor": 100, "usage_limit": 0}),
        json!({"code": "X", "amount_minor": 100, "times_used": 3}),
    ] {
        t.send(
            Method::POST,
            "/api/v1/business/discount-codes",
            Some(&shop.owner),
            Some(bad),
        )
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    }
    let mut body = pickup(&shop, 1, 1485);
    body["discount_code"] = json!("save10");
    let discounted = place(&t, &ann, "disc-1", body)
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(discounted["discount"]["minor"], 150, "{discounted}");
    let listed = t
        .send(
            Method::GET,
            "/api/v1/business/discount-codes",
            Some(&shop.owner),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(listed["items"][0]["times_used"], 1);
    let path = format!("/api/v1/business/discount-codes/{code_id}");
    t.send(
        Method::PATCH,
        &path,
        Some(&shop.owner),
        Some(json!({"usage_limit": 0})),
    )
    .await
    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let patched = t
        .send(
            Method::PATCH,
            &path,
            Some(&shop.owner),
            Some(json!({"amount_minor": 200, "usage_limit": null})),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(patched["amount_minor"], 200);
    assert_eq!(patched["percent_bps"], Value::Null);
    assert_eq!(patched["usage_limit"], Value::Null);
    t.send(Method::DELETE, &path, Some(&shop.owner), None)
        .await
        .expect(StatusCode::NO_CONTENT);
    let mut body = pickup(&shop, 1, 1430);
    body["discount_code"] = json!("SAVE10");
    place(&t, &ann, "disc-2", body)
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "discount_invalid");

    // A role without storefront.manage.
    t.send(
        Method::POST,
        "/api/v1/business/staff",
        Some(&shop.owner),
        Some(json!({"email": "clerk@policy-shop.test", "full_name": "Clerk", "role": "staff", "password": PASSWORD})),
    )
    .await
    .expect(StatusCode::CREATED);
    let clerk = t.login("clerk@policy-shop.test", PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    t.send(
        Method::GET,
        "/api/v1/business/commerce-settings",
        Some(&clerk),
        None,
    )
    .await
    .expect_problem(StatusCode::FORBIDDEN, "forbidden");
    t.send(
        Method::GET,
        "/api/v1/business/discount-codes",
        Some(&clerk),
        None,
    )
    .await
    .expect_problem(StatusCode::FORBIDDEN, "forbidden");
}

#[tokio::test]
async fn another_stores_discount_codes_are_not_found_and_audited() {
    let t = TestApp::new().await;
    let a = shop(&t, "a-codes", 5).await;
    let b = shop(&t, "b-codes", 5).await;
    let b_code = t
        .send(
            Method::POST,
            "/api/v1/business/discount-codes",
            Some(&b.owner),
            Some(json!({"code": "BONLY", "amount_minor": 100})),
        )
        .await
        .expect(StatusCode::CREATED);
    let path = format!(
        "/api/v1/business/discount-codes/{}",
        b_code["id"].as_str().unwrap()
    );
    // Per-business uniqueness: A may use the same code.
    t.send(
        Method::POST,
        "/api/v1/business/discount-codes",
        Some(&a.owner),
        Some(json!({"code": "bonly", "amount_minor": 100})),
    )
    .await
    .expect(StatusCode::CREATED);
    let denied = "SELECT count(*) FROM audit_log WHERE business_id = $1 AND outcome = 'denied'";
    for (method, body) in [
        (Method::PATCH, Some(json!({"amount_minor": 1}))),
        (Method::DELETE, None),
    ] {
        let before = count(&t, denied, a.business).await;
        t.send(method.clone(), &path, Some(&a.owner), body)
            .await
            .expect_problem(StatusCode::NOT_FOUND, "not_found");
        assert_eq!(count(&t, denied, a.business).await, before + 1, "{method}");
    }
    let a_list = t
        .send(
            Method::GET,
            "/api/v1/business/discount-codes",
            Some(&a.owner),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(a_list["items"].as_array().unwrap().len(), 1);
    let (amount, active): (i64, bool) =
        sqlx::query_as("SELECT amount_minor, is_active FROM discount_codes WHERE business_id = $1")
            .bind(b.business)
            .fetch_one(&t.db.pools.owner)
            .await
            .unwrap();
    assert_eq!((amount, active), (100, true));
}

#[tokio::test]
async fn customers_cancel_pending_orders_and_request_cancellation_later() {
    let t = TestApp::new().await;
    let shop = shop(&t, "cancel-shop", 5).await;
    let ann = customer(&t, &shop, "ann@example.test").await;
    let bob = customer(&t, &shop, "bob@example.test").await;
    sqlx::query(
        "INSERT INTO discount_codes (business_id, id, code, amount_minor, usage_limit) VALUES ($1, $2, 'ONEOFF', 100, 1)",
    )
    .bind(shop.business)
    .bind(Uuid::now_v7())
    .execute(&t.db.pools.owner)
    .await
    .unwrap();
    let mut body = pickup(&shop, 2, 2900);
    body["discount_code"] = json!("ONEOFF");
    let order = place(&t, &ann, "c-1", body.clone())
        .await
        .expect(StatusCode::CREATED);
    let id = order["id"].as_str().unwrap().to_owned();
    assert_eq!(stock(&t, &shop).await, 3);
    let cancel = |token: String, order: String, body: Value| {
        let t = &t;
        async move {
            t.send(
                Method::POST,
                &format!("/api/v1/orders/{order}/cancel"),
                Some(&token),
                Some(body),
            )
            .await
        }
    };

    // Refused: a blank reason, another customer, the store's staff.
    cancel(ann.clone(), id.clone(), json!({"reason": " "}))
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    cancel(bob.clone(), id.clone(), json!({"reason": "not mine"}))
        .await
        .expect_problem(StatusCode::NOT_FOUND, "not_found");
    cancel(shop.owner.clone(), id.clone(), json!({"reason": "staff"}))
        .await
        .expect_problem(StatusCode::FORBIDDEN, "forbidden");

    // Pending: cancelled, stock and the discount use given back, the payment released.
    let cancelled = cancel(ann.clone(), id.clone(), json!({"reason": "ordered twice"}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert_eq!(cancelled["cancellation_reason"], "ordered twice");
    assert_eq!(stock(&t, &shop).await, 5);
    let used: i32 = sqlx::query_scalar(
        "SELECT times_used FROM discount_codes WHERE business_id = $1 AND code = 'ONEOFF'",
    )
    .bind(shop.business)
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(used, 0, "the one-off code may be used again");
    assert_eq!(ledger(&t, &shop, &id).await[0].0, "canceled");
    let by: String = sqlx::query_scalar(
        "SELECT by_party FROM order_status_history WHERE business_id = $1 AND order_id = $2::uuid AND to_status = 'cancelled'",
    )
    .bind(shop.business)
    .bind(&id)
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(by, "customer");

    // Accepted: the cancellation becomes a request; nothing else changes.
    let again = place(&t, &ann, "c-2", body)
        .await
        .expect(StatusCode::CREATED);
    let again = again["id"].as_str().unwrap().to_owned();
    work(
        &t,
        &shop,
        &again,
        json!({"type": "accept", "prep_time": 10}),
    )
    .await;
    let requested = cancel(ann.clone(), again.clone(), json!({"reason": "too slow"}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(requested["status"], "confirmed");
    let history = requested["history"].as_array().unwrap();
    assert_eq!(history.last().unwrap()["outcome"], "cancellation_requested");
    assert_eq!(stock(&t, &shop).await, 3);
    assert_eq!(ledger(&t, &shop, &again).await[0].0, "authorized");
}
