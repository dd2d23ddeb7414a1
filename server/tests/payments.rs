//! Payments: the Stripe adapter against a local stand-in of Stripe's API (Stripe cannot be
//! reached from here), and Stripe's webhooks through the real router on a real database.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "support/stripe_standin.rs"]
mod stripe_standin;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{Reply, TestApp};
use fleetfront_domain::{Currency, Money};
use fleetfront_server::payments::stripe::StripeGateway;
use fleetfront_server::payments::webhook::Stripe;
use fleetfront_server::payments::{
    Authorization, AuthorizeRequest, PaymentError, PaymentGateway, PaymentRef, TransactionStatus,
};
use serde_json::{json, Value};
use stripe_standin::{deliver, event, signed_event, StandIn, SECRET_KEY};
use uuid::Uuid;

const WEBHOOK_SECRET: &str = "whsec_standin_test_secret";

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::parse("EUR").unwrap())
}

fn authorize_request(key: &str, order: Uuid, minor: i64, method: &str) -> AuthorizeRequest {
    AuthorizeRequest {
        idempotency_key: key.to_owned(),
        business_id: Uuid::from_u128(1),
        order_id: order,
        amount: eur(minor),
        payment_method: Some(method.to_owned()),
        receipt_email: Some("buyer@example.test".into()),
        customer: None,
    }
}

fn payment(key: &str, id: &str, minor: Option<i64>) -> PaymentRef {
    PaymentRef {
        idempotency_key: key.to_owned(),
        gateway_payment_id: id.to_owned(),
        amount: minor.map(eur),
    }
}

async fn gateway() -> (StandIn, StripeGateway) {
    let standin = StandIn::start().await;
    let gateway = StripeGateway::new(&standin.base_url, SECRET_KEY).unwrap();
    (standin, gateway)
}

#[track_caller]
fn authorized(answer: Result<Authorization, PaymentError>) -> String {
    match answer {
        Ok(Authorization::Authorized { gateway_payment_id }) => gateway_payment_id,
        other => panic!("expected an authorization, got {other:?}"),
    }
}

#[tokio::test]
async fn authorize_capture_and_refund() {
    let (standin, stripe) = gateway().await;
    let order = Uuid::now_v7();
    let id = authorized(
        stripe
            .authorize(authorize_request(
                &format!("order:{order}:authorize:1"),
                order,
                1250,
                "pm_card_visa",
            ))
            .await,
    );
    let stored = standin.intent(&id);
    assert_eq!(stored["status"], "requires_capture");
    assert_eq!(stored["capture_method"], "manual");
    assert_eq!(stored["currency"], "eur");
    assert_eq!(stored["receipt_email"], "buyer@example.test");
    assert_eq!(stored["metadata"]["order_id"], order.to_string());
    assert_eq!(
        stored["metadata"]["business_id"],
        Uuid::from_u128(1).to_string()
    );

    let captured = stripe
        .capture(payment(&format!("order:{order}:capture"), &id, Some(1000)))
        .await
        .unwrap();
    assert_eq!(captured.amount, eur(1000));
    assert_eq!(captured.gateway_transaction_id, id);

    let refund = stripe
        .refund(payment(&format!("order:{order}:refund:1"), &id, Some(400)))
        .await
        .unwrap();
    assert!(refund.gateway_transaction_id.starts_with("re_"));
    assert_eq!(refund.amount, eur(400));
    let intent = stripe.retrieve_payment_intent(&id).await.unwrap();
    assert_eq!(intent.ledger_status(), TransactionStatus::Completed);
    assert_eq!(intent.amount_refunded(), 400);

    // The rest (no amount: all that remains).
    let rest = stripe
        .refund(payment(&format!("order:{order}:refund:2"), &id, None))
        .await
        .unwrap();
    assert_eq!(rest.amount, eur(600));
    let intent = stripe.retrieve_payment_intent(&id).await.unwrap();
    assert_eq!(intent.ledger_status(), TransactionStatus::Refunded);

    // Nothing is left to refund: Stripe's invalid request, not retryable.
    let err = stripe
        .refund(payment(&format!("order:{order}:refund:3"), &id, Some(1)))
        .await
        .unwrap_err();
    assert!(matches!(err, PaymentError::Invalid(_)), "{err:?}");
}

#[tokio::test]
async fn a_declined_card_is_declined_with_the_reason() {
    let (_standin, stripe) = gateway().await;
    let order = Uuid::now_v7();
    let err = stripe
        .authorize(authorize_request(
            "k-decline",
            order,
            500,
            "pm_card_chargeDeclined",
        ))
        .await
        .unwrap_err();
    match err {
        PaymentError::Declined(message) => {
            assert!(message.contains("Your card was declined"), "{message}");
            assert!(message.contains("generic_decline"), "{message}");
        }
        other => panic!("expected a decline, got {other:?}"),
    }
    // The same attempt retried gives the same answer, not a second attempt at the card.
    let again = stripe
        .authorize(authorize_request(
            "k-decline",
            order,
            500,
            "pm_card_chargeDeclined",
        ))
        .await
        .unwrap_err();
    assert!(matches!(again, PaymentError::Declined(_)));
}

#[tokio::test]
async fn three_d_secure_requires_customer_action() {
    let (_standin, stripe) = gateway().await;
    let answer = stripe
        .authorize(authorize_request(
            "k-3ds",
            Uuid::now_v7(),
            900,
            "pm_card_threeDSecure2Required",
        ))
        .await
        .unwrap();
    match answer {
        Authorization::RequiresAction {
            gateway_payment_id,
            client_secret,
            next_action,
        } => {
            assert_eq!(next_action, "use_stripe_sdk");
            assert!(gateway_payment_id.starts_with("pi_"));
            assert!(client_secret.starts_with(&format!("{gateway_payment_id}_secret_")));
        }
        other => panic!("expected requires_action, got {other:?}"),
    }
}

#[tokio::test]
async fn cancel_releases_the_authorization() {
    let (standin, stripe) = gateway().await;
    let order = Uuid::now_v7();
    let id = authorized(
        stripe
            .authorize(authorize_request("k-cancel", order, 700, "pm_card_visa"))
            .await,
    );
    stripe
        .cancel(payment("k-cancel:release", &id, None))
        .await
        .unwrap();
    assert_eq!(standin.intent(&id)["status"], "canceled");
    // A released authorization cannot be captured.
    let err = stripe
        .capture(payment("k-cancel:capture", &id, None))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PaymentError::Invalid(m) if m.contains("payment_intent_unexpected_state")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_retried_authorization_returns_the_same_intent_and_never_a_second() {
    let (standin, stripe) = gateway().await;
    let order = Uuid::now_v7();
    let key = format!("order:{order}:authorize:1");
    let first = authorized(
        stripe
            .authorize(authorize_request(&key, order, 1250, "pm_card_visa"))
            .await,
    );
    let second = authorized(
        stripe
            .authorize(authorize_request(&key, order, 1250, "pm_card_visa"))
            .await,
    );
    assert_eq!(first, second);
    assert_eq!(standin.intents_created(), 1);
    // The same key with other parameters is Stripe's idempotency error, not a new charge.
    let err = stripe
        .authorize(authorize_request(&key, order, 9999, "pm_card_visa"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PaymentError::Invalid(m) if m.contains("idempotency_error")),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    assert_eq!(standin.intents_created(), 1);
    // A retried capture is not a second capture either.
    let a = stripe.capture(payment("cap", &first, None)).await.unwrap();
    let b = stripe.capture(payment("cap", &first, None)).await.unwrap();
    assert_eq!(a, b);
}

#[tokio::test]
async fn a_server_error_is_retryable_and_the_retry_succeeds() {
    let (standin, stripe) = gateway().await;
    let order = Uuid::now_v7();
    standin.fail_next(1);
    let err = stripe
        .authorize(authorize_request("k-500", order, 300, "pm_card_visa"))
        .await
        .unwrap_err();
    assert!(matches!(err, PaymentError::Unavailable(_)), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(standin.intents_created(), 0);
    let id = authorized(
        stripe
            .authorize(authorize_request("k-500", order, 300, "pm_card_visa"))
            .await,
    );
    assert!(id.starts_with("pi_"));
    assert_eq!(standin.intents_created(), 1);
}

#[tokio::test]
async fn a_wrong_key_or_an_unreachable_stripe_are_told_apart() {
    let (standin, _) = gateway().await;
    let wrong = StripeGateway::new(&standin.base_url, "sk_test_wrong").unwrap();
    let err = wrong
        .authorize(authorize_request("k", Uuid::now_v7(), 100, "pm_card_visa"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PaymentError::Invalid(m) if m.contains("authentication_error")),
        "{err:?}"
    );
    // A port nobody listens on.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let gone = StripeGateway::new(&format!("http://{closed}"), SECRET_KEY).unwrap();
    let err = gone
        .authorize(authorize_request("k", Uuid::now_v7(), 100, "pm_card_visa"))
        .await
        .unwrap_err();
    assert!(matches!(err, PaymentError::Unavailable(_)), "{err:?}");
}

// Webhooks ------------------------------------------------------------------------------------

struct Shop {
    t: TestApp,
    standin: StandIn,
    stripe: StripeGateway,
    business: Uuid,
}

async fn shop() -> Shop {
    let standin = StandIn::start().await;
    let t = TestApp::new().await;
    let stripe = StripeGateway::new(&standin.base_url, SECRET_KEY).unwrap();
    assert!(t
        .app
        .configure_stripe(Stripe::new(stripe.clone(), WEBHOOK_SECRET)));
    let admin = t.admin_token().await;
    let (business, _) = t.business(&admin, "paidshop", "starter").await;
    Shop {
        t,
        standin,
        stripe,
        business,
    }
}

impl Shop {
    /// A card order placed and authorized at the stand-in (the order row written directly: the
    /// checkout that writes it belongs to the orders work).
    async fn order(&self) -> (Uuid, String) {
        let order = Uuid::now_v7();
        self.insert_order(order).await;
        let id = self.authorize(order).await;
        (order, id)
    }

    async fn insert_order(&self, order: Uuid) {
        sqlx::query(
            "INSERT INTO orders (business_id, id, guest_email, notify_email, fulfilment, currency, \
             subtotal_minor, tax_included, total_minor, payment_method, payment_status, placed_at, \
             acceptance_deadline, tracking_token_hash) VALUES ($1, $2, 'guest@example.test', \
             'guest@example.test', 'pickup', 'EUR', 1250, true, 1250, 'card', 'authorized', now(), \
             now() + interval '3 minutes', $3)",
        )
        .bind(self.business)
        .bind(order)
        .bind(order.as_bytes().to_vec())
        .execute(&self.t.db.pools.owner)
        .await
        .unwrap();
    }

    async fn authorize(&self, order: Uuid) -> String {
        let mut request = authorize_request(
            &format!("order:{order}:authorize:1"),
            order,
            1250,
            "pm_card_visa",
        );
        request.business_id = self.business;
        authorized(self.stripe.authorize(request).await)
    }

    async fn deliver(&self, body: String, signature: Option<&str>) -> Reply {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/webhooks/stripe")
            .header("content-type", "application/json; charset=utf-8");
        if let Some(signature) = signature {
            request = request.header("stripe-signature", signature);
        }
        self.t.raw(request.body(Body::from(body)).unwrap()).await
    }

    async fn send(&self, event: &Value) -> Reply {
        let (body, signature) = signed_event(WEBHOOK_SECRET, self.now(), event);
        self.deliver(body, Some(&signature)).await
    }

    fn now(&self) -> i64 {
        self.t.app.clock.now().timestamp()
    }

    async fn ledger(&self, intent: &str) -> Option<(String, i64, Uuid)> {
        sqlx::query_as(
            "SELECT status, amount_minor, order_id FROM payment_transactions \
             WHERE business_id = $1 AND gateway_transaction_id = $2",
        )
        .bind(self.business)
        .bind(intent)
        .fetch_optional(&self.t.db.pools.owner)
        .await
        .unwrap()
    }
}

#[tokio::test]
async fn webhook_signatures_are_verified_as_stripe_documents() {
    let s = shop().await;
    let (_order, intent) = s.order().await;
    let evt = event(
        "evt_sig_1",
        "payment_intent.amount_capturable_updated",
        s.now(),
        s.standin.intent(&intent),
    );
    let now = s.now();

    // Missing header, wrong secret, tampered body: 400 invalid_signature, nothing recorded.
    s.deliver(evt.to_string(), None)
        .await
        .expect_problem(StatusCode::BAD_REQUEST, "invalid_signature");
    let (body, wrong) = signed_event("whsec_someone_else", now, &evt);
    s.deliver(body, Some(&wrong))
        .await
        .expect_problem(StatusCode::BAD_REQUEST, "invalid_signature");
    let (body, signature) = signed_event(WEBHOOK_SECRET, now, &evt);
    let tampered = body.replace("1250", "1");
    assert_ne!(tampered, body);
    s.deliver(tampered, Some(&signature))
        .await
        .expect_problem(StatusCode::BAD_REQUEST, "invalid_signature");
    // Older than the 300 s tolerance by the server's clock.
    let (old_body, old) = signed_event(WEBHOOK_SECRET, now - 301, &evt);
    s.deliver(old_body, Some(&old))
        .await
        .expect_problem(StatusCode::BAD_REQUEST, "invalid_signature");
    assert_eq!(s.ledger(&intent).await, None);

    // Several v1 signatures (Stripe sends one per active secret while rolling): one valid is
    // enough; unknown schemes are ignored.
    let valid = signature.trim_start_matches(&format!("t={now},v1="));
    let several = format!("t={now},v1={},v1={valid},v0=deadbeef", "ab".repeat(32));
    let reply = s.deliver(body.clone(), Some(&several)).await;
    assert_eq!(reply.expect(StatusCode::OK)["outcome"], "processed");
    let (status, amount, _) = s.ledger(&intent).await.unwrap();
    assert_eq!((status.as_str(), amount), ("authorized", 1250));
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE business_id = $1 AND action = 'payment.update' \
         AND actor_kind = 'payment_webhook' AND resource_id = $2",
    )
    .bind(s.business)
    .bind(&intent)
    .fetch_one(&s.t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(audited, 1);

    // The same delivery once the server's clock has moved past the tolerance.
    s.t.app.clock.advance(301);
    s.deliver(body, Some(&several))
        .await
        .expect_problem(StatusCode::BAD_REQUEST, "invalid_signature");
}

#[tokio::test]
async fn a_replayed_event_is_acknowledged_and_not_processed_again() {
    let s = shop().await;
    let (_order, intent) = s.order().await;
    let evt = event(
        "evt_replay",
        "payment_intent.amount_capturable_updated",
        s.now(),
        s.standin.intent(&intent),
    );
    let path = format!("/v1/payment_intents/{intent}");
    let first = s.send(&evt).await.expect(StatusCode::OK);
    assert_eq!(first["outcome"], "processed");
    assert_eq!(s.standin.requests("GET", &path), 1);
    let again = s.send(&evt).await.expect(StatusCode::OK);
    assert_eq!(again["outcome"], "duplicate");
    assert_eq!(again["received"], true);
    // No second read of the payment: the event was not processed again.
    assert_eq!(s.standin.requests("GET", &path), 1);
    let recorded: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM payment_webhook_events WHERE event_id = 'evt_replay'",
    )
    .fetch_one(&s.t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(recorded, 1);
}

#[tokio::test]
async fn events_out_of_order_record_the_payment_as_stripe_has_it_now() {
    let s = shop().await;
    let (order, intent) = s.order().await;
    let authorized_copy = s.standin.intent(&intent);
    s.stripe
        .capture(payment(&format!("order:{order}:capture"), &intent, None))
        .await
        .unwrap();
    let succeeded_copy = s.standin.intent(&intent);

    // The later event arrives first.
    let reply = s
        .send(&event(
            "evt_2",
            "payment_intent.succeeded",
            s.now(),
            succeeded_copy,
        ))
        .await;
    assert_eq!(reply.expect(StatusCode::OK)["outcome"], "processed");
    assert_eq!(s.ledger(&intent).await.unwrap().0, "completed");

    // The earlier one, whose payload says "requires_capture", does not move it back: the
    // intent is re-read from Stripe.
    let reply = s
        .send(&event(
            "evt_1",
            "payment_intent.amount_capturable_updated",
            s.now(),
            authorized_copy.clone(),
        ))
        .await;
    assert_eq!(reply.expect(StatusCode::OK)["outcome"], "processed");
    assert_eq!(s.ledger(&intent).await.unwrap().0, "completed");

    // A payload that lies (a forged-looking status in a genuine delivery) is not trusted
    // either.
    let mut lying = authorized_copy;
    lying["status"] = json!("canceled");
    s.send(&event("evt_3", "payment_intent.canceled", s.now(), lying))
        .await
        .expect(StatusCode::OK);
    assert_eq!(s.ledger(&intent).await.unwrap().0, "completed");

    // A full refund, announced by charge.refunded (a charge object naming the intent).
    s.stripe
        .refund(payment(&format!("order:{order}:refund"), &intent, None))
        .await
        .unwrap();
    let charge =
        json!({"id": "ch_x", "object": "charge", "payment_intent": intent, "refunded": true});
    s.send(&event("evt_4", "charge.refunded", s.now(), charge))
        .await
        .expect(StatusCode::OK);
    let (status, amount, recorded_order) = s.ledger(&intent).await.unwrap();
    assert_eq!(
        (status.as_str(), amount, recorded_order),
        ("refunded", 1250, order)
    );
    assert_eq!(
        s.standin
            .requests("GET", &format!("/v1/payment_intents/{intent}")),
        4
    );

    // Events this server does not act on are acknowledged and recorded.
    let reply = s
        .send(&event(
            "evt_5",
            "customer.created",
            s.now(),
            json!({"id": "cus_1"}),
        ))
        .await;
    assert_eq!(reply.expect(StatusCode::OK)["outcome"], "ignored");
}

#[tokio::test]
async fn an_event_before_its_order_commits_is_retried_by_stripe() {
    let s = shop().await;
    let order = Uuid::now_v7();
    let intent = s.authorize(order).await;
    let evt = event(
        "evt_early",
        "payment_intent.amount_capturable_updated",
        s.now(),
        s.standin.intent(&intent),
    );
    // The order is not there yet: 503, nothing recorded, so Stripe's retry processes it.
    s.send(&evt)
        .await
        .expect_problem(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    s.insert_order(order).await;
    let reply = s.send(&evt).await;
    assert_eq!(reply.expect(StatusCode::OK)["outcome"], "processed");
    assert_eq!(s.ledger(&intent).await.unwrap().0, "authorized");
}

#[tokio::test]
async fn the_webhook_is_documented_and_needs_stripe_configured() {
    let t = TestApp::new().await;
    let doc = t
        .send(Method::GET, "/api/v1/openapi.json", None, None)
        .await
        .expect(StatusCode::OK);
    let op = &doc["paths"]["/api/v1/webhooks/stripe"]["post"];
    assert_eq!(op["parameters"][0]["name"], "Stripe-Signature");
    assert_eq!(op["parameters"][0]["in"], "header");
    assert!(op["requestBody"].is_object());
    // Without a signing secret configured no signature can be verified (Stripe retries).
    let (body, signature) = signed_event(WEBHOOK_SECRET, 0, &json!({"id": "evt"}));
    let reply = t
        .send_with(
            Method::POST,
            "/api/v1/webhooks/stripe",
            None,
            Some(serde_json::from_str(&body).unwrap()),
            &[("stripe-signature", &signature)],
        )
        .await;
    reply.expect_problem(StatusCode::BAD_REQUEST, "invalid_signature");
    // Stripe sends JSON; anything else is refused before the signature is looked at.
    let request = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/webhooks/stripe")
        .header("content-type", "text/plain")
        .header("stripe-signature", &signature)
        .body(Body::from(body))
        .unwrap();
    t.raw(request)
        .await
        .expect_problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
}

#[tokio::test]
async fn payment_rows_are_seen_only_inside_their_business() {
    use fleetfront_server::db::set_principal;
    let s = shop().await;
    let admin = s.t.admin_token().await;
    let (other, _) = s.t.business(&admin, "othershop", "starter").await;
    let (order, intent) = s.order().await;
    let evt = event(
        "evt_rls",
        "payment_intent.amount_capturable_updated",
        s.now(),
        s.standin.intent(&intent),
    );
    s.send(&evt).await.expect(StatusCode::OK);

    let count = |kind: &'static str, business: Uuid| {
        let pool = s.t.db.pools.app.clone();
        async move {
            let mut tx = pool.begin().await.unwrap();
            set_principal(&mut tx, kind, None, None, Some(business))
                .await
                .unwrap();
            let payments: i64 = sqlx::query_scalar("SELECT count(*) FROM payment_transactions")
                .fetch_one(&mut *tx)
                .await
                .unwrap();
            let events: i64 = sqlx::query_scalar("SELECT count(*) FROM payment_webhook_events")
                .fetch_one(&mut *tx)
                .await
                .unwrap();
            (payments, events)
        }
    };
    assert_eq!(count("payment_webhook", s.business).await, (1, 1));
    assert_eq!(count("staff", s.business).await, (1, 0));
    assert_eq!(count("payment_webhook", other).await, (0, 1));
    assert_eq!(count("staff", other).await, (0, 0));
    assert_eq!(count("customer", s.business).await, (0, 0));
    assert_eq!(count("public", s.business).await, (0, 0));

    // The webhook principal scoped to another business cannot write this one's payments.
    let mut tx = s.t.db.pools.app.begin().await.unwrap();
    set_principal(&mut tx, "payment_webhook", None, None, Some(other))
        .await
        .unwrap();
    let refused = sqlx::query(
        "INSERT INTO payment_transactions (business_id, id, order_id, amount_minor, currency, \
         payment_method, payment_gateway, status) VALUES ($1, $2, $3, 1, 'EUR', 'card', 'stripe', 'pending')",
    )
    .bind(s.business)
    .bind(Uuid::now_v7())
    .bind(order)
    .execute(&mut *tx)
    .await
    .unwrap_err();
    assert_eq!(
        refused
            .as_database_error()
            .and_then(|e| e.code())
            .as_deref(),
        Some("42501"),
        "{refused}"
    );
}

#[tokio::test]
async fn the_ledger_records_payments_and_fees_in_the_callers_transaction() {
    use fleetfront_server::db::set_principal;
    use fleetfront_server::payments::ledger::{self, NewFee, NewPayment};
    use fleetfront_server::payments::GatewayKind;
    let s = shop().await;
    let order = Uuid::now_v7();
    s.insert_order(order).await;
    let intent = s.authorize(order).await;
    let pool = &s.t.db.pools.app;

    let mut tx = pool.begin().await.unwrap();
    set_principal(&mut tx, "staff", None, None, Some(s.business))
        .await
        .unwrap();
    ledger::record_payment(
        &mut tx,
        &NewPayment {
            business_id: s.business,
            order_id: order,
            customer_id: None,
            amount: eur(1250),
            payment_method: "card",
            gateway: GatewayKind::Stripe,
            gateway_transaction_id: Some(&intent),
            status: TransactionStatus::Authorized,
        },
    )
    .await
    .unwrap();
    let fee = ledger::record_platform_fee(
        &mut tx,
        &NewFee {
            business_id: s.business,
            order_id: order,
            fee_type: "order_commission",
            base: eur(1250),
            fee_bps: 250,
        },
    )
    .await
    .unwrap();
    // 2.5 % of 12.50 is 0.3125: rounded half away from zero by the domain's rule.
    assert_eq!(fee, eur(31));
    tx.commit().await.unwrap();

    // Stripe's webhook finds the same row by the intent id and completes it.
    s.stripe
        .capture(payment(&format!("order:{order}:capture"), &intent, None))
        .await
        .unwrap();
    let evt = event(
        "evt_ledger",
        "payment_intent.succeeded",
        s.now(),
        s.standin.intent(&intent),
    );
    s.send(&evt).await.expect(StatusCode::OK);
    let rows: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM payment_transactions WHERE business_id = $1 AND order_id = $2",
    )
    .bind(s.business)
    .bind(order)
    .fetch_one(&s.t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(rows, 1);
    assert_eq!(s.ledger(&intent).await.unwrap().0, "completed");

    // A late "authorized" does not move it back; a second completed payment is refused.
    let mut tx = pool.begin().await.unwrap();
    set_principal(&mut tx, "staff", None, None, Some(s.business))
        .await
        .unwrap();
    let changed =
        ledger::set_order_payment_status(&mut tx, s.business, order, TransactionStatus::Authorized)
            .await
            .unwrap();
    assert_eq!(changed, 0);
    let second = ledger::record_payment(
        &mut tx,
        &NewPayment {
            business_id: s.business,
            order_id: order,
            customer_id: None,
            amount: eur(1250),
            payment_method: "cash",
            gateway: GatewayKind::Cash,
            gateway_transaction_id: None,
            status: TransactionStatus::Completed,
        },
    )
    .await
    .unwrap_err();
    assert_eq!(second.code().as_str(), "conflict");
    drop(tx);

    // Checkout principals may only add rows to orders they can see: a signed-in customer
    // cannot add to a guest's order, nor a guest without the order's tracking token.
    for kind in ["customer", "public"] {
        let mut tx = pool.begin().await.unwrap();
        set_principal(&mut tx, kind, None, Some(Uuid::now_v7()), Some(s.business))
            .await
            .unwrap();
        let refused = ledger::record_payment(
            &mut tx,
            &NewPayment {
                business_id: s.business,
                order_id: order,
                customer_id: None,
                amount: eur(1),
                payment_method: "cash",
                gateway: GatewayKind::Cash,
                gateway_transaction_id: None,
                status: TransactionStatus::Pending,
            },
        )
        .await
        .unwrap_err();
        assert_eq!(refused.code().as_str(), "not_found", "{kind}");
    }
}

#[tokio::test]
async fn the_stand_in_delivers_signed_events_to_the_server_over_http() {
    let s = shop().await;
    let (_order, intent) = s.order().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/api/v1/webhooks/stripe",
        listener.local_addr().unwrap()
    );
    let router = s.t.router.clone();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let evt = event(
        "evt_http",
        "payment_intent.amount_capturable_updated",
        s.now(),
        s.standin.intent(&intent),
    );
    let (status, body) = deliver(&url, WEBHOOK_SECRET, s.now(), &evt).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outcome"], "processed");
    let (status, body) = deliver(&url, "whsec_not_ours_at_all", s.now(), &evt).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "invalid_signature");
    assert_eq!(s.ledger(&intent).await.unwrap().0, "authorized");
}
