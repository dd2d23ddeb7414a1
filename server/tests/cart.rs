//! Carts: guest carts by token, a customer's one cart, merging on sign-in, fresh prices,
//! stock limits, and privacy between carts and stores.

#![allow(clippy::unwrap_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::{TestApp, PASSWORD};
use serde_json::{json, Value};

/// A published store with two products: a plain one (4.50) and one with two variants, the
/// large one limited to 2 in stock. Returns (owner token, plain product, variant product,
/// small variant, large variant).
async fn store(
    t: &TestApp,
    admin: &str,
    subdomain: &str,
) -> (String, String, String, String, String) {
    let (_, owner) = t.business(admin, subdomain, "starter").await;
    t.send(
        Method::PATCH,
        "/api/v1/business/storefront",
        Some(&owner),
        Some(json!({"is_published": true})),
    )
    .await
    .expect(StatusCode::OK);
    let plain = t
        .send(
            Method::POST,
            "/api/v1/business/products",
            Some(&owner),
            Some(json!({"sku": "TEA", "name": "Green tea", "price_minor": 450, "is_published": true})),
        )
        .await
        .expect(StatusCode::CREATED);
    let sized = t
        .send(
            Method::POST,
            "/api/v1/business/products",
            Some(&owner),
            Some(json!({"sku": "PIZZA", "name": "Pizza", "price_minor": 1000, "is_published": true, "variants": [
                {"name": "Small", "sku": "PIZZA-S", "price_adjustment_minor": -200},
                {"name": "Large", "sku": "PIZZA-L", "price_adjustment_minor": 300, "stock_quantity": 2}
            ]})),
        )
        .await
        .expect(StatusCode::CREATED);
    let variant = |name: &str| {
        sized["variants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    (
        owner,
        plain["id"].as_str().unwrap().to_owned(),
        sized["id"].as_str().unwrap().to_owned(),
        variant("Small"),
        variant("Large"),
    )
}

fn path(subdomain: &str, rest: &str) -> String {
    format!("/api/v1/storefronts/{subdomain}/cart{rest}")
}

async fn guest_cart(t: &TestApp, subdomain: &str) -> String {
    let created = t
        .send(Method::POST, &path(subdomain, ""), None, None)
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(created["cart"]["lines"], json!([]));
    created["cart_token"].as_str().unwrap().to_owned()
}

async fn set(
    t: &TestApp,
    subdomain: &str,
    token: Option<&str>,
    cart: Option<&str>,
    item: Value,
) -> common::Reply {
    let headers: Vec<(&str, &str)> = cart.map(|c| vec![("x-cart-token", c)]).unwrap_or_default();
    t.send_with(
        Method::PUT,
        &path(subdomain, "/items"),
        token,
        Some(item),
        &headers,
    )
    .await
}

#[tokio::test]
async fn a_guest_fills_a_cart_with_fresh_prices_and_stock_limits() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let (owner, tea, pizza, small, large) = store(&t, &admin, "slice-shop").await;
    let cart = guest_cart(&t, "slice-shop").await;

    set(
        &t,
        "slice-shop",
        None,
        Some(&cart),
        json!({"product_id": tea, "quantity": 2}),
    )
    .await
    .expect(StatusCode::OK);
    let view = set(
        &t,
        "slice-shop",
        None,
        Some(&cart),
        json!({"product_id": pizza, "variant_id": small, "quantity": 1}),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(view["item_count"], 3);
    assert_eq!(view["subtotal"]["minor"], 2 * 450 + 800);
    assert_eq!(view["lines"][1]["unit_price"]["minor"], 800);
    assert_eq!(view["lines"][1]["variant_name"], "Small");

    // Setting a quantity replaces it; 0 removes the line.
    let view = set(
        &t,
        "slice-shop",
        None,
        Some(&cart),
        json!({"product_id": tea, "quantity": 5}),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(view["lines"][0]["quantity"], 5);
    let view = set(
        &t,
        "slice-shop",
        None,
        Some(&cart),
        json!({"product_id": tea, "quantity": 0}),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(view["lines"].as_array().unwrap().len(), 1);

    // Stock, variants and validation: each refused, none changes the cart.
    let refused = [
        (
            json!({"product_id": pizza, "variant_id": large, "quantity": 3}),
            StatusCode::CONFLICT,
            "conflict",
        ),
        (
            json!({"product_id": pizza, "quantity": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            json!({"product_id": tea, "variant_id": small, "quantity": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            json!({"product_id": tea, "quantity": 1000}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            json!({"product_id": uuid::Uuid::now_v7(), "quantity": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
    ];
    for (item, status, code) in refused {
        set(&t, "slice-shop", None, Some(&cart), item)
            .await
            .expect_problem(status, code);
    }
    let unchanged = t
        .send_with(
            Method::GET,
            &path("slice-shop", ""),
            None,
            None,
            &[("x-cart-token", &cart)],
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(unchanged["item_count"], 1);

    // A price change shows at once; an unpublished product stays in the cart as unavailable.
    t.send(
        Method::PATCH,
        &format!("/api/v1/business/products/{pizza}"),
        Some(&owner),
        Some(json!({"price_minor": 1100})),
    )
    .await
    .expect(StatusCode::OK);
    let view = t
        .send_with(
            Method::GET,
            &path("slice-shop", ""),
            None,
            None,
            &[("x-cart-token", &cart)],
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(view["lines"][0]["unit_price"]["minor"], 900);
    assert_eq!(view["all_available"], true);
    t.send(
        Method::PATCH,
        &format!("/api/v1/business/products/{pizza}"),
        Some(&owner),
        Some(json!({"is_published": false})),
    )
    .await
    .expect(StatusCode::OK);
    let view = t
        .send_with(
            Method::GET,
            &path("slice-shop", ""),
            None,
            None,
            &[("x-cart-token", &cart)],
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(view["all_available"], false);
    assert_eq!(view["lines"][0]["available"], false);

    // Without the token there is no cart; a made-up token finds nothing.
    t.send(Method::GET, &path("slice-shop", ""), None, None)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "not_found");
    t.send_with(
        Method::GET,
        &path("slice-shop", ""),
        None,
        None,
        &[(
            "x-cart-token",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        )],
    )
    .await
    .expect_problem(StatusCode::NOT_FOUND, "not_found");
    t.send_with(
        Method::DELETE,
        &path("slice-shop", ""),
        None,
        None,
        &[("x-cart-token", &cart)],
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    t.send_with(
        Method::GET,
        &path("slice-shop", ""),
        None,
        None,
        &[("x-cart-token", &cart)],
    )
    .await
    .expect_problem(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn a_guest_cart_merges_into_the_customers_cart_on_sign_in() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let (_, tea, pizza, small, _) = store(&t, &admin, "merge-shop").await;
    let customer = t
        .send(
            Method::POST,
            "/api/v1/auth/customer/register",
            None,
            Some(json!({"store": "merge-shop", "email": "kim@example.com", "password": PASSWORD, "full_name": "Kim"})),
        )
        .await
        .expect(StatusCode::CREATED)["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    // The customer's own cart survives across requests (it is server-side).
    set(
        &t,
        "merge-shop",
        Some(&customer),
        None,
        json!({"product_id": tea, "quantity": 1}),
    )
    .await
    .expect(StatusCode::OK);
    // Meanwhile, on another device, as a guest.
    let guest = guest_cart(&t, "merge-shop").await;
    set(
        &t,
        "merge-shop",
        None,
        Some(&guest),
        json!({"product_id": tea, "quantity": 998}),
    )
    .await
    .expect(StatusCode::OK);
    set(
        &t,
        "merge-shop",
        None,
        Some(&guest),
        json!({"product_id": pizza, "variant_id": small, "quantity": 2}),
    )
    .await
    .expect(StatusCode::OK);

    let merged = t
        .send_with(
            Method::POST,
            &path("merge-shop", "/merge"),
            Some(&customer),
            None,
            &[("x-cart-token", &guest)],
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        merged["lines"][0]["quantity"], 999,
        "quantities add up, capped"
    );
    assert_eq!(merged["lines"][1]["quantity"], 2);
    t.send_with(
        Method::GET,
        &path("merge-shop", ""),
        None,
        None,
        &[("x-cart-token", &guest)],
    )
    .await
    .expect_problem(StatusCode::NOT_FOUND, "not_found");
    let mine = t
        .send(Method::GET, &path("merge-shop", ""), Some(&customer), None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(mine["id"], merged["id"]);

    // Merging needs a signed-in customer.
    t.send_with(
        Method::POST,
        &path("merge-shop", "/merge"),
        None,
        None,
        &[("x-cart-token", &guest)],
    )
    .await
    .expect_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
}

#[tokio::test]
async fn carts_are_private_to_their_holder_and_store() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let (owner, tea, ..) = store(&t, &admin, "north-shop").await;
    store(&t, &admin, "south-shop").await;
    let north = guest_cart(&t, "north-shop").await;
    set(
        &t,
        "north-shop",
        None,
        Some(&north),
        json!({"product_id": tea, "quantity": 1}),
    )
    .await
    .expect(StatusCode::OK);

    // The same token at another store finds nothing; another store's product cannot be added.
    t.send_with(
        Method::GET,
        &path("south-shop", ""),
        None,
        None,
        &[("x-cart-token", &north)],
    )
    .await
    .expect_problem(StatusCode::NOT_FOUND, "not_found");
    let south = guest_cart(&t, "south-shop").await;
    set(
        &t,
        "south-shop",
        None,
        Some(&south),
        json!({"product_id": tea, "quantity": 1}),
    )
    .await
    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    // Staff tokens are not customer tokens; a customer of one store cannot use another's cart.
    t.send(Method::GET, &path("north-shop", ""), Some(&owner), None)
        .await
        .expect_problem(StatusCode::FORBIDDEN, "forbidden");
    // Unknown stores.
    t.send(Method::POST, &path("no-such-shop", ""), None, None)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "not_found");
    let carts: i64 = sqlx::query_scalar("SELECT count(*) FROM carts")
        .fetch_one(&t.db.pools.owner)
        .await
        .unwrap();
    assert_eq!(carts, 2);
}
