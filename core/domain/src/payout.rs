//! Payouts: what the platform owes each business and each driver for a period, the cash a
//! driver holds, and the periods themselves.
//!
//! # Who pays whom
//!
//! All money goes through the platform, and every amount is integer minor units:
//!
//! - **Customers pay the platform.** A card payment is captured into the platform's provider
//!   account. Cash on delivery is taken by the driver, who owes it to the platform until it is
//!   netted against their earnings (below) or handed in at the business's counter (a deposit:
//!   the business then holds it, and it is deducted from the business's payout,
//!   [`BusinessLine::CashReceived`]). Cash taken at the store (pickup orders) stays with the
//!   business and is deducted from its payout.
//! - **The platform keeps its commissions**: the order commission charged to the business
//!   ([`crate::plan::platform_fee`] on the total without the tip, the ledger's
//!   `platform_fees`) and the delivery commission charged to the driver
//!   ([`crate::earnings::DriverEarnings::platform_fee`]).
//! - **The business pays for its deliveries.** For each delivered order the business is
//!   charged the driver's gross earnings (the delivery fee and tip its customer paid, passed
//!   on, plus the distance fee and surge), whether the driver is one of its dedicated drivers
//!   or from the shared pool. The platform pays the driver on the business's behalf; a
//!   dedicated driver is therefore paid by the business, through the platform, never directly.
//! - **The platform pays drivers** their net earnings minus the cash they collected and kept.
//!   A driver's net for a period can be negative: the driver owes the platform, and the
//!   balance carries into the next period ([`DriverLine::CarriedOver`]).
//! - **Refunds** are deducted from the business's payout in the period they happen, with any
//!   order commission the platform returns ([`BusinessLine::Refund`]); the driver keeps their
//!   earnings for a delivery that was made.
//!
//! For one delivered card order of total `T`, order commission `c` and driver gross `g` with
//! delivery commission `d`: the business gets `T − c − g`, the driver `g − d`, the platform
//! keeps `c + d`; the three add up to `T`. A cash order is the same, with `T` taken from the
//! driver's payout instead of the provider.
//!
//! Payouts are idempotent by key ([`payout_key`], with the currency: [`payout_key_in`]): the
//! server stores one payout per key under a unique constraint, and the key is the transfer's
//! idempotency key at the provider, so processing twice pays once. What processing does with
//! a net is [`settlement`]: transfer a positive one, carry a negative one over (for businesses
//! as for drivers, [`BusinessLine::CarriedOver`], [`DriverLine::CarriedOver`]).

use chrono::{DateTime, Datelike, Days, LocalResult, NaiveDate, TimeZone, Utc, Weekday};
/// The IANA time zone type the periods are cut in (re-exported so callers need no chrono-tz).
pub use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::id::{BusinessId, UserId};
use crate::money::{Currency, Money, MoneyError};

// Periods ------------------------------------------------------------------------------------

/// A half-open interval of time, `[start, end)`, in UTC: one payout period.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PayoutPeriod {
    /// The first instant inside.
    pub start: DateTime<Utc>,
    /// The first instant after.
    pub end: DateTime<Utc>,
}

impl PayoutPeriod {
    /// Whether `at` falls inside.
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.start <= at && at < self.end
    }
}

/// How a period is cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Grouping {
    /// Local calendar days.
    Day,
    /// Local weeks starting on Monday.
    Week,
}

/// The first instant of local `date` in `tz`: local midnight, or, when a clock change skips
/// midnight, the first local time that exists after it.
fn start_of_day(date: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let midnight = date.and_time(chrono::NaiveTime::MIN);
    match tz.from_local_datetime(&midnight) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(earliest, _) => earliest.with_timezone(&Utc),
        LocalResult::None => {
            // A gap: the first existing local time after midnight, found by the minute (gaps are
            // at most a day: Samoa skipped 30 December 2011 entirely).
            let mut probe = midnight;
            for _ in 0..(25 * 60) {
                probe += chrono::Duration::minutes(1);
                if let Some(t) = tz.from_local_datetime(&probe).earliest() {
                    return t.with_timezone(&Utc);
                }
            }
            midnight.and_utc()
        }
    }
}

/// The local day of `at` in `tz`, as a period (23 or 25 hours across a clock change).
pub fn day_of(at: DateTime<Utc>, tz: Tz) -> PayoutPeriod {
    let date = at.with_timezone(&tz).date_naive();
    let next = date.checked_add_days(Days::new(1)).unwrap_or(date);
    PayoutPeriod {
        start: start_of_day(date, tz),
        end: start_of_day(next, tz),
    }
}

/// The local week (Monday 00:00 to the next Monday 00:00 in `tz`) containing `at`.
pub fn week_of(at: DateTime<Utc>, tz: Tz) -> PayoutPeriod {
    let date = at.with_timezone(&tz).date_naive();
    let back = u64::from(date.weekday().num_days_from_monday());
    let monday = date.checked_sub_days(Days::new(back)).unwrap_or(date);
    let next = monday.checked_add_days(Days::new(7)).unwrap_or(monday);
    debug_assert_eq!(monday.weekday(), Weekday::Mon);
    PayoutPeriod {
        start: start_of_day(monday, tz),
        end: start_of_day(next, tz),
    }
}

/// The period of `grouping` containing `at` in `tz`.
pub fn period_of(at: DateTime<Utc>, tz: Tz, grouping: Grouping) -> PayoutPeriod {
    match grouping {
        Grouping::Day => day_of(at, tz),
        Grouping::Week => week_of(at, tz),
    }
}

/// Who a payout is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum PayoutParty {
    /// A business.
    Business(BusinessId),
    /// A driver.
    Driver(UserId),
}

/// The deterministic idempotency key of the payout of `party` for `period`, e.g.
/// `payout:driver:<uuid>:2026-06-01T00:00:00Z/2026-06-08T00:00:00Z`. The server stores it
/// under a unique constraint (and may derive the payout's id from it), so the same payout is
/// never made twice.
pub fn payout_key(party: PayoutParty, period: PayoutPeriod) -> String {
    let (kind, id) = match party {
        PayoutParty::Business(id) => ("business", id.0),
        PayoutParty::Driver(id) => ("driver", id.0),
    };
    let stamp = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    format!(
        "payout:{kind}:{id}:{}/{}",
        stamp(period.start),
        stamp(period.end)
    )
}

// Businesses ---------------------------------------------------------------------------------

/// One ledger entry of a business's period.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BusinessLine {
    /// A completed order (delivered, or collected).
    Order {
        /// What the customer paid, tip included.
        total: Money,
        /// The platform's order commission.
        platform_fee: Money,
        /// The driver's gross earnings for its delivery (zero for a pickup order).
        driver_cost: Money,
        /// Cash the business itself took for it (a pickup order paid at the store).
        kept_by_business: Money,
    },
    /// Money given back to a customer.
    Refund {
        /// The amount refunded.
        amount: Money,
        /// Order commission the platform gives back with it.
        fee_returned: Money,
    },
    /// Cash a driver collected for the platform and handed to the business instead (a
    /// deposit at the store): the business already holds it.
    CashReceived(Money),
    /// The previous period's balance: negative when the business owed the platform.
    CarriedOver(Money),
}

/// A business's statement for a period.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BusinessPayout {
    /// Completed orders' totals.
    pub gross_revenue: Money,
    /// Order commissions, less commissions returned with refunds.
    pub platform_fees: Money,
    /// The drivers' gross earnings for the business's deliveries.
    pub driver_payments: Money,
    /// Refunded amounts.
    pub refunds: Money,
    /// Cash the business took itself or received from drivers (already in its hands).
    pub cash_kept: Money,
    /// The previous period's balance (negative when the business owed the platform).
    pub carried_over: Money,
    /// `gross_revenue − platform_fees − driver_payments − refunds − cash_kept + carried_over`;
    /// negative when the business owes the platform (it carries over).
    pub net: Money,
    /// Completed orders counted.
    pub orders: u32,
}

/// Sums a business's period.
///
/// # Errors
/// [`MoneyError`] on mixed currencies or overflow.
pub fn business_payout(
    currency: Currency,
    lines: &[BusinessLine],
) -> Result<BusinessPayout, MoneyError> {
    let zero = Money::zero(currency);
    let mut p = BusinessPayout {
        gross_revenue: zero,
        platform_fees: zero,
        driver_payments: zero,
        refunds: zero,
        cash_kept: zero,
        carried_over: zero,
        net: zero,
        orders: 0,
    };
    for line in lines {
        match *line {
            BusinessLine::Order {
                total,
                platform_fee,
                driver_cost,
                kept_by_business,
            } => {
                p.gross_revenue = p.gross_revenue.checked_add(total)?;
                p.platform_fees = p.platform_fees.checked_add(platform_fee)?;
                p.driver_payments = p.driver_payments.checked_add(driver_cost)?;
                p.cash_kept = p.cash_kept.checked_add(kept_by_business)?;
                p.orders = p.orders.saturating_add(1);
            }
            BusinessLine::Refund {
                amount,
                fee_returned,
            } => {
                p.refunds = p.refunds.checked_add(amount)?;
                p.platform_fees = p.platform_fees.checked_sub(fee_returned)?;
            }
            BusinessLine::CashReceived(m) => p.cash_kept = p.cash_kept.checked_add(m)?,
            BusinessLine::CarriedOver(m) => p.carried_over = p.carried_over.checked_add(m)?,
        }
    }
    p.net = p
        .gross_revenue
        .checked_sub(p.platform_fees)?
        .checked_sub(p.driver_payments)?
        .checked_sub(p.refunds)?
        .checked_sub(p.cash_kept)?
        .checked_add(p.carried_over)?;
    Ok(p)
}

// Drivers ------------------------------------------------------------------------------------

/// One ledger entry of a driver's period.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DriverLine {
    /// Net earnings for one delivery ([`crate::earnings::DriverEarnings::net`]).
    Earned(Money),
    /// Cash collected from a customer, now held by the driver.
    CashCollected(Money),
    /// Cash the driver handed in (to the platform or the business's till).
    CashDeposited(Money),
    /// The previous period's balance: negative when the driver owed the platform.
    CarriedOver(Money),
}

/// A driver's statement for a period.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DriverPayout {
    /// Net earnings of the period's deliveries.
    pub earnings: Money,
    /// Cash collected and not handed in: `collected − deposited`.
    pub cash_kept: Money,
    /// The previous period's balance.
    pub carried_over: Money,
    /// `earnings − cash_kept + carried_over`: paid to the driver when positive; when negative,
    /// the driver owes the platform and it carries over.
    pub net: Money,
    /// Deliveries counted.
    pub deliveries: u32,
}

impl DriverPayout {
    /// Whether the driver owes the platform.
    pub fn driver_owes(&self) -> bool {
        self.net.minor < 0
    }
}

/// Sums a driver's period, netting the cash they kept against what they earned.
///
/// # Errors
/// [`MoneyError`] on mixed currencies or overflow.
pub fn driver_payout(currency: Currency, lines: &[DriverLine]) -> Result<DriverPayout, MoneyError> {
    let zero = Money::zero(currency);
    let (mut earnings, mut collected, mut deposited, mut carried) = (zero, zero, zero, zero);
    let mut deliveries = 0u32;
    for line in lines {
        match *line {
            DriverLine::Earned(m) => {
                earnings = earnings.checked_add(m)?;
                deliveries = deliveries.saturating_add(1);
            }
            DriverLine::CashCollected(m) => collected = collected.checked_add(m)?,
            DriverLine::CashDeposited(m) => deposited = deposited.checked_add(m)?,
            DriverLine::CarriedOver(m) => carried = carried.checked_add(m)?,
        }
    }
    let cash_kept = collected.checked_sub(deposited)?;
    Ok(DriverPayout {
        earnings,
        cash_kept,
        carried_over: carried,
        net: earnings.checked_sub(cash_kept)?.checked_add(carried)?,
        deliveries,
    })
}

/// Whether a driver holding `held` in cash has reached the business's `cap`: at the cap or
/// over it, the driver is offered no new cash orders until the cash is settled (another cash
/// order would take them over it).
///
/// # Errors
/// [`MoneyError::CurrencyMismatch`] when the amounts are in different currencies.
pub fn cash_cap_reached(held: Money, cap: Money) -> Result<bool, MoneyError> {
    if held.currency != cap.currency {
        return Err(MoneyError::CurrencyMismatch(held.currency, cap.currency));
    }
    Ok(held.minor >= cap.minor)
}

// Earnings summaries -------------------------------------------------------------------------

/// One delivery's earnings as the driver's earnings page lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EarningsEntry {
    /// When the delivery was completed.
    pub at: DateTime<Utc>,
    /// Its gross earnings (tip included).
    pub gross: Money,
    /// Its tip.
    pub tip: Money,
    /// The delivery commission.
    pub platform_fee: Money,
    /// What the driver is owed for it.
    pub net: Money,
    /// Whether a processed payout included it.
    pub paid: bool,
}

/// The totals of one day or week.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PeriodTotals {
    /// The period.
    pub period: PayoutPeriod,
    /// Deliveries in it.
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

/// Groups `entries` by local day or week in `tz`, oldest period first.
///
/// # Errors
/// [`MoneyError`] on mixed currencies or overflow.
pub fn summarize_earnings(
    currency: Currency,
    entries: &[EarningsEntry],
    tz: Tz,
    grouping: Grouping,
) -> Result<Vec<PeriodTotals>, MoneyError> {
    let zero = Money::zero(currency);
    let mut totals: std::collections::BTreeMap<PayoutPeriod, PeriodTotals> =
        std::collections::BTreeMap::new();
    for e in entries {
        let period = period_of(e.at, tz, grouping);
        let t = totals.entry(period).or_insert(PeriodTotals {
            period,
            deliveries: 0,
            gross: zero,
            tips: zero,
            platform_fees: zero,
            net: zero,
            pending: zero,
            paid: zero,
        });
        t.deliveries = t.deliveries.saturating_add(1);
        t.gross = t.gross.checked_add(e.gross)?;
        t.tips = t.tips.checked_add(e.tip)?;
        t.platform_fees = t.platform_fees.checked_add(e.platform_fee)?;
        t.net = t.net.checked_add(e.net)?;
        if e.paid {
            t.paid = t.paid.checked_add(e.net)?;
        } else {
            t.pending = t.pending.checked_add(e.net)?;
        }
    }
    Ok(totals.into_values().collect())
}

// Processing ---------------------------------------------------------------------------------

/// The idempotency key of the payout of `party` for `period` in `currency`: [`payout_key`] with
/// the currency appended (a party paid in two currencies gets two payouts), e.g.
/// `payout:business:<uuid>:2026-06-01T00:00:00Z/2026-06-02T00:00:00Z:EUR`. It is also the
/// transfer's idempotency key at the payment provider.
pub fn payout_key_in(party: PayoutParty, period: PayoutPeriod, currency: Currency) -> String {
    format!("{}:{}", payout_key(party, period), currency.code())
}

/// The first instant of local `date` in `tz` (local midnight, or the first local time after a
/// skipped midnight).
pub fn local_midnight(date: NaiveDate, tz: Tz) -> DateTime<Utc> {
    start_of_day(date, tz)
}

/// Whether `period` is over for a payout run asked to cover everything before local `until`
/// (exclusive) at `now`: it must have ended both before `until` starts in `tz` and before now,
/// so nothing can still be earned in it.
pub fn period_closed(period: PayoutPeriod, until: NaiveDate, tz: Tz, now: DateTime<Utc>) -> bool {
    period.end <= start_of_day(until, tz).min(now)
}

/// What processing a computed payout does with its net.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settlement {
    /// Transfer this (positive) amount to the party.
    Transfer(Money),
    /// The party owes the platform this (negative) balance: nothing is transferred, and the
    /// balance is carried into the party's next payout.
    CarryOver(Money),
    /// Nothing to move: the payout is settled as it stands.
    Nothing,
}

/// Decides what processing a payout of `net` does ([`Settlement`]).
pub fn settlement(net: Money) -> Settlement {
    match net.minor.cmp(&0) {
        std::cmp::Ordering::Greater => Settlement::Transfer(net),
        std::cmp::Ordering::Less => Settlement::CarryOver(net),
        std::cmp::Ordering::Equal => Settlement::Nothing,
    }
}

/// The order commission the platform gives back with a refund of `refunded` out of an order's
/// `total`: all of it for a full refund, otherwise the refunded share, rounded half away from
/// zero (the platform's one rounding rule). Nothing when there was nothing to refund.
///
/// # Errors
/// [`MoneyError::CurrencyMismatch`] when the amounts are in different currencies.
pub fn refund_fee_returned(
    commission: Money,
    refunded: Money,
    total: Money,
) -> Result<Money, MoneyError> {
    for other in [refunded, total] {
        if other.currency != commission.currency {
            return Err(MoneyError::CurrencyMismatch(
                commission.currency,
                other.currency,
            ));
        }
    }
    if refunded.minor <= 0 || total.minor <= 0 {
        return Ok(Money::zero(commission.currency));
    }
    if refunded.minor >= total.minor {
        return Ok(commission);
    }
    let share = crate::money::div_round_half_away(
        i128::from(commission.minor) * i128::from(refunded.minor),
        i128::from(total.minor),
    );
    Ok(Money::new(
        i64::try_from(share).map_err(|_| MoneyError::Overflow)?,
        commission.currency,
    ))
}

/// Why a cash deposit was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DepositError {
    /// A deposit hands back some cash.
    #[error("a deposit must be more than zero")]
    NotPositive,
    /// The driver cannot hand back more than it holds for the business.
    #[error("the driver holds only {held} for this business")]
    ExceedsHeld {
        /// What the driver holds.
        held: Money,
    },
    /// The deposit is in another currency than the cash held.
    #[error(transparent)]
    Money(#[from] MoneyError),
}

/// Checks a cash deposit of `amount` by a driver holding `held` for the business: positive,
/// in the same currency, at most what is held.
///
/// # Errors
/// [`DepositError`].
pub fn check_deposit(amount: Money, held: Money) -> Result<(), DepositError> {
    if amount.currency != held.currency {
        return Err(MoneyError::CurrencyMismatch(amount.currency, held.currency).into());
    }
    if amount.minor <= 0 {
        return Err(DepositError::NotPositive);
    }
    if amount.minor > held.minor {
        return Err(DepositError::ExceedsHeld { held });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::earnings::{compute, DeliveryPay, EarningsRules, NO_SURGE_BPS};
    use crate::plan::platform_fee;
    use proptest::prelude::*;
    use uuid::Uuid;

    fn eur() -> Currency {
        Currency::parse("EUR").expect("known")
    }

    fn m(minor: i64) -> Money {
        Money::new(minor, eur())
    }

    fn utc(raw: &str) -> DateTime<Utc> {
        raw.parse().expect("valid instant")
    }

    #[test]
    fn weeks_start_on_local_monday() {
        let helsinki = chrono_tz::Europe::Helsinki;
        // Wednesday 3 June 2026, 12:00 UTC; Helsinki is UTC+3 in summer.
        let week = week_of(utc("2026-06-03T12:00:00Z"), helsinki);
        assert_eq!(week.start, utc("2026-05-31T21:00:00Z"));
        assert_eq!(week.end, utc("2026-06-07T21:00:00Z"));
        // Sunday 23:30 local is still that week; Monday 00:00 local is the next.
        assert!(week.contains(utc("2026-06-07T20:30:00Z")));
        assert!(!week.contains(week.end));
        assert_eq!(week_of(week.end, helsinki).start, week.end);
    }

    #[test]
    fn days_follow_clock_changes() {
        let helsinki = chrono_tz::Europe::Helsinki;
        // Clocks go forward on 29 March 2026: a 23-hour day.
        let short = day_of(utc("2026-03-29T12:00:00Z"), helsinki);
        assert_eq!(short.end - short.start, chrono::Duration::hours(23));
        // And back on 25 October 2026: 25 hours.
        let long = day_of(utc("2026-10-25T12:00:00Z"), helsinki);
        assert_eq!(long.end - long.start, chrono::Duration::hours(25));
        // A zone whose clocks skip midnight (Havana moved 00:00 → 01:00 on 8 March 2026).
        let havana = chrono_tz::America::Havana;
        let day = day_of(utc("2026-03-08T12:00:00Z"), havana);
        assert_eq!(day.end - day.start, chrono::Duration::hours(23));
        // Samoa skipped 30 December 2011: the 29th runs straight into the 31st.
        let apia = chrono_tz::Pacific::Apia;
        let day = day_of(utc("2011-12-29T12:00:00Z"), apia);
        assert_eq!(day.end, day_of(day.end, apia).start);
    }

    #[test]
    fn payout_keys_are_deterministic() {
        let period = week_of(utc("2026-06-03T12:00:00Z"), chrono_tz::UTC);
        let driver = PayoutParty::Driver(UserId(Uuid::from_u128(1)));
        let key = payout_key(driver, period);
        assert_eq!(
            key,
            "payout:driver:00000000-0000-0000-0000-000000000001:\
             2026-06-01T00:00:00Z/2026-06-08T00:00:00Z"
        );
        assert_eq!(payout_key(driver, period), key);
        let business = PayoutParty::Business(BusinessId(Uuid::from_u128(1)));
        assert_ne!(payout_key(business, period), key);
    }

    #[test]
    fn cash_cap_is_reached_at_the_cap() {
        assert_eq!(cash_cap_reached(m(9_999), m(10_000)), Ok(false));
        assert_eq!(cash_cap_reached(m(10_000), m(10_000)), Ok(true));
        assert_eq!(cash_cap_reached(m(10_001), m(10_000)), Ok(true));
        let usd = Money::new(1, Currency::parse("USD").expect("known"));
        assert!(cash_cap_reached(usd, m(1)).is_err());
    }

    #[test]
    fn a_driver_who_kept_cash_may_owe_the_platform() {
        let p = driver_payout(
            eur(),
            &[
                DriverLine::Earned(m(1_000)),
                DriverLine::Earned(m(800)),
                DriverLine::CashCollected(m(4_500)),
                DriverLine::CashDeposited(m(1_000)),
                DriverLine::CarriedOver(m(-200)),
            ],
        )
        .expect("sums");
        assert_eq!(p.earnings, m(1_800));
        assert_eq!(p.cash_kept, m(3_500));
        assert_eq!(p.net, m(1_800 - 3_500 - 200));
        assert!(p.driver_owes());
        assert_eq!(p.deliveries, 2);
        let empty = driver_payout(eur(), &[]).expect("sums");
        assert_eq!(empty.net, m(0));
    }

    #[test]
    fn money_is_conserved_across_customer_business_driver_and_platform() {
        // A delivered card order: 30.00 goods + 3.90 delivery fee + 2.00 tip.
        let total = m(3_590);
        let tip = m(200);
        let order_fee = platform_fee(total.checked_sub(tip).expect("fits"), 1_000).expect("fee");
        let driver = compute(
            &DeliveryPay {
                delivery_fee: m(390),
                distance_metres: 3_000,
                tip,
                surge_bps: NO_SURGE_BPS,
            },
            &EarningsRules {
                per_km: m(100),
                included_metres: 2_000,
                commission_bps: 1_500,
            },
        )
        .expect("earnings");
        let business = business_payout(
            eur(),
            &[BusinessLine::Order {
                total,
                platform_fee: order_fee,
                driver_cost: driver.gross,
                kept_by_business: m(0),
            }],
        )
        .expect("sums");
        let paid_driver = driver_payout(eur(), &[DriverLine::Earned(driver.net)]).expect("sums");
        let platform = order_fee.minor + driver.platform_fee.minor;
        assert_eq!(
            business.net.minor + paid_driver.net.minor + platform,
            total.minor
        );
        // The same order in cash: the driver holds the total, the business is paid the same.
        let cash_driver = driver_payout(
            eur(),
            &[
                DriverLine::Earned(driver.net),
                DriverLine::CashCollected(total),
            ],
        )
        .expect("sums");
        assert_eq!(
            business.net.minor + cash_driver.net.minor + platform,
            0,
            "the platform's cash comes from the driver"
        );
    }

    #[test]
    fn refunds_and_cash_at_the_store_reduce_the_business_payout() {
        let p = business_payout(
            eur(),
            &[
                BusinessLine::Order {
                    total: m(2_000),
                    platform_fee: m(200),
                    driver_cost: m(0),
                    kept_by_business: m(2_000),
                },
                BusinessLine::Order {
                    total: m(5_000),
                    platform_fee: m(500),
                    driver_cost: m(700),
                    kept_by_business: m(0),
                },
                BusinessLine::Refund {
                    amount: m(1_000),
                    fee_returned: m(100),
                },
            ],
        )
        .expect("sums");
        assert_eq!(p.gross_revenue, m(7_000));
        assert_eq!(p.platform_fees, m(600));
        assert_eq!(p.net, m(7_000 - 600 - 700 - 1_000 - 2_000));
        assert_eq!(p.orders, 2);
    }

    #[test]
    fn earnings_are_summarized_by_local_day_and_week() {
        let entry = |at: &str, net: i64, paid: bool| EarningsEntry {
            at: utc(at),
            gross: m(net + 100),
            tip: m(50),
            platform_fee: m(100),
            net: m(net),
            paid,
        };
        let entries = [
            entry("2026-06-01T10:00:00Z", 500, true),
            entry("2026-06-01T22:30:00Z", 700, false), // 02 June in Helsinki
            entry("2026-06-02T08:00:00Z", 300, false),
            entry("2026-06-08T08:00:00Z", 100, false), // the next week
        ];
        let helsinki = chrono_tz::Europe::Helsinki;
        let days = summarize_earnings(eur(), &entries, helsinki, Grouping::Day).expect("sums");
        assert_eq!(days.len(), 3);
        assert_eq!((days[0].net, days[0].paid), (m(500), m(500)));
        assert_eq!((days[1].deliveries, days[1].pending), (2, m(1_000)));
        let weeks = summarize_earnings(eur(), &entries, helsinki, Grouping::Week).expect("sums");
        assert_eq!(weeks.len(), 2);
        assert_eq!(weeks[0].net, m(1_500));
        assert_eq!(weeks[0].tips, m(150));
        assert_eq!((weeks[0].pending, weeks[0].paid), (m(1_000), m(500)));
    }

    #[test]
    fn keys_name_the_currency() {
        let period = week_of(utc("2026-06-03T12:00:00Z"), chrono_tz::UTC);
        let party = PayoutParty::Business(BusinessId(Uuid::from_u128(2)));
        let key = payout_key_in(party, period, eur());
        assert_eq!(key, format!("{}:EUR", payout_key(party, period)));
        let usd = Currency::parse("USD").expect("known");
        assert_ne!(payout_key_in(party, period, usd), key);
    }

    #[test]
    fn a_period_is_closed_once_over_and_before_the_cutoff() {
        let helsinki = chrono_tz::Europe::Helsinki;
        let day = day_of(utc("2026-06-01T12:00:00Z"), helsinki);
        let date = |raw: &str| raw.parse::<NaiveDate>().expect("date");
        let later = utc("2026-06-10T00:00:00Z");
        assert!(period_closed(day, date("2026-06-02"), helsinki, later));
        assert!(!period_closed(day, date("2026-06-01"), helsinki, later));
        // Not before it has ended, whatever the date asked.
        assert!(!period_closed(
            day,
            date("2026-06-05"),
            helsinki,
            day.end - chrono::Duration::seconds(1)
        ));
        assert_eq!(local_midnight(date("2026-06-02"), helsinki), day.end);
    }

    #[test]
    fn settlement_follows_the_sign_of_the_net() {
        assert_eq!(settlement(m(5)), Settlement::Transfer(m(5)));
        assert_eq!(settlement(m(-5)), Settlement::CarryOver(m(-5)));
        assert_eq!(settlement(m(0)), Settlement::Nothing);
    }

    #[test]
    fn a_refund_returns_its_share_of_the_commission() {
        assert_eq!(
            refund_fee_returned(m(400), m(10_000), m(10_000)),
            Ok(m(400))
        );
        assert_eq!(refund_fee_returned(m(400), m(2_500), m(10_000)), Ok(m(100)));
        assert_eq!(refund_fee_returned(m(3), m(1), m(2)), Ok(m(2)));
        assert_eq!(refund_fee_returned(m(400), m(0), m(10_000)), Ok(m(0)));
        let usd = Money::new(1, Currency::parse("USD").expect("known"));
        assert!(refund_fee_returned(m(1), usd, m(2)).is_err());
    }

    #[test]
    fn deposits_are_positive_and_at_most_what_is_held() {
        assert_eq!(check_deposit(m(500), m(500)), Ok(()));
        assert_eq!(
            check_deposit(m(501), m(500)),
            Err(DepositError::ExceedsHeld { held: m(500) })
        );
        assert_eq!(check_deposit(m(0), m(500)), Err(DepositError::NotPositive));
        let usd = Money::new(1, Currency::parse("USD").expect("known"));
        assert!(matches!(
            check_deposit(usd, m(5)),
            Err(DepositError::Money(_))
        ));
    }

    #[test]
    fn a_carried_over_debt_reduces_the_business_payout() {
        let p = business_payout(
            eur(),
            &[
                BusinessLine::Order {
                    total: m(1_000),
                    platform_fee: m(100),
                    driver_cost: m(300),
                    kept_by_business: m(0),
                },
                BusinessLine::CarriedOver(m(-250)),
                BusinessLine::CashReceived(m(100)),
            ],
        )
        .expect("sums");
        assert_eq!(p.carried_over, m(-250));
        assert_eq!(p.cash_kept, m(100));
        assert_eq!(p.net, m(1_000 - 100 - 300 - 250 - 100));
    }

    proptest! {
        #[test]
        fn driver_net_is_earnings_minus_cash_kept(
            earned in prop::collection::vec(0i64..10_000, 0..20),
            collected in prop::collection::vec(0i64..10_000, 0..20),
            deposited in 0i64..50_000,
        ) {
            let mut lines: Vec<DriverLine> = earned.iter().map(|&e| DriverLine::Earned(m(e))).collect();
            lines.extend(collected.iter().map(|&c| DriverLine::CashCollected(m(c))));
            lines.push(DriverLine::CashDeposited(m(deposited)));
            let p = driver_payout(eur(), &lines).expect("sums");
            let e: i64 = earned.iter().sum();
            let c: i64 = collected.iter().sum();
            prop_assert_eq!(p.net.minor, e - (c - deposited));
            prop_assert_eq!(p.driver_owes(), e - c + deposited < 0);
        }

        #[test]
        fn every_minor_unit_is_accounted_for_with_cash_and_deposits(
            orders in prop::collection::vec((1i64..100_000, 0i64..2_000, 0i64..3_000, 0i64..500, any::<bool>()), 1..12),
            deposit_share in 0u8..=100,
        ) {
            // (total, order commission, driver gross, delivery commission, paid in cash)
            let mut business = Vec::new();
            let mut driver = Vec::new();
            let (mut total, mut fees, mut cash) = (0i64, 0i64, 0i64);
            for &(t, f, g, k, in_cash) in &orders {
                let k = k.min(g);
                business.push(BusinessLine::Order {
                    total: m(t),
                    platform_fee: m(f),
                    driver_cost: m(g),
                    kept_by_business: m(0),
                });
                driver.push(DriverLine::Earned(m(g - k)));
                if in_cash {
                    driver.push(DriverLine::CashCollected(m(t)));
                    cash += t;
                }
                total += t;
                fees += f + k;
            }
            // Part of the cash is handed in at the business's counter.
            let deposited = cash * i64::from(deposit_share) / 100;
            business.push(BusinessLine::CashReceived(m(deposited)));
            driver.push(DriverLine::CashDeposited(m(deposited)));
            let b = business_payout(eur(), &business).expect("sums");
            let d = driver_payout(eur(), &driver).expect("sums");
            // Paid out + kept by the platform + the cash already in hands = what customers paid.
            prop_assert_eq!(b.net.minor + d.net.minor + fees + cash, total);
        }

        #[test]
        fn periods_contain_their_instant(seconds in 0i64..4_000_000_000) {
            let at = DateTime::<Utc>::from_timestamp(seconds, 0).expect("in range");
            for tz in [chrono_tz::Europe::Helsinki, chrono_tz::America::New_York, chrono_tz::Australia::Lord_Howe] {
                for grouping in [Grouping::Day, Grouping::Week] {
                    let p = period_of(at, tz, grouping);
                    prop_assert!(p.contains(at), "{at} {tz} {grouping:?} {p:?}");
                    prop_assert_eq!(period_of(p.start, tz, grouping), p);
                }
            }
        }
    }
}
