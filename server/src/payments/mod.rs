//! Payments: the [`PaymentGateway`] trait every provider implements, and the cash-on-delivery
//! gateway. Card data never reaches the server: gateways deal in their own tokens and ids.
//!
//! The flow for an order: `authorize` when the order is placed (a card is authorized, not
//! charged; cash is "authorized" at once), `capture` when the domain's order state machine says
//! so (`Effect::CapturePayment`), `cancel` to release an authorization (`ReleasePayment`), and
//! `refund` for captured money (`RefundPayment`). Every call carries an idempotency key derived
//! from our own ids, so a retried call never charges twice.

use fleetfront_domain::Money;
use uuid::Uuid;

pub mod jobs;
pub mod ledger;
pub mod stripe;
pub mod webhook;

/// A boxed, sendable future: keeps the trait object-safe without a macro crate.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Which gateway handles a payment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GatewayKind {
    /// Cash collected on delivery or at pickup.
    Cash,
    /// Stripe PaymentIntents.
    Stripe,
}

impl GatewayKind {
    /// Stored form (`payment_transactions.payment_gateway`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cash => "cash",
            Self::Stripe => "stripe",
        }
    }
}

/// The state of a payment in our ledger (`payment_transactions.status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransactionStatus {
    /// Created; the gateway has not (yet) reserved the money.
    Pending,
    /// The money is reserved; capture or release it.
    Authorized,
    /// The money was taken.
    Completed,
    /// The payment method was refused.
    Failed,
    /// All the money taken was returned.
    Refunded,
    /// The reservation was released.
    Canceled,
}

impl TransactionStatus {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Authorized => "authorized",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Refunded => "refunded",
            Self::Canceled => "canceled",
        }
    }

    /// Parses the stored form.
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "pending" => Self::Pending,
            "authorized" => Self::Authorized,
            "completed" => Self::Completed,
            "failed" => Self::Failed,
            "refunded" => Self::Refunded,
            "canceled" => Self::Canceled,
            _ => return None,
        })
    }

    /// How far along its life a payment in this state is. A provider's payment only moves
    /// forward (a failed attempt may be retried, so pending and failed share a rank).
    fn rank(self) -> u8 {
        match self {
            Self::Pending | Self::Failed => 0,
            Self::Authorized => 1,
            Self::Completed | Self::Canceled => 2,
            Self::Refunded => 3,
        }
    }

    /// Whether a state observed at the provider may replace the recorded one. Observations can
    /// arrive out of order (two webhook deliveries re-fetching the same payment concurrently),
    /// so an older observation never overwrites a newer state.
    pub fn may_replace(self, recorded: TransactionStatus) -> bool {
        self.rank() >= recorded.rank()
    }
}

/// Ask to authorize an amount for an order.
#[derive(Clone, Debug)]
pub struct AuthorizeRequest {
    /// Idempotency key, derived from our ids (e.g. `order:{id}:authorize:{attempt}`).
    pub idempotency_key: String,
    /// The store.
    pub business_id: Uuid,
    /// The order.
    pub order_id: Uuid,
    /// How much.
    pub amount: Money,
    /// The gateway's token of the customer's payment method (e.g. Stripe `pm_…`), if any.
    pub payment_method: Option<String>,
    /// Receipt email.
    pub receipt_email: Option<String>,
    /// The gateway's customer the payment method is saved to (Stripe `cus_…`), if any.
    pub customer: Option<String>,
}

/// The gateway's answer to an authorization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Authorization {
    /// The amount is reserved (or, for cash, will be collected); capture later.
    Authorized {
        /// The gateway's payment id (Stripe `pi_…`).
        gateway_payment_id: String,
    },
    /// The customer must complete a step in the provider's own UI (3-D Secure, hosted fields);
    /// the client uses `client_secret` with the provider's SDK.
    RequiresAction {
        /// The gateway's payment id.
        gateway_payment_id: String,
        /// Secret for the provider's client SDK.
        client_secret: String,
        /// The provider's kind of next action (Stripe `next_action.type`, e.g.
        /// `use_stripe_sdk`).
        next_action: String,
    },
}

/// Ask to capture, release or refund.
#[derive(Clone, Debug)]
pub struct PaymentRef {
    /// Idempotency key, derived from our ids.
    pub idempotency_key: String,
    /// The gateway's payment id.
    pub gateway_payment_id: String,
    /// Amount to capture or refund (`None`: all of it).
    pub amount: Option<Money>,
}

/// The gateway's record of money that moved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settled {
    /// The gateway's id of the capture or refund (Stripe `pi_…` or `re_…`).
    pub gateway_transaction_id: String,
    /// Amount moved.
    pub amount: Money,
}

/// Why a gateway call failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    /// The payment method was declined; tell the customer in words.
    #[error("the payment was declined: {0}")]
    Declined(String),
    /// The request was wrong (our bug or bad input); not retryable.
    #[error("the payment provider refused the request: {0}")]
    Invalid(String),
    /// The provider could not be reached or failed; retry with the same idempotency key.
    #[error("the payment provider is unavailable: {0}")]
    Unavailable(String),
}

impl PaymentError {
    /// Whether retrying with the same idempotency key may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// A payment provider.
pub trait PaymentGateway: Send + Sync {
    /// Which gateway this is.
    fn kind(&self) -> GatewayKind;

    /// Reserves the amount (manual capture).
    fn authorize(
        &self,
        request: AuthorizeRequest,
    ) -> BoxFuture<'_, Result<Authorization, PaymentError>>;

    /// Takes reserved money.
    fn capture(&self, payment: PaymentRef) -> BoxFuture<'_, Result<Settled, PaymentError>>;

    /// Releases a reservation that will not be captured.
    fn cancel(&self, payment: PaymentRef) -> BoxFuture<'_, Result<(), PaymentError>>;

    /// Returns captured money.
    fn refund(&self, payment: PaymentRef) -> BoxFuture<'_, Result<Settled, PaymentError>>;

    /// Reads where an authorization stands now, e.g. after the customer's step in the
    /// provider's UI (3-D Secure): held (`Authorized`), still waiting for the customer
    /// (`RequiresAction`), or refused (`Declined`, the customer may try another card).
    /// Gateways whose authorizations never wait for the customer need not implement it.
    fn authorization(
        &self,
        gateway_payment_id: String,
    ) -> BoxFuture<'_, Result<Authorization, PaymentError>> {
        Box::pin(async move {
            Err(PaymentError::Invalid(format!(
                "this gateway cannot re-read the payment {gateway_payment_id}"
            )))
        })
    }
}

/// Cash on delivery (or at pickup): nothing to reserve; capture records the cash collected.
#[derive(Clone, Copy, Debug, Default)]
pub struct CashGateway;

impl PaymentGateway for CashGateway {
    fn kind(&self) -> GatewayKind {
        GatewayKind::Cash
    }

    fn authorize(
        &self,
        request: AuthorizeRequest,
    ) -> BoxFuture<'_, Result<Authorization, PaymentError>> {
        Box::pin(async move {
            Ok(Authorization::Authorized {
                gateway_payment_id: format!("cash_{}", request.order_id.simple()),
            })
        })
    }

    fn capture(&self, payment: PaymentRef) -> BoxFuture<'_, Result<Settled, PaymentError>> {
        Box::pin(async move {
            let amount = payment.amount.ok_or_else(|| {
                PaymentError::Invalid("cash capture needs the amount collected".into())
            })?;
            Ok(Settled {
                gateway_transaction_id: payment.gateway_payment_id,
                amount,
            })
        })
    }

    fn cancel(&self, _payment: PaymentRef) -> BoxFuture<'_, Result<(), PaymentError>> {
        Box::pin(async { Ok(()) })
    }

    fn authorization(
        &self,
        gateway_payment_id: String,
    ) -> BoxFuture<'_, Result<Authorization, PaymentError>> {
        Box::pin(async move { Ok(Authorization::Authorized { gateway_payment_id }) })
    }

    fn refund(&self, payment: PaymentRef) -> BoxFuture<'_, Result<Settled, PaymentError>> {
        Box::pin(async move {
            let amount = payment.amount.ok_or_else(|| {
                PaymentError::Invalid("cash refund needs the amount returned".into())
            })?;
            Ok(Settled {
                gateway_transaction_id: format!("{}_refund", payment.gateway_payment_id),
                amount,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleetfront_domain::Currency;

    #[test]
    fn observed_states_never_move_a_payment_backwards() {
        use TransactionStatus::*;
        assert!(Completed.may_replace(Authorized));
        assert!(Refunded.may_replace(Completed));
        assert!(Failed.may_replace(Pending) && Pending.may_replace(Failed));
        assert!(!Authorized.may_replace(Completed));
        assert!(!Completed.may_replace(Refunded));
        assert!(!Pending.may_replace(Canceled));
        for s in [Pending, Authorized, Completed, Failed, Refunded, Canceled] {
            assert_eq!(TransactionStatus::parse(s.as_str()), Some(s));
        }
    }

    #[tokio::test]
    async fn cash_authorizes_at_once_and_captures_what_was_collected() {
        let eur = Currency::parse("EUR").expect("known");
        let order = Uuid::from_u128(7);
        let auth = CashGateway
            .authorize(AuthorizeRequest {
                idempotency_key: "k".into(),
                business_id: Uuid::nil(),
                order_id: order,
                amount: Money::new(1250, eur),
                payment_method: None,
                receipt_email: None,
                customer: None,
            })
            .await
            .expect("cash never declines");
        let Authorization::Authorized { gateway_payment_id } = auth else {
            panic!("cash needs no action")
        };
        let settled = CashGateway
            .capture(PaymentRef {
                idempotency_key: "c".into(),
                gateway_payment_id,
                amount: Some(Money::new(1250, eur)),
            })
            .await
            .expect("captured");
        assert_eq!(settled.amount.minor, 1250);
        assert!(CashGateway
            .capture(PaymentRef {
                idempotency_key: "c".into(),
                gateway_payment_id: "x".into(),
                amount: None
            })
            .await
            .is_err());
    }
}
