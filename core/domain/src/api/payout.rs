//! Money on the wire: a driver's earnings page, payouts (the admin's run, list and processing,
//! a business's own list), the platform's fee report, the driver performance report and cash
//! deposits. Queries take their dates as text and parse here, so every misfit is reported at
//! once as a field error.

use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::FieldErrors;
use crate::money::{Currency, Money, MoneyError};
use crate::payout::{BusinessPayout, DriverPayout, Grouping, PayoutPeriod, PeriodTotals};

/// The longest range a report covers, in days.
pub const MAX_RANGE_DAYS: u64 = 366;

/// An inclusive range of calendar dates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DateRange {
    /// The first day.
    pub from: NaiveDate,
    /// The last day (inclusive).
    pub to: NaiveDate,
}

impl DateRange {
    /// The day after the last one (the exclusive end).
    pub fn end_exclusive(&self) -> NaiveDate {
        self.to.checked_add_days(Days::new(1)).unwrap_or(self.to)
    }
}

fn parse_date(e: &mut FieldErrors, field: &str, raw: Option<&str>) -> Option<Option<NaiveDate>> {
    match raw {
        None => Some(None),
        Some(raw) => match NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
            Ok(date) => Some(Some(date)),
            Err(_) => {
                e.push(field, "invalid", "use a date as YYYY-MM-DD");
                None
            }
        },
    }
}

/// Parses `from` and `to` (`YYYY-MM-DD`, both inclusive); without `to` the range ends `today`,
/// without `from` it covers `default_days` days up to `to`. At most [`MAX_RANGE_DAYS`] days.
fn parse_range(
    e: &mut FieldErrors,
    from: Option<&str>,
    to: Option<&str>,
    today: NaiveDate,
    default_days: u64,
) -> Option<DateRange> {
    let from = parse_date(e, "from", from);
    let to = parse_date(e, "to", to);
    let (from, to) = (from?, to?);
    let to = to.unwrap_or(today);
    let from = from.unwrap_or_else(|| {
        to.checked_sub_days(Days::new(default_days.saturating_sub(1)))
            .unwrap_or(to)
    });
    if to < from {
        e.push("to", "before_from", "to must not be before from");
        return None;
    }
    let days = u64::try_from((to - from).num_days()).unwrap_or(u64::MAX);
    if days >= MAX_RANGE_DAYS {
        e.push(
            "to",
            "range_too_long",
            format!("a range covers at most {MAX_RANGE_DAYS} days"),
        );
        return None;
    }
    Some(DateRange { from, to })
}

fn parse_grouping(e: &mut FieldErrors, field: &str, raw: Option<&str>) -> Option<Grouping> {
    match raw {
        None | Some("day") => Some(Grouping::Day),
        Some("week") => Some(Grouping::Week),
        Some(_) => {
            e.push(field, "invalid", "use day or week");
            None
        }
    }
}

// Driver earnings -----------------------------------------------------------------------------

/// `GET /api/v1/driver/earnings` query.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct DriverEarningsQuery {
    /// `day` (default) or `week` (weeks start on Monday), in the driver's time zone.
    #[serde(default)]
    pub group: Option<String>,
    /// First local day, `YYYY-MM-DD` (default: 30 days, or 12 weeks, before `to`).
    #[serde(default)]
    pub from: Option<String>,
    /// Last local day, inclusive, `YYYY-MM-DD` (default: today). At most 366 days after `from`.
    #[serde(default)]
    pub to: Option<String>,
}

/// A parsed [`DriverEarningsQuery`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EarningsRange {
    /// How periods are cut.
    pub grouping: Grouping,
    /// The local days covered.
    pub days: DateRange,
}

impl DriverEarningsQuery {
    /// Parses the query; `today` is the driver's local date.
    ///
    /// # Errors
    /// Every field error at once.
    pub fn parse(&self, today: NaiveDate) -> Result<EarningsRange, FieldErrors> {
        let mut e = FieldErrors::default();
        let grouping = parse_grouping(&mut e, "group", self.group.as_deref());
        let default_days = match grouping {
            Some(Grouping::Week) => 7 * 12,
            _ => 30,
        };
        let days = parse_range(
            &mut e,
            self.from.as_deref(),
            self.to.as_deref(),
            today,
            default_days,
        );
        e.finish(|| {
            Some(EarningsRange {
                grouping: grouping?,
                days: days?,
            })
        })
    }
}

/// One delivery's earnings on the driver's page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EarningsEntryView {
    /// The delivery.
    pub delivery_id: Uuid,
    /// Its order.
    pub order_id: Uuid,
    /// The store.
    pub business_id: Uuid,
    /// When it was delivered (server time).
    pub at: DateTime<Utc>,
    /// Gross earnings (tip included).
    pub gross: Money,
    /// The tip.
    pub tip: Money,
    /// The delivery commission.
    pub platform_fee: Money,
    /// What the driver is owed for it.
    pub net: Money,
    /// Whether a processed payout included it.
    pub paid: bool,
}

/// Totals over a whole range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EarningsTotals {
    /// Deliveries.
    pub deliveries: u32,
    /// Gross earnings.
    pub gross: Money,
    /// Tips.
    pub tips: Money,
    /// Delivery commissions.
    pub platform_fees: Money,
    /// Net earnings.
    pub net: Money,
    /// Net earnings not yet paid out.
    pub pending: Money,
    /// Net earnings paid out.
    pub paid: Money,
}

impl EarningsTotals {
    /// Adds up `periods` (all in `currency`).
    ///
    /// # Errors
    /// [`MoneyError`] on mixed currencies or overflow.
    pub fn of(currency: Currency, periods: &[PeriodTotals]) -> Result<Self, MoneyError> {
        let zero = Money::zero(currency);
        let mut t = EarningsTotals {
            deliveries: 0,
            gross: zero,
            tips: zero,
            platform_fees: zero,
            net: zero,
            pending: zero,
            paid: zero,
        };
        for p in periods {
            t.deliveries = t.deliveries.saturating_add(p.deliveries);
            t.gross = t.gross.checked_add(p.gross)?;
            t.tips = t.tips.checked_add(p.tips)?;
            t.platform_fees = t.platform_fees.checked_add(p.platform_fees)?;
            t.net = t.net.checked_add(p.net)?;
            t.pending = t.pending.checked_add(p.pending)?;
            t.paid = t.paid.checked_add(p.paid)?;
        }
        Ok(t)
    }
}

/// A driver's earnings in one currency.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CurrencyEarnings {
    /// The currency.
    pub currency: Currency,
    /// By period, oldest first ([`crate::payout::summarize_earnings`]).
    pub periods: Vec<PeriodTotals>,
    /// Over the whole range.
    pub totals: EarningsTotals,
}

/// Cash a driver holds for one business (owed to the platform until netted or handed back).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CashHeldView {
    /// The business.
    pub business_id: Uuid,
    /// Its name, when the driver may see it (a business it serves).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_name: Option<String>,
    /// `collected − deposited − settled`.
    pub held: Money,
}

/// `GET /api/v1/driver/earnings`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DriverEarningsView {
    /// How periods are cut.
    pub group: Grouping,
    /// The local days covered.
    pub range: DateRange,
    /// The driver's time zone the days and weeks are cut in.
    pub time_zone: String,
    /// Per currency (usually one).
    pub currencies: Vec<CurrencyEarnings>,
    /// The cash the driver holds now, per business.
    pub cash_held: Vec<CashHeldView>,
    /// The latest deliveries in the range, newest first (at most 50).
    pub latest: Vec<EarningsEntryView>,
}

// Payouts -------------------------------------------------------------------------------------

/// Where a payout is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PayoutState {
    /// Computed, waiting to be processed.
    Pending,
    /// A transfer is under way.
    Processing,
    /// Transferred (or nothing was owed).
    Paid,
    /// The transfer failed (see `failure_reason`); processing again retries it.
    Failed,
    /// The party owed the platform: nothing was transferred and the balance moves into the
    /// party's next payout.
    CarriedOver,
}

impl PayoutState {
    /// Every state.
    pub const ALL: [PayoutState; 5] = [
        Self::Pending,
        Self::Processing,
        Self::Paid,
        Self::Failed,
        Self::CarriedOver,
    ];

    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Processing => "processing",
            Self::Paid => "paid",
            Self::Failed => "failed",
            Self::CarriedOver => "carried_over",
        }
    }

    /// Parses the stored form.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// Whether processing may (still) move money: a pending or failed payout.
    pub fn may_process(self) -> bool {
        matches!(self, Self::Pending | Self::Failed)
    }
}

/// Who a payout is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PayoutPartyKind {
    /// A business.
    Business,
    /// A driver.
    Driver,
}

/// `POST /api/v1/admin/payouts/run`: compute the pending payouts of every closed period with
/// unpaid items.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PayoutRunRequest {
    /// Local days or weeks (each party's own time zone).
    pub grouping: Grouping,
    /// Cover periods that end before this local date starts (and before now).
    pub until: NaiveDate,
}

/// One payout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PayoutRecord {
    /// The payout.
    pub id: Uuid,
    /// Business or driver.
    pub party: PayoutPartyKind,
    /// The business, for a business's payout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_id: Option<Uuid>,
    /// The driver, for a driver's payout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_id: Option<Uuid>,
    /// The idempotency key ([`crate::payout::payout_key_in`]).
    pub key: String,
    /// How the period was cut.
    pub grouping: Grouping,
    /// The period.
    pub period: PayoutPeriod,
    /// The currency.
    pub currency: Currency,
    /// Where it is.
    pub status: PayoutState,
    /// A business's statement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business: Option<BusinessPayout>,
    /// A driver's statement (its cash is netted again when processed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<DriverPayout>,
    /// The provider's transfer (`tr_…`), once paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_id: Option<String>,
    /// Why the last attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    /// Processing attempts so far.
    pub attempts: u32,
    /// The payout a carried-over balance moved into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carried_into: Option<Uuid>,
    /// When it was computed.
    pub created_at: DateTime<Utc>,
    /// When it was paid or carried over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processed_at: Option<DateTime<Utc>>,
    /// The admin who processed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processed_by: Option<Uuid>,
}

/// What a payout run did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PayoutRunView {
    /// The payouts created (none when everything closed was already covered).
    pub created: Vec<PayoutRecord>,
}

/// `GET /api/v1/admin/payouts` and `GET /api/v1/business/payouts` query.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct PayoutListQuery {
    /// `pending`, `processing`, `paid`, `failed` or `carried_over`.
    #[serde(default)]
    pub status: Option<String>,
    /// `business` or `driver` (admins only).
    #[serde(default)]
    pub party: Option<String>,
    /// Page number, from 1.
    #[serde(default)]
    pub page: Option<u32>,
    /// Page size, 1–100 (default 50).
    #[serde(default)]
    pub per_page: Option<u32>,
}

/// A parsed [`PayoutListQuery`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PayoutFilter {
    /// Only this status.
    pub status: Option<PayoutState>,
    /// Only this kind of party.
    pub party: Option<PayoutPartyKind>,
    /// Page, from 1.
    pub page: u32,
    /// Page size.
    pub per_page: u32,
}

impl PayoutListQuery {
    /// Parses the query.
    ///
    /// # Errors
    /// Every field error at once.
    pub fn parse(&self) -> Result<PayoutFilter, FieldErrors> {
        let mut e = FieldErrors::default();
        let status = match self.status.as_deref() {
            None => Some(None),
            Some(raw) => match PayoutState::parse(raw) {
                Some(s) => Some(Some(s)),
                None => {
                    e.push(
                        "status",
                        "invalid",
                        "use pending, processing, paid, failed or carried_over",
                    );
                    None
                }
            },
        };
        let party = match self.party.as_deref() {
            None => Some(None),
            Some("business") => Some(Some(PayoutPartyKind::Business)),
            Some("driver") => Some(Some(PayoutPartyKind::Driver)),
            Some(_) => {
                e.push("party", "invalid", "use business or driver");
                None
            }
        };
        let page = self.page.unwrap_or(1);
        if page == 0 {
            e.push("page", "out_of_range", "pages start at 1");
        }
        let per_page = self.per_page.unwrap_or(50);
        if !(1..=100).contains(&per_page) {
            e.push("per_page", "out_of_range", "per_page must be 1 to 100");
        }
        e.finish(|| {
            Some(PayoutFilter {
                status: status?,
                party: party?,
                page,
                per_page,
            })
        })
    }
}

/// A page of payouts, newest period first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PayoutPage {
    /// The payouts.
    pub items: Vec<PayoutRecord>,
    /// This page's number.
    pub page: u32,
    /// The page size.
    pub per_page: u32,
    /// How many payouts match.
    pub total: u64,
}

/// `PUT /api/v1/admin/businesses/{id}/payout-account` and
/// `PUT /api/v1/admin/drivers/{id}/payout-account`: the payment provider's connected account
/// payouts are transferred to (Stripe `acct_…`), or `null` to remove it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PayoutAccountRequest {
    /// `acct_` followed by 1–250 letters and digits, or `null`.
    pub account: Option<String>,
}

impl PayoutAccountRequest {
    /// Parses the account id.
    ///
    /// # Errors
    /// `account`: `invalid`.
    pub fn parse(&self) -> Result<Option<String>, FieldErrors> {
        let mut e = FieldErrors::default();
        if let Some(raw) = &self.account {
            let ok = raw.strip_prefix("acct_").is_some_and(|rest| {
                (1..=250).contains(&rest.len()) && rest.bytes().all(|b| b.is_ascii_alphanumeric())
            });
            if !ok {
                e.push(
                    "account",
                    "invalid",
                    "use the provider's account id, acct_…",
                );
            }
        }
        e.finish(|| Some(self.account.clone()))
    }
}

/// A party's payout account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PayoutAccountView {
    /// The business or driver.
    pub id: Uuid,
    /// The connected account, if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

// Platform fees -------------------------------------------------------------------------------

/// `GET /api/v1/admin/platform-fees` query.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct PlatformFeesQuery {
    /// First UTC day, `YYYY-MM-DD` (default: 30 days before `to`).
    #[serde(default)]
    pub from: Option<String>,
    /// Last UTC day, inclusive (default: today). At most 366 days after `from`.
    #[serde(default)]
    pub to: Option<String>,
    /// Only this business.
    #[serde(default)]
    pub business_id: Option<String>,
}

/// A parsed [`PlatformFeesQuery`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeeReportFilter {
    /// The UTC days.
    pub days: DateRange,
    /// Only this business.
    pub business_id: Option<Uuid>,
}

impl PlatformFeesQuery {
    /// Parses the query; `today` is the UTC date.
    ///
    /// # Errors
    /// Every field error at once.
    pub fn parse(&self, today: NaiveDate) -> Result<FeeReportFilter, FieldErrors> {
        let mut e = FieldErrors::default();
        let days = parse_range(&mut e, self.from.as_deref(), self.to.as_deref(), today, 30);
        let business_id = match self.business_id.as_deref().map(Uuid::parse_str) {
            None => Some(None),
            Some(Ok(id)) => Some(Some(id)),
            Some(Err(_)) => {
                e.push("business_id", "invalid", "not a UUID");
                None
            }
        };
        e.finish(|| {
            Some(FeeReportFilter {
                days: days?,
                business_id: business_id?,
            })
        })
    }
}

/// Commissions of one kind, split by whether the payout that withheld them was paid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FeeSplit {
    /// How many fees.
    pub count: u32,
    /// Not yet withheld by a paid payout.
    pub pending: Money,
    /// Withheld by a paid payout.
    pub paid: Money,
    /// Both.
    pub total: Money,
}

impl FeeSplit {
    /// `count` fees adding up to `total`, of which `paid` were withheld by paid payouts.
    ///
    /// # Errors
    /// [`MoneyError`] on mixed currencies or overflow.
    pub fn new(count: u32, paid: Money, total: Money) -> Result<Self, MoneyError> {
        Ok(FeeSplit {
            count,
            pending: total.checked_sub(paid)?,
            paid,
            total,
        })
    }

    /// Both splits together.
    ///
    /// # Errors
    /// [`MoneyError`] on mixed currencies or overflow.
    pub fn plus(self, other: FeeSplit) -> Result<Self, MoneyError> {
        Ok(FeeSplit {
            count: self.count.saturating_add(other.count),
            pending: self.pending.checked_add(other.pending)?,
            paid: self.paid.checked_add(other.paid)?,
            total: self.total.checked_add(other.total)?,
        })
    }
}

/// The platform's commissions from one business in one currency.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BusinessFeeTotals {
    /// The business.
    pub business_id: Uuid,
    /// Its name.
    pub business_name: String,
    /// The currency.
    pub currency: Currency,
    /// Order commissions (`platform_fees`), by when they were recorded.
    pub order_commissions: FeeSplit,
    /// Delivery commissions on its deliveries (drivers' earnings), by delivery time.
    pub delivery_commissions: FeeSplit,
    /// Both kinds.
    pub total: FeeSplit,
}

/// `GET /api/v1/admin/platform-fees`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlatformFeesView {
    /// The UTC days covered.
    pub range: DateRange,
    /// Per business and currency, by business name.
    pub businesses: Vec<BusinessFeeTotals>,
}

// Driver performance --------------------------------------------------------------------------

/// `GET /api/v1/admin/driver-performance` query.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct DriverPerformanceQuery {
    /// First UTC day, `YYYY-MM-DD` (default: 30 days before `to`).
    #[serde(default)]
    pub from: Option<String>,
    /// Last UTC day, inclusive (default: today). At most 366 days after `from`.
    #[serde(default)]
    pub to: Option<String>,
}

impl DriverPerformanceQuery {
    /// Parses the query; `today` is the UTC date.
    ///
    /// # Errors
    /// Every field error at once.
    pub fn parse(&self, today: NaiveDate) -> Result<DateRange, FieldErrors> {
        let mut e = FieldErrors::default();
        let days = parse_range(&mut e, self.from.as_deref(), self.to.as_deref(), today, 30);
        e.finish(|| days)
    }
}

/// One driver's record over a range.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DriverPerformanceView {
    /// The driver.
    pub driver_id: Uuid,
    /// Their name.
    pub full_name: String,
    /// Deliveries handed over.
    pub delivered: u32,
    /// Deliveries that failed in the driver's hands.
    pub failed: u32,
    /// Offers made to the driver.
    pub offers: u32,
    /// Offers the driver accepted.
    pub accepted: u32,
    /// `accepted / offers` in basis points (absent without offers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acceptance_rate_bps: Option<u32>,
    /// Deliveries on time ([`crate::performance::on_time`]).
    pub on_time: u32,
    /// `on_time / delivered` in basis points (absent without deliveries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_time_rate_bps: Option<u32>,
    /// Customers' rating, 10–50 (tenths of a star).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating_tenths: Option<i64>,
}

/// `GET /api/v1/admin/driver-performance`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DriverPerformanceReport {
    /// The UTC days covered.
    pub range: DateRange,
    /// Every driver with an offer or a delivery in the range, by name.
    pub drivers: Vec<DriverPerformanceView>,
}

// Cash deposits -------------------------------------------------------------------------------

/// `POST /api/v1/business/drivers/{driver_id}/cash-deposits`: the driver handed cash back to
/// the business.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CashDepositRequest {
    /// The amount, in minor units of the business's currency: more than zero, at most what the
    /// driver holds for the business.
    pub amount_minor: i64,
}

/// A recorded deposit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CashDepositView {
    /// The `driver_cash` row.
    pub id: Uuid,
    /// The driver.
    pub driver_id: Uuid,
    /// The amount handed back.
    pub amount: Money,
    /// What the driver still holds for the business.
    pub held: Money,
    /// When it was recorded.
    pub at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(raw: &str) -> NaiveDate {
        raw.parse().expect("date")
    }

    fn fields(e: &FieldErrors) -> Vec<(&str, &str)> {
        e.0.iter()
            .map(|f| (f.field.as_str(), f.code.as_str()))
            .collect()
    }

    #[test]
    fn earnings_queries_default_and_validate() {
        let today = day("2026-06-30");
        let q = DriverEarningsQuery::default()
            .parse(today)
            .expect("defaults");
        assert_eq!(q.grouping, Grouping::Day);
        assert_eq!((q.days.from, q.days.to), (day("2026-06-01"), today));
        let week = DriverEarningsQuery {
            group: Some("week".into()),
            ..Default::default()
        };
        assert_eq!(week.parse(today).expect("weeks").grouping, Grouping::Week);
        let bad = DriverEarningsQuery {
            group: Some("month".into()),
            from: Some("2026-13-01".into()),
            to: Some("yesterday".into()),
        };
        assert_eq!(
            fields(&bad.parse(today).expect_err("bad")),
            vec![("group", "invalid"), ("from", "invalid"), ("to", "invalid")]
        );
        let backwards = DriverEarningsQuery {
            from: Some("2026-06-02".into()),
            to: Some("2026-06-01".into()),
            ..Default::default()
        };
        assert_eq!(
            fields(&backwards.parse(today).expect_err("backwards")),
            vec![("to", "before_from")]
        );
        let long = PlatformFeesQuery {
            from: Some("2025-01-01".into()),
            to: Some("2026-01-02".into()),
            business_id: Some("nope".into()),
        };
        assert_eq!(
            fields(&long.parse(today).expect_err("long")),
            vec![("to", "range_too_long"), ("business_id", "invalid")]
        );
        let year = DriverPerformanceQuery {
            from: Some("2025-01-02".into()),
            to: Some("2026-01-02".into()),
        };
        assert!(year.parse(today).is_ok(), "366 days are allowed");
    }

    #[test]
    fn payout_lists_parse_their_filters() {
        let f = PayoutListQuery {
            status: Some("carried_over".into()),
            party: Some("driver".into()),
            page: Some(2),
            per_page: None,
        }
        .parse()
        .expect("parses");
        assert_eq!(f.status, Some(PayoutState::CarriedOver));
        assert_eq!(f.party, Some(PayoutPartyKind::Driver));
        assert_eq!((f.page, f.per_page), (2, 50));
        let bad = PayoutListQuery {
            status: Some("done".into()),
            party: Some("customer".into()),
            page: Some(0),
            per_page: Some(500),
        };
        assert_eq!(bad.parse().expect_err("bad").0.len(), 4);
        for s in PayoutState::ALL {
            assert_eq!(PayoutState::parse(s.as_str()), Some(s));
        }
        assert!(PayoutState::Failed.may_process());
        assert!(!PayoutState::Paid.may_process());
    }

    #[test]
    fn payout_accounts_are_provider_ids() {
        let ok = PayoutAccountRequest {
            account: Some("acct_1Nv0FGQ9RKHgCVdK".into()),
        };
        assert_eq!(
            ok.parse().expect("valid").as_deref(),
            Some("acct_1Nv0FGQ9RKHgCVdK")
        );
        assert_eq!(PayoutAccountRequest { account: None }.parse(), Ok(None));
        for bad in ["acct_", "acct_a-b", "cus_123", ""] {
            let req = PayoutAccountRequest {
                account: Some(bad.into()),
            };
            assert!(req.parse().is_err(), "{bad}");
        }
    }

    #[test]
    fn requests_refuse_unknown_fields() {
        assert!(serde_json::from_str::<CashDepositRequest>(r#"{"amount_minor":5,"x":1}"#).is_err());
        assert!(serde_json::from_str::<PayoutRunRequest>(
            r#"{"grouping":"week","until":"2026-06-01","business_id":"x"}"#
        )
        .is_err());
        let run: PayoutRunRequest =
            serde_json::from_str(r#"{"grouping":"day","until":"2026-06-01"}"#).expect("parses");
        assert_eq!(run.grouping, Grouping::Day);
    }
}
