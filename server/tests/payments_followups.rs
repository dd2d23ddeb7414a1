//! Payments follow-ups end to end, through the HTTP router on real PostgreSQL against the local
//! Stripe stand-in: 3-D Secure orders (awaiting payment, confirmed by the client or by the
//! webhook, abandoned ones expired), payment effects retried from durable jobs with their
//! idempotency keys (across a restart), the platform fee of a capture learned only by webhook,
//! and saved payment methods.

#![allow(clippy::unwrap_used)] // A failed unwrap in a test is a failed test.

mod common;
#[path = "support/stripe_standin.rs"]
mod stripe_standin;

use axum::http::{Method, StatusCode};
use chrono::{DateTime, Duration, Utc};
use common::{Reply, TestApp, PASSWORD};
use fleetfront_server::payments::jobs;
use fleetfront_server::payments::stripe::StripeGateway;
use fleetfront_server::payments::webhook::Stripe;
use serde_json::{json, Value};
use stripe_standin::{event, signed_event, StandIn, SECRET_KEY};
use uuid::Uuid;

const WEBHOOK_SECRET: &str = "whsec_followups_test_secret";
const THREE_DS: &str = "pm_card_threeDSecure2Required";

/// A published store (growth plan: 4 % fee) with one product (1250) and a tracked variant
/// (+250), Stripe configured against a stand-in.
struct Shop {
    t: TestApp,
    standin: StandIn,
    business: Uuid,
    owner: String,
    subdomain: String,
    product: Uuid,
    variant: Uuid,
}

fn configure(t: &TestApp, standin: &StandIn) {
    let gateway = StripeGateway::new(&standin.base_url, SECRET_KEY).unwrap();
    assert!(t.app.configure_stripe(Stripe::new(gateway, WEBHOOK_SECRET)));
}

async fn shop(subdomain: &str) -> Shop {
    let standin = StandIn::start().await;
    let t = TestApp::new().await;
    configure(&t, &standin);
    let (business, owner) = t.open_store(subdomain, "growth").await;
    let (product, variant) = t
        .product_with_variant(
            &owner,
            json!({
                "sku": "SOUP", "name": "Soup", "price_minor": 1250, "is_published": true,
                "variants": [{"name": "Large", "sku": "SOUP-L", "price_adjustment_minor": 250, "stock_quantity": 10}]
            }),
        )
        .await;
    Shop {
        t,
        standin,
        business,
        owner,
        subdomain: subdomain.to_owned(),
        product,
        variant,
    }
}

impl Shop {
    async fn customer(&self, email: &str) -> String {
        self.t
            .send(
                Method::POST,
                "/api/v1/auth/customer/register",
                None,
                Some(json!({"store": self.subdomain, "email": email, "password": PASSWORD, "full_name": "Ann Customer"})),
            )
            .await
            .expect(StatusCode::CREATED)["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// A pickup order of one large soup (15.00) paid with `payment`.
    fn order(&self, payment: Value) -> Value {
        json!({
            "items": [{"product_id": self.product, "variant_id": self.variant, "quantity": 1}],
            "fulfilment": {"kind": "pickup"},
            "payment": payment,
            "expected_total_minor": 1500,
        })
    }

    fn card(&self, token: &str) -> Value {
        self.order(json!({"method": "card", "token": token}))
    }

    async fn place(&self, token: &str, key: &str, body: Value) -> Reply {
        self.t
            .send_with(
                Method::POST,
                "/api/v1/orders",
                Some(token),
                Some(body),
                &[("Idempotency-Key", key)],
            )
            .await
    }

    async fn place_guest(&self, key: &str, mut body: Value) -> Reply {
        body["store"] = json!(self.subdomain);
        body["email"] = json!("guest@example.test");
        body["phone"] = json!("+358401234567");
        self.t
            .send_with(
                Method::POST,
                "/api/v1/customers/guest-checkout",
                None,
                Some(body),
                &[("Idempotency-Key", key)],
            )
            .await
    }

    async fn work(&self, order: &str, event: Value) -> Value {
        self.t
            .send(
                Method::PATCH,
                &format!("/api/v1/business/orders/{order}"),
                Some(&self.owner),
                Some(event),
            )
            .await
            .expect(StatusCode::OK)
    }

    /// Accepted and marked ready: the next step (`pick_up`) captures.
    async fn ready(&self, order: &str) {
        self.work(order, json!({"type": "accept", "prep_time": 10}))
            .await;
        self.work(order, json!({"type": "mark_ready"})).await;
    }

    async fn confirm(&self, order: &str, token: Option<&str>, query: &str) -> Reply {
        self.t
            .send(
                Method::POST,
                &format!("/api/v1/orders/{order}/payment/confirm{query}"),
                token,
                None,
            )
            .await
    }

    async fn scalar<T>(&self, sql: &str, order: &str) -> T
    where
        T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + Unpin,
    {
        sqlx::query_scalar(sql)
            .bind(self.business)
            .bind(order.parse::<Uuid>().unwrap())
            .fetch_one(&self.t.db.pools.owner)
            .await
            .unwrap()
    }

    async fn stock(&self) -> i32 {
        sqlx::query_scalar(
            "SELECT stock_quantity FROM product_variants WHERE business_id = $1 AND id = $2",
        )
        .bind(self.business)
        .bind(self.variant)
        .fetch_one(&self.t.db.pools.owner)
        .await
        .unwrap()
    }

    async fn reference(&self, order: &str) -> String {
        self.scalar(
            "SELECT payment_reference FROM orders WHERE business_id = $1 AND id = $2",
            order,
        )
        .await
    }

    async fn row(&self, order: &str) -> (String, String) {
        sqlx::query_as(
            "SELECT status, payment_status FROM orders WHERE business_id = $1 AND id = $2",
        )
        .bind(self.business)
        .bind(order.parse::<Uuid>().unwrap())
        .fetch_one(&self.t.db.pools.owner)
        .await
        .unwrap()
    }

    async fn ledger(&self, order: &str) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT status FROM payment_transactions WHERE business_id = $1 AND order_id = $2 ORDER BY created_at",
        )
        .bind(self.business)
        .bind(order.parse::<Uuid>().unwrap())
        .fetch_all(&self.t.db.pools.owner)
        .await
        .unwrap()
    }

    async fn fees(&self, order: &str) -> Vec<(i64, i32, i64)> {
        sqlx::query_as(
            "SELECT base_amount_minor, fee_bps, fee_amount_minor FROM platform_fees \
             WHERE business_id = $1 AND order_id = $2",
        )
        .bind(self.business)
        .bind(order.parse::<Uuid>().unwrap())
        .fetch_all(&self.t.db.pools.owner)
        .await
        .unwrap()
    }

    /// The order's confirmation email: (held back, due now, dropped).
    async fn confirmation_email(&self, order: &str) -> (bool, bool, bool) {
        sqlx::query_as(
            "SELECT next_attempt_at = 'infinity', next_attempt_at <= now(), failed_at IS NOT NULL FROM outbox_messages \
             WHERE business_id = $1 AND payload->>'template' = 'order_confirmation' AND payload->>'order_id' = $2::text",
        )
        .bind(self.business)
        .bind(order.parse::<Uuid>().unwrap())
        .fetch_one(&self.t.db.pools.owner)
        .await
        .unwrap()
    }

    async fn history_count(&self, order: &str, event: &str) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM order_status_history WHERE business_id = $1 AND order_id = $2 AND event = $3",
        )
        .bind(self.business)
        .bind(order.parse::<Uuid>().unwrap())
        .bind(event)
        .fetch_one(&self.t.db.pools.owner)
        .await
        .unwrap()
    }

    async fn board_ids(&self) -> Vec<String> {
        let page = self
            .t
            .send(
                Method::GET,
                "/api/v1/business/orders",
                Some(&self.owner),
                None,
            )
            .await
            .expect(StatusCode::OK);
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_owned())
            .collect()
    }

    async fn webhook(&self, event: &Value) -> Reply {
        let now = self.t.app.clock.now().timestamp();
        let (body, signature) = signed_event(WEBHOOK_SECRET, now, event);
        let request = axum::http::Request::builder()
            .method(Method::POST)
            .uri("/api/v1/webhooks/stripe")
            .header("content-type", "application/json; charset=utf-8")
            .header("stripe-signature", signature)
            .body(axum::body::Body::from(body))
            .unwrap();
        self.t.raw(request).await
    }

    /// The capture job of an order: (attempts, completed, failed, last error).
    async fn capture_job(&self, order: &str) -> (i32, bool, bool, Option<String>) {
        sqlx::query_as(
            "SELECT attempts, completed_at IS NOT NULL, failed_at IS NOT NULL, last_error FROM payment_jobs \
             WHERE business_id = $1 AND order_id = $2 AND effect = 'capture'",
        )
        .bind(self.business)
        .bind(order.parse::<Uuid>().unwrap())
        .fetch_one(&self.t.db.pools.owner)
        .await
        .unwrap()
    }
}

// 3-D Secure ------------------------------------------------------------------------------------

#[tokio::test]
async fn a_three_d_secure_order_waits_for_the_customer_and_reaches_the_business_once_paid() {
    let s = shop("threeds").await;
    let ann = s.customer("ann@example.test").await;
    let placed = s.place(&ann, "3ds-1", s.card(THREE_DS)).await;
    let order = placed.expect(StatusCode::CREATED);
    let id = order["id"].as_str().unwrap().to_owned();
    assert_eq!(order["status"], "awaiting_payment");
    assert_eq!(order["payment_status"], "requires_action");
    let action = &order["payment_action"];
    let intent = s.reference(&id).await;
    assert_eq!(action["payment_intent"], intent.as_str());
    assert!(action["client_secret"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{intent}_secret_")));
    assert_eq!(action["next_action"], "use_stripe_sdk");
    let placed_at: DateTime<Utc> = order["placed_at"].as_str().unwrap().parse().unwrap();
    let expires: DateTime<Utc> = action["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(expires - placed_at, Duration::minutes(15));
    assert_eq!(s.standin.intent(&intent)["status"], "requires_action");
    // The stock is reserved, the ledger knows of a pending payment, the email is held back.
    assert_eq!(s.stock().await, 9);
    assert_eq!(s.ledger(&id).await, vec!["pending"]);
    assert_eq!(s.confirmation_email(&id).await, (true, false, false));

    // A retried checkout answers the same, with the same client secret; nothing new at Stripe.
    let again = s
        .place(&ann, "3ds-1", s.card(THREE_DS))
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(again, order);
    assert_eq!(s.standin.intents_created(), 1);

    // The business does not see it yet, and cannot act on it.
    assert!(!s.board_ids().await.contains(&id));
    s.t.send(
        Method::GET,
        &format!("/api/v1/business/orders/{id}"),
        Some(&s.owner),
        None,
    )
    .await
    .expect_problem(StatusCode::NOT_FOUND, "not_found");
    s.t.send(
        Method::PATCH,
        &format!("/api/v1/business/orders/{id}"),
        Some(&s.owner),
        Some(json!({"type": "accept", "prep_time": 10})),
    )
    .await
    .expect_problem(StatusCode::CONFLICT, "invalid_transition");
    // Nor may staff confirm the payment themselves.
    s.t.send(
        Method::PATCH,
        &format!("/api/v1/business/orders/{id}"),
        Some(&s.owner),
        Some(json!({"type": "confirm_payment"})),
    )
    .await
    .expect_problem(StatusCode::CONFLICT, "invalid_transition");

    // Confirming before the customer authenticated: 409, nothing changes.
    s.confirm(&id, Some(&ann), "")
        .await
        .expect_problem(StatusCode::CONFLICT, "payment_action_required");
    assert_eq!(s.row(&id).await.0, "awaiting_payment");
    // Not signed in, someone else's order, a wrong tracking token, a bad id: 4xx.
    s.confirm(&id, None, "")
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
    let bob = s.customer("bob@example.test").await;
    s.confirm(&id, Some(&bob), "")
        .await
        .expect_problem(StatusCode::NOT_FOUND, "not_found");
    s.confirm(&id, None, "?token=not-the-token")
        .await
        .expect_problem(StatusCode::NOT_FOUND, "not_found");
    let bad =
        s.t.send(
            Method::POST,
            "/api/v1/orders/not-a-uuid/payment/confirm",
            Some(&ann),
            None,
        )
        .await;
    assert!(bad.status.is_client_error(), "{bad:?}");

    // The customer passes the challenge in Stripe.js, then confirms: the order is the
    // business's now, with a fresh acceptance window.
    s.standin.complete_authentication(&intent);
    let confirmed = s.confirm(&id, Some(&ann), "").await.expect(StatusCode::OK);
    assert_eq!(confirmed["status"], "pending");
    assert_eq!(confirmed["payment_status"], "authorized");
    let deadline: DateTime<Utc> = confirmed["acceptance_deadline"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(deadline > s.t.app.clock.now());
    assert!(s.board_ids().await.contains(&id));
    assert_eq!(s.ledger(&id).await, vec!["authorized"]);
    assert_eq!(
        s.confirmation_email(&id).await,
        (false, true, false),
        "the confirmation is sent now"
    );
    // Confirming again (or the webhook arriving late) changes nothing.
    let again = s.confirm(&id, Some(&ann), "").await.expect(StatusCode::OK);
    assert_eq!(again["status"], "pending");
    let late = event(
        "evt_3ds_late",
        "payment_intent.amount_capturable_updated",
        0,
        s.standin.intent(&intent),
    );
    assert_eq!(
        s.webhook(&late).await.expect(StatusCode::OK)["outcome"],
        "processed"
    );
    assert_eq!(s.history_count(&id, "confirm_payment").await, 1);
    assert_eq!(s.row(&id).await, ("pending".into(), "authorized".into()));

    // From here it is an ordinary card order: collected, captured, fee booked.
    s.ready(&id).await;
    let collected = s.work(&id, json!({"type": "pick_up"})).await;
    assert_eq!(collected["payment_status"], "captured");
    assert_eq!(s.fees(&id).await, vec![(1500, 400, 60)]);

    // The customer may give up while the payment waits: cancelled at once, the stock given
    // back, the PaymentIntent canceled and the held confirmation dropped.
    let stock = s.stock().await;
    let second = s
        .place(&ann, "3ds-2", s.card(THREE_DS))
        .await
        .expect(StatusCode::CREATED);
    let second = second["id"].as_str().unwrap().to_owned();
    assert_eq!(s.stock().await, stock - 1);
    let cancelled =
        s.t.send(
            Method::POST,
            &format!("/api/v1/orders/{second}/cancel"),
            Some(&ann),
            Some(json!({"reason": "changed my mind"})),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(s.stock().await, stock);
    assert_eq!(s.row(&second).await.1, "released");
    assert_eq!(
        s.standin.intent(&s.reference(&second).await)["status"],
        "canceled"
    );
    assert!(s.confirmation_email(&second).await.2);
}

#[tokio::test]
async fn the_webhook_confirms_a_guest_order_and_abandoned_authentications_expire() {
    let s = shop("threeds-guest").await;
    // Confirmed by Stripe's webhook before the client comes back.
    let order = s
        .place_guest("guest-3ds-1", s.card(THREE_DS))
        .await
        .expect(StatusCode::CREATED);
    let id = order["id"].as_str().unwrap().to_owned();
    let token = order["tracking_token"].as_str().unwrap().to_owned();
    let intent = s.reference(&id).await;
    let authenticated = s.standin.complete_authentication(&intent);
    let evt = event(
        "evt_3ds_guest",
        "payment_intent.amount_capturable_updated",
        0,
        authenticated,
    );
    assert_eq!(
        s.webhook(&evt).await.expect(StatusCode::OK)["outcome"],
        "processed"
    );
    assert_eq!(s.row(&id).await, ("pending".into(), "authorized".into()));
    assert!(s.board_ids().await.contains(&id));
    // The guest's client confirms with the tracking token afterwards: the same answer.
    let confirmed = s
        .confirm(&id, None, &format!("?token={token}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(confirmed["status"], "pending");
    assert_eq!(s.history_count(&id, "confirm_payment").await, 1);
    // Accepted, so that its own acceptance window does not run out below.
    s.work(&id, json!({"type": "accept", "prep_time": 10}))
        .await;

    // A failed challenge: 402, the order still waits (another card may be tried).
    let failed = s
        .place_guest("guest-3ds-2", s.card(THREE_DS))
        .await
        .expect(StatusCode::CREATED);
    let failed_id = failed["id"].as_str().unwrap().to_owned();
    let failed_token = failed["tracking_token"].as_str().unwrap().to_owned();
    s.standin
        .fail_authentication(&s.reference(&failed_id).await);
    s.confirm(&failed_id, None, &format!("?token={failed_token}"))
        .await
        .expect_problem(StatusCode::PAYMENT_REQUIRED, "payment_declined");
    assert_eq!(s.row(&failed_id).await.0, "awaiting_payment");

    // Abandoned: after 15 minutes the order is cancelled, its stock given back, the
    // authorization released at Stripe and the held confirmation dropped.
    let abandoned = s
        .place_guest("guest-3ds-3", s.card(THREE_DS))
        .await
        .expect(StatusCode::CREATED);
    let abandoned_id = abandoned["id"].as_str().unwrap().to_owned();
    let abandoned_intent = s.reference(&abandoned_id).await;
    assert_eq!(s.stock().await, 7);
    let now = s.t.app.clock.now();
    assert_eq!(
        fleetfront_server::orders::run_due(&s.t.app, now + Duration::minutes(14))
            .await
            .unwrap(),
        0,
        "not before the deadline"
    );
    s.t.app.clock.advance(16 * 60);
    let expired = fleetfront_server::orders::run_due(&s.t.app, s.t.app.clock.now())
        .await
        .unwrap();
    assert_eq!(expired, 2, "the failed and the abandoned authentication");
    for id in [&failed_id, &abandoned_id] {
        assert_eq!(s.row(id).await, ("cancelled".into(), "released".into()));
        assert_eq!(s.ledger(id).await, vec!["canceled"]);
        assert!(s.confirmation_email(id).await.2, "never sent");
    }
    assert_eq!(s.standin.intent(&abandoned_intent)["status"], "canceled");
    assert_eq!(s.stock().await, 9, "both reservations given back");
    // The confirmed order was not touched.
    assert_eq!(s.row(&id).await.0, "confirmed");
}

// Payment jobs ----------------------------------------------------------------------------------

#[tokio::test]
async fn a_failing_capture_is_retried_from_its_job_until_it_succeeds_exactly_once() {
    let s = shop("retries").await;
    let ann = s.customer("ann@example.test").await;
    let order = s
        .place(&ann, "retry-1", s.card("pm_card_visa"))
        .await
        .expect(StatusCode::CREATED);
    let id = order["id"].as_str().unwrap().to_owned();
    let intent = s.reference(&id).await;
    let capture_path = format!("/v1/payment_intents/{intent}/capture");
    s.ready(&id).await;

    // Two 500s before Stripe does anything, then an answer lost after the capture happened.
    s.standin.fail_next_matching("/capture", 2);
    s.standin.lose_next_answers("/capture", 1);
    let collected = s.work(&id, json!({"type": "pick_up"})).await;
    assert_eq!(collected["status"], "picked_up", "the status change stands");
    assert_eq!(
        collected["payment_status"], "authorized",
        "not captured yet"
    );
    let (attempts, done, failed, error) = s.capture_job(&id).await;
    assert_eq!((attempts, done, failed), (1, false, false));
    assert!(error.unwrap().contains("unavailable"));
    assert!(s.fees(&id).await.is_empty());

    // Not due before its backoff.
    let now = s.t.app.clock.now();
    assert_eq!(jobs::run_due(&s.t.app, now).await.unwrap(), 0);
    assert_eq!(
        jobs::run_due(&s.t.app, now + Duration::minutes(5))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        jobs::run_due(&s.t.app, now + Duration::minutes(10))
            .await
            .unwrap(),
        1
    );
    assert_eq!(s.standin.charges(), 1, "the third attempt captured");
    assert_eq!(s.row(&id).await.1, "authorized", "but its answer was lost");

    // A restart loses nothing: the job is in the database.
    let Shop {
        t,
        standin,
        business,
        owner,
        subdomain,
        product,
        variant,
    } = s;
    let t = t.restart().await;
    configure(&t, &standin);
    let s = Shop {
        t,
        standin,
        business,
        owner,
        subdomain,
        product,
        variant,
    };
    assert_eq!(
        jobs::run_due(&s.t.app, now + Duration::hours(1))
            .await
            .unwrap(),
        1
    );
    let (attempts, done, failed, error) = s.capture_job(&id).await;
    assert_eq!((attempts, done, failed, error), (4, true, false, None));
    assert_eq!(s.row(&id).await, ("picked_up".into(), "captured".into()));
    assert_eq!(s.ledger(&id).await, vec!["completed"]);
    assert_eq!(s.fees(&id).await, vec![(1500, 400, 60)]);
    assert_eq!(s.standin.requests("POST", &capture_path), 4);
    assert_eq!(s.standin.charges(), 1, "one effective capture");
    assert_eq!(s.standin.intent(&intent)["amount_received"], 1500);
    // Nothing is left to do.
    assert_eq!(
        jobs::run_due(&s.t.app, now + Duration::days(1))
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn a_failing_release_is_retried_and_a_refused_effect_is_given_up() {
    let s = shop("releases").await;
    let ann = s.customer("ann@example.test").await;
    let order = s
        .place(&ann, "release-1", s.card("pm_card_visa"))
        .await
        .expect(StatusCode::CREATED);
    let id = order["id"].as_str().unwrap().to_owned();
    let intent = s.reference(&id).await;
    s.standin.fail_next_matching("/cancel", 1);
    let rejected = s
        .work(&id, json!({"type": "reject", "reason": "closing early"}))
        .await;
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(rejected["payment_status"], "authorized");
    let now = s.t.app.clock.now();
    assert_eq!(
        jobs::run_due(&s.t.app, now + Duration::minutes(1))
            .await
            .unwrap(),
        1
    );
    assert_eq!(s.row(&id).await.1, "released");
    assert_eq!(s.ledger(&id).await, vec!["canceled"]);
    assert_eq!(s.standin.intent(&intent)["status"], "canceled");

    // Captured behind our back (at Stripe's dashboard): our capture is refused for good, kept
    // for an operator, not retried forever.
    let other = s
        .place(&ann, "release-2", s.card("pm_card_visa"))
        .await
        .expect(StatusCode::CREATED);
    let other = other["id"].as_str().unwrap().to_owned();
    s.ready(&other).await;
    let other_intent = s.reference(&other).await;
    s.standin.fail_next_matching("/capture", 1);
    s.work(&other, json!({"type": "pick_up"})).await;
    sqlx::query("UPDATE payment_jobs SET gateway_payment_id = 'pi_unknown' WHERE business_id = $1 AND order_id = $2")
        .bind(s.business)
        .bind(other.parse::<Uuid>().unwrap())
        .execute(&s.t.db.pools.owner)
        .await
        .unwrap();
    assert_eq!(
        jobs::run_due(&s.t.app, now + Duration::hours(1))
            .await
            .unwrap(),
        1
    );
    let (attempts, done, failed, error) = s.capture_job(&other).await;
    assert_eq!((attempts, done, failed), (2, false, true));
    assert!(error.unwrap().contains("resource_missing"));
    assert_eq!(
        s.standin.intent(&other_intent)["status"],
        "requires_capture"
    );
    assert_eq!(
        jobs::run_due(&s.t.app, now + Duration::days(2))
            .await
            .unwrap(),
        0
    );
}

// Fees learned by webhook -----------------------------------------------------------------------

#[tokio::test]
async fn a_capture_learned_only_by_webhook_books_the_fee_once() {
    let s = shop("webhook-fee").await;
    let ann = s.customer("ann@example.test").await;
    let order = s
        .place(&ann, "fee-1", s.card("pm_card_visa"))
        .await
        .expect(StatusCode::CREATED);
    let id = order["id"].as_str().unwrap().to_owned();
    let intent = s.reference(&id).await;
    s.ready(&id).await;
    // The capture happens at Stripe but its answer never reaches us.
    s.standin.lose_next_answers("/capture", 1);
    let collected = s.work(&id, json!({"type": "pick_up"})).await;
    assert_eq!(collected["payment_status"], "authorized");
    assert!(s.fees(&id).await.is_empty());

    // Stripe's webhook tells: the fee is booked with the payment, the job is done.
    let succeeded = event(
        "evt_fee_succeeded",
        "payment_intent.succeeded",
        0,
        s.standin.intent(&intent),
    );
    assert_eq!(
        s.webhook(&succeeded).await.expect(StatusCode::OK)["outcome"],
        "processed"
    );
    assert_eq!(s.fees(&id).await, vec![(1500, 400, 60)]);
    assert_eq!(s.ledger(&id).await, vec!["completed"]);
    assert_eq!(s.row(&id).await.1, "captured");
    let (_, done, _, _) = s.capture_job(&id).await;
    assert!(done, "the capture job is complete");
    // The same capture seen again (charge.captured, a replay, the job path): still one fee.
    let charge = s.standin.intent(&intent)["latest_charge"].clone();
    let captured = event(
        "evt_fee_charge",
        "charge.captured",
        0,
        json!({"id": charge, "object": "charge", "payment_intent": intent}),
    );
    assert_eq!(
        s.webhook(&captured).await.expect(StatusCode::OK)["outcome"],
        "processed"
    );
    assert_eq!(
        s.webhook(&succeeded).await.expect(StatusCode::OK)["outcome"],
        "duplicate"
    );
    let now = s.t.app.clock.now();
    assert_eq!(
        jobs::run_due(&s.t.app, now + Duration::hours(1))
            .await
            .unwrap(),
        0
    );
    assert_eq!(s.fees(&id).await.len(), 1);
    assert_eq!(s.standin.charges(), 1);

    // The other way round: the API path books first, the webhook adds nothing.
    let second = s
        .place(&ann, "fee-2", s.card("pm_card_visa"))
        .await
        .expect(StatusCode::CREATED);
    let second = second["id"].as_str().unwrap().to_owned();
    s.ready(&second).await;
    s.work(&second, json!({"type": "pick_up"})).await;
    assert_eq!(s.fees(&second).await.len(), 1);
    let second_intent = s.reference(&second).await;
    let evt = event(
        "evt_fee_second",
        "payment_intent.succeeded",
        0,
        s.standin.intent(&second_intent),
    );
    s.webhook(&evt).await.expect(StatusCode::OK);
    assert_eq!(s.fees(&second).await, vec![(1500, 400, 60)]);
}

// Saved payment methods -------------------------------------------------------------------------

#[tokio::test]
async fn customers_save_cards_as_provider_tokens_and_pay_with_their_own() {
    let s = shop("saved-cards").await;
    let ann = s.customer("ann@example.test").await;
    let path = "/api/v1/customers/me/payment-methods";
    let stored = |s: &Shop| {
        let pool = s.t.db.pools.owner.clone();
        let business = s.business;
        async move {
            sqlx::query_as::<_, (i64, i64)>(
                "SELECT (SELECT count(*) FROM customer_payment_methods WHERE business_id = $1), \
                        (SELECT count(*) FROM customer_gateway_accounts WHERE business_id = $1)",
            )
            .bind(business)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };

    // Bad input is a 4xx and stores nothing (nor asks the provider).
    for bad in [
        json!({"payment_method_id": "4242424242424242"}),
        json!({"payment_method_id": "pm_../../v1/refunds"}),
        json!({"payment_method_id": "pm_card_visa", "card_last4": "4242"}),
        json!({}),
    ] {
        let reply =
            s.t.send(Method::POST, path, Some(&ann), Some(bad.clone()))
                .await;
        assert!(reply.status.is_client_error(), "{bad}: {reply:?}");
        assert_eq!(reply.content_type, "application/problem+json");
    }
    s.t.send(
        Method::POST,
        path,
        Some(&ann),
        Some(json!({"payment_method_id": "pm_unknown"})),
    )
    .await
    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(stored(&s).await, (0, 0));
    // Guests (no account) and staff cannot save cards.
    s.t.send(
        Method::POST,
        path,
        None,
        Some(json!({"payment_method_id": "pm_card_visa"})),
    )
    .await
    .expect_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
    s.t.send(Method::GET, path, Some(&s.owner), None)
        .await
        .expect_problem(StatusCode::FORBIDDEN, "forbidden");

    // Saved: the display fields come from the provider; one provider customer; idempotent.
    let visa =
        s.t.send(
            Method::POST,
            path,
            Some(&ann),
            Some(json!({"payment_method_id": "pm_card_visa"})),
        )
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(visa["card_brand"], "visa");
    assert_eq!(visa["card_last4"], "4242");
    assert_eq!(visa["card_exp_month"], 12);
    assert_eq!(visa["is_default"], true, "the first card is the default");
    let again =
        s.t.send(
            Method::POST,
            path,
            Some(&ann),
            Some(json!({"payment_method_id": "pm_card_visa"})),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(again["id"], visa["id"]);
    let master =
        s.t.send(
            Method::POST,
            path,
            Some(&ann),
            Some(json!({"payment_method_id": "pm_card_mastercard", "is_default": true})),
        )
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(master["card_brand"], "mastercard");
    assert_eq!(stored(&s).await, (2, 1));
    assert_eq!(s.standin.customers_created(), 1, "one provider customer");
    let cus = s.standin.attached_to("pm_card_visa").unwrap();
    assert_eq!(s.standin.attached_to("pm_card_mastercard"), Some(cus));
    // Nothing but the token and display fields is kept.
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns WHERE table_name = 'customer_payment_methods'",
    )
    .fetch_all(&s.t.db.pools.owner)
    .await
    .unwrap();
    assert!(!columns
        .iter()
        .any(|c| c.contains("number") || c.contains("cvc")));

    let list =
        s.t.send(Method::GET, path, Some(&ann), None)
            .await
            .expect(StatusCode::OK);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["id"], master["id"], "the default first");
    assert_eq!(list[1]["is_default"], false);

    // PATCH: back to the visa; bad bodies are 422; another customer's card is 404.
    let visa_id = visa["id"].as_str().unwrap();
    let patched =
        s.t.send(
            Method::PATCH,
            &format!("{path}/{visa_id}"),
            Some(&ann),
            Some(json!({"is_default": true})),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(patched["is_default"], true);
    let bad =
        s.t.send(
            Method::PATCH,
            &format!("{path}/{visa_id}"),
            Some(&ann),
            Some(json!({"is_default": "yes"})),
        )
        .await;
    assert!(bad.status.is_client_error(), "{bad:?}");
    let bob = s.customer("bob@example.test").await;
    s.t.send(
        Method::PATCH,
        &format!("{path}/{visa_id}"),
        Some(&bob),
        Some(json!({"is_default": true})),
    )
    .await
    .expect_problem(StatusCode::NOT_FOUND, "not_found");
    s.t.send(
        Method::DELETE,
        &format!("{path}/{visa_id}"),
        Some(&bob),
        None,
    )
    .await
    .expect_problem(StatusCode::NOT_FOUND, "not_found");
    assert!(s
        .t
        .send(Method::GET, path, Some(&bob), None)
        .await
        .expect(StatusCode::OK)
        .as_array()
        .unwrap()
        .is_empty());

    // Checkout with a saved card: the customer's own only.
    let saved = |id: &Value| s.order(json!({"method": "saved_card", "payment_method_id": id}));
    let order = s
        .place(&ann, "saved-1", saved(&visa["id"]))
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(order["payment_status"], "authorized");
    let intent = s
        .standin
        .intent(&s.reference(order["id"].as_str().unwrap()).await);
    assert_eq!(intent["payment_method"], "pm_card_visa");
    assert_eq!(
        intent["customer"],
        s.standin.attached_to("pm_card_visa").unwrap().as_str()
    );
    s.place(&bob, "saved-bob", saved(&visa["id"]))
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    s.place_guest("saved-guest", saved(&visa["id"]))
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(
        s.standin.intents_created(),
        1,
        "refused before the provider"
    );

    // Removed: forgotten and detached; the other card becomes the default.
    s.t.send(
        Method::DELETE,
        &format!("{path}/{visa_id}"),
        Some(&ann),
        None,
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    assert_eq!(s.standin.attached_to("pm_card_visa"), None);
    let list =
        s.t.send(Method::GET, path, Some(&ann), None)
            .await
            .expect(StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["is_default"], true);
    s.place(&ann, "saved-2", saved(&visa["id"]))
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
}

#[tokio::test]
async fn another_stores_cards_and_orders_are_not_found_and_audited() {
    let s = shop("tenant-a").await;
    let ann = s.customer("same@example.test").await;
    // Store B, in the same platform, with a customer of the same email, a saved card and an
    // order awaiting payment.
    let (b, _) = s.t.open_store("tenant-b", "growth").await;
    let b_customer = s
        .t
        .send(
            Method::POST,
            "/api/v1/auth/customer/register",
            None,
            Some(json!({"store": "tenant-b", "email": "same@example.test", "password": PASSWORD, "full_name": "Same"})),
        )
        .await
        .expect(StatusCode::CREATED)["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let b_card =
        s.t.send(
            Method::POST,
            "/api/v1/customers/me/payment-methods",
            Some(&b_customer),
            Some(json!({"payment_method_id": "pm_card_visa"})),
        )
        .await
        .expect(StatusCode::CREATED);
    let b_card = b_card["id"].as_str().unwrap().to_owned();
    let b_order = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO orders (business_id, id, guest_email, notify_email, status, fulfilment, currency, \
         subtotal_minor, tax_included, total_minor, payment_method, payment_status, payment_reference, \
         placed_at, acceptance_deadline, tracking_token_hash) VALUES ($1, $2, 'g@example.test', \
         'g@example.test', 'awaiting_payment', 'pickup', 'EUR', 1500, true, 1500, 'card', 'requires_action', \
         'pi_elsewhere', now(), now() + interval '15 minutes', $3)",
    )
    .bind(b)
    .bind(b_order)
    .bind(b_order.as_bytes().to_vec())
    .execute(&s.t.db.pools.owner)
    .await
    .unwrap();

    // A's customer sees none of it.
    assert!(s
        .t
        .send(
            Method::GET,
            "/api/v1/customers/me/payment-methods",
            Some(&ann),
            None
        )
        .await
        .expect(StatusCode::OK)
        .as_array()
        .unwrap()
        .is_empty());
    let denied = |path: String| {
        let pool = s.t.db.pools.owner.clone();
        let business = s.business;
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM audit_log WHERE business_id = $1 AND outcome = 'denied' AND action LIKE '%' || $2",
            )
            .bind(business)
            .bind(path)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    let cases = [
        (
            Method::PATCH,
            format!("/api/v1/customers/me/payment-methods/{b_card}"),
            Some(json!({"is_default": true})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/customers/me/payment-methods/{b_card}"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/orders/{b_order}/payment/confirm"),
            None,
        ),
    ];
    for (method, path, body) in cases {
        let before = denied(path.clone()).await;
        s.t.send(method.clone(), &path, Some(&ann), body)
            .await
            .expect_problem(StatusCode::NOT_FOUND, "not_found");
        assert_eq!(
            denied(path.clone()).await,
            before + 1,
            "{method} {path} not audited"
        );
    }
    // Checkout in A with B's card is refused before the provider.
    s.place(
        &ann,
        "cross-card",
        s.order(json!({"method": "saved_card", "payment_method_id": b_card})),
    )
    .await
    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(s.standin.intents_created(), 0);
    // B is untouched.
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM customer_payment_methods WHERE business_id = $1 AND is_default",
    )
    .bind(b)
    .fetch_one(&s.t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(left, 1);
    assert!(s.standin.attached_to("pm_card_visa").is_some());
}
