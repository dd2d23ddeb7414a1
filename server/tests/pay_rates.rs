//! Drivers' pay rates on real PostgreSQL through the HTTP router: a platform admin lists and
//! sets each currency's rates (validated field by field, audited), drivers read them, nobody
//! else does, and `pay_rates::rules_for` gives the dispatcher and the order system the rules in
//! force (the pass-through without a row).

#![allow(clippy::unwrap_used)] // A failed unwrap in a test is a failed test.

mod common;

use axum::http::{Method, StatusCode};
use common::fleet::{driver, shop};
use common::TestApp;
use fleetfront_domain::earnings::{EarningsRules, NO_SURGE_BPS};
use fleetfront_domain::money::Currency;
use fleetfront_domain::Money;
use fleetfront_server::db::set_principal;
use fleetfront_server::pay_rates::rules_for;
use serde_json::{json, Value};

const RATES: &str = "/api/v1/admin/driver-rates";

/// The `(field, code)` pairs of a problem's field errors.
fn field_errors(body: &Value) -> Vec<(String, String)> {
    let text = |e: &Value, key: &str| e[key].as_str().unwrap_or_default().to_owned();
    body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| (text(e, "field"), text(e, "code")))
        .collect()
}

fn rates(per_km: i64, included: i64, commission: i64, surge: i64) -> Value {
    json!({
        "per_km_minor": per_km, "included_metres": included,
        "commission_bps": commission, "surge_bps": surge,
    })
}

#[tokio::test]
async fn admins_set_rates_per_currency_and_drivers_read_them() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let list = t
        .send(Method::GET, RATES, Some(&admin), None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(list, json!([]), "no rates until an admin sets them");

    let set = t
        .send(
            Method::PUT,
            &format!("{RATES}/EUR"),
            Some(&admin),
            Some(rates(120, 2_000, 1_500, 12_500)),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(set["currency"], "EUR");
    assert_eq!(set["per_km_minor"], 120);
    assert_eq!(set["included_metres"], 2_000);
    assert_eq!(set["commission_bps"], 1_500);
    assert_eq!(set["surge_bps"], 12_500);
    assert!(set["updated_at"].is_string());
    // A second PUT replaces the currency's rates; another currency gets its own row.
    t.send(
        Method::PUT,
        &format!("{RATES}/EUR"),
        Some(&admin),
        Some(rates(150, 1_000, 2_000, 10_000)),
    )
    .await
    .expect(StatusCode::OK);
    t.send(
        Method::PUT,
        &format!("{RATES}/JPY"),
        Some(&admin),
        Some(rates(20, 0, 0, 50_000)),
    )
    .await
    .expect(StatusCode::OK);
    let list = t
        .send(Method::GET, RATES, Some(&admin), None)
        .await
        .expect(StatusCode::OK);
    let currencies: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["currency"].as_str().unwrap())
        .collect();
    assert_eq!(currencies, ["EUR", "JPY"]);
    assert_eq!(list[0]["per_km_minor"], 150);
    assert_eq!(list[0]["surge_bps"], 10_000);

    // Every change is in the platform's audit log, with what was set.
    let audited: Vec<(String, Value)> = sqlx::query_as(
        "SELECT resource_id, details FROM platform_audit_log WHERE action = 'driver_rates.update' \
          ORDER BY occurred_at, id",
    )
    .fetch_all(&t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(audited.len(), 3);
    assert_eq!(audited[0].0, "EUR");
    assert_eq!(audited[0].1["per_km_minor"], 120);
    assert_eq!(audited[2].0, "JPY");
    let updated_by: Option<uuid::Uuid> =
        sqlx::query_scalar("SELECT updated_by FROM driver_pay_rates WHERE currency = 'EUR'")
            .fetch_one(&t.db.pools.owner)
            .await
            .unwrap();
    assert!(updated_by.is_some());

    // Drivers read every currency's rates.
    let (_, driver_token) = driver(&t, "Dee", (60.17, 24.94), None).await;
    let seen = t
        .send(
            Method::GET,
            "/api/v1/driver/rates",
            Some(&driver_token),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(seen, list);
}

#[tokio::test]
async fn bad_rates_are_refused_field_by_field_and_change_nothing() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    t.send(
        Method::PUT,
        &format!("{RATES}/EUR"),
        Some(&admin),
        Some(rates(120, 2_000, 1_500, 12_500)),
    )
    .await
    .expect(StatusCode::OK);
    let before = t
        .send(Method::GET, RATES, Some(&admin), None)
        .await
        .expect(StatusCode::OK);

    let put = |currency: &str, body: Value| {
        let path = format!("{RATES}/{currency}");
        let admin = admin.clone();
        let t = &t;
        async move { t.send(Method::PUT, &path, Some(&admin), Some(body)).await }
    };
    // Every value out of range, and an unknown currency, all reported at once.
    let reply = put("XYZ", rates(-1, 100_001, 10_001, 9_999)).await;
    reply.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(
        field_errors(&reply.body),
        [
            ("currency", "unknown_currency"),
            ("per_km_minor", "out_of_range"),
            ("included_metres", "out_of_range"),
            ("commission_bps", "out_of_range"),
            ("surge_bps", "out_of_range"),
        ]
        .map(|(f, c)| (f.to_owned(), c.to_owned()))
    );
    // ISO codes are upper case; the edges of the ranges are fine, one past them is not.
    let reply = put("eur", rates(0, 0, 0, 10_000)).await;
    reply.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(field_errors(&reply.body)[0].0, "currency");
    for (body, field) in [
        (rates(1_000_001, 0, 0, 10_000), "per_km_minor"),
        (rates(0, -1, 0, 10_000), "included_metres"),
        (rates(0, 0, -1, 10_000), "commission_bps"),
        (rates(0, 0, 0, 50_001), "surge_bps"),
    ] {
        let reply = put("EUR", body).await;
        reply.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(
            field_errors(&reply.body),
            [(field.to_owned(), "out_of_range".to_owned())]
        );
    }
    // A missing field, a wrong type, an unknown field, a value beyond 64 bits, bad JSON.
    for body in [
        json!({"per_km_minor": 1, "included_metres": 0, "commission_bps": 0}),
        json!({"per_km_minor": "1", "included_metres": 0, "commission_bps": 0, "surge_bps": 10000}),
        json!({"per_km_minor": 1, "included_metres": 0, "commission_bps": 0, "surge_bps": 10000, "currency": "USD"}),
        json!({"per_km_minor": 1e30, "included_metres": 0, "commission_bps": 0, "surge_bps": 10000}),
    ] {
        put("EUR", body)
            .await
            .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    }
    let reply = t
        .raw(
            axum::http::Request::builder()
                .method(Method::PUT)
                .uri(format!("{RATES}/EUR"))
                .header("authorization", format!("Bearer {admin}"))
                .header("content-type", "application/json")
                .body(axum::body::Body::from("{\"per_km_minor\":"))
                .unwrap(),
        )
        .await;
    reply.expect_problem(StatusCode::BAD_REQUEST, "malformed_request");
    let after = t
        .send(Method::GET, RATES, Some(&admin), None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(after, before, "refused changes change nothing");
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM platform_audit_log WHERE action = 'driver_rates.update'",
    )
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(audited, 1);
}

#[tokio::test]
async fn only_admins_set_rates_and_only_drivers_and_admins_read_them() {
    let t = TestApp::new().await;
    let shop = shop(&t, "rates-shop").await;
    let (_, driver_token) = driver(&t, "Dee", (60.17, 24.94), Some((shop.business, 1))).await;
    let body = rates(120, 2_000, 1_500, 12_500);
    for token in [&shop.owner, &driver_token] {
        t.send(Method::GET, RATES, Some(token), None)
            .await
            .expect_problem(StatusCode::FORBIDDEN, "forbidden");
        t.send(
            Method::PUT,
            &format!("{RATES}/EUR"),
            Some(token),
            Some(body.clone()),
        )
        .await
        .expect_problem(StatusCode::FORBIDDEN, "forbidden");
    }
    t.send(Method::GET, "/api/v1/driver/rates", Some(&shop.owner), None)
        .await
        .expect_problem(StatusCode::FORBIDDEN, "forbidden");
    t.send(Method::GET, RATES, None, None)
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
    t.send(Method::GET, "/api/v1/driver/rates", None, None)
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM driver_pay_rates")
        .fetch_one(&t.db.pools.owner)
        .await
        .unwrap();
    assert_eq!(rows, 0);

    // Row level security agrees for the runtime role: staff can neither read nor write rates.
    let mut tx = t.db.pools.app.begin().await.unwrap();
    set_principal(&mut tx, "staff", None, None, Some(shop.business))
        .await
        .unwrap();
    let written =
        sqlx::query("INSERT INTO driver_pay_rates (currency, per_km_minor) VALUES ('EUR', 1)")
            .execute(&mut *tx)
            .await;
    assert!(written.is_err(), "staff wrote driver rates");
    tx.rollback().await.unwrap();
}

#[tokio::test]
async fn rules_for_gives_the_configured_rules_or_the_pass_through() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    t.send(
        Method::PUT,
        &format!("{RATES}/EUR"),
        Some(&admin),
        Some(rates(120, 2_000, 1_500, 12_500)),
    )
    .await
    .expect(StatusCode::OK);
    let eur = Currency::parse("EUR").unwrap();
    let usd = Currency::parse("USD").unwrap();
    let expected = EarningsRules {
        per_km: Money::new(120, eur),
        included_metres: 2_000,
        commission_bps: 1_500,
    };
    // The principals that apply the rates read them; a currency without a row passes through.
    for kind in ["dispatcher", "order_worker"] {
        let mut tx = t.db.pools.app.begin().await.unwrap();
        set_principal(&mut tx, kind, None, None, None)
            .await
            .unwrap();
        assert_eq!(
            rules_for(&mut tx, eur).await.unwrap(),
            (expected, 12_500),
            "{kind}"
        );
        assert_eq!(
            rules_for(&mut tx, usd).await.unwrap(),
            (EarningsRules::pass_through(usd), NO_SURGE_BPS),
            "{kind}"
        );
        tx.rollback().await.unwrap();
    }
    // A principal that may not read them sees none, so gets the pass-through.
    let mut tx = t.db.pools.app.begin().await.unwrap();
    set_principal(&mut tx, "public", None, None, None)
        .await
        .unwrap();
    assert_eq!(
        rules_for(&mut tx, eur).await.unwrap(),
        (EarningsRules::pass_through(eur), NO_SURGE_BPS)
    );
    tx.rollback().await.unwrap();
}
