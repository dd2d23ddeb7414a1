//! What a driver earns for one delivery, in integer minor units.
//!
//! # How earnings are computed
//!
//! 1. The **delivery fee** is the one the customer paid for the order
//!    ([`crate::pricing::Quote::delivery_fee`]), passed on whole.
//! 2. The **distance fee** pays the trip beyond the included distance, pro rata by the metre:
//!    `per_km × (metres − included_metres) / 1 000`. (The customer's fee counts started
//!    kilometres; the driver is paid for the metres driven, so a trip a metre longer never pays
//!    a whole kilometre more.)
//! 3. The **surge** is a multiplier in basis points (10 000 = ×1.0, at most ×5.0) on the delivery
//!    and distance fees; [`DriverEarnings::surge`] is the amount it adds.
//! 4. The **tip** goes to the driver whole: 100 %, never commissioned.
//! 5. The **platform fee** is the platform's commission on the fees and the surge (never on
//!    the tip), at a rate in basis points.
//! 6. `gross = delivery_fee + distance_fee + surge + tip` and `net = gross − platform_fee`,
//!    exactly.
//!
//! # Rounding rule
//!
//! Three amounts are shares and each is rounded once, half away from zero to the minor unit in
//! `i128` (the platform's one rule, [`Money::share_bps`]): the distance fee, the surge amount
//! and the platform fee. Everything else is exact sums. For example, 1.20 per km over 1 250 m
//! is 1.50; 0.333… rounds to 0.33 and 0.335 to 0.34.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::money::{div_round_half_away, Money, MoneyError};

/// ×1.0 in basis points: no surge.
pub const NO_SURGE_BPS: i64 = 10_000;

/// The largest surge: ×5.0.
pub const MAX_SURGE_BPS: i64 = 50_000;

/// The platform's terms for a driver's delivery (from the platform's settings or the plan).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EarningsRules {
    /// Paid per kilometre beyond [`EarningsRules::included_metres`].
    pub per_km: Money,
    /// Metres the delivery fee already pays for.
    pub included_metres: u32,
    /// The platform's commission on fees and surge, in basis points (0..=10 000).
    pub commission_bps: i64,
}

impl EarningsRules {
    /// The rules while no driver rates are configured: no distance rate and no commission, so
    /// the driver is paid the delivery fee and the tip (what an offer shows as its estimate).
    pub fn pass_through(currency: crate::money::Currency) -> Self {
        EarningsRules {
            per_km: Money::zero(currency),
            included_metres: 0,
            commission_bps: 0,
        }
    }
}

/// One delivered order, as far as the driver's pay goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryPay {
    /// The delivery fee the customer paid.
    pub delivery_fee: Money,
    /// The trip's distance (store to customer), in metres.
    pub distance_metres: u32,
    /// The customer's tip.
    pub tip: Money,
    /// The surge multiplier in basis points (10 000 = ×1.0).
    pub surge_bps: i64,
}

/// What the driver earns for one delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DriverEarnings {
    /// The customer's delivery fee, passed on.
    pub delivery_fee: Money,
    /// Pay for the metres beyond the included distance.
    pub distance_fee: Money,
    /// The tip, whole.
    pub tip: Money,
    /// The surge multiplier in basis points (10 000 = ×1.0).
    pub surge_bps: i64,
    /// The amount the surge adds to the fees.
    pub surge: Money,
    /// The platform's commission on fees and surge.
    pub platform_fee: Money,
    /// `delivery_fee + distance_fee + surge + tip`.
    pub gross: Money,
    /// `gross − platform_fee`: what the driver is owed.
    pub net: Money,
}

/// Why earnings could not be computed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum EarningsError {
    /// A negative fee, tip or rate.
    #[error("{0} must not be negative")]
    Negative(&'static str),
    /// A surge outside ×1.0..=×5.0.
    #[error("the surge must be 10000 to 50000 basis points, not {0}")]
    SurgeOutOfRange(i64),
    /// A commission outside 0..=100 %.
    #[error("the commission must be 0 to 10000 basis points, not {0}")]
    CommissionOutOfRange(i64),
    /// Mixed currencies or an amount too large.
    #[error(transparent)]
    Money(#[from] MoneyError),
}

impl EarningsError {
    /// A stable machine-readable code for the error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Negative(_) => "negative_amount",
            Self::SurgeOutOfRange(_) => "surge_out_of_range",
            Self::CommissionOutOfRange(_) => "commission_out_of_range",
            Self::Money(_) => "invalid_amount",
        }
    }
}

/// Computes a driver's earnings for one delivery (see the module's rules).
///
/// # Errors
/// [`EarningsError::Negative`], [`EarningsError::SurgeOutOfRange`],
/// [`EarningsError::CommissionOutOfRange`], and [`EarningsError::Money`] on mixed currencies or
/// overflow.
pub fn compute(pay: &DeliveryPay, rules: &EarningsRules) -> Result<DriverEarnings, EarningsError> {
    for (name, amount) in [
        ("the delivery fee", pay.delivery_fee),
        ("the tip", pay.tip),
        ("the rate per km", rules.per_km),
    ] {
        if amount.minor < 0 {
            return Err(EarningsError::Negative(name));
        }
    }
    if !(NO_SURGE_BPS..=MAX_SURGE_BPS).contains(&pay.surge_bps) {
        return Err(EarningsError::SurgeOutOfRange(pay.surge_bps));
    }
    if !(0..=10_000).contains(&rules.commission_bps) {
        return Err(EarningsError::CommissionOutOfRange(rules.commission_bps));
    }
    let currency = pay.delivery_fee.currency;
    for other in [pay.tip.currency, rules.per_km.currency] {
        if other != currency {
            return Err(MoneyError::CurrencyMismatch(currency, other).into());
        }
    }
    let extra_metres = i128::from(pay.distance_metres.saturating_sub(rules.included_metres));
    let distance_minor = div_round_half_away(i128::from(rules.per_km.minor) * extra_metres, 1_000);
    let distance_fee = Money::new(
        i64::try_from(distance_minor).map_err(|_| MoneyError::Overflow)?,
        currency,
    );
    let fees = pay.delivery_fee.checked_add(distance_fee)?;
    let surge = fees.share_bps(pay.surge_bps - NO_SURGE_BPS)?;
    let commissioned = fees.checked_add(surge)?;
    let platform_fee = commissioned.share_bps(rules.commission_bps)?;
    let gross = commissioned.checked_add(pay.tip)?;
    let net = gross.checked_sub(platform_fee)?;
    Ok(DriverEarnings {
        delivery_fee: pay.delivery_fee,
        distance_fee,
        tip: pay.tip,
        surge_bps: pay.surge_bps,
        surge,
        platform_fee,
        gross,
        net,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;
    use proptest::prelude::*;

    fn eur(minor: i64) -> Money {
        Money::new(minor, Currency::parse("EUR").expect("known"))
    }

    fn rules(per_km: i64, included: u32, bps: i64) -> EarningsRules {
        EarningsRules {
            per_km: eur(per_km),
            included_metres: included,
            commission_bps: bps,
        }
    }

    fn pay(fee: i64, metres: u32, tip: i64, surge: i64) -> DeliveryPay {
        DeliveryPay {
            delivery_fee: eur(fee),
            distance_metres: metres,
            tip: eur(tip),
            surge_bps: surge,
        }
    }

    #[test]
    fn pass_through_pays_the_fee_and_the_tip() {
        let currency = Currency::parse("EUR").expect("currency");
        let pay = DeliveryPay {
            delivery_fee: Money::new(390, currency),
            distance_metres: 4_200,
            tip: Money::new(200, currency),
            surge_bps: NO_SURGE_BPS,
        };
        let e = compute(&pay, &EarningsRules::pass_through(currency)).expect("computes");
        assert_eq!(e.net, Money::new(590, currency));
        assert_eq!(e.platform_fee, Money::zero(currency));
    }

    #[test]
    fn a_worked_example() {
        // 3.90 fee, 4.25 km with 2 km included at 1.20/km, 2.00 tip, ×1.5 surge, 15 %.
        let e = compute(&pay(390, 4_250, 200, 15_000), &rules(120, 2_000, 1_500)).expect("ok");
        assert_eq!(e.distance_fee, eur(270)); // 2.25 km × 1.20
        assert_eq!(e.surge, eur(330)); // 50 % of 6.60
        assert_eq!(e.platform_fee, eur(149)); // 15 % of 9.90 = 1.485
        assert_eq!(e.gross, eur(390 + 270 + 330 + 200));
        assert_eq!(e.net, eur(1_190 - 149));
    }

    #[test]
    fn rounding_is_half_away_from_zero_once_per_share() {
        // 1.00 per km over 335 m = 0.335 -> 0.34; over 333 m = 0.333 -> 0.33.
        assert_eq!(
            compute(&pay(0, 335, 0, NO_SURGE_BPS), &rules(100, 0, 0))
                .expect("ok")
                .distance_fee,
            eur(34)
        );
        assert_eq!(
            compute(&pay(0, 333, 0, NO_SURGE_BPS), &rules(100, 0, 0))
                .expect("ok")
                .distance_fee,
            eur(33)
        );
        // Within the included distance nothing extra is paid.
        assert_eq!(
            compute(&pay(500, 1_000, 0, NO_SURGE_BPS), &rules(100, 2_000, 0))
                .expect("ok")
                .distance_fee,
            eur(0)
        );
    }

    #[test]
    fn tips_are_never_commissioned() {
        let e = compute(&pay(0, 0, 1_000, NO_SURGE_BPS), &rules(0, 0, 10_000)).expect("ok");
        assert_eq!((e.platform_fee, e.net), (eur(0), eur(1_000)));
    }

    #[test]
    fn bad_inputs_are_refused() {
        let r = rules(100, 0, 1_000);
        assert_eq!(
            compute(&pay(-1, 0, 0, NO_SURGE_BPS), &r),
            Err(EarningsError::Negative("the delivery fee"))
        );
        assert_eq!(
            compute(&pay(0, 0, 0, 9_999), &r),
            Err(EarningsError::SurgeOutOfRange(9_999))
        );
        assert_eq!(
            compute(&pay(0, 0, 0, 50_001), &r),
            Err(EarningsError::SurgeOutOfRange(50_001))
        );
        assert_eq!(
            compute(&pay(0, 0, 0, NO_SURGE_BPS), &rules(100, 0, 10_001)),
            Err(EarningsError::CommissionOutOfRange(10_001))
        );
        let mut mixed = pay(100, 0, 0, NO_SURGE_BPS);
        mixed.tip = Money::new(0, Currency::parse("USD").expect("known"));
        assert!(matches!(
            compute(&mixed, &r),
            Err(EarningsError::Money(MoneyError::CurrencyMismatch(..)))
        ));
        assert!(compute(&pay(i64::MAX, 0, i64::MAX, NO_SURGE_BPS), &r).is_err());
    }

    proptest! {
        #[test]
        fn earnings_add_up_and_are_never_negative(
            fee in 0i64..100_000,
            metres in 0u32..100_000,
            tip in 0i64..100_000,
            surge in NO_SURGE_BPS..=MAX_SURGE_BPS,
            per_km in 0i64..1_000,
            included in 0u32..10_000,
            bps in 0i64..=10_000,
        ) {
            let e = compute(&pay(fee, metres, tip, surge), &rules(per_km, included, bps))
                .expect("valid inputs compute");
            for amount in [e.delivery_fee, e.distance_fee, e.tip, e.surge, e.platform_fee, e.gross, e.net] {
                prop_assert!(amount.minor >= 0, "{e:?}");
            }
            prop_assert_eq!(
                e.gross.minor,
                e.delivery_fee.minor + e.distance_fee.minor + e.surge.minor + e.tip.minor
            );
            prop_assert_eq!(e.net.minor, e.gross.minor - e.platform_fee.minor);
            // The tip is the driver's whole, and the fee never exceeds what it is taken from.
            prop_assert!(e.net.minor >= e.tip.minor);
            prop_assert!(e.platform_fee.minor <= e.gross.minor - e.tip.minor);
            // More surge never pays less.
            if surge < MAX_SURGE_BPS {
                let more = compute(&pay(fee, metres, tip, surge + 1), &rules(per_km, included, bps))
                    .expect("valid");
                prop_assert!(more.gross.minor >= e.gross.minor);
            }
        }
    }
}
