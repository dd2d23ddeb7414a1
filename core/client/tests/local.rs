//! Optimistic mutations on a real store file: a mutation shows at once, the domain's rules
//! refuse on the device what they would refuse on the server, pending intent survives every
//! pull (rebase), a rejection rolls back to the server's row, and an applied mutation stays on
//! show until the complete pull that brings the server's row.

#![allow(clippy::unwrap_used)] // A failed unwrap in a test is a failed test.

use std::path::PathBuf;

use chrono::{Duration, Utc};
use fleetfront_core::store::Store;
use fleetfront_domain::api::sync::{
    BucketPage, Mutation, MutationResult, MutationStatus, PullResponse, PushResponse, SyncRow,
};
use fleetfront_domain::sync::Bucket;
use serde_json::{json, Value};
use uuid::Uuid;

/// The device's clock (chrono's `clock` feature is off workspace-wide).
fn now() -> chrono::DateTime<Utc> {
    std::time::SystemTime::now().into()
}

struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("fleetfront-local-{}", Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const SHOP: Uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_1000);
const ORDER: Uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001);
const DRIVER: Uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0d01);
const DELIVERY: Uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0de1);

fn order(status: &str, note: &str) -> Value {
    json!({
        "status": status, "fulfilment": "pickup", "payment_method": "cash",
        "payment_status": "pending", "currency": "EUR", "total_minor": 1200,
        "acceptance_deadline": now() + Duration::minutes(5),
        "placed_at": now(), "note": note, "items": [],
    })
}

fn pulled(bucket: Bucket, kind: &str, id: Uuid, version: u64, data: Option<Value>) -> PullResponse {
    PullResponse {
        buckets: vec![BucketPage {
            bucket,
            reset: false,
            rows: vec![SyncRow {
                kind: kind.to_owned(),
                id,
                version,
                data,
            }],
            version,
            complete: false,
            checksum: None,
        }],
        removed: vec![],
        more: false,
    }
}

fn nothing_new() -> PullResponse {
    PullResponse {
        buckets: vec![],
        removed: vec![],
        more: false,
    }
}

fn status(store: &Store, kind: &str, id: Uuid) -> String {
    store
        .row(kind, id)
        .unwrap()
        .map_or("<none>".to_owned(), |r| {
            r["status"].as_str().unwrap().to_owned()
        })
}

fn till(scratch: &Scratch) -> Store {
    let store = Store::open(scratch.0.join("till.db")).unwrap();
    store
        .set_meta("account_id", &Uuid::now_v7().to_string())
        .unwrap();
    store
        .apply_pull(&pulled(
            Bucket::business(SHOP),
            "order",
            ORDER,
            1,
            Some(order("pending", "a")),
        ))
        .unwrap();
    store
}

fn answer(m: &Mutation, status: MutationStatus) -> PushResponse {
    PushResponse {
        results: vec![MutationResult {
            seq: m.seq,
            id: m.id,
            status,
            code: (status == MutationStatus::Rejected).then(|| "conflict".to_owned()),
            message: (status == MutationStatus::Rejected)
                .then(|| "The store cancelled this order".to_owned()),
            output: None,
        }],
        last_seq: m.seq,
    }
}

/// The till accepts the order with 15 minutes to prepare it.
fn accept(store: &Store) -> Result<Mutation, fleetfront_core::local::Refusal> {
    store
        .mutate(
            "order.accept@1",
            json!({"order_id": ORDER, "prep_time": 15}),
            now(),
        )
        .unwrap()
}

#[test]
fn a_mutation_shows_at_once_and_survives_pulls_until_decided() {
    let scratch = Scratch::new();
    let store = till(&scratch);
    let accept = accept(&store).unwrap();
    assert_eq!(status(&store, "order", ORDER), "confirmed");
    assert_eq!(
        store.row("order", ORDER).unwrap().unwrap()["prep_time_minutes"],
        15
    );
    assert_eq!(
        store.pulled_row("order", ORDER).unwrap().unwrap()["status"],
        "pending"
    );
    assert_eq!(store.pending_count().unwrap(), 1);
    assert_eq!(store.rows("order").unwrap().len(), 1);

    // Another change of the order arrives: the device shows it with the pending accept on top.
    store
        .apply_pull(&pulled(
            Bucket::business(SHOP),
            "order",
            ORDER,
            2,
            Some(order("pending", "b")),
        ))
        .unwrap();
    let shown = store.row("order", ORDER).unwrap().unwrap();
    assert_eq!(
        (shown["status"].as_str(), shown["note"].as_str()),
        (Some("confirmed"), Some("b"))
    );

    // The server applies it: the accept stays on show until the complete pull brings the
    // server's row, even when that pull has nothing new (the event was superseded there).
    store
        .record_results(&answer(&accept, MutationStatus::Applied))
        .unwrap();
    assert_eq!(store.pending_count().unwrap(), 0);
    assert_eq!(status(&store, "order", ORDER), "confirmed");
    store.apply_pull(&nothing_new()).unwrap();
    assert_eq!(status(&store, "order", ORDER), "pending");
    assert_eq!(
        store.row("order", ORDER).unwrap(),
        store.pulled_row("order", ORDER).unwrap()
    );
}

#[test]
fn the_domain_rules_refuse_on_the_device_and_nothing_is_queued() {
    let scratch = Scratch::new();
    let store = till(&scratch);
    let unknown = store
        .mutate(
            "order.accept@1",
            json!({"order_id": Uuid::now_v7(), "prep_time": 15}),
            now(),
        )
        .unwrap()
        .unwrap_err();
    assert_eq!(unknown.code, "not_found");
    // Staff reject a pending order; they cannot cancel it (the domain's rule).
    let early = store
        .mutate(
            "order.cancel@1",
            json!({"order_id": ORDER, "reason": "No soup"}),
            now(),
        )
        .unwrap()
        .unwrap_err();
    assert_eq!(early.code, "order_forbidden");
    assert_eq!(store.pending_count().unwrap(), 0);
    accept(&store).unwrap();
    store
        .mutate(
            "order.cancel@1",
            json!({"order_id": ORDER, "reason": "No soup"}),
            now(),
        )
        .unwrap()
        .unwrap();
    assert_eq!(status(&store, "order", ORDER), "cancelled");
    // An accept after the cancel is not an error but comes too late (superseded): it is
    // queued for the record and changes nothing.
    let late = accept(&store).unwrap();
    assert_eq!(late.seq, 3);
    assert_eq!(status(&store, "order", ORDER), "cancelled");
    let bad = store
        .mutate(
            "order.accept@1",
            json!({"order_id": ORDER, "prep_time": -1}),
            now(),
        )
        .unwrap()
        .unwrap_err();
    assert_eq!(bad.code, "validation_failed");
    assert!(!bad.message.is_empty());
    // Unknown mutations are the server's to judge.
    store
        .mutate("order.brand_new@9", json!({"order_id": ORDER}), now())
        .unwrap()
        .unwrap();
}

#[test]
fn a_rejection_rolls_back_to_the_servers_row_and_keeps_later_intent() {
    let scratch = Scratch::new();
    let store = till(&scratch);
    let accept = accept(&store).unwrap();
    store
        .mutate("order.mark_ready@1", json!({"order_id": ORDER}), now())
        .unwrap()
        .unwrap();
    assert_eq!(status(&store, "order", ORDER), "ready");
    // Meanwhile the store cancelled it online: the pull shows the cancel, and the pending
    // accept and ready no longer apply on top of it (the server will say so).
    store
        .apply_pull(&pulled(
            Bucket::business(SHOP),
            "order",
            ORDER,
            2,
            Some(order("cancelled", "a")),
        ))
        .unwrap();
    assert_eq!(status(&store, "order", ORDER), "cancelled");
    store
        .record_results(&answer(&accept, MutationStatus::Rejected))
        .unwrap();
    assert_eq!(status(&store, "order", ORDER), "cancelled");
    let rejections = store.rejections().unwrap();
    assert_eq!(rejections[0].message, "The store cancelled this order");
    assert_eq!(store.pending_count().unwrap(), 1);
}

#[test]
fn a_driver_steps_through_a_delivery_with_the_domains_rules() {
    let scratch = Scratch::new();
    let store = Store::open(scratch.0.join("driver.db")).unwrap();
    store.set_meta("account_id", &DRIVER.to_string()).unwrap();
    let held = json!({
        "business_id": SHOP, "order_id": ORDER, "status": "assigned",
        "order": {"payment_method": "cash", "currency": "EUR", "total_minor": 1200},
    });
    store
        .apply_pull(&pulled(
            Bucket::driver(DRIVER),
            "delivery",
            DELIVERY,
            1,
            Some(held),
        ))
        .unwrap();
    let step = |args: Value| {
        let mut args = args;
        args["delivery_id"] = json!(DELIVERY);
        store.mutate("delivery.step@1", args, now()).unwrap()
    };
    // Delivering without picking up needs the phone's position and time.
    let skipped = step(json!({"status": "delivered", "cash_collected": {"amount_minor": 1200}}));
    assert!(skipped.is_err(), "{skipped:?}");
    step(json!({"status": "picked_up"})).unwrap();
    assert_eq!(status(&store, "delivery", DELIVERY), "picked_up");
    let short =
        step(json!({"status": "delivered", "cash_collected": {"amount_minor": 1000}})).unwrap_err();
    assert!(!short.message.is_empty(), "{short:?}");
    step(json!({"status": "delivered", "cash_collected": {"amount_minor": 1200}})).unwrap();
    assert_eq!(status(&store, "delivery", DELIVERY), "delivered");
    assert_eq!(store.pending_count().unwrap(), 2);
}

#[test]
fn an_offer_accepted_on_the_device_becomes_a_delivery_and_expired_ones_are_refused() {
    let scratch = Scratch::new();
    let store = Store::open(scratch.0.join("driver.db")).unwrap();
    store.set_meta("account_id", &DRIVER.to_string()).unwrap();
    let offer = Uuid::now_v7();
    let stale = Uuid::now_v7();
    let data = |expires: chrono::DateTime<Utc>| {
        json!({"business_id": SHOP, "delivery_id": DELIVERY, "attempt": 1,
               "offered_at": now(), "expires_at": expires,
               "order": {"id": ORDER, "currency": "EUR", "total_minor": 1200}})
    };
    store
        .apply_pull(&PullResponse {
            buckets: vec![BucketPage {
                bucket: Bucket::driver(DRIVER),
                reset: false,
                rows: vec![
                    SyncRow {
                        kind: "offer".into(),
                        id: offer,
                        version: 1,
                        data: Some(data(now() + Duration::seconds(30))),
                    },
                    SyncRow {
                        kind: "offer".into(),
                        id: stale,
                        version: 2,
                        data: Some(data(now() - Duration::seconds(1))),
                    },
                ],
                version: 2,
                complete: false,
                checksum: None,
            }],
            removed: vec![],
            more: false,
        })
        .unwrap();
    let expired = store
        .mutate("offer.accept@1", json!({"offer_id": stale}), now())
        .unwrap()
        .unwrap_err();
    assert_eq!(expired.code, "offer_expired");
    store
        .mutate("offer.accept@1", json!({"offer_id": offer}), now())
        .unwrap()
        .unwrap();
    assert!(store.row("offer", offer).unwrap().is_none());
    let delivery = store.row("delivery", DELIVERY).unwrap().unwrap();
    assert_eq!(delivery["status"], "assigned");
    assert_eq!(delivery["order_id"], json!(ORDER));
    assert_eq!(store.rows("offer").unwrap().len(), 1);
}

#[test]
fn a_customer_fills_the_cart_offline() {
    let scratch = Scratch::new();
    let store = Store::open(scratch.0.join("customer.db")).unwrap();
    let me = Uuid::now_v7();
    store.set_meta("account_id", &me.to_string()).unwrap();
    let soup = Uuid::now_v7();
    store
        .apply_pull(&pulled(
            Bucket::catalog(SHOP),
            "product",
            soup,
            1,
            Some(json!({"name": "Soup", "price_minor": 1000})),
        ))
        .unwrap();
    let add = |quantity: i64| {
        store
            .mutate(
                "cart.add@1",
                json!({"product_id": soup, "quantity": quantity}),
                now(),
            )
            .unwrap()
    };
    let first = add(2).unwrap();
    let carts = store.rows("cart").unwrap();
    assert_eq!(carts.len(), 1);
    assert_eq!(
        carts[0].0, first.id,
        "a cart is shown under the first mutation's id"
    );
    assert_eq!(carts[0].1["items"][0]["quantity"], 2);
    add(3).unwrap();
    assert_eq!(store.rows("cart").unwrap()[0].1["items"][0]["quantity"], 3);
    add(0).unwrap();
    assert_eq!(store.rows("cart").unwrap()[0].1["items"], json!([]));
    let gone = store
        .mutate(
            "cart.add@1",
            json!({"product_id": Uuid::now_v7(), "quantity": 1}),
            now(),
        )
        .unwrap()
        .unwrap_err();
    assert_eq!(gone.code, "product_unavailable");
    // The server's cart arrives: the pending lines show on it, not on a second cart.
    let cart = Uuid::now_v7();
    store
        .apply_pull(&pulled(
            Bucket::customer(me),
            "cart",
            cart,
            1,
            Some(json!({"items": []})),
        ))
        .unwrap();
    let carts = store.rows("cart").unwrap();
    assert_eq!(carts.len(), 1, "{carts:?}");
    assert_eq!(carts[0].0, cart);
}
