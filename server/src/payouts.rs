//! Payouts: the SQL behind what the platform owes businesses and drivers, how a payout is
//! computed, processed and linked to the ledger rows it covers, and the reports over the same
//! rows (a driver's earnings, the platform's fees, drivers' performance, cash deposits).
//!
//! The sums are the domain's (`fleetfront_domain::payout`): this module reads ledger rows,
//! turns them into `BusinessLine`s and `DriverLine`s, and stores what the rules return.
//!
//! - **Run** ([`run`]): for every closed period (each party's own time zone) with items no
//!   payout covers yet, one pending payout per (party, period, currency) under the unique key
//!   `payout::payout_key_in`. A business payout covers order completions (delivered, or a
//!   pickup collected) and card refunds through `business_payout_items`, whose primary key lets
//!   each be covered once, and the order commissions through `platform_fees.payout_id`; a
//!   driver payout covers earnings through `driver_earnings.payout_id`. Running again finds
//!   nothing uncovered and creates nothing.
//! - **Process** ([`prepare`], then the gateway with no transaction open, then [`finish`]):
//!   the payout row is locked and its status checked, so two concurrent requests pay once; the
//!   transfer's idempotency key is the payout key, so a retry after a lost answer cannot pay
//!   twice either. A driver's cash is netted at that moment: everything it holds in the
//!   payout's currency is written off with `settled` rows naming the payout, under a per-driver
//!   advisory lock that cash deposits take too. A negative net is not transferred: the payout
//!   is `carried_over` and its balance joins the party's next processed payout.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use fleetfront_domain::api::payout::{
    BusinessFeeTotals, CashDepositView, CashHeldView, CurrencyEarnings, DateRange,
    DriverEarningsView, DriverPerformanceView, EarningsEntryView, EarningsRange, EarningsTotals,
    FeeSplit, PayoutFilter, PayoutPartyKind, PayoutRecord, PayoutState,
};
use fleetfront_domain::payout::{
    self as rules, BusinessLine, BusinessPayout, DriverLine, DriverPayout, EarningsEntry, Grouping,
    PayoutParty, PayoutPeriod, Settlement, Tz,
};
use fleetfront_domain::performance::{self, Promise};
use fleetfront_domain::value::TimeZoneName;
use fleetfront_domain::{BusinessId, Currency, Money, UserId};
use sqlx::FromRow;
use uuid::Uuid;

use crate::app::App;
use crate::db::{new_id, Tx};
use crate::error::{Error, Result};
use crate::payments::stripe::StripeGateway;
use crate::payments::{BoxFuture, PaymentError};

/// How long a payout may stay `processing` before another request may retry its transfer
/// (with the same idempotency key): a request that died between the transfer and its record.
pub const STALE_PROCESSING: Duration = Duration::minutes(2);

// Gateway --------------------------------------------------------------------------------------

/// A transfer to make.
#[derive(Clone, Debug)]
pub struct TransferRequest {
    /// The payout key: the same key always means the same transfer.
    pub idempotency_key: String,
    /// What to send (positive).
    pub amount: Money,
    /// The party's connected account at the provider.
    pub destination: String,
    /// The payout's id, for the provider's records.
    pub payout_id: Uuid,
}

/// A transfer made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferReceipt {
    /// The provider's id (`tr_…`).
    pub transfer_id: String,
}

/// Sends payouts. The real implementation is Stripe's Transfers API.
pub trait PayoutGateway: Send + Sync + std::fmt::Debug {
    /// Sends `request.amount` to `request.destination`, idempotently by key.
    fn transfer(
        &self,
        request: TransferRequest,
    ) -> BoxFuture<'_, Result<TransferReceipt, PaymentError>>;
}

impl PayoutGateway for StripeGateway {
    fn transfer(
        &self,
        request: TransferRequest,
    ) -> BoxFuture<'_, Result<TransferReceipt, PaymentError>> {
        Box::pin(async move {
            let transfer = self
                .create_transfer(
                    &request.idempotency_key,
                    request.amount,
                    &request.destination,
                    &request.idempotency_key,
                    &[("payout_id", request.payout_id.to_string())],
                )
                .await?;
            Ok(TransferReceipt {
                transfer_id: transfer.id,
            })
        })
    }
}

/// The gateway payouts go through: Stripe once configured.
pub fn gateway(app: &App) -> Option<Arc<dyn PayoutGateway>> {
    app.stripe
        .get()
        .map(|s| Arc::new(s.gateway.clone()) as Arc<dyn PayoutGateway>)
}

// Helpers --------------------------------------------------------------------------------------

fn currency(code: &str) -> Result<Currency> {
    Currency::parse(code.trim()).map_err(Error::unexpected)
}

fn money_err(e: fleetfront_domain::MoneyError) -> Error {
    Error::unexpected(anyhow::anyhow!("payout arithmetic: {e}"))
}

fn zone(name: &str) -> Tz {
    TimeZoneName::parse(name).map_or(Tz::UTC, |z| z.tz())
}

fn grouping_str(g: Grouping) -> &'static str {
    match g {
        Grouping::Day => "day",
        Grouping::Week => "week",
    }
}

fn u32_of(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

/// Takes the per-driver cash lock: deposits and payout processing of one driver take turns.
async fn lock_driver_cash(tx: &mut Tx, driver: Uuid) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('driver_cash:' || $1::text, 0))")
        .bind(driver)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

// Records --------------------------------------------------------------------------------------

const PAYOUTS: &str = "WITH payouts AS (\
    SELECT 'business'::text AS party, business_id, NULL::uuid AS driver_id, id, payout_key, period_kind, \
           period_start, period_end, currency::text AS currency, status, gross_revenue_minor, platform_fees_minor, \
           driver_payments_minor, refunds_minor, cash_kept_minor, carried_over_minor, net_minor, orders AS items, \
           0::bigint AS earnings_minor, transfer_id, failure_reason, attempts, carried_into_id, created_at, \
           processed_at, processed_by \
      FROM business_payouts \
    UNION ALL \
    SELECT 'driver'::text, NULL::uuid, driver_id, id, payout_key, period_kind, period_start, period_end, \
           currency::text, status, 0, 0, 0, 0, cash_kept_minor, carried_over_minor, net_minor, deliveries, \
           earnings_minor, transfer_id, failure_reason, attempts, carried_into_id, created_at, processed_at, \
           processed_by \
      FROM driver_payouts) ";

#[derive(FromRow)]
struct PayoutRow {
    party: String,
    business_id: Option<Uuid>,
    driver_id: Option<Uuid>,
    id: Uuid,
    payout_key: String,
    period_kind: String,
    period_start: DateTime<Utc>,
    period_end: DateTime<Utc>,
    currency: String,
    status: String,
    gross_revenue_minor: i64,
    platform_fees_minor: i64,
    driver_payments_minor: i64,
    refunds_minor: i64,
    cash_kept_minor: i64,
    carried_over_minor: i64,
    net_minor: i64,
    items: i32,
    earnings_minor: i64,
    transfer_id: Option<String>,
    failure_reason: Option<String>,
    attempts: i32,
    carried_into_id: Option<Uuid>,
    created_at: DateTime<Utc>,
    processed_at: Option<DateTime<Utc>>,
    processed_by: Option<Uuid>,
}

impl PayoutRow {
    fn record(self) -> Result<PayoutRecord> {
        let c = currency(&self.currency)?;
        let m = |minor| Money::new(minor, c);
        let status = PayoutState::parse(&self.status)
            .ok_or_else(|| Error::unexpected(anyhow::anyhow!("payout status {}", self.status)))?;
        let grouping = if self.period_kind == "week" {
            Grouping::Week
        } else {
            Grouping::Day
        };
        let count = u32::try_from(self.items.max(0)).unwrap_or(0);
        let (party, business, driver) = if self.party == "business" {
            let business = BusinessPayout {
                gross_revenue: m(self.gross_revenue_minor),
                platform_fees: m(self.platform_fees_minor),
                driver_payments: m(self.driver_payments_minor),
                refunds: m(self.refunds_minor),
                cash_kept: m(self.cash_kept_minor),
                carried_over: m(self.carried_over_minor),
                net: m(self.net_minor),
                orders: count,
            };
            (PayoutPartyKind::Business, Some(business), None)
        } else {
            let driver = DriverPayout {
                earnings: m(self.earnings_minor),
                cash_kept: m(self.cash_kept_minor),
                carried_over: m(self.carried_over_minor),
                net: m(self.net_minor),
                deliveries: count,
            };
            (PayoutPartyKind::Driver, None, Some(driver))
        };
        Ok(PayoutRecord {
            id: self.id,
            party,
            business_id: self.business_id,
            driver_id: self.driver_id,
            key: self.payout_key,
            grouping,
            period: PayoutPeriod {
                start: self.period_start,
                end: self.period_end,
            },
            currency: c,
            status,
            business,
            driver,
            transfer_id: self.transfer_id,
            failure_reason: self.failure_reason,
            attempts: u32::try_from(self.attempts.max(0)).unwrap_or(0),
            carried_into: self.carried_into_id,
            created_at: self.created_at,
            processed_at: self.processed_at,
            processed_by: self.processed_by,
        })
    }
}

/// One payout, of either party.
///
/// # Errors
/// `not_found`; database errors.
pub async fn find(tx: &mut Tx, id: Uuid) -> Result<PayoutRecord> {
    let row: Option<PayoutRow> =
        sqlx::query_as(&format!("{PAYOUTS}SELECT * FROM payouts WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
    row.ok_or_else(|| Error::not_found("payout"))?.record()
}

/// Whose payouts a list shows.
#[derive(Clone, Copy, Debug)]
pub enum Scope {
    /// Everybody's (admins).
    All,
    /// One business's.
    Business(BusinessId),
    /// One driver's.
    Driver(UserId),
}

/// A page of payouts, newest period first, within `scope` (row level security agrees).
///
/// # Errors
/// Database errors.
pub async fn page(
    tx: &mut Tx,
    filter: &PayoutFilter,
    scope: Scope,
) -> Result<(Vec<PayoutRecord>, u64)> {
    let (party, business, driver) = match scope {
        Scope::Business(b) => (Some("business"), Some(b.0), None),
        Scope::Driver(d) => (Some("driver"), None, Some(d.0)),
        Scope::All => (
            filter.party.map(|p| match p {
                PayoutPartyKind::Business => "business",
                PayoutPartyKind::Driver => "driver",
            }),
            None,
            None,
        ),
    };
    let filters = "WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR party = $2) \
                   AND ($3::uuid IS NULL OR business_id = $3) AND ($4::uuid IS NULL OR driver_id = $4)";
    let total: i64 =
        sqlx::query_scalar(&format!("{PAYOUTS}SELECT count(*) FROM payouts {filters}"))
            .bind(filter.status.map(PayoutState::as_str))
            .bind(party)
            .bind(business)
            .bind(driver)
            .fetch_one(&mut **tx)
            .await?;
    let rows: Vec<PayoutRow> = sqlx::query_as(&format!(
        "{PAYOUTS}SELECT * FROM payouts {filters} ORDER BY period_start DESC, created_at DESC, id \
         LIMIT $5 OFFSET $6"
    ))
    .bind(filter.status.map(PayoutState::as_str))
    .bind(party)
    .bind(business)
    .bind(driver)
    .bind(i64::from(filter.per_page))
    .bind(i64::from(filter.page.saturating_sub(1)) * i64::from(filter.per_page))
    .fetch_all(&mut **tx)
    .await?;
    let items = rows
        .into_iter()
        .map(PayoutRow::record)
        .collect::<Result<Vec<_>>>()?;
    Ok((items, u64::try_from(total).unwrap_or(0)))
}

/// Sets (or removes) a business's or a driver's payout account; false when there is no such
/// party.
///
/// # Errors
/// Database errors.
pub async fn set_account(
    tx: &mut Tx,
    party: PayoutPartyKind,
    id: Uuid,
    account: Option<&str>,
) -> Result<bool> {
    let sql = match party {
        PayoutPartyKind::Business => "UPDATE businesses SET payout_account = $2, updated_at = now() WHERE id = $1",
        PayoutPartyKind::Driver => {
            "UPDATE driver_profiles SET payout_account = $2, updated_at = now() WHERE driver_id = $1"
        }
    };
    let done = sqlx::query(sql)
        .bind(id)
        .bind(account)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    Ok(done == 1)
}

// Run ------------------------------------------------------------------------------------------

#[derive(FromRow)]
struct CompletionRow {
    id: Uuid,
    currency: String,
    total_minor: i64,
    fulfilment: String,
    payment_method: String,
    at: DateTime<Utc>,
    fee: i64,
    driver_cost: i64,
}

#[derive(FromRow)]
struct RefundRow {
    id: Uuid,
    currency: String,
    total_minor: i64,
    at: DateTime<Utc>,
    refunded: i64,
    fee: i64,
}

/// One business payout item, as stored and as summed.
struct Item {
    kind: &'static str,
    /// The order, or the `driver_cash` row of a deposit.
    item_id: Uuid,
    at: DateTime<Utc>,
    total: i64,
    fee: i64,
    driver_cost: i64,
    kept: i64,
    refund: i64,
    fee_returned: i64,
}

/// Creates the pending payouts of every period closed before local `until` (and before `now`)
/// that has items no payout covers; returns the ids of the payouts created. Items of a period
/// whose payout is already being processed or done are left for later (logged).
///
/// # Errors
/// Database errors.
pub async fn run(
    tx: &mut Tx,
    grouping: Grouping,
    until: NaiveDate,
    now: DateTime<Utc>,
) -> Result<Vec<Uuid>> {
    // One run at a time: two concurrent runs would race for the same keys.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('payout_run', 0))")
        .execute(&mut **tx)
        .await?;
    let mut created = Vec::new();
    let businesses: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT id, time_zone FROM businesses ORDER BY id")
            .fetch_all(&mut **tx)
            .await?;
    for (business, tz_name) in businesses {
        let tz = zone(&tz_name);
        created.extend(run_business(tx, business, tz, grouping, until, now).await?);
    }
    created.extend(run_drivers(tx, grouping, until, now).await?);
    Ok(created)
}

async fn run_business(
    tx: &mut Tx,
    business: Uuid,
    tz: Tz,
    grouping: Grouping,
    until: NaiveDate,
    now: DateTime<Utc>,
) -> Result<Vec<Uuid>> {
    let cutoff = rules::local_midnight(until, tz).min(now);
    let completions: Vec<CompletionRow> = sqlx::query_as(
        "SELECT o.id, o.currency::text AS currency, o.total_minor, o.fulfilment, o.payment_method, c.at, \
                coalesce((SELECT sum(f.fee_amount_minor) FROM platform_fees f \
                           WHERE f.business_id = o.business_id AND f.order_id = o.id), 0)::bigint AS fee, \
                coalesce((SELECT e.gross_minor FROM driver_earnings e \
                           WHERE e.business_id = o.business_id AND e.order_id = o.id), 0)::bigint AS driver_cost \
           FROM orders o \
          CROSS JOIN LATERAL (SELECT min(h.at) AS at FROM order_status_history h \
                               WHERE h.business_id = o.business_id AND h.order_id = o.id AND h.outcome = 'applied' \
                                 AND (h.to_status = 'delivered' OR (o.fulfilment = 'pickup' AND h.to_status = 'picked_up'))) c \
          WHERE o.business_id = $1 AND o.status IN ('delivered', 'picked_up', 'refunded') \
            AND c.at IS NOT NULL AND c.at < $2 \
            AND NOT EXISTS (SELECT 1 FROM business_payout_items i \
                             WHERE i.business_id = o.business_id AND i.kind = 'order' AND i.item_id = o.id)",
    )
    .bind(business)
    .bind(cutoff)
    .fetch_all(&mut **tx)
    .await?;
    // Card refunds go back through the provider out of the platform's balance; a cash order is
    // refunded by whoever holds its cash, outside the payout.
    let refunds: Vec<RefundRow> = sqlx::query_as(
        "SELECT o.id, o.currency::text AS currency, o.total_minor, r.at, \
                coalesce((SELECT (t.metadata->>'refunded_minor')::bigint FROM payment_transactions t \
                           WHERE t.business_id = o.business_id AND t.order_id = o.id AND t.status = 'refunded' \
                           ORDER BY t.updated_at DESC LIMIT 1), o.total_minor) AS refunded, \
                coalesce((SELECT sum(f.fee_amount_minor) FROM platform_fees f \
                           WHERE f.business_id = o.business_id AND f.order_id = o.id), 0)::bigint AS fee \
           FROM orders o \
          CROSS JOIN LATERAL (SELECT min(h.at) AS at FROM order_status_history h \
                               WHERE h.business_id = o.business_id AND h.order_id = o.id \
                                 AND h.outcome = 'applied' AND h.to_status = 'refunded') r \
          WHERE o.business_id = $1 AND o.status = 'refunded' AND o.payment_method = 'card' \
            AND r.at IS NOT NULL AND r.at < $2 \
            AND NOT EXISTS (SELECT 1 FROM business_payout_items i \
                             WHERE i.business_id = o.business_id AND i.kind = 'refund' AND i.item_id = o.id)",
    )
    .bind(business)
    .bind(cutoff)
    .fetch_all(&mut **tx)
    .await?;
    // Cash drivers handed to the business: it holds the platform's money now.
    let deposits: Vec<(Uuid, String, i64, DateTime<Utc>)> = sqlx::query_as(
        "SELECT c.id, c.currency::text, c.amount_minor, c.at FROM driver_cash c \
          WHERE c.business_id = $1 AND c.kind = 'deposited' AND c.at < $2 \
            AND NOT EXISTS (SELECT 1 FROM business_payout_items i \
                             WHERE i.business_id = c.business_id AND i.kind = 'deposit' AND i.item_id = c.id)",
    )
    .bind(business)
    .bind(cutoff)
    .fetch_all(&mut **tx)
    .await?;
    let mut groups: BTreeMap<(PayoutPeriod, String), Vec<Item>> = BTreeMap::new();
    for c in completions {
        let period = rules::period_of(c.at, tz, grouping);
        if !rules::period_closed(period, until, tz, now) {
            continue;
        }
        // Cash taken at the store stays with the business; a courier's cash reaches the
        // platform through the driver's payout.
        let kept = if c.fulfilment == "pickup" && c.payment_method == "cash" {
            c.total_minor
        } else {
            0
        };
        groups.entry((period, c.currency)).or_default().push(Item {
            kind: "order",
            item_id: c.id,
            at: c.at,
            total: c.total_minor,
            fee: c.fee,
            driver_cost: c.driver_cost,
            kept,
            refund: 0,
            fee_returned: 0,
        });
    }
    for r in refunds {
        let period = rules::period_of(r.at, tz, grouping);
        if !rules::period_closed(period, until, tz, now) {
            continue;
        }
        let c = currency(&r.currency)?;
        let returned = rules::refund_fee_returned(
            Money::new(r.fee, c),
            Money::new(r.refunded, c),
            Money::new(r.total_minor, c),
        )
        .map_err(money_err)?;
        groups.entry((period, r.currency)).or_default().push(Item {
            kind: "refund",
            item_id: r.id,
            at: r.at,
            total: 0,
            fee: 0,
            driver_cost: 0,
            kept: 0,
            refund: r.refunded,
            fee_returned: returned.minor,
        });
    }
    for (id, code, amount, at) in deposits {
        let period = rules::period_of(at, tz, grouping);
        if !rules::period_closed(period, until, tz, now) {
            continue;
        }
        groups.entry((period, code)).or_default().push(Item {
            kind: "deposit",
            item_id: id,
            at,
            total: 0,
            fee: 0,
            driver_cost: 0,
            kept: amount,
            refund: 0,
            fee_returned: 0,
        });
    }
    let mut created = Vec::new();
    for ((period, code), items) in groups {
        let c = currency(&code)?;
        let key = rules::payout_key_in(PayoutParty::Business(BusinessId(business)), period, c);
        let inserted: Option<Uuid> = sqlx::query_scalar(
            "INSERT INTO business_payouts (business_id, id, payout_key, period_kind, period_start, period_end, \
             currency, gross_revenue_minor, platform_fees_minor, driver_payments_minor, refunds_minor, \
             cash_kept_minor, net_minor, orders) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, 0, 0, 0, 0, 0, 0) \
             ON CONFLICT (business_id, payout_key) DO NOTHING RETURNING id",
        )
        .bind(business)
        .bind(new_id())
        .bind(&key)
        .bind(grouping_str(grouping))
        .bind(period.start)
        .bind(period.end)
        .bind(c.code())
        .fetch_optional(&mut **tx)
        .await?;
        let payout = match inserted {
            Some(id) => {
                created.push(id);
                id
            }
            None => {
                let (id, status): (Uuid, String) = sqlx::query_as(
                    "SELECT id, status FROM business_payouts WHERE business_id = $1 AND payout_key = $2 FOR UPDATE",
                )
                .bind(business)
                .bind(&key)
                .fetch_one(&mut **tx)
                .await?;
                if status != "pending" {
                    tracing::warn!(%business, key, items = items.len(), "items of a payout already processed are left unpaid");
                    continue;
                }
                id
            }
        };
        for item in &items {
            sqlx::query(
                "INSERT INTO business_payout_items (business_id, kind, item_id, order_id, cash_id, payout_id, at, \
                 currency, total_minor, platform_fee_minor, driver_cost_minor, kept_minor, refund_minor, \
                 fee_returned_minor) VALUES ($1, $2, $3, CASE WHEN $2 = 'deposit' THEN NULL ELSE $3 END, \
                 CASE WHEN $2 = 'deposit' THEN $3 END, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING",
            )
            .bind(business)
            .bind(item.kind)
            .bind(item.item_id)
            .bind(payout)
            .bind(item.at)
            .bind(c.code())
            .bind(item.total)
            .bind(item.fee)
            .bind(item.driver_cost)
            .bind(item.kept)
            .bind(item.refund)
            .bind(item.fee_returned)
            .execute(&mut **tx)
            .await?;
        }
        let orders: Vec<Uuid> = items
            .iter()
            .filter(|i| i.kind == "order")
            .map(|i| i.item_id)
            .collect();
        sqlx::query(
            "UPDATE platform_fees SET payout_id = $2 WHERE business_id = $1 AND order_id = ANY($3) AND payout_id IS NULL",
        )
        .bind(business)
        .bind(payout)
        .bind(&orders)
        .execute(&mut **tx)
        .await?;
        recompute_business(tx, business, payout, c).await?;
    }
    Ok(created)
}

/// Sums a business payout from its items and the balances carried into it, with
/// `payout::business_payout`, and stores the statement.
async fn recompute_business(
    tx: &mut Tx,
    business: Uuid,
    payout: Uuid,
    c: Currency,
) -> Result<BusinessPayout> {
    let items: Vec<(String, i64, i64, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT kind, total_minor, platform_fee_minor, driver_cost_minor, kept_minor, refund_minor, fee_returned_minor \
           FROM business_payout_items WHERE business_id = $1 AND payout_id = $2",
    )
    .bind(business)
    .bind(payout)
    .fetch_all(&mut **tx)
    .await?;
    let carried: Vec<i64> = sqlx::query_scalar(
        "SELECT net_minor FROM business_payouts WHERE business_id = $1 AND carried_into_id = $2",
    )
    .bind(business)
    .bind(payout)
    .fetch_all(&mut **tx)
    .await?;
    let m = |minor| Money::new(minor, c);
    let mut lines: Vec<BusinessLine> = items
        .into_iter()
        .map(|(kind, total, fee, driver, kept, refund, returned)| {
            if kind == "refund" {
                BusinessLine::Refund {
                    amount: m(refund),
                    fee_returned: m(returned),
                }
            } else if kind == "deposit" {
                BusinessLine::CashReceived(m(kept))
            } else {
                BusinessLine::Order {
                    total: m(total),
                    platform_fee: m(fee),
                    driver_cost: m(driver),
                    kept_by_business: m(kept),
                }
            }
        })
        .collect();
    lines.extend(carried.into_iter().map(|n| BusinessLine::CarriedOver(m(n))));
    let p = rules::business_payout(c, &lines).map_err(money_err)?;
    sqlx::query(
        "UPDATE business_payouts SET gross_revenue_minor = $3, platform_fees_minor = $4, driver_payments_minor = $5, \
         refunds_minor = $6, cash_kept_minor = $7, carried_over_minor = $8, net_minor = $9, orders = $10, updated_at = now() \
         WHERE business_id = $1 AND id = $2",
    )
    .bind(business)
    .bind(payout)
    .bind(p.gross_revenue.minor)
    .bind(p.platform_fees.minor)
    .bind(p.driver_payments.minor)
    .bind(p.refunds.minor)
    .bind(p.cash_kept.minor)
    .bind(p.carried_over.minor)
    .bind(p.net.minor)
    .bind(i32::try_from(p.orders).unwrap_or(i32::MAX))
    .execute(&mut **tx)
    .await?;
    Ok(p)
}

#[derive(FromRow)]
struct UnpaidEarning {
    business_id: Uuid,
    id: Uuid,
    driver_id: Uuid,
    currency: String,
    earned_at: DateTime<Utc>,
    time_zone: String,
}

async fn run_drivers(
    tx: &mut Tx,
    grouping: Grouping,
    until: NaiveDate,
    now: DateTime<Utc>,
) -> Result<Vec<Uuid>> {
    let rows: Vec<UnpaidEarning> = sqlx::query_as(
        "SELECT e.business_id, e.id, e.driver_id, e.currency::text AS currency, e.earned_at, \
                coalesce(p.time_zone, 'UTC') AS time_zone \
           FROM driver_earnings e LEFT JOIN driver_profiles p ON p.driver_id = e.driver_id \
          WHERE e.payout_id IS NULL AND e.earned_at < $1",
    )
    .bind(now)
    .fetch_all(&mut **tx)
    .await?;
    type Group = (Uuid, String, PayoutPeriod);
    let mut groups: BTreeMap<Group, Vec<(Uuid, Uuid)>> = BTreeMap::new();
    for r in rows {
        let tz = zone(&r.time_zone);
        let period = rules::period_of(r.earned_at, tz, grouping);
        if rules::period_closed(period, until, tz, now) {
            groups
                .entry((r.driver_id, r.currency, period))
                .or_default()
                .push((r.business_id, r.id));
        }
    }
    let mut created = Vec::new();
    for ((driver, code, period), earnings) in groups {
        let c = currency(&code)?;
        let key = rules::payout_key_in(PayoutParty::Driver(UserId(driver)), period, c);
        let inserted: Option<Uuid> = sqlx::query_scalar(
            "INSERT INTO driver_payouts (id, driver_id, payout_key, period_kind, period_start, period_end, currency, \
             earnings_minor, cash_kept_minor, net_minor, deliveries) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, 0, 0, 0) \
             ON CONFLICT (payout_key) DO NOTHING RETURNING id",
        )
        .bind(new_id())
        .bind(driver)
        .bind(&key)
        .bind(grouping_str(grouping))
        .bind(period.start)
        .bind(period.end)
        .bind(c.code())
        .fetch_optional(&mut **tx)
        .await?;
        let payout = match inserted {
            Some(id) => {
                created.push(id);
                id
            }
            None => {
                let (id, status): (Uuid, String) = sqlx::query_as(
                    "SELECT id, status FROM driver_payouts WHERE payout_key = $1 FOR UPDATE",
                )
                .bind(&key)
                .fetch_one(&mut **tx)
                .await?;
                if status != "pending" {
                    tracing::warn!(%driver, key, items = earnings.len(), "earnings of a payout already processed are left unpaid");
                    continue;
                }
                id
            }
        };
        let (businesses, ids): (Vec<Uuid>, Vec<Uuid>) = earnings.into_iter().unzip();
        sqlx::query(
            "UPDATE driver_earnings e SET payout_id = $1 FROM unnest($2::uuid[], $3::uuid[]) AS k(business_id, id) \
             WHERE e.business_id = k.business_id AND e.id = k.id AND e.payout_id IS NULL",
        )
        .bind(payout)
        .bind(&businesses)
        .bind(&ids)
        .execute(&mut **tx)
        .await?;
        recompute_driver(tx, payout, driver, c).await?;
    }
    Ok(created)
}

/// Cash a driver holds in `c`, per business: `collected − deposited − settled`.
async fn cash_held(tx: &mut Tx, driver: Uuid, c: Currency) -> Result<Vec<(Uuid, i64)>> {
    Ok(sqlx::query_as(
        "SELECT business_id, sum(CASE kind WHEN 'collected' THEN amount_minor ELSE -amount_minor END)::bigint \
           FROM driver_cash WHERE driver_id = $1 AND currency = $2 GROUP BY business_id ORDER BY business_id",
    )
    .bind(driver)
    .bind(c.code())
    .fetch_all(&mut **tx)
    .await?)
}

/// Sums a driver payout with `payout::driver_payout`: its earnings, the cash it netted (once
/// settled) or would net now (an estimate, on the driver's oldest open payout only), and the
/// balances carried into it; stores the statement.
async fn recompute_driver(
    tx: &mut Tx,
    payout: Uuid,
    driver: Uuid,
    c: Currency,
) -> Result<DriverPayout> {
    let m = |minor| Money::new(minor, c);
    let earned: Vec<i64> =
        sqlx::query_scalar("SELECT net_minor FROM driver_earnings WHERE payout_id = $1")
            .bind(payout)
            .fetch_all(&mut **tx)
            .await?;
    let mut lines: Vec<DriverLine> = earned
        .into_iter()
        .map(|n| DriverLine::Earned(m(n)))
        .collect();
    let (settled_at, oldest_open): (Option<DateTime<Utc>>, bool) = sqlx::query_as(
        "SELECT p.cash_settled_at, NOT EXISTS (SELECT 1 FROM driver_payouts q \
                 WHERE q.driver_id = p.driver_id AND q.currency = p.currency AND q.cash_settled_at IS NULL \
                   AND q.status IN ('pending', 'failed', 'processing') AND (q.period_start, q.id) < (p.period_start, p.id)) \
           FROM driver_payouts p WHERE p.id = $1",
    )
    .bind(payout)
    .fetch_one(&mut **tx)
    .await?;
    if settled_at.is_some() {
        let settled: Vec<i64> = sqlx::query_scalar(
            "SELECT amount_minor FROM driver_cash WHERE kind = 'settled' AND payout_id = $1",
        )
        .bind(payout)
        .fetch_all(&mut **tx)
        .await?;
        lines.extend(settled.into_iter().map(|s| DriverLine::CashCollected(m(s))));
    } else if oldest_open {
        for (_, held) in cash_held(tx, driver, c).await? {
            if held > 0 {
                lines.push(DriverLine::CashCollected(m(held)));
            }
        }
    }
    let carried: Vec<i64> =
        sqlx::query_scalar("SELECT net_minor FROM driver_payouts WHERE carried_into_id = $1")
            .bind(payout)
            .fetch_all(&mut **tx)
            .await?;
    lines.extend(carried.into_iter().map(|n| DriverLine::CarriedOver(m(n))));
    let p = rules::driver_payout(c, &lines).map_err(money_err)?;
    sqlx::query(
        "UPDATE driver_payouts SET earnings_minor = $2, cash_kept_minor = $3, carried_over_minor = $4, net_minor = $5, \
         deliveries = $6, updated_at = now() WHERE id = $1",
    )
    .bind(payout)
    .bind(p.earnings.minor)
    .bind(p.cash_kept.minor)
    .bind(p.carried_over.minor)
    .bind(p.net.minor)
    .bind(i32::try_from(p.deliveries).unwrap_or(i32::MAX))
    .execute(&mut **tx)
    .await?;
    Ok(p)
}

// Process --------------------------------------------------------------------------------------

/// What [`prepare`] decided.
#[derive(Debug)]
pub enum Prepared {
    /// Nothing (more) to transfer: the payout as it stands (paid, carried over, failed for
    /// want of an account, or being processed by another request).
    Done(Box<PayoutRecord>),
    /// Commit, then transfer, then [`finish`].
    Transfer(TransferRequest),
}

/// A locked payout: its party's id, status, currency, when processing started, key.
type Locked = (Uuid, String, String, Option<DateTime<Utc>>, String);

/// Which table a payout lives in.
enum Party {
    Business(Uuid),
    Driver(Uuid),
}

/// Locks the payout, checks its status, nets a driver's cash, takes in carried-over balances,
/// recomputes the statement with the domain's rules and decides with
/// `payout::settlement`: nothing to pay → `paid`; the party owes → `carried_over`; otherwise
/// `processing` and the transfer to make after the commit.
///
/// # Errors
/// `not_found`; database errors.
pub async fn prepare(tx: &mut Tx, id: Uuid, admin: Uuid, now: DateTime<Utc>) -> Result<Prepared> {
    let business: Option<Locked> = sqlx::query_as(
        "SELECT business_id, status, currency::text, processing_started_at, payout_key FROM business_payouts \
         WHERE id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    let (party, status, code, started, key) = match business {
        Some((b, status, code, started, key)) => (Party::Business(b), status, code, started, key),
        None => {
            let driver: Option<Locked> =
                sqlx::query_as(
                    "SELECT driver_id, status, currency::text, processing_started_at, payout_key FROM driver_payouts \
                     WHERE id = $1 FOR UPDATE",
                )
                .bind(id)
                .fetch_optional(&mut **tx)
                .await?;
            let (d, status, code, started, key) =
                driver.ok_or_else(|| Error::not_found("payout"))?;
            (Party::Driver(d), status, code, started, key)
        }
    };
    let state = PayoutState::parse(&status)
        .ok_or_else(|| Error::unexpected(anyhow::anyhow!("payout status {status}")))?;
    let stale =
        state == PayoutState::Processing && started.is_none_or(|at| at + STALE_PROCESSING <= now);
    if !state.may_process() && !stale {
        return Ok(Prepared::Done(Box::new(find(tx, id).await?)));
    }
    let c = currency(&code)?;
    // Balances carried over are taken in on the first attempt only: a retry must ask the
    // provider for the very same transfer.
    let first_attempt = state == PayoutState::Pending;
    let (net, destination) = match party {
        Party::Business(business) => {
            sqlx::query(
                "UPDATE business_payouts SET carried_into_id = $2, updated_at = now() WHERE business_id = $1 \
                 AND currency = $3 AND status = 'carried_over' AND carried_into_id IS NULL AND id <> $2 AND $4",
            )
            .bind(business)
            .bind(id)
            .bind(c.code())
            .bind(first_attempt)
            .execute(&mut **tx)
            .await?;
            let p = recompute_business(tx, business, id, c).await?;
            let account: Option<String> =
                sqlx::query_scalar("SELECT payout_account FROM businesses WHERE id = $1")
                    .bind(business)
                    .fetch_one(&mut **tx)
                    .await?;
            (p.net, account)
        }
        Party::Driver(driver) => {
            lock_driver_cash(tx, driver).await?;
            let settled: Option<DateTime<Utc>> =
                sqlx::query_scalar("SELECT cash_settled_at FROM driver_payouts WHERE id = $1")
                    .bind(id)
                    .fetch_one(&mut **tx)
                    .await?;
            if settled.is_none() {
                for (business, held) in cash_held(tx, driver, c).await? {
                    if held <= 0 {
                        continue;
                    }
                    sqlx::query(
                        "INSERT INTO driver_cash (business_id, id, driver_id, kind, currency, amount_minor, at, \
                         recorded_by, payout_id) VALUES ($1, $2, $3, 'settled', $4, $5, $6, $7, $8)",
                    )
                    .bind(business)
                    .bind(new_id())
                    .bind(driver)
                    .bind(c.code())
                    .bind(held)
                    .bind(now)
                    .bind(admin)
                    .bind(id)
                    .execute(&mut **tx)
                    .await?;
                }
                sqlx::query("UPDATE driver_payouts SET cash_settled_at = $2 WHERE id = $1")
                    .bind(id)
                    .bind(now)
                    .execute(&mut **tx)
                    .await?;
            }
            sqlx::query(
                "UPDATE driver_payouts SET carried_into_id = $2, updated_at = now() WHERE driver_id = $1 \
                 AND currency = $3 AND status = 'carried_over' AND carried_into_id IS NULL AND id <> $2 AND $4",
            )
            .bind(driver)
            .bind(id)
            .bind(c.code())
            .bind(first_attempt)
            .execute(&mut **tx)
            .await?;
            let p = recompute_driver(tx, id, driver, c).await?;
            let account: Option<String> = sqlx::query_scalar(
                "SELECT payout_account FROM driver_profiles WHERE driver_id = $1",
            )
            .bind(driver)
            .fetch_optional(&mut **tx)
            .await?
            .flatten();
            (p.net, account)
        }
    };
    let table = match party {
        Party::Business(_) => "business_payouts",
        Party::Driver(_) => "driver_payouts",
    };
    match rules::settlement(net) {
        Settlement::Nothing | Settlement::CarryOver(_) => {
            let status = if net.minor < 0 {
                "carried_over"
            } else {
                "paid"
            };
            sqlx::query(&format!(
                "UPDATE {table} SET status = $2, processed_at = $3, processed_by = $4, failure_reason = NULL, \
                 updated_at = now() WHERE id = $1"
            ))
            .bind(id)
            .bind(status)
            .bind(now)
            .bind(admin)
            .execute(&mut **tx)
            .await?;
            mark_fees_withheld(tx, id).await?;
            Ok(Prepared::Done(Box::new(find(tx, id).await?)))
        }
        Settlement::Transfer(amount) => {
            let Some(destination) = destination else {
                sqlx::query(&format!(
                    "UPDATE {table} SET status = 'failed', attempts = attempts + 1, updated_at = now(), \
                     failure_reason = 'no payout account is set for this party' WHERE id = $1"
                ))
                .bind(id)
                .execute(&mut **tx)
                .await?;
                return Ok(Prepared::Done(Box::new(find(tx, id).await?)));
            };
            sqlx::query(&format!(
                "UPDATE {table} SET status = 'processing', processing_started_at = $2, attempts = attempts + 1, \
                 failure_reason = NULL, updated_at = now() WHERE id = $1"
            ))
            .bind(id)
            .bind(now)
            .execute(&mut **tx)
            .await?;
            Ok(Prepared::Transfer(TransferRequest {
                idempotency_key: key,
                amount,
                destination,
                payout_id: id,
            }))
        }
    }
}

/// Marks the order commissions a settled business payout withheld as paid.
async fn mark_fees_withheld(tx: &mut Tx, payout: Uuid) -> Result<()> {
    sqlx::query("UPDATE platform_fees SET payout_status = 'paid' WHERE payout_id = $1")
        .bind(payout)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Records the transfer's outcome on a payout still `processing`: `paid` with the transfer's
/// id, or `failed` with the reason (processing again retries with the same key). A payout no
/// longer processing (another request finished it) is returned as it is.
///
/// # Errors
/// `not_found`; database errors.
pub async fn finish(
    tx: &mut Tx,
    id: Uuid,
    outcome: &Result<TransferReceipt, PaymentError>,
    admin: Uuid,
    now: DateTime<Utc>,
) -> Result<PayoutRecord> {
    let current = find(tx, id).await?;
    let table = match current.party {
        PayoutPartyKind::Business => "business_payouts",
        PayoutPartyKind::Driver => "driver_payouts",
    };
    let status: String = sqlx::query_scalar(&format!(
        "SELECT status FROM {table} WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_one(&mut **tx)
    .await?;
    if status != "processing" {
        return Ok(current);
    }
    match outcome {
        Ok(receipt) => {
            sqlx::query(&format!(
                "UPDATE {table} SET status = 'paid', transfer_id = $2, processed_at = $3, processed_by = $4, \
                 failure_reason = NULL, updated_at = now() WHERE id = $1"
            ))
            .bind(id)
            .bind(&receipt.transfer_id)
            .bind(now)
            .bind(admin)
            .execute(&mut **tx)
            .await?;
            mark_fees_withheld(tx, id).await?;
        }
        Err(e) => {
            let reason: String = e.to_string().chars().take(1000).collect();
            sqlx::query(&format!(
                "UPDATE {table} SET status = 'failed', failure_reason = $2, updated_at = now() WHERE id = $1"
            ))
            .bind(id)
            .bind(reason)
            .execute(&mut **tx)
            .await?;
        }
    }
    find(tx, id).await
}

// Driver earnings ------------------------------------------------------------------------------

/// The driver's time zone (`UTC` without a profile).
///
/// # Errors
/// Database errors.
pub async fn driver_zone(tx: &mut Tx, driver: Uuid) -> Result<(String, Tz)> {
    let name: Option<String> =
        sqlx::query_scalar("SELECT time_zone FROM driver_profiles WHERE driver_id = $1")
            .bind(driver)
            .fetch_optional(&mut **tx)
            .await?;
    let name = name.unwrap_or_else(|| "UTC".to_owned());
    let tz = zone(&name);
    Ok((name, tz))
}

#[derive(FromRow)]
struct EarningRow {
    delivery_id: Uuid,
    order_id: Uuid,
    business_id: Uuid,
    currency: String,
    earned_at: DateTime<Utc>,
    gross_minor: i64,
    tip_minor: i64,
    platform_fee_minor: i64,
    net_minor: i64,
    paid: bool,
}

/// A driver's earnings over `range` in `tz`, summarized with `payout::summarize_earnings` per
/// currency, the cash it holds per business, and its latest entries.
///
/// # Errors
/// Database errors.
pub async fn driver_earnings(
    tx: &mut Tx,
    driver: Uuid,
    (time_zone, tz): (String, Tz),
    range: EarningsRange,
) -> Result<DriverEarningsView> {
    let start = rules::local_midnight(range.days.from, tz);
    let end = rules::local_midnight(range.days.end_exclusive(), tz);
    let rows: Vec<EarningRow> = sqlx::query_as(
        // The day of a delivery is when the driver handed it over (the phone's time of a
        // step queued offline), not when it synced; payouts keep the ledger's time.
        "SELECT e.delivery_id, e.order_id, e.business_id, e.currency::text AS currency, \
                coalesce(e.recorded_at, e.earned_at) AS earned_at, e.gross_minor, \
                e.tip_minor, e.platform_fee_minor, e.net_minor, \
                coalesce(p.status IN ('paid', 'carried_over'), false) AS paid \
           FROM driver_earnings e LEFT JOIN driver_payouts p ON p.id = e.payout_id \
          WHERE e.driver_id = $1 AND coalesce(e.recorded_at, e.earned_at) >= $2 \
            AND coalesce(e.recorded_at, e.earned_at) < $3 \
          ORDER BY 5, e.id",
    )
    .bind(driver)
    .bind(start)
    .bind(end)
    .fetch_all(&mut **tx)
    .await?;
    let mut by_currency: BTreeMap<Currency, Vec<EarningsEntry>> = BTreeMap::new();
    let mut latest = Vec::new();
    for r in rows.iter().rev() {
        let c = currency(&r.currency)?;
        let m = |minor| Money::new(minor, c);
        by_currency.entry(c).or_default().push(EarningsEntry {
            at: r.earned_at,
            gross: m(r.gross_minor),
            tip: m(r.tip_minor),
            platform_fee: m(r.platform_fee_minor),
            net: m(r.net_minor),
            paid: r.paid,
        });
        if latest.len() < 50 {
            latest.push(EarningsEntryView {
                delivery_id: r.delivery_id,
                order_id: r.order_id,
                business_id: r.business_id,
                at: r.earned_at,
                gross: m(r.gross_minor),
                tip: m(r.tip_minor),
                platform_fee: m(r.platform_fee_minor),
                net: m(r.net_minor),
                paid: r.paid,
            });
        }
    }
    let mut currencies = Vec::new();
    for (c, entries) in by_currency {
        let periods =
            rules::summarize_earnings(c, &entries, tz, range.grouping).map_err(money_err)?;
        let totals = EarningsTotals::of(c, &periods).map_err(money_err)?;
        currencies.push(CurrencyEarnings {
            currency: c,
            periods,
            totals,
        });
    }
    let held: Vec<(Uuid, String, i64, Option<String>)> = sqlx::query_as(
        "SELECT c.business_id, c.currency::text, \
                sum(CASE c.kind WHEN 'collected' THEN c.amount_minor ELSE -c.amount_minor END)::bigint AS held, \
                (SELECT b.name FROM businesses b WHERE b.id = c.business_id) \
           FROM driver_cash c WHERE c.driver_id = $1 GROUP BY c.business_id, c.currency \
          HAVING sum(CASE c.kind WHEN 'collected' THEN c.amount_minor ELSE -c.amount_minor END) <> 0 \
          ORDER BY c.business_id",
    )
    .bind(driver)
    .fetch_all(&mut **tx)
    .await?;
    let cash_held = held
        .into_iter()
        .map(|(business_id, code, held, business_name)| {
            Ok(CashHeldView {
                business_id,
                business_name,
                held: Money::new(held, currency(&code)?),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(DriverEarningsView {
        group: range.grouping,
        range: range.days,
        time_zone,
        currencies,
        cash_held,
        latest,
    })
}

// Platform fees --------------------------------------------------------------------------------

#[derive(FromRow)]
struct FeeRow {
    business_id: Uuid,
    business_name: String,
    currency: String,
    order_count: i64,
    order_paid: i64,
    order_total: i64,
    delivery_count: i64,
    delivery_paid: i64,
    delivery_total: i64,
}

/// The platform's commissions per business and currency over `days` (UTC): order commissions
/// by when they were recorded, delivery commissions by delivery time; paid once the payout
/// that withheld them was settled.
///
/// # Errors
/// Database errors.
pub async fn platform_fees(
    tx: &mut Tx,
    days: DateRange,
    business: Option<Uuid>,
) -> Result<Vec<BusinessFeeTotals>> {
    let start = days.from.and_time(chrono::NaiveTime::MIN).and_utc();
    let end = days
        .end_exclusive()
        .and_time(chrono::NaiveTime::MIN)
        .and_utc();
    let rows: Vec<FeeRow> = sqlx::query_as(
        "WITH oc AS ( \
            SELECT f.business_id, f.currency::text AS currency, count(*) AS n, \
                   coalesce(sum(f.fee_amount_minor) FILTER (WHERE p.status IN ('paid', 'carried_over')), 0)::bigint AS paid, \
                   coalesce(sum(f.fee_amount_minor), 0)::bigint AS total \
              FROM platform_fees f LEFT JOIN business_payouts p ON p.business_id = f.business_id AND p.id = f.payout_id \
             WHERE f.created_at >= $1 AND f.created_at < $2 AND ($3::uuid IS NULL OR f.business_id = $3) \
             GROUP BY 1, 2), \
         dc AS ( \
            SELECT e.business_id, e.currency::text AS currency, count(*) AS n, \
                   coalesce(sum(e.platform_fee_minor) FILTER (WHERE p.status IN ('paid', 'carried_over')), 0)::bigint AS paid, \
                   coalesce(sum(e.platform_fee_minor), 0)::bigint AS total \
              FROM driver_earnings e LEFT JOIN driver_payouts p ON p.id = e.payout_id \
             WHERE e.earned_at >= $1 AND e.earned_at < $2 AND ($3::uuid IS NULL OR e.business_id = $3) \
             GROUP BY 1, 2) \
         SELECT k.business_id, b.name AS business_name, k.currency, \
                coalesce(oc.n, 0) AS order_count, coalesce(oc.paid, 0) AS order_paid, coalesce(oc.total, 0) AS order_total, \
                coalesce(dc.n, 0) AS delivery_count, coalesce(dc.paid, 0) AS delivery_paid, coalesce(dc.total, 0) AS delivery_total \
           FROM (SELECT business_id, currency FROM oc UNION SELECT business_id, currency FROM dc) k \
           JOIN businesses b ON b.id = k.business_id \
           LEFT JOIN oc ON oc.business_id = k.business_id AND oc.currency = k.currency \
           LEFT JOIN dc ON dc.business_id = k.business_id AND dc.currency = k.currency \
          ORDER BY b.name, k.business_id, k.currency",
    )
    .bind(start)
    .bind(end)
    .bind(business)
    .fetch_all(&mut **tx)
    .await?;
    rows.into_iter()
        .map(|r| {
            let c = currency(&r.currency)?;
            let m = |minor| Money::new(minor, c);
            let order = FeeSplit::new(u32_of(r.order_count), m(r.order_paid), m(r.order_total))
                .map_err(money_err)?;
            let delivery = FeeSplit::new(
                u32_of(r.delivery_count),
                m(r.delivery_paid),
                m(r.delivery_total),
            )
            .map_err(money_err)?;
            Ok(BusinessFeeTotals {
                business_id: r.business_id,
                business_name: r.business_name,
                currency: c,
                order_commissions: order,
                delivery_commissions: delivery,
                total: order.plus(delivery).map_err(money_err)?,
            })
        })
        .collect()
}

// Driver performance ---------------------------------------------------------------------------

#[derive(FromRow)]
struct FinishedRow {
    driver_id: Uuid,
    finished_at: DateTime<Utc>,
    accepted_at: Option<DateTime<Utc>>,
    prep_time_minutes: Option<i32>,
    trip_metres: Option<i32>,
}

/// Every driver with an offer or a delivery over `days` (UTC): deliveries made and failed,
/// offers accepted out of those answered or expired, deliveries on time
/// (`performance::on_time`), rating.
///
/// # Errors
/// Database errors.
pub async fn driver_performance(
    tx: &mut Tx,
    days: DateRange,
) -> Result<Vec<DriverPerformanceView>> {
    let start = days.from.and_time(chrono::NaiveTime::MIN).and_utc();
    let end = days
        .end_exclusive()
        .and_time(chrono::NaiveTime::MIN)
        .and_utc();
    let offers: Vec<(Uuid, i64, i64)> = sqlx::query_as(
        "SELECT driver_id, count(*) FILTER (WHERE status IN ('accepted', 'declined', 'expired')), \
                count(*) FILTER (WHERE status = 'accepted') \
           FROM dispatch_offers WHERE offered_at >= $1 AND offered_at < $2 GROUP BY driver_id",
    )
    .bind(start)
    .bind(end)
    .fetch_all(&mut **tx)
    .await?;
    // A failure before pickup sends the delivery back without a driver; its log keeps who
    // failed it.
    let failed: Vec<(Uuid, i64)> = sqlx::query_as(
        "SELECT driver_id, count(*) FROM delivery_events \
          WHERE command = 'fail' AND outcome = 'applied' AND driver_id IS NOT NULL AND at >= $1 AND at < $2 \
          GROUP BY driver_id",
    )
    .bind(start)
    .bind(end)
    .fetch_all(&mut **tx)
    .await?;
    let delivered: Vec<FinishedRow> = sqlx::query_as(
        "SELECT d.driver_id, d.finished_at, o.accepted_at, o.prep_time_minutes, \
                coalesce(d.trip_metres, o.delivery_distance_m) AS trip_metres \
           FROM deliveries d JOIN orders o ON o.business_id = d.business_id AND o.id = d.order_id \
          WHERE d.status = 'delivered' AND d.finished_at >= $1 AND d.finished_at < $2",
    )
    .bind(start)
    .bind(end)
    .fetch_all(&mut **tx)
    .await?;
    #[derive(Default)]
    struct Tally {
        offers: u32,
        accepted: u32,
        delivered: u32,
        failed: u32,
        on_time: u32,
    }
    let mut tallies: BTreeMap<Uuid, Tally> = BTreeMap::new();
    for (driver, answered, accepted) in offers {
        let t = tallies.entry(driver).or_default();
        t.offers = u32_of(answered);
        t.accepted = u32_of(accepted);
    }
    for (driver, n) in failed {
        tallies.entry(driver).or_default().failed = u32_of(n);
    }
    for d in delivered {
        let t = tallies.entry(d.driver_id).or_default();
        t.delivered += 1;
        let promise = d.accepted_at.map(|accepted_at| Promise {
            accepted_at,
            prep_minutes: d.prep_time_minutes.and_then(|p| u32::try_from(p).ok()),
            trip_metres: d.trip_metres.and_then(|m| u32::try_from(m).ok()),
        });
        if promise.is_some_and(|p| performance::on_time(d.finished_at, &p)) {
            t.on_time += 1;
        }
    }
    let ids: Vec<Uuid> = tallies.keys().copied().collect();
    let people: Vec<(Uuid, String, Option<i32>)> = sqlx::query_as(
        "SELECT u.id, u.full_name, p.rating_tenths FROM users u \
           LEFT JOIN driver_profiles p ON p.driver_id = u.id WHERE u.id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(&mut **tx)
    .await?;
    let mut views: Vec<DriverPerformanceView> = people
        .into_iter()
        .filter_map(|(id, full_name, rating)| {
            let t = tallies.get(&id)?;
            Some(DriverPerformanceView {
                driver_id: id,
                full_name,
                delivered: t.delivered,
                failed: t.failed,
                offers: t.offers,
                accepted: t.accepted,
                acceptance_rate_bps: performance::rate_bps(t.accepted, t.offers),
                on_time: t.on_time,
                on_time_rate_bps: performance::rate_bps(t.on_time, t.delivered),
                rating_tenths: rating.map(i64::from),
            })
        })
        .collect();
    views.sort_by(|a, b| {
        a.full_name
            .cmp(&b.full_name)
            .then(a.driver_id.cmp(&b.driver_id))
    });
    Ok(views)
}

// Cash deposits --------------------------------------------------------------------------------

/// Records that `driver` handed `amount_minor` of cash back to `business`, at most what it
/// holds for the business (`payout::check_deposit`), under the driver's cash lock.
///
/// # Errors
/// `not_found` when the driver never held cash for the business; `validation_failed`
/// (`amount_minor`: `not_positive`, `exceeds_held`); database errors.
pub async fn deposit(
    tx: &mut Tx,
    business: BusinessId,
    driver: Uuid,
    amount_minor: i64,
    by: Uuid,
    now: DateTime<Utc>,
) -> Result<CashDepositView> {
    lock_driver_cash(tx, driver).await?;
    let code: String = sqlx::query_scalar("SELECT currency::text FROM businesses WHERE id = $1")
        .bind(business.0)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| Error::not_found("business"))?;
    let c = currency(&code)?;
    let held: Option<i64> = sqlx::query_scalar(
        "SELECT sum(CASE kind WHEN 'collected' THEN amount_minor ELSE -amount_minor END)::bigint \
           FROM driver_cash WHERE business_id = $1 AND driver_id = $2 AND currency = $3 HAVING count(*) > 0",
    )
    .bind(business.0)
    .bind(driver)
    .bind(c.code())
    .fetch_optional(&mut **tx)
    .await?
    .flatten();
    let held = Money::new(held.ok_or_else(|| Error::not_found("driver"))?, c);
    let amount = Money::new(amount_minor, c);
    rules::check_deposit(amount, held).map_err(|e| {
        let code = match e {
            rules::DepositError::NotPositive => "not_positive",
            rules::DepositError::ExceedsHeld { .. } => "exceeds_held",
            rules::DepositError::Money(_) => "invalid",
        };
        Error::field("amount_minor", code, e.to_string())
    })?;
    let id = new_id();
    sqlx::query(
        "INSERT INTO driver_cash (business_id, id, driver_id, kind, currency, amount_minor, at, recorded_by) \
         VALUES ($1, $2, $3, 'deposited', $4, $5, $6, $7)",
    )
    .bind(business.0)
    .bind(id)
    .bind(driver)
    .bind(c.code())
    .bind(amount.minor)
    .bind(now)
    .bind(by)
    .execute(&mut **tx)
    .await?;
    Ok(CashDepositView {
        id,
        driver_id: driver,
        amount,
        held: held.checked_sub(amount).map_err(money_err)?,
        at: now,
    })
}
