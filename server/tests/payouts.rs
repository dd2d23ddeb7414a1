//! Payouts end to end on real PostgreSQL, with Stripe's Transfers API played by the local
//! stand-in: exact business and driver amounts, cash netting and carry-over, earnings by the
//! driver's local day and week, PIN elevation, a concurrent double process paying once, a
//! retry after a failed or lost transfer, idempotent runs, cash deposits, the fee and
//! performance reports, and who may see what.
//!
//! Delivered orders are seeded with the owner pool: a real checkout and acceptance through the
//! API (`tests/common/fleet.rs`), then the delivered step's ledger rows (order history, the
//! delivery, the driver's earnings, the cash collected, the order commission) written as the
//! delivery workflow writes them, at chosen instants in the past.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "support/stripe_standin.rs"]
mod stripe_standin;

use axum::http::{Method, StatusCode};
use chrono::{DateTime, Utc};
use common::fleet::{self, Shop};
use common::{Reply, TestApp, PASSWORD};
use fleetfront_server::payments::stripe::StripeGateway;
use fleetfront_server::payments::webhook::Stripe;
use serde_json::{json, Value};
use stripe_standin::{StandIn, SECRET_KEY};
use uuid::Uuid;

const RUN: &str = "/api/v1/admin/payouts/run";

/// Per delivery: 3.00 delivery fee + 1.00 distance fee = 4.00 gross, 0.60 commission, 3.40 net.
const DRIVER_GROSS: i64 = 400;
const DRIVER_FEE: i64 = 60;
const DRIVER_NET: i64 = 340;
/// Per order: 10.00 soup + 3.00 delivery; 4 % order commission.
const TOTAL: i64 = 1300;
const COMMISSION: i64 = 52;

struct World {
    t: TestApp,
    standin: StandIn,
    admin: String,
    a: Shop,
    b: Shop,
    driver: Uuid,
    driver_token: String,
}

fn utc(raw: &str) -> DateTime<Utc> {
    raw.parse().unwrap()
}

async fn world(prefix: &str) -> World {
    let standin = StandIn::start().await;
    let t = TestApp::new().await;
    let gateway = StripeGateway::new(&standin.base_url, SECRET_KEY).unwrap();
    assert!(t
        .app
        .configure_stripe(Stripe::new(gateway, "whsec_payouts")));
    let a = fleet::shop(&t, &format!("{prefix}-a")).await;
    let b = fleet::shop(&t, &format!("{prefix}-b")).await;
    let (driver, driver_token) =
        fleet::driver(&t, "Dana", (60.17, 24.94), Some((a.business, 1))).await;
    let owner = &t.db.pools.owner;
    // The driver works from New York's clock, the stores from Helsinki's.
    sqlx::query("UPDATE driver_profiles SET time_zone = 'America/New_York', payout_account = 'acct_dana', rating_tenths = 47 WHERE driver_id = $1")
        .bind(driver)
        .execute(owner)
        .await
        .unwrap();
    for (shop, account) in [(&a, "acct_shopa"), (&b, "acct_shopb")] {
        sqlx::query("UPDATE businesses SET payout_account = $2 WHERE id = $1")
            .bind(shop.business)
            .bind(account)
            .execute(owner)
            .await
            .unwrap();
    }
    let admin = t.admin_token().await;
    World {
        t,
        standin,
        admin,
        a,
        b,
        driver,
        driver_token,
    }
}

/// A second driver (UTC), with a payout account.
async fn other_driver(w: &World, name: &str) -> (Uuid, String) {
    let (id, token) = fleet::driver(&w.t, name, (60.17, 24.94), None).await;
    sqlx::query("UPDATE driver_profiles SET payout_account = $2 WHERE driver_id = $1")
        .bind(id)
        .bind(format!("acct_{name}"))
        .execute(&w.t.db.pools.owner)
        .await
        .unwrap();
    (id, token)
}

/// An accepted cash order of `shop`, delivered by `driver` at `at`: the order history, the
/// delivery, the driver's earnings, the order commission and — when `cash` — the cash the
/// driver collected. Returns the order id.
async fn delivered(w: &World, shop: &Shop, driver: Uuid, at: &str, cash: bool) -> Uuid {
    let at = utc(at);
    let order = fleet::accepted_order(&w.t, shop).await;
    let owner = &w.t.db.pools.owner;
    let business = shop.business;
    sqlx::query("UPDATE orders SET status = 'delivered', accepted_at = $3 WHERE business_id = $1 AND id = $2")
        .bind(business)
        .bind(order)
        .bind(at - chrono::Duration::minutes(30))
        .execute(owner)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO order_status_history (business_id, id, order_id, from_status, to_status, event, by_party, actor_id, at) \
         VALUES ($1, $2, $3, 'picked_up', 'delivered', 'deliver', 'driver', $4, $5)",
    )
    .bind(business)
    .bind(Uuid::now_v7())
    .bind(order)
    .bind(driver)
    .bind(at)
    .execute(owner)
    .await
    .unwrap();
    let delivery: Uuid = sqlx::query_scalar(
        "UPDATE deliveries SET status = 'delivered', driver_id = $3, assigned_at = $4, finished_at = $5, trip_metres = 2000 \
         WHERE business_id = $1 AND order_id = $2 RETURNING id",
    )
    .bind(business)
    .bind(order)
    .bind(driver)
    .bind(at - chrono::Duration::minutes(20))
    .bind(at)
    .fetch_one(owner)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO driver_earnings (business_id, id, delivery_id, order_id, driver_id, currency, delivery_fee_minor, \
         distance_metres, distance_fee_minor, tip_minor, surge_bps, surge_minor, platform_fee_minor, gross_minor, net_minor, earned_at) \
         VALUES ($1, $2, $3, $4, $5, 'EUR', 300, 2000, 100, 0, 10000, 0, $6, $7, $8, $9)",
    )
    .bind(business)
    .bind(Uuid::now_v7())
    .bind(delivery)
    .bind(order)
    .bind(driver)
    .bind(DRIVER_FEE)
    .bind(DRIVER_GROSS)
    .bind(DRIVER_NET)
    .bind(at)
    .execute(owner)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO platform_fees (business_id, id, order_id, fee_type, base_amount_minor, fee_bps, fee_amount_minor, currency, created_at) \
         VALUES ($1, $2, $3, 'order_commission', $4, 400, $5, 'EUR', $6)",
    )
    .bind(business)
    .bind(Uuid::now_v7())
    .bind(order)
    .bind(TOTAL)
    .bind(COMMISSION)
    .bind(at)
    .execute(owner)
    .await
    .unwrap();
    if cash {
        sqlx::query(
            "INSERT INTO driver_cash (business_id, id, driver_id, kind, delivery_id, order_id, currency, amount_minor, \
             due_minor, shortfall_minor, at) VALUES ($1, $2, $3, 'collected', $4, $5, 'EUR', $6, $6, 0, $7)",
        )
        .bind(business)
        .bind(Uuid::now_v7())
        .bind(driver)
        .bind(delivery)
        .bind(order)
        .bind(TOTAL)
        .bind(at)
        .execute(owner)
        .await
        .unwrap();
    }
    order
}

async fn run(w: &World, grouping: &str, until: &str) -> Vec<Value> {
    w.t.send(
        Method::POST,
        RUN,
        Some(&w.admin),
        Some(json!({"grouping": grouping, "until": until})),
    )
    .await
    .expect(StatusCode::OK)["created"]
        .as_array()
        .unwrap()
        .clone()
}

/// An elevated token for `payout`, after setting the admin's PIN.
async fn elevate(w: &World) -> String {
    w.t.send(
        Method::PUT,
        "/api/v1/auth/pin",
        Some(&w.admin),
        Some(json!({"pin": "2580", "password": PASSWORD})),
    )
    .await;
    w.t.send(
        Method::POST,
        "/api/v1/auth/pin/verify",
        Some(&w.admin),
        Some(json!({"pin": "2580", "action": "payout"})),
    )
    .await
    .expect(StatusCode::OK)["elevated_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn process(w: &World, id: &str, elevated: Option<&str>) -> Reply {
    let headers: Vec<(&str, &str)> = elevated
        .map(|e| vec![("X-Fleetfront-Elevation", e)])
        .unwrap_or_default();
    w.t.send_with(
        Method::POST,
        &format!("/api/v1/admin/payouts/{id}/process"),
        Some(&w.admin),
        None,
        &headers,
    )
    .await
}

#[track_caller]
fn find<'a>(payouts: &'a [Value], party: &str, who: Uuid, start: &str) -> &'a Value {
    let key = if party == "business" {
        "business_id"
    } else {
        "driver_id"
    };
    payouts
        .iter()
        .find(|p| {
            p["party"] == party
                && p[key] == who.to_string()
                && p["period"]["start"].as_str().unwrap().starts_with(start)
        })
        .unwrap_or_else(|| panic!("no {party} payout of {who} from {start}: {payouts:#?}"))
}

fn minor(v: &Value) -> i64 {
    v["minor"].as_i64().unwrap()
}

async fn held(w: &World, business: Uuid) -> i64 {
    sqlx::query_scalar::<_, Option<i64>>(
        "SELECT sum(CASE kind WHEN 'collected' THEN amount_minor ELSE -amount_minor END)::bigint \
           FROM driver_cash WHERE business_id = $1 AND driver_id = $2",
    )
    .bind(business)
    .bind(w.driver)
    .fetch_one(&w.t.db.pools.owner)
    .await
    .unwrap()
    .unwrap_or(0)
}

#[tokio::test]
async fn payouts_net_every_party_exactly_and_runs_are_idempotent() {
    let w = world("net").await;
    // Business A (Helsinki weeks): Monday 1 June and Tuesday 2 June 05:00 local in the first
    // week, Monday 8 June 06:00 local in the next. The driver (New York) did all four in the
    // week of Monday 1 June: 8 June 03:00 UTC is Sunday 23:00 in New York.
    for at in [
        "2026-06-01T12:00:00Z",
        "2026-06-02T02:00:00Z",
        "2026-06-08T03:00:00Z",
    ] {
        delivered(&w, &w.a, w.driver, at, true).await;
    }
    delivered(&w, &w.b, w.driver, "2026-06-03T10:00:00Z", true).await;
    // The driver hands 13.00 of cash back at A's counter.
    let deposit =
        w.t.send(
            Method::POST,
            &format!("/api/v1/business/drivers/{}/cash-deposits", w.driver),
            Some(&w.a.owner),
            Some(json!({"amount_minor": TOTAL})),
        )
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(minor(&deposit["held"]), 2 * TOTAL);

    let created = run(&w, "week", "2026-06-20").await;
    assert_eq!(created.len(), 4, "{created:#?}");
    let a1 = find(&created, "business", w.a.business, "2026-05-31T21:00:00");
    assert_eq!(a1["status"], "pending");
    assert_eq!(a1["business"]["orders"], 2);
    assert_eq!(minor(&a1["business"]["gross_revenue"]), 2 * TOTAL);
    assert_eq!(minor(&a1["business"]["platform_fees"]), 2 * COMMISSION);
    assert_eq!(minor(&a1["business"]["driver_payments"]), 2 * DRIVER_GROSS);
    assert_eq!(
        minor(&a1["business"]["net"]),
        2 * (TOTAL - COMMISSION - DRIVER_GROSS)
    );
    assert!(a1["key"]
        .as_str()
        .unwrap()
        .ends_with("2026-05-31T21:00:00Z/2026-06-07T21:00:00Z:EUR"));
    let a2 = find(&created, "business", w.a.business, "2026-06-07T21:00:00");
    assert_eq!(
        minor(&a2["business"]["net"]),
        TOTAL - COMMISSION - DRIVER_GROSS
    );
    let b1 = find(&created, "business", w.b.business, "2026-05-31T21:00:00");
    assert_eq!(
        minor(&b1["business"]["net"]),
        TOTAL - COMMISSION - DRIVER_GROSS
    );
    let d = find(&created, "driver", w.driver, "2026-06-01T04:00:00");
    assert_eq!(d["driver"]["deliveries"], 4);
    assert_eq!(minor(&d["driver"]["earnings"]), 4 * DRIVER_NET);
    // Estimated with the cash held now: 3 × 13.00 collected − 13.00 deposited.
    assert_eq!(minor(&d["driver"]["cash_kept"]), 3 * TOTAL);

    // Running again, or with another date that covers the same periods, creates nothing.
    assert!(run(&w, "week", "2026-06-20").await.is_empty());
    assert!(run(&w, "week", "2026-07-20").await.is_empty());

    // Processing: the business is paid by transfer, the driver owes and carries over.
    let elevated = elevate(&w).await;
    let paid = process(&w, a1["id"].as_str().unwrap(), Some(&elevated))
        .await
        .expect(StatusCode::OK);
    assert_eq!(paid["status"], "paid", "{paid}");
    let transfers = w.standin.transfers();
    assert_eq!(transfers.len(), 1);
    assert_eq!(
        transfers[0]["amount"],
        2 * (TOTAL - COMMISSION - DRIVER_GROSS)
    );
    assert_eq!(transfers[0]["currency"], "eur");
    assert_eq!(transfers[0]["destination"], "acct_shopa");
    assert_eq!(transfers[0]["transfer_group"], a1["key"]);
    assert_eq!(paid["transfer_id"], transfers[0]["id"]);

    let owed = process(&w, d["id"].as_str().unwrap(), Some(&elevated))
        .await
        .expect(StatusCode::OK);
    assert_eq!(owed["status"], "carried_over", "{owed}");
    assert_eq!(minor(&owed["driver"]["cash_kept"]), 3 * TOTAL);
    assert_eq!(minor(&owed["driver"]["net"]), 4 * DRIVER_NET - 3 * TOTAL);
    assert_eq!(
        w.standin.transfers().len(),
        1,
        "nothing is sent to a driver who owes"
    );
    // The cash is netted: settled rows name the payout, and the driver holds nothing now.
    assert_eq!(held(&w, w.a.business).await, 0);
    assert_eq!(held(&w, w.b.business).await, 0);
    let settled: i64 = sqlx::query_scalar(
        "SELECT sum(amount_minor)::bigint FROM driver_cash WHERE kind = 'settled' AND payout_id = $1",
    )
    .bind(Uuid::parse_str(d["id"].as_str().unwrap()).unwrap())
    .fetch_one(&w.t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(settled, 3 * TOTAL);

    // The next week the driver delivers card orders (no cash): the debt is taken from them.
    for at in [
        "2026-06-09T12:00:00Z",
        "2026-06-10T12:00:00Z",
        "2026-06-11T12:00:00Z",
        "2026-06-12T12:00:00Z",
        "2026-06-12T13:00:00Z",
        "2026-06-12T14:00:00Z",
        "2026-06-12T15:00:00Z",
        "2026-06-12T16:00:00Z",
        "2026-06-12T17:00:00Z",
        "2026-06-12T18:00:00Z",
        "2026-06-12T19:00:00Z",
        "2026-06-12T20:00:00Z",
    ] {
        delivered(&w, &w.b, w.driver, at, false).await;
    }
    let created = run(&w, "week", "2026-06-20").await;
    let d2 = find(&created, "driver", w.driver, "2026-06-08T04:00:00");
    assert_eq!(minor(&d2["driver"]["earnings"]), 12 * DRIVER_NET);
    let d2 = process(&w, d2["id"].as_str().unwrap(), Some(&elevated))
        .await
        .expect(StatusCode::OK);
    let expected = 12 * DRIVER_NET + 4 * DRIVER_NET - 3 * TOTAL;
    assert_eq!(d2["status"], "paid", "{d2}");
    assert_eq!(
        minor(&d2["driver"]["carried_over"]),
        4 * DRIVER_NET - 3 * TOTAL
    );
    assert_eq!(minor(&d2["driver"]["net"]), expected);
    let transfers = w.standin.transfers();
    assert_eq!(transfers.len(), 2);
    assert_eq!(transfers[1]["amount"], expected);
    assert_eq!(transfers[1]["destination"], "acct_dana");
    // The carried-over payout points at the one that took its balance.
    let list =
        w.t.send(
            Method::GET,
            "/api/v1/admin/payouts?party=driver&status=carried_over",
            Some(&w.admin),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["carried_into"], d2["id"]);

    // A's deposit (made today) reduces A's payout of this week, once that week is over: it
    // is not in any closed period yet.
    let items: i64 =
        sqlx::query_scalar("SELECT count(*) FROM business_payout_items WHERE kind = 'deposit'")
            .fetch_one(&w.t.db.pools.owner)
            .await
            .unwrap();
    assert_eq!(items, 0);

    // Audit rows for the run and the processing.
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM platform_audit_log WHERE action IN ('payout.run', 'payout.process', 'payout.transfer')",
    )
    .fetch_one(&w.t.db.pools.owner)
    .await
    .unwrap();
    assert!(audited >= 6, "{audited}");
}

#[tokio::test]
async fn processing_needs_elevation_and_pays_once_when_raced() {
    let w = world("race").await;
    delivered(&w, &w.a, w.driver, "2026-06-01T12:00:00Z", false).await;
    delivered(&w, &w.b, w.driver, "2026-06-01T12:00:00Z", false).await;
    let created = run(&w, "day", "2026-06-10").await;
    let payout = find(&created, "business", w.a.business, "2026-05-31T21:00:00");
    let id = payout["id"].as_str().unwrap().to_owned();

    process(&w, &id, None)
        .await
        .expect_problem(StatusCode::FORBIDDEN, "elevation_required");
    // A staff member cannot process, elevated or not.
    w.t.send(
        Method::POST,
        &format!("/api/v1/admin/payouts/{id}/process"),
        Some(&w.a.owner),
        None,
    )
    .await
    .expect_problem(StatusCode::FORBIDDEN, "forbidden");
    assert!(w.standin.transfers().is_empty());

    let elevated = elevate(&w).await;
    let (one, two) = tokio::join!(
        process(&w, &id, Some(&elevated)),
        process(&w, &id, Some(&elevated))
    );
    let one = one.expect(StatusCode::OK);
    let two = two.expect(StatusCode::OK);
    let statuses = [
        one["status"].as_str().unwrap(),
        two["status"].as_str().unwrap(),
    ];
    assert!(statuses.contains(&"paid"), "{statuses:?}");
    assert_eq!(w.standin.transfers().len(), 1, "exactly one transfer");
    assert_eq!(
        w.standin.transfers()[0]["amount"],
        TOTAL - COMMISSION - DRIVER_GROSS
    );
    // And again later: nothing more.
    let again = process(&w, &id, Some(&elevated))
        .await
        .expect(StatusCode::OK);
    assert_eq!(again["status"], "paid");
    assert_eq!(again["attempts"], 1);
    assert_eq!(w.standin.transfers().len(), 1);
    let paid: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM business_payouts WHERE business_id = $1 AND status = 'paid' AND transfer_id IS NOT NULL",
    )
    .bind(w.a.business)
    .fetch_one(&w.t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(paid, 1);
    // While one request waits for Stripe, another one finds the payout processing and sends
    // nothing.
    let b = find(&created, "business", w.b.business, "2026-05-31T21:00:00");
    let b = b["id"].as_str().unwrap().to_owned();
    let (arrived, release) = w.standin.hold_next("/v1/transfers");
    let second = async {
        arrived.await.unwrap();
        let reply = process(&w, &b, Some(&elevated)).await;
        release.send(()).unwrap();
        reply
    };
    let (one, two) = tokio::join!(process(&w, &b, Some(&elevated)), second);
    assert_eq!(one.expect(StatusCode::OK)["status"], "paid");
    assert_eq!(two.expect(StatusCode::OK)["status"], "processing");
    assert_eq!(w.standin.transfers().len(), 2);
    // The order commission it withheld is now paid.
    let fees: String =
        sqlx::query_scalar("SELECT payout_status FROM platform_fees WHERE business_id = $1")
            .bind(w.a.business)
            .fetch_one(&w.t.db.pools.owner)
            .await
            .unwrap();
    assert_eq!(fees, "paid");
}

#[tokio::test]
async fn failed_transfers_are_retried_under_the_same_key() {
    let w = world("retry").await;
    let (other, _) = other_driver(&w, "omar").await;
    delivered(&w, &w.a, w.driver, "2026-06-01T12:00:00Z", false).await;
    delivered(&w, &w.a, other, "2026-06-01T13:00:00Z", false).await;
    let created = run(&w, "day", "2026-06-10").await;
    let elevated = elevate(&w).await;

    // Stripe fails before doing anything: the payout fails with the reason, and a retry pays.
    let business = find(&created, "business", w.a.business, "2026-05-31T21:00:00");
    let id = business["id"].as_str().unwrap();
    w.standin.fail_next_matching("/v1/transfers", 1);
    let failed = process(&w, id, Some(&elevated))
        .await
        .expect(StatusCode::OK);
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(failed["failure_reason"]
        .as_str()
        .unwrap()
        .contains("unavailable"));
    assert!(w.standin.transfers().is_empty());
    let paid = process(&w, id, Some(&elevated))
        .await
        .expect(StatusCode::OK);
    assert_eq!(paid["status"], "paid");
    assert_eq!(paid["attempts"], 2);
    assert_eq!(w.standin.transfers().len(), 1);

    // Stripe makes the transfer but the answer is lost: the retry gets the same transfer.
    let driver = find(&created, "driver", other, "2026-06-01T00:00:00");
    let id = driver["id"].as_str().unwrap();
    w.standin.lose_next_answers("/v1/transfers", 1);
    let failed = process(&w, id, Some(&elevated))
        .await
        .expect(StatusCode::OK);
    assert_eq!(failed["status"], "failed");
    assert_eq!(w.standin.transfers().len(), 2);
    let paid = process(&w, id, Some(&elevated))
        .await
        .expect(StatusCode::OK);
    assert_eq!(paid["status"], "paid");
    let transfers = w.standin.transfers();
    assert_eq!(transfers.len(), 2, "the retry replayed the first transfer");
    assert_eq!(paid["transfer_id"], transfers[1]["id"]);
    assert_eq!(transfers[1]["amount"], DRIVER_NET);

    // Without an account there is nothing to send to: failed, nothing transferred.
    let account = format!("/api/v1/admin/drivers/{}/payout-account", w.driver);
    w.t.send(
        Method::PUT,
        &account,
        Some(&w.admin),
        Some(json!({"account": "iban:FI21"})),
    )
    .await
    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    w.t.send(
        Method::PUT,
        &account,
        Some(&w.a.owner),
        Some(json!({"account": null})),
    )
    .await
    .expect_problem(StatusCode::FORBIDDEN, "forbidden");
    let removed =
        w.t.send(
            Method::PUT,
            &account,
            Some(&w.admin),
            Some(json!({"account": null})),
        )
        .await
        .expect(StatusCode::OK);
    assert!(removed.get("account").is_none());
    w.t.send(
        Method::PUT,
        &format!("/api/v1/admin/drivers/{}/payout-account", Uuid::now_v7()),
        Some(&w.admin),
        Some(json!({"account": null})),
    )
    .await
    .expect_problem(StatusCode::NOT_FOUND, "not_found");
    let mine = find(&created, "driver", w.driver, "2026-06-01T04:00:00");
    let failed = process(&w, mine["id"].as_str().unwrap(), Some(&elevated))
        .await
        .expect(StatusCode::OK);
    assert_eq!(failed["status"], "failed");
    assert_eq!(
        failed["failure_reason"],
        "no payout account is set for this party"
    );
    assert_eq!(w.standin.transfers().len(), 2);
    // With one set, the retry pays.
    w.t.send(
        Method::PUT,
        &account,
        Some(&w.admin),
        Some(json!({"account": "acct_dana2"})),
    )
    .await
    .expect(StatusCode::OK);
    let paid = process(&w, mine["id"].as_str().unwrap(), Some(&elevated))
        .await
        .expect(StatusCode::OK);
    assert_eq!(paid["status"], "paid");
    assert_eq!(w.standin.transfers()[2]["destination"], "acct_dana2");
}

#[tokio::test]
async fn earnings_follow_the_drivers_days_and_weeks_and_stay_private() {
    let w = world("earn").await;
    // New York (UTC−4): 1 June 08:00 and 22:00 local, and Sunday 7 June 23:00 local.
    for at in [
        "2026-06-01T12:00:00Z",
        "2026-06-02T02:00:00Z",
        "2026-06-08T03:00:00Z",
    ] {
        delivered(&w, &w.a, w.driver, at, true).await;
    }
    let get = |query: &str| {
        let path = format!("/api/v1/driver/earnings{query}");
        let token = w.driver_token.clone();
        let t = &w.t;
        async move { t.send(Method::GET, &path, Some(&token), None).await }
    };
    let days = get("?group=day&from=2026-06-01&to=2026-06-14")
        .await
        .expect(StatusCode::OK);
    assert_eq!(days["time_zone"], "America/New_York");
    let eur = &days["currencies"][0];
    let periods = eur["periods"].as_array().unwrap();
    assert_eq!(periods.len(), 2, "{periods:#?}");
    assert_eq!(periods[0]["period"]["start"], "2026-06-01T04:00:00Z");
    assert_eq!(periods[0]["deliveries"], 2);
    assert_eq!(minor(&periods[0]["net"]), 2 * DRIVER_NET);
    assert_eq!(minor(&periods[0]["platform_fees"]), 2 * DRIVER_FEE);
    assert_eq!(periods[1]["period"]["start"], "2026-06-07T04:00:00Z");
    assert_eq!(eur["totals"]["deliveries"], 3);
    assert_eq!(minor(&eur["totals"]["gross"]), 3 * DRIVER_GROSS);
    assert_eq!(minor(&eur["totals"]["pending"]), 3 * DRIVER_NET);
    assert_eq!(minor(&eur["totals"]["paid"]), 0);
    assert_eq!(days["latest"].as_array().unwrap().len(), 3);
    assert_eq!(days["latest"][0]["at"], "2026-06-08T03:00:00Z");
    assert_eq!(minor(&days["cash_held"][0]["held"]), 3 * TOTAL);
    assert_eq!(
        days["cash_held"][0]["business_id"],
        w.a.business.to_string()
    );

    let weeks = get("?group=week&from=2026-06-01&to=2026-06-14")
        .await
        .expect(StatusCode::OK);
    let periods = weeks["currencies"][0]["periods"].as_array().unwrap();
    assert_eq!(periods.len(), 1, "one New York week: {periods:#?}");
    assert_eq!(periods[0]["deliveries"], 3);
    assert_eq!(periods[0]["period"]["end"], "2026-06-08T04:00:00Z");

    // Paid once the payout is processed (here: carried over, the cash exceeds the earnings).
    let created = run(&w, "week", "2026-06-20").await;
    let d = find(&created, "driver", w.driver, "2026-06-01T04:00:00");
    let elevated = elevate(&w).await;
    process(&w, d["id"].as_str().unwrap(), Some(&elevated))
        .await
        .expect(StatusCode::OK);
    let after = get("?group=week&from=2026-06-01&to=2026-06-14")
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        minor(&after["currencies"][0]["totals"]["paid"]),
        3 * DRIVER_NET
    );
    assert!(after["cash_held"].as_array().unwrap().is_empty());
    let mine =
        w.t.send(
            Method::GET,
            "/api/v1/driver/payouts",
            Some(&w.driver_token),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(mine["total"], 1);
    assert_eq!(mine["items"][0]["status"], "carried_over");

    // Bad input: all field errors at once, as a 400; an unknown parameter is a 422.
    let bad = get("?group=month&from=2026-02-30&to=soon").await;
    bad.expect_problem(StatusCode::BAD_REQUEST, "malformed_request");
    let fields: Vec<&str> = bad.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["group", "from", "to"]);
    let long = get("?from=2025-01-01&to=2026-06-01").await;
    long.expect_problem(StatusCode::BAD_REQUEST, "malformed_request");
    assert_eq!(long.body["errors"][0]["code"], "range_too_long");
    get("?to=2026-06-01&from=2026-06-02")
        .await
        .expect_problem(StatusCode::BAD_REQUEST, "malformed_request");
    get("?driver_id=x")
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");

    // Another driver sees none of it; staff may not use the driver's page.
    let (_, other) = other_driver(&w, "olga").await;
    let theirs =
        w.t.send(
            Method::GET,
            "/api/v1/driver/earnings?from=2026-06-01&to=2026-06-14",
            Some(&other),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert!(theirs["currencies"].as_array().unwrap().is_empty());
    assert!(theirs["latest"].as_array().unwrap().is_empty());
    assert!(theirs["cash_held"].as_array().unwrap().is_empty());
    let none =
        w.t.send(Method::GET, "/api/v1/driver/payouts", Some(&other), None)
            .await
            .expect(StatusCode::OK);
    assert_eq!(none["total"], 0);
    w.t.send(
        Method::GET,
        "/api/v1/driver/earnings",
        Some(&w.a.owner),
        None,
    )
    .await
    .expect_problem(StatusCode::FORBIDDEN, "forbidden");
}

#[tokio::test]
async fn staff_see_their_own_payouts_and_record_deposits_within_what_is_held() {
    let w = world("staff").await;
    delivered(&w, &w.a, w.driver, "2026-06-01T12:00:00Z", true).await;
    delivered(&w, &w.b, w.driver, "2026-06-01T13:00:00Z", false).await;
    run(&w, "day", "2026-06-10").await;

    let mine =
        w.t.send(
            Method::GET,
            "/api/v1/business/payouts",
            Some(&w.a.owner),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(mine["total"], 1);
    assert_eq!(mine["items"][0]["business_id"], w.a.business.to_string());
    let theirs =
        w.t.send(
            Method::GET,
            "/api/v1/business/payouts?party=driver",
            Some(&w.b.owner),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(theirs["total"], 1, "party cannot widen a business's view");
    assert_eq!(theirs["items"][0]["business_id"], w.b.business.to_string());
    // Under row level security as well: staff of A read no payout of B or of drivers.
    let visible: i64 = {
        let mut tx = w.t.db.pools.app.begin().await.unwrap();
        sqlx::query(
            "SELECT set_config('app.kind', 'staff', true), set_config('app.business_id', $1, true)",
        )
        .bind(w.a.business.to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
        sqlx::query_scalar("SELECT (SELECT count(*) FROM business_payouts) + (SELECT count(*) FROM driver_payouts)")
            .fetch_one(&mut *tx)
            .await
            .unwrap()
    };
    assert_eq!(visible, 1);
    w.t.send(
        Method::GET,
        "/api/v1/business/payouts",
        Some(&w.driver_token),
        None,
    )
    .await
    .expect_problem(StatusCode::FORBIDDEN, "forbidden");
    w.t.send(Method::GET, "/api/v1/admin/payouts", Some(&w.a.owner), None)
        .await
        .expect_problem(StatusCode::FORBIDDEN, "forbidden");
    let bad =
        w.t.send(
            Method::GET,
            "/api/v1/admin/payouts?status=done&page=0",
            Some(&w.admin),
            None,
        )
        .await;
    bad.expect_problem(StatusCode::BAD_REQUEST, "malformed_request");
    assert_eq!(bad.body["errors"].as_array().unwrap().len(), 2);

    // Deposits: at most what the driver holds for this business.
    let deposits = format!("/api/v1/business/drivers/{}/cash-deposits", w.driver);
    let over =
        w.t.send(
            Method::POST,
            &deposits,
            Some(&w.a.owner),
            Some(json!({"amount_minor": TOTAL + 1})),
        )
        .await;
    over.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(over.body["errors"][0]["code"], "exceeds_held");
    w.t.send(
        Method::POST,
        &deposits,
        Some(&w.a.owner),
        Some(json!({"amount_minor": 0})),
    )
    .await
    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let part =
        w.t.send(
            Method::POST,
            &deposits,
            Some(&w.a.owner),
            Some(json!({"amount_minor": 500})),
        )
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(minor(&part["held"]), TOTAL - 500);
    let rest =
        w.t.send(
            Method::POST,
            &deposits,
            Some(&w.a.owner),
            Some(json!({"amount_minor": TOTAL - 500})),
        )
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(minor(&rest["held"]), 0);
    assert_eq!(held(&w, w.a.business).await, 0);
    // B's driver held no cash for B (a card order): nothing to deposit there.
    w.t.send(
        Method::POST,
        &deposits,
        Some(&w.b.owner),
        Some(json!({"amount_minor": 1})),
    )
    .await
    .expect_problem(StatusCode::NOT_FOUND, "not_found");
    w.t.send(
        Method::POST,
        &format!("/api/v1/business/drivers/{}/cash-deposits", Uuid::now_v7()),
        Some(&w.a.owner),
        Some(json!({"amount_minor": 1})),
    )
    .await
    .expect_problem(StatusCode::NOT_FOUND, "not_found");
    w.t.send(
        Method::POST,
        &deposits,
        Some(&w.driver_token),
        Some(json!({"amount_minor": 1})),
    )
    .await
    .expect_problem(StatusCode::FORBIDDEN, "forbidden");
    // Deposits are audited in the business's log.
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE business_id = $1 AND action = 'driver_cash.deposit'",
    )
    .bind(w.a.business)
    .fetch_one(&w.t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(audited, 2);
}

#[tokio::test]
async fn fee_and_performance_reports_add_up() {
    let w = world("report").await;
    let (late, _) = other_driver(&w, "lars").await;
    delivered(&w, &w.a, w.driver, "2026-06-01T12:00:00Z", false).await;
    delivered(&w, &w.a, w.driver, "2026-06-02T12:00:00Z", false).await;
    delivered(&w, &w.b, late, "2026-06-02T12:00:00Z", false).await;
    // Lars handed his over 2 hours after acceptance (15 min prep, ~8 min trip, 10 min grace).
    sqlx::query(
        "UPDATE deliveries SET finished_at = finished_at + interval '90 minutes' WHERE driver_id = $1",
    )
    .bind(late)
    .execute(&w.t.db.pools.owner)
    .await
    .unwrap();

    let created = run(&w, "week", "2026-06-20").await;
    let a = find(&created, "business", w.a.business, "2026-05-31T21:00:00");
    let elevated = elevate(&w).await;
    process(&w, a["id"].as_str().unwrap(), Some(&elevated))
        .await
        .expect(StatusCode::OK);

    let fees =
        w.t.send(
            Method::GET,
            "/api/v1/admin/platform-fees?from=2026-06-01&to=2026-06-30",
            Some(&w.admin),
            None,
        )
        .await
        .expect(StatusCode::OK);
    let rows = fees["businesses"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{fees:#}");
    let a_row = rows
        .iter()
        .find(|r| r["business_id"] == w.a.business.to_string())
        .unwrap();
    assert_eq!(a_row["order_commissions"]["count"], 2);
    assert_eq!(minor(&a_row["order_commissions"]["paid"]), 2 * COMMISSION);
    assert_eq!(minor(&a_row["order_commissions"]["pending"]), 0);
    assert_eq!(
        minor(&a_row["delivery_commissions"]["total"]),
        2 * DRIVER_FEE
    );
    assert_eq!(
        minor(&a_row["delivery_commissions"]["pending"]),
        2 * DRIVER_FEE
    );
    assert_eq!(
        minor(&a_row["total"]["total"]),
        2 * COMMISSION + 2 * DRIVER_FEE
    );
    let only_b =
        w.t.send(
            Method::GET,
            &format!(
                "/api/v1/admin/platform-fees?from=2026-06-01&to=2026-06-30&business_id={}",
                w.b.business
            ),
            Some(&w.admin),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(only_b["businesses"].as_array().unwrap().len(), 1);
    assert_eq!(
        minor(&only_b["businesses"][0]["order_commissions"]["pending"]),
        COMMISSION
    );
    w.t.send(
        Method::GET,
        "/api/v1/admin/platform-fees?business_id=nope&from=2026-06-01",
        Some(&w.admin),
        None,
    )
    .await
    .expect_problem(StatusCode::BAD_REQUEST, "malformed_request");
    w.t.send(
        Method::GET,
        "/api/v1/admin/platform-fees",
        Some(&w.a.owner),
        None,
    )
    .await
    .expect_problem(StatusCode::FORBIDDEN, "forbidden");

    let report =
        w.t.send(
            Method::GET,
            "/api/v1/admin/driver-performance?from=2026-06-01&to=2026-06-30",
            Some(&w.admin),
            None,
        )
        .await
        .expect(StatusCode::OK);
    let drivers = report["drivers"].as_array().unwrap();
    let dana = drivers
        .iter()
        .find(|d| d["driver_id"] == w.driver.to_string())
        .unwrap();
    assert_eq!(dana["delivered"], 2);
    assert_eq!(dana["on_time"], 2);
    assert_eq!(dana["on_time_rate_bps"], 10_000);
    assert_eq!(dana["rating_tenths"], 47);
    let lars = drivers
        .iter()
        .find(|d| d["driver_id"] == late.to_string())
        .unwrap();
    assert_eq!(lars["delivered"], 1);
    assert_eq!(lars["on_time"], 0);
    assert_eq!(lars["on_time_rate_bps"], 0);
    w.t.send(
        Method::GET,
        "/api/v1/admin/driver-performance?from=2024-01-01&to=2026-01-01",
        Some(&w.admin),
        None,
    )
    .await
    .expect_problem(StatusCode::BAD_REQUEST, "malformed_request");
}

#[tokio::test]
async fn a_delivery_worked_through_the_workflow_is_paid_out() {
    let w = world("flow").await;
    let order = fleet::accepted_order(&w.t, &w.a).await;
    let offer = fleet::only_offer(&fleet::assignments(&w.t, &w.driver_token).await);
    let taken = fleet::answer(&w.t, &w.driver_token, &offer, "accept")
        .await
        .expect(StatusCode::OK);
    let delivery = taken["delivery_id"].as_str().unwrap().to_owned();
    w.t.send(
        Method::PATCH,
        &format!("/api/v1/business/orders/{order}"),
        Some(&w.a.owner),
        Some(json!({"type": "mark_ready"})),
    )
    .await
    .expect(StatusCode::OK);
    let step = |body: Value| {
        let path = format!("/api/v1/driver/deliveries/{delivery}/status");
        let token = w.driver_token.clone();
        let t = &w.t;
        async move { t.send(Method::PATCH, &path, Some(&token), Some(body)).await }
    };
    step(json!({"status": "picked_up"}))
        .await
        .expect(StatusCode::OK);
    step(json!({"status": "delivered", "cash_collected": {"amount_minor": TOTAL}}))
        .await
        .expect(StatusCode::OK);
    let (gross, net): (i64, i64) = sqlx::query_as(
        "SELECT gross_minor, net_minor FROM driver_earnings WHERE business_id = $1 AND order_id = $2",
    )
    .bind(w.a.business)
    .bind(order)
    .fetch_one(&w.t.db.pools.owner)
    .await
    .unwrap();

    // Move the delivery a week into the past, so its day is closed (the tokens stay valid).
    for sql in [
        "UPDATE order_status_history SET at = at - interval '8 days' WHERE business_id = $1 AND order_id = $2",
        "UPDATE driver_earnings SET earned_at = earned_at - interval '8 days' WHERE business_id = $1 AND order_id = $2",
        "UPDATE driver_cash SET at = at - interval '8 days' WHERE business_id = $1 AND order_id = $2",
        "UPDATE platform_fees SET created_at = created_at - interval '8 days' WHERE business_id = $1 AND order_id = $2",
    ] {
        sqlx::query(sql)
            .bind(w.a.business)
            .bind(order)
            .execute(&w.t.db.pools.owner)
            .await
            .unwrap();
    }
    let until = Utc::now().date_naive().to_string();
    let created = run(&w, "day", &until).await;
    assert_eq!(created.len(), 2, "{created:#?}");
    let business = created.iter().find(|p| p["party"] == "business").unwrap();
    let fee: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(fee_amount_minor), 0)::bigint FROM platform_fees WHERE business_id = $1 AND order_id = $2",
    )
    .bind(w.a.business)
    .bind(order)
    .fetch_one(&w.t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(minor(&business["business"]["net"]), TOTAL - fee - gross);
    let driver = created.iter().find(|p| p["party"] == "driver").unwrap();
    assert_eq!(minor(&driver["driver"]["earnings"]), net);
    assert_eq!(minor(&driver["driver"]["cash_kept"]), TOTAL);

    let elevated = elevate(&w).await;
    let paid = process(&w, business["id"].as_str().unwrap(), Some(&elevated))
        .await
        .expect(StatusCode::OK);
    assert_eq!(paid["status"], "paid");
    assert_eq!(w.standin.transfers()[0]["amount"], TOTAL - fee - gross);
    let owed = process(&w, driver["id"].as_str().unwrap(), Some(&elevated))
        .await
        .expect(StatusCode::OK);
    assert_eq!(owed["status"], "carried_over");
    assert_eq!(minor(&owed["driver"]["net"]), net - TOTAL);
    assert_eq!(held(&w, w.a.business).await, 0);
    let earnings =
        w.t.send(
            Method::GET,
            "/api/v1/driver/earnings",
            Some(&w.driver_token),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(minor(&earnings["currencies"][0]["totals"]["paid"]), net);

    // The admin's report counts the offer Dana accepted and the delivery she made in time.
    let report =
        w.t.send(
            Method::GET,
            "/api/v1/admin/driver-performance",
            Some(&w.admin),
            None,
        )
        .await
        .expect(StatusCode::OK);
    let dana = report["drivers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["driver_id"] == w.driver.to_string())
        .unwrap()
        .clone();
    assert_eq!(
        (
            &dana["offers"],
            &dana["accepted"],
            &dana["acceptance_rate_bps"]
        ),
        (&json!(1), &json!(1), &json!(10_000))
    );
    assert_eq!(
        (&dana["delivered"], &dana["on_time"]),
        (&json!(1), &json!(1))
    );
}

#[tokio::test]
async fn a_business_holding_drivers_cash_owes_it_and_carries_it_over() {
    let w = world("owes").await;
    delivered(&w, &w.a, w.driver, "2026-06-01T12:00:00Z", true).await;
    // That evening the driver hands the 13.00 in at the counter.
    sqlx::query(
        "INSERT INTO driver_cash (business_id, id, driver_id, kind, currency, amount_minor, at) \
         VALUES ($1, $2, $3, 'deposited', 'EUR', $4, '2026-06-01T18:00:00Z')",
    )
    .bind(w.a.business)
    .bind(Uuid::now_v7())
    .bind(w.driver)
    .bind(TOTAL)
    .execute(&w.t.db.pools.owner)
    .await
    .unwrap();
    let created = run(&w, "week", "2026-06-08").await;
    let first = find(&created, "business", w.a.business, "2026-05-31T21:00:00");
    assert_eq!(minor(&first["business"]["cash_kept"]), TOTAL);
    let owed = -(COMMISSION + DRIVER_GROSS);
    assert_eq!(minor(&first["business"]["net"]), owed);
    // The driver holds nothing: its payout has only its earnings.
    let driver = find(&created, "driver", w.driver, "2026-06-01T04:00:00");
    assert_eq!(minor(&driver["driver"]["cash_kept"]), 0);
    assert_eq!(minor(&driver["driver"]["net"]), DRIVER_NET);

    let elevated = elevate(&w).await;
    let carried = process(&w, first["id"].as_str().unwrap(), Some(&elevated))
        .await
        .expect(StatusCode::OK);
    assert_eq!(carried["status"], "carried_over");
    assert!(w.standin.transfers().is_empty());

    for at in ["2026-06-09T12:00:00Z", "2026-06-10T12:00:00Z"] {
        delivered(&w, &w.a, w.driver, at, false).await;
    }
    let created = run(&w, "week", "2026-06-15").await;
    let next = find(&created, "business", w.a.business, "2026-06-07T21:00:00");
    let paid = process(&w, next["id"].as_str().unwrap(), Some(&elevated))
        .await
        .expect(StatusCode::OK);
    let expected = 2 * (TOTAL - COMMISSION - DRIVER_GROSS) + owed;
    assert_eq!(paid["status"], "paid", "{paid}");
    assert_eq!(minor(&paid["business"]["carried_over"]), owed);
    assert_eq!(minor(&paid["business"]["net"]), expected);
    assert_eq!(w.standin.transfers()[0]["amount"], expected);
    // The staff of A see both, the second naming the first as the one it took over.
    let mine =
        w.t.send(
            Method::GET,
            "/api/v1/business/payouts",
            Some(&w.a.owner),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(mine["total"], 2);
    assert_eq!(mine["items"][1]["carried_into"], paid["id"]);
}
