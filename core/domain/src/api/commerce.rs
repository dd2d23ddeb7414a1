//! A business's commerce settings (tax, delivery fee, minimum order, acceptance window) and its
//! discount codes on the wire. Requests parse into the pricing and order types that checkout
//! uses, so a value the API accepts is one the pricing rules can apply.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{patch, FieldErrors};
use crate::order::AcceptanceWindow;
use crate::pricing::BasisPoints;

/// The farthest a delivery fee rule may reach, in metres (as the database allows).
pub const MAX_DELIVERY_DISTANCE_M: i64 = 100_000;
/// The nearest explicit maximum delivery distance, in metres.
pub const MIN_DELIVERY_DISTANCE_M: i64 = 100;
/// The longest discount code.
pub const MAX_DISCOUNT_CODE_LEN: usize = 32;

/// A store's commerce settings as checkout applies them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommerceSettingsView {
    /// Tax rate in basis points (2400 = 24 %).
    pub tax_rate_bps: i64,
    /// Whether listed prices include the tax.
    pub prices_include_tax: bool,
    /// Whether the delivery fee is taxed at the goods' rate.
    pub tax_includes_delivery: bool,
    /// Whether the store delivers.
    pub offers_delivery: bool,
    /// Whether customers may collect at the store.
    pub offers_pickup: bool,
    /// Charged for every delivery, in minor units.
    pub delivery_base_fee_minor: i64,
    /// Charged per started kilometre beyond `delivery_included_m`, in minor units.
    pub delivery_fee_per_km_minor: i64,
    /// Metres covered by the base fee.
    pub delivery_included_m: i64,
    /// The farthest the store delivers; `null` is the business's delivery radius.
    pub delivery_max_distance_m: Option<i64>,
    /// The smallest subtotal accepted, in minor units; 0 for none.
    pub minimum_order_minor: i64,
    /// Seconds the store has to accept an order before it is rejected (30–3600).
    pub acceptance_window_secs: i64,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// `PATCH /api/v1/business/commerce-settings`: absent fields stay as they are.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateCommerceSettingsRequest {
    /// Tax rate in basis points, 0–10000.
    #[serde(default)]
    pub tax_rate_bps: Option<i64>,
    /// Whether listed prices include the tax.
    #[serde(default)]
    pub prices_include_tax: Option<bool>,
    /// Whether the delivery fee is taxed.
    #[serde(default)]
    pub tax_includes_delivery: Option<bool>,
    /// Whether the store delivers.
    #[serde(default)]
    pub offers_delivery: Option<bool>,
    /// Whether customers may collect at the store.
    #[serde(default)]
    pub offers_pickup: Option<bool>,
    /// Base delivery fee, minor units, ≥ 0.
    #[serde(default)]
    pub delivery_base_fee_minor: Option<i64>,
    /// Fee per started kilometre, minor units, ≥ 0.
    #[serde(default)]
    pub delivery_fee_per_km_minor: Option<i64>,
    /// Metres covered by the base fee, 0–100000.
    #[serde(default)]
    pub delivery_included_m: Option<i64>,
    /// Farthest delivery, 100–100000 metres; `null` uses the delivery radius.
    #[serde(default, deserialize_with = "patch")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>))]
    pub delivery_max_distance_m: Option<Option<i64>>,
    /// Smallest subtotal, minor units, ≥ 0.
    #[serde(default)]
    pub minimum_order_minor: Option<i64>,
    /// Seconds to accept an order, 30–3600.
    #[serde(default)]
    pub acceptance_window_secs: Option<i64>,
}

/// A parsed commerce settings change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommerceSettingsUpdate {
    /// Tax rate.
    pub tax_rate: Option<BasisPoints>,
    /// Prices include tax.
    pub prices_include_tax: Option<bool>,
    /// Delivery taxed.
    pub tax_includes_delivery: Option<bool>,
    /// Delivers.
    pub offers_delivery: Option<bool>,
    /// Pickup.
    pub offers_pickup: Option<bool>,
    /// Base fee (minor units, non-negative).
    pub delivery_base_fee_minor: Option<i64>,
    /// Per-kilometre fee (minor units, non-negative).
    pub delivery_fee_per_km_minor: Option<i64>,
    /// Included metres.
    pub delivery_included_m: Option<i32>,
    /// Maximum distance (outer: change?, inner: value).
    pub delivery_max_distance_m: Option<Option<i32>>,
    /// Minimum order (minor units, non-negative).
    pub minimum_order_minor: Option<i64>,
    /// Acceptance window.
    pub acceptance_window: Option<AcceptanceWindow>,
}

fn non_negative(e: &mut FieldErrors, field: &str, value: Option<i64>) -> Option<i64> {
    match value {
        Some(v) if v < 0 => {
            e.push(field, "negative", "must not be negative");
            None
        }
        other => other,
    }
}

fn metres(e: &mut FieldErrors, field: &str, value: i64, min: i64) -> Option<i32> {
    if (min..=MAX_DELIVERY_DISTANCE_M).contains(&value) {
        i32::try_from(value).ok()
    } else {
        e.push(
            field,
            "out_of_range",
            format!("must be {min} to {MAX_DELIVERY_DISTANCE_M} metres"),
        );
        None
    }
}

impl UpdateCommerceSettingsRequest {
    /// Parses every present field.
    ///
    /// # Errors
    /// The field errors.
    pub fn parse(&self) -> Result<CommerceSettingsUpdate, FieldErrors> {
        let mut e = FieldErrors::default();
        let tax_rate = self
            .tax_rate_bps
            .and_then(|bps| match BasisPoints::new(bps) {
                Ok(rate) => Some(rate),
                Err(err) => {
                    e.push(
                        "tax_rate_bps",
                        err.code(),
                        "a rate is 0 to 10000 basis points",
                    );
                    None
                }
            });
        let acceptance_window =
            self.acceptance_window_secs
                .and_then(|secs| match AcceptanceWindow::from_secs(secs) {
                    Ok(w) => Some(w),
                    Err(err) => {
                        e.push("acceptance_window_secs", err.code(), err.to_string());
                        None
                    }
                });
        let update = CommerceSettingsUpdate {
            tax_rate,
            prices_include_tax: self.prices_include_tax,
            tax_includes_delivery: self.tax_includes_delivery,
            offers_delivery: self.offers_delivery,
            offers_pickup: self.offers_pickup,
            delivery_base_fee_minor: non_negative(
                &mut e,
                "delivery_base_fee_minor",
                self.delivery_base_fee_minor,
            ),
            delivery_fee_per_km_minor: non_negative(
                &mut e,
                "delivery_fee_per_km_minor",
                self.delivery_fee_per_km_minor,
            ),
            delivery_included_m: self
                .delivery_included_m
                .and_then(|m| metres(&mut e, "delivery_included_m", m, 0)),
            delivery_max_distance_m: match self.delivery_max_distance_m {
                None => None,
                Some(None) => Some(None),
                Some(Some(m)) => metres(
                    &mut e,
                    "delivery_max_distance_m",
                    m,
                    MIN_DELIVERY_DISTANCE_M,
                )
                .map(Some),
            },
            minimum_order_minor: non_negative(
                &mut e,
                "minimum_order_minor",
                self.minimum_order_minor,
            ),
            acceptance_window,
        };
        if self.offers_delivery == Some(false) && self.offers_pickup == Some(false) {
            e.push(
                "offers_pickup",
                "no_fulfilment",
                "a store offers delivery, pickup or both",
            );
        }
        e.finish(|| Some(update))
    }
}

/// A discount code as the business sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DiscountCodeView {
    /// Id.
    pub id: Uuid,
    /// The code customers type (matched without regard to case).
    pub code: String,
    /// Percentage off in basis points (1000 = 10 %); set when the code is a percentage.
    pub percent_bps: Option<i64>,
    /// Fixed amount off, minor units; set when the code is a fixed amount.
    pub amount_minor: Option<i64>,
    /// First valid instant.
    pub valid_from: Option<DateTime<Utc>>,
    /// First instant no longer valid.
    pub valid_until: Option<DateTime<Utc>>,
    /// Smallest subtotal the code applies to, minor units.
    pub minimum_subtotal_minor: i64,
    /// How many orders may use it; `null` for no limit.
    pub usage_limit: Option<i64>,
    /// How many orders used it.
    pub times_used: i64,
    /// Whether customers may use it.
    pub is_active: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
}

/// The discount codes of a business.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DiscountCodeList {
    /// Codes, newest first.
    pub items: Vec<DiscountCodeView>,
}

/// `POST /api/v1/business/discount-codes`: exactly one of `percent_bps` and `amount_minor`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateDiscountCodeRequest {
    /// 1–32 letters, digits, `-` or `_`, starting with a letter or digit; unique per store
    /// regardless of case.
    pub code: String,
    /// Percentage off, 1–10000 basis points.
    #[serde(default)]
    pub percent_bps: Option<i64>,
    /// Fixed amount off, minor units, > 0.
    #[serde(default)]
    pub amount_minor: Option<i64>,
    /// First valid instant.
    #[serde(default)]
    pub valid_from: Option<DateTime<Utc>>,
    /// First instant no longer valid; after `valid_from`.
    #[serde(default)]
    pub valid_until: Option<DateTime<Utc>>,
    /// Smallest subtotal, minor units, ≥ 0 (default 0).
    #[serde(default)]
    pub minimum_subtotal_minor: Option<i64>,
    /// How many orders may use it, ≥ 1; absent for no limit.
    #[serde(default)]
    pub usage_limit: Option<i64>,
    /// Whether customers may use it (default true).
    #[serde(default)]
    pub is_active: Option<bool>,
}

/// What a discount code takes off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiscountAmount {
    /// A share of the goods.
    Percent(BasisPoints),
    /// A fixed amount, minor units, > 0.
    Fixed(i64),
}

/// A discount code's rules, parsed and consistent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscountCodeRules {
    /// The code.
    pub code: String,
    /// What it takes off.
    pub value: DiscountAmount,
    /// First valid instant.
    pub valid_from: Option<DateTime<Utc>>,
    /// First instant no longer valid.
    pub valid_until: Option<DateTime<Utc>>,
    /// Smallest subtotal.
    pub minimum_subtotal_minor: i64,
    /// Usage limit.
    pub usage_limit: Option<i32>,
    /// Active.
    pub is_active: bool,
}

/// Parses a discount code: trimmed, 1–32 ASCII letters, digits, `-` or `_`, starting with a
/// letter or digit.
///
/// # Errors
/// A field error on `field`.
pub fn parse_code(e: &mut FieldErrors, field: &str, raw: &str) -> Option<String> {
    let code = raw.trim();
    let valid = !code.is_empty()
        && code.len() <= MAX_DISCOUNT_CODE_LEN
        && code
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Some(code.to_owned())
    } else {
        e.push(
            field,
            "invalid",
            "a code is 1 to 32 letters, digits, '-' or '_', starting with a letter or digit",
        );
        None
    }
}

fn value_of(
    e: &mut FieldErrors,
    percent_bps: Option<i64>,
    amount_minor: Option<i64>,
) -> Option<DiscountAmount> {
    match (percent_bps, amount_minor) {
        (Some(bps), None) if (1..=10_000).contains(&bps) => {
            BasisPoints::new(bps).ok().map(DiscountAmount::Percent)
        }
        (Some(_), None) => {
            e.push(
                "percent_bps",
                "out_of_range",
                "a percentage is 1 to 10000 basis points",
            );
            None
        }
        (None, Some(amount)) if amount > 0 => Some(DiscountAmount::Fixed(amount)),
        (None, Some(_)) => {
            e.push(
                "amount_minor",
                "out_of_range",
                "an amount off is more than 0",
            );
            None
        }
        _ => {
            e.push(
                "percent_bps",
                "one_of",
                "give exactly one of percent_bps and amount_minor",
            );
            None
        }
    }
}

fn usage_limit_of(e: &mut FieldErrors, raw: Option<i64>) -> Option<Option<i32>> {
    match raw {
        None => Some(None),
        Some(n) if n >= 1 => match i32::try_from(n) {
            Ok(n) => Some(Some(n)),
            Err(_) => {
                e.push("usage_limit", "out_of_range", "too large a usage limit");
                None
            }
        },
        Some(_) => {
            e.push("usage_limit", "out_of_range", "a usage limit is at least 1");
            None
        }
    }
}

fn check_window(e: &mut FieldErrors, from: Option<DateTime<Utc>>, until: Option<DateTime<Utc>>) {
    if let (Some(from), Some(until)) = (from, until) {
        if until <= from {
            e.push(
                "valid_until",
                "before_start",
                "valid_until must be after valid_from",
            );
        }
    }
}

impl CreateDiscountCodeRequest {
    /// Parses every field.
    ///
    /// # Errors
    /// The field errors.
    pub fn parse(&self) -> Result<DiscountCodeRules, FieldErrors> {
        let mut e = FieldErrors::default();
        let code = parse_code(&mut e, "code", &self.code);
        let value = value_of(&mut e, self.percent_bps, self.amount_minor);
        check_window(&mut e, self.valid_from, self.valid_until);
        let minimum = non_negative(
            &mut e,
            "minimum_subtotal_minor",
            Some(self.minimum_subtotal_minor.unwrap_or(0)),
        );
        let usage_limit = usage_limit_of(&mut e, self.usage_limit);
        e.finish(|| {
            Some(DiscountCodeRules {
                code: code?,
                value: value?,
                valid_from: self.valid_from,
                valid_until: self.valid_until,
                minimum_subtotal_minor: minimum?,
                usage_limit: usage_limit?,
                is_active: self.is_active.unwrap_or(true),
            })
        })
    }
}

/// `PATCH /api/v1/business/discount-codes/{id}`: absent fields stay; `null` clears the
/// window ends and the usage limit. Giving `percent_bps` or `amount_minor` replaces the value
/// (and the other kind).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateDiscountCodeRequest {
    /// New code.
    #[serde(default)]
    pub code: Option<String>,
    /// New percentage (replaces a fixed amount).
    #[serde(default)]
    pub percent_bps: Option<i64>,
    /// New fixed amount (replaces a percentage).
    #[serde(default)]
    pub amount_minor: Option<i64>,
    /// First valid instant; `null` for none.
    #[serde(default, deserialize_with = "patch")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<DateTime<Utc>>))]
    pub valid_from: Option<Option<DateTime<Utc>>>,
    /// First instant no longer valid; `null` for none.
    #[serde(default, deserialize_with = "patch")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<DateTime<Utc>>))]
    pub valid_until: Option<Option<DateTime<Utc>>>,
    /// Smallest subtotal.
    #[serde(default)]
    pub minimum_subtotal_minor: Option<i64>,
    /// Usage limit; `null` for none.
    #[serde(default, deserialize_with = "patch")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>))]
    pub usage_limit: Option<Option<i64>>,
    /// Whether customers may use it.
    #[serde(default)]
    pub is_active: Option<bool>,
}

impl UpdateDiscountCodeRequest {
    /// Applies the change to the code's current rules and checks the result as a whole
    /// (e.g. a new `valid_until` against the kept `valid_from`).
    ///
    /// # Errors
    /// The field errors.
    pub fn apply(&self, current: &DiscountCodeRules) -> Result<DiscountCodeRules, FieldErrors> {
        let mut e = FieldErrors::default();
        let code = match &self.code {
            Some(raw) => parse_code(&mut e, "code", raw),
            None => Some(current.code.clone()),
        };
        let value = if self.percent_bps.is_some() || self.amount_minor.is_some() {
            value_of(&mut e, self.percent_bps, self.amount_minor)
        } else {
            Some(current.value)
        };
        let valid_from = self.valid_from.unwrap_or(current.valid_from);
        let valid_until = self.valid_until.unwrap_or(current.valid_until);
        check_window(&mut e, valid_from, valid_until);
        let minimum = non_negative(
            &mut e,
            "minimum_subtotal_minor",
            Some(
                self.minimum_subtotal_minor
                    .unwrap_or(current.minimum_subtotal_minor),
            ),
        );
        let usage_limit = match self.usage_limit {
            None => Some(current.usage_limit),
            Some(raw) => usage_limit_of(&mut e, raw),
        };
        e.finish(|| {
            Some(DiscountCodeRules {
                code: code?,
                value: value?,
                valid_from,
                valid_until,
                minimum_subtotal_minor: minimum?,
                usage_limit: usage_limit?,
                is_active: self.is_active.unwrap_or(current.is_active),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(e: &FieldErrors) -> Vec<&str> {
        e.0.iter().map(|f| f.field.as_str()).collect()
    }

    #[test]
    fn commerce_settings_are_parsed_by_the_domain_types() {
        let ok: UpdateCommerceSettingsRequest = serde_json::from_str(
            r#"{"tax_rate_bps": 1400, "acceptance_window_secs": 300, "delivery_max_distance_m": null}"#,
        )
        .expect("json");
        let update = ok.parse().expect("valid");
        assert_eq!(update.tax_rate.map(BasisPoints::get), Some(1400));
        assert_eq!(
            update.acceptance_window.map(AcceptanceWindow::secs),
            Some(300)
        );
        assert_eq!(update.delivery_max_distance_m, Some(None));
        let bad = UpdateCommerceSettingsRequest {
            tax_rate_bps: Some(10_001),
            delivery_base_fee_minor: Some(-1),
            delivery_max_distance_m: Some(Some(50)),
            acceptance_window_secs: Some(10),
            offers_delivery: Some(false),
            offers_pickup: Some(false),
            ..Default::default()
        }
        .parse()
        .expect_err("invalid");
        assert_eq!(
            fields(&bad),
            [
                "tax_rate_bps",
                "acceptance_window_secs",
                "delivery_base_fee_minor",
                "delivery_max_distance_m",
                "offers_pickup"
            ]
        );
        assert!(
            serde_json::from_str::<UpdateCommerceSettingsRequest>(r#"{"business_id": "x"}"#)
                .is_err()
        );
    }

    #[test]
    fn discount_codes_follow_their_rules() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).expect("valid");
        let rules = CreateDiscountCodeRequest {
            code: " SUMMER-10 ".into(),
            percent_bps: Some(1000),
            valid_from: Some(now),
            ..Default::default()
        }
        .parse()
        .expect("valid");
        assert_eq!(rules.code, "SUMMER-10");
        assert_eq!(
            rules.value,
            DiscountAmount::Percent(BasisPoints::new(1000).expect("ok"))
        );
        assert!(rules.is_active);
        for (request, field) in [
            (
                CreateDiscountCodeRequest {
                    code: "-x".into(),
                    amount_minor: Some(1),
                    ..Default::default()
                },
                "code",
            ),
            (
                CreateDiscountCodeRequest {
                    code: "A".repeat(33),
                    amount_minor: Some(1),
                    ..Default::default()
                },
                "code",
            ),
            (
                CreateDiscountCodeRequest {
                    code: "A".into(),
                    ..Default::default()
                },
                "percent_bps",
            ),
            (
                CreateDiscountCodeRequest {
                    code: "A".into(),
                    percent_bps: Some(5),
                    amount_minor: Some(5),
                    ..Default::default()
                },
                "percent_bps",
            ),
            (
                CreateDiscountCodeRequest {
                    code: "A".into(),
                    percent_bps: Some(10_001),
                    ..Default::default()
                },
                "percent_bps",
            ),
            (
                CreateDiscountCodeRequest {
                    code: "A".into(),
                    amount_minor: Some(0),
                    ..Default::default()
                },
                "amount_minor",
            ),
            (
                CreateDiscountCodeRequest {
                    code: "A".into(),
                    amount_minor: Some(1),
                    usage_limit: Some(0),
                    ..Default::default()
                },
                "usage_limit",
            ),
            (
                CreateDiscountCodeRequest {
                    code: "A".into(),
                    amount_minor: Some(1),
                    minimum_subtotal_minor: Some(-1),
                    ..Default::default()
                },
                "minimum_subtotal_minor",
            ),
            (
                CreateDiscountCodeRequest {
                    code: "A".into(),
                    amount_minor: Some(1),
                    valid_from: Some(now),
                    valid_until: Some(now),
                    ..Default::default()
                },
                "valid_until",
            ),
        ] {
            let e = request.parse().expect_err(field);
            assert_eq!(fields(&e), [field], "{request:?}");
        }
        // An update is checked against what it keeps.
        let earlier = now - chrono::Duration::days(1);
        let e = UpdateDiscountCodeRequest {
            valid_until: Some(Some(earlier)),
            ..Default::default()
        }
        .apply(&rules)
        .expect_err("ends before it starts");
        assert_eq!(fields(&e), ["valid_until"]);
        let fixed = UpdateDiscountCodeRequest {
            amount_minor: Some(500),
            usage_limit: Some(Some(3)),
            ..Default::default()
        }
        .apply(&rules)
        .expect("valid");
        assert_eq!(fixed.value, DiscountAmount::Fixed(500));
        assert_eq!(fixed.usage_limit, Some(3));
        assert_eq!(fixed.valid_from, Some(now));
    }
}
