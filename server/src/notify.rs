//! Delivery of the transactional outbox: emails over SMTP (lettre), SMS and push through
//! provider traits (a logging provider by default), branded per business.
//!
//! Messages are written to `outbox_messages` in the same transaction as the change that causes
//! them. The sender claims one due message at a time with `FOR UPDATE SKIP LOCKED` (so several
//! server instances share the work without sending twice), delivers it, and records the outcome
//! in the same transaction; failures are retried with the backoff of
//! `fleetfront_domain::retry` and given up after its maximum. It runs as the `worker` principal,
//! the only one that reads across businesses, and only the outbox and branding tables.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use fleetfront_domain::api::business::ThemeColors;
use fleetfront_domain::retry::{after_failure, AfterFailure};
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::Value;
use sqlx::postgres::PgListener;
use uuid::Uuid;

use crate::db::{new_id, set_principal, Db, Tx};
use crate::error::Result;

/// Queues an email for `business` in the outbox, inside `tx`: it is sent only if the change
/// that caused it commits. `payload` names the template, the recipient (`to`) and the
/// template's values (see [`render`]).
///
/// # Errors
/// Database errors.
pub async fn enqueue_email(
    tx: &mut Tx,
    business: fleetfront_domain::BusinessId,
    payload: Value,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO outbox_messages (business_id, id, topic, payload) VALUES ($1, $2, 'email', $3)",
    )
    .bind(business.0)
    .bind(new_id())
    .bind(payload)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A boxed, sendable future: keeps the provider traits object-safe without a macro crate.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// A message that could not be delivered, and whether trying again may help.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct DeliveryError {
    /// What went wrong (stored in `last_error`; never contains secrets).
    pub message: String,
    /// False for messages that can never succeed (unknown template, bad address).
    pub retryable: bool,
}

impl DeliveryError {
    fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
        }
    }

    fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
        }
    }
}

/// Sends an email.
pub trait MailSender: Send + Sync {
    /// Sends `message`.
    fn send(&self, message: Message) -> BoxFuture<'_, Result<(), DeliveryError>>;
}

/// Sends a text message.
pub trait SmsSender: Send + Sync {
    /// Sends `text` to `to` (E.164).
    fn send<'a>(&'a self, to: &'a str, text: &'a str) -> BoxFuture<'a, Result<(), DeliveryError>>;
}

/// Sends a push notification.
pub trait PushSender: Send + Sync {
    /// Sends `title`/`body` to a device token.
    fn send<'a>(
        &'a self,
        device: &'a str,
        title: &'a str,
        body: &'a str,
    ) -> BoxFuture<'a, Result<(), DeliveryError>>;
}

/// SMTP through lettre: `smtp://host:port` (plain, for local relays), `smtp://…?tls=required`
/// (STARTTLS) or `smtps://user:pass@host` (implicit TLS).
pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl SmtpSender {
    /// A sender for an SMTP URL.
    ///
    /// # Errors
    /// When the URL is not a valid SMTP URL.
    pub fn from_url(url: &str) -> anyhow::Result<Self> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| anyhow::anyhow!("invalid FLEETFRONT_SMTP_URL: {e}"))?
            .timeout(Some(Duration::from_secs(20)))
            .build();
        Ok(Self { transport })
    }
}

impl MailSender for SmtpSender {
    fn send(&self, message: Message) -> BoxFuture<'_, Result<(), DeliveryError>> {
        Box::pin(async move {
            self.transport.send(message).await.map(|_| ()).map_err(|e| {
                if e.is_permanent() {
                    DeliveryError::permanent(format!("SMTP refused the message: {e}"))
                } else {
                    DeliveryError::transient(format!("SMTP delivery failed: {e}"))
                }
            })
        })
    }
}

/// Writes messages to the log instead of sending them (development, and the default for SMS
/// and push until a provider is configured).
#[derive(Debug, Default)]
pub struct LogSender;

impl MailSender for LogSender {
    fn send(&self, message: Message) -> BoxFuture<'_, Result<(), DeliveryError>> {
        Box::pin(async move {
            let to = message
                .envelope()
                .to()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            tracing::info!(%to, "email (not sent: FLEETFRONT_SMTP_URL is not set)");
            Ok(())
        })
    }
}

impl SmsSender for LogSender {
    fn send<'a>(&'a self, to: &'a str, text: &'a str) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            tracing::info!(%to, chars = text.chars().count(), "sms (log provider)");
            Ok(())
        })
    }
}

impl PushSender for LogSender {
    fn send<'a>(
        &'a self,
        device: &'a str,
        title: &'a str,
        _body: &'a str,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            tracing::info!(%device, %title, "push (log provider)");
            Ok(())
        })
    }
}

/// The delivery channels and the sender identity.
#[derive(Clone)]
pub struct Notifier {
    /// Email.
    pub mail: Arc<dyn MailSender>,
    /// SMS.
    pub sms: Arc<dyn SmsSender>,
    /// Push.
    pub push: Arc<dyn PushSender>,
    /// `From:` of every email.
    pub from: Mailbox,
    /// Public base URL for links in messages, e.g. `https://app.fleetfront.app`.
    pub public_url: String,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("from", &self.from.to_string())
            .field("public_url", &self.public_url)
            .finish()
    }
}

/// A business's look, for branded messages.
#[derive(Clone, Debug)]
struct Brand {
    name: String,
    primary: String,
    logo_url: Option<String>,
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn text(payload: &Value, key: &str) -> String {
    payload
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Subject, plain-text body and HTML body of an email template.
fn render(
    template: &str,
    payload: &Value,
    brand: &Brand,
    public_url: &str,
) -> Result<(String, String, String), DeliveryError> {
    let setup_link = payload
        .get("password_setup_token")
        .and_then(Value::as_str)
        .map(|token| format!("{public_url}/account/setup?token={token}"));
    let (subject, lines): (String, Vec<String>) = match template {
        "welcome_owner" => {
            let mut lines = vec![
                format!("Hello {},", text(payload, "owner_name")),
                format!(
                    "{} is ready on Fleetfront. Your storefront lives at {}",
                    brand.name,
                    text(payload, "storefront_url")
                ),
                format!(
                    "Your free trial runs until {}.",
                    text(payload, "trial_ends_at").get(..10).unwrap_or("")
                ),
            ];
            match &setup_link {
                Some(link) => lines.push(format!(
                    "Choose your password here (the link works once, for 7 days): {link}"
                )),
                None => lines
                    .push("Sign in with the email address this message was sent to.".to_owned()),
            }
            (format!("Welcome to Fleetfront, {}", brand.name), lines)
        }
        "staff_invitation" => {
            let mut lines = vec![format!(
                "You have been added to the {} team as {}.",
                brand.name,
                text(payload, "role")
            )];
            match &setup_link {
                Some(link) => lines.push(format!(
                    "Choose your password here (the link works once, for 7 days): {link}"
                )),
                None => lines.push(
                    "Sign in with your existing Fleetfront account to switch to this business."
                        .to_owned(),
                ),
            }
            (format!("You have joined {}", brand.name), lines)
        }
        "order_confirmation" => {
            let mut lines = vec![format!(
                "Thank you for your order at {}. We have sent it to the store, which will confirm it shortly.",
                brand.name
            )];
            for item in payload
                .get("items")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                let variant = text(item, "variant");
                let name = if variant.is_empty() {
                    text(item, "name")
                } else {
                    format!("{} ({variant})", text(item, "name"))
                };
                let quantity = item.get("quantity").and_then(Value::as_i64).unwrap_or(0);
                lines.push(format!("{quantity} × {name}: {}", text(item, "line_total")));
            }
            lines.push(format!("Total: {}", text(payload, "total")));
            lines.push(format!(
                "Follow your order here: {}",
                text(payload, "tracking_url")
            ));
            (format!("Your order at {}", brand.name), lines)
        }
        "order_status" => {
            let status = text(payload, "status");
            let mut lines = vec![match status.as_str() {
                "confirmed" => match payload.get("prep_time_minutes").and_then(Value::as_i64) {
                    Some(minutes) => format!(
                        "{} accepted your order; it will be ready in about {minutes} minutes.",
                        brand.name
                    ),
                    None => format!("{} accepted your order.", brand.name),
                },
                "preparing" => "Your order is being prepared.".to_owned(),
                "ready" => "Your order is ready.".to_owned(),
                "picked_up" => "Your order is on its way (or collected).".to_owned(),
                "delivered" => "Your order has been delivered. Enjoy!".to_owned(),
                "rejected" => format!("{} could not take your order.", brand.name),
                "cancelled" => "Your order was cancelled.".to_owned(),
                other => format!("Your order is now {other}."),
            }];
            let reason = text(payload, "reason");
            if !reason.is_empty() {
                lines.push(format!("Reason: {reason}"));
            }
            (format!("Your order at {}: {status}", brand.name), lines)
        }
        "cancellation_request" => {
            let order = text(payload, "order_id");
            let mut lines = vec![
                format!(
                    "The {} asked to cancel order {order}, which is {}.",
                    match text(payload, "by").as_str() {
                        "customer" => "customer".to_owned(),
                        "" => "someone".to_owned(),
                        other => other.to_owned(),
                    },
                    text(payload, "status").replace('_', " ")
                ),
                "It was not cancelled: please decide on the request in your order board."
                    .to_owned(),
            ];
            let reason = text(payload, "reason");
            if !reason.is_empty() {
                lines.push(format!("Reason: {reason}"));
            }
            lines.push(format!("{public_url}/business/orders/{order}"));
            (format!("Cancellation requested for order {order}"), lines)
        }
        "dispatch_unassigned" => {
            let order = text(payload, "order_id");
            let lines = vec![
                format!(
                    "No driver could be found for order {order}: nobody is online nearby, or \
                     every driver offered it declined or let the offer expire."
                ),
                "Please assign a driver by hand from your dispatch board.".to_owned(),
                format!("{public_url}/business/dispatch"),
            ];
            (format!("No driver for order {order}"), lines)
        }
        "delivery_failed" => {
            let order = text(payload, "order_id");
            let mut lines = vec![format!(
                "The driver could not complete the delivery of order {order}: {}.",
                text(payload, "reason").replace('_', " ")
            )];
            let words = text(payload, "text");
            if !words.is_empty() {
                lines.push(format!("The driver says: {words}"));
            }
            if payload.get("redispatched").and_then(Value::as_bool) == Some(true) {
                lines.push(
                    "The goods were not picked up; the order is being offered to another driver."
                        .to_owned(),
                );
            } else {
                lines.push(
                    "The goods were picked up: please contact the driver and the customer."
                        .to_owned(),
                );
            }
            lines.push(format!("{public_url}/business/orders/{order}"));
            (format!("Delivery failed for order {order}"), lines)
        }
        "delivery_reassigned" | "delivery_cancelled" => {
            let order = text(payload, "order_id");
            let what = if template == "delivery_cancelled" {
                "was cancelled"
            } else {
                "was given to another driver"
            };
            let lines = vec![
                format!("The delivery of order {order} from {} {what}.", brand.name),
                "Please do not go to the store or the customer for it.".to_owned(),
            ];
            (format!("Delivery of order {order} {what}"), lines)
        }
        other => {
            return Err(DeliveryError::permanent(format!(
                "unknown email template {other:?}"
            )))
        }
    };
    let plain = lines.join("\n\n");
    let logo = brand
        .logo_url
        .as_deref()
        .map(|url| {
            format!(
                "<img src=\"{}\" alt=\"{}\" height=\"48\">",
                escape(url),
                escape(&brand.name)
            )
        })
        .unwrap_or_default();
    let paragraphs: String = lines
        .iter()
        .map(|l| format!("<p>{}</p>", escape(l)))
        .collect();
    let html = format!(
        "<!doctype html><html><body style=\"font-family:sans-serif;color:#1a1a1a\">\
         <div style=\"border-top:6px solid {primary};padding:16px\">{logo}<h1 style=\"font-size:20px\">{name}</h1>{paragraphs}</div></body></html>",
        primary = escape(&brand.primary),
        name = escape(&brand.name),
    );
    Ok((subject, plain, html))
}

struct Claimed {
    business_id: Uuid,
    id: Uuid,
    topic: String,
    payload: Value,
    attempts: i32,
}

/// The outbox sender.
#[derive(Clone, Debug)]
pub struct OutboxSender {
    db: Db,
    notifier: Notifier,
}

impl OutboxSender {
    /// A sender over the runtime-role pool.
    pub fn new(db: Db, notifier: Notifier) -> Self {
        Self { db, notifier }
    }

    /// Delivers every message due at `now`; returns how many were handled (sent, rescheduled or
    /// given up).
    ///
    /// # Errors
    /// Database errors.
    pub async fn run_due(&self, now: DateTime<Utc>) -> Result<usize> {
        let mut handled = 0;
        while self.deliver_one(now).await? {
            handled += 1;
        }
        Ok(handled)
    }

    /// Claims and delivers one due message. Returns false when none is due.
    async fn deliver_one(&self, now: DateTime<Utc>) -> Result<bool> {
        let mut tx = self.db.pool.begin().await?;
        set_principal(&mut tx, "worker", None, None, None).await?;
        let row: Option<(Uuid, Uuid, String, Value, i32)> = sqlx::query_as(
            "SELECT business_id, id, topic, payload, attempts FROM outbox_messages \
             WHERE processed_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED",
        )
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((business_id, id, topic, payload, attempts)) = row else {
            tx.rollback().await?;
            return Ok(false);
        };
        let message = Claimed {
            business_id,
            id,
            topic,
            payload,
            attempts,
        };
        let brand: (String, Value, Option<String>) = sqlx::query_as(
            "SELECT b.name, s.theme_colors, s.logo_url FROM businesses b \
             JOIN business_storefront_settings s ON s.business_id = b.id WHERE b.id = $1",
        )
        .bind(message.business_id)
        .fetch_one(&mut *tx)
        .await?;
        let colors: ThemeColors = serde_json::from_value(brand.1).unwrap_or_default();
        let brand = Brand {
            name: brand.0,
            primary: colors.primary,
            logo_url: brand.2,
        };
        let outcome = self.deliver(&message, &brand).await;
        let attempts = message.attempts.saturating_add(1);
        match outcome {
            Ok(()) => {
                sqlx::query("UPDATE outbox_messages SET processed_at = $3, attempts = $4, last_error = NULL WHERE business_id = $1 AND id = $2")
                    .bind(message.business_id)
                    .bind(message.id)
                    .bind(now)
                    .bind(attempts)
                    .execute(&mut *tx)
                    .await?;
            }
            Err(e) => {
                let next = if e.retryable {
                    after_failure(u32::try_from(attempts).unwrap_or(u32::MAX))
                } else {
                    AfterFailure::GiveUp
                };
                let (next_attempt_at, failed_at) = match next {
                    AfterFailure::RetryIn(wait) => (now + wait, None),
                    AfterFailure::GiveUp => (now, Some(now)),
                };
                tracing::warn!(message = %message.id, topic = %message.topic, attempts, error = %e, gave_up = failed_at.is_some(), "outbox delivery failed");
                sqlx::query(
                    "UPDATE outbox_messages SET attempts = $3, last_error = $4, next_attempt_at = $5, failed_at = $6 \
                     WHERE business_id = $1 AND id = $2",
                )
                .bind(message.business_id)
                .bind(message.id)
                .bind(attempts)
                .bind(e.message.chars().take(1000).collect::<String>())
                .bind(next_attempt_at)
                .bind(failed_at)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn deliver(&self, message: &Claimed, brand: &Brand) -> Result<(), DeliveryError> {
        let payload = &message.payload;
        match message.topic.as_str() {
            "email" => {
                let template = text(payload, "template");
                let (subject, plain, html) =
                    render(&template, payload, brand, &self.notifier.public_url)?;
                let to: Mailbox = text(payload, "to")
                    .parse()
                    .map_err(|e| DeliveryError::permanent(format!("invalid recipient: {e}")))?;
                // The business's name shows as the sender; the address stays the platform's.
                let from = Mailbox::new(Some(brand.name.clone()), self.notifier.from.email.clone());
                let email = Message::builder()
                    .from(from)
                    .to(to)
                    .subject(subject)
                    .multipart(
                        MultiPart::alternative()
                            .singlepart(
                                SinglePart::builder()
                                    .header(ContentType::TEXT_PLAIN)
                                    .body(plain),
                            )
                            .singlepart(
                                SinglePart::builder()
                                    .header(ContentType::TEXT_HTML)
                                    .body(html),
                            ),
                    )
                    .map_err(|e| {
                        DeliveryError::permanent(format!("cannot build the email: {e}"))
                    })?;
                self.notifier.mail.send(email).await
            }
            "sms" => {
                self.notifier
                    .sms
                    .send(&text(payload, "to"), &text(payload, "text"))
                    .await
            }
            "push" => {
                self.notifier
                    .push
                    .send(
                        &text(payload, "device"),
                        &text(payload, "title"),
                        &text(payload, "body"),
                    )
                    .await
            }
            other => Err(DeliveryError::permanent(format!(
                "unknown outbox topic {other:?}"
            ))),
        }
    }

    /// Runs the sender until the task is aborted: wakes on `NOTIFY fleetfront_outbox` and at
    /// least every `poll` (for retries coming due and lost notifications).
    ///
    /// # Errors
    /// When the first `LISTEN` fails.
    pub async fn spawn(
        self,
        clock: impl Fn() -> DateTime<Utc> + Send + 'static,
        poll: Duration,
    ) -> anyhow::Result<tokio::task::JoinHandle<()>> {
        let mut listener = PgListener::connect_with(&self.db.pool).await?;
        listener.listen("fleetfront_outbox").await?;
        Ok(tokio::spawn(async move {
            loop {
                if let Err(e) = self.run_due(clock()).await {
                    tracing::warn!(error = %e, "outbox sender pass failed");
                }
                // Woken by a notification, or by the poll interval (for retries coming due).
                if let Ok(Err(e)) = tokio::time::timeout(poll, listener.try_recv()).await {
                    tracing::warn!(error = %e, "outbox listener failed");
                    tokio::time::sleep(poll).await;
                }
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brand() -> Brand {
        Brand {
            name: "Pizza <Palace>".into(),
            primary: "#ff0000".into(),
            logo_url: None,
        }
    }

    #[test]
    fn templates_escape_business_text_in_html() {
        let payload = serde_json::json!({"owner_name": "Ann", "storefront_url": "https://p.example/", "trial_ends_at": "2026-12-09T10:00:00Z"});
        let (subject, plain, html) =
            render("welcome_owner", &payload, &brand(), "https://app.example").expect("renders");
        assert_eq!(subject, "Welcome to Fleetfront, Pizza <Palace>");
        assert!(plain.contains("until 2026-12-09"), "{plain}");
        assert!(
            html.contains("Pizza &lt;Palace&gt;") && !html.contains("<Palace>"),
            "{html}"
        );
    }

    #[test]
    fn delivery_templates_render() {
        let failed = serde_json::json!({"order_id": "o-1", "reason": "customer_unreachable",
            "text": null, "redispatched": false});
        let (subject, plain, _) =
            render("delivery_failed", &failed, &brand(), "https://app.example").expect("renders");
        assert_eq!(subject, "Delivery failed for order o-1");
        assert!(plain.contains("customer unreachable"), "{plain}");
        assert!(plain.contains("were picked up"), "{plain}");
        for (template, what) in [
            ("delivery_reassigned", "given to another driver"),
            ("delivery_cancelled", "cancelled"),
        ] {
            let payload = serde_json::json!({"order_id": "o-2"});
            let (subject, plain, _) = render(template, &payload, &brand(), "").expect("renders");
            assert!(subject.contains(what), "{subject}");
            assert!(plain.contains("Pizza <Palace>"), "{plain}");
        }
    }

    #[test]
    fn order_confirmation_lists_items_and_total_escaped() {
        let payload = serde_json::json!({
            "items": [{"name": "Pizza <b>", "variant": "Large", "quantity": 2, "line_total": "25.00 EUR"}],
            "total": "27.50 EUR",
            "tracking_url": "https://x.example/t?token=abc",
        });
        let (subject, plain, html) =
            render("order_confirmation", &payload, &brand(), "").expect("renders");
        assert_eq!(subject, "Your order at Pizza <Palace>");
        assert!(
            plain.contains("2 × Pizza <b> (Large): 25.00 EUR"),
            "{plain}"
        );
        assert!(plain.contains("Total: 27.50 EUR"), "{plain}");
        assert!(
            html.contains("Pizza &lt;b&gt;") && !html.contains("<b>"),
            "{html}"
        );
        let (subject, plain, _) = render(
            "order_status",
            &serde_json::json!({"status": "rejected", "reason": "closed early"}),
            &brand(),
            "",
        )
        .expect("renders");
        assert!(subject.ends_with("rejected"));
        assert!(plain.contains("Reason: closed early"));
    }

    #[test]
    fn cancellation_requests_tell_the_business_what_and_why_escaped() {
        let payload = serde_json::json!({
            "order_id": "0190", "status": "picked_up", "by": "customer", "reason": "<wrong> address",
        });
        let (subject, plain, html) = render(
            "cancellation_request",
            &payload,
            &brand(),
            "https://app.example",
        )
        .expect("renders");
        assert_eq!(subject, "Cancellation requested for order 0190");
        assert!(
            plain.contains("The customer asked to cancel order 0190, which is picked up."),
            "{plain}"
        );
        assert!(plain.contains("Reason: <wrong> address"), "{plain}");
        assert!(
            plain.contains("https://app.example/business/orders/0190"),
            "{plain}"
        );
        assert!(
            html.contains("&lt;wrong&gt;") && !html.contains("<wrong>"),
            "{html}"
        );
    }

    #[test]
    fn unknown_templates_are_permanent_failures() {
        let err = render("nope", &Value::Null, &brand(), "").expect_err("unknown");
        assert!(!err.retryable);
    }
}
