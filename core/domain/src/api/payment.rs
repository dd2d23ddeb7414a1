//! Saved payment methods: a customer's cards as the payment provider's tokens (`pm_…`) with
//! what to show (brand, last four digits, expiry). Card data never reaches the platform.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::FieldErrors;

/// The longest provider id accepted.
pub const MAX_GATEWAY_ID: usize = 255;

/// A payment provider's payment method id, e.g. Stripe `pm_…`: its prefix and Stripe's id
/// alphabet, so it can go into a URL path safely.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GatewayPaymentMethodId(String);

impl GatewayPaymentMethodId {
    /// Parses a provider's payment method id.
    ///
    /// # Errors
    /// `invalid` for anything but `pm_` followed by 1 to 252 letters, digits or underscores.
    pub fn parse(raw: &str) -> Result<Self, crate::value::ValueError> {
        let raw = raw.trim();
        let ok = raw.len() <= MAX_GATEWAY_ID
            && raw.strip_prefix("pm_").is_some_and(|rest| {
                !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            });
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(crate::value::ValueError {
                code: "invalid",
                message: "send the payment provider's payment method id (pm_…)".to_owned(),
            })
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `POST /api/v1/customers/me/payment-methods`: save a card the client tokenized with the
/// provider's SDK.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SavePaymentMethodRequest {
    /// The provider's payment method id, e.g. Stripe `pm_…`.
    pub payment_method_id: String,
    /// Make it the default (the first saved card is the default anyway).
    #[serde(default)]
    pub is_default: bool,
}

/// A parsed [`SavePaymentMethodRequest`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavePaymentMethod {
    /// The provider's id.
    pub payment_method_id: GatewayPaymentMethodId,
    /// Make it the default.
    pub is_default: bool,
}

impl SavePaymentMethodRequest {
    /// Parses the request.
    ///
    /// # Errors
    /// Every field error.
    pub fn parse(&self) -> Result<SavePaymentMethod, FieldErrors> {
        let mut errors = FieldErrors::default();
        let id = errors.check(
            "payment_method_id",
            GatewayPaymentMethodId::parse(&self.payment_method_id),
        );
        errors.finish(|| {
            Some(SavePaymentMethod {
                payment_method_id: id?,
                is_default: self.is_default,
            })
        })
    }
}

/// `PATCH /api/v1/customers/me/payment-methods/{id}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdatePaymentMethodRequest {
    /// `true` makes it the default; `false` leaves the customer without a default card.
    pub is_default: bool,
}

/// A saved card as its owner sees it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PaymentMethodView {
    /// Id (use as `payment.payment_method_id` at checkout).
    pub id: Uuid,
    /// `card`.
    pub payment_type: String,
    /// `visa`, `mastercard`, …
    pub card_brand: Option<String>,
    /// The last four digits.
    pub card_last4: Option<String>,
    /// Expiry month.
    pub card_exp_month: Option<i32>,
    /// Expiry year.
    pub card_exp_year: Option<i32>,
    /// The default card.
    pub is_default: bool,
    /// When it was saved.
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payment_method_ids_are_parsed() {
        assert_eq!(
            GatewayPaymentMethodId::parse(" pm_card_visa ")
                .expect("valid")
                .as_str(),
            "pm_card_visa"
        );
        for bad in [
            "",
            "pm_",
            "card_visa",
            "pm_a/b",
            "pm_a b",
            "pi_123",
            &"pm_x".repeat(80),
        ] {
            assert!(GatewayPaymentMethodId::parse(bad).is_err(), "{bad:?}");
        }
        let req: SavePaymentMethodRequest =
            serde_json::from_str(r#"{"payment_method_id":"pm_1"}"#).expect("parses");
        assert!(!req.parse().expect("valid").is_default);
        assert!(serde_json::from_str::<SavePaymentMethodRequest>(
            r#"{"payment_method_id":"pm_1","card_last4":"4242"}"#
        )
        .is_err());
        let bad = SavePaymentMethodRequest {
            payment_method_id: "4242424242424242".into(),
            is_default: false,
        };
        assert_eq!(
            bad.parse().expect_err("invalid").0[0].field,
            "payment_method_id"
        );
    }
}
