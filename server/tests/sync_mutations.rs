//! The outbox mutations beyond the order board's, pushed through `POST /api/v1/sync/push` on
//! real PostgreSQL: sales at the till (`order.create@1`), customers' carts and checkouts
//! (`cart.add@1`, `order.place@1`) and catalog edits (`product.create@1`,
//! `product.update@1`). Each is applied, replayed without doing anything twice, and refused
//! with its stable code and words; permissions hold. And the two conflict rules: two tills
//! selling the last unit sell it once, and a driver's offline "delivered" meets the order's
//! state machine after the store cancelled online.

#![allow(clippy::unwrap_used)] // A failed unwrap in a test is a failed test.

mod common;
#[path = "support/stripe_standin.rs"]
mod stripe_standin;

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use common::fleet::{self, accepted_order, answer, driver, shop, Shop};
use common::{TestApp, PASSWORD};
use serde_json::{json, Value};
use uuid::Uuid;

const ACTION_TIME: &str = "2026-01-02T03:04:05Z";

fn mutation(seq: u64, name: &str, args: Value) -> Value {
    json!({"seq": seq, "id": Uuid::now_v7(), "name": name, "args": args,
           "action_time": ACTION_TIME})
}

async fn push(t: &TestApp, token: &str, client: Uuid, mutations: &[Value]) -> Value {
    t.send(
        Method::POST,
        "/api/v1/sync/push",
        Some(token),
        Some(json!({"client_id": client, "mutations": mutations})),
    )
    .await
    .expect(StatusCode::OK)
}

/// Pushes one mutation as the next of a fresh client; returns its result.
async fn push_one(t: &TestApp, token: &str, name: &str, args: Value) -> Value {
    let answer = push(t, token, Uuid::now_v7(), &[mutation(1, name, args)]).await;
    answer["results"][0].clone()
}

#[track_caller]
fn applied(result: &Value) -> &Value {
    assert_eq!(result["status"], json!("applied"), "{result}");
    &result["output"]
}

#[track_caller]
fn rejected(result: &Value, code: &str) -> String {
    assert_eq!(result["status"], json!("rejected"), "{result}");
    assert_eq!(result["code"], json!(code), "{result}");
    assert!(result.get("output").is_none(), "{result}");
    let message = result["message"].as_str().unwrap().to_owned();
    assert!(message.len() > 5, "{result}");
    message
}

async fn count(t: &TestApp, sql: &str, id: Uuid) -> i64 {
    sqlx::query_scalar(sql)
        .bind(id)
        .fetch_one(&t.db.pools.owner)
        .await
        .unwrap()
}

async fn stock(t: &TestApp, variant: Uuid) -> i32 {
    sqlx::query_scalar("SELECT stock_quantity FROM product_variants WHERE id = $1")
        .bind(variant)
        .fetch_one(&t.db.pools.owner)
        .await
        .unwrap()
}

async fn customer(t: &TestApp, shop: &Shop, email: &str) -> String {
    t.send(
        Method::POST,
        "/api/v1/auth/customer/register",
        None,
        Some(
            json!({"store": shop.subdomain, "email": email, "password": PASSWORD,
                    "full_name": "Ann Customer"}),
        ),
    )
    .await
    .expect(StatusCode::CREATED)["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn id_of(value: &Value) -> Uuid {
    value.as_str().unwrap().parse().unwrap()
}

// Sales at the till ------------------------------------------------------------------------------

fn sale(order: Uuid, shop: &Shop, quantity: i64, payment: &str) -> Value {
    json!({"order_id": order, "payment": payment, "customer_name": "Aino",
           "items": [{"product_id": shop.product, "variant_id": shop.variant, "quantity": quantity}]})
}

#[tokio::test]
async fn a_sale_at_the_till_is_priced_by_the_server_paid_and_applied_once() {
    let t = TestApp::new().await;
    let shop = shop(&t, "posone").await;
    let client = Uuid::now_v7();
    let order = Uuid::now_v7();
    let batch = vec![mutation(1, "order.create@1", sale(order, &shop, 3, "cash"))];
    let answer = push(&t, &shop.owner, client, &batch).await;
    let view = applied(&answer["results"][0]).clone();
    assert_eq!(id_of(&view["id"]), order);
    // Accepted at the till, paid there, priced from the catalog (3 × 10.00, no tax).
    assert_eq!(view["status"], json!("confirmed"), "{view}");
    assert_eq!(view["payment_status"], json!("captured"));
    assert_eq!(view["fulfilment"], json!("pickup"));
    assert_eq!(view["total"]["minor"], json!(3000));
    assert_eq!(view["items"][0]["quantity"], json!(3));
    assert!(view["accepted_at"].is_string());
    // The sale happened when the till took it.
    assert_eq!(view["placed_at"], json!("2026-01-02T03:04:05Z"));
    assert_eq!(stock(&t, shop.variant).await, 97);

    // A replay of the batch answers the stored result; a second mutation with the same order
    // id (another till, or the app reinstalled) answers the order as it is; nothing doubles.
    let again = push(&t, &shop.owner, client, &batch).await;
    assert_eq!(again["results"], answer["results"]);
    let second = push_one(
        &t,
        &shop.owner,
        "order.create@1",
        sale(order, &shop, 3, "cash"),
    )
    .await;
    assert_eq!(id_of(&applied(&second)["id"]), order);
    assert_eq!(stock(&t, shop.variant).await, 97);
    let orders = count(&t, "SELECT count(*) FROM orders WHERE id = $1", order).await;
    let payments = count(
        &t,
        "SELECT count(*) FROM payment_transactions WHERE order_id = $1 AND status = 'completed'",
        order,
    )
    .await;
    let accepts = count(
        &t,
        "SELECT count(*) FROM order_status_history WHERE order_id = $1 AND to_status = 'confirmed'",
        order,
    )
    .await;
    assert_eq!((orders, payments, accepts), (1, 1, 1));

    // A card presented at the store's terminal: captured too, the tender kept with the payment.
    let card = Uuid::now_v7();
    let paid = push_one(
        &t,
        &shop.owner,
        "order.create@1",
        sale(card, &shop, 1, "card_present"),
    )
    .await;
    assert_eq!(applied(&paid)["payment_status"], json!("captured"));
    let tender: String = sqlx::query_scalar(
        "SELECT metadata->>'tender' FROM payment_transactions WHERE order_id = $1",
    )
    .bind(card)
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(tender, "card_present");
    // The order says it is a till sale, how it was paid and for whom; the store holds the
    // money either way (`cash` for payouts).
    let till = &applied(&paid)["till"];
    assert_eq!(till["tender"], json!("card_present"), "{paid}");
    assert_eq!(till["customer_name"], json!("Aino"));
    assert_eq!(applied(&paid)["payment_method"], json!("cash"));
    assert!(applied(&paid)["guest_email"].is_null());

    // The kitchen goes on from confirmed with the board's own mutations; a till sale has
    // nobody to email about it.
    let ready = push_one(
        &t,
        &shop.owner,
        "order.mark_ready@1",
        json!({"order_id": order}),
    )
    .await;
    assert_eq!(applied(&ready)["status"], json!("ready"));
    let emails = count(
        &t,
        "SELECT count(*) FROM outbox_messages WHERE topic = 'email' AND payload->>'order_id' = $1::text",
        order,
    )
    .await;
    assert_eq!(emails, 0);
}

#[tokio::test]
async fn sales_refuse_what_the_rules_refuse() {
    let t = TestApp::new().await;
    let shop = shop(&t, "posrules").await;
    // More than the stock: refused with the product's name, nothing taken.
    let short = push_one(
        &t,
        &shop.owner,
        "order.create@1",
        sale(Uuid::now_v7(), &shop, 101, "cash"),
    )
    .await;
    let words = rejected(&short, "out_of_stock");
    assert!(words.starts_with("Soup is sold out"), "{words}");
    assert_eq!(stock(&t, shop.variant).await, 100);
    // A price from the till is an unknown field, and so is anything else not in the args.
    let mut priced = sale(Uuid::now_v7(), &shop, 1, "cash");
    priced["items"][0]["unit_price_minor"] = json!(1);
    rejected(
        &push_one(&t, &shop.owner, "order.create@1", priced).await,
        "validation_failed",
    );
    let mut total = sale(Uuid::now_v7(), &shop, 1, "cash");
    total["total_minor"] = json!(1);
    rejected(
        &push_one(&t, &shop.owner, "order.create@1", total).await,
        "validation_failed",
    );
    rejected(
        &push_one(
            &t,
            &shop.owner,
            "order.create@1",
            sale(Uuid::now_v7(), &shop, 0, "cash"),
        )
        .await,
        "validation_failed",
    );
    rejected(
        &push_one(
            &t,
            &shop.owner,
            "order.create@1",
            sale(Uuid::now_v7(), &shop, 1, "voucher"),
        )
        .await,
        "validation_failed",
    );
    let unknown = json!({"order_id": Uuid::now_v7(), "payment": "cash",
                         "items": [{"product_id": Uuid::now_v7(), "quantity": 1}]});
    rejected(
        &push_one(&t, &shop.owner, "order.create@1", unknown).await,
        "item_unavailable",
    );
    // Drivers and customers do not sell at the till.
    let (_, driver_token) = driver(&t, "Dan", (60.171, 24.94), Some((shop.business, 1))).await;
    let ann = customer(&t, &shop, "ann@posrules.test").await;
    for token in [&driver_token, &ann] {
        let order = Uuid::now_v7();
        let refused = push_one(&t, token, "order.create@1", sale(order, &shop, 1, "cash")).await;
        rejected(&refused, "forbidden");
        assert_eq!(
            count(&t, "SELECT count(*) FROM orders WHERE id = $1", order).await,
            0
        );
    }
    assert_eq!(stock(&t, shop.variant).await, 100);
}

/// Two tills sell the last item: both push an `order.create@1` for the product's last unit.
/// Exactly one applies; the other is rejected as `out_of_stock` with words naming the product;
/// the stock ends at 0, never below; one order, one payment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tills_selling_the_last_item_sell_it_once() {
    let t = Arc::new(TestApp::new().await);
    let shop = shop(&t, "postills").await;
    let (product, variant) = t
        .product_with_variant(
            &shop.owner,
            json!({"sku": "MARG", "name": "Margherita", "price_minor": 1200, "is_published": true,
                   "variants": [{"name": "Whole", "sku": "MARG-W", "stock_quantity": 1}]}),
        )
        .await;
    // Two staff sessions, one per till.
    let second_session = t
        .login(&format!("owner@{}.test", shop.subdomain), PASSWORD)
        .await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut tasks = Vec::new();
    for token in [shop.owner.clone(), second_session] {
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            let order = Uuid::now_v7();
            let args = json!({"order_id": order, "payment": "cash",
                              "items": [{"product_id": product, "variant_id": variant, "quantity": 1}]});
            let result = push(&t, &token, Uuid::now_v7(), &[mutation(1, "order.create@1", args)])
                .await["results"][0]
                .clone();
            (order, result)
        }));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results.sort_by_key(|(_, r)| r["status"].as_str().unwrap().to_owned());
    let (sold, won) = &results[0];
    let (refused, lost) = &results[1];
    assert_eq!(applied(won)["status"], json!("confirmed"));
    let words = rejected(lost, "out_of_stock");
    assert!(words.starts_with("Margherita is sold out"), "{words}");
    assert_eq!(stock(&t, variant).await, 0);
    let lines: i64 = sqlx::query_scalar("SELECT count(*) FROM order_items WHERE variant_id = $1")
        .bind(variant)
        .fetch_one(&t.db.pools.owner)
        .await
        .unwrap();
    assert_eq!(lines, 1);
    assert_eq!(
        count(&t, "SELECT count(*) FROM orders WHERE id = $1", *sold).await,
        1
    );
    assert_eq!(
        count(&t, "SELECT count(*) FROM orders WHERE id = $1", *refused).await,
        0
    );
    let payments = count(
        &t,
        "SELECT count(*) FROM payment_transactions WHERE order_id = $1",
        *sold,
    )
    .await;
    assert_eq!(payments, 1);
    assert_eq!(
        count(
            &t,
            "SELECT count(*) FROM payment_transactions WHERE order_id = $1",
            *refused
        )
        .await,
        0
    );
}

// Customers --------------------------------------------------------------------------------------

#[tokio::test]
async fn customers_fill_their_cart_from_the_outbox() {
    let t = TestApp::new().await;
    let shop = shop(&t, "synccart").await;
    let ann = customer(&t, &shop, "ann@synccart.test").await;
    let client = Uuid::now_v7();
    let line = |quantity: i64| json!({"product_id": shop.product, "variant_id": shop.variant, "quantity": quantity});
    let batch = vec![mutation(1, "cart.add@1", line(2))];
    let answer = push(&t, &ann, client, &batch).await;
    let cart = applied(&answer["results"][0]).clone();
    assert_eq!(cart["lines"][0]["quantity"], json!(2), "{cart}");
    assert_eq!(cart["subtotal"]["minor"], json!(2000));
    // The replay answers the stored cart; the cart is as it was.
    assert_eq!(
        push(&t, &ann, client, &batch).await["results"],
        answer["results"]
    );
    let shown = t
        .send(
            Method::GET,
            &format!("/api/v1/storefronts/{}/cart", shop.subdomain),
            Some(&ann),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(shown["lines"][0]["quantity"], json!(2));
    assert_eq!(shown["lines"].as_array().unwrap().len(), 1);
    // Setting, not adding: the same line again keeps one line with the new quantity; 0 removes.
    let more = push(
        &t,
        &ann,
        client,
        &[
            mutation(2, "cart.add@1", line(5)),
            mutation(3, "cart.add@1", line(0)),
        ],
    )
    .await;
    assert_eq!(
        applied(&more["results"][0])["lines"][0]["quantity"],
        json!(5)
    );
    assert_eq!(applied(&more["results"][1])["lines"], json!([]));
    // Refusals: more than the stock, an unknown field, a bad quantity; staff have no cart.
    let short = push_one(&t, &ann, "cart.add@1", line(101)).await;
    assert!(rejected(&short, "conflict").contains("100"));
    let mut extra = line(1);
    extra["price_minor"] = json!(1);
    rejected(
        &push_one(&t, &ann, "cart.add@1", extra).await,
        "validation_failed",
    );
    rejected(
        &push_one(&t, &ann, "cart.add@1", line(1000)).await,
        "validation_failed",
    );
    rejected(
        &push_one(&t, &shop.owner, "cart.add@1", line(1)).await,
        "forbidden",
    );
}

fn checkout(order: Uuid, shop: &Shop, quantity: i64, total: i64) -> Value {
    json!({"order_id": order, "fulfilment": {"kind": "pickup"}, "payment": {"method": "cash"},
           "items": [{"product_id": shop.product, "variant_id": shop.variant, "quantity": quantity}],
           "expected_total_minor": total})
}

#[tokio::test]
async fn customers_place_orders_from_the_outbox_once() {
    let t = TestApp::new().await;
    let shop = shop(&t, "syncplace").await;
    let ann = customer(&t, &shop, "ann@syncplace.test").await;
    let client = Uuid::now_v7();
    let key = Uuid::now_v7();
    let batch = vec![mutation(1, "order.place@1", checkout(key, &shop, 2, 2000))];
    let answer = push(&t, &ann, client, &batch).await;
    let order = applied(&answer["results"][0]).clone();
    assert_eq!(order["status"], json!("pending"), "{order}");
    assert_eq!(order["total"]["minor"], json!(2000));
    let id = id_of(&order["id"]);
    assert_eq!(stock(&t, shop.variant).await, 98);
    // A replay answers the stored result; a second mutation with the same order_id (the
    // client lost the answer and queued it again) answers the same order.
    assert_eq!(
        push(&t, &ann, client, &batch).await["results"],
        answer["results"]
    );
    let second = push(
        &t,
        &ann,
        client,
        &[mutation(2, "order.place@1", checkout(key, &shop, 2, 2000))],
    )
    .await;
    assert_eq!(id_of(&applied(&second["results"][0])["id"]), id);
    let placed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.email = 'ann@syncplace.test'",
    )
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(placed, 1);
    assert_eq!(stock(&t, shop.variant).await, 98);
    // The same order_id for another order is refused; so are a stale price, an unknown field,
    // and a staff member placing a customer's order.
    let other = push_one(&t, &ann, "order.place@1", checkout(key, &shop, 3, 3000)).await;
    rejected(&other, "idempotency_key_reused");
    let stale = push_one(
        &t,
        &ann,
        "order.place@1",
        checkout(Uuid::now_v7(), &shop, 1, 900),
    )
    .await;
    assert!(
        rejected(&stale, "price_changed").contains("10.00"),
        "{stale}"
    );
    let mut extra = checkout(Uuid::now_v7(), &shop, 1, 1000);
    extra["customer_id"] = json!(Uuid::now_v7());
    rejected(
        &push_one(&t, &ann, "order.place@1", extra).await,
        "validation_failed",
    );
    rejected(
        &push_one(
            &t,
            &shop.owner,
            "order.place@1",
            checkout(Uuid::now_v7(), &shop, 1, 1000),
        )
        .await,
        "forbidden",
    );
    assert_eq!(stock(&t, shop.variant).await, 98);
}

/// Payments are never optimistic: a card that needs the customer's step comes back awaiting
/// payment, with the client secret the app completes the payment with online.
#[tokio::test]
async fn a_card_order_from_the_outbox_answers_what_the_app_needs_to_pay() {
    let t = TestApp::new().await;
    let _standin = stripe_standin::StandIn::start().await;
    let gateway = fleetfront_server::payments::stripe::StripeGateway::new(
        &_standin.base_url,
        stripe_standin::SECRET_KEY,
    )
    .unwrap();
    assert!(t
        .app
        .configure_stripe(fleetfront_server::payments::webhook::Stripe::new(
            gateway,
            "whsec_sync_test"
        )));
    let shop = shop(&t, "synccard").await;
    let ann = customer(&t, &shop, "ann@synccard.test").await;
    let mut args = checkout(Uuid::now_v7(), &shop, 1, 1000);
    args["payment"] = json!({"method": "card", "token": "pm_card_threeDSecure2Required"});
    let result = push_one(&t, &ann, "order.place@1", args).await;
    let order = applied(&result);
    assert_eq!(order["status"], json!("awaiting_payment"), "{order}");
    assert!(order["payment_action"]["client_secret"]
        .as_str()
        .unwrap()
        .contains("_secret_"));
    let mut declined = checkout(Uuid::now_v7(), &shop, 1, 1000);
    declined["payment"] = json!({"method": "card", "token": "pm_card_chargeDeclined"});
    rejected(
        &push_one(&t, &ann, "order.place@1", declined).await,
        "payment_declined",
    );
}

// The catalog ------------------------------------------------------------------------------------

#[tokio::test]
async fn staff_edit_the_catalog_from_the_outbox() {
    let t = TestApp::new().await;
    let shop = shop(&t, "synccatalog").await;
    let client = Uuid::now_v7();
    let product = Uuid::now_v7();
    let create = json!({"product_id": product, "sku": "PIZ", "name": "Pizza", "price_minor": 1200,
                        "is_published": true,
                        "variants": [{"name": "Whole", "sku": "PIZ-W", "stock_quantity": 5}]});
    let batch = vec![mutation(1, "product.create@1", create.clone())];
    let answer = push(&t, &shop.owner, client, &batch).await;
    let view = applied(&answer["results"][0]).clone();
    assert_eq!(id_of(&view["id"]), product);
    assert_eq!(view["price"]["minor"], json!(1200));
    assert_eq!(
        push(&t, &shop.owner, client, &batch).await["results"],
        answer["results"]
    );
    // The same product_id again: the product as it is, no second product.
    let again = push(
        &t,
        &shop.owner,
        client,
        &[mutation(2, "product.create@1", create.clone())],
    )
    .await;
    assert_eq!(id_of(&applied(&again["results"][0])["id"]), product);
    assert_eq!(
        count(&t, "SELECT count(*) FROM products WHERE id = $1", product).await,
        1
    );
    let update = json!({"product_id": product, "price_minor": 1300, "description": "Thin crust"});
    let updated = push(
        &t,
        &shop.owner,
        client,
        &[mutation(3, "product.update@1", update)],
    )
    .await;
    let view = applied(&updated["results"][0]);
    assert_eq!(view["price"]["minor"], json!(1300));
    assert_eq!(view["description"], json!("Thin crust"));
    // The storefront sells at the new price.
    let till = push_one(&t, &shop.owner, "order.create@1", json!({"order_id": Uuid::now_v7(),
        "payment": "cash", "items": [{"product_id": product, "variant_id": view["variants"][0]["id"], "quantity": 1}]})).await;
    assert_eq!(applied(&till)["total"]["minor"], json!(1300));

    // Refusals: a SKU taken, an unknown field, a product that is not there, a bad price; a
    // customer may not edit the catalog.
    let mut taken = create.clone();
    taken["product_id"] = json!(Uuid::now_v7());
    rejected(
        &push_one(&t, &shop.owner, "product.create@1", taken).await,
        "conflict",
    );
    let mut extra = create.clone();
    extra["product_id"] = json!(Uuid::now_v7());
    extra["sku"] = json!("OTHER");
    extra["stock"] = json!(3);
    rejected(
        &push_one(&t, &shop.owner, "product.create@1", extra).await,
        "validation_failed",
    );
    rejected(
        &push_one(
            &t,
            &shop.owner,
            "product.update@1",
            json!({"product_id": Uuid::now_v7(), "price_minor": 1}),
        )
        .await,
        "not_found",
    );
    rejected(
        &push_one(
            &t,
            &shop.owner,
            "product.update@1",
            json!({"product_id": product, "price_minor": -1}),
        )
        .await,
        "validation_failed",
    );
    let ann = customer(&t, &shop, "ann@synccatalog.test").await;
    let mut theirs = create.clone();
    theirs["product_id"] = json!(Uuid::now_v7());
    theirs["sku"] = json!("ANNS");
    rejected(
        &push_one(&t, &ann, "product.create@1", theirs).await,
        "forbidden",
    );
    rejected(
        &push_one(
            &t,
            &ann,
            "product.update@1",
            json!({"product_id": product, "price_minor": 1}),
        )
        .await,
        "forbidden",
    );
    let price: i64 = sqlx::query_scalar("SELECT price_minor FROM products WHERE id = $1")
        .bind(product)
        .fetch_one(&t.db.pools.owner)
        .await
        .unwrap();
    assert_eq!(price, 1300);
}

// The driver's offline "delivered" against the store's online cancellation ----------------------

/// An accepted cash delivery order, its offer accepted by a driver; returns (order, delivery,
/// driver's token).
async fn assigned(t: &TestApp, shop: &Shop) -> (Uuid, Uuid, String) {
    let (_, token) = driver(t, "Dee", (60.171, 24.94), Some((shop.business, 1))).await;
    let order = accepted_order(t, shop).await;
    let offer = fleet::only_offer(&fleet::assignments(t, &token).await);
    let delivery = answer(t, &token, &offer, "accept")
        .await
        .expect(StatusCode::OK)["delivery_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    (order, delivery, token)
}

/// What the driver's device queued while offline: delivered at the drop-off, with its GPS
/// position and time and the cash collected.
fn delivered_offline(delivery: Uuid) -> Value {
    json!({"delivery_id": delivery, "status": "delivered",
           "position": {"latitude": 60.175, "longitude": 24.94},
           "recorded_at": chrono::Utc::now() - chrono::Duration::minutes(2),
           "cash_collected": {"amount_minor": 1300}})
}

async fn order_status(t: &TestApp, order: Uuid) -> String {
    sqlx::query_scalar("SELECT status FROM orders WHERE id = $1")
        .bind(order)
        .fetch_one(&t.db.pools.owner)
        .await
        .unwrap()
}

async fn delivery_status(t: &TestApp, delivery: Uuid) -> String {
    sqlx::query_scalar("SELECT status FROM deliveries WHERE id = $1")
        .bind(delivery)
        .fetch_one(&t.db.pools.owner)
        .await
        .unwrap()
}

async fn earnings(t: &TestApp, order: Uuid) -> i64 {
    count(
        t,
        "SELECT count(*) FROM driver_earnings WHERE order_id = $1",
        order,
    )
    .await
}

async fn cancel_online(t: &TestApp, shop: &Shop, order: Uuid) -> Value {
    t.send(
        Method::PATCH,
        &format!("/api/v1/business/orders/{order}"),
        Some(&shop.owner),
        Some(json!({"type": "cancel", "reason": "The kitchen is closing"})),
    )
    .await
    .expect(StatusCode::OK)
}

/// Before pickup the store's cancellation is a transition: the order and its delivery are
/// cancelled. The driver's offline "delivered" (with GPS and time) that arrives afterwards
/// finds a cancelled delivery: it is recorded as superseded and changes nothing. The mutation
/// is applied (it is not an error, and it does not block the queue), its output says
/// `superseded`, and no earnings are written.
#[tokio::test]
async fn an_offline_delivery_after_an_online_cancellation_is_superseded() {
    let t = TestApp::new().await;
    let shop = shop(&t, "synccancel").await;
    let (order, delivery, token) = assigned(&t, &shop).await;
    let cancelled = cancel_online(&t, &shop, order).await;
    assert_eq!(cancelled["status"], json!("cancelled"), "{cancelled}");
    assert_eq!(delivery_status(&t, delivery).await, "cancelled");

    let client = Uuid::now_v7();
    let answer = push(
        &t,
        &token,
        client,
        &[mutation(1, "delivery.step@1", delivered_offline(delivery))],
    )
    .await;
    let view = applied(&answer["results"][0]);
    assert_eq!(view["outcome"], json!("superseded"), "{view}");
    assert_eq!(view["status"], json!("cancelled"), "{view}");
    assert_eq!(order_status(&t, order).await, "cancelled");
    assert_eq!(delivery_status(&t, delivery).await, "cancelled");
    assert_eq!(earnings(&t, order).await, 0);
    let delivered: i64 = count(
        &t,
        "SELECT count(*) FROM order_status_history WHERE order_id = $1 AND to_status = 'delivered'",
        order,
    )
    .await;
    assert_eq!(delivered, 0);
    // The replay answers the same; still nothing earned.
    let again = push(
        &t,
        &token,
        client,
        &[mutation(1, "delivery.step@1", delivered_offline(delivery))],
    )
    .await;
    assert_eq!(
        again["results"][0]["output"],
        answer["results"][0]["output"]
    );
    assert_eq!(earnings(&t, order).await, 0);
}

/// After pickup the store's cancellation is only a request (the food has left the store): the
/// order stays picked up. The driver's offline "delivered" then applies — the physical event
/// wins — the order is delivered, and the driver earns exactly once.
#[tokio::test]
async fn an_offline_delivery_after_pickup_wins_over_a_cancellation_request() {
    let t = TestApp::new().await;
    let shop = shop(&t, "syncrequest").await;
    let (order, delivery, token) = assigned(&t, &shop).await;
    t.send(
        Method::PATCH,
        &format!("/api/v1/driver/deliveries/{delivery}/status"),
        Some(&token),
        Some(json!({"status": "picked_up"})),
    )
    .await
    .expect(StatusCode::OK);
    let cancelled = cancel_online(&t, &shop, order).await;
    assert_eq!(cancelled["status"], json!("picked_up"), "{cancelled}");
    let requested = count(
        &t,
        "SELECT count(*) FROM order_status_history WHERE order_id = $1 AND event = 'cancel' \
           AND outcome = 'cancellation_requested'",
        order,
    )
    .await;
    assert_eq!(requested, 1);

    let client = Uuid::now_v7();
    let batch = vec![mutation(1, "delivery.step@1", delivered_offline(delivery))];
    let answer = push(&t, &token, client, &batch).await;
    let view = applied(&answer["results"][0]);
    assert_eq!(view["outcome"], json!("applied"), "{view}");
    assert_eq!(view["status"], json!("delivered"), "{view}");
    assert_eq!(order_status(&t, order).await, "delivered");
    assert_eq!(delivery_status(&t, delivery).await, "delivered");
    assert_eq!(earnings(&t, order).await, 1);
    // A replay pays nothing more.
    assert_eq!(
        push(&t, &token, client, &batch).await["results"],
        answer["results"]
    );
    assert_eq!(earnings(&t, order).await, 1);
}

// Tenancy ----------------------------------------------------------------------------------------

/// The business a mutation acts for comes from the token alone: another business's products
/// are neither sold, edited, put in a cart nor ordered, and a product id of theirs made again
/// here is a product of this business, leaving theirs as it was.
#[tokio::test]
async fn mutations_never_reach_another_business() {
    let t = TestApp::new().await;
    let a = shop(&t, "synctenanta").await;
    let b = shop(&t, "synctenantb").await;
    let theirs = sale(Uuid::now_v7(), &a, 1, "cash");
    rejected(
        &push_one(&t, &b.owner, "order.create@1", theirs).await,
        "item_unavailable",
    );
    rejected(
        &push_one(
            &t,
            &b.owner,
            "product.update@1",
            json!({"product_id": a.product, "price_minor": 1}),
        )
        .await,
        "not_found",
    );
    let bob = customer(&t, &b, "bob@synctenantb.test").await;
    let line = json!({"product_id": a.product, "variant_id": a.variant, "quantity": 1});
    rejected(
        &push_one(&t, &bob, "cart.add@1", line).await,
        "validation_failed",
    );
    rejected(
        &push_one(
            &t,
            &bob,
            "order.place@1",
            checkout(Uuid::now_v7(), &a, 1, 1000),
        )
        .await,
        "item_unavailable",
    );
    let same_id = json!({"product_id": a.product, "sku": "SOUP-2", "name": "Other soup",
                         "price_minor": 1});
    let made = push_one(&t, &b.owner, "product.create@1", same_id).await;
    assert_eq!(applied(&made)["name"], json!("Other soup"));
    let rows: Vec<(Uuid, String, i64)> = sqlx::query_as(
        "SELECT business_id, name, price_minor FROM products WHERE id = $1 ORDER BY name",
    )
    .bind(a.product)
    .fetch_all(&t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(
        rows,
        [
            (b.business, "Other soup".to_owned(), 1),
            (a.business, "Soup".to_owned(), 1000)
        ]
    );
    assert_eq!(stock(&t, a.variant).await, 100);
}

/// Two devices of one business create the same product (one id) at once: one product.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creations_of_one_product_make_one() {
    let t = Arc::new(TestApp::new().await);
    let shop = shop(&t, "syncsameproduct").await;
    let product = Uuid::now_v7();
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let (t, owner) = (t.clone(), shop.owner.clone());
        tasks.push(tokio::spawn(async move {
            let args =
                json!({"product_id": product, "sku": "TWIN", "name": "Twin", "price_minor": 700});
            push_one(&t, &owner, "product.create@1", args).await
        }));
    }
    for task in tasks {
        let result = task.await.unwrap();
        assert_eq!(id_of(&applied(&result)["id"]), product);
    }
    assert_eq!(
        count(&t, "SELECT count(*) FROM products WHERE id = $1", product).await,
        1
    );
}

#[tokio::test]
async fn an_event_is_never_logged_before_the_one_that_committed_first() {
    let t = TestApp::new().await;
    let shop = shop(&t, "poslog").await;
    let order = accepted_order(&t, &shop).await;
    // The next transition read the clock a minute before it got the order's lock (a push
    // waiting behind another till's): its event still comes after the accept.
    t.app.clock.advance(-60);
    let ready = push_one(
        &t,
        &shop.owner,
        "order.mark_ready@1",
        json!({"order_id": order}),
    )
    .await;
    t.app.clock.advance(60);
    assert_eq!(applied(&ready)["status"], json!("ready"));
    let log: Vec<String> = sqlx::query_scalar(
        "SELECT to_status FROM order_status_history WHERE order_id = $1 ORDER BY at, id",
    )
    .bind(order)
    .fetch_all(&t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(log.last().map(String::as_str), Some("ready"), "{log:?}");
}
