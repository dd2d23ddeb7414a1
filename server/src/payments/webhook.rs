//! Processing of Stripe's webhook events: signature check, deduplication by event id, and the
//! payment's state recorded from a fresh read of the PaymentIntent.
//!
//! Stripe delivers events at least once and in no particular order. So an event is only a
//! prompt: for `payment_intent.*` and `charge.refunded` the PaymentIntent is re-fetched from
//! Stripe and its current state recorded, and a state never replaces a later one
//! ([`TransactionStatus::may_replace`]). The event id is written in the same transaction as
//! the payment change, so a failed processing leaves no trace and Stripe's retry redoes it,
//! while a processed event is answered 200 again without being processed twice.
//!
//! Runs as the `payment_webhook` principal, scoped to the business named in the PaymentIntent's
//! metadata as Stripe returns it (never as the event's payload says).
//!
//! What the payment's state means for its order is applied in the same transaction, as the
//! order system (`order_worker`, scoped to that business), after the payment is recorded:
//! a held payment (`requires_capture`, e.g. `payment_intent.amount_capturable_updated` after
//! 3-D Secure) moves an order awaiting payment to pending ([`orders::confirm_awaiting`]); a
//! captured one (`payment_intent.succeeded`, `charge.captured`) records the platform's fee
//! (once per order, whichever path saw the capture first) and completes the order's capture
//! job, so a capture learned only here is booked all the same.

use chrono::{DateTime, Utc};
use fleetfront_domain::{BusinessId, ErrorCode};
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::Row;
use uuid::Uuid;

use super::ledger;
use super::stripe::{verify_signature, PaymentIntent, SignatureError, StripeGateway};
use super::{PaymentError, TransactionStatus};
use crate::audit::{self, Who};
use crate::context::Ctx;
use crate::db::{new_id, set_principal, Db, Tx};
use crate::error::{Error, Result};
use crate::orders;

/// The Stripe account's gateway and the webhook endpoint's signing secret.
#[derive(Debug)]
pub struct Stripe {
    /// The API client.
    pub gateway: StripeGateway,
    /// The endpoint's signing secret (`whsec_…`).
    webhook_secret: String,
}

impl Stripe {
    /// Stripe with an API client and the webhook endpoint's signing secret.
    pub fn new(gateway: StripeGateway, webhook_secret: impl Into<String>) -> Self {
        Self {
            gateway,
            webhook_secret: webhook_secret.into(),
        }
    }
}

/// What became of a delivered event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The payment's state was recorded.
    Processed,
    /// The event was processed before; nothing was done.
    Duplicate,
    /// An event this server does not act on (or about a payment that is not ours); recorded.
    Ignored,
}

impl Outcome {
    /// Wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Processed => "processed",
            Self::Duplicate => "duplicate",
            Self::Ignored => "ignored",
        }
    }
}

#[derive(Deserialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    data: EventData,
}

#[derive(Deserialize)]
struct EventData {
    object: Value,
}

const PRINCIPAL: &str = "payment_webhook";

/// Verifies and processes one delivery.
///
/// # Errors
/// `invalid_signature` (400) for a missing, wrong or stale signature; `malformed_request` for a
/// body that is not an event; `unavailable` (503, Stripe retries) when Stripe cannot be read or
/// the order is not committed yet.
pub async fn process(
    db: &Db,
    ctx: &Ctx,
    stripe: &Stripe,
    signature: Option<&str>,
    payload: &[u8],
    now: DateTime<Utc>,
) -> Result<Outcome> {
    let header = signature.ok_or_else(|| {
        Error::new(
            ErrorCode::InvalidSignature,
            "the Stripe-Signature header is missing",
        )
    })?;
    verify_signature(&stripe.webhook_secret, header, payload, now.timestamp()).map_err(|e| {
        let detail = match e {
            SignatureError::Stale => "the event is too old (or its clock too far off); refused",
            SignatureError::Malformed | SignatureError::Mismatch => {
                "the Stripe-Signature header does not match the payload"
            }
        };
        tracing::warn!(reason = %e, "stripe webhook refused");
        Error::new(ErrorCode::InvalidSignature, detail)
    })?;
    let event: Event = serde_json::from_slice(payload).map_err(|e| {
        Error::new(
            ErrorCode::MalformedRequest,
            format!("the body is not a Stripe event: {e}"),
        )
    })?;
    if already_processed(db, &event.id).await? {
        return Ok(Outcome::Duplicate);
    }
    let Some(intent_id) = intent_of(&event) else {
        return record_only(db, &event, None).await;
    };
    let intent = match stripe.gateway.retrieve_payment_intent(&intent_id).await {
        Ok(intent) => intent,
        Err(PaymentError::Unavailable(message)) => {
            tracing::warn!(event = %event.id, %message, "stripe unavailable while processing a webhook");
            return Err(Error::new(
                ErrorCode::Unavailable,
                "the payment could not be read from Stripe; retry later",
            ));
        }
        Err(e) => {
            // The intent does not exist for this key (another account or mode): nothing to do,
            // and retrying would not change that.
            tracing::warn!(event = %event.id, error = %e, "webhook names a PaymentIntent we cannot read");
            return record_only(db, &event, None).await;
        }
    };
    let ids = ids_of(&intent);
    let Some((business_id, order_id)) = ids else {
        tracing::info!(event = %event.id, intent = %intent.id, "PaymentIntent without our metadata; ignored");
        return record_only(db, &event, None).await;
    };
    let mut tx = db.pool.begin().await?;
    set_principal(&mut tx, PRINCIPAL, None, None, Some(business_id)).await?;
    if !claim_event(&mut tx, &event, Some(business_id)).await? {
        return Ok(Outcome::Duplicate);
    }
    if let Some(status) = record_intent(&mut tx, business_id, order_id, &intent).await? {
        let who = Who {
            kind: PRINCIPAL,
            id: None,
        };
        let event =
            audit::Event::ok("payment.update", "payment_intent", &intent.id).with_details(json!({
                "event_id": event.id,
                "event_type": event.kind,
                "order_id": order_id,
                "status": status.as_str(),
            }));
        audit::record(&mut tx, ctx, who, Some(BusinessId(business_id)), event).await?;
        apply_to_order(&mut tx, business_id, order_id, &intent, status, now).await?;
    }
    tx.commit().await?;
    Ok(Outcome::Processed)
}

/// What a payment's recorded state means for its order, in the event's transaction, as the order
/// system scoped to the payment's business (the `payment_webhook` principal sees no orders).
async fn apply_to_order(
    tx: &mut Tx,
    business_id: Uuid,
    order_id: Uuid,
    intent: &PaymentIntent,
    status: TransactionStatus,
    now: DateTime<Utc>,
) -> Result<()> {
    if !matches!(
        status,
        TransactionStatus::Authorized | TransactionStatus::Completed
    ) {
        return Ok(());
    }
    set_principal(tx, "order_worker", None, None, Some(business_id)).await?;
    match status {
        TransactionStatus::Authorized => {
            orders::confirm_awaiting(tx, BusinessId(business_id), order_id, now).await?;
        }
        TransactionStatus::Completed => {
            let captured = intent
                .money(intent.amount_received)
                .map_err(|e| Error::unexpected(anyhow::anyhow!("{e}")))?;
            ledger::record_order_commission(tx, business_id, order_id, captured).await?;
            sqlx::query(
                "UPDATE orders SET payment_status = 'captured', updated_at = now() \
                 WHERE business_id = $1 AND id = $2 AND payment_status IN ('requires_action', 'authorized')",
            )
            .bind(business_id)
            .bind(order_id)
            .execute(&mut **tx)
            .await?;
            sqlx::query(
                "UPDATE payment_jobs SET completed_at = $3, gateway_result_id = $4, last_error = NULL, updated_at = now() \
                 WHERE business_id = $1 AND order_id = $2 AND effect = 'capture' \
                   AND completed_at IS NULL AND failed_at IS NULL",
            )
            .bind(business_id)
            .bind(order_id)
            .bind(now)
            .bind(&intent.id)
            .execute(&mut **tx)
            .await?;
        }
        _ => {}
    }
    Ok(())
}

/// The PaymentIntent an event is about, for the events that change a payment.
fn intent_of(event: &Event) -> Option<String> {
    let object = &event.data.object;
    let id = if event.kind.starts_with("payment_intent.") {
        object.get("id")
    } else if event.kind == "charge.refunded"
        || event.kind == "charge.captured"
        || event.kind.starts_with("charge.refund.")
    {
        object.get("payment_intent")
    } else {
        None
    };
    id.and_then(Value::as_str).map(str::to_owned)
}

fn ids_of(intent: &PaymentIntent) -> Option<(Uuid, Uuid)> {
    let business = intent.metadata.get("business_id")?.parse().ok()?;
    let order = intent.metadata.get("order_id")?.parse().ok()?;
    Some((business, order))
}

async fn already_processed(db: &Db, event_id: &str) -> Result<bool> {
    let mut tx = db.pool.begin().await?;
    set_principal(&mut tx, PRINCIPAL, None, None, None).await?;
    let seen: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM payment_webhook_events WHERE event_id = $1)",
    )
    .bind(event_id)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(seen)
}

/// Records the event id; false when another delivery recorded it first.
async fn claim_event(tx: &mut Tx, event: &Event, business_id: Option<Uuid>) -> Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO payment_webhook_events (event_id, provider, event_type, scope_business_id, processed_at) \
         VALUES ($1, 'stripe', $2, $3, now()) ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(&event.id)
    .bind(&event.kind)
    .bind(business_id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

async fn record_only(db: &Db, event: &Event, business_id: Option<Uuid>) -> Result<Outcome> {
    let mut tx = db.pool.begin().await?;
    set_principal(&mut tx, PRINCIPAL, None, None, business_id).await?;
    let claimed = claim_event(&mut tx, event, business_id).await?;
    tx.commit().await?;
    Ok(if claimed {
        Outcome::Ignored
    } else {
        Outcome::Duplicate
    })
}

/// Writes the PaymentIntent's current state to the ledger: updates the row of this intent (an
/// order's checkout writes it when it authorizes), or creates it when the webhook comes first.
/// Returns the state written, or `None` when the recorded state is already later.
async fn record_intent(
    tx: &mut Tx,
    business_id: Uuid,
    order_id: Uuid,
    intent: &PaymentIntent,
) -> Result<Option<TransactionStatus>> {
    let observed = intent.ledger_status();
    let metadata = json!({
        "stripe_status": intent.status,
        "amount_received": intent.amount_received,
        "amount_refunded": intent.amount_refunded(),
    });
    let current = sqlx::query(
        "SELECT id, status FROM payment_transactions \
         WHERE business_id = $1 AND payment_gateway = 'stripe' AND gateway_transaction_id = $2 \
         FOR UPDATE",
    )
    .bind(business_id)
    .bind(&intent.id)
    .fetch_optional(&mut **tx)
    .await?;
    match current {
        Some(row) => {
            let id: Uuid = row.try_get("id")?;
            let recorded: String = row.try_get("status")?;
            let recorded = TransactionStatus::parse(&recorded)
                .ok_or_else(|| anyhow::anyhow!("unknown payment status {recorded:?}"))?;
            if !observed.may_replace(recorded) {
                tracing::info!(intent = %intent.id, recorded = recorded.as_str(), observed = observed.as_str(),
                    "older observation of a payment ignored");
                return Ok(None);
            }
            sqlx::query(
                "UPDATE payment_transactions SET status = $3, metadata = metadata || $4, updated_at = now() \
                 WHERE business_id = $1 AND id = $2",
            )
            .bind(business_id)
            .bind(id)
            .bind(observed.as_str())
            .bind(metadata)
            .execute(&mut **tx)
            .await?;
        }
        None => {
            let inserted = sqlx::query(
                "INSERT INTO payment_transactions (business_id, id, order_id, amount_minor, currency, \
                 payment_method, payment_gateway, gateway_transaction_id, status, metadata) \
                 VALUES ($1, $2, $3, $4, $5, 'card', 'stripe', $6, $7, $8)",
            )
            .bind(business_id)
            .bind(new_id())
            .bind(order_id)
            .bind(intent.amount)
            .bind(intent.currency.to_ascii_uppercase())
            .bind(&intent.id)
            .bind(observed.as_str())
            .bind(metadata)
            .execute(&mut **tx)
            .await;
            if let Err(sqlx::Error::Database(db)) = &inserted {
                if db.code().as_deref() == Some("23503") {
                    // The order's own transaction has not committed yet (or never will): let
                    // Stripe retry later rather than lose the event.
                    return Err(Error::new(
                        ErrorCode::Unavailable,
                        "the order of this payment is not known yet; retry later",
                    ));
                }
            }
            inserted?;
        }
    }
    Ok(Some(observed))
}
