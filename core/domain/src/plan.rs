//! Subscription plans, their limits and features, and the subscription life cycle.
//!
//! A limit is a number of things a business may have (staff seats, products, …); `None` means
//! unlimited. [`check_limit`] is the one reusable check: callers count what exists and ask
//! whether one more fits. Status moves `trial → active → past_due → canceled` (see
//! [`SubscriptionStatus::can_become`]).

use chrono::{DateTime, Duration, Months, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::money::Money;

/// The platform's plan tiers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PlanKey {
    /// Small shops.
    Starter,
    /// Growing shops.
    Growth,
    /// Busy shops with several locations.
    Professional,
    /// Negotiated contracts.
    Enterprise,
}

impl PlanKey {
    /// Every tier.
    pub const ALL: [PlanKey; 4] = [
        PlanKey::Starter,
        PlanKey::Growth,
        PlanKey::Professional,
        PlanKey::Enterprise,
    ];

    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starter => "starter",
            Self::Growth => "growth",
            Self::Professional => "professional",
            Self::Enterprise => "enterprise",
        }
    }

    /// Parses the stored form.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }
}

/// Countable things a plan can limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    /// Team members (memberships) of the business.
    StaffSeats,
    /// Products in the catalog.
    Products,
    /// Custom roles.
    CustomRoles,
    /// Dedicated drivers.
    DedicatedDrivers,
}

impl LimitKind {
    /// Human name used in error messages.
    pub fn noun(self) -> &'static str {
        match self {
            Self::StaffSeats => "staff seats",
            Self::Products => "products",
            Self::CustomRoles => "custom roles",
            Self::DedicatedDrivers => "dedicated drivers",
        }
    }
}

/// A plan's limits; `None` is unlimited.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PlanLimits {
    /// Maximum team members.
    #[serde(default)]
    pub staff_seats: Option<u32>,
    /// Maximum products.
    #[serde(default)]
    pub products: Option<u32>,
    /// Maximum custom roles.
    #[serde(default)]
    pub custom_roles: Option<u32>,
    /// Maximum dedicated drivers.
    #[serde(default)]
    pub dedicated_drivers: Option<u32>,
}

impl PlanLimits {
    /// The limit for `kind`.
    pub fn get(&self, kind: LimitKind) -> Option<u32> {
        match kind {
            LimitKind::StaffSeats => self.staff_seats,
            LimitKind::Products => self.products,
            LimitKind::CustomRoles => self.custom_roles,
            LimitKind::DedicatedDrivers => self.dedicated_drivers,
        }
    }
}

/// A plan's feature switches.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PlanFeatures {
    /// May point a custom domain at the storefront.
    #[serde(default)]
    pub custom_domain: bool,
    /// May use the platform's shared driver pool.
    #[serde(default)]
    pub shared_driver_pool: bool,
    /// Advanced analytics and exports.
    #[serde(default)]
    pub advanced_analytics: bool,
    /// Custom roles beyond the built-in ones.
    #[serde(default)]
    pub custom_roles: bool,
}

/// A plan limit that one more item would exceed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("the plan allows {limit} {noun}; {current} are in use", noun = kind.noun())]
pub struct PlanLimitReached {
    /// What is limited.
    pub kind: LimitKind,
    /// The plan's limit.
    pub limit: u32,
    /// How many exist now.
    pub current: u64,
}

/// Whether one more `kind` fits when `current` exist.
///
/// # Errors
/// [`PlanLimitReached`] when the plan's limit is already reached.
pub fn check_limit(
    limits: &PlanLimits,
    kind: LimitKind,
    current: u64,
) -> Result<(), PlanLimitReached> {
    match limits.get(kind) {
        Some(limit) if current >= u64::from(limit) => Err(PlanLimitReached {
            kind,
            limit,
            current,
        }),
        _ => Ok(()),
    }
}

/// What a business already has is more than a plan allows (when moving to a smaller plan).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("the plan allows {limit} {noun}; the business has {current}", noun = kind.noun())]
pub struct PlanExceeded {
    /// What is limited.
    pub kind: LimitKind,
    /// The plan's limit.
    pub limit: u32,
    /// How many exist now.
    pub current: u64,
}

/// Whether `current` existing items fit within the plan (unlike [`check_limit`], which asks
/// whether one more fits).
///
/// # Errors
/// [`PlanExceeded`] when more exist than the plan allows.
pub fn check_fits(limits: &PlanLimits, kind: LimitKind, current: u64) -> Result<(), PlanExceeded> {
    match limits.get(kind) {
        Some(limit) if current > u64::from(limit) => Err(PlanExceeded {
            kind,
            limit,
            current,
        }),
        _ => Ok(()),
    }
}

/// Monthly or yearly billing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BillingInterval {
    /// Billed every month.
    Monthly,
    /// Billed every year.
    Yearly,
}

impl BillingInterval {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Monthly => "monthly",
            Self::Yearly => "yearly",
        }
    }

    /// Parses the stored form.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "monthly" => Some(Self::Monthly),
            "yearly" => Some(Self::Yearly),
            _ => None,
        }
    }

    /// The end of a period starting at `start`.
    pub fn period_end(self, start: DateTime<Utc>) -> DateTime<Utc> {
        let months = match self {
            Self::Monthly => Months::new(1),
            Self::Yearly => Months::new(12),
        };
        start.checked_add_months(months).expect("dates in range")
    }
}

/// Where a subscription is in its life cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    /// Free trial; no payment yet.
    Trial,
    /// Paid and current.
    Active,
    /// A payment failed; service continues during the grace period.
    PastDue,
    /// Ended. Final.
    Canceled,
}

impl SubscriptionStatus {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trial => "trial",
            Self::Active => "active",
            Self::PastDue => "past_due",
            Self::Canceled => "canceled",
        }
    }

    /// Parses the stored form.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "trial" => Some(Self::Trial),
            "active" => Some(Self::Active),
            "past_due" => Some(Self::PastDue),
            "canceled" => Some(Self::Canceled),
            _ => None,
        }
    }

    /// Whether the life cycle allows moving from `self` to `next`.
    pub fn can_become(self, next: SubscriptionStatus) -> bool {
        use SubscriptionStatus::*;
        matches!(
            (self, next),
            (Trial, Active)
                | (Trial, Canceled)
                | (Active, PastDue)
                | (Active, Canceled)
                | (PastDue, Active)
                | (PastDue, Canceled)
        )
    }
}

/// Length of a new business's free trial.
pub const TRIAL_DAYS: i64 = 14;

/// A new subscription's first period: a trial of [`TRIAL_DAYS`] from `now`.
pub fn trial_period(now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    (now, now + Duration::days(TRIAL_DAYS))
}

/// The most a platform fee may be: all of it (10,000 basis points).
pub const MAX_PLATFORM_FEE_BPS: i64 = 10_000;

/// A platform fee rate outside 0–10,000 basis points.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("a platform fee is between 0 and 10,000 basis points, not {0}")]
pub struct FeeRateOutOfRange(pub i64);

/// The platform's fee on `gross` at the plan's rate of `bps` basis points (100 = 1 %), rounded
/// by the platform's one rule (half away from zero, [`Money::share_bps`]).
///
/// # Errors
/// [`FeeRateOutOfRange`] for a rate outside 0–10,000 basis points.
pub fn platform_fee(gross: Money, bps: i64) -> Result<Money, FeeRateOutOfRange> {
    if !(0..=MAX_PLATFORM_FEE_BPS).contains(&bps) {
        return Err(FeeRateOutOfRange(bps));
    }
    // A share of at most the whole of an i64 amount always fits in an i64.
    gross.share_bps(bps).map_err(|_| FeeRateOutOfRange(bps))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_allow_up_to_the_limit() {
        let limits = PlanLimits {
            staff_seats: Some(3),
            ..PlanLimits::default()
        };
        assert!(check_limit(&limits, LimitKind::StaffSeats, 2).is_ok());
        let err = check_limit(&limits, LimitKind::StaffSeats, 3).expect_err("full");
        assert_eq!(
            err.to_string(),
            "the plan allows 3 staff seats; 3 are in use"
        );
        assert!(
            check_limit(&limits, LimitKind::Products, 1_000_000).is_ok(),
            "None is unlimited"
        );
    }

    #[test]
    fn existing_items_fit_up_to_the_limit() {
        let limits = PlanLimits {
            products: Some(10),
            ..PlanLimits::default()
        };
        assert!(check_fits(&limits, LimitKind::Products, 10).is_ok());
        let err = check_fits(&limits, LimitKind::Products, 11).expect_err("over");
        assert_eq!(
            err.to_string(),
            "the plan allows 10 products; the business has 11"
        );
        assert!(
            check_fits(&limits, LimitKind::StaffSeats, 1_000).is_ok(),
            "None is unlimited"
        );
    }

    #[test]
    fn status_life_cycle() {
        use SubscriptionStatus::*;
        assert!(Trial.can_become(Active));
        assert!(Active.can_become(PastDue));
        assert!(PastDue.can_become(Active));
        assert!(!Canceled.can_become(Active));
        assert!(!Active.can_become(Trial));
        assert!(!PastDue.can_become(Trial));
    }

    #[test]
    fn periods() {
        let start = "2026-01-31T12:00:00Z"
            .parse::<DateTime<Utc>>()
            .expect("valid");
        assert_eq!(
            BillingInterval::Monthly.period_end(start).to_rfc3339(),
            "2026-02-28T12:00:00+00:00"
        );
        assert_eq!(
            BillingInterval::Yearly.period_end(start).to_rfc3339(),
            "2027-01-31T12:00:00+00:00"
        );
        assert_eq!(
            trial_period(start).1.to_rfc3339(),
            "2026-02-14T12:00:00+00:00"
        );
    }

    #[test]
    fn platform_fees_follow_the_plan_rate_and_the_rounding_rule() {
        let eur = crate::money::Currency::parse("EUR").expect("known");
        let fee = |minor, bps| platform_fee(Money::new(minor, eur), bps).map(|m| m.minor);
        assert_eq!(fee(10_000, 500), Ok(500));
        assert_eq!(fee(1_500, 400), Ok(60));
        assert_eq!(fee(1_250, 300), Ok(38)); // 37.5 rounds half away from zero
        assert_eq!(fee(1_230, 200), Ok(25)); // 24.6
        assert_eq!(fee(0, 500), Ok(0));
        assert_eq!(fee(999, 0), Ok(0));
        assert_eq!(fee(999, 10_000), Ok(999));
        assert_eq!(fee(100, -1), Err(FeeRateOutOfRange(-1)));
        assert_eq!(fee(100, 10_001), Err(FeeRateOutOfRange(10_001)));
        assert_eq!(
            platform_fee(Money::new(100, eur), 500).map(|m| m.currency),
            Ok(eur)
        );
    }

    proptest::proptest! {
        #[test]
        fn a_platform_fee_never_exceeds_the_gross(minor in 0i64..1_000_000_000_000, bps in 0i64..=10_000) {
            let eur = crate::money::Currency::parse("EUR").expect("known");
            let fee = platform_fee(Money::new(minor, eur), bps).expect("in range");
            proptest::prop_assert!(fee.minor >= 0 && fee.minor <= minor);
        }
    }
}
