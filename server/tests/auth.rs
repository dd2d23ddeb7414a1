//! Authentication, end to end through the real router over a fresh database per test:
//! sign-in of every account kind, refresh-token rotation with reuse detection, logout,
//! login throttling, rejection (and auditing) of tampered tokens, session revocation on a role
//! change, PINs and elevated tokens, business switching, customer accounts per store, and
//! one-time password set-up links.
//!
//! Tokens are forged with the test app's own signing secret, so a forged token is rejected only
//! for the one thing each case changes: the unchanged forgery is shown to be accepted first.

#![allow(clippy::unwrap_used)]

mod common;

use axum::http::{header, Method, StatusCode};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{Duration, Utc};
use common::{TestApp, PASSWORD, SIGNING_SECRET};
use fleetfront_domain::auth::{TokenType, ACCESS_TOKEN_SECS};
use fleetfront_domain::permission::AccountKind;
use fleetfront_server::auth::TokenSpec;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use uuid::Uuid;

const LOGIN: &str = "/api/v1/auth/login";
const REFRESH: &str = "/api/v1/auth/refresh";
const ME: &str = "/api/v1/auth/me";
const PIN: &str = "/api/v1/auth/pin";
const PIN_VERIFY: &str = "/api/v1/auth/pin/verify";
const ELEVATION: &str = "x-fleetfront-elevation";

// Helpers ---------------------------------------------------------------------------------------

/// The access and refresh tokens of a token response.
#[track_caller]
fn pair(tokens: &Value) -> (String, String) {
    let access = tokens["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();
    let refresh = tokens["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_owned();
    (access, refresh)
}

/// The claims of a JWT, decoded without verification.
#[track_caller]
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT has three parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url payload"))
        .expect("JSON claims")
}

/// Signs `claims` with HS256 and `secret`.
fn forge(claims: &Value, secret: &[u8]) -> String {
    forge_with(Algorithm::HS256, claims, secret)
}

/// Signs `claims` with `alg` and `secret`.
fn forge_with(alg: Algorithm, claims: &Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(secret)).unwrap()
}

/// An unsigned token (`alg: none`).
fn unsigned(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    format!("{header}.{}.", URL_SAFE_NO_PAD.encode(claims.to_string()))
}

/// `claims` with `key` set to `value` (or removed when `value` is `None`).
fn with(claims: &Value, key: &str, value: Option<Value>) -> Value {
    let mut claims = claims.clone();
    let object = claims.as_object_mut().unwrap();
    match value {
        Some(value) => object.insert(key.to_owned(), value),
        None => object.remove(key),
    };
    claims
}

fn uuid_of(value: &Value) -> Uuid {
    Uuid::parse_str(value.as_str().expect("a uuid string")).unwrap()
}

fn owner_email(subdomain: &str) -> String {
    format!("owner@{subdomain}.test")
}

async fn login(t: &TestApp, email: &str, password: &str) -> common::Reply {
    t.send(
        Method::POST,
        LOGIN,
        None,
        Some(json!({"email": email, "password": password})),
    )
    .await
}

async fn login_to(t: &TestApp, email: &str, business: Uuid) -> common::Reply {
    t.send(
        Method::POST,
        LOGIN,
        None,
        Some(json!({"email": email, "password": PASSWORD, "business_id": business})),
    )
    .await
}

async fn refresh(t: &TestApp, refresh_token: &str) -> common::Reply {
    t.send(
        Method::POST,
        REFRESH,
        None,
        Some(json!({"refresh_token": refresh_token})),
    )
    .await
}

async fn me(t: &TestApp, access: &str) -> common::Reply {
    t.send(Method::GET, ME, Some(access), None).await
}

/// Onboards a business and returns (id, owner token response).
async fn business(t: &TestApp, admin: &str, subdomain: &str) -> (Uuid, Value) {
    let (id, _) = t.business(admin, subdomain, "growth").await;
    let tokens = login(t, &owner_email(subdomain), PASSWORD)
        .await
        .expect(StatusCode::OK);
    (id, tokens)
}

/// Adds a team member with the common password; returns their user id.
async fn add_staff(t: &TestApp, owner: &str, email: &str, role: &str) -> Uuid {
    let body =
        json!({"email": email, "full_name": "Team Member", "role": role, "password": PASSWORD});
    let added = t
        .send(
            Method::POST,
            "/api/v1/business/staff",
            Some(owner),
            Some(body),
        )
        .await
        .expect(StatusCode::CREATED);
    uuid_of(&added["user_id"])
}

/// Invites a team member without a password; returns the set-up token from their email.
async fn invite(t: &TestApp, owner: &str, business_id: Uuid, email: &str) -> String {
    let body = json!({"email": email, "full_name": "Ivy Invitee", "role": "staff"});
    t.send(
        Method::POST,
        "/api/v1/business/staff",
        Some(owner),
        Some(body),
    )
    .await
    .expect(StatusCode::CREATED);
    sqlx::query_scalar(
        "SELECT payload->>'password_setup_token' FROM outbox_messages WHERE business_id = $1 \
         AND payload->>'template' = 'staff_invitation' AND payload->>'to' = $2",
    )
    .bind(business_id)
    .bind(email)
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap()
}

async fn set_pin(t: &TestApp, access: &str, pin: &str, password: &str) -> common::Reply {
    t.send(
        Method::PUT,
        PIN,
        Some(access),
        Some(json!({"pin": pin, "password": password})),
    )
    .await
}

async fn verify_pin(t: &TestApp, access: &str, pin: &str, action: &str) -> common::Reply {
    t.send(
        Method::POST,
        PIN_VERIFY,
        Some(access),
        Some(json!({"pin": pin, "action": action})),
    )
    .await
}

/// An elevated token for `action`, confirmed with `pin`.
async fn elevate(t: &TestApp, access: &str, pin: &str, action: &str) -> String {
    let body = verify_pin(t, access, pin, action)
        .await
        .expect(StatusCode::OK);
    assert_eq!(body["action"], action);
    body["elevated_token"].as_str().unwrap().to_owned()
}

async fn change_role(
    t: &TestApp,
    owner: &str,
    user: Uuid,
    role: &str,
    elevated: Option<&str>,
) -> common::Reply {
    let headers: Vec<(&str, &str)> = elevated.map(|e| (ELEVATION, e)).into_iter().collect();
    let path = format!("/api/v1/business/staff/{user}");
    t.send_with(
        Method::PATCH,
        &path,
        Some(owner),
        Some(json!({"role": role})),
        &headers,
    )
    .await
}

async fn publish(t: &TestApp, owner: &str) {
    t.send(
        Method::PATCH,
        "/api/v1/business/storefront",
        Some(owner),
        Some(json!({"is_published": true})),
    )
    .await
    .expect(StatusCode::OK);
}

async fn customer_register(t: &TestApp, store: &str, email: &str) -> common::Reply {
    let body = json!({
        "store": store, "email": email, "password": PASSWORD, "full_name": "Casey Customer"
    });
    t.send(
        Method::POST,
        "/api/v1/auth/customer/register",
        None,
        Some(body),
    )
    .await
}

// Sign-in ---------------------------------------------------------------------------------------

#[tokio::test]
async fn login_signs_in_admins_staff_and_drivers() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let who = me(&t, &admin).await.expect(StatusCode::OK);
    assert_eq!(who["kind"], "admin");
    assert_eq!(who["business_id"], Value::Null);

    let (business, _) = t.business(&admin, "login-shop", "starter").await;
    let owner = login(&t, &owner_email("login-shop"), PASSWORD)
        .await
        .expect(StatusCode::OK);
    assert_eq!(owner["token_type"], "Bearer");
    assert_eq!(owner["principal"]["kind"], "staff");
    assert_eq!(uuid_of(&owner["principal"]["business_id"]), business);
    assert_eq!(owner["principal"]["role"], "owner");
    let claims = claims_of(owner["access_token"].as_str().unwrap());
    assert_eq!(claims["typ"], "access");
    assert_eq!(uuid_of(&claims["business_id"]), business);

    let driver = json!({
        "email": "Dana@Drivers.test", "password": PASSWORD,
        "full_name": "Dana Driver", "phone": "+358401234567"
    });
    let registered = t
        .send(
            Method::POST,
            "/api/v1/auth/driver/register",
            None,
            Some(driver),
        )
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(registered["principal"]["kind"], "driver");
    let signed_in = login(&t, "dana@drivers.test", PASSWORD)
        .await
        .expect(StatusCode::OK);
    assert_eq!(signed_in["principal"]["kind"], "driver");
    assert_eq!(signed_in["principal"]["id"], registered["principal"]["id"]);
    assert_eq!(
        claims_of(signed_in["access_token"].as_str().unwrap())["business_id"],
        Value::Null
    );
    // A new driver is pending approval: signed in (to finish onboarding), not yet approved.
    let me = me(&t, signed_in["access_token"].as_str().unwrap())
        .await
        .expect(StatusCode::OK);
    assert_eq!(me["kind"], "driver");
    assert_eq!(me["email"], "dana@drivers.test");
}

#[tokio::test]
async fn login_refuses_wrong_passwords_unknown_emails_and_suspended_accounts() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    t.business(&admin, "refuse-shop", "starter").await;
    let email = owner_email("refuse-shop");

    let wrong = login(&t, &email, "not the password").await;
    wrong.expect_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
    let unknown = login(&t, "nobody@refuse-shop.test", PASSWORD).await;
    unknown.expect_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
    assert_eq!(
        wrong.body["detail"], unknown.body["detail"],
        "an unknown email must look like a wrong password"
    );

    let (access, refresh_token) = pair(&login(&t, &email, PASSWORD).await.expect(StatusCode::OK));
    sqlx::query("UPDATE users SET status = 'suspended' WHERE email = $1")
        .bind(&email)
        .execute(&t.db.pools.owner)
        .await
        .unwrap();
    login(&t, &email, PASSWORD)
        .await
        .expect_problem(StatusCode::FORBIDDEN, "account_inactive");
    me(&t, &access)
        .await
        .expect_problem(StatusCode::FORBIDDEN, "account_inactive");
    refresh(&t, &refresh_token)
        .await
        .expect_problem(StatusCode::FORBIDDEN, "account_inactive");
    // A suspended account's wrong password is still just a wrong password.
    login(&t, &email, "not the password")
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
}

// Refresh and logout ----------------------------------------------------------------------------

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_whole_family() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let (_, first) = business(&t, &admin, "rotate-shop").await;
    let (_, other_login) = pair(
        &login(&t, &owner_email("rotate-shop"), PASSWORD)
            .await
            .expect(StatusCode::OK),
    );
    let (access1, refresh1) = pair(&first);

    let second = refresh(&t, &refresh1).await.expect(StatusCode::OK);
    let (access2, refresh2) = pair(&second);
    assert_ne!(access1, access2);
    assert_ne!(refresh1, refresh2);
    assert!(refresh2.starts_with("ffr_"), "{refresh2}");
    assert_eq!(second["principal"]["role"], "owner");
    me(&t, &access2).await.expect(StatusCode::OK);

    // The spent token comes back: someone holds a copy, so the whole login ends.
    refresh(&t, &refresh1)
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "invalid_refresh_token");
    refresh(&t, &refresh2)
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "invalid_refresh_token");
    // Other logins of the same account are not affected.
    refresh(&t, &other_login).await.expect(StatusCode::OK);
    refresh(&t, "ffr_not-a-token")
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "invalid_refresh_token");
}

#[tokio::test]
async fn logout_ends_one_login_and_logout_all_ends_every_session() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let (_, tokens) = business(&t, &admin, "logout-shop").await;
    let email = owner_email("logout-shop");

    let (_, spent) = pair(&tokens);
    let (_, kept) = pair(&refresh(&t, &spent).await.expect(StatusCode::OK));
    t.send(
        Method::POST,
        "/api/v1/auth/logout",
        None,
        Some(json!({"refresh_token": spent})),
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    refresh(&t, &kept)
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "invalid_refresh_token");

    let (phone_access, phone_refresh) =
        pair(&login(&t, &email, PASSWORD).await.expect(StatusCode::OK));
    let (laptop_access, laptop_refresh) =
        pair(&login(&t, &email, PASSWORD).await.expect(StatusCode::OK));
    me(&t, &laptop_access).await.expect(StatusCode::OK);
    t.send(
        Method::POST,
        "/api/v1/auth/logout-all",
        Some(&phone_access),
        None,
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    for access in [&phone_access, &laptop_access] {
        me(&t, access)
            .await
            .expect_problem(StatusCode::UNAUTHORIZED, "session_revoked");
    }
    for refresh_token in [&phone_refresh, &laptop_refresh] {
        refresh(&t, refresh_token)
            .await
            .expect_problem(StatusCode::UNAUTHORIZED, "invalid_refresh_token");
    }
    let (fresh, _) = pair(&login(&t, &email, PASSWORD).await.expect(StatusCode::OK));
    me(&t, &fresh).await.expect(StatusCode::OK);
}

// Throttling ------------------------------------------------------------------------------------

#[tokio::test]
async fn account_throttle_refuses_even_the_right_password_until_the_window_ends() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    t.business(&admin, "throttle-shop", "starter").await;
    let email = owner_email("throttle-shop");
    for _ in 0..5 {
        login(&t, &email, "not the password")
            .await
            .expect_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
    let body = json!({"email": email, "password": PASSWORD});
    let (reply, headers) = t
        .send_for_headers(Method::POST, LOGIN, None, Some(body))
        .await;
    reply.expect_problem(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
    let retry_after: i64 = headers
        .get(header::RETRY_AFTER)
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=900).contains(&retry_after),
        "Retry-After: {retry_after}"
    );
    assert_eq!(reply.body["retry_after"], retry_after);
    // Another account from the same address is not locked out by this one.
    login(&t, "someone-else@throttle-shop.test", "x")
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");

    t.app.clock.advance(901);
    login(&t, &email, PASSWORD).await.expect(StatusCode::OK);
    // Success clears the account's failures: one more mistake is just a mistake.
    login(&t, &email, "not the password")
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
    login(&t, &email, PASSWORD).await.expect(StatusCode::OK);
}

#[tokio::test]
async fn address_throttle_spans_accounts() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    t.business(&admin, "address-shop", "starter").await;
    for i in 0..30 {
        login(
            &t,
            &format!("guess-{i}@address-shop.test"),
            "not the password",
        )
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
    let refused = login(&t, &owner_email("address-shop"), PASSWORD).await;
    refused.expect_problem(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
    assert!(refused.body["retry_after"].as_i64().unwrap() > 0);
    t.app.clock.advance(901);
    login(&t, &owner_email("address-shop"), PASSWORD)
        .await
        .expect(StatusCode::OK);
}

// Tampered tokens -------------------------------------------------------------------------------

#[tokio::test]
async fn tampered_tokens_are_rejected_and_audited() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let (_, tokens) = business(&t, &admin, "tamper-shop").await;
    let (staff_access, staff_refresh) = pair(&tokens);
    let claims = claims_of(&admin);

    // The forging machinery makes tokens the server accepts: each case below changes one thing.
    me(&t, &forge(&claims, SIGNING_SECRET))
        .await
        .expect(StatusCode::OK);
    me(&t, &forge(&claims_of(&staff_access), SIGNING_SECRET))
        .await
        .expect(StatusCode::OK);

    let spec = TokenSpec {
        sub: uuid_of(&claims["sub"]),
        kind: AccountKind::Admin,
        business_id: None,
        role: None,
        session_version: claims["sv"].as_i64().unwrap(),
    };
    let hour_ago = Utc::now() - Duration::hours(1);
    let now = Utc::now().timestamp();
    let staff_claims = claims_of(&staff_access);
    let cases: Vec<(&str, String, &str)> = vec![
        ("alg none", unsigned(&claims), "unauthenticated"),
        (
            "wrong key",
            forge(&claims, b"another-secret-that-is-also-long-enough!"),
            "unauthenticated",
        ),
        (
            "HS512 with the right key",
            forge_with(Algorithm::HS512, &claims, SIGNING_SECRET),
            "unauthenticated",
        ),
        (
            "expired",
            common::keys().sign(&spec, TokenType::Access, None, hour_ago, ACCESS_TOKEN_SECS),
            "token_expired",
        ),
        (
            "expired, forged",
            forge(
                &with(&claims, "exp", Some(json!(now - 600))),
                SIGNING_SECRET,
            ),
            "token_expired",
        ),
        (
            "wrong audience",
            forge(
                &with(&claims, "aud", Some(json!("other-api"))),
                SIGNING_SECRET,
            ),
            "unauthenticated",
        ),
        (
            "wrong issuer",
            forge(&with(&claims, "iss", Some(json!("evil"))), SIGNING_SECRET),
            "unauthenticated",
        ),
        (
            "no exp",
            forge(&with(&claims, "exp", None), SIGNING_SECRET),
            "unauthenticated",
        ),
        (
            "no aud",
            forge(&with(&claims, "aud", None), SIGNING_SECRET),
            "unauthenticated",
        ),
        (
            "elevated as access",
            common::keys().sign(&spec, TokenType::Elevated, None, Utc::now(), 300),
            "unauthenticated",
        ),
        (
            "sv as a string",
            forge(&with(&claims, "sv", Some(json!("1"))), SIGNING_SECRET),
            "unauthenticated",
        ),
        (
            "business_id as a number",
            forge(
                &with(&staff_claims, "business_id", Some(json!(42))),
                SIGNING_SECRET,
            ),
            "unauthenticated",
        ),
        (
            "unknown kind",
            forge(
                &with(&claims, "kind", Some(json!("superuser"))),
                SIGNING_SECRET,
            ),
            "unauthenticated",
        ),
        (
            "unknown extra claim",
            forge(&with(&claims, "admin", Some(json!(true))), SIGNING_SECRET),
            "unauthenticated",
        ),
        (
            "refresh token as bearer",
            staff_refresh.clone(),
            "unauthenticated",
        ),
        (
            "truncated",
            admin[..admin.len() - 4].to_owned(),
            "unauthenticated",
        ),
        ("garbage", "not.a.jwt".to_owned(), "unauthenticated"),
    ];
    for (case, token, code) in &cases {
        let reply = me(&t, token).await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{case}: {}",
            reply.body
        );
        assert_eq!(reply.code(), *code, "{case}: {}", reply.body);
    }
    // The scheme is required, not guessed.
    let no_scheme = t
        .send_with(Method::GET, ME, None, None, &[("authorization", &admin)])
        .await;
    no_scheme.expect_problem(StatusCode::UNAUTHORIZED, "unauthenticated");

    let mut audited: Vec<String> = sqlx::query_scalar(
        "SELECT details->>'code' FROM platform_audit_log \
         WHERE outcome = 'denied' AND action = 'GET /api/v1/auth/me' AND actor_kind = 'anonymous'",
    )
    .fetch_all(&t.db.pools.owner)
    .await
    .unwrap();
    let mut expected: Vec<String> = cases
        .iter()
        .map(|(_, _, code)| (*code).to_owned())
        .collect();
    expected.push("unauthenticated".to_owned());
    audited.sort();
    expected.sort();
    assert_eq!(audited, expected, "one denied audit row per rejected token");
}

#[tokio::test]
async fn a_demoted_members_old_token_is_revoked_and_refresh_carries_the_new_role() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let (business_id, tokens) = business(&t, &admin, "demote-shop").await;
    let (owner, _) = pair(&tokens);
    let manager_id = add_staff(&t, &owner, "manager@demote-shop.test", "manager").await;
    let manager = login(&t, "manager@demote-shop.test", PASSWORD)
        .await
        .expect(StatusCode::OK);
    let (manager_access, manager_refresh) = pair(&manager);
    assert_eq!(claims_of(&manager_access)["role"], "manager");
    t.send(
        Method::GET,
        "/api/v1/business/staff",
        Some(&manager_access),
        None,
    )
    .await
    .expect(StatusCode::OK);

    set_pin(&t, &owner, "2580", PASSWORD)
        .await
        .expect(StatusCode::NO_CONTENT);
    let elevated = elevate(&t, &owner, "2580", "role_change").await;
    let changed = change_role(&t, &owner, manager_id, "staff", Some(&elevated))
        .await
        .expect(StatusCode::OK);
    assert_eq!(changed["role"], "staff");

    me(&t, &manager_access)
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "session_revoked");
    t.send(
        Method::GET,
        "/api/v1/business/staff",
        Some(&manager_access),
        None,
    )
    .await
    .expect_problem(StatusCode::UNAUTHORIZED, "session_revoked");

    let renewed = refresh(&t, &manager_refresh).await.expect(StatusCode::OK);
    let (access, _) = pair(&renewed);
    let claims = claims_of(&access);
    assert_eq!(claims["role"], "staff");
    assert_eq!(uuid_of(&claims["business_id"]), business_id);
    assert_eq!(renewed["principal"]["role"], "staff");
    assert_eq!(
        me(&t, &access).await.expect(StatusCode::OK)["role"],
        "staff"
    );
    // The new role's permissions apply: the staff role may not see the team.
    t.send(Method::GET, "/api/v1/business/staff", Some(&access), None)
        .await
        .expect_problem(StatusCode::FORBIDDEN, "forbidden");
}

// PINs and elevation ----------------------------------------------------------------------------

#[tokio::test]
async fn pin_lock_survives_a_restart_until_the_pin_is_set_again() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let (_, tokens) = business(&t, &admin, "pin-shop").await;
    let (owner, _) = pair(&tokens);

    verify_pin(&t, &owner, "2580", "refund")
        .await
        .expect_problem(StatusCode::CONFLICT, "pin_not_set");
    set_pin(&t, &owner, "2580", "not the password")
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
    set_pin(&t, &owner, "2580", PASSWORD)
        .await
        .expect(StatusCode::NO_CONTENT);
    elevate(&t, &owner, "2580", "refund").await;

    for _ in 0..4 {
        verify_pin(&t, &owner, "9999", "refund")
            .await
            .expect_problem(StatusCode::UNAUTHORIZED, "invalid_pin");
    }
    verify_pin(&t, &owner, "9999", "refund")
        .await
        .expect_problem(StatusCode::LOCKED, "pin_locked");
    verify_pin(&t, &owner, "2580", "refund")
        .await
        .expect_problem(StatusCode::LOCKED, "pin_locked");

    let t = t.restart().await;
    verify_pin(&t, &owner, "2580", "refund")
        .await
        .expect_problem(StatusCode::LOCKED, "pin_locked");

    set_pin(&t, &owner, "2580", PASSWORD)
        .await
        .expect(StatusCode::NO_CONTENT);
    elevate(&t, &owner, "2580", "refund").await;
    // The failure count starts over too.
    verify_pin(&t, &owner, "9999", "refund")
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "invalid_pin");
}

#[tokio::test]
async fn weak_pins_are_refused() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let (_, tokens) = business(&t, &admin, "weak-pin-shop").await;
    let (owner, _) = pair(&tokens);
    for weak in ["1234", "0000", "9876"] {
        let reply = set_pin(&t, &owner, weak, PASSWORD).await;
        reply.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(reply.body["errors"][0]["field"], "pin", "{}", reply.body);
        assert_eq!(
            reply.body["errors"][0]["code"], "weak_pin",
            "{}",
            reply.body
        );
    }
    set_pin(&t, &owner, "12a4", PASSWORD)
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    verify_pin(&t, &owner, "1234", "refund")
        .await
        .expect_problem(StatusCode::CONFLICT, "pin_not_set");
}

#[tokio::test]
async fn role_change_needs_an_elevated_token_for_that_action() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let (_, tokens) = business(&t, &admin, "elevate-shop").await;
    let (owner, _) = pair(&tokens);
    let member = add_staff(&t, &owner, "member@elevate-shop.test", "staff").await;
    set_pin(&t, &owner, "2580", PASSWORD)
        .await
        .expect(StatusCode::NO_CONTENT);

    change_role(&t, &owner, member, "dispatcher", None)
        .await
        .expect_problem(StatusCode::FORBIDDEN, "elevation_required");
    let refund = elevate(&t, &owner, "2580", "refund").await;
    change_role(&t, &owner, member, "dispatcher", Some(&refund))
        .await
        .expect_problem(StatusCode::FORBIDDEN, "elevation_required");
    // An access token is not an elevated token.
    change_role(&t, &owner, member, "dispatcher", Some(&owner))
        .await
        .expect_problem(StatusCode::FORBIDDEN, "elevation_required");
    // Another account's elevated token does not count either.
    let (member_access, _) = pair(
        &login(&t, "member@elevate-shop.test", PASSWORD)
            .await
            .expect(StatusCode::OK),
    );
    set_pin(&t, &member_access, "3691", PASSWORD)
        .await
        .expect(StatusCode::NO_CONTENT);
    let members = elevate(&t, &member_access, "3691", "role_change").await;
    change_role(&t, &owner, member, "dispatcher", Some(&members))
        .await
        .expect_problem(StatusCode::FORBIDDEN, "elevation_required");

    let role_change = elevate(&t, &owner, "2580", "role_change").await;
    assert_eq!(claims_of(&role_change)["typ"], "elevated");
    let changed = change_role(&t, &owner, member, "dispatcher", Some(&role_change))
        .await
        .expect(StatusCode::OK);
    assert_eq!(changed["role"], "dispatcher");
    let business_id = uuid_of(&tokens["principal"]["business_id"]);
    let refused: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE business_id = $1 AND outcome = 'denied' \
         AND details->>'code' = 'elevation_required'",
    )
    .bind(business_id)
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(refused, 4, "every refused role change is audited");
    let confirmations: Vec<String> = sqlx::query_scalar(
        "SELECT resource_id FROM audit_log WHERE business_id = $1 \
         AND action = 'auth.pin.verify' AND actor_id = $2 ORDER BY occurred_at",
    )
    .bind(business_id)
    .bind(uuid_of(&tokens["principal"]["id"]))
    .fetch_all(&t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(
        confirmations,
        ["refund", "role_change"],
        "PIN confirmations land in the business's log"
    );
    // An elevated token cannot be used as an access token.
    me(&t, &role_change)
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
}

// Business switching ----------------------------------------------------------------------------

#[tokio::test]
async fn staff_switch_only_between_their_own_businesses() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let (a, _) = business(&t, &admin, "alpha-shop").await;
    let (b, b_tokens) = business(&t, &admin, "bravo-shop").await;
    let (c, _) = business(&t, &admin, "charlie-shop").await;
    let email = owner_email("alpha-shop");
    let (b_owner, _) = pair(&b_tokens);
    add_staff(&t, &b_owner, &email, "manager").await;

    let in_b = login_to(&t, &email, b).await.expect(StatusCode::OK);
    let (b_access, _) = pair(&in_b);
    assert_eq!(uuid_of(&claims_of(&b_access)["business_id"]), b);
    assert_eq!(claims_of(&b_access)["role"], "manager");
    let who = me(&t, &b_access).await.expect(StatusCode::OK);
    assert_eq!(uuid_of(&who["business_id"]), b);
    assert_eq!(who["role"], "manager");
    let mut memberships: Vec<(Uuid, String)> = who["memberships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                uuid_of(&m["business_id"]),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    memberships.sort();
    let mut expected = vec![(a, "owner".to_owned()), (b, "manager".to_owned())];
    expected.sort();
    assert_eq!(memberships, expected);

    let switched = t
        .send(
            Method::POST,
            "/api/v1/auth/switch-business",
            Some(&b_access),
            Some(json!({"business_id": a})),
        )
        .await
        .expect(StatusCode::OK);
    let (a_access, _) = pair(&switched);
    assert_eq!(uuid_of(&claims_of(&a_access)["business_id"]), a);
    assert_eq!(claims_of(&a_access)["role"], "owner");
    assert_eq!(
        uuid_of(&me(&t, &a_access).await.expect(StatusCode::OK)["business_id"]),
        a
    );

    t.send(
        Method::POST,
        "/api/v1/auth/switch-business",
        Some(&a_access),
        Some(json!({"business_id": c})),
    )
    .await
    .expect_problem(StatusCode::FORBIDDEN, "forbidden");
    login_to(&t, &email, c)
        .await
        .expect_problem(StatusCode::FORBIDDEN, "forbidden");
    // Admins have no business to switch to.
    t.send(
        Method::POST,
        "/api/v1/auth/switch-business",
        Some(&admin),
        Some(json!({"business_id": a})),
    )
    .await
    .expect_problem(StatusCode::FORBIDDEN, "forbidden");
}

// Customers -------------------------------------------------------------------------------------

#[tokio::test]
async fn customers_register_per_store_and_rotate_store_scoped_tokens() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let (one, one_tokens) = business(&t, &admin, "shop-one").await;
    let (two, two_tokens) = business(&t, &admin, "shop-two").await;
    business(&t, &admin, "shop-hidden").await;
    publish(&t, &pair(&one_tokens).0).await;
    publish(&t, &pair(&two_tokens).0).await;
    let email = "casey@customers.test";

    let registered = customer_register(&t, "shop-one", email)
        .await
        .expect(StatusCode::CREATED);
    let (access, refresh_token) = pair(&registered);
    assert!(
        refresh_token.starts_with(&format!("ffc_{}_", one.simple())),
        "{refresh_token}"
    );
    assert_eq!(registered["principal"]["kind"], "customer");
    let who = me(&t, &access).await.expect(StatusCode::OK);
    assert_eq!(who["kind"], "customer");
    assert_eq!(uuid_of(&who["business_id"]), one);

    let body = |password: &str| json!({"store": "shop-one", "email": email, "password": password});
    t.send(
        Method::POST,
        "/api/v1/auth/customer/login",
        None,
        Some(body(PASSWORD)),
    )
    .await
    .expect(StatusCode::OK);
    t.send(
        Method::POST,
        "/api/v1/auth/customer/login",
        None,
        Some(body("not the password")),
    )
    .await
    .expect_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");

    let customer_refresh = |token: &str| json!({"refresh_token": token});
    let rotated = t
        .send(
            Method::POST,
            "/api/v1/auth/customer/refresh",
            None,
            Some(customer_refresh(&refresh_token)),
        )
        .await
        .expect(StatusCode::OK);
    let (_, next) = pair(&rotated);
    assert!(next.starts_with("ffc_") && next != refresh_token, "{next}");
    t.send(
        Method::POST,
        "/api/v1/auth/customer/refresh",
        None,
        Some(customer_refresh(&refresh_token)),
    )
    .await
    .expect_problem(StatusCode::UNAUTHORIZED, "invalid_refresh_token");
    t.send(
        Method::POST,
        "/api/v1/auth/customer/refresh",
        None,
        Some(customer_refresh(&next)),
    )
    .await
    .expect_problem(StatusCode::UNAUTHORIZED, "invalid_refresh_token");
    // A customer refresh token is not a platform refresh token.
    refresh(&t, &next)
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "invalid_refresh_token");

    let (access, refresh_token) = pair(
        &t.send(
            Method::POST,
            "/api/v1/auth/customer/login",
            None,
            Some(body(PASSWORD)),
        )
        .await
        .expect(StatusCode::OK),
    );
    t.send(Method::POST, "/api/v1/auth/logout-all", Some(&access), None)
        .await
        .expect(StatusCode::NO_CONTENT);
    me(&t, &access)
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "session_revoked");
    t.send(
        Method::POST,
        "/api/v1/auth/customer/refresh",
        None,
        Some(customer_refresh(&refresh_token)),
    )
    .await
    .expect_problem(StatusCode::UNAUTHORIZED, "invalid_refresh_token");

    customer_register(&t, "shop-one", email)
        .await
        .expect_problem(StatusCode::CONFLICT, "email_taken");
    let elsewhere = customer_register(&t, "shop-two", email)
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(uuid_of(&elsewhere["principal"]["business_id"]), two);
    assert_ne!(elsewhere["principal"]["id"], registered["principal"]["id"]);
    customer_register(&t, "shop-hidden", email)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "not_found");
    customer_register(&t, "shop-nowhere", email)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "not_found");
}

// Password set-up -------------------------------------------------------------------------------

#[tokio::test]
async fn a_password_setup_token_works_exactly_once() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let mut body = common::onboarding("setup-shop", "starter");
    body["owner"].as_object_mut().unwrap().remove("password");
    let created = t
        .send(
            Method::POST,
            "/api/v1/admin/businesses",
            Some(&admin),
            Some(body),
        )
        .await
        .expect(StatusCode::CREATED);
    let business_id = uuid_of(&created["id"]);
    let token: String = sqlx::query_scalar(
        "SELECT payload->>'password_setup_token' FROM outbox_messages \
         WHERE business_id = $1 AND payload->>'template' = 'welcome_owner'",
    )
    .bind(business_id)
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap();
    let email = owner_email("setup-shop");
    login(&t, &email, PASSWORD)
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");

    let setup = |password: &str| json!({"token": token, "password": password});
    let path = "/api/v1/auth/password/setup";
    t.send(Method::POST, path, None, Some(setup("short")))
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    t.send(Method::POST, path, None, Some(setup("my chosen password")))
        .await
        .expect(StatusCode::NO_CONTENT);
    let tokens = login(&t, &email, "my chosen password")
        .await
        .expect(StatusCode::OK);
    assert_eq!(uuid_of(&tokens["principal"]["business_id"]), business_id);

    let again = t
        .send(
            Method::POST,
            path,
            None,
            Some(setup("someone elses password")),
        )
        .await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED, "{}", again.body);
    login(&t, &email, "someone elses password")
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
    login(&t, &email, "my chosen password")
        .await
        .expect(StatusCode::OK);
    let unknown = t
        .send(
            Method::POST,
            path,
            None,
            Some(json!({"token": "made-up", "password": "my chosen password"})),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED, "{}", unknown.body);
}

#[tokio::test]
async fn an_invited_team_member_chooses_a_password_with_the_invitation_link() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let (business_id, tokens) = business(&t, &admin, "invite-shop").await;
    let (owner, _) = pair(&tokens);
    let prompt = invite(&t, &owner, business_id, "invitee@invite-shop.test").await;
    let late = invite(&t, &owner, business_id, "late@invite-shop.test").await;

    let path = "/api/v1/auth/password/setup";
    let setup = json!({"token": prompt, "password": "invitee password"});
    t.send(Method::POST, path, None, Some(setup.clone()))
        .await
        .expect(StatusCode::NO_CONTENT);
    let signed_in = login(&t, "invitee@invite-shop.test", "invitee password")
        .await
        .expect(StatusCode::OK);
    assert_eq!(signed_in["principal"]["role"], "staff");
    assert_eq!(
        t.send(Method::POST, path, None, Some(setup)).await.status,
        StatusCode::UNAUTHORIZED
    );

    // Links expire after seven days.
    t.app.clock.advance(7 * 24 * 3600 + 1);
    let expired = t
        .send(
            Method::POST,
            path,
            None,
            Some(json!({"token": late, "password": "late password"})),
        )
        .await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED, "{}", expired.body);
}
