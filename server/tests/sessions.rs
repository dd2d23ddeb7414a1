//! Verified sessions are cached per server instance; a change made through one instance must
//! reach every other instance's cache at once (through PostgreSQL notifications), and the
//! instance that made it must never serve the old answer.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use common::{keys, TestApp, TestDb};
use fleetfront_server::db::Db;
use fleetfront_server::App;

/// A second server instance over the same database, with its own session cache and listener.
async fn second_instance(first: &TestApp) -> TestApp {
    let pools = first.db.reconnect().await;
    let app = App::new(
        Db::new(pools.app.clone()),
        keys(),
        "fleetfront.test".into(),
        false,
    );
    fleetfront_server::sessions::start_listener(pools.app.clone(), app.db.sessions.clone())
        .await
        .unwrap();
    let router = fleetfront_server::app(app.clone());
    TestApp {
        db: TestDb {
            name: first.db.name.clone(),
            pools,
        },
        app,
        router,
    }
}

const STOREFRONT: &str = "/api/v1/business/storefront";

/// Polls instance `two` with `token` until it answers `status` with `code` (within 5 s).
async fn until_refused(two: &TestApp, token: &str, status: StatusCode, code: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let reply = two.send(Method::GET, STOREFRONT, Some(token), None).await;
        if reply.status == status {
            reply.expect_problem(status, code);
            return;
        }
        assert!(
            Instant::now() < deadline,
            "instance two still answers {reply:?}, expected {code}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn sign_out_everywhere_reaches_another_instance_at_once() {
    let one = TestApp::new().await;
    let admin = one.admin_token().await;
    let (_, owner) = one.business(&admin, "two-tills", "growth").await;
    let two = second_instance(&one).await;

    // Instance two verifies and caches the owner's session.
    two.send(Method::GET, STOREFRONT, Some(&owner), None)
        .await
        .expect(StatusCode::OK);
    two.send(Method::GET, STOREFRONT, Some(&owner), None)
        .await
        .expect(StatusCode::OK);

    // The owner signs out everywhere through instance one, which refuses the old token at once.
    one.send(Method::POST, "/api/v1/auth/logout-all", Some(&owner), None)
        .await
        .expect(StatusCode::NO_CONTENT);
    one.send(Method::GET, STOREFRONT, Some(&owner), None)
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "session_revoked");

    // Instance two learns it from the notification, without waiting for its cache to expire.
    until_refused(&two, &owner, StatusCode::UNAUTHORIZED, "session_revoked").await;
}

#[tokio::test]
async fn suspension_reaches_another_instance() {
    let one = TestApp::new().await;
    let admin = one.admin_token().await;
    let (business, owner) = one.business(&admin, "far-away", "starter").await;
    let two = second_instance(&one).await;
    two.send(Method::GET, STOREFRONT, Some(&owner), None)
        .await
        .expect(StatusCode::OK);
    one.send(
        Method::PATCH,
        &format!("/api/v1/admin/businesses/{business}"),
        Some(&admin),
        Some(serde_json::json!({"status": "suspended"})),
    )
    .await
    .expect(StatusCode::OK);
    until_refused(&two, &owner, StatusCode::FORBIDDEN, "business_suspended").await;
}
