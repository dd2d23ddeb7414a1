//! The outbox sender against a real SMTP listener started by the test: branded welcome emails,
//! retries with backoff, giving up, exactly-once delivery with two senders, and SMS through the
//! provider trait.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::{Method, StatusCode};
use chrono::{Duration, Utc};
use common::TestApp;
use fleetfront_server::notify::{
    BoxFuture, DeliveryError, LogSender, Notifier, OutboxSender, SmsSender, SmtpSender,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use uuid::Uuid;

/// One message as the SMTP server received it.
#[derive(Clone, Debug)]
struct Received {
    rcpt: Vec<String>,
    data: String,
}

/// A minimal SMTP server (RFC 5321 subset: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) on
/// a loopback port. `reject` makes the next N transactions fail with a temporary error.
#[derive(Clone)]
struct SmtpServer {
    port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    reject: Arc<AtomicUsize>,
}

impl SmtpServer {
    async fn start() -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = SmtpServer {
            port: listener.local_addr().unwrap().port(),
            received: Arc::default(),
            reject: Arc::default(),
        };
        let accept = server.clone();
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let session = accept.clone();
                tokio::spawn(async move { session.serve(socket).await });
            }
        });
        server
    }

    async fn serve(self, socket: tokio::net::TcpStream) {
        let (read, mut write) = socket.into_split();
        let mut lines = BufReader::new(read).lines();
        write
            .write_all(b"220 localhost test ESMTP\r\n")
            .await
            .unwrap();
        let mut rcpt = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            let upper = line.to_ascii_uppercase();
            let reply: &[u8] = if upper.starts_with("EHLO") {
                b"250-localhost\r\n250 8BITMIME\r\n"
            } else if upper.starts_with("HELO")
                || upper.starts_with("RSET")
                || upper.starts_with("NOOP")
            {
                rcpt.clear();
                b"250 OK\r\n"
            } else if upper.starts_with("MAIL FROM") {
                if self.reject.load(Ordering::SeqCst) > 0 {
                    self.reject.fetch_sub(1, Ordering::SeqCst);
                    b"451 4.3.0 try again later\r\n"
                } else {
                    b"250 OK\r\n"
                }
            } else if upper.starts_with("RCPT TO") {
                rcpt.push(line[8..].trim().trim_matches(['<', '>']).to_owned());
                b"250 OK\r\n"
            } else if upper == "DATA" {
                write.write_all(b"354 end with .\r\n").await.unwrap();
                let mut data = String::new();
                while let Ok(Some(line)) = lines.next_line().await {
                    if line == "." {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                    data.push('\n');
                }
                self.received.lock().unwrap().push(Received {
                    rcpt: std::mem::take(&mut rcpt),
                    data,
                });
                b"250 OK queued\r\n"
            } else if upper.starts_with("QUIT") {
                let _ = write.write_all(b"221 bye\r\n").await;
                return;
            } else {
                b"502 command not implemented\r\n"
            };
            if write.write_all(reply).await.is_err() {
                return;
            }
        }
    }

    fn messages(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// Decodes quoted-printable (RFC 2045) so assertions can read the bodies as written.
fn unquote(data: &str) -> String {
    let joined = data.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// Records SMS instead of sending them.
#[derive(Default)]
struct RecordingSms(Mutex<Vec<(String, String)>>);

impl SmsSender for RecordingSms {
    fn send<'a>(&'a self, to: &'a str, text: &'a str) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            self.0
                .lock()
                .unwrap()
                .push((to.to_owned(), text.to_owned()));
            Ok(())
        })
    }
}

fn sender(t: &TestApp, smtp: &SmtpServer, sms: Arc<dyn SmsSender>) -> OutboxSender {
    let notifier = Notifier {
        mail: Arc::new(SmtpSender::from_url(&format!("smtp://127.0.0.1:{}", smtp.port)).unwrap()),
        sms,
        push: Arc::new(LogSender),
        from: "no-reply@fleetfront.test".parse().unwrap(),
        public_url: "https://app.fleetfront.test".into(),
    };
    OutboxSender::new(t.app.db.clone(), notifier)
}

async fn onboard_without_password(t: &TestApp, admin: &str, subdomain: &str) -> Uuid {
    let mut body = common::onboarding(subdomain, "starter");
    body["owner"].as_object_mut().unwrap().remove("password");
    let created = t
        .send(
            Method::POST,
            "/api/v1/admin/businesses",
            Some(admin),
            Some(body),
        )
        .await
        .expect(StatusCode::CREATED);
    Uuid::parse_str(created["id"].as_str().unwrap()).unwrap()
}

async fn outbox_state(t: &TestApp, business: Uuid) -> (i32, bool, bool, Option<String>) {
    sqlx::query_as(
        "SELECT attempts, processed_at IS NOT NULL, failed_at IS NOT NULL, last_error FROM outbox_messages WHERE business_id = $1",
    )
    .bind(business)
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap()
}

#[tokio::test]
async fn the_welcome_email_reaches_the_owner_branded_with_a_setup_link() {
    let t = TestApp::new().await;
    let smtp = SmtpServer::start().await;
    let admin = t.admin_token().await;
    let business = onboard_without_password(&t, &admin, "tea-house").await;
    let token: String = sqlx::query_scalar(
        "SELECT payload->>'password_setup_token' FROM outbox_messages WHERE business_id = $1",
    )
    .bind(business)
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap();

    let handled = sender(&t, &smtp, Arc::new(LogSender))
        .run_due(Utc::now())
        .await
        .unwrap();
    assert_eq!(handled, 1);
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1);
    let mail = &messages[0];
    let body = unquote(&mail.data);
    assert_eq!(mail.rcpt, ["owner@tea-house.test"]);
    assert!(
        mail.data
            .contains("Subject: Welcome to Fleetfront, Store tea-house"),
        "{}",
        mail.data
    );
    assert!(
        mail.data
            .contains("From: \"Store tea-house\" <no-reply@fleetfront.test>"),
        "{}",
        mail.data
    );
    assert!(
        body.contains("https://tea-house.fleetfront.test/"),
        "{}",
        mail.data
    );
    assert!(
        body.contains(&format!(
            "https://app.fleetfront.test/account/setup?token={token}"
        )),
        "{}",
        mail.data
    );
    assert!(
        mail.data.contains("Content-Type: text/html"),
        "{}",
        mail.data
    );
    assert_eq!(outbox_state(&t, business).await, (1, true, false, None));

    // Nothing is sent twice.
    assert_eq!(
        sender(&t, &smtp, Arc::new(LogSender))
            .run_due(Utc::now())
            .await
            .unwrap(),
        0
    );
    assert_eq!(smtp.messages().len(), 1);
}

#[tokio::test]
async fn temporary_failures_are_retried_with_backoff_and_eventually_given_up() {
    let t = TestApp::new().await;
    let smtp = SmtpServer::start().await;
    let admin = t.admin_token().await;
    let outbox = sender(&t, &smtp, Arc::new(LogSender));
    let business = onboard_without_password(&t, &admin, "slow-mail").await;
    // Messages are due from their commit time (the database clock); start just after it.
    let now = Utc::now() + Duration::seconds(1);
    smtp.reject.store(1, Ordering::SeqCst);
    assert_eq!(outbox.run_due(now).await.unwrap(), 1);
    let (attempts, sent, failed, error) = outbox_state(&t, business).await;
    assert_eq!((attempts, sent, failed), (1, false, false));
    assert!(
        error.unwrap().contains("451"),
        "the SMTP reply is kept for operators"
    );
    assert_eq!(
        outbox.run_due(now + Duration::seconds(29)).await.unwrap(),
        0,
        "not due before the backoff"
    );
    assert_eq!(
        outbox.run_due(now + Duration::seconds(31)).await.unwrap(),
        1
    );
    assert_eq!(outbox_state(&t, business).await, (2, true, false, None));
    assert_eq!(smtp.messages().len(), 1);

    // A server that never accepts: given up after the maximum number of attempts.
    let doomed = onboard_without_password(&t, &admin, "no-mail").await;
    smtp.reject.store(usize::MAX / 2, Ordering::SeqCst);
    let mut at = now;
    for _ in 0..fleetfront_domain::retry::MAX_ATTEMPTS {
        at += Duration::hours(2);
        outbox.run_due(at).await.unwrap();
    }
    let (attempts, sent, failed, _) = outbox_state(&t, doomed).await;
    assert_eq!(
        (attempts, sent, failed),
        (
            i32::try_from(fleetfront_domain::retry::MAX_ATTEMPTS).unwrap(),
            false,
            true
        )
    );
    assert_eq!(
        outbox.run_due(at + Duration::days(1)).await.unwrap(),
        0,
        "a given-up message stays given up"
    );
}

#[tokio::test]
async fn messages_that_can_never_be_sent_fail_at_once() {
    let t = TestApp::new().await;
    let smtp = SmtpServer::start().await;
    let admin = t.admin_token().await;
    let business = onboard_without_password(&t, &admin, "odd-shop").await;
    sqlx::query("UPDATE outbox_messages SET payload = payload || '{\"template\": \"no_such_template\"}' WHERE business_id = $1")
        .bind(business)
        .execute(&t.db.pools.owner)
        .await
        .unwrap();
    sender(&t, &smtp, Arc::new(LogSender))
        .run_due(Utc::now())
        .await
        .unwrap();
    let (attempts, sent, failed, error) = outbox_state(&t, business).await;
    assert_eq!((attempts, sent, failed), (1, false, true));
    assert!(error.unwrap().contains("no_such_template"));
    assert!(smtp.messages().is_empty());
}

#[tokio::test]
async fn two_senders_deliver_each_message_exactly_once() {
    let t = TestApp::new().await;
    let smtp = SmtpServer::start().await;
    let admin = t.admin_token().await;
    for i in 0..8 {
        onboard_without_password(&t, &admin, &format!("busy-{i}")).await;
    }
    let (a, b) = (
        sender(&t, &smtp, Arc::new(LogSender)),
        sender(&t, &smtp, Arc::new(LogSender)),
    );
    let now = Utc::now();
    let (ra, rb) = tokio::join!(a.run_due(now), b.run_due(now));
    assert_eq!(ra.unwrap() + rb.unwrap(), 8);
    let mut recipients: Vec<String> = smtp.messages().into_iter().flat_map(|m| m.rcpt).collect();
    recipients.sort();
    recipients.dedup();
    assert_eq!(smtp.messages().len(), 8);
    assert_eq!(recipients.len(), 8, "no duplicates");
}

#[tokio::test]
async fn sms_goes_through_the_provider() {
    let t = TestApp::new().await;
    let smtp = SmtpServer::start().await;
    let admin = t.admin_token().await;
    let (business, _) = t.business(&admin, "text-me", "starter").await;
    sqlx::query(
        "INSERT INTO outbox_messages (business_id, id, topic, payload) VALUES ($1, $2, 'sms', $3)",
    )
    .bind(business)
    .bind(Uuid::now_v7())
    .bind(serde_json::json!({"to": "+358401234567", "text": "Your order is on its way"}))
    .execute(&t.db.pools.owner)
    .await
    .unwrap();
    let sms = Arc::new(RecordingSms::default());
    // The welcome email (to the SMTP server) and the SMS.
    assert_eq!(
        sender(&t, &smtp, sms.clone())
            .run_due(Utc::now())
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        sms.0.lock().unwrap().as_slice(),
        [(
            "+358401234567".to_owned(),
            "Your order is on its way".to_owned()
        )]
    );
}

#[tokio::test]
async fn a_customers_cancellation_request_is_emailed_to_the_business() {
    let t = TestApp::new().await;
    let smtp = SmtpServer::start().await;
    let admin = t.admin_token().await;
    let (business, owner) = t.business(&admin, "ask-shop", "growth").await;
    let day = serde_json::json!([{"open": "00:00", "close": "23:59"}]);
    let week: serde_json::Map<String, serde_json::Value> = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ]
    .into_iter()
    .map(|d| (d.to_owned(), day.clone()))
    .collect();
    t.send(
        Method::PATCH,
        "/api/v1/business/storefront",
        Some(&owner),
        Some(serde_json::json!({"is_published": true, "operating_hours": week})),
    )
    .await
    .expect(StatusCode::OK);
    let product = t
        .send(
            Method::POST,
            "/api/v1/business/products",
            Some(&owner),
            Some(serde_json::json!({"sku": "SOUP", "name": "Soup", "price_minor": 800, "is_published": true})),
        )
        .await
        .expect(StatusCode::CREATED);
    let customer = t
        .send(
            Method::POST,
            "/api/v1/auth/customer/register",
            None,
            Some(serde_json::json!({"store": "ask-shop", "email": "ann@example.test", "password": common::PASSWORD, "full_name": "Ann"})),
        )
        .await
        .expect(StatusCode::CREATED)["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let order = t
        .send_with(
            Method::POST,
            "/api/v1/orders",
            Some(&customer),
            Some(serde_json::json!({
                "items": [{"product_id": product["id"], "quantity": 1}],
                "fulfilment": {"kind": "pickup"},
                "payment": {"method": "cash"},
                "expected_total_minor": 800,
            })),
            &[("Idempotency-Key", "ask-1")],
        )
        .await
        .expect(StatusCode::CREATED)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let outbox = sender(&t, &smtp, Arc::new(LogSender));
    // Welcome and confirmation first, so what follows is only what the request causes.
    outbox
        .run_due(Utc::now() + Duration::seconds(1))
        .await
        .unwrap();
    t.send(
        Method::PATCH,
        &format!("/api/v1/business/orders/{order}"),
        Some(&owner),
        Some(serde_json::json!({"type": "accept", "prep_time": 20})),
    )
    .await
    .expect(StatusCode::OK);

    // Accepted: the customer's cancellation becomes a request the business must decide on.
    let tracked = t
        .send(
            Method::POST,
            &format!("/api/v1/orders/{order}/cancel"),
            Some(&customer),
            Some(serde_json::json!({"reason": "Ordered to the <wrong> shop"})),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(tracked["status"], "confirmed");
    outbox
        .run_due(Utc::now() + Duration::seconds(1))
        .await
        .unwrap();
    let to_business: Vec<Received> = smtp
        .messages()
        .into_iter()
        .filter(|m| m.rcpt == ["hello@ask-shop.test"])
        .collect();
    assert_eq!(to_business.len(), 1, "{to_business:?}");
    let mail = &to_business[0];
    let body = unquote(&mail.data);
    // Long headers are folded.
    assert!(
        mail.data.replace("\n ", " ").contains(&format!(
            "Subject: Cancellation requested for order {order}"
        )),
        "{}",
        mail.data
    );
    assert!(
        body.contains("The customer asked to cancel order") && body.contains("which is confirmed"),
        "{body}"
    );
    assert!(
        body.contains("Reason: Ordered to the <wrong> shop"),
        "{body}"
    );
    assert!(body.contains("Ordered to the &lt;wrong&gt; shop"), "{body}");
    assert!(
        body.contains(&format!(
            "https://app.fleetfront.test/business/orders/{order}"
        )),
        "{body}"
    );
    let pending: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox_messages WHERE business_id = $1 AND processed_at IS NULL",
    )
    .bind(business)
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(pending, 0);

    // A pending order is simply cancelled: nothing for the business to decide, no request email.
    let second = t
        .send_with(
            Method::POST,
            "/api/v1/orders",
            Some(&customer),
            Some(serde_json::json!({
                "items": [{"product_id": product["id"], "quantity": 1}],
                "fulfilment": {"kind": "pickup"},
                "payment": {"method": "cash"},
                "expected_total_minor": 800,
            })),
            &[("Idempotency-Key", "ask-2")],
        )
        .await
        .expect(StatusCode::CREATED)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    t.send(
        Method::POST,
        &format!("/api/v1/orders/{second}/cancel"),
        Some(&customer),
        Some(serde_json::json!({"reason": "Changed my mind"})),
    )
    .await
    .expect(StatusCode::OK);
    let requests: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox_messages WHERE business_id = $1 AND payload->>'template' = 'cancellation_request'",
    )
    .bind(business)
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(requests, 1);
}
