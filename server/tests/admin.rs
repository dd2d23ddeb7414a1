//! Platform administration through the HTTP API: onboarding a business in one transaction,
//! subdomain rules, the business list, suspension and plan changes, plan management, the limits a
//! plan puts on a business, platform metrics, and validation of storefront settings.
//!
//! Every test drives the real router over a fresh database and checks what was stored through
//! the owner pool, which bypasses row level security, so the assertions see every row.

#![allow(clippy::unwrap_used)] // A failed unwrap in a test is a failed test.

mod common;

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use chrono::{DateTime, Duration, Utc};
use common::{onboarding, Reply, TestApp, PASSWORD};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use uuid::Uuid;

const BUSINESSES: &str = "/api/v1/admin/businesses";
const PLANS: &str = "/api/v1/admin/plans";
const METRICS: &str = "/api/v1/admin/platform-metrics";
const STOREFRONT: &str = "/api/v1/business/storefront";
const STAFF: &str = "/api/v1/business/staff";
const ROLES: &str = "/api/v1/business/roles";
const LOGIN: &str = "/api/v1/auth/login";

/// Tables an onboarding writes to; a failed onboarding must leave all of them as they were.
const ONBOARDING_TABLES: &[&str] = &[
    "businesses",
    "business_subscriptions",
    "business_storefront_settings",
    "roles",
    "role_permissions",
    "memberships",
    "users",
    "password_setup_tokens",
    "product_categories",
    "outbox_messages",
    "audit_log",
];

/// One value from the database, read as the owner.
async fn one<T>(t: &TestApp, sql: &str) -> T
where
    T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + Unpin,
{
    sqlx::query_scalar(sql)
        .fetch_one(&t.db.pools.owner)
        .await
        .unwrap()
}

/// The number of rows in each of `tables`.
async fn row_counts(t: &TestApp, tables: &[&'static str]) -> Vec<(&'static str, i64)> {
    let mut counts = Vec::with_capacity(tables.len());
    for table in tables {
        counts.push((
            *table,
            one(t, &format!("SELECT count(*) FROM {table}")).await,
        ));
    }
    counts
}

/// The `(field, code)` pairs of a validation problem, in order.
fn field_errors(body: &Value) -> Vec<(String, String)> {
    body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    let text = |key: &str| e[key].as_str().unwrap_or_default().to_owned();
                    (text("field"), text("code"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Asserts a 422 `validation_failed` whose field errors are exactly `expected`.
#[track_caller]
fn assert_invalid(reply: &Reply, expected: &[(&str, &str)]) {
    reply.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(f, c)| ((*f).to_owned(), (*c).to_owned()))
        .collect();
    assert_eq!(field_errors(&reply.body), expected, "body: {}", reply.body);
}

/// Onboards a business from `body` as `admin`.
async fn create_business(t: &TestApp, admin: &str, body: Value) -> Reply {
    t.send(Method::POST, BUSINESSES, Some(admin), Some(body))
        .await
}

/// Changes a business as `admin`.
async fn patch_business(t: &TestApp, admin: &str, id: Uuid, body: Value) -> Reply {
    t.send(
        Method::PATCH,
        &format!("{BUSINESSES}/{id}"),
        Some(admin),
        Some(body),
    )
    .await
}

/// Adds a team member with the built-in `staff` role.
async fn add_staff(t: &TestApp, token: &str, email: &str) -> Reply {
    let body =
        json!({"email": email, "full_name": "Team Member", "role": "staff", "password": PASSWORD});
    t.send(Method::POST, STAFF, Some(token), Some(body)).await
}

/// Registers a driver account with `email`.
async fn register_driver(t: &TestApp, email: &str) {
    let body = json!({"email": email, "password": PASSWORD, "full_name": "Dee Driver", "phone": "+358401234567"});
    t.send(
        Method::POST,
        "/api/v1/auth/driver/register",
        None,
        Some(body),
    )
    .await
    .expect(StatusCode::CREATED);
}

/// Signs in with the owner's credentials of `subdomain`, returning the raw reply.
async fn owner_login(t: &TestApp, subdomain: &str) -> Reply {
    let body = json!({"email": format!("owner@{subdomain}.test"), "password": PASSWORD});
    t.send(Method::POST, LOGIN, None, Some(body)).await
}

/// The ids of a page of businesses.
fn page_ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Lists businesses with a query string; returns the reply.
async fn list(t: &TestApp, admin: &str, query: &str) -> Reply {
    t.send(
        Method::GET,
        &format!("{BUSINESSES}?{query}"),
        Some(admin),
        None,
    )
    .await
}

/// A timestamp of a JSON view.
fn instant(value: &Value) -> DateTime<Utc> {
    value.as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn onboarding_creates_the_whole_business_in_one_step() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;

    // Sent by hand to see the Location header.
    let request = Request::builder()
        .method(Method::POST)
        .uri(BUSINESSES)
        .header(header::AUTHORIZATION, format!("Bearer {admin}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(onboarding("corner-cafe", "starter").to_string()))
        .unwrap();
    let response = t.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let created: Value = serde_json::from_slice(&bytes).unwrap();
    let id: Uuid = created["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(location, format!("{BUSINESSES}/{id}"));

    // The view: details, storefront address and a trial of 14 days.
    assert_eq!(created["name"], "Store corner-cafe");
    assert_eq!(created["status"], "active");
    assert_eq!(created["currency"], "EUR");
    assert_eq!(created["subdomain"], "corner-cafe");
    assert_eq!(
        created["storefront_url"],
        "https://corner-cafe.fleetfront.test/"
    );
    let subscription = &created["subscription"];
    assert_eq!(subscription["plan"], "starter");
    assert_eq!(subscription["status"], "trial");
    assert_eq!(subscription["billing_interval"], "monthly");
    let start = instant(&subscription["current_period_start"]);
    let end = instant(&subscription["current_period_end"]);
    assert_eq!(end - start, Duration::days(14));
    assert!(
        (Utc::now() - start).num_minutes().abs() < 5,
        "the trial starts now: {start}"
    );
    let fetched = t
        .send(Method::GET, &location, Some(&admin), None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(fetched, created);

    // What was stored.
    let trials: i64 = one(
        &t,
        &format!(
            "SELECT count(*) FROM business_subscriptions s JOIN subscription_plans p ON p.id = s.plan_id \
             WHERE s.business_id = '{id}' AND s.status = 'trial' AND p.plan_key = 'starter' \
             AND s.current_period_end - s.current_period_start = interval '14 days' \
             AND s.usage_limits = p.limits AND s.features_enabled = p.features"
        ),
    )
    .await;
    assert_eq!(trials, 1);
    let subdomain: String = one(
        &t,
        &format!("SELECT subdomain FROM business_storefront_settings WHERE business_id = '{id}'"),
    )
    .await;
    assert_eq!(subdomain, "corner-cafe");
    let roles: String = one(
        &t,
        &format!(
            "SELECT string_agg(key, ',' ORDER BY key) FROM roles WHERE business_id = '{id}' AND is_builtin"
        ),
    )
    .await;
    assert_eq!(roles, "dispatcher,manager,owner,staff");
    assert_eq!(
        one::<i64>(
            &t,
            &format!("SELECT count(*) FROM roles WHERE business_id = '{id}'")
        )
        .await,
        4
    );
    let owners: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT u.email FROM memberships m JOIN users u ON u.id = m.user_id \
         JOIN roles r ON r.business_id = m.business_id AND r.id = m.role_id \
         WHERE m.business_id = '{id}' AND r.key = 'owner' AND u.kind = 'staff'"
    ))
    .fetch_all(&t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(owners, ["owner@corner-cafe.test"]);
    let categories: String = one(
        &t,
        &format!(
            "SELECT string_agg(slug || '=' || name, ',' ORDER BY display_order) FROM product_categories WHERE business_id = '{id}'"
        ),
    )
    .await;
    assert_eq!(categories, "mains=Mains,drinks=Drinks");
    let outbox: Vec<(String, Value)> = sqlx::query_as(&format!(
        "SELECT topic, payload FROM outbox_messages WHERE business_id = '{id}'"
    ))
    .fetch_all(&t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(outbox.len(), 1, "{outbox:?}");
    let (topic, payload) = &outbox[0];
    assert_eq!(topic, "email");
    assert_eq!(payload["template"], "welcome_owner");
    assert_eq!(payload["to"], "owner@corner-cafe.test");
    assert_eq!(
        payload["storefront_url"],
        "https://corner-cafe.fleetfront.test/"
    );
    assert_eq!(
        payload["password_setup_token"],
        Value::Null,
        "a password was given"
    );
    let tenant_audit: i64 = one(
        &t,
        &format!(
            "SELECT count(*) FROM audit_log WHERE business_id = '{id}' AND action = 'business.onboard' \
             AND outcome = 'ok' AND actor_kind = 'admin'"
        ),
    )
    .await;
    assert_eq!(tenant_audit, 1);
    let platform_audit: i64 = one(
        &t,
        &format!(
            "SELECT count(*) FROM platform_audit_log WHERE action = 'business.onboard' AND resource_id = '{id}' \
             AND outcome = 'ok' AND actor_kind = 'admin'"
        ),
    )
    .await;
    assert_eq!(platform_audit, 1);

    // The owner can sign in to the new business and see its storefront.
    let tokens = owner_login(&t, "corner-cafe").await.expect(StatusCode::OK);
    assert_eq!(tokens["principal"]["business_id"], id.to_string());
    assert_eq!(tokens["principal"]["role"], "owner");
    let owner = tokens["access_token"].as_str().unwrap();
    let storefront = t
        .send(Method::GET, STOREFRONT, Some(owner), None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(storefront["business_id"], id.to_string());
    assert_eq!(storefront["subdomain"], "corner-cafe");
    assert_eq!(storefront["url"], "https://corner-cafe.fleetfront.test/");
    assert_eq!(storefront["is_published"], false);
}

#[tokio::test]
async fn an_owner_without_a_password_gets_a_set_up_link() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let mut body = onboarding("no-password", "starter");
    body["owner"]["password"] = Value::Null;
    let created = create_business(&t, &admin, body)
        .await
        .expect(StatusCode::CREATED);
    let id = created["id"].as_str().unwrap();

    let payload: Value = one(
        &t,
        &format!("SELECT payload FROM outbox_messages WHERE business_id = '{id}' AND payload->>'template' = 'welcome_owner'"),
    )
    .await;
    let token = payload["password_setup_token"]
        .as_str()
        .expect("the welcome email carries a set-up link");
    let pending: i64 = one(
        &t,
        "SELECT count(*) FROM password_setup_tokens s JOIN users u ON u.id = s.user_id \
         WHERE u.email = 'owner@no-password.test' AND s.used_at IS NULL AND u.password_hash IS NULL",
    )
    .await;
    assert_eq!(pending, 1);

    let setup = json!({"token": token, "password": PASSWORD});
    let reply = t
        .send(
            Method::POST,
            "/api/v1/auth/password/setup",
            None,
            Some(setup),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "body: {}", reply.body);
    let tokens = owner_login(&t, "no-password").await.expect(StatusCode::OK);
    assert_eq!(tokens["principal"]["business_id"], id);
}

#[tokio::test]
async fn an_existing_team_member_can_own_a_second_business() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let (first, _) = t.business(&admin, "first-shop", "starter").await;
    let users = one::<i64>(&t, "SELECT count(*) FROM users").await;

    let mut body = onboarding("second-shop", "starter");
    body["owner"]["email"] = json!("Owner@First-Shop.test");
    body["owner"]["password"] = json!("a different password");
    let created = create_business(&t, &admin, body)
        .await
        .expect(StatusCode::CREATED);
    let second = created["id"].as_str().unwrap();
    assert_eq!(
        one::<i64>(&t, "SELECT count(*) FROM users").await,
        users,
        "the account is reused"
    );

    // The existing password still signs in, to either business.
    let login =
        json!({"email": "owner@first-shop.test", "password": PASSWORD, "business_id": second});
    let tokens = t
        .send(Method::POST, LOGIN, None, Some(login))
        .await
        .expect(StatusCode::OK);
    assert_eq!(tokens["principal"]["business_id"], second);
    assert_eq!(tokens["principal"]["role"], "owner");
    let businesses: BTreeSet<&str> = tokens["principal"]["memberships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["business_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        businesses,
        BTreeSet::from([first.to_string().as_str(), second])
    );
}

#[tokio::test]
async fn a_failed_onboarding_leaves_nothing_behind() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    register_driver(&t, "dee@late-fail.test").await;
    let before = row_counts(&t, ONBOARDING_TABLES).await;

    // Fails late: the business, storefront, subscription and roles are written before the owner
    // account turns out to be a driver's.
    let mut body = onboarding("late-fail", "starter");
    body["owner"]["email"] = json!("dee@late-fail.test");
    let reply = create_business(&t, &admin, body).await;
    reply.expect_problem(StatusCode::CONFLICT, "email_taken");
    assert_eq!(
        field_errors(&reply.body),
        [("owner.email".to_owned(), "taken".to_owned())]
    );
    assert_eq!(row_counts(&t, ONBOARDING_TABLES).await, before);

    // Fails on the plan.
    let reply = create_business(&t, &admin, onboarding("late-fail", "platinum")).await;
    assert_invalid(&reply, &[("plan", "unknown_plan")]);
    assert_eq!(row_counts(&t, ONBOARDING_TABLES).await, before);

    // The subdomain was not left reserved.
    create_business(&t, &admin, onboarding("late-fail", "starter"))
        .await
        .expect(StatusCode::CREATED);
}

#[tokio::test]
async fn subdomain_rules_hold_through_the_api() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let cases = [
        ("CornerCafe", "invalid_characters"),
        ("ab", "invalid_length"),
        ("-cafe", "invalid_hyphen"),
        ("www", "reserved"),
        ("api", "reserved"),
        ("admin", "reserved"),
    ];
    for (subdomain, code) in cases {
        let reply = create_business(&t, &admin, onboarding(subdomain, "starter")).await;
        assert_invalid(&reply, &[("subdomain", code)]);
    }

    create_business(&t, &admin, onboarding("corner-cafe", "starter"))
        .await
        .expect(StatusCode::CREATED);
    let mut again = onboarding("corner-cafe", "growth");
    again["owner"]["email"] = json!("someone@else.test");
    let reply = create_business(&t, &admin, again).await;
    reply.expect_problem(StatusCode::CONFLICT, "subdomain_taken");
    assert_eq!(
        field_errors(&reply.body),
        [("subdomain".to_owned(), "taken".to_owned())]
    );

    // Every broken rule is reported in one answer.
    let mut body = onboarding("-bad", "starter");
    body["name"] = json!("  ");
    body["contact_email"] = json!("not-an-email");
    body["currency"] = json!("EURO");
    body["delivery_radius_m"] = json!(5);
    body["owner"]["password"] = json!("short");
    body["categories"] = json!(["Mains", "mains"]);
    let reply = create_business(&t, &admin, body).await;
    reply.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let fields: BTreeSet<String> = field_errors(&reply.body)
        .into_iter()
        .map(|(f, _)| f)
        .collect();
    let expected: BTreeSet<String> = [
        "name",
        "contact_email",
        "currency",
        "delivery_radius_m",
        "owner.password",
        "categories[1]",
        "subdomain",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(fields, expected, "body: {}", reply.body);
    assert_eq!(one::<i64>(&t, "SELECT count(*) FROM businesses").await, 1);
}

#[tokio::test]
async fn the_business_list_pages_filters_and_searches() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let mut created = Vec::new();
    for subdomain in [
        "alpha-pizza",
        "beta-pizza",
        "gamma-sushi",
        "delta-sushi",
        "omega-tacos",
    ] {
        let body = create_business(&t, &admin, onboarding(subdomain, "starter"))
            .await
            .expect(StatusCode::CREATED);
        created.push(body["id"].as_str().unwrap().to_owned());
    }

    // Three pages of at most two, newest first, each business once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &cursor {
            Some(c) => format!("limit=2&cursor={c}"),
            None => "limit=2".to_owned(),
        };
        let page = list(&t, &admin, &query).await.expect(StatusCode::OK);
        pages += 1;
        assert!(page_ids(&page).len() <= 2, "{page}");
        seen.extend(page_ids(&page));
        match page.get("next_cursor").and_then(Value::as_str) {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(pages, 3);
    let newest_first: Vec<String> = created.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first);

    // Filters.
    let suspended = Uuid::parse_str(&created[2]).unwrap();
    patch_business(&t, &admin, suspended, json!({"status": "suspended"}))
        .await
        .expect(StatusCode::OK);
    let page = list(&t, &admin, "status=suspended")
        .await
        .expect(StatusCode::OK);
    assert_eq!(page_ids(&page), [created[2].clone()]);
    assert_eq!(
        page_ids(
            &list(&t, &admin, "status=active")
                .await
                .expect(StatusCode::OK)
        )
        .len(),
        4
    );
    let page = list(&t, &admin, "q=sushi").await.expect(StatusCode::OK);
    assert_eq!(page_ids(&page), [created[3].clone(), created[2].clone()]);
    let page = list(&t, &admin, "q=STORE%20OMEGA")
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        page_ids(&page),
        [created[4].clone()],
        "search is case-insensitive and covers names"
    );
    let page = list(&t, &admin, "q=%25").await.expect(StatusCode::OK);
    assert!(
        page_ids(&page).is_empty(),
        "% is a literal, not a wildcard: {page}"
    );

    // Bad queries.
    assert_invalid(
        &list(&t, &admin, "cursor=not-a-cursor").await,
        &[("cursor", "invalid")],
    );
    assert_invalid(
        &list(&t, &admin, "limit=0").await,
        &[("limit", "out_of_range")],
    );
    assert_invalid(
        &list(&t, &admin, "limit=101").await,
        &[("limit", "out_of_range")],
    );
    for query in ["limit=ten", "status=closed", "sort=name"] {
        list(&t, &admin, query)
            .await
            .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    }
}

#[tokio::test]
async fn suspending_locks_the_business_out_until_it_is_reactivated() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let (id, owner) = t.business(&admin, "night-owl", "starter").await;
    t.send(Method::GET, STOREFRONT, Some(&owner), None)
        .await
        .expect(StatusCode::OK);

    let view = patch_business(&t, &admin, id, json!({"status": "suspended"}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(view["status"], "suspended");
    t.send(Method::GET, STOREFRONT, Some(&owner), None)
        .await
        .expect_problem(StatusCode::FORBIDDEN, "business_suspended");
    let login = owner_login(&t, "night-owl").await;
    login.expect_problem(StatusCode::FORBIDDEN, "business_suspended");
    assert!(login.body.get("access_token").is_none());

    let view = patch_business(&t, &admin, id, json!({"status": "active"}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(view["status"], "active");
    t.send(Method::GET, STOREFRONT, Some(&owner), None)
        .await
        .expect(StatusCode::OK);
    owner_login(&t, "night-owl").await.expect(StatusCode::OK);

    patch_business(&t, &admin, Uuid::new_v4(), json!({"status": "suspended"}))
        .await
        .expect_problem(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn patching_a_business_changes_details_and_plan_within_limits() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let (id, owner) = t.business(&admin, "growing-shop", "starter").await;
    let starter_bps: i32 = sqlx::query_scalar(
        "SELECT platform_fee_bps FROM business_subscriptions WHERE business_id = $1",
    )
    .bind(id)
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(starter_bps, 500, "onboarding copies the plan's fee rate");

    let details = json!({
        "name": "Growing Shop Oy", "contact_phone": "+358 40 765 4321",
        "time_zone": "Europe/Stockholm", "delivery_radius_m": 2500,
    });
    let view = patch_business(&t, &admin, id, details)
        .await
        .expect(StatusCode::OK);
    assert_eq!(view["name"], "Growing Shop Oy");
    assert_eq!(view["contact_phone"], "+358407654321");
    assert_eq!(
        view["contact_email"], "hello@growing-shop.test",
        "absent fields are kept"
    );
    assert_eq!(view["time_zone"], "Europe/Stockholm");
    assert_eq!(view["delivery_radius_m"], 2500);
    let reply = patch_business(
        &t,
        &admin,
        id,
        json!({"time_zone": "Mars/Base", "delivery_radius_m": 1}),
    )
    .await;
    assert_invalid(
        &reply,
        &[
            ("time_zone", "invalid_time_zone"),
            ("delivery_radius_m", "out_of_range"),
        ],
    );

    let view = patch_business(&t, &admin, id, json!({"plan": "growth"}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(view["subscription"]["plan"], "growth");
    assert_eq!(view["subscription"]["status"], "trial");
    let entitled: (String, Value, Value) = sqlx::query_as(&format!(
        "SELECT p.plan_key, s.usage_limits, s.features_enabled FROM business_subscriptions s \
         JOIN subscription_plans p ON p.id = s.plan_id WHERE s.business_id = '{id}' AND s.status <> 'canceled'"
    ))
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(entitled.0, "growth");
    assert_eq!(entitled.1["staff_seats"], 10);
    assert_eq!(entitled.2["custom_domain"], true);
    // The platform fee rate is copied like the limits: starter 5 %, growth 4 %.
    let fee_bps = || async {
        sqlx::query_scalar::<_, i32>(
            "SELECT platform_fee_bps FROM business_subscriptions WHERE business_id = $1 AND status <> 'canceled'",
        )
        .bind(id)
        .fetch_one(&t.db.pools.owner)
        .await
        .unwrap()
    };
    assert_eq!(fee_bps().await, 400);
    patch_business(&t, &admin, id, json!({"billing_interval": "yearly"}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        fee_bps().await,
        400,
        "a change without a plan keeps the rate"
    );

    // Four members do not fit the starter plan's three seats; nothing of the update is kept.
    for n in 1..=3 {
        add_staff(&t, &owner, &format!("member{n}@growing-shop.test"))
            .await
            .expect(StatusCode::CREATED);
    }
    let reply = patch_business(
        &t,
        &admin,
        id,
        json!({"name": "Renamed", "plan": "starter"}),
    )
    .await;
    reply.expect_problem(StatusCode::FORBIDDEN, "plan_limit_reached");
    let view = t
        .send(
            Method::GET,
            &format!("{BUSINESSES}/{id}"),
            Some(&admin),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(view["subscription"]["plan"], "growth");
    assert_eq!(view["name"], "Growing Shop Oy");

    let reply = patch_business(&t, &admin, id, json!({"plan": "no-such-plan"})).await;
    assert_invalid(&reply, &[("plan", "unknown_plan")]);
    let view = patch_business(
        &t,
        &admin,
        id,
        json!({"plan": "professional", "billing_interval": "yearly"}),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(view["subscription"]["plan"], "professional");
    assert_eq!(view["subscription"]["billing_interval"], "yearly");
}

#[tokio::test]
async fn plans_can_be_created_read_changed_and_deleted() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let new_plan = json!({
        "key": "boutique", "name": "Boutique", "currency": "EUR",
        "price_monthly_minor": 4900, "price_yearly_minor": 49000,
        "features": {"custom_domain": true}, "limits": {"staff_seats": 5},
    });
    let created = t
        .send(Method::POST, PLANS, Some(&admin), Some(new_plan.clone()))
        .await
        .expect(StatusCode::CREATED);
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["key"], "boutique");
    assert_eq!(
        created["price_monthly"],
        json!({"minor": 4900, "currency": "EUR"})
    );
    assert_eq!(created["features"]["custom_domain"], true);
    assert_eq!(created["limits"]["staff_seats"], 5);
    assert_eq!(created["is_active"], true);

    let reply = t
        .send(Method::POST, PLANS, Some(&admin), Some(new_plan))
        .await;
    reply.expect_problem(StatusCode::CONFLICT, "conflict");
    let plan = format!("{PLANS}/{id}");
    assert_eq!(
        t.send(Method::GET, &plan, Some(&admin), None)
            .await
            .expect(StatusCode::OK),
        created
    );
    let all = t
        .send(Method::GET, PLANS, Some(&admin), None)
        .await
        .expect(StatusCode::OK);
    let keys: BTreeSet<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "boutique",
            "starter",
            "growth",
            "professional",
            "enterprise"
        ])
    );

    let change = json!({
        "name": "Boutique Plus", "price_monthly_minor": 5900, "price_yearly_minor": 59000,
        "limits": {"staff_seats": 6}, "is_active": false,
    });
    let changed = t
        .send(Method::PATCH, &plan, Some(&admin), Some(change))
        .await
        .expect(StatusCode::OK);
    assert_eq!(changed["name"], "Boutique Plus");
    assert_eq!(changed["price_monthly"]["minor"], 5900);
    assert_eq!(changed["price_yearly"]["minor"], 59000);
    assert_eq!(changed["limits"]["staff_seats"], 6);
    assert_eq!(
        changed["features"]["custom_domain"], true,
        "absent fields are kept"
    );
    assert_eq!(changed["is_active"], false);
    assert_eq!(
        t.send(Method::GET, &plan, Some(&admin), None)
            .await
            .expect(StatusCode::OK),
        changed
    );

    // An inactive plan cannot be chosen.
    let reply = create_business(&t, &admin, onboarding("boutique-one", "boutique")).await;
    assert_invalid(&reply, &[("plan", "unknown_plan")]);
    t.send(
        Method::PATCH,
        &plan,
        Some(&admin),
        Some(json!({"is_active": true})),
    )
    .await
    .expect(StatusCode::OK);
    create_business(&t, &admin, onboarding("boutique-one", "boutique"))
        .await
        .expect(StatusCode::CREATED);

    // A plan in use cannot be deleted; an unused one can.
    t.send(Method::DELETE, &plan, Some(&admin), None)
        .await
        .expect_problem(StatusCode::CONFLICT, "conflict");
    let unused = json!({"key": "pop-up", "name": "Pop-up", "currency": "EUR", "price_monthly_minor": 0, "price_yearly_minor": 0});
    let unused = t
        .send(Method::POST, PLANS, Some(&admin), Some(unused))
        .await
        .expect(StatusCode::CREATED);
    let unused = format!("{PLANS}/{}", unused["id"].as_str().unwrap());
    let reply = t.send(Method::DELETE, &unused, Some(&admin), None).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    t.send(Method::GET, &unused, Some(&admin), None)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "not_found");
    t.send(Method::DELETE, &unused, Some(&admin), None)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "not_found");

    // Bad plans are refused field by field.
    let bad = json!({"key": "Bad Key", "name": "", "currency": "EUR", "price_monthly_minor": -1, "price_yearly_minor": 0});
    let reply = t.send(Method::POST, PLANS, Some(&admin), Some(bad)).await;
    assert_invalid(
        &reply,
        &[
            ("key", "invalid_slug"),
            ("name", "required"),
            ("price_monthly_minor", "out_of_range"),
        ],
    );
}

#[tokio::test]
async fn plan_platform_fees_are_read_set_and_validated() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let all = t
        .send(Method::GET, PLANS, Some(&admin), None)
        .await
        .expect(StatusCode::OK);
    let fee_of = |key: &str| {
        all.as_array()
            .unwrap()
            .iter()
            .find(|p| p["key"] == key)
            .map(|p| p["platform_fee_bps"].clone())
            .unwrap()
    };
    assert_eq!(fee_of("starter"), 500);
    assert_eq!(fee_of("enterprise"), 200);

    let plan = |key: &str, fee: Option<i64>| {
        let mut body = json!({"key": key, "name": key, "currency": "EUR",
                              "price_monthly_minor": 100, "price_yearly_minor": 1000});
        if let Some(fee) = fee {
            body["platform_fee_bps"] = json!(fee);
        }
        body
    };
    let defaulted = t
        .send(Method::POST, PLANS, Some(&admin), Some(plan("plain", None)))
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(defaulted["platform_fee_bps"], 500, "the starter rate");
    let created = t
        .send(
            Method::POST,
            PLANS,
            Some(&admin),
            Some(plan("cheap", Some(250))),
        )
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(created["platform_fee_bps"], 250);
    let path = format!("{PLANS}/{}", created["id"].as_str().unwrap());

    // Out of range (0 to 10,000 basis points): refused, nothing stored or changed.
    for bad in [-1, 10_001, i64::MAX] {
        let reply = t
            .send(
                Method::POST,
                PLANS,
                Some(&admin),
                Some(plan("bad", Some(bad))),
            )
            .await;
        assert_invalid(&reply, &[("platform_fee_bps", "out_of_range")]);
        let reply = t
            .send(
                Method::PATCH,
                &path,
                Some(&admin),
                Some(json!({"platform_fee_bps": bad})),
            )
            .await;
        assert_invalid(&reply, &[("platform_fee_bps", "out_of_range")]);
    }
    let bad: i64 = one(
        &t,
        "SELECT count(*) FROM subscription_plans WHERE plan_key = 'bad'",
    )
    .await;
    assert_eq!(bad, 0);

    let changed = t
        .send(
            Method::PATCH,
            &path,
            Some(&admin),
            Some(json!({"platform_fee_bps": 0})),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(changed["platform_fee_bps"], 0);
    assert_eq!(
        t.send(Method::GET, &path, Some(&admin), None)
            .await
            .expect(StatusCode::OK)["platform_fee_bps"],
        0
    );
    // A new subscription gets the plan's rate.
    let (business, _) = t.business(&admin, "fee-free", "cheap").await;
    let rate: i32 = one(
        &t,
        &format!(
            "SELECT platform_fee_bps FROM business_subscriptions WHERE business_id = '{business}'"
        ),
    )
    .await;
    assert_eq!(rate, 0);
}

#[tokio::test]
async fn plan_limits_bound_seats_roles_and_domains() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let (_, owner) = t.business(&admin, "small-shop", "starter").await;

    // Starter: three seats, the owner's included.
    add_staff(&t, &owner, "first@small-shop.test")
        .await
        .expect(StatusCode::CREATED);
    add_staff(&t, &owner, "second@small-shop.test")
        .await
        .expect(StatusCode::CREATED);
    let tables = [
        "users",
        "memberships",
        "password_setup_tokens",
        "outbox_messages",
    ];
    let before = row_counts(&t, &tables).await;
    add_staff(&t, &owner, "third@small-shop.test")
        .await
        .expect_problem(StatusCode::FORBIDDEN, "plan_limit_reached");
    assert_eq!(row_counts(&t, &tables).await, before);
    let third: i64 = one(
        &t,
        "SELECT count(*) FROM users WHERE email = 'third@small-shop.test'",
    )
    .await;
    assert_eq!(third, 0);

    // Starter: no custom roles, no custom domain.
    let role = json!({"key": "baker", "name": "Baker", "permissions": ["catalog.read"]});
    t.send(Method::POST, ROLES, Some(&owner), Some(role.clone()))
        .await
        .expect_problem(StatusCode::FORBIDDEN, "plan_limit_reached");
    let domain = json!({"custom_domain": "shop.example.com"});
    t.send(
        Method::PATCH,
        STOREFRONT,
        Some(&owner),
        Some(domain.clone()),
    )
    .await
    .expect_problem(StatusCode::FORBIDDEN, "plan_limit_reached");
    assert_eq!(
        one::<i64>(&t, "SELECT count(*) FROM roles WHERE NOT is_builtin").await,
        0
    );
    let domains: i64 = one(
        &t,
        "SELECT count(*) FROM business_storefront_settings WHERE custom_domain IS NOT NULL",
    )
    .await;
    assert_eq!(domains, 0);

    // Growth: a custom domain, unique across businesses; up to three custom roles.
    let (_, big) = t.business(&admin, "big-shop", "growth").await;
    let storefront = t
        .send(Method::PATCH, STOREFRONT, Some(&big), Some(domain.clone()))
        .await
        .expect(StatusCode::OK);
    assert_eq!(storefront["custom_domain"], "shop.example.com");
    assert_eq!(storefront["url"], "https://shop.example.com/");
    let (_, other) = t.business(&admin, "other-shop", "growth").await;
    for taken in ["shop.example.com", "Shop.Example.COM."] {
        let reply = t
            .send(
                Method::PATCH,
                STOREFRONT,
                Some(&other),
                Some(json!({"custom_domain": taken})),
            )
            .await;
        reply.expect_problem(StatusCode::CONFLICT, "domain_taken");
        assert_eq!(
            field_errors(&reply.body),
            [("custom_domain".to_owned(), "taken".to_owned())]
        );
    }
    // The platform's own domain is not a store's to claim.
    for platform in ["fleetfront.test", "big-shop.fleetfront.test"] {
        let reply = t
            .send(
                Method::PATCH,
                STOREFRONT,
                Some(&other),
                Some(json!({"custom_domain": platform})),
            )
            .await;
        reply.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(
            field_errors(&reply.body),
            [("custom_domain".to_owned(), "platform_domain".to_owned())]
        );
    }
    for key in ["baker", "driver-lead", "cashier"] {
        let role = json!({"key": key, "name": key, "permissions": ["catalog.read"]});
        t.send(Method::POST, ROLES, Some(&big), Some(role))
            .await
            .expect(StatusCode::CREATED);
    }
    let fourth = json!({"key": "fourth", "name": "Fourth", "permissions": ["catalog.read"]});
    t.send(Method::POST, ROLES, Some(&big), Some(fourth))
        .await
        .expect_problem(StatusCode::FORBIDDEN, "plan_limit_reached");
}

#[tokio::test]
async fn platform_metrics_count_what_exists() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    t.business(&admin, "metric-one", "starter").await;
    let (_, two) = t.business(&admin, "metric-two", "growth").await;
    let (three, _) = t.business(&admin, "metric-three", "starter").await;
    patch_business(&t, &admin, three, json!({"status": "suspended"}))
        .await
        .expect(StatusCode::OK);
    add_staff(&t, &two, "member@metric-two.test")
        .await
        .expect(StatusCode::CREATED);
    register_driver(&t, "dee@drivers.test").await;
    t.send(
        Method::PATCH,
        STOREFRONT,
        Some(&two),
        Some(json!({"is_published": true})),
    )
    .await
    .expect(StatusCode::OK);
    let customer = json!({"store": "metric-two", "email": "cy@customers.test", "password": PASSWORD, "full_name": "Cy"});
    t.send(
        Method::POST,
        "/api/v1/auth/customer/register",
        None,
        Some(customer),
    )
    .await
    .expect(StatusCode::CREATED);

    let metrics = t
        .send(Method::GET, METRICS, Some(&admin), None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        metrics,
        json!({
            "businesses_total": 3,
            "businesses_active": 2,
            "businesses_suspended": 1,
            "businesses_by_plan": {"growth": 1, "starter": 2},
            "subscriptions_by_status": {"trial": 3},
            "staff_accounts": 4,
            "driver_accounts": 1,
            "customers": 1,
            "storefronts_published": 1,
        })
    );
}

#[tokio::test]
async fn storefront_changes_are_validated_and_null_clears() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let (_, owner) = t.business(&admin, "paint-shop", "starter").await;
    let original = t
        .send(Method::GET, STOREFRONT, Some(&owner), None)
        .await
        .expect(StatusCode::OK);
    let colors = |primary: &str, text: &str| json!({"primary": primary, "accent": "#ff7a00", "background": "#ffffff", "text": text});

    let patch = |body: Value| t.send(Method::PATCH, STOREFRONT, Some(&owner), Some(body));
    assert_invalid(
        &patch(json!({"theme_colors": colors("blue", "#1a1a1a")})).await,
        &[("theme_colors.primary", "invalid_color")],
    );
    assert_invalid(
        &patch(json!({"theme_colors": colors("#0b5fff", "#eeeeee")})).await,
        &[("theme_colors.text", "low_contrast")],
    );
    assert_invalid(
        &patch(json!({"operating_hours": {"monday": [{"open": "25:00", "close": "26:00"}]}})).await,
        &[("operating_hours", "invalid_time")],
    );
    assert_invalid(
        &patch(json!({"operating_hours": {"friday": [{"open": "09:00", "close": "09:00"}]}})).await,
        &[("operating_hours", "empty_interval")],
    );
    let everything = json!({
        "theme_colors": colors("#12345", "#ffffff"),
        "operating_hours": {"sunday": [{"open": "9", "close": "17:00"}]},
        "logo_url": "ftp://example.com/logo.png",
        "subdomain": "Paint",
    });
    let reply = patch(everything).await;
    reply.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let fields: BTreeSet<String> = field_errors(&reply.body)
        .into_iter()
        .map(|(f, _)| f)
        .collect();
    let expected: BTreeSet<String> = [
        "theme_colors.primary",
        "theme_colors.text",
        "operating_hours",
        "logo_url",
        "subdomain",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(fields, expected, "body: {}", reply.body);
    let unchanged = t
        .send(Method::GET, STOREFRONT, Some(&owner), None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(unchanged, original);

    // A value sets, an absent field keeps, `null` clears.
    let logo = "https://cdn.example.com/paint-shop/logo.png";
    let view = patch(json!({"logo_url": logo, "banner_url": "https://cdn.example.com/banner.png"}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(view["logo_url"], logo);
    let view = patch(json!({"is_published": true}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(view["logo_url"], logo);
    assert_eq!(view["is_published"], true);
    let view = patch(json!({"logo_url": null}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(view["logo_url"], Value::Null);
    assert_eq!(view["banner_url"], "https://cdn.example.com/banner.png");
    let stored: Option<String> = one(
        &t,
        "SELECT logo_url FROM business_storefront_settings WHERE subdomain = 'paint-shop'",
    )
    .await;
    assert_eq!(stored, None);

    // The subdomain can move, under the same rules as at onboarding.
    let view = patch(json!({"subdomain": "paint-studio"}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(view["url"], "https://paint-studio.fleetfront.test/");
    let (_, rival) = t.business(&admin, "rival-shop", "starter").await;
    let reply = t
        .send(
            Method::PATCH,
            STOREFRONT,
            Some(&rival),
            Some(json!({"subdomain": "paint-studio"})),
        )
        .await;
    reply.expect_problem(StatusCode::CONFLICT, "subdomain_taken");
    let reply = t
        .send(
            Method::PATCH,
            STOREFRONT,
            Some(&rival),
            Some(json!({"subdomain": "admin"})),
        )
        .await;
    assert_invalid(&reply, &[("subdomain", "reserved")]);
    // The old subdomain is free again.
    create_business(&t, &admin, onboarding("paint-shop", "starter"))
        .await
        .expect(StatusCode::CREATED);
}
