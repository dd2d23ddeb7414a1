//! A customer's own account: profile and delivery addresses, isolated per customer and per store.

#![allow(clippy::unwrap_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::{TestApp, PASSWORD};
use serde_json::{json, Value};

const ME: &str = "/api/v1/customers/me";
const ADDRESSES: &str = "/api/v1/customers/me/addresses";

/// Publishes `store` (onboarded with the owner token) and registers a customer there.
async fn customer(t: &TestApp, owner: &str, store: &str, email: &str) -> String {
    t.send(
        Method::PATCH,
        "/api/v1/business/storefront",
        Some(owner),
        Some(json!({"is_published": true})),
    )
    .await
    .expect(StatusCode::OK);
    let body = json!({"store": store, "email": email, "password": PASSWORD, "full_name": "Casey Customer"});
    t.send(
        Method::POST,
        "/api/v1/auth/customer/register",
        None,
        Some(body),
    )
    .await
    .expect(StatusCode::CREATED)["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// An address near the onboarding location (60.17, 24.94) or far from it.
fn address(line: &str, near: bool, default: bool) -> Value {
    let (lat, lon) = if near { (60.171, 24.941) } else { (61.5, 23.8) };
    json!({
        "label": line, "address_line1": format!("{line} 1"), "city": "Helsinki", "postal_code": "00100",
        "country": "fi", "latitude": lat, "longitude": lon, "delivery_instructions": "Ring twice", "is_default": default
    })
}

#[tokio::test]
async fn profile_can_be_read_and_changed() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let (_, owner) = t.business(&admin, "corner-deli", "starter").await;
    let casey = customer(&t, &owner, "corner-deli", "casey@example.com").await;
    customer(&t, &owner, "corner-deli", "robin@example.com").await;

    let me = t
        .send(Method::GET, ME, Some(&casey), None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(me["email"], "casey@example.com");
    assert_eq!(me["preferences"]["marketing_email"], false);

    let patch = json!({"full_name": "Casey C.", "phone": "+358 40 111 2222", "preferences": {"marketing_email": true, "language": "fi-FI"}});
    let me = t
        .send(Method::PATCH, ME, Some(&casey), Some(patch))
        .await
        .expect(StatusCode::OK);
    assert_eq!(me["full_name"], "Casey C.");
    assert_eq!(me["phone"], "+358401112222");
    assert_eq!(me["preferences"]["language"], "fi-FI");
    let me = t
        .send(
            Method::PATCH,
            ME,
            Some(&casey),
            Some(json!({"phone": null})),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(me["phone"], Value::Null);
    assert_eq!(me["full_name"], "Casey C.", "absent fields stay");

    // Another customer's email at the same store is taken; every bad field is reported at once.
    t.send(
        Method::PATCH,
        ME,
        Some(&casey),
        Some(json!({"email": "Robin@Example.com"})),
    )
    .await
    .expect_problem(StatusCode::CONFLICT, "email_taken");
    let bad = t
        .send(
            Method::PATCH,
            ME,
            Some(&casey),
            Some(json!({"email": "nope", "full_name": " ", "phone": "123"})),
        )
        .await;
    bad.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(
        bad.body["errors"].as_array().unwrap().len(),
        3,
        "{}",
        bad.body
    );
    t.send(
        Method::PATCH,
        ME,
        Some(&casey),
        Some(json!({"loyalty_points": 1000})),
    )
    .await
    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let me = t
        .send(Method::GET, ME, Some(&casey), None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(me["email"], "casey@example.com");
    assert_eq!(me["loyalty_points"], 0);

    // Staff are not customers.
    t.send(Method::GET, ME, Some(&owner), None)
        .await
        .expect_problem(StatusCode::FORBIDDEN, "forbidden");
    t.send(Method::GET, ME, None, None)
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
}

#[tokio::test]
async fn addresses_keep_one_default_and_know_if_the_store_delivers() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let (_, owner) = t.business(&admin, "noodle-bar", "starter").await;
    let casey = customer(&t, &owner, "noodle-bar", "casey@example.com").await;

    let home = t
        .send(
            Method::POST,
            ADDRESSES,
            Some(&casey),
            Some(address("Home", true, false)),
        )
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(home["is_default"], true, "the first address is the default");
    assert_eq!(home["country"], "FI");
    assert_eq!(home["deliverable"], true);
    let cabin = t
        .send(
            Method::POST,
            ADDRESSES,
            Some(&casey),
            Some(address("Cabin", false, true)),
        )
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(cabin["is_default"], true);
    assert_eq!(cabin["deliverable"], false, "far outside the 4 km radius");

    let list = t
        .send(Method::GET, ADDRESSES, Some(&casey), None)
        .await
        .expect(StatusCode::OK);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["id"], cabin["id"], "default first");
    assert_eq!(list[1]["is_default"], false);

    // Replace the cabin with a nearby address; then delete it: home becomes the default again.
    let cabin_path = format!("{ADDRESSES}/{}", cabin["id"].as_str().unwrap());
    let moved = t
        .send(
            Method::PATCH,
            &cabin_path,
            Some(&casey),
            Some(address("Office", true, true)),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(moved["label"], "Office");
    assert_eq!(moved["deliverable"], true);
    t.send(Method::DELETE, &cabin_path, Some(&casey), None)
        .await
        .expect(StatusCode::NO_CONTENT);
    let list = t
        .send(Method::GET, ADDRESSES, Some(&casey), None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], home["id"]);
    assert_eq!(list[0]["is_default"], true);
    t.send(Method::DELETE, &cabin_path, Some(&casey), None)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "not_found");

    // Validation: every bad field at once, nothing written.
    let bad = json!({"address_line1": "", "city": "", "country": "XX", "latitude": 95.0, "longitude": 0.0});
    let reply = t
        .send(Method::POST, ADDRESSES, Some(&casey), Some(bad))
        .await;
    reply.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(
        reply.body["errors"].as_array().unwrap().len(),
        4,
        "{}",
        reply.body
    );

    // At most 20.
    for i in 1..20 {
        t.send(
            Method::POST,
            ADDRESSES,
            Some(&casey),
            Some(address(&format!("Street {i}"), true, false)),
        )
        .await
        .expect(StatusCode::CREATED);
    }
    t.send(
        Method::POST,
        ADDRESSES,
        Some(&casey),
        Some(address("One too many", true, false)),
    )
    .await
    .expect_problem(StatusCode::CONFLICT, "conflict");
    let defaults: i64 =
        sqlx::query_scalar("SELECT count(*) FROM customer_addresses WHERE is_default")
            .fetch_one(&t.db.pools.owner)
            .await
            .unwrap();
    assert_eq!(defaults, 1);
}

#[tokio::test]
async fn addresses_are_private_to_their_customer_and_store() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let (a, owner_a) = t.business(&admin, "store-one", "starter").await;
    let (_, owner_b) = t.business(&admin, "store-two", "starter").await;
    let casey = customer(&t, &owner_a, "store-one", "casey@example.com").await;
    let robin = customer(&t, &owner_a, "store-one", "robin@example.com").await;
    let casey_elsewhere = customer(&t, &owner_b, "store-two", "casey@example.com").await;

    let home = t
        .send(
            Method::POST,
            ADDRESSES,
            Some(&casey),
            Some(address("Home", true, false)),
        )
        .await
        .expect(StatusCode::CREATED);
    let path = format!("{ADDRESSES}/{}", home["id"].as_str().unwrap());
    for token in [&robin, &casey_elsewhere] {
        assert_eq!(
            t.send(Method::GET, ADDRESSES, Some(token), None)
                .await
                .expect(StatusCode::OK),
            json!([])
        );
        t.send(
            Method::PATCH,
            &path,
            Some(token),
            Some(address("Mine now", true, true)),
        )
        .await
        .expect_problem(StatusCode::NOT_FOUND, "not_found");
        t.send(Method::DELETE, &path, Some(token), None)
            .await
            .expect_problem(StatusCode::NOT_FOUND, "not_found");
    }
    let list = t
        .send(Method::GET, ADDRESSES, Some(&casey), None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(list[0]["label"], "Home", "untouched");
    let denied: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE business_id = $1 AND outcome = 'denied' AND action LIKE '%/addresses/%'",
    )
    .bind(a)
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap();
    assert!(
        denied >= 2,
        "robin's attempts are audited in store one's log, found {denied}"
    );
}
