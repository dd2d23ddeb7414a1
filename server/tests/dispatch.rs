//! Dispatch on real PostgreSQL through the HTTP router: an accepted delivery order is offered to
//! the nearest dedicated driver, a decline and a timeout move on to the next candidate (never
//! the same driver again), nobody left leaves it unassigned on the board and emails the
//! business, an expired offer cannot be accepted, a double accept and an accept racing a manual
//! assignment leave exactly one holder, and other businesses and drivers see nothing.

#![allow(clippy::unwrap_used)] // A failed unwrap in a test is a failed test.

mod common;

use axum::http::{Method, StatusCode};
use common::fleet::{
    accepted_order, accepted_order_with_token, answer, assignments, board, driver, only_offer,
    run_due_until_handled, shop,
};
use common::TestApp;
use fleetfront_domain::location;
use fleetfront_domain::value::Coordinates;
use fleetfront_server::dispatch::run_due_offers;
use serde_json::{json, Value};
use uuid::Uuid;

#[tokio::test]
async fn offers_move_on_by_decline_and_timeout_until_nobody_is_left() {
    let t = TestApp::new().await;
    let shop = shop(&t, "dispatch-flow").await;
    // The store is at 60.17, 24.94. Ann is nearest, Ben next, Cy farthest; all dedicated.
    let (ann, ann_token) = driver(&t, "Ann", (60.171, 24.94), Some((shop.business, 1))).await;
    let (ben, ben_token) = driver(&t, "Ben", (60.175, 24.94), Some((shop.business, 1))).await;
    let (cy, cy_token) = driver(&t, "Cy", (60.18, 24.94), Some((shop.business, 1))).await;
    // A shared-pool driver the business did not opt in for is never offered the order.
    let (_, pool_token) = driver(&t, "Pool", (60.1701, 24.94), None).await;

    let (order, tracking_token) = accepted_order_with_token(&t, &shop).await;
    let tracking = format!("/api/v1/orders/{order}/tracking?token={tracking_token}");
    let first = assignments(&t, &ann_token).await;
    let offer = only_offer(&first);
    assert_eq!(first["offers"][0]["order_id"], order.to_string());
    assert_eq!(first["offers"][0]["attempt"], 1);
    assert_eq!(first["offers"][0]["cash_to_collect"]["minor"], 1300);
    for other in [&ben_token, &cy_token, &pool_token] {
        assert!(assignments(&t, other).await["offers"]
            .as_array()
            .unwrap()
            .is_empty());
        // Nobody else can answer Ann's offer: it does not exist for them.
        answer(&t, other, &offer, "accept")
            .await
            .expect_problem(StatusCode::NOT_FOUND, "not_found");
    }
    let reason: String = sqlx::query_scalar(
        "SELECT reason FROM dispatch_offers WHERE business_id = $1 AND driver_id = $2",
    )
    .bind(shop.business)
    .bind(ann)
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap();
    assert!(reason.starts_with("dedicated #1"), "{reason}");
    let entries = board(&t, &shop.owner).await;
    assert_eq!(entries[0]["status"], "offered");
    assert_eq!(entries[0]["current_offer"]["driver_id"], ann.to_string());

    // Ann declines: Ben is offered it, attempt 2.
    answer(&t, &ann_token, &offer, "decline")
        .await
        .expect(StatusCode::NO_CONTENT);
    answer(&t, &ann_token, &offer, "accept")
        .await
        .expect_problem(StatusCode::CONFLICT, "conflict");
    let second = assignments(&t, &ben_token).await;
    let ben_offer = only_offer(&second);
    assert_eq!(second["offers"][0]["attempt"], 2);

    // Ben lets it expire (30 s by default): he cannot accept it any more, and the timeout
    // task moves on to Cy, not back to Ann.
    t.app.clock.advance(31);
    answer(&t, &ben_token, &ben_offer, "accept")
        .await
        .expect_problem(StatusCode::CONFLICT, "offer_expired");
    run_due_until_handled(&t).await;
    answer(&t, &ben_token, &ben_offer, "accept")
        .await
        .expect_problem(StatusCode::CONFLICT, "offer_expired");
    let third = assignments(&t, &cy_token).await;
    let cy_offer = only_offer(&third);
    assert_eq!(third["offers"][0]["attempt"], 3);
    assert!(assignments(&t, &ann_token).await["offers"]
        .as_array()
        .unwrap()
        .is_empty());
    let entries = board(&t, &shop.owner).await;
    assert_eq!(entries[0]["current_offer"]["driver_id"], cy.to_string());
    assert_eq!(entries[0]["attempts"], 3);

    // Cy declines too: nobody is left, the board shows it unassigned and the business is told.
    answer(&t, &cy_token, &cy_offer, "decline")
        .await
        .expect(StatusCode::NO_CONTENT);
    let entries = board(&t, &shop.owner).await;
    assert_eq!(entries[0]["status"], "unassigned");
    assert!(entries[0].get("current_offer").is_none());
    let email: Value = sqlx::query_scalar(
        "SELECT payload FROM outbox_messages WHERE business_id = $1 AND payload->>'template' = 'dispatch_unassigned'",
    )
    .bind(shop.business)
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(email["to"], "hello@dispatch-flow.test");
    assert_eq!(email["order_id"], order.to_string());
    let statuses: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT driver_id, status FROM dispatch_offers WHERE business_id = $1 ORDER BY attempt",
    )
    .bind(shop.business)
    .fetch_all(&t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(
        statuses,
        vec![
            (ann, "declined".to_owned()),
            (ben, "expired".to_owned()),
            (cy, "declined".to_owned())
        ]
    );

    // The business assigns it by hand to Ben, who now holds it.
    let entry = t
        .send(
            Method::POST,
            &format!("/api/v1/business/orders/{order}/assign"),
            Some(&shop.owner),
            Some(json!({"driver_id": ben})),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(entry["status"], "assigned");
    assert_eq!(entry["driver_id"], ben.to_string());
    let held = assignments(&t, &ben_token).await;
    assert_eq!(held["assignments"][0]["order_id"], order.to_string());
    // The customer's tracking shows Ben's latest position, live while it is recent and as
    // last seen once it is stale.
    let view = t
        .send(Method::GET, &tracking, None, None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(view["courier"]["live"], true, "{view}");
    assert_eq!(view["courier"]["position"]["latitude"], 60.175);
    // The ETA: from the courier through the store to the drop-off, at a courier's city speed.
    let (store_latitude, store_longitude): (f64, f64) =
        sqlx::query_as("SELECT latitude, longitude FROM businesses WHERE id = $1")
            .bind(shop.business)
            .fetch_one(&t.db.pools.owner)
            .await
            .unwrap();
    let at = |latitude, longitude| Coordinates {
        latitude,
        longitude,
    };
    let expected = location::route_eta_secs(
        at(60.175, 24.94),
        &[at(store_latitude, store_longitude), at(60.175, 24.94)],
        location::typical_speed::COURIER_MPS,
    )
    .unwrap();
    assert!(expected > 0);
    assert_eq!(view["courier"]["eta_seconds"], expected, "{view}");
    t.app.clock.advance(60);
    let view = t
        .send(Method::GET, &tracking, None, None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(view["courier"]["live"], false, "{view}");
    assert!(view["courier"]["last_seen_at"].is_string());
    assert!(
        view["courier"].get("eta_seconds").is_none(),
        "no ETA from a stale position: {view}"
    );
    // A driver the business may not use is refused.
    let (order2, token2) = accepted_order_with_token(&t, &shop).await;
    let view = t
        .send(
            Method::GET,
            &format!("/api/v1/orders/{order2}/tracking?token={token2}"),
            None,
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert!(view.get("courier").is_none(), "{view}");
    // Another order's token does not open this one.
    t.send(
        Method::GET,
        &format!("/api/v1/orders/{order}/tracking?token={token2}"),
        None,
        None,
    )
    .await
    .expect_problem(StatusCode::NOT_FOUND, "not_found");
    let pool_id: Uuid = sqlx::query_scalar("SELECT id FROM users WHERE full_name = 'Pool'")
        .fetch_one(&t.db.pools.owner)
        .await
        .unwrap();
    t.send(
        Method::POST,
        &format!("/api/v1/business/orders/{order2}/assign"),
        Some(&shop.owner),
        Some(json!({"driver_id": pool_id})),
    )
    .await
    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    t.send(
        Method::POST,
        &format!("/api/v1/business/orders/{order2}/assign"),
        Some(&shop.owner),
        Some(json!({"driver": ann})),
    )
    .await
    .expect(StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn no_candidate_leaves_the_delivery_unassigned() {
    let t = TestApp::new().await;
    let shop = shop(&t, "dispatch-empty").await;
    // A dedicated driver too far away (about 33 km) is no candidate.
    driver(&t, "Far", (60.47, 24.94), Some((shop.business, 1))).await;
    let order = accepted_order(&t, &shop).await;
    let entries = board(&t, &shop.owner).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["order_id"], order.to_string());
    assert_eq!(entries[0]["status"], "unassigned");
    assert_eq!(entries[0]["attempts"], 0);
    let emails: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox_messages WHERE business_id = $1 AND payload->>'template' = 'dispatch_unassigned'",
    )
    .bind(shop.business)
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(emails, 1);
}

#[tokio::test]
async fn exactly_one_holder_under_races() {
    let t = TestApp::new().await;
    let shop = shop(&t, "dispatch-race").await;
    let (ann, ann_token) = driver(&t, "Ann", (60.171, 24.94), Some((shop.business, 1))).await;
    let (ben, _) = driver(&t, "Ben", (60.175, 24.94), Some((shop.business, 2))).await;

    // The same offer accepted twice at once: one wins, the other is refused.
    let first = accepted_order(&t, &shop).await;
    let offer = only_offer(&assignments(&t, &ann_token).await);
    let (a, b) = tokio::join!(
        answer(&t, &ann_token, &offer, "accept"),
        answer(&t, &ann_token, &offer, "accept"),
    );
    let mut codes = vec![a.status, b.status];
    codes.sort();
    assert_eq!(codes, vec![StatusCode::OK, StatusCode::CONFLICT]);
    let held = assignments(&t, &ann_token).await;
    assert_eq!(held["assignments"][0]["order_id"], first.to_string());
    assert_eq!(held["assignments"][0]["driver_id"], ann.to_string());

    // An accept racing a manual assignment to another driver: exactly one holder.
    let second = accepted_order(&t, &shop).await;
    let offer = only_offer(&assignments(&t, &ann_token).await);
    let assign_path = format!("/api/v1/business/orders/{second}/assign");
    let (accept, assign) = tokio::join!(
        answer(&t, &ann_token, &offer, "accept"),
        t.send(
            Method::POST,
            &assign_path,
            Some(&shop.owner),
            Some(json!({"driver_id": ben})),
        ),
    );
    assert!(
        (accept.status == StatusCode::OK) != (assign.status == StatusCode::OK),
        "{} {}",
        accept.status,
        assign.status
    );
    let (accepted, holder): (i64, Option<Uuid>) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM dispatch_offers o WHERE o.business_id = d.business_id \
                   AND o.delivery_id = d.id AND o.status = 'accepted'), d.driver_id \
           FROM deliveries d WHERE d.business_id = $1 AND d.order_id = $2",
    )
    .bind(shop.business)
    .bind(second)
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(accepted, 1);
    let expected = if accept.status == StatusCode::OK {
        ann
    } else {
        ben
    };
    assert_eq!(holder, Some(expected));
    // Assigning a held delivery again is a conflict.
    t.send(
        Method::POST,
        &format!("/api/v1/business/orders/{second}/assign"),
        Some(&shop.owner),
        Some(json!({"driver_id": ann})),
    )
    .await
    .expect_problem(StatusCode::CONFLICT, "conflict");
}

#[tokio::test]
async fn other_businesses_see_nothing() {
    let t = TestApp::new().await;
    let shop = shop(&t, "dispatch-own").await;
    let other = shop_other(&t).await;
    let (_, ann_token) = driver(&t, "Ann", (60.171, 24.94), Some((shop.business, 1))).await;
    let (ben, _) = driver(&t, "Ben", (60.172, 24.94), Some((other.0, 1))).await;
    let order = accepted_order(&t, &shop).await;
    assert_eq!(only_offer(&assignments(&t, &ann_token).await).len(), 36);
    assert!(board(&t, &other.1).await.is_empty());
    t.send(
        Method::POST,
        &format!("/api/v1/business/orders/{order}/assign"),
        Some(&other.1),
        Some(json!({"driver_id": ben})),
    )
    .await
    .expect_problem(StatusCode::NOT_FOUND, "not_found");
    // Staff and customers are not drivers.
    t.send(
        Method::GET,
        "/api/v1/driver/assignments",
        Some(&shop.owner),
        None,
    )
    .await
    .expect_problem(StatusCode::FORBIDDEN, "forbidden");
    let board = board(&t, &shop.owner).await;
    assert_eq!(board.len(), 1);
}

async fn shop_other(t: &TestApp) -> (Uuid, String) {
    let admin = t.admin_token().await;
    t.business(&admin, "dispatch-other", "growth").await
}

#[tokio::test]
async fn the_timeout_task_picks_up_deliveries_left_waiting() {
    let t = TestApp::new().await;
    let shop = shop(&t, "dispatch-restart").await;
    let (_, ann_token) = driver(&t, "Ann", (60.171, 24.94), Some((shop.business, 1))).await;
    let order = accepted_order(&t, &shop).await;
    assert_eq!(
        only_offer(&assignments(&t, &ann_token).await).len(),
        36,
        "offered at once"
    );
    // As if the server had stopped between the acceptance's commit and the first offer: the
    // delivery waits in the database, and the timeout task makes its offer.
    let owner = &t.db.pools.owner;
    sqlx::query("DELETE FROM dispatch_offers WHERE business_id = $1")
        .bind(shop.business)
        .execute(owner)
        .await
        .unwrap();
    sqlx::query("UPDATE deliveries SET status = 'pending' WHERE business_id = $1")
        .bind(shop.business)
        .execute(owner)
        .await
        .unwrap();
    assert!(assignments(&t, &ann_token).await["offers"]
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(run_due_offers(&t.app, t.app.clock.now()).await.unwrap(), 1);
    let view = assignments(&t, &ann_token).await;
    only_offer(&view);
    assert_eq!(view["offers"][0]["order_id"], order.to_string());
    // Nothing is due while the offer runs.
    assert_eq!(run_due_offers(&t.app, t.app.clock.now()).await.unwrap(), 0);
}

#[tokio::test]
async fn driver_policies_hold_for_the_runtime_role() {
    use fleetfront_server::db::set_principal;

    let t = TestApp::new().await;
    let shop = shop(&t, "dispatch-rls").await;
    let (ann, _) = driver(&t, "Ann", (60.171, 24.94), Some((shop.business, 1))).await;
    let (ben, _) = driver(&t, "Ben", (60.175, 24.94), Some((shop.business, 2))).await;
    accepted_order(&t, &shop).await;
    // Counts what `driver` sees, and how many offers it can mark accepted, on the runtime role.
    async fn as_driver(t: &TestApp, driver: Uuid) -> (i64, i64, u64) {
        let mut tx = t.db.pools.app.begin().await.unwrap();
        set_principal(&mut tx, "driver", Some(driver), None, None)
            .await
            .unwrap();
        let offers: i64 = sqlx::query_scalar("SELECT count(*) FROM dispatch_offers")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        let deliveries: i64 = sqlx::query_scalar("SELECT count(*) FROM deliveries")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        let taken = sqlx::query(
            "UPDATE dispatch_offers SET status = 'accepted', answered_at = now() WHERE status = 'open'",
        )
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
        tx.rollback().await.unwrap();
        (offers, deliveries, taken)
    }
    assert_eq!(as_driver(&t, ann).await, (1, 1, 1), "Ann's own offer");
    assert_eq!(as_driver(&t, ben).await, (0, 0, 0), "nothing of Ann's");
    // A driver cannot hand an offer to itself or take a delivery it was not offered.
    let mut tx = t.db.pools.app.begin().await.unwrap();
    set_principal(&mut tx, "driver", Some(ben), None, None)
        .await
        .unwrap();
    let moved = sqlx::query(
        "UPDATE deliveries SET status = 'assigned', driver_id = $1, assigned_at = now()",
    )
    .bind(ben)
    .execute(&mut *tx)
    .await
    .unwrap()
    .rows_affected();
    assert_eq!(moved, 0);
    tx.rollback().await.unwrap();
}

/// Records that `driver` collected `amount` in cash for `business` on `order`'s delivery.
async fn collected(t: &TestApp, business: Uuid, driver: Uuid, order: Uuid, amount: i64) {
    sqlx::query(
        "INSERT INTO driver_cash (business_id, id, driver_id, kind, delivery_id, order_id, currency, \
                                  amount_minor, due_minor, shortfall_minor, at) \
         SELECT d.business_id, gen_random_uuid(), $3, 'collected', d.id, d.order_id, 'EUR', $4, $4, 0, now() \
           FROM deliveries d WHERE d.business_id = $1 AND d.order_id = $2",
    )
    .bind(business)
    .bind(order)
    .bind(driver)
    .bind(amount)
    .execute(&t.db.pools.owner)
    .await
    .unwrap();
}

/// The driver each open offer of `business` is addressed to, by order.
async fn offered_to(t: &TestApp, business: Uuid, order: Uuid) -> Option<Uuid> {
    sqlx::query_scalar(
        "SELECT o.driver_id FROM dispatch_offers o JOIN deliveries d \
             ON d.business_id = o.business_id AND d.id = o.delivery_id \
          WHERE o.business_id = $1 AND d.order_id = $2 AND o.status = 'open'",
    )
    .bind(business)
    .bind(order)
    .fetch_optional(&t.db.pools.owner)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_driver_at_the_cash_cap_gets_no_cash_orders_but_still_prepaid_ones() {
    let t = TestApp::new().await;
    let shop = shop(&t, "dispatch-cash").await;
    // Ann is nearest to the store, Ben farther; both dedicated with the same priority.
    let (ann, _) = driver(&t, "Ann", (60.171, 24.94), Some((shop.business, 1))).await;
    let (ben, _) = driver(&t, "Ben", (60.175, 24.94), Some((shop.business, 1))).await;
    t.send(
        Method::PATCH,
        "/api/v1/business/dispatch-settings",
        Some(&shop.owner),
        Some(json!({"cash_cap_minor": 2000})),
    )
    .await
    .expect(StatusCode::OK);

    // Holding nothing, Ann is offered the first cash order.
    let first = accepted_order(&t, &shop).await;
    assert_eq!(offered_to(&t, shop.business, first).await, Some(ann));
    // Below the cap she still gets cash orders.
    collected(&t, shop.business, ann, first, 1_300).await;
    let second = accepted_order(&t, &shop).await;
    assert_eq!(offered_to(&t, shop.business, second).await, Some(ann));
    // At the cap (13.00 + 13.00 ≥ 20.00) the next cash order goes to Ben, under it.
    collected(&t, shop.business, ann, second, 1_300).await;
    let third = accepted_order(&t, &shop).await;
    assert_eq!(offered_to(&t, shop.business, third).await, Some(ben));
    let reason: String = sqlx::query_scalar(
        "SELECT o.reason FROM dispatch_offers o JOIN deliveries d \
             ON d.business_id = o.business_id AND d.id = o.delivery_id \
          WHERE d.order_id = $1 AND o.status = 'open'",
    )
    .bind(third)
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap();
    assert!(reason.starts_with("dedicated #1"), "{reason}");

    // A prepaid order is still offered to her: the cap is about cash. (The order is turned
    // into a card order in the database and dispatched afresh, as after a restart, rather than
    // paid through a card gateway.)
    let owner = &t.db.pools.owner;
    let fourth = accepted_order(&t, &shop).await;
    assert_eq!(offered_to(&t, shop.business, fourth).await, Some(ben));
    sqlx::query("UPDATE orders SET payment_method = 'card' WHERE business_id = $1 AND id = $2")
        .bind(shop.business)
        .bind(fourth)
        .execute(owner)
        .await
        .unwrap();
    sqlx::query(
        "DELETE FROM dispatch_offers o USING deliveries d \
          WHERE d.business_id = o.business_id AND d.id = o.delivery_id AND d.order_id = $1",
    )
    .bind(fourth)
    .execute(owner)
    .await
    .unwrap();
    sqlx::query("UPDATE deliveries SET status = 'pending' WHERE order_id = $1")
        .bind(fourth)
        .execute(owner)
        .await
        .unwrap();
    run_due_until_handled(&t).await;
    assert_eq!(offered_to(&t, shop.business, fourth).await, Some(ann));

    // What she hands back to the business no longer counts: under the cap again, she is
    // offered cash orders again.
    sqlx::query(
        "INSERT INTO driver_cash (business_id, id, driver_id, kind, currency, amount_minor, at) \
         VALUES ($1, gen_random_uuid(), $2, 'deposited', 'EUR', 1000, now())",
    )
    .bind(shop.business)
    .bind(ann)
    .execute(owner)
    .await
    .unwrap();
    let fifth = accepted_order(&t, &shop).await;
    assert_eq!(offered_to(&t, shop.business, fifth).await, Some(ann));
}

#[tokio::test]
async fn offer_estimates_follow_the_configured_driver_rates() {
    use fleetfront_domain::earnings::{self, DeliveryPay, EarningsRules};
    use fleetfront_domain::money::Currency;
    use fleetfront_domain::Money;

    let t = TestApp::new().await;
    let shop = shop(&t, "dispatch-rates").await;
    let (_, ann_token) = driver(&t, "Ann", (60.171, 24.94), Some((shop.business, 1))).await;
    // Without rates the estimate is the delivery fee and the tip.
    accepted_order(&t, &shop).await;
    let view = assignments(&t, &ann_token).await;
    let (fee, tip): (i64, i64) =
        sqlx::query_as("SELECT delivery_fee_minor, tip_minor FROM orders WHERE business_id = $1")
            .bind(shop.business)
            .fetch_one(&t.db.pools.owner)
            .await
            .unwrap();
    assert!(fee > 0);
    assert_eq!(view["offers"][0]["estimated_earnings"]["minor"], fee + tip);

    // 1.20 per km beyond the first 100 m, 15 % commission, ×1.5 surge.
    let admin = t.admin_token().await;
    t.send(
        Method::PUT,
        "/api/v1/admin/driver-rates/EUR",
        Some(&admin),
        Some(json!({"per_km_minor": 120, "included_metres": 100, "commission_bps": 1500, "surge_bps": 15000})),
    )
    .await
    .expect(StatusCode::OK);
    let view = assignments(&t, &ann_token).await;
    let offer = &view["offers"][0];
    let trip = u32::try_from(offer["dropoff_metres"].as_u64().unwrap()).unwrap();
    assert!(
        trip > 100,
        "the trip is longer than the included distance: {trip} m"
    );
    let eur = Currency::parse("EUR").unwrap();
    let expected = earnings::compute(
        &DeliveryPay {
            delivery_fee: Money::new(fee, eur),
            distance_metres: trip,
            tip: Money::new(tip, eur),
            surge_bps: 15_000,
        },
        &EarningsRules {
            per_km: Money::new(120, eur),
            included_metres: 100,
            commission_bps: 1_500,
        },
    )
    .unwrap();
    // By hand: the distance fee, the surge on both fees, the commission on all but the tip.
    let distance = (120 * i64::from(trip - 100) + 500) / 1_000;
    let surged = (fee + distance) * 3 / 2;
    assert!((expected.distance_fee.minor - distance).abs() <= 1);
    assert!(expected.net.minor < surged + tip);
    assert!(expected.net.minor > fee + tip);
    assert_eq!(
        offer["estimated_earnings"]["minor"], expected.net.minor,
        "{offer}"
    );
    assert_eq!(offer["estimated_earnings"]["currency"], "EUR");
}

#[tokio::test]
async fn the_customers_eta_goes_at_the_couriers_vehicle_speed() {
    use fleetfront_server::db::set_principal;

    let t = TestApp::new().await;
    let shop = shop(&t, "dispatch-vehicle").await;
    let (ann, ann_token) = driver(&t, "Ann", (60.175, 24.94), Some((shop.business, 1))).await;
    let owner = &t.db.pools.owner;
    sqlx::query("UPDATE driver_profiles SET vehicle_type = 'scooter' WHERE driver_id = $1")
        .bind(ann)
        .execute(owner)
        .await
        .unwrap();
    // Nobody learns a driver's vehicle while the driver holds no delivery.
    let vehicle_seen_by_public = || async {
        let mut tx = t.db.pools.app.begin().await.unwrap();
        set_principal(&mut tx, "public", None, None, Some(shop.business))
            .await
            .unwrap();
        let vehicle: Option<String> = sqlx::query_scalar("SELECT courier_vehicle($1)")
            .bind(ann)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        tx.rollback().await.unwrap();
        vehicle
    };
    assert_eq!(vehicle_seen_by_public().await, None);

    let (order, token) = accepted_order_with_token(&t, &shop).await;
    let offer = only_offer(&assignments(&t, &ann_token).await);
    answer(&t, &ann_token, &offer, "accept")
        .await
        .expect(StatusCode::OK);
    assert_eq!(vehicle_seen_by_public().await.as_deref(), Some("scooter"));
    let view = t
        .send(
            Method::GET,
            &format!("/api/v1/orders/{order}/tracking?token={token}"),
            None,
            None,
        )
        .await
        .expect(StatusCode::OK);
    let (store_latitude, store_longitude): (f64, f64) =
        sqlx::query_as("SELECT latitude, longitude FROM businesses WHERE id = $1")
            .bind(shop.business)
            .fetch_one(owner)
            .await
            .unwrap();
    let at = |latitude, longitude| Coordinates {
        latitude,
        longitude,
    };
    let route = [at(store_latitude, store_longitude), at(60.175, 24.94)];
    let expected = location::route_eta_secs(
        at(60.175, 24.94),
        &route,
        location::typical_speed::MOTORBIKE_MPS,
    )
    .unwrap();
    let by_bicycle = location::route_eta_secs(
        at(60.175, 24.94),
        &route,
        location::typical_speed::COURIER_MPS,
    )
    .unwrap();
    assert!(expected < by_bicycle);
    assert_eq!(view["courier"]["eta_seconds"], expected, "{view}");
}
