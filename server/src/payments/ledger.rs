//! The payment ledger's SQL: a payment's row in `payment_transactions` and the platform's fee on
//! an order in `platform_fees`. Both are written inside the caller's transaction, so they
//! commit or roll back with the order change they record (checkout, acceptance, cancellation).

use fleetfront_domain::Money;
use sqlx::Row;
use uuid::Uuid;

use super::{GatewayKind, TransactionStatus};
use crate::db::{new_id, Tx};
use crate::error::Result;

/// A payment to record.
#[derive(Clone, Debug)]
pub struct NewPayment<'a> {
    /// The store.
    pub business_id: Uuid,
    /// The order paid.
    pub order_id: Uuid,
    /// The customer, when signed in.
    pub customer_id: Option<Uuid>,
    /// The amount.
    pub amount: Money,
    /// `cash` or `card` (as `orders.payment_method`).
    pub payment_method: &'a str,
    /// The gateway.
    pub gateway: GatewayKind,
    /// The gateway's payment id (Stripe `pi_…`), once it answered.
    pub gateway_transaction_id: Option<&'a str>,
    /// Its state.
    pub status: TransactionStatus,
}

/// Records a payment; returns its id.
///
/// # Errors
/// Database errors (a second completed payment of one order is a `conflict`).
pub async fn record_payment(tx: &mut Tx, payment: &NewPayment<'_>) -> Result<Uuid> {
    let id = new_id();
    sqlx::query(
        "INSERT INTO payment_transactions (business_id, id, order_id, customer_id, amount_minor, \
         currency, payment_method, payment_gateway, gateway_transaction_id, status) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(payment.business_id)
    .bind(id)
    .bind(payment.order_id)
    .bind(payment.customer_id)
    .bind(payment.amount.minor)
    .bind(payment.amount.currency.code())
    .bind(payment.payment_method)
    .bind(payment.gateway.as_str())
    .bind(payment.gateway_transaction_id)
    .bind(payment.status.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

/// Moves the recorded payments of an order to `status`, unless they are already further along
/// (see [`TransactionStatus::may_replace`]); returns how many rows changed.
///
/// # Errors
/// Database errors.
pub async fn set_order_payment_status(
    tx: &mut Tx,
    business_id: Uuid,
    order_id: Uuid,
    status: TransactionStatus,
) -> Result<u64> {
    let rows = sqlx::query(
        "SELECT id, status FROM payment_transactions WHERE business_id = $1 AND order_id = $2 \
         ORDER BY created_at, id FOR UPDATE",
    )
    .bind(business_id)
    .bind(order_id)
    .fetch_all(&mut **tx)
    .await?;
    let mut changed = 0;
    for row in rows {
        let id: Uuid = row.try_get("id")?;
        let recorded: String = row.try_get("status")?;
        let replace = TransactionStatus::parse(&recorded).is_none_or(|r| status.may_replace(r));
        if replace && recorded != status.as_str() {
            changed += sqlx::query(
                "UPDATE payment_transactions SET status = $3, updated_at = now() \
                 WHERE business_id = $1 AND id = $2",
            )
            .bind(business_id)
            .bind(id)
            .bind(status.as_str())
            .execute(&mut **tx)
            .await?
            .rows_affected();
        }
    }
    Ok(changed)
}

/// The platform's fee on an order, computed by the domain's one rounding rule.
#[derive(Clone, Debug)]
pub struct NewFee<'a> {
    /// The store.
    pub business_id: Uuid,
    /// The order.
    pub order_id: Uuid,
    /// What the fee is for, e.g. `order_commission` (one fee of a type per order).
    pub fee_type: &'a str,
    /// The amount the fee is a share of.
    pub base: Money,
    /// The share in basis points (the plan's percentage; 100 = 1 %).
    pub fee_bps: i64,
}

/// Records a fee once per order and fee type (a repeated call records nothing more); returns
/// its amount, computed by [`fleetfront_domain::plan::platform_fee`].
///
/// # Errors
/// `validation_failed` for a share outside 0–10,000 basis points; database errors.
pub async fn record_platform_fee(tx: &mut Tx, fee: &NewFee<'_>) -> Result<Money> {
    let amount = fleetfront_domain::plan::platform_fee(fee.base, fee.fee_bps)
        .map_err(|e| crate::error::Error::field("fee_bps", "out_of_range", e.to_string()))?;
    sqlx::query(
        "INSERT INTO platform_fees (business_id, id, order_id, fee_type, base_amount_minor, fee_bps, \
         fee_amount_minor, currency) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (business_id, order_id, fee_type) DO NOTHING",
    )
    .bind(fee.business_id)
    .bind(new_id())
    .bind(fee.order_id)
    .bind(fee.fee_type)
    .bind(fee.base.minor)
    .bind(i32::try_from(fee.fee_bps).expect("checked to be at most 10,000"))
    .bind(amount.minor)
    .bind(amount.currency.code())
    .execute(&mut **tx)
    .await?;
    Ok(amount)
}

/// The fee type of the platform's commission on an order.
pub const ORDER_COMMISSION: &str = "order_commission";
/// The fee rate when a business has no live subscription (the starter plan's, the highest).
const STARTER_PLATFORM_FEE_BPS: i64 = 500;

/// Records the platform's commission on an order whose payment was captured (`captured`), once
/// per order whichever path learned of the capture first (the transition's payment job or
/// Stripe's webhook): the plan's rate, copied into the subscription, of what the store earned,
/// tips excluded (a tip is the driver's or staff's). Returns the fee.
///
/// # Errors
/// `not_found` for an order the caller cannot see; database errors.
pub async fn record_order_commission(
    tx: &mut Tx,
    business_id: Uuid,
    order_id: Uuid,
    captured: Money,
) -> Result<Money> {
    let tip: Option<i64> =
        sqlx::query_scalar("SELECT tip_minor FROM orders WHERE business_id = $1 AND id = $2")
            .bind(business_id)
            .bind(order_id)
            .fetch_optional(&mut **tx)
            .await?;
    let tip = tip.ok_or_else(|| crate::error::Error::not_found("order"))?;
    let bps: Option<i32> = sqlx::query_scalar(
        "SELECT platform_fee_bps FROM business_subscriptions WHERE business_id = $1 AND status <> 'canceled'",
    )
    .bind(business_id)
    .fetch_optional(&mut **tx)
    .await?;
    let bps = bps.map_or(STARTER_PLATFORM_FEE_BPS, i64::from);
    let base = captured
        .checked_sub(Money::new(tip.min(captured.minor), captured.currency))
        .map_err(crate::error::Error::unexpected)?;
    record_platform_fee(
        tx,
        &NewFee {
            business_id,
            order_id,
            fee_type: ORDER_COMMISSION,
            base,
            fee_bps: bps,
        },
    )
    .await
}
