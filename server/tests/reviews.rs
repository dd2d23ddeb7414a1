//! Reviews end to end on real PostgreSQL, through the HTTP router: a customer reviews their
//! completed pickup order (not before, not twice, not someone else's, not with bad ratings), the
//! business replies and approves product reviews (with `reviews.manage` only), the storefront
//! shows approved reviews and the product's rating aggregate, and the customer's order totals
//! follow completion.

#![allow(clippy::unwrap_used)] // A failed unwrap in a test is a failed test.

mod common;

use axum::http::{Method, StatusCode};
use common::{TestApp, PASSWORD};
use serde_json::{json, Value};
use uuid::Uuid;

/// A published store, open all day, with a pizza (1250, variant +250) and a soda (300).
struct Shop {
    business: Uuid,
    owner: String,
    subdomain: String,
    pizza: Uuid,
    variant: Uuid,
    soda: Uuid,
}

async fn shop(t: &TestApp, subdomain: &str) -> Shop {
    let (business, owner) = t.open_store(subdomain, "growth").await;
    let (pizza, variant) = t
        .product_with_variant(
            &owner,
            json!({
                "sku": "PIZZA", "name": "Pizza", "price_minor": 1250, "is_published": true,
                "variants": [{"name": "Large", "sku": "PIZZA-L", "price_adjustment_minor": 250, "stock_quantity": 50}]
            }),
        )
        .await;
    let soda = t
        .send(
            Method::POST,
            "/api/v1/business/products",
            Some(&owner),
            Some(json!({"sku": "SODA", "name": "Soda", "price_minor": 300, "is_published": true})),
        )
        .await
        .expect(StatusCode::CREATED);
    Shop {
        business,
        owner,
        subdomain: subdomain.to_owned(),
        pizza,
        variant,
        soda: soda["id"].as_str().unwrap().parse().unwrap(),
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

/// Places a cash pickup order of one large pizza (15.00); returns its id.
async fn order(t: &TestApp, shop: &Shop, token: &str, key: &str) -> String {
    t.send_with(
        Method::POST,
        "/api/v1/orders",
        Some(token),
        Some(json!({
            "items": [{"product_id": shop.pizza, "variant_id": shop.variant, "quantity": 1}],
            "fulfilment": {"kind": "pickup"},
            "payment": {"method": "cash"},
            "expected_total_minor": 1500,
        })),
        &[("Idempotency-Key", key)],
    )
    .await
    .expect(StatusCode::CREATED)["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn work(t: &TestApp, shop: &Shop, order: &str, event: Value) {
    t.send(
        Method::PATCH,
        &format!("/api/v1/business/orders/{order}"),
        Some(&shop.owner),
        Some(event),
    )
    .await
    .expect(StatusCode::OK);
}

/// Accepts, prepares and hands over a pickup order.
async fn complete(t: &TestApp, shop: &Shop, order: &str) {
    work(t, shop, order, json!({"type": "accept", "prep_time": 10})).await;
    work(t, shop, order, json!({"type": "mark_ready"})).await;
    work(t, shop, order, json!({"type": "pick_up"})).await;
}

async fn review(t: &TestApp, token: &str, order: &str, body: Value) -> common::Reply {
    t.send(
        Method::POST,
        &format!("/api/v1/orders/{order}/review"),
        Some(token),
        Some(body),
    )
    .await
}

async fn stored(t: &TestApp, business: Uuid) -> (i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM order_reviews WHERE business_id = $1), \
                (SELECT count(*) FROM product_reviews WHERE business_id = $1)",
    )
    .bind(business)
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap()
}

fn field_errors(body: &Value) -> Vec<(String, String)> {
    body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap().to_owned(),
                e["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_completed_pickup_order_is_reviewed_once_and_the_store_moderates() {
    let t = TestApp::new().await;
    let shop = shop(&t, "review-shop").await;
    let ann = customer(&t, &shop, "ann@example.test").await;
    let id = order(&t, &shop, &ann, "r-1").await;
    let good = json!({
        "overall_rating": 5, "food_quality_rating": 4, "review_text": " Hot and quick ",
        "products": [{"product_id": shop.pizza, "rating": 4, "review_text": "Great crust"}],
    });

    // Not before the order is complete: pending, then accepted and ready.
    review(&t, &ann, &id, good.clone())
        .await
        .expect_problem(StatusCode::CONFLICT, "order_not_complete");
    work(&t, &shop, &id, json!({"type": "accept", "prep_time": 10})).await;
    work(&t, &shop, &id, json!({"type": "mark_ready"})).await;
    review(&t, &ann, &id, good.clone())
        .await
        .expect_problem(StatusCode::CONFLICT, "order_not_complete");
    let me = t
        .send(Method::GET, "/api/v1/customers/me", Some(&ann), None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(me["total_orders"], 0);
    work(&t, &shop, &id, json!({"type": "pick_up"})).await;

    // Completing the order counted it for the customer, in the store's currency.
    let me = t
        .send(Method::GET, "/api/v1/customers/me", Some(&ann), None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(me["total_orders"], 1);
    assert_eq!(me["total_spent"]["minor"], 1500, "{me}");
    assert_eq!(me["total_spent"]["currency"], "EUR", "{me}");

    // Bad ratings: every field reported at once, nothing stored.
    let bad = review(
        &t,
        &ann,
        &id,
        json!({"overall_rating": 0, "food_quality_rating": 6,
               "products": [{"product_id": shop.pizza, "rating": 9}]}),
    )
    .await;
    bad.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(
        field_errors(&bad.body),
        [
            ("overall_rating".to_owned(), "out_of_range".to_owned()),
            ("food_quality_rating".to_owned(), "out_of_range".to_owned()),
            ("products[0].rating".to_owned(), "out_of_range".to_owned()),
        ]
    );
    // A review that does not fit the order: a delivery rating of a pickup order, a product
    // the order did not contain, a product rated twice.
    let misfit = review(
        &t,
        &ann,
        &id,
        json!({"overall_rating": 5, "delivery_rating": 5, "products": [
            {"product_id": shop.soda, "rating": 5},
            {"product_id": shop.pizza, "rating": 5},
            {"product_id": shop.pizza, "rating": 4},
        ]}),
    )
    .await;
    misfit.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(
        field_errors(&misfit.body),
        [
            ("delivery_rating".to_owned(), "not_applicable".to_owned()),
            (
                "products[0].product_id".to_owned(),
                "not_in_order".to_owned()
            ),
            ("products[2].product_id".to_owned(), "duplicate".to_owned()),
        ]
    );
    assert_eq!(stored(&t, shop.business).await, (0, 0));

    // The review.
    let created = review(&t, &ann, &id, good.clone())
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(created["order_id"], id.as_str());
    assert_eq!(created["overall_rating"], 5);
    assert_eq!(created["food_quality_rating"], 4);
    assert_eq!(created["delivery_rating"], Value::Null);
    assert_eq!(created["review_text"], "Hot and quick");
    assert_eq!(created["business_reply"], Value::Null);
    let product_review = &created["products"][0];
    assert_eq!(product_review["product_id"], shop.pizza.to_string());
    assert_eq!(product_review["verified_purchase"], true);
    assert_eq!(product_review["is_approved"], false);
    let review_id = created["id"].as_str().unwrap();
    let product_review_id = product_review["id"].as_str().unwrap();

    // Once per order.
    review(&t, &ann, &id, good.clone())
        .await
        .expect_problem(StatusCode::CONFLICT, "already_reviewed");
    assert_eq!(stored(&t, shop.business).await, (1, 1));

    // The storefront shows nothing until the business approves.
    let reviews_path = format!(
        "/api/v1/storefronts/{}/products/{}/reviews",
        shop.subdomain, shop.pizza
    );
    let product_path = format!(
        "/api/v1/storefronts/{}/products/{}",
        shop.subdomain, shop.pizza
    );
    let public = t
        .send(Method::GET, &reviews_path, None, None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(public["items"], json!([]));
    assert_eq!(
        public["rating"],
        json!({"count": 0, "sum": 0, "average_tenths": null})
    );

    // A counter employee (built-in `staff` role) reads reviews but may not answer them.
    let email = "counter@review-shop.test";
    t.send(
        Method::POST,
        "/api/v1/business/staff",
        Some(&shop.owner),
        Some(
            json!({"email": email, "full_name": "Counter", "role": "staff", "password": PASSWORD}),
        ),
    )
    .await
    .expect(StatusCode::CREATED);
    let counter = t.login(email, PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let inbox = t
        .send(
            Method::GET,
            "/api/v1/business/reviews",
            Some(&counter),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(inbox["items"][0]["id"], review_id);
    let update_path = format!("/api/v1/business/reviews/{review_id}");
    t.send(
        Method::PATCH,
        &update_path,
        Some(&counter),
        Some(json!({"reply": "Thanks!"})),
    )
    .await
    .expect_problem(StatusCode::FORBIDDEN, "forbidden");
    // Customers have no review inbox.
    t.send(Method::GET, "/api/v1/business/reviews", Some(&ann), None)
        .await
        .expect_problem(StatusCode::FORBIDDEN, "forbidden");

    // An unknown product review is a field error, and nothing changes (not even the reply).
    let unknown = t
        .send(
            Method::PATCH,
            &update_path,
            Some(&shop.owner),
            Some(json!({"reply": "Thanks!", "products": [{"id": Uuid::now_v7(), "is_approved": true}]})),
        )
        .await;
    unknown.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(
        field_errors(&unknown.body),
        [("products[0].id".to_owned(), "not_found".to_owned())]
    );

    // The owner replies and approves: the storefront shows it, the aggregate counts it.
    let updated = t
        .send(
            Method::PATCH,
            &update_path,
            Some(&shop.owner),
            Some(json!({"reply": " Thanks, Ann! ", "products": [{"id": product_review_id, "is_approved": true}]})),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(updated["business_reply"], "Thanks, Ann!");
    assert!(updated["replied_at"].is_string());
    assert_eq!(updated["products"][0]["is_approved"], true);
    // Approving again changes nothing.
    t.send(
        Method::PATCH,
        &update_path,
        Some(&shop.owner),
        Some(json!({"products": [{"id": product_review_id, "is_approved": true}]})),
    )
    .await
    .expect(StatusCode::OK);
    let public = t
        .send(Method::GET, &reviews_path, None, None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(public["items"].as_array().unwrap().len(), 1);
    assert_eq!(public["items"][0]["rating"], 4);
    assert_eq!(public["items"][0]["review_text"], "Great crust");
    assert_eq!(public["items"][0]["verified_purchase"], true);
    assert!(
        public["items"][0].get("customer_id").is_none(),
        "no customer details"
    );
    assert_eq!(
        public["rating"],
        json!({"count": 1, "sum": 4, "average_tenths": 40})
    );
    let product = t
        .send(Method::GET, &product_path, None, None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        product["rating"],
        json!({"count": 1, "sum": 4, "average_tenths": 40})
    );
    let listing = t
        .send(
            Method::GET,
            &format!("/api/v1/storefronts/{}/products", shop.subdomain),
            None,
            None,
        )
        .await
        .expect(StatusCode::OK);
    let listed = listing["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == shop.pizza.to_string())
        .unwrap();
    assert_eq!(listed["rating"]["count"], 1);

    // Filters of the inbox.
    let count = |query: &'static str| {
        let t = &t;
        let owner = shop.owner.clone();
        async move {
            t.send(
                Method::GET,
                &format!("/api/v1/business/reviews{query}"),
                Some(&owner),
                None,
            )
            .await
            .expect(StatusCode::OK)["items"]
                .as_array()
                .unwrap()
                .len()
        }
    };
    assert_eq!(count("?unreplied=true").await, 0);
    assert_eq!(count("?unreplied=false").await, 1);
    assert_eq!(count("?rating=5").await, 1);
    assert_eq!(count("?rating=3").await, 0);
    t.send(
        Method::GET,
        "/api/v1/business/reviews?rating=9",
        Some(&shop.owner),
        None,
    )
    .await
    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");

    // Hiding takes it off the storefront and out of the aggregate; withdrawing the reply works.
    let hidden = t
        .send(
            Method::PATCH,
            &update_path,
            Some(&shop.owner),
            Some(json!({"reply": null, "products": [{"id": product_review_id, "is_approved": false}]})),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(hidden["business_reply"], Value::Null);
    assert_eq!(hidden["replied_at"], Value::Null);
    let public = t
        .send(Method::GET, &reviews_path, None, None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(public["items"], json!([]));
    assert_eq!(public["rating"]["count"], 0);

    // Every write is audited.
    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE business_id = $1 AND outcome = 'ok' AND action LIKE 'review.%' ORDER BY occurred_at, id",
    )
    .bind(shop.business)
    .fetch_all(&t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(
        actions,
        [
            "review.create",
            "review.update",
            "review.update",
            "review.update"
        ]
    );
}

#[tokio::test]
async fn only_the_orders_own_customer_reviews_it() {
    let t = TestApp::new().await;
    let shop = shop(&t, "own-reviews").await;
    let other = shop_other(&t).await;
    let ann = customer(&t, &shop, "ann@example.test").await;
    let bob = customer(&t, &shop, "bob@example.test").await;
    let id = order(&t, &shop, &ann, "o-1").await;
    complete(&t, &shop, &id).await;
    let body = json!({"overall_rating": 3});
    // Another customer of the store, a customer of another store, the store's own staff.
    review(&t, &bob, &id, body.clone())
        .await
        .expect_problem(StatusCode::NOT_FOUND, "not_found");
    review(&t, &other, &id, body.clone())
        .await
        .expect_problem(StatusCode::NOT_FOUND, "not_found");
    review(&t, &shop.owner, &id, body.clone())
        .await
        .expect_problem(StatusCode::FORBIDDEN, "forbidden");
    t.send(
        Method::POST,
        &format!("/api/v1/orders/{id}/review"),
        None,
        Some(body.clone()),
    )
    .await
    .expect_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
    review(&t, &ann, &Uuid::now_v7().to_string(), body.clone())
        .await
        .expect_problem(StatusCode::NOT_FOUND, "not_found");
    assert_eq!(stored(&t, shop.business).await, (0, 0));
    review(&t, &ann, &id, body)
        .await
        .expect(StatusCode::CREATED);

    // Another business's owner sees neither the review nor can answer it.
    let review_id: Uuid = sqlx::query_scalar("SELECT id FROM order_reviews WHERE business_id = $1")
        .bind(shop.business)
        .fetch_one(&t.db.pools.owner)
        .await
        .unwrap();
    let (other_owner, other_business) = other_owner(&t).await;
    let inbox = t
        .send(
            Method::GET,
            "/api/v1/business/reviews",
            Some(&other_owner),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(inbox["items"], json!([]));
    t.send(
        Method::PATCH,
        &format!("/api/v1/business/reviews/{review_id}"),
        Some(&other_owner),
        Some(json!({"reply": "Not yours"})),
    )
    .await
    .expect_problem(StatusCode::NOT_FOUND, "not_found");
    let denied: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE business_id = $1 AND outcome = 'denied' AND action LIKE 'PATCH /api/v1/business/reviews/%'",
    )
    .bind(other_business)
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(denied, 1, "the cross-tenant attempt is audited");
    // The public listing of another store does not reach this store's product.
    t.send(
        Method::GET,
        &format!(
            "/api/v1/storefronts/other-store/products/{}/reviews",
            shop.pizza
        ),
        None,
        None,
    )
    .await
    .expect_problem(StatusCode::NOT_FOUND, "not_found");
}

/// A customer of a second store, `other-store`.
async fn shop_other(t: &TestApp) -> String {
    let other = shop(t, "other-store").await;
    customer(t, &other, "ann@example.test").await
}

/// The owner of `other-store` (see [`shop_other`]) and its business id.
async fn other_owner(t: &TestApp) -> (String, Uuid) {
    let token = t.login("owner@other-store.test", PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let business: Uuid = sqlx::query_scalar(
        "SELECT business_id FROM business_storefront_settings WHERE subdomain = 'other-store'",
    )
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap();
    (token, business)
}

#[tokio::test]
async fn public_reviews_are_paged_newest_first() {
    let t = TestApp::new().await;
    let shop = shop(&t, "paged-reviews").await;
    let mut approved = Vec::new();
    for (i, stars) in [5, 4, 2].into_iter().enumerate() {
        let token = customer(&t, &shop, &format!("c{i}@example.test")).await;
        let id = order(&t, &shop, &token, &format!("p-{i}")).await;
        complete(&t, &shop, &id).await;
        let created = review(
            &t,
            &token,
            &id,
            json!({"overall_rating": stars, "products": [{"product_id": shop.pizza, "rating": stars}]}),
        )
        .await
        .expect(StatusCode::CREATED);
        t.send(
            Method::PATCH,
            &format!(
                "/api/v1/business/reviews/{}",
                created["id"].as_str().unwrap()
            ),
            Some(&shop.owner),
            Some(json!({"products": [{"id": created["products"][0]["id"], "is_approved": true}]})),
        )
        .await
        .expect(StatusCode::OK);
        approved.push(created["products"][0]["id"].as_str().unwrap().to_owned());
    }
    let path = format!(
        "/api/v1/storefronts/{}/products/{}/reviews",
        shop.subdomain, shop.pizza
    );
    let first = t
        .send(Method::GET, &format!("{path}?limit=2"), None, None)
        .await
        .expect(StatusCode::OK);
    // 11 stars from 3 ratings: 3.666… → 37 tenths.
    assert_eq!(
        first["rating"],
        json!({"count": 3, "sum": 11, "average_tenths": 37})
    );
    let ids = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&first), [approved[2].clone(), approved[1].clone()]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = t
        .send(
            Method::GET,
            &format!("{path}?limit=2&cursor={cursor}"),
            None,
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(ids(&second), [approved[0].clone()]);
    assert_eq!(second["next_cursor"], Value::Null);
    for bad in ["?cursor=nonsense", "?limit=0", "?limit=101", "?sort=best"] {
        t.send(Method::GET, &format!("{path}{bad}"), None, None)
            .await
            .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    }
    // An unpublished product has no public reviews.
    t.send(
        Method::PATCH,
        &format!("/api/v1/business/products/{}", shop.pizza),
        Some(&shop.owner),
        Some(json!({"is_published": false})),
    )
    .await
    .expect(StatusCode::OK);
    t.send(Method::GET, &path, None, None)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "not_found");
}

/// The signed-in customer's (completed orders, minor units spent).
async fn totals(t: &TestApp, token: &str) -> (i64, i64) {
    let me = t
        .send(Method::GET, "/api/v1/customers/me", Some(token), None)
        .await
        .expect(StatusCode::OK);
    (
        me["total_orders"].as_i64().unwrap(),
        me["total_spent"]["minor"].as_i64().unwrap(),
    )
}

#[tokio::test]
async fn customer_totals_follow_completion_and_refunds() {
    let t = TestApp::new().await;
    let shop = shop(&t, "totals-shop").await;
    let ann = customer(&t, &shop, "ann@example.test").await;
    let first = order(&t, &shop, &ann, "t-1").await;
    let second = order(&t, &shop, &ann, "t-2").await;
    assert_eq!(totals(&t, &ann).await, (0, 0), "placing is not completing");
    complete(&t, &shop, &first).await;
    complete(&t, &shop, &second).await;
    assert_eq!(totals(&t, &ann).await, (2, 3000));
    // A third, cancelled before completion, never counts.
    let third = order(&t, &shop, &ann, "t-3").await;
    t.send(
        Method::POST,
        &format!("/api/v1/orders/{third}/cancel"),
        Some(&ann),
        Some(json!({"reason": "changed my mind"})),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(totals(&t, &ann).await, (2, 3000));

    // A refund (permission and PIN elevation) takes the order back out.
    t.send(
        Method::PUT,
        "/api/v1/auth/pin",
        Some(&shop.owner),
        Some(json!({"pin": "2580", "password": PASSWORD})),
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    let elevated = t
        .send(
            Method::POST,
            "/api/v1/auth/pin/verify",
            Some(&shop.owner),
            Some(json!({"pin": "2580", "action": "refund"})),
        )
        .await
        .expect(StatusCode::OK)["elevated_token"]
        .as_str()
        .unwrap()
        .to_owned();
    t.send_with(
        Method::POST,
        &format!("/api/v1/business/orders/{first}/refund"),
        Some(&shop.owner),
        Some(json!({"reason": "cold pizza"})),
        &[("x-fleetfront-elevation", &elevated)],
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(totals(&t, &ann).await, (1, 1500));

    // A refunded order can still be reviewed: it was completed.
    review(&t, &ann, &first, json!({"overall_rating": 2}))
        .await
        .expect(StatusCode::CREATED);
    // A cancelled one cannot.
    review(&t, &ann, &third, json!({"overall_rating": 1}))
        .await
        .expect_problem(StatusCode::CONFLICT, "order_not_complete");
}
