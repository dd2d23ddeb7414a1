//! Drivers' pay rates: the platform's terms per currency (`driver_pay_rates`, migration 0020),
//! which turn a delivery into a driver's pay through `fleetfront_domain::earnings::compute`.
//!
//! Platform admins write them (`api::pay_rates`); drivers, the `dispatcher` (offer estimates)
//! and the `order_worker` (earnings written with `delivered`) read them, each in its own
//! transaction under row level security. A currency without a row pays the delivery fee and
//! the tip whole, with no surge ([`EarningsRules::pass_through`]), so configuring rates is never
//! a precondition for delivering.

use chrono::{DateTime, Utc};
use fleetfront_domain::api::driver::{DriverPayRates, DriverPayRatesView};
use fleetfront_domain::earnings::{EarningsRules, NO_SURGE_BPS};
use fleetfront_domain::money::Currency;
use fleetfront_domain::Money;
use uuid::Uuid;

use crate::db::Tx;
use crate::error::{Error, Result};

/// One currency's terms as stored (the table's checks hold for every row).
#[derive(Clone, Copy, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredRates {
    /// Paid per kilometre beyond the included distance, in minor units.
    pub per_km_minor: i64,
    /// Metres the delivery fee pays for.
    pub included_metres: i32,
    /// The platform's commission, in basis points.
    pub commission_bps: i32,
    /// The surge multiplier, in basis points.
    pub surge_bps: i32,
}

impl StoredRates {
    /// The stored terms from a `LEFT JOIN driver_pay_rates` row's columns: `None` unless all
    /// four are present (the columns are `NOT NULL`, so a row has all of them or none).
    pub fn from_columns(
        per_km_minor: Option<i64>,
        included_metres: Option<i32>,
        commission_bps: Option<i32>,
        surge_bps: Option<i32>,
    ) -> Option<Self> {
        Some(StoredRates {
            per_km_minor: per_km_minor?,
            included_metres: included_metres?,
            commission_bps: commission_bps?,
            surge_bps: surge_bps?,
        })
    }
}

/// The earnings rules and surge (basis points) of `currency` under `stored` rates, or
/// [`EarningsRules::pass_through`] and no surge without them.
///
/// # Errors
/// `unexpected` for a stored value the table's checks should have refused.
pub fn rules_of(currency: Currency, stored: Option<StoredRates>) -> Result<(EarningsRules, i64)> {
    let Some(stored) = stored else {
        return Ok((EarningsRules::pass_through(currency), NO_SURGE_BPS));
    };
    let included_metres = u32::try_from(stored.included_metres).map_err(|_| {
        Error::unexpected(anyhow::anyhow!(
            "driver_pay_rates.included_metres of {currency} is negative"
        ))
    })?;
    Ok((
        EarningsRules {
            per_km: Money::new(stored.per_km_minor, currency),
            included_metres,
            commission_bps: i64::from(stored.commission_bps),
        },
        i64::from(stored.surge_bps),
    ))
}

/// The earnings rules and surge (basis points) in force for `currency`: its configured rates,
/// or [`EarningsRules::pass_through`] and no surge ([`NO_SURGE_BPS`]) when it has none. Runs in
/// the caller's transaction, whose principal must be one that reads the rates (`driver`,
/// `dispatcher`, `order_worker`, `admin`); for any other, row level security hides every row
/// and the answer is the pass-through.
///
/// # Errors
/// Database errors; `unexpected` for a stored value out of the table's ranges.
pub async fn rules_for(tx: &mut Tx, currency: Currency) -> Result<(EarningsRules, i64)> {
    let stored: Option<StoredRates> = sqlx::query_as(
        "SELECT per_km_minor, included_metres, commission_bps, surge_bps \
           FROM driver_pay_rates WHERE currency = $1",
    )
    .bind(currency.code())
    .fetch_optional(&mut **tx)
    .await?;
    rules_of(currency, stored)
}

type ViewRow = (String, i64, i32, i32, i32, DateTime<Utc>);

const VIEW_COLUMNS: &str =
    "currency::text, per_km_minor, included_metres, commission_bps, surge_bps, updated_at";

fn view(row: ViewRow) -> Result<DriverPayRatesView> {
    let (currency, per_km_minor, included_metres, commission_bps, surge_bps, updated_at) = row;
    Ok(DriverPayRatesView {
        currency: Currency::parse(&currency).map_err(Error::unexpected)?,
        per_km_minor,
        included_metres: i64::from(included_metres),
        commission_bps: i64::from(commission_bps),
        surge_bps: i64::from(surge_bps),
        updated_at,
    })
}

/// Every configured currency's rates, by currency code.
///
/// # Errors
/// Database errors.
pub async fn list(tx: &mut Tx) -> Result<Vec<DriverPayRatesView>> {
    let rows: Vec<ViewRow> = sqlx::query_as(&format!(
        "SELECT {VIEW_COLUMNS} FROM driver_pay_rates ORDER BY currency"
    ))
    .fetch_all(&mut **tx)
    .await?;
    rows.into_iter().map(view).collect()
}

/// Sets the rates of their currency (inserting its row or replacing it) as `by` at `now`.
///
/// # Errors
/// Database errors (an admin's transaction may write; others are refused by row level
/// security).
pub async fn put(
    tx: &mut Tx,
    rates: &DriverPayRates,
    by: Uuid,
    now: DateTime<Utc>,
) -> Result<DriverPayRatesView> {
    let rules = &rates.rules;
    let row: ViewRow = sqlx::query_as(&format!(
        "INSERT INTO driver_pay_rates (currency, per_km_minor, included_metres, commission_bps, surge_bps, updated_at, updated_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (currency) DO UPDATE SET per_km_minor = EXCLUDED.per_km_minor, \
             included_metres = EXCLUDED.included_metres, commission_bps = EXCLUDED.commission_bps, \
             surge_bps = EXCLUDED.surge_bps, updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by \
         RETURNING {VIEW_COLUMNS}"
    ))
    .bind(rules.per_km.currency.code())
    .bind(rules.per_km.minor)
    .bind(i32::try_from(rules.included_metres).map_err(Error::unexpected)?)
    .bind(i32::try_from(rules.commission_bps).map_err(Error::unexpected)?)
    .bind(i32::try_from(rates.surge_bps).map_err(Error::unexpected)?)
    .bind(now)
    .bind(by)
    .fetch_one(&mut **tx)
    .await?;
    view(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_row_passes_the_fee_and_tip_through_without_surge() {
        let eur = Currency::parse("EUR").expect("known");
        assert_eq!(
            rules_of(eur, None).expect("pass-through"),
            (EarningsRules::pass_through(eur), NO_SURGE_BPS)
        );
        let stored = StoredRates::from_columns(Some(120), Some(2_000), Some(1_500), Some(15_000));
        let (rules, surge) = rules_of(eur, stored).expect("configured");
        assert_eq!(rules.per_km, Money::new(120, eur));
        assert_eq!(
            (rules.included_metres, rules.commission_bps, surge),
            (2_000, 1_500, 15_000)
        );
        assert_eq!(
            StoredRates::from_columns(Some(1), None, Some(1), Some(1)),
            None
        );
    }
}
