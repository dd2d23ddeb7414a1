//! Fleet test helpers shared by the dispatch, delivery and payout suites: an open shop with one
//! product, accepted cash delivery orders, approved online drivers at a position, and the
//! driver's and the board's views.

use axum::http::{Method, StatusCode};
use chrono::Utc;
use fleetfront_server::dispatch::run_due_offers;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{Reply, TestApp, PASSWORD};

pub struct Shop {
    pub business: Uuid,
    pub owner: String,
    pub subdomain: String,
    pub product: Uuid,
    pub variant: Uuid,
}

pub async fn shop(t: &TestApp, subdomain: &str) -> Shop {
    let (business, owner) = t.open_store(subdomain, "growth").await;
    t.set_delivery_fees(business, 0).await;
    let (product, variant) = t
        .product_with_variant(
            &owner,
            json!({
                "sku": "SOUP", "name": "Soup", "price_minor": 1000, "is_published": true,
                "variants": [{"name": "Bowl", "sku": "SOUP-B", "price_adjustment_minor": 0, "stock_quantity": 100}]
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

/// Places a cash delivery order as a guest and has the business accept it; returns its id.
pub async fn accepted_order(t: &TestApp, shop: &Shop) -> Uuid {
    accepted_order_with_token(t, shop).await.0
}

/// [`accepted_order`], with the guest's tracking token.
pub async fn accepted_order_with_token(t: &TestApp, shop: &Shop) -> (Uuid, String) {
    let fulfilment = json!({"kind": "delivery", "address": {"address_line1": "Main Street 1",
        "city": "Helsinki", "country": "FI", "latitude": 60.175, "longitude": 24.94}});
    let order = guest_order(t, shop, fulfilment, 1300).await;
    let id: Uuid = order["id"].as_str().unwrap().parse().unwrap();
    let token = order["tracking_token"].as_str().unwrap().to_owned();
    t.send(
        Method::PATCH,
        &format!("/api/v1/business/orders/{id}"),
        Some(&shop.owner),
        Some(json!({"type": "accept", "prep_time": 15})),
    )
    .await
    .expect(StatusCode::OK);
    (id, token)
}

/// A guest's cash order of one unit of the shop's product, fulfilled as `fulfilment`, left
/// pending; returns the checkout's answer (with `id` and `tracking_token`).
pub async fn guest_order(t: &TestApp, shop: &Shop, fulfilment: Value, total: i64) -> Value {
    let body = json!({
        "store": shop.subdomain,
        "email": "guest@example.test",
        "phone": "+358401234567",
        "items": [{"product_id": shop.product, "variant_id": shop.variant, "quantity": 1}],
        "fulfilment": fulfilment,
        "payment": {"method": "cash"},
        "expected_total_minor": total,
    });
    t.send_with(
        Method::POST,
        "/api/v1/customers/guest-checkout",
        None,
        Some(body),
        &[("Idempotency-Key", &Uuid::new_v4().to_string())],
    )
    .await
    .expect(StatusCode::CREATED)
}

/// An approved, online driver at (lat, lon), dedicated to `business` with `priority` if given;
/// returns (id, access token).
pub async fn driver(
    t: &TestApp,
    name: &str,
    at: (f64, f64),
    dedicated: Option<(Uuid, i16)>,
) -> (Uuid, String) {
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
    let id: Uuid = body["principal"]["id"].as_str().unwrap().parse().unwrap();
    let token = body["access_token"].as_str().unwrap().to_owned();
    let owner = &t.db.pools.owner;
    sqlx::query("UPDATE users SET status = 'active' WHERE id = $1")
        .bind(id)
        .execute(owner)
        .await
        .unwrap();
    sqlx::query("UPDATE driver_profiles SET is_online = true, online_since = now(), approved_at = now() WHERE driver_id = $1")
        .bind(id)
        .execute(owner)
        .await
        .unwrap();
    if let Some((business, priority)) = dedicated {
        sqlx::query(
            "INSERT INTO driver_businesses (business_id, driver_id, priority) VALUES ($1, $2, $3)",
        )
        .bind(business)
        .bind(id)
        .bind(priority)
        .execute(owner)
        .await
        .unwrap();
    }
    let now = Utc::now();
    t.send(
        Method::POST,
        "/api/v1/driver/location",
        Some(&token),
        Some(json!({"device_id": "phone-1", "fixes": [{
            "latitude": at.0, "longitude": at.1, "accuracy_m": 8.0, "heading_deg": 0.0,
            "speed_mps": 0.0, "recorded_at": now - chrono::Duration::seconds(2), "seq": 1,
        }]})),
    )
    .await
    .expect(StatusCode::ACCEPTED);
    (id, token)
}

pub async fn assignments(t: &TestApp, token: &str) -> Value {
    t.send(Method::GET, "/api/v1/driver/assignments", Some(token), None)
        .await
        .expect(StatusCode::OK)
}

/// The id of the one open offer shown to the driver.
#[track_caller]
pub fn only_offer(view: &Value) -> String {
    let offers = view["offers"].as_array().unwrap();
    assert_eq!(offers.len(), 1, "{view}");
    offers[0]["offer_id"].as_str().unwrap().to_owned()
}

pub async fn board(t: &TestApp, token: &str) -> Vec<Value> {
    t.send(Method::GET, "/api/v1/business/dispatch", Some(token), None)
        .await
        .expect(StatusCode::OK)
        .as_array()
        .unwrap()
        .clone()
}

/// Runs the timeout task until it handles a delivery. A refused request's transaction is
/// rolled back when its connection is next used, so for a moment it may still hold the
/// delivery's row lock, which the task skips (and takes on its next pass).
pub async fn run_due_until_handled(t: &TestApp) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if run_due_offers(&t.app, t.app.clock.now()).await.unwrap() > 0 {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "nothing became due");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

pub async fn answer(t: &TestApp, token: &str, offer: &str, what: &str) -> Reply {
    t.send(
        Method::POST,
        &format!("/api/v1/driver/assignments/{offer}/{what}"),
        Some(token),
        None,
    )
    .await
}
