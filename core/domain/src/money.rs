//! Money as integer minor units of an ISO 4217 currency. Never floating point.
//!
//! Rounding rule (used wherever a share of an amount is computed, e.g. a percentage fee):
//! round half away from zero to the currency's minor unit, computed in `i128` so that no
//! intermediate product overflows.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// An ISO 4217 currency code: three ASCII uppercase letters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String, example = "EUR"))]
pub struct Currency([u8; 3]);

/// Currencies the platform accepts, with the number of minor-unit digits of each.
const KNOWN: &[(&str, u8)] = &[
    ("AED", 2),
    ("AUD", 2),
    ("BRL", 2),
    ("CAD", 2),
    ("CHF", 2),
    ("CZK", 2),
    ("DKK", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("HUF", 2),
    ("ILS", 2),
    ("INR", 2),
    ("ISK", 0),
    ("JPY", 0),
    ("KRW", 0),
    ("MXN", 2),
    ("NOK", 2),
    ("NZD", 2),
    ("PLN", 2),
    ("RON", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("TRY", 2),
    ("UAH", 2),
    ("USD", 2),
    ("ZAR", 2),
    ("KWD", 3),
    ("BHD", 3),
];

/// Why a currency code was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("unknown currency code {0:?}: use an ISO 4217 code such as EUR or USD")]
pub struct UnknownCurrency(pub String);

impl Currency {
    /// Parses an ISO 4217 code the platform supports.
    ///
    /// # Errors
    /// [`UnknownCurrency`] when the code is not one of the supported currencies.
    pub fn parse(code: &str) -> Result<Self, UnknownCurrency> {
        KNOWN
            .iter()
            .find(|(known, _)| *known == code)
            .map(|(known, _)| {
                let b = known.as_bytes();
                Currency([b[0], b[1], b[2]])
            })
            .ok_or_else(|| UnknownCurrency(code.to_owned()))
    }

    /// The three-letter code.
    pub fn code(&self) -> &str {
        std::str::from_utf8(&self.0).expect("currency codes are ASCII by construction")
    }

    /// Number of digits after the decimal point (2 for EUR, 0 for JPY).
    pub fn minor_digits(&self) -> u8 {
        KNOWN
            .iter()
            .find(|(known, _)| known.as_bytes() == self.0)
            .map(|(_, digits)| *digits)
            .expect("only known currencies can be constructed")
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = UnknownCurrency;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = String::deserialize(deserializer)?;
        Currency::parse(&code).map_err(serde::de::Error::custom)
    }
}

/// An amount in minor units (cents) of one currency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Money {
    /// Amount in minor units, e.g. 1250 for 12.50 EUR.
    pub minor: i64,
    /// ISO 4217 currency.
    pub currency: Currency,
}

/// Why a money computation was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum MoneyError {
    /// The two amounts are in different currencies.
    #[error("cannot combine {0} with {1}")]
    CurrencyMismatch(Currency, Currency),
    /// The result does not fit in 64 bits.
    #[error("amount overflows")]
    Overflow,
}

impl Money {
    /// An amount of `minor` units of `currency`.
    pub fn new(minor: i64, currency: Currency) -> Self {
        Self { minor, currency }
    }

    /// Zero in `currency`.
    pub fn zero(currency: Currency) -> Self {
        Self { minor: 0, currency }
    }

    /// `self + other`.
    ///
    /// # Errors
    /// On mixed currencies or overflow.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let minor = self
            .minor
            .checked_add(other.minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money { minor, ..self })
    }

    /// `self - other`.
    ///
    /// # Errors
    /// On mixed currencies or overflow.
    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let minor = self
            .minor
            .checked_sub(other.minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money { minor, ..self })
    }

    /// `self × quantity`.
    ///
    /// # Errors
    /// On overflow.
    pub fn checked_mul(self, quantity: i64) -> Result<Money, MoneyError> {
        let minor = self
            .minor
            .checked_mul(quantity)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money { minor, ..self })
    }

    /// `self × basis_points / 10_000`, rounded half away from zero (the platform's one rounding
    /// rule). 1 basis point is 0.01 %.
    ///
    /// # Errors
    /// On overflow.
    pub fn share_bps(self, basis_points: i64) -> Result<Money, MoneyError> {
        let product = i128::from(self.minor) * i128::from(basis_points);
        let rounded = div_round_half_away(product, 10_000);
        let minor = i64::try_from(rounded).map_err(|_| MoneyError::Overflow)?;
        Ok(Money { minor, ..self })
    }

    fn same_currency(&self, other: Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch(self.currency, other.currency))
        }
    }
}

/// `numerator / denominator` rounded half away from zero: the platform's one rounding rule, for
/// any non-zero denominator.
pub(crate) fn div_round_half_away(numerator: i128, denominator: i128) -> i128 {
    let quotient = numerator / denominator;
    let remainder = numerator % denominator;
    if remainder.abs() * 2 >= denominator.abs() {
        quotient + numerator.signum() * denominator.signum()
    } else {
        quotient
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = u32::from(self.currency.minor_digits());
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        if digits == 0 {
            return write!(f, "{sign}{abs} {}", self.currency);
        }
        let scale = 10u64.pow(digits);
        write!(
            f,
            "{sign}{}.{:0width$} {}",
            abs / scale,
            abs % scale,
            self.currency,
            width = digits as usize
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn eur(minor: i64) -> Money {
        Money::new(minor, Currency::parse("EUR").expect("EUR is known"))
    }

    #[test]
    fn parses_known_currencies_only() {
        assert_eq!(Currency::parse("JPY").expect("known").minor_digits(), 0);
        assert!(Currency::parse("eur").is_err());
        assert!(Currency::parse("XXX").is_err());
        assert!(serde_json::from_str::<Currency>("\"ABC\"").is_err());
    }

    #[test]
    fn refuses_mixed_currencies() {
        let usd = Money::new(1, Currency::parse("USD").expect("known"));
        assert!(matches!(
            eur(1).checked_add(usd),
            Err(MoneyError::CurrencyMismatch(..))
        ));
    }

    #[test]
    fn share_rounds_half_away_from_zero() {
        // 2.5 % of 1.00 = 2.5 cents -> 3; of -1.00 -> -3; 2.4 -> 2.
        assert_eq!(eur(100).share_bps(250).expect("fits").minor, 3);
        assert_eq!(eur(-100).share_bps(250).expect("fits").minor, -3);
        assert_eq!(eur(96).share_bps(250).expect("fits").minor, 2);
    }

    #[test]
    fn displays_with_minor_digits() {
        assert_eq!(eur(1250).to_string(), "12.50 EUR");
        assert_eq!(eur(-5).to_string(), "-0.05 EUR");
        assert_eq!(
            Money::new(500, Currency::parse("JPY").expect("known")).to_string(),
            "500 JPY"
        );
    }

    proptest! {
        #[test]
        fn share_is_never_more_than_the_whole(minor in 0i64..1_000_000_000_000, bps in 0i64..=10_000) {
            let share = eur(minor).share_bps(bps).expect("fits");
            prop_assert!(share.minor >= 0 && share.minor <= minor);
        }

        #[test]
        fn add_then_sub_round_trips(a in -1_000_000_000i64..1_000_000_000, b in -1_000_000_000i64..1_000_000_000) {
            let sum = eur(a).checked_add(eur(b)).expect("fits");
            prop_assert_eq!(sum.checked_sub(eur(b)).expect("fits"), eur(a));
        }
    }
}
