//! The Stripe adapter: PaymentIntents over HTTPS (form-encoded requests, bearer secret key,
//! caller-supplied idempotency keys), Transfers to connected accounts for payouts
//! ([`StripeGateway::create_transfer`]), Stripe's error objects mapped to [`PaymentError`], and
//! the verification of Stripe's webhook signatures.
//!
//! Stripe cannot be reached from the test environment, so the tests run this adapter against a
//! local stand-in that follows Stripe's documented requests and responses
//! (`server/tests/support/stripe_standin.rs`).

use std::collections::HashMap;
use std::time::Duration;

use fleetfront_domain::{Currency, Money};
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::{
    Authorization, AuthorizeRequest, BoxFuture, GatewayKind, PaymentError, PaymentGateway,
    PaymentRef, Settled, TransactionStatus,
};

/// Stripe's production API.
pub const DEFAULT_API_BASE: &str = "https://api.stripe.com";

/// The API version every request pins, so a change of the account's default version cannot
/// change the shapes this adapter reads.
pub const API_VERSION: &str = "2024-06-20";

/// How old (or how far in the future) a webhook signature's timestamp may be, in seconds:
/// Stripe's libraries default to five minutes.
pub const SIGNATURE_TOLERANCE_SECS: i64 = 300;

/// Stripe PaymentIntents over HTTPS.
#[derive(Clone)]
pub struct StripeGateway {
    client: reqwest::Client,
    api_base: String,
    secret_key: String,
}

impl std::fmt::Debug for StripeGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret key.
        f.debug_struct("StripeGateway")
            .field("api_base", &self.api_base)
            .finish_non_exhaustive()
    }
}

/// A PaymentIntent as Stripe returns it (the fields this adapter reads).
#[derive(Clone, Debug, Deserialize)]
pub struct PaymentIntent {
    /// `pi_…`.
    pub id: String,
    /// Amount in the currency's minor unit.
    pub amount: i64,
    /// Amount that can still be captured.
    #[serde(default)]
    pub amount_capturable: i64,
    /// Amount captured.
    #[serde(default)]
    pub amount_received: i64,
    /// Lower-case ISO currency code.
    pub currency: String,
    /// `requires_payment_method`, `requires_confirmation`, `requires_action`, `processing`,
    /// `requires_capture`, `canceled` or `succeeded`.
    pub status: String,
    /// Secret for Stripe's client SDKs (3-D Secure).
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Our metadata: `business_id`, `order_id`.
    #[serde(default)]
    pub metadata: HashMap<String, String>,
    /// The latest charge: an id, or the object when expanded.
    #[serde(default)]
    pub latest_charge: Option<Value>,
    /// Why the last attempt failed.
    #[serde(default)]
    pub last_payment_error: Option<StripeErrorBody>,
    /// What the customer must do (`requires_action`): `{"type": "use_stripe_sdk", …}`.
    #[serde(default)]
    pub next_action: Option<Value>,
}

impl PaymentIntent {
    /// Amount refunded, when the latest charge was expanded.
    pub fn amount_refunded(&self) -> i64 {
        self.latest_charge
            .as_ref()
            .and_then(|c| c.get("amount_refunded"))
            .and_then(Value::as_i64)
            .unwrap_or(0)
    }

    /// What our ledger records for this PaymentIntent's state.
    pub fn ledger_status(&self) -> TransactionStatus {
        match self.status.as_str() {
            "requires_capture" => TransactionStatus::Authorized,
            "succeeded"
                if self.amount_received > 0 && self.amount_refunded() >= self.amount_received =>
            {
                TransactionStatus::Refunded
            }
            "succeeded" => TransactionStatus::Completed,
            "canceled" => TransactionStatus::Canceled,
            "requires_payment_method" if self.last_payment_error.is_some() => {
                TransactionStatus::Failed
            }
            _ => TransactionStatus::Pending,
        }
    }

    /// The money of this intent (`amount` in its currency).
    ///
    /// # Errors
    /// `Invalid` when Stripe names a currency the platform does not support.
    pub fn money(&self, minor: i64) -> Result<Money, PaymentError> {
        Ok(Money::new(minor, currency(&self.currency)?))
    }
}

/// Stripe's error object (`{"error": {...}}`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct StripeErrorBody {
    /// `card_error`, `invalid_request_error`, `api_error`, `idempotency_error`, …
    #[serde(default, rename = "type")]
    pub kind: String,
    /// E.g. `card_declined`, `resource_missing`.
    #[serde(default)]
    pub code: Option<String>,
    /// For card errors, the issuer's reason, e.g. `insufficient_funds`.
    #[serde(default)]
    pub decline_code: Option<String>,
    /// A message for people (safe to show for card errors).
    #[serde(default)]
    pub message: Option<String>,
}

/// A PaymentMethod as Stripe returns it (the fields saved cards need).
#[derive(Clone, Debug, Deserialize)]
pub struct PaymentMethod {
    /// `pm_…`.
    pub id: String,
    /// `card`, `sepa_debit`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// The card's display fields, for `card` methods.
    #[serde(default)]
    pub card: Option<CardDetails>,
    /// The customer it is attached to (`cus_…`).
    #[serde(default)]
    pub customer: Option<String>,
}

/// What a card shows (Stripe never returns the number).
#[derive(Clone, Debug, Deserialize)]
pub struct CardDetails {
    /// `visa`, `mastercard`, …
    pub brand: String,
    /// The last four digits.
    pub last4: String,
    /// Expiry month, 1–12.
    pub exp_month: i32,
    /// Expiry year.
    pub exp_year: i32,
}

/// A Transfer as Stripe returns it (the fields payouts read).
#[derive(Clone, Debug, Deserialize)]
pub struct Transfer {
    /// `tr_…`.
    pub id: String,
    /// Amount in the currency's minor unit.
    pub amount: i64,
    /// Lower-case ISO currency code.
    pub currency: String,
    /// The connected account (`acct_…`).
    #[serde(default)]
    pub destination: Option<String>,
    /// The group it was sent under.
    #[serde(default)]
    pub transfer_group: Option<String>,
}

#[derive(Deserialize)]
struct Customer {
    id: String,
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: StripeErrorBody,
}

#[derive(Deserialize)]
struct Refund {
    id: String,
    amount: i64,
    currency: String,
    #[serde(default)]
    status: Option<String>,
}

fn currency(code: &str) -> Result<Currency, PaymentError> {
    Currency::parse(&code.to_ascii_uppercase())
        .map_err(|e| PaymentError::Invalid(format!("stripe answered in an unknown currency: {e}")))
}

/// Maps an unsuccessful Stripe answer to a [`PaymentError`].
pub fn error_of(status: StatusCode, should_retry: Option<bool>, body: &[u8]) -> PaymentError {
    let error = serde_json::from_slice::<ErrorEnvelope>(body)
        .map(|e| e.error)
        .unwrap_or_default();
    let message = error
        .message
        .clone()
        .unwrap_or_else(|| format!("HTTP {}", status.as_u16()));
    // Stripe says explicitly whether a retry with the same key may succeed; otherwise rate
    // limits, lock conflicts on the same idempotency key (409) and server errors are transient.
    let transient = should_retry.unwrap_or(
        status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::CONFLICT
            || status.is_server_error(),
    );
    if error.kind == "card_error" {
        let reason = error.decline_code.or(error.code);
        return PaymentError::Declined(match reason {
            Some(reason) => format!("{message} ({reason})"),
            None => message,
        });
    }
    if transient {
        return PaymentError::Unavailable(format!("stripe: {message}"));
    }
    let kind = if error.kind.is_empty() {
        "error".to_owned()
    } else {
        error.kind
    };
    match error.code {
        Some(code) => PaymentError::Invalid(format!("stripe {kind} {code}: {message}")),
        None => PaymentError::Invalid(format!("stripe {kind}: {message}")),
    }
}

impl StripeGateway {
    /// A gateway for `api_base` (e.g. [`DEFAULT_API_BASE`]) with a secret key (`sk_…`).
    ///
    /// # Errors
    /// When the HTTP client cannot be built (no TLS backend).
    pub fn new(api_base: &str, secret_key: &str) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(40))
            .user_agent(concat!("fleetfront/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            api_base: api_base.trim_end_matches('/').to_owned(),
            secret_key: secret_key.to_owned(),
        })
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Vec<u8>, PaymentError> {
        let response = request
            .bearer_auth(&self.secret_key)
            .header("Stripe-Version", API_VERSION)
            .send()
            .await
            .map_err(|e| PaymentError::Unavailable(format!("stripe is unreachable: {e}")))?;
        let status = response.status();
        let should_retry = response
            .headers()
            .get("stripe-should-retry")
            .and_then(|v| v.to_str().ok())
            .map(|v| v == "true");
        let body = response
            .bytes()
            .await
            .map_err(|e| PaymentError::Unavailable(format!("stripe's answer was cut off: {e}")))?;
        if status.is_success() {
            Ok(body.to_vec())
        } else {
            Err(error_of(status, should_retry, &body))
        }
    }

    async fn post<T: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        idempotency_key: &str,
        form: &[(String, String)],
    ) -> Result<T, PaymentError> {
        let request = self
            .client
            .post(format!("{}{path}", self.api_base))
            .header("Idempotency-Key", idempotency_key)
            .form(form);
        let body = self.send(request).await?;
        parse(&body)
    }

    /// Reads a PaymentIntent as it is now, with its latest charge expanded (webhooks use this
    /// instead of trusting the event's copy, which may be stale or arrive out of order).
    ///
    /// # Errors
    /// As every call: declined, invalid (e.g. no such intent) or unavailable.
    pub async fn retrieve_payment_intent(&self, id: &str) -> Result<PaymentIntent, PaymentError> {
        check_id(id, "pi_")?;
        let request = self
            .client
            .get(format!("{}/v1/payment_intents/{id}", self.api_base))
            .query(&[("expand[]", "latest_charge")]);
        let body = self.send(request).await?;
        parse(&body)
    }

    /// Reads a PaymentMethod (`GET /v1/payment_methods/{id}`): its brand, last four digits and
    /// expiry, and the customer it is attached to.
    ///
    /// # Errors
    /// `Invalid` for an id that is not a `pm_…` id or is unknown to Stripe; `Unavailable`.
    pub async fn retrieve_payment_method(&self, id: &str) -> Result<PaymentMethod, PaymentError> {
        check_id(id, "pm_")?;
        let request = self
            .client
            .get(format!("{}/v1/payment_methods/{id}", self.api_base));
        let body = self.send(request).await?;
        parse(&body)
    }

    /// Creates a Customer (`POST /v1/customers`) with our ids in its metadata; returns `cus_…`.
    ///
    /// # Errors
    /// As every call.
    pub async fn create_customer(
        &self,
        idempotency_key: &str,
        email: &str,
        business_id: uuid::Uuid,
        customer_id: uuid::Uuid,
    ) -> Result<String, PaymentError> {
        let form = vec![
            ("email".to_owned(), email.to_owned()),
            ("metadata[business_id]".to_owned(), business_id.to_string()),
            ("metadata[customer_id]".to_owned(), customer_id.to_string()),
        ];
        let customer: Customer = self.post("/v1/customers", idempotency_key, &form).await?;
        check_id(&customer.id, "cus_")?;
        Ok(customer.id)
    }

    /// Attaches a PaymentMethod to a Customer (`POST /v1/payment_methods/{id}/attach`), so it
    /// can be used again.
    ///
    /// # Errors
    /// `Invalid` when it belongs to another customer or does not exist; `Unavailable`.
    pub async fn attach_payment_method(
        &self,
        idempotency_key: &str,
        id: &str,
        customer: &str,
    ) -> Result<PaymentMethod, PaymentError> {
        check_id(id, "pm_")?;
        check_id(customer, "cus_")?;
        let form = vec![("customer".to_owned(), customer.to_owned())];
        self.post(
            &format!("/v1/payment_methods/{id}/attach"),
            idempotency_key,
            &form,
        )
        .await
    }

    /// Detaches a PaymentMethod from its Customer (`POST /v1/payment_methods/{id}/detach`): it
    /// cannot be used again.
    ///
    /// # Errors
    /// As every call.
    pub async fn detach_payment_method(
        &self,
        idempotency_key: &str,
        id: &str,
    ) -> Result<(), PaymentError> {
        check_id(id, "pm_")?;
        let _: PaymentMethod = self
            .post(
                &format!("/v1/payment_methods/{id}/detach"),
                idempotency_key,
                &[],
            )
            .await?;
        Ok(())
    }

    /// Sends money from the platform's balance to a connected account (`POST /v1/transfers`,
    /// Stripe Connect): `amount` in its currency's minor unit to `destination` (`acct_…`),
    /// grouped under `transfer_group`, with our ids in `metadata`. The idempotency key makes a
    /// retry return the first transfer instead of paying twice.
    ///
    /// # Errors
    /// `Invalid` for a destination that is not an `acct_…` id, a non-positive amount, or what
    /// Stripe refuses (e.g. an unknown destination, insufficient platform balance);
    /// `Unavailable` when Stripe cannot be reached or fails (retry with the same key).
    pub async fn create_transfer(
        &self,
        idempotency_key: &str,
        amount: Money,
        destination: &str,
        transfer_group: &str,
        metadata: &[(&str, String)],
    ) -> Result<Transfer, PaymentError> {
        check_id(destination, "acct_")?;
        if amount.minor <= 0 {
            return Err(PaymentError::Invalid(
                "a transfer must be more than zero".into(),
            ));
        }
        let mut form = vec![
            ("amount".to_owned(), amount.minor.to_string()),
            (
                "currency".to_owned(),
                amount.currency.code().to_ascii_lowercase(),
            ),
            ("destination".to_owned(), destination.to_owned()),
            ("transfer_group".to_owned(), transfer_group.to_owned()),
        ];
        for (key, value) in metadata {
            form.push((format!("metadata[{key}]"), value.clone()));
        }
        let transfer: Transfer = self.post("/v1/transfers", idempotency_key, &form).await?;
        check_id(&transfer.id, "tr_")?;
        if transfer.amount != amount.minor
            || !transfer
                .currency
                .eq_ignore_ascii_case(amount.currency.code())
        {
            return Err(PaymentError::Invalid(format!(
                "stripe's transfer {} is not the one asked for",
                transfer.id
            )));
        }
        Ok(transfer)
    }

    async fn authorize_intent(
        &self,
        request: AuthorizeRequest,
    ) -> Result<Authorization, PaymentError> {
        let payment_method = request.payment_method.ok_or_else(|| {
            PaymentError::Invalid("a card payment needs a payment method token".into())
        })?;
        let mut form = vec![
            ("amount".to_owned(), request.amount.minor.to_string()),
            (
                "currency".to_owned(),
                request.amount.currency.code().to_ascii_lowercase(),
            ),
            ("capture_method".to_owned(), "manual".to_owned()),
            ("confirm".to_owned(), "true".to_owned()),
            ("payment_method".to_owned(), payment_method),
            // Cards only: with automatic payment methods a confirmation would need a
            // return_url for redirect-based methods.
            ("payment_method_types[]".to_owned(), "card".to_owned()),
            (
                "metadata[business_id]".to_owned(),
                request.business_id.to_string(),
            ),
            (
                "metadata[order_id]".to_owned(),
                request.order_id.to_string(),
            ),
        ];
        if let Some(email) = request.receipt_email {
            form.push(("receipt_email".to_owned(), email));
        }
        // A saved card is attached to a customer, whom Stripe requires to be named.
        if let Some(customer) = request.customer {
            form.push(("customer".to_owned(), customer));
        }
        let intent: PaymentIntent = self
            .post("/v1/payment_intents", &request.idempotency_key, &form)
            .await?;
        authorization_of(intent)
    }
}

/// What an authorization's PaymentIntent means for the order (Stripe's documented life cycle of
/// a PaymentIntent confirmed with `capture_method=manual`).
///
/// # Errors
/// `Declined` for an intent that needs a new payment method or was canceled; `Unavailable` while
/// Stripe is still processing (the outcome arrives by webhook); `Invalid` for states a confirmed
/// intent cannot be in.
pub fn authorization_of(intent: PaymentIntent) -> Result<Authorization, PaymentError> {
    match intent.status.as_str() {
        // `succeeded` is what an automatic capture would give; the money is held either way.
        "requires_capture" | "succeeded" => Ok(Authorization::Authorized {
            gateway_payment_id: intent.id,
        }),
        "requires_action" | "requires_confirmation" => match intent.client_secret {
            Some(client_secret) => Ok(Authorization::RequiresAction {
                next_action: intent
                    .next_action
                    .as_ref()
                    .and_then(|a| a.get("type"))
                    .and_then(Value::as_str)
                    .unwrap_or("use_stripe_sdk")
                    .to_owned(),
                gateway_payment_id: intent.id,
                client_secret,
            }),
            None => Err(PaymentError::Invalid(format!(
                "stripe asked for customer action on {} without a client secret",
                intent.id
            ))),
        },
        "requires_payment_method" => Err(PaymentError::Declined(
            intent
                .last_payment_error
                .and_then(|e| e.message)
                .unwrap_or_else(|| "the payment method was not accepted".to_owned()),
        )),
        "canceled" => Err(PaymentError::Declined("the payment was canceled".into())),
        "processing" => Err(PaymentError::Unavailable(format!(
            "stripe is still processing {}",
            intent.id
        ))),
        other => Err(PaymentError::Invalid(format!(
            "stripe answered with an unknown PaymentIntent status {other:?}"
        ))),
    }
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, PaymentError> {
    serde_json::from_slice(body)
        .map_err(|e| PaymentError::Unavailable(format!("stripe's answer was not understood: {e}")))
}

/// Ids go into URL paths: refuse anything but Stripe's id alphabet.
fn check_id(id: &str, prefix: &str) -> Result<(), PaymentError> {
    let ok = id.starts_with(prefix)
        && id.len() <= 255
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(PaymentError::Invalid(format!(
            "{id:?} is not a Stripe {prefix}… id"
        )))
    }
}

impl PaymentGateway for StripeGateway {
    fn kind(&self) -> GatewayKind {
        GatewayKind::Stripe
    }

    fn authorize(
        &self,
        request: AuthorizeRequest,
    ) -> BoxFuture<'_, Result<Authorization, PaymentError>> {
        Box::pin(self.authorize_intent(request))
    }

    fn authorization(
        &self,
        gateway_payment_id: String,
    ) -> BoxFuture<'_, Result<Authorization, PaymentError>> {
        Box::pin(async move {
            let intent = self.retrieve_payment_intent(&gateway_payment_id).await?;
            authorization_of(intent)
        })
    }

    fn capture(&self, payment: PaymentRef) -> BoxFuture<'_, Result<Settled, PaymentError>> {
        Box::pin(async move {
            check_id(&payment.gateway_payment_id, "pi_")?;
            let mut form = Vec::new();
            if let Some(amount) = payment.amount {
                form.push(("amount_to_capture".to_owned(), amount.minor.to_string()));
            }
            let path = format!("/v1/payment_intents/{}/capture", payment.gateway_payment_id);
            let intent: PaymentIntent = self.post(&path, &payment.idempotency_key, &form).await?;
            if intent.status != "succeeded" {
                return Err(PaymentError::Invalid(format!(
                    "stripe left {} in status {} after capture",
                    intent.id, intent.status
                )));
            }
            Ok(Settled {
                amount: intent.money(intent.amount_received)?,
                gateway_transaction_id: intent.id,
            })
        })
    }

    fn cancel(&self, payment: PaymentRef) -> BoxFuture<'_, Result<(), PaymentError>> {
        Box::pin(async move {
            check_id(&payment.gateway_payment_id, "pi_")?;
            let path = format!("/v1/payment_intents/{}/cancel", payment.gateway_payment_id);
            let intent: PaymentIntent = self.post(&path, &payment.idempotency_key, &[]).await?;
            if intent.status != "canceled" {
                return Err(PaymentError::Invalid(format!(
                    "stripe left {} in status {} after cancel",
                    intent.id, intent.status
                )));
            }
            Ok(())
        })
    }

    fn refund(&self, payment: PaymentRef) -> BoxFuture<'_, Result<Settled, PaymentError>> {
        Box::pin(async move {
            check_id(&payment.gateway_payment_id, "pi_")?;
            let mut form = vec![(
                "payment_intent".to_owned(),
                payment.gateway_payment_id.clone(),
            )];
            if let Some(amount) = payment.amount {
                form.push(("amount".to_owned(), amount.minor.to_string()));
            }
            let refund: Refund = self
                .post("/v1/refunds", &payment.idempotency_key, &form)
                .await?;
            if matches!(refund.status.as_deref(), Some("failed") | Some("canceled")) {
                return Err(PaymentError::Declined(format!(
                    "the refund {} {}",
                    refund.id,
                    refund.status.as_deref().unwrap_or_default()
                )));
            }
            Ok(Settled {
                amount: Money::new(refund.amount, currency(&refund.currency)?),
                gateway_transaction_id: refund.id,
            })
        })
    }
}

/// Why a webhook's signature was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `t=` timestamp or no `v1=` signature in the header.
    #[error("the Stripe-Signature header has no timestamp or no v1 signature")]
    Malformed,
    /// No `v1` signature matches the payload.
    #[error("no signature matches the payload")]
    Mismatch,
    /// The timestamp is outside the tolerance.
    #[error("the signature's timestamp is more than {SIGNATURE_TOLERANCE_SECS} s away from now")]
    Stale,
}

/// The `v1` signature of a payload: hex HMAC-SHA256 of `"{timestamp}.{payload}"` keyed with the
/// endpoint's signing secret (the whole `whsec_…` string, as Stripe's libraries use it).
pub fn signature(secret: &str, timestamp: i64, payload: &[u8]) -> String {
    hex::encode(mac(secret, timestamp, payload).finalize().into_bytes())
}

fn mac(secret: &str, timestamp: i64, payload: &[u8]) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    mac
}

/// Verifies a `Stripe-Signature` header (`t=…,v1=…[,v1=…][,v0=…]`) as Stripe documents it: any
/// one `v1` signature must equal the HMAC of `"{t}.{payload}"` (compared in constant time), and
/// `t` must be within [`SIGNATURE_TOLERANCE_SECS`] of `now` (Unix seconds). Other schemes
/// (`v0`, test-mode leftovers) are ignored.
///
/// # Errors
/// [`SignatureError`].
pub fn verify_signature(
    secret: &str,
    header: &str,
    payload: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        let Some((key, value)) = part.trim().split_once('=') else {
            continue;
        };
        match key {
            "t" => timestamp = value.parse::<i64>().ok(),
            "v1" => candidates.push(value),
            _ => {}
        }
    }
    let Some(timestamp) = timestamp else {
        return Err(SignatureError::Malformed);
    };
    if candidates.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let expected = mac(secret, timestamp, payload).finalize().into_bytes();
    let matched = candidates.iter().fold(false, |found, candidate| {
        let ok = hex::decode(candidate)
            .map(|given| bool::from(given.as_slice().ct_eq(&expected[..])))
            .unwrap_or(false);
        found | ok
    });
    if !matched {
        return Err(SignatureError::Mismatch);
    }
    // Checked after the signature, so a stale but authentic delivery is told apart from a forgery.
    if (now - timestamp).abs() > SIGNATURE_TOLERANCE_SECS {
        return Err(SignatureError::Stale);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";

    #[test]
    fn signature_round_trip_and_refusals() {
        let body = br#"{"id":"evt_1"}"#;
        let t = 1_700_000_000;
        let good = signature(SECRET, t, body);
        let header = format!("t={t},v1={good}");
        assert_eq!(verify_signature(SECRET, &header, body, t + 10), Ok(()));
        // Several v1 signatures (secret rotation): one match is enough.
        let rotated = format!("t={t},v1={},v1={good},v0=abc", "00".repeat(32));
        assert_eq!(verify_signature(SECRET, &rotated, body, t), Ok(()));
        assert_eq!(
            verify_signature("whsec_other", &header, body, t),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(SECRET, &header, br#"{"id":"evt_2"}"#, t),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(SECRET, &header, body, t + 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify_signature(SECRET, &format!("v1={good}"), body, t),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_signature(SECRET, &format!("t={t},v0={good}"), body, t),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_signature(SECRET, &format!("t={t},v1=zz"), body, t),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn stripe_errors_map_to_payment_errors() {
        let card = br#"{"error":{"type":"card_error","code":"card_declined","decline_code":"insufficient_funds","message":"Your card has insufficient funds."}}"#;
        assert!(matches!(
            error_of(StatusCode::PAYMENT_REQUIRED, None, card),
            PaymentError::Declined(m) if m.contains("insufficient_funds")
        ));
        let invalid = br#"{"error":{"type":"invalid_request_error","code":"resource_missing","message":"No such payment_intent"}}"#;
        assert!(matches!(
            error_of(StatusCode::NOT_FOUND, None, invalid),
            PaymentError::Invalid(_)
        ));
        assert!(error_of(StatusCode::TOO_MANY_REQUESTS, None, b"{}").is_retryable());
        assert!(error_of(StatusCode::BAD_GATEWAY, None, b"not json").is_retryable());
        assert!(!error_of(StatusCode::INTERNAL_SERVER_ERROR, Some(false), b"{}").is_retryable());
        assert!(error_of(StatusCode::BAD_REQUEST, Some(true), b"{}").is_retryable());
    }

    #[test]
    fn intent_states_map_to_ledger_states() {
        let intent = |status: &str| PaymentIntent {
            id: "pi_1".into(),
            amount: 100,
            amount_capturable: 0,
            amount_received: 0,
            currency: "eur".into(),
            status: status.into(),
            client_secret: Some("pi_1_secret_x".into()),
            metadata: HashMap::new(),
            latest_charge: None,
            last_payment_error: None,
            next_action: None,
        };
        assert_eq!(
            intent("requires_capture").ledger_status(),
            TransactionStatus::Authorized
        );
        assert_eq!(
            intent("canceled").ledger_status(),
            TransactionStatus::Canceled
        );
        let mut paid = intent("succeeded");
        paid.amount_received = 100;
        assert_eq!(paid.ledger_status(), TransactionStatus::Completed);
        paid.latest_charge = Some(serde_json::json!({"id": "ch_1", "amount_refunded": 100}));
        assert_eq!(paid.ledger_status(), TransactionStatus::Refunded);
        assert!(matches!(
            authorization_of(intent("requires_action")),
            Ok(Authorization::RequiresAction { .. })
        ));
        assert!(matches!(
            authorization_of(intent("requires_payment_method")),
            Err(PaymentError::Declined(_))
        ));
    }
}
