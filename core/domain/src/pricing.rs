//! The one price computation: cart lines with variant adjustments, discount, tax, delivery fee
//! by distance and tip, turned into a [`Quote`].
//!
//! The server, the POS and every offline client call [`quote`], so a total shown offline is the
//! total charged. At checkout the server recomputes the quote from current prices and compares
//! it with the one the customer saw ([`check_prices`]): a changed price is reported back to the
//! customer, never charged silently.
//!
//! # How a quote is computed
//!
//! 1. Each line's unit price is its product price plus its variant's adjustment (which may be
//!    negative; the result may not). The line total is unit price × quantity, exact.
//! 2. The subtotal is the sum of the line totals, exact. The store's minimum order and the
//!    discount's minimum both apply to this subtotal, before any discount.
//! 3. The discount is a percentage of the subtotal or a fixed amount, never more than the
//!    subtotal.
//! 4. The delivery fee is the base fee plus the fee per started kilometre beyond the included
//!    distance, exact. Pickup has no fee.
//! 5. Tax is taken once, on the taxable amount: the subtotal after discount, plus the delivery
//!    fee when the store's [`TaxBase`] says so. A tip is never taxed. With [`TaxMode::Exclusive`]
//!    the tax is added to the total; with [`TaxMode::Inclusive`] the prices already contain it
//!    and the tax is only reported.
//! 6. The tip may be zero and at most the subtotal (100 % of the goods, before discount).
//! 7. `total = subtotal − discount + exclusive tax + delivery fee + tip`, exactly.
//!
//! # Rounding rule
//!
//! Everything is integer minor units and exact, except two percentages: a percentage discount
//! and tax. Each is taken exactly once per quote, on the order-level amount (never per line and
//! then summed), and rounded half away from zero to the minor unit, computed in `i128`:
//!
//! - percentage discount = `subtotal × rate / 10 000` ([`Money::share_bps`]);
//! - exclusive tax = `taxable × rate / 10 000` ([`Money::share_bps`]);
//! - inclusive tax = `taxable × rate / (10 000 + rate)`, the tax contained in a gross amount.
//!
//! For example, 10 % of 9.95 is 0.995 and becomes 1.00; 24 % tax contained in 19.50 is
//! 3.774… and becomes 3.77; three 0.01 lines at 50 % exclusive tax pay 0.02 (0.015 rounded
//! once), not 0.03 (0.005 rounded up three times).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

use crate::money::{div_round_half_away, Currency, Money, MoneyError};

/// The largest quantity one cart line may hold.
pub const MAX_QUANTITY: u16 = 999;

/// Ten thousand basis points: 100 %.
pub const FULL_BPS: u16 = 10_000;

/// How many of one item a cart line holds: 1 to [`MAX_QUANTITY`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = u16, example = 2))]
#[serde(try_from = "i64", into = "u16")]
pub struct Quantity(u16);

impl Quantity {
    /// Parses a quantity.
    ///
    /// # Errors
    /// [`PricingError::InvalidQuantity`] when outside 1..=999.
    pub fn new(quantity: i64) -> Result<Self, PricingError> {
        u16::try_from(quantity)
            .ok()
            .filter(|q| (1..=MAX_QUANTITY).contains(q))
            .map(Self)
            .ok_or(PricingError::InvalidQuantity { quantity })
    }

    /// The quantity as a number.
    pub fn get(self) -> u16 {
        self.0
    }
}

impl TryFrom<i64> for Quantity {
    type Error = PricingError;
    fn try_from(value: i64) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<Quantity> for u16 {
    fn from(value: Quantity) -> Self {
        value.0
    }
}

/// A rate in basis points, 0 to 10 000 (0 % to 100 %); 1 basis point is 0.01 %.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = u16, example = 2400))]
#[serde(try_from = "i64", into = "u16")]
pub struct BasisPoints(u16);

impl BasisPoints {
    /// 0 %.
    pub const ZERO: BasisPoints = BasisPoints(0);

    /// Parses a rate.
    ///
    /// # Errors
    /// [`PricingError::InvalidBasisPoints`] when outside 0..=10 000.
    pub fn new(bps: i64) -> Result<Self, PricingError> {
        u16::try_from(bps)
            .ok()
            .filter(|b| *b <= FULL_BPS)
            .map(Self)
            .ok_or(PricingError::InvalidBasisPoints { value: bps })
    }

    /// The rate in basis points.
    pub fn get(self) -> u16 {
        self.0
    }
}

impl TryFrom<i64> for BasisPoints {
    type Error = PricingError;
    fn try_from(value: i64) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<BasisPoints> for u16 {
    fn from(value: BasisPoints) -> Self {
        value.0
    }
}

/// One line of a cart as the customer built it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CartLine {
    /// The product.
    pub product_id: Uuid,
    /// The product's name when the line was priced, kept so the quote reads the same after a
    /// rename.
    pub name: String,
    /// The product's price for one item, before the variant adjustment.
    pub unit_price: Money,
    /// The chosen variant, if the product has variants.
    #[serde(default)]
    pub variant: Option<VariantChoice>,
    /// How many.
    pub quantity: Quantity,
}

/// A product variant chosen on a cart line, and how it changes the unit price.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VariantChoice {
    /// The variant.
    pub variant_id: Uuid,
    /// Added to the product's unit price; may be negative as long as the adjusted unit price is
    /// not.
    pub price_adjustment: Money,
}

/// Whether the listed prices contain the tax or the tax comes on top.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TaxMode {
    /// Prices include tax (usual for consumer prices in the EU); the tax is only reported.
    Inclusive,
    /// Tax is added on top of the prices (usual in the US).
    Exclusive,
}

/// What the tax rate applies to. A tip is never taxed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TaxBase {
    /// The goods after discount.
    #[default]
    Goods,
    /// The goods after discount and the delivery fee (where delivery follows the goods' rate).
    GoodsAndDelivery,
}

/// A store's tax rule: one rate for the whole order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TaxRule {
    /// The rate, e.g. 2400 for 24 %.
    pub rate: BasisPoints,
    /// Whether prices include the tax.
    pub mode: TaxMode,
    /// What the rate applies to.
    #[serde(default)]
    pub base: TaxBase,
}

/// How the customer receives the order, as far as the price is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fulfilment {
    /// The customer collects the order at the store.
    Pickup,
    /// The store's fleet delivers the order.
    Delivery {
        /// Distance from the store to the drop-off in whole metres (see
        /// [`crate::distance::metres_between`]).
        distance_m: u32,
    },
}

/// How a store charges for delivery: a base fee, plus a fee for every started kilometre beyond
/// the included distance, up to a maximum distance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DeliveryFeeRule {
    /// Charged for every delivery.
    pub base_fee: Money,
    /// Charged for each started kilometre beyond `included_m`.
    pub fee_per_km: Money,
    /// Metres covered by the base fee.
    pub included_m: u32,
    /// The farthest the store delivers, in metres.
    pub max_distance_m: u32,
}

impl DeliveryFeeRule {
    /// The fee for a delivery `distance_m` metres away: `base_fee + fee_per_km × ⌈(distance_m −
    /// included_m) / 1000⌉`, with nothing extra within the included distance. A distance equal
    /// to the maximum is still delivered.
    ///
    /// # Errors
    /// [`PricingError::BeyondDeliveryDistance`] past the maximum distance;
    /// [`PricingError::NegativeAmount`] when a fee is negative;
    /// [`PricingError::MixedCurrencies`] when the two fees differ in currency;
    /// [`PricingError::Overflow`].
    pub fn fee(&self, distance_m: u32) -> Result<Money, PricingError> {
        let base = non_negative(self.base_fee, "delivery base fee")?;
        let per_km = non_negative(self.fee_per_km, "delivery fee per km")?;
        if distance_m > self.max_distance_m {
            return Err(PricingError::BeyondDeliveryDistance {
                distance_m,
                max_distance_m: self.max_distance_m,
            });
        }
        let started_km = distance_m.saturating_sub(self.included_m).div_ceil(1_000);
        Ok(base.checked_add(per_km.checked_mul(i64::from(started_km))?)?)
    }
}

/// The store's side of pricing: currency, tax, delivery and minimum order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PricingRules {
    /// The store's currency; every amount in the cart and the rules must be in it.
    pub currency: Currency,
    /// The tax rule.
    pub tax: TaxRule,
    /// How delivery is charged; `None` when the store does not deliver.
    pub delivery: Option<DeliveryFeeRule>,
    /// The smallest subtotal (before discount) the store accepts; zero for none.
    pub minimum_order: Money,
}

/// The customer's side of pricing: what they ordered, how they receive it, and the tip.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Cart {
    /// The lines, in the customer's order.
    pub lines: Vec<CartLine>,
    /// Pickup or delivery.
    pub fulfilment: Fulfilment,
    /// The tip: zero or more, at most the subtotal.
    pub tip: Money,
}

/// How much a discount takes off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DiscountValue {
    /// A share of the subtotal, e.g. 1000 for 10 %.
    Percent {
        /// The share in basis points.
        rate: BasisPoints,
    },
    /// A fixed amount, capped at the subtotal.
    Fixed {
        /// The amount.
        amount: Money,
    },
}

/// A discount code as the store defined it, with its usage so far.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Discount {
    /// The code the customer types.
    pub code: String,
    /// What it takes off.
    pub value: DiscountValue,
    /// First instant the code is valid; `None` for no start.
    #[serde(default)]
    pub valid_from: Option<DateTime<Utc>>,
    /// First instant the code is no longer valid (the window is `valid_from ≤ now <
    /// valid_until`); `None` for no end.
    #[serde(default)]
    pub valid_until: Option<DateTime<Utc>>,
    /// The smallest subtotal (before discount) the code applies to; zero for none.
    pub minimum_subtotal: Money,
    /// How many orders may use the code in total; `None` for no limit.
    #[serde(default)]
    pub usage_limit: Option<u32>,
    /// How many orders have used it so far.
    #[serde(default)]
    pub times_used: u32,
}

impl Discount {
    /// The amount this discount takes off `subtotal` at `now`: a percentage rounded by the
    /// module's rounding rule, or the fixed amount; never more than `subtotal`.
    ///
    /// # Errors
    /// [`PricingError::DiscountNotYetValid`], [`PricingError::DiscountExpired`],
    /// [`PricingError::DiscountExhausted`], [`PricingError::DiscountBelowMinimum`] (checked in
    /// that order); [`PricingError::MixedCurrencies`] or [`PricingError::NegativeAmount`] when
    /// the discount's own amounts are not in `subtotal`'s currency or are negative;
    /// [`PricingError::Overflow`].
    pub fn amount(&self, subtotal: Money, now: DateTime<Utc>) -> Result<Money, PricingError> {
        if let Some(valid_from) = self.valid_from {
            if now < valid_from {
                return Err(PricingError::DiscountNotYetValid { valid_from });
            }
        }
        if let Some(valid_until) = self.valid_until {
            if now >= valid_until {
                return Err(PricingError::DiscountExpired { valid_until });
            }
        }
        if let Some(usage_limit) = self.usage_limit {
            if self.times_used >= usage_limit {
                return Err(PricingError::DiscountExhausted { usage_limit });
            }
        }
        let currency = subtotal.currency;
        let minimum = non_negative(
            in_currency(self.minimum_subtotal, currency)?,
            "discount minimum subtotal",
        )?;
        if subtotal.minor < minimum.minor {
            return Err(PricingError::DiscountBelowMinimum { minimum, subtotal });
        }
        let amount = match self.value {
            DiscountValue::Percent { rate } => subtotal.share_bps(i64::from(rate.get()))?,
            DiscountValue::Fixed { amount } => {
                non_negative(in_currency(amount, currency)?, "discount amount")?
            }
        };
        Ok(Money::new(amount.minor.min(subtotal.minor), currency))
    }
}

/// One priced line of a [`Quote`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QuoteLine {
    /// The product.
    pub product_id: Uuid,
    /// The chosen variant, if any.
    pub variant_id: Option<Uuid>,
    /// The product's name when priced.
    pub name: String,
    /// The price of one item, variant adjustment included.
    pub unit_price: Money,
    /// How many.
    pub quantity: Quantity,
    /// `unit_price × quantity`.
    pub line_total: Money,
}

/// A priced cart. Every amount is in one currency and none is negative;
/// `total = subtotal − discount + exclusive tax + delivery_fee + tip` holds exactly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Quote {
    /// The priced lines, in cart order.
    pub lines: Vec<QuoteLine>,
    /// Sum of the line totals.
    pub subtotal: Money,
    /// Taken off the subtotal; zero without a discount.
    pub discount: Money,
    /// The discount code applied, if any.
    pub discount_code: Option<String>,
    /// The tax: added to the total when `tax_mode` is exclusive, contained in the prices when
    /// inclusive.
    pub tax: Money,
    /// The tax rate applied.
    pub tax_rate: BasisPoints,
    /// Whether `tax` is contained in the prices or added on top.
    pub tax_mode: TaxMode,
    /// The delivery fee; zero for pickup.
    pub delivery_fee: Money,
    /// The delivery distance the fee was computed for; `None` for pickup.
    pub delivery_distance_m: Option<u32>,
    /// The tip.
    pub tip: Money,
    /// What the customer pays.
    pub total: Money,
}

impl Quote {
    /// The quote's currency.
    pub fn currency(&self) -> Currency {
        self.total.currency
    }

    /// The tax added on top of the prices: `tax` when exclusive, zero when inclusive.
    pub fn exclusive_tax(&self) -> Money {
        match self.tax_mode {
            TaxMode::Exclusive => self.tax,
            TaxMode::Inclusive => Money::zero(self.tax.currency),
        }
    }
}

/// Why a cart could not be priced. Messages are safe to show to the customer.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PricingError {
    /// The cart has no lines.
    #[error("the cart is empty")]
    EmptyCart,
    /// An amount is not in the store's currency.
    #[error("amounts must all be in {expected}, found {found}")]
    MixedCurrencies {
        /// The store's currency.
        expected: Currency,
        /// The offending currency.
        found: Currency,
    },
    /// An amount does not fit in 64 bits.
    #[error("the amount is too large")]
    Overflow,
    /// A quantity outside 1..=999.
    #[error("quantity must be 1 to 999, not {quantity}")]
    InvalidQuantity {
        /// The quantity given.
        quantity: i64,
    },
    /// A rate outside 0..=10 000 basis points.
    #[error("a rate must be 0 to 10000 basis points, not {value}")]
    InvalidBasisPoints {
        /// The rate given.
        value: i64,
    },
    /// A line's unit price, or its price after the variant adjustment, is negative.
    #[error("line {line} has a negative unit price ({unit_price})")]
    NegativeUnitPrice {
        /// Zero-based index of the line in the cart.
        line: usize,
        /// The offending unit price.
        unit_price: Money,
    },
    /// An amount that must be zero or more is negative.
    #[error("the {field} must not be negative")]
    NegativeAmount {
        /// Which amount, in words.
        field: &'static str,
    },
    /// The subtotal is below the store's minimum order.
    #[error("the minimum order is {minimum}; the subtotal is {subtotal}")]
    BelowMinimumOrder {
        /// The store's minimum.
        minimum: Money,
        /// The cart's subtotal.
        subtotal: Money,
    },
    /// The discount code is not valid yet.
    #[error("this discount code is valid from {valid_from}")]
    DiscountNotYetValid {
        /// When it becomes valid.
        valid_from: DateTime<Utc>,
    },
    /// The discount code has expired.
    #[error("this discount code expired at {valid_until}")]
    DiscountExpired {
        /// When it stopped being valid.
        valid_until: DateTime<Utc>,
    },
    /// The discount code has been used as often as allowed.
    #[error("this discount code has been used up")]
    DiscountExhausted {
        /// How many uses it allowed.
        usage_limit: u32,
    },
    /// The subtotal is below the discount's minimum.
    #[error(
        "this discount code needs a subtotal of at least {minimum}; the subtotal is {subtotal}"
    )]
    DiscountBelowMinimum {
        /// The discount's minimum.
        minimum: Money,
        /// The cart's subtotal.
        subtotal: Money,
    },
    /// Delivery was asked of a store that does not deliver.
    #[error("this store does not deliver")]
    DeliveryNotOffered,
    /// The drop-off is farther than the store delivers.
    #[error("the address is {distance_m} m away; this store delivers up to {max_distance_m} m")]
    BeyondDeliveryDistance {
        /// The delivery distance.
        distance_m: u32,
        /// The store's maximum.
        max_distance_m: u32,
    },
    /// The tip is more than the subtotal.
    #[error("the tip may be at most {max}, not {tip}")]
    TipTooLarge {
        /// The tip given.
        tip: Money,
        /// The largest tip allowed (the subtotal).
        max: Money,
    },
}

impl PricingError {
    /// A stable machine-readable code for the error, for clients to branch on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::EmptyCart => "empty_cart",
            Self::MixedCurrencies { .. } => "mixed_currencies",
            Self::Overflow => "amount_overflow",
            Self::InvalidQuantity { .. } => "invalid_quantity",
            Self::InvalidBasisPoints { .. } => "invalid_basis_points",
            Self::NegativeUnitPrice { .. } => "negative_unit_price",
            Self::NegativeAmount { .. } => "negative_amount",
            Self::BelowMinimumOrder { .. } => "below_minimum_order",
            Self::DiscountNotYetValid { .. } => "discount_not_yet_valid",
            Self::DiscountExpired { .. } => "discount_expired",
            Self::DiscountExhausted { .. } => "discount_exhausted",
            Self::DiscountBelowMinimum { .. } => "discount_below_minimum",
            Self::DeliveryNotOffered => "delivery_not_offered",
            Self::BeyondDeliveryDistance { .. } => "beyond_delivery_distance",
            Self::TipTooLarge { .. } => "tip_too_large",
        }
    }
}

impl From<MoneyError> for PricingError {
    fn from(error: MoneyError) -> Self {
        match error {
            MoneyError::CurrencyMismatch(expected, found) => {
                Self::MixedCurrencies { expected, found }
            }
            MoneyError::Overflow => Self::Overflow,
        }
    }
}

/// Prices `cart` under the store's `rules`, with an optional `discount` evaluated at `now`.
///
/// See the module documentation for the computation and its one rounding rule.
///
/// # Errors
/// The first rule broken, checked in this order: [`PricingError::EmptyCart`]; per line
/// [`PricingError::MixedCurrencies`], [`PricingError::NegativeUnitPrice`],
/// [`PricingError::Overflow`]; [`PricingError::BelowMinimumOrder`]; the discount's errors (see
/// [`Discount::amount`]); [`PricingError::DeliveryNotOffered`] and the delivery fee's errors
/// (see [`DeliveryFeeRule::fee`]); for the tip [`PricingError::MixedCurrencies`],
/// [`PricingError::NegativeAmount`], [`PricingError::TipTooLarge`]; and
/// [`PricingError::Overflow`] anywhere a sum does not fit.
pub fn quote(
    cart: &Cart,
    rules: &PricingRules,
    discount: Option<&Discount>,
    now: DateTime<Utc>,
) -> Result<Quote, PricingError> {
    let currency = rules.currency;
    if cart.lines.is_empty() {
        return Err(PricingError::EmptyCart);
    }

    let mut lines = Vec::with_capacity(cart.lines.len());
    let mut subtotal = Money::zero(currency);
    for (index, line) in cart.lines.iter().enumerate() {
        let base = in_currency(line.unit_price, currency)?;
        let unit_price = match &line.variant {
            Some(variant) => base.checked_add(in_currency(variant.price_adjustment, currency)?)?,
            None => base,
        };
        for price in [base, unit_price] {
            if price.minor < 0 {
                return Err(PricingError::NegativeUnitPrice {
                    line: index,
                    unit_price: price,
                });
            }
        }
        let line_total = unit_price.checked_mul(i64::from(line.quantity.get()))?;
        subtotal = subtotal.checked_add(line_total)?;
        lines.push(QuoteLine {
            product_id: line.product_id,
            variant_id: line.variant.as_ref().map(|v| v.variant_id),
            name: line.name.clone(),
            unit_price,
            quantity: line.quantity,
            line_total,
        });
    }

    let minimum = non_negative(in_currency(rules.minimum_order, currency)?, "minimum order")?;
    if subtotal.minor < minimum.minor {
        return Err(PricingError::BelowMinimumOrder { minimum, subtotal });
    }

    let discount_amount = match discount {
        Some(discount) => discount.amount(subtotal, now)?,
        None => Money::zero(currency),
    };

    let (delivery_fee, delivery_distance_m) = match cart.fulfilment {
        Fulfilment::Pickup => (Money::zero(currency), None),
        Fulfilment::Delivery { distance_m } => {
            let rule = rules
                .delivery
                .as_ref()
                .ok_or(PricingError::DeliveryNotOffered)?;
            (
                in_currency(rule.fee(distance_m)?, currency)?,
                Some(distance_m),
            )
        }
    };

    let tip = non_negative(in_currency(cart.tip, currency)?, "tip")?;
    if tip.minor > subtotal.minor {
        return Err(PricingError::TipTooLarge { tip, max: subtotal });
    }

    let goods = subtotal.checked_sub(discount_amount)?;
    let taxable = match rules.tax.base {
        TaxBase::Goods => goods,
        TaxBase::GoodsAndDelivery => goods.checked_add(delivery_fee)?,
    };
    let rate = rules.tax.rate;
    let tax = match rules.tax.mode {
        TaxMode::Exclusive => taxable.share_bps(i64::from(rate.get()))?,
        TaxMode::Inclusive => contained_tax(taxable, rate)?,
    };

    let mut total = goods.checked_add(delivery_fee)?.checked_add(tip)?;
    if rules.tax.mode == TaxMode::Exclusive {
        total = total.checked_add(tax)?;
    }

    Ok(Quote {
        lines,
        subtotal,
        discount: discount_amount,
        discount_code: discount.map(|d| d.code.clone()),
        tax,
        tax_rate: rate,
        tax_mode: rules.tax.mode,
        delivery_fee,
        delivery_distance_m,
        tip,
        total,
    })
}

/// The tax contained in a gross amount: `gross × rate / (10 000 + rate)`, rounded half away
/// from zero in `i128` (the module's rounding rule).
fn contained_tax(gross: Money, rate: BasisPoints) -> Result<Money, PricingError> {
    let rate = i128::from(rate.get());
    let numerator = i128::from(gross.minor) * rate;
    let denominator = i128::from(FULL_BPS) + rate;
    let minor = div_round_half_away(numerator, denominator);
    let minor = i64::try_from(minor).map_err(|_| PricingError::Overflow)?;
    Ok(Money::new(minor, gross.currency))
}

fn in_currency(amount: Money, currency: Currency) -> Result<Money, PricingError> {
    if amount.currency == currency {
        Ok(amount)
    } else {
        Err(PricingError::MixedCurrencies {
            expected: currency,
            found: amount.currency,
        })
    }
}

fn non_negative(amount: Money, field: &'static str) -> Result<Money, PricingError> {
    if amount.minor < 0 {
        Err(PricingError::NegativeAmount { field })
    } else {
        Ok(amount)
    }
}

/// What the checkout price check found: the lines whose price changed since the customer's
/// quote, and both totals.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PriceCheck {
    /// Lines whose unit price changed, or that appear in only one of the two quotes.
    pub changed_lines: Vec<LineChange>,
    /// The total the customer saw.
    pub seen_total: Money,
    /// The total the current prices give.
    pub current_total: Money,
}

impl PriceCheck {
    /// Whether the customer may be charged without confirming again: no line changed and the
    /// total is the same (a changed fee, tax or discount shows in the total).
    pub fn is_unchanged(&self) -> bool {
        self.changed_lines.is_empty() && self.seen_total == self.current_total
    }
}

/// One line whose price differs between the quote the customer saw and the current one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LineChange {
    /// The product.
    pub product_id: Uuid,
    /// The variant, if any.
    pub variant_id: Option<Uuid>,
    /// The line's name (from the current quote when it has the line).
    pub name: String,
    /// What changed.
    pub change: PriceChange,
}

/// How a line's price changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PriceChange {
    /// The unit price differs.
    Repriced {
        /// The unit price the customer saw.
        seen: Money,
        /// The unit price now.
        current: Money,
    },
    /// The customer saw this line; the current quote does not have it.
    Removed {
        /// The unit price the customer saw.
        seen: Money,
    },
    /// The current quote has a line the customer did not see.
    Added {
        /// The unit price now.
        current: Money,
    },
}

impl fmt::Display for PriceChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Repriced { seen, current } => write!(f, "was {seen}, now {current}"),
            Self::Removed { seen } => write!(f, "no longer available (was {seen})"),
            Self::Added { current } => write!(f, "new line at {current}"),
        }
    }
}

/// Compares the quote the customer saw with the quote recomputed from current prices, so the
/// server reports a price change instead of charging it silently.
///
/// Lines are matched by product and variant; when a cart holds the same product and variant
/// on several lines, they are matched in cart order. Only unit prices are compared: a different
/// fee, tax or discount shows in the totals.
pub fn check_prices(seen: &Quote, current: &Quote) -> PriceCheck {
    let key = |line: &QuoteLine| (line.product_id, line.variant_id);
    let mut unmatched: Vec<Option<&QuoteLine>> = current.lines.iter().map(Some).collect();
    let mut changed_lines = Vec::new();
    for seen_line in &seen.lines {
        let partner = unmatched
            .iter_mut()
            .find(|slot| slot.is_some_and(|line| key(line) == key(seen_line)))
            .and_then(Option::take);
        match partner {
            Some(now) if now.unit_price == seen_line.unit_price => {}
            Some(now) => changed_lines.push(LineChange {
                product_id: now.product_id,
                variant_id: now.variant_id,
                name: now.name.clone(),
                change: PriceChange::Repriced {
                    seen: seen_line.unit_price,
                    current: now.unit_price,
                },
            }),
            None => changed_lines.push(LineChange {
                product_id: seen_line.product_id,
                variant_id: seen_line.variant_id,
                name: seen_line.name.clone(),
                change: PriceChange::Removed {
                    seen: seen_line.unit_price,
                },
            }),
        }
    }
    for added in unmatched.into_iter().flatten() {
        changed_lines.push(LineChange {
            product_id: added.product_id,
            variant_id: added.variant_id,
            name: added.name.clone(),
            change: PriceChange::Added {
                current: added.unit_price,
            },
        });
    }
    PriceCheck {
        changed_lines,
        seen_total: seen.total,
        current_total: current.total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn eur() -> Currency {
        Currency::parse("EUR").expect("EUR is known")
    }

    fn cents(minor: i64) -> Money {
        Money::new(minor, eur())
    }

    fn usd(minor: i64) -> Money {
        Money::new(minor, Currency::parse("USD").expect("USD is known"))
    }

    fn instant(raw: &str) -> DateTime<Utc> {
        raw.parse().expect("valid instant")
    }

    fn now() -> DateTime<Utc> {
        instant("2026-06-01T12:00:00Z")
    }

    fn product(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn line(n: u128, unit: i64, quantity: i64) -> CartLine {
        CartLine {
            product_id: product(n),
            name: format!("product {n}"),
            unit_price: cents(unit),
            variant: None,
            quantity: Quantity::new(quantity).expect("valid quantity"),
        }
    }

    fn with_variant(mut line: CartLine, variant: u128, adjustment: i64) -> CartLine {
        line.variant = Some(VariantChoice {
            variant_id: Uuid::from_u128(variant),
            price_adjustment: cents(adjustment),
        });
        line
    }

    fn rate(bps: i64) -> BasisPoints {
        BasisPoints::new(bps).expect("valid rate")
    }

    fn rules(tax_bps: i64, mode: TaxMode) -> PricingRules {
        PricingRules {
            currency: eur(),
            tax: TaxRule {
                rate: rate(tax_bps),
                mode,
                base: TaxBase::Goods,
            },
            delivery: Some(DeliveryFeeRule {
                base_fee: cents(290),
                fee_per_km: cents(90),
                included_m: 2_000,
                max_distance_m: 8_000,
            }),
            minimum_order: cents(0),
        }
    }

    fn pickup(lines: Vec<CartLine>) -> Cart {
        Cart {
            lines,
            fulfilment: Fulfilment::Pickup,
            tip: cents(0),
        }
    }

    fn percent_off(bps: i64) -> Discount {
        Discount {
            code: "SUMMER".into(),
            value: DiscountValue::Percent { rate: rate(bps) },
            valid_from: None,
            valid_until: None,
            minimum_subtotal: cents(0),
            usage_limit: None,
            times_used: 0,
        }
    }

    #[track_caller]
    fn assert_adds_up(q: &Quote) {
        let expected = q.subtotal.minor - q.discount.minor
            + q.exclusive_tax().minor
            + q.delivery_fee.minor
            + q.tip.minor;
        assert_eq!(q.total.minor, expected, "{q:#?}");
    }

    #[test]
    fn lines_variants_and_exclusive_tax() {
        // 2 × 4.50 + 1 × (12.00 − 1.50) = 19.50; 10 % on top = 1.95.
        let cart = pickup(vec![
            line(1, 450, 2),
            with_variant(line(2, 1_200, 1), 20, -150),
        ]);
        let q = quote(&cart, &rules(1_000, TaxMode::Exclusive), None, now()).expect("prices");
        assert_eq!(q.lines[0].line_total, cents(900));
        assert_eq!(q.lines[1].unit_price, cents(1_050));
        assert_eq!(q.lines[1].variant_id, Some(Uuid::from_u128(20)));
        assert_eq!(q.subtotal, cents(1_950));
        assert_eq!(q.tax, cents(195));
        assert_eq!(q.total, cents(2_145));
        assert_eq!(q.delivery_distance_m, None);
        assert_adds_up(&q);
    }

    #[test]
    fn inclusive_tax_is_reported_not_added() {
        // 24 % contained in 19.50: 1950 × 2400 / 12400 = 377.42 → 3.77.
        let cart = pickup(vec![line(1, 450, 2), line(2, 1_050, 1)]);
        let q = quote(&cart, &rules(2_400, TaxMode::Inclusive), None, now()).expect("prices");
        assert_eq!(q.tax, cents(377));
        assert_eq!(q.total, cents(1_950));
        assert_eq!(q.exclusive_tax(), cents(0));
        assert_adds_up(&q);
    }

    #[test]
    fn rounding_edges() {
        // (unit price, tax bps, mode, expected tax)
        let cases = [
            // 12.5 % of 0.04 = 0.005 → 0.01 (half away from zero).
            (4, 1_250, TaxMode::Exclusive, 1),
            // 24 % of 8.99 = 2.1576 → 2.16.
            (899, 2_400, TaxMode::Exclusive, 216),
            // 25.5 % of 0.01 = 0.00255 → 0.00; of 0.02 = 0.0051 → 0.01.
            (1, 2_550, TaxMode::Exclusive, 0),
            (2, 2_550, TaxMode::Exclusive, 1),
            // 25.5 % of 10.00 is exact.
            (1_000, 2_550, TaxMode::Exclusive, 255),
            // 14 % contained in 12.50: 1250 × 1400 / 11400 = 153.51 → 1.54.
            (1_250, 1_400, TaxMode::Inclusive, 154),
            // 100 % contained in 0.05: 5 × 10000 / 20000 = 2.5 → 0.03.
            (5, 10_000, TaxMode::Inclusive, 3),
            // 24 % contained in 10.00: 193.548 → 1.94.
            (1_000, 2_400, TaxMode::Inclusive, 194),
            // Zero rate.
            (1_000, 0, TaxMode::Inclusive, 0),
            (1_000, 0, TaxMode::Exclusive, 0),
        ];
        for (unit, bps, mode, expected) in cases {
            let q = quote(
                &pickup(vec![line(1, unit, 1)]),
                &rules(bps, mode),
                None,
                now(),
            )
            .expect("prices");
            assert_eq!(q.tax, cents(expected), "{unit} at {bps} bps {mode:?}");
            assert_adds_up(&q);
        }
    }

    #[test]
    fn tax_is_rounded_once_per_order_not_per_line() {
        // Three 0.01 lines at 50 %: per line 0.005 → 0.01 each (0.03); once: 0.015 → 0.02.
        let cart = pickup(vec![line(1, 1, 1), line(2, 1, 1), line(3, 1, 1)]);
        let q = quote(&cart, &rules(5_000, TaxMode::Exclusive), None, now()).expect("prices");
        assert_eq!(q.tax, cents(2));
        assert_eq!(q.total, cents(5));
    }

    #[test]
    fn tax_is_taken_after_discount() {
        // 20.00 − 10 % = 18.00; 24 % of 18.00 = 4.32.
        let cart = pickup(vec![line(1, 2_000, 1)]);
        let q = quote(
            &cart,
            &rules(2_400, TaxMode::Exclusive),
            Some(&percent_off(1_000)),
            now(),
        )
        .expect("prices");
        assert_eq!(q.discount, cents(200));
        assert_eq!(q.tax, cents(432));
        assert_eq!(q.total, cents(2_232));
        assert_eq!(q.discount_code.as_deref(), Some("SUMMER"));
    }

    #[test]
    fn percentage_discount_rounds_half_away_from_zero() {
        // 10 % of 9.95 = 0.995 → 1.00; 10 % of 9.94 = 0.994 → 0.99.
        for (subtotal, expected) in [(995, 100), (994, 99), (5, 1), (4, 0)] {
            let q = quote(
                &pickup(vec![line(1, subtotal, 1)]),
                &rules(0, TaxMode::Exclusive),
                Some(&percent_off(1_000)),
                now(),
            )
            .expect("prices");
            assert_eq!(q.discount, cents(expected), "{subtotal}");
        }
    }

    #[test]
    fn discount_never_exceeds_subtotal() {
        let fixed = Discount {
            value: DiscountValue::Fixed {
                amount: cents(5_000),
            },
            ..percent_off(0)
        };
        let cart = pickup(vec![line(1, 1_200, 1)]);
        let q = quote(
            &cart,
            &rules(2_400, TaxMode::Exclusive),
            Some(&fixed),
            now(),
        )
        .expect("prices");
        assert_eq!(q.discount, cents(1_200));
        assert_eq!(q.tax, cents(0));
        assert_eq!(q.total, cents(0));
        let q = quote(
            &cart,
            &rules(2_400, TaxMode::Exclusive),
            Some(&percent_off(10_000)),
            now(),
        )
        .expect("prices");
        assert_eq!(q.discount, cents(1_200));
        assert_eq!(q.total, cents(0));
    }

    #[test]
    fn delivery_fee_per_started_km() {
        // Base 2.90 covers 2 km; 0.90 per started km beyond; up to 8 km.
        let cases = [
            (0, Ok(290)),
            (2_000, Ok(290)),
            (2_001, Ok(380)),
            (3_000, Ok(380)),
            (3_001, Ok(470)),
            (8_000, Ok(830)),
            (
                8_001,
                Err(PricingError::BeyondDeliveryDistance {
                    distance_m: 8_001,
                    max_distance_m: 8_000,
                }),
            ),
        ];
        for (distance_m, expected) in cases {
            let cart = Cart {
                fulfilment: Fulfilment::Delivery { distance_m },
                ..pickup(vec![line(1, 1_000, 1)])
            };
            let result = quote(&cart, &rules(1_000, TaxMode::Exclusive), None, now());
            match expected {
                Ok(fee) => {
                    let q = result.expect("prices");
                    assert_eq!(q.delivery_fee, cents(fee), "{distance_m} m");
                    assert_eq!(q.delivery_distance_m, Some(distance_m));
                    // Tax on goods only: 10 % of 10.00.
                    assert_eq!(q.tax, cents(100));
                    assert_eq!(q.total, cents(1_100 + fee));
                }
                Err(error) => assert_eq!(result.expect_err("refused"), error, "{distance_m} m"),
            }
        }
    }

    #[test]
    fn delivery_taxed_when_the_base_says_so() {
        let mut store = rules(2_400, TaxMode::Exclusive);
        store.tax.base = TaxBase::GoodsAndDelivery;
        let cart = Cart {
            fulfilment: Fulfilment::Delivery { distance_m: 2_500 },
            ..pickup(vec![line(1, 1_000, 1)])
        };
        // 24 % of (10.00 + 3.80) = 3.312 → 3.31.
        let q = quote(&cart, &store, None, now()).expect("prices");
        assert_eq!(q.delivery_fee, cents(380));
        assert_eq!(q.tax, cents(331));
        assert_eq!(q.total, cents(1_000 + 380 + 331));
        store.tax.mode = TaxMode::Inclusive;
        // 24 % contained in 13.80: 1380 × 2400 / 12400 = 267.10 → 2.67.
        let q = quote(&cart, &store, None, now()).expect("prices");
        assert_eq!(q.tax, cents(267));
        assert_eq!(q.total, cents(1_380));
    }

    #[test]
    fn minimum_order_applies_before_discount() {
        let mut store = rules(0, TaxMode::Exclusive);
        store.minimum_order = cents(1_000);
        assert_eq!(
            quote(&pickup(vec![line(1, 999, 1)]), &store, None, now()).expect_err("below"),
            PricingError::BelowMinimumOrder {
                minimum: cents(1_000),
                subtotal: cents(999)
            }
        );
        let q = quote(
            &pickup(vec![line(1, 1_000, 1)]),
            &store,
            Some(&percent_off(5_000)),
            now(),
        )
        .expect("exactly the minimum, discount notwithstanding");
        assert_eq!(q.total, cents(500));
    }

    #[test]
    fn discount_rules() {
        let cart = pickup(vec![line(1, 2_000, 1)]);
        let store = rules(0, TaxMode::Exclusive);
        let from = instant("2026-06-01T00:00:00Z");
        let until = instant("2026-07-01T00:00:00Z");
        let windowed = Discount {
            valid_from: Some(from),
            valid_until: Some(until),
            ..percent_off(1_000)
        };
        // (name, discount, now, discount amount or error)
        type Case = (
            &'static str,
            Discount,
            DateTime<Utc>,
            Result<i64, PricingError>,
        );
        let cases: Vec<Case> = vec![
            ("at start", windowed.clone(), from, Ok(200)),
            (
                "before start",
                windowed.clone(),
                instant("2026-05-31T23:59:59Z"),
                Err(PricingError::DiscountNotYetValid { valid_from: from }),
            ),
            (
                "last second",
                windowed.clone(),
                instant("2026-06-30T23:59:59Z"),
                Ok(200),
            ),
            (
                "at end",
                windowed.clone(),
                until,
                Err(PricingError::DiscountExpired { valid_until: until }),
            ),
            (
                "one use left",
                Discount {
                    usage_limit: Some(10),
                    times_used: 9,
                    ..percent_off(1_000)
                },
                now(),
                Ok(200),
            ),
            (
                "used up",
                Discount {
                    usage_limit: Some(10),
                    times_used: 10,
                    ..percent_off(1_000)
                },
                now(),
                Err(PricingError::DiscountExhausted { usage_limit: 10 }),
            ),
            (
                "minimum met",
                Discount {
                    minimum_subtotal: cents(2_000),
                    ..percent_off(1_000)
                },
                now(),
                Ok(200),
            ),
            (
                "below its minimum",
                Discount {
                    minimum_subtotal: cents(2_001),
                    ..percent_off(1_000)
                },
                now(),
                Err(PricingError::DiscountBelowMinimum {
                    minimum: cents(2_001),
                    subtotal: cents(2_000),
                }),
            ),
            (
                "fixed",
                Discount {
                    value: DiscountValue::Fixed { amount: cents(350) },
                    ..percent_off(0)
                },
                now(),
                Ok(350),
            ),
            (
                "fixed in another currency",
                Discount {
                    value: DiscountValue::Fixed { amount: usd(350) },
                    ..percent_off(0)
                },
                now(),
                Err(PricingError::MixedCurrencies {
                    expected: eur(),
                    found: usd(0).currency,
                }),
            ),
            (
                "negative fixed",
                Discount {
                    value: DiscountValue::Fixed { amount: cents(-1) },
                    ..percent_off(0)
                },
                now(),
                Err(PricingError::NegativeAmount {
                    field: "discount amount",
                }),
            ),
        ];
        for (name, discount, at, expected) in cases {
            let result = quote(&cart, &store, Some(&discount), at).map(|q| q.discount.minor);
            assert_eq!(result, expected, "{name}");
        }
    }

    #[test]
    fn tip_rules() {
        let cart = |tip| Cart {
            tip,
            ..pickup(vec![line(1, 1_000, 1)])
        };
        let store = rules(2_400, TaxMode::Exclusive);
        let q = quote(&cart(cents(1_000)), &store, None, now()).expect("100 % tip");
        // The tip is not taxed: 24 % of 10.00 only.
        assert_eq!(q.tax, cents(240));
        assert_eq!(q.total, cents(1_000 + 240 + 1_000));
        assert_eq!(
            quote(&cart(cents(1_001)), &store, None, now()).expect_err("too large"),
            PricingError::TipTooLarge {
                tip: cents(1_001),
                max: cents(1_000)
            }
        );
        assert_eq!(
            quote(&cart(cents(-1)), &store, None, now()).expect_err("negative"),
            PricingError::NegativeAmount { field: "tip" }
        );
        assert_eq!(
            quote(&cart(usd(100)), &store, None, now())
                .expect_err("currency")
                .code(),
            "mixed_currencies"
        );
    }

    #[test]
    fn refusals() {
        let store = rules(1_000, TaxMode::Exclusive);
        let cases: Vec<(&str, Cart, PricingRules, &str)> = vec![
            ("empty cart", pickup(vec![]), store.clone(), "empty_cart"),
            (
                "line in another currency",
                pickup(vec![CartLine {
                    unit_price: usd(100),
                    ..line(1, 0, 1)
                }]),
                store.clone(),
                "mixed_currencies",
            ),
            (
                "adjustment in another currency",
                pickup(vec![CartLine {
                    variant: Some(VariantChoice {
                        variant_id: Uuid::from_u128(9),
                        price_adjustment: usd(100),
                    }),
                    ..line(1, 100, 1)
                }]),
                store.clone(),
                "mixed_currencies",
            ),
            (
                "negative unit price",
                pickup(vec![line(1, -1, 1)]),
                store.clone(),
                "negative_unit_price",
            ),
            (
                "adjustment below zero",
                pickup(vec![with_variant(line(1, 100, 1), 9, -101)]),
                store.clone(),
                "negative_unit_price",
            ),
            (
                "line total overflows",
                pickup(vec![line(1, i64::MAX / 2 + 1, 2)]),
                store.clone(),
                "amount_overflow",
            ),
            (
                "subtotal overflows",
                pickup(vec![line(1, i64::MAX, 1), line(2, 1, 1)]),
                store.clone(),
                "amount_overflow",
            ),
            (
                "delivery not offered",
                Cart {
                    fulfilment: Fulfilment::Delivery { distance_m: 10 },
                    ..pickup(vec![line(1, 100, 1)])
                },
                PricingRules {
                    delivery: None,
                    ..store.clone()
                },
                "delivery_not_offered",
            ),
            (
                "negative delivery fee",
                Cart {
                    fulfilment: Fulfilment::Delivery { distance_m: 10 },
                    ..pickup(vec![line(1, 100, 1)])
                },
                PricingRules {
                    delivery: Some(DeliveryFeeRule {
                        base_fee: cents(-1),
                        fee_per_km: cents(0),
                        included_m: 0,
                        max_distance_m: 1_000,
                    }),
                    ..store.clone()
                },
                "negative_amount",
            ),
            (
                "negative minimum order",
                pickup(vec![line(1, 100, 1)]),
                PricingRules {
                    minimum_order: cents(-1),
                    ..store.clone()
                },
                "negative_amount",
            ),
            (
                "exclusive tax overflows",
                pickup(vec![line(1, i64::MAX, 1)]),
                store.clone(),
                "amount_overflow",
            ),
        ];
        for (name, cart, rules, code) in cases {
            let error = quote(&cart, &rules, None, now()).expect_err(name);
            assert_eq!(error.code(), code, "{name}: {error}");
        }
    }

    #[test]
    fn quantities_and_rates_are_parsed() {
        for ok in [1, 2, 999] {
            assert_eq!(i64::from(Quantity::new(ok).expect("valid").get()), ok);
        }
        for bad in [0, -1, 1_000, i64::from(u16::MAX) + 1, i64::MAX] {
            assert_eq!(
                Quantity::new(bad),
                Err(PricingError::InvalidQuantity { quantity: bad })
            );
        }
        for ok in [0, 1, 2_400, 10_000] {
            assert_eq!(i64::from(BasisPoints::new(ok).expect("valid").get()), ok);
        }
        for bad in [-1, 10_001] {
            assert_eq!(
                BasisPoints::new(bad).expect_err("invalid").code(),
                "invalid_basis_points"
            );
        }
        assert!(serde_json::from_str::<Quantity>("0").is_err());
        assert!(serde_json::from_str::<Quantity>("1000").is_err());
        assert_eq!(
            serde_json::from_str::<Quantity>("3").expect("valid").get(),
            3
        );
        assert!(serde_json::from_str::<BasisPoints>("10001").is_err());
    }

    #[test]
    fn wire_forms() {
        let fulfilment: Fulfilment =
            serde_json::from_str(r#"{"kind":"delivery","distance_m":1200}"#).expect("parses");
        assert_eq!(fulfilment, Fulfilment::Delivery { distance_m: 1_200 });
        let value: DiscountValue =
            serde_json::from_str(r#"{"kind":"percent","rate":1500}"#).expect("parses");
        assert_eq!(value, DiscountValue::Percent { rate: rate(1_500) });
        let tax: TaxRule =
            serde_json::from_str(r#"{"rate":2400,"mode":"inclusive"}"#).expect("parses");
        assert_eq!(tax.base, TaxBase::Goods);
        let q = quote(
            &pickup(vec![line(1, 100, 1)]),
            &rules(2_400, TaxMode::Inclusive),
            None,
            now(),
        )
        .expect("prices");
        let json = serde_json::to_string(&q).expect("serializes");
        assert_eq!(serde_json::from_str::<Quote>(&json).expect("parses"), q);
    }

    #[test]
    fn price_check_reports_changed_lines() {
        let store = rules(1_000, TaxMode::Exclusive);
        let seen_cart = pickup(vec![
            line(1, 450, 2),
            with_variant(line(2, 1_200, 1), 20, -150),
            line(3, 300, 1),
        ]);
        let seen = quote(&seen_cart, &store, None, now()).expect("prices");
        let same = check_prices(&seen, &seen);
        assert!(same.is_unchanged());

        // Product 1 went up, the variant's adjustment changed, product 3 is gone and product 4
        // appeared.
        let current_cart = pickup(vec![
            line(1, 480, 2),
            with_variant(line(2, 1_200, 1), 20, -100),
            line(4, 100, 1),
        ]);
        let current = quote(&current_cart, &store, None, now()).expect("prices");
        let check = check_prices(&seen, &current);
        assert!(!check.is_unchanged());
        let changes: Vec<(Uuid, PriceChange)> = check
            .changed_lines
            .iter()
            .map(|c| (c.product_id, c.change))
            .collect();
        assert_eq!(
            changes,
            vec![
                (
                    product(1),
                    PriceChange::Repriced {
                        seen: cents(450),
                        current: cents(480)
                    }
                ),
                (
                    product(2),
                    PriceChange::Repriced {
                        seen: cents(1_050),
                        current: cents(1_100)
                    }
                ),
                (product(3), PriceChange::Removed { seen: cents(300) }),
                (
                    product(4),
                    PriceChange::Added {
                        current: cents(100)
                    }
                ),
            ]
        );
        assert_eq!(check.changed_lines[1].variant_id, Some(Uuid::from_u128(20)));
        assert_eq!(check.seen_total, seen.total);
        assert_eq!(check.current_total, current.total);
    }

    #[test]
    fn price_check_sees_fee_changes_in_the_total() {
        let cart = Cart {
            fulfilment: Fulfilment::Delivery { distance_m: 3_500 },
            ..pickup(vec![line(1, 1_000, 1), line(1, 1_000, 1)])
        };
        let mut store = rules(0, TaxMode::Exclusive);
        let seen = quote(&cart, &store, None, now()).expect("prices");
        if let Some(delivery) = store.delivery.as_mut() {
            delivery.fee_per_km = cents(100);
        }
        let current = quote(&cart, &store, None, now()).expect("prices");
        let check = check_prices(&seen, &current);
        assert!(check.changed_lines.is_empty(), "same product twice matches");
        assert!(!check.is_unchanged());
        assert_eq!(check.current_total.minor - check.seen_total.minor, 20);
    }

    fn arb_line() -> impl Strategy<Value = CartLine> {
        (
            0u128..20,
            0i64..200_000,
            prop::option::of((0u128..3, -200_000i64..200_000)),
            1i64..=999,
        )
            .prop_map(|(id, unit, variant, quantity)| {
                let base = line(id, unit, quantity);
                match variant {
                    // Keep the adjusted unit price non-negative so most carts price.
                    Some((v, adjustment)) => with_variant(base, v, adjustment.max(-unit)),
                    None => base,
                }
            })
    }

    fn arb_rules() -> impl Strategy<Value = PricingRules> {
        (
            0i64..=10_000,
            prop_oneof![Just(TaxMode::Inclusive), Just(TaxMode::Exclusive)],
            prop_oneof![Just(TaxBase::Goods), Just(TaxBase::GoodsAndDelivery)],
            0i64..2_000,
            0i64..500,
            0u32..5_000,
            0i64..5_000,
        )
            .prop_map(
                |(bps, mode, base, fee, per_km, included_m, minimum)| PricingRules {
                    currency: eur(),
                    tax: TaxRule {
                        rate: rate(bps),
                        mode,
                        base,
                    },
                    delivery: Some(DeliveryFeeRule {
                        base_fee: cents(fee),
                        fee_per_km: cents(per_km),
                        included_m,
                        max_distance_m: 30_000,
                    }),
                    minimum_order: cents(minimum),
                },
            )
    }

    fn arb_discount() -> impl Strategy<Value = Option<Discount>> {
        prop::option::of(prop_oneof![
            (0i64..=10_000).prop_map(percent_off),
            (0i64..1_000_000).prop_map(|amount| Discount {
                value: DiscountValue::Fixed {
                    amount: cents(amount)
                },
                ..percent_off(0)
            }),
        ])
    }

    fn arb_cart() -> impl Strategy<Value = Cart> {
        (
            prop::collection::vec(arb_line(), 1..8),
            prop::option::of(0u32..30_000),
            0i64..10_000,
        )
            .prop_map(|(lines, distance, tip)| Cart {
                lines,
                fulfilment: match distance {
                    Some(distance_m) => Fulfilment::Delivery { distance_m },
                    None => Fulfilment::Pickup,
                },
                tip: cents(tip),
            })
    }

    proptest! {
        #[test]
        fn quotes_add_up_and_are_never_negative(
            cart in arb_cart(),
            store in arb_rules(),
            discount in arb_discount(),
        ) {
            let Ok(q) = quote(&cart, &store, discount.as_ref(), now()) else {
                // Below the minimum or a tip above the subtotal: refusals are tested above.
                return Ok(());
            };
            for line in &q.lines {
                prop_assert!(line.unit_price.minor >= 0 && line.line_total.minor >= 0);
            }
            for amount in [q.subtotal, q.discount, q.tax, q.delivery_fee, q.tip, q.total] {
                prop_assert!(amount.minor >= 0, "{q:?}");
                prop_assert_eq!(amount.currency, eur());
            }
            prop_assert_eq!(
                q.subtotal.minor - q.discount.minor + q.exclusive_tax().minor
                    + q.delivery_fee.minor + q.tip.minor,
                q.total.minor
            );
            prop_assert_eq!(
                q.subtotal.minor,
                q.lines.iter().map(|l| l.line_total.minor).sum::<i64>()
            );
            prop_assert!(q.discount.minor <= q.subtotal.minor);
            let taxed = match store.tax.base {
                TaxBase::Goods => q.subtotal.minor - q.discount.minor,
                TaxBase::GoodsAndDelivery => {
                    q.subtotal.minor - q.discount.minor + q.delivery_fee.minor
                }
            };
            prop_assert!(q.tax.minor <= taxed);
            if q.tax_mode == TaxMode::Inclusive {
                // At most half: rate / (10 000 + rate) ≤ 1/2, rounded.
                prop_assert!(q.tax.minor <= (taxed + 1) / 2);
            }
        }

        #[test]
        fn quotes_are_deterministic(
            cart in arb_cart(),
            store in arb_rules(),
            discount in arb_discount(),
        ) {
            let first = quote(&cart, &store, discount.as_ref(), now());
            let second = quote(&cart.clone(), &store.clone(), discount.clone().as_ref(), now());
            prop_assert_eq!(&first, &second);
            if let Ok(q) = first {
                prop_assert!(check_prices(&q, &q).is_unchanged());
                let json = serde_json::to_string(&q).expect("serializes");
                prop_assert_eq!(serde_json::from_str::<Quote>(&json).expect("parses"), q);
            }
        }

        #[test]
        fn contained_tax_matches_the_exact_fraction(gross in 0i64..1_000_000_000, bps in 0i64..=10_000) {
            let tax = contained_tax(cents(gross), rate(bps)).expect("fits").minor;
            // |tax − gross·r/(10000+r)| ≤ 1/2, in integers: |2·tax·d − 2·gross·r| ≤ d.
            let d = 10_000 + i128::from(bps);
            let off = (2 * i128::from(tax) * d - 2 * i128::from(gross) * i128::from(bps)).abs();
            prop_assert!(off <= d);
            prop_assert!(tax <= gross);
        }
    }
}
