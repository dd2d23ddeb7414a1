//! A customer's own account at one store: profile and delivery addresses.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::id::{BusinessId, CustomerId};
use crate::money::Money;
use crate::value::{Coordinates, CountryCode, DisplayName, Email, Phone, TextLine};

use super::{patch, FieldErrors};

/// What a customer may choose about how the store treats them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CustomerPreferences {
    /// May the store send marketing email.
    #[serde(default)]
    pub marketing_email: bool,
    /// May the store send order updates by SMS.
    #[serde(default)]
    pub sms_updates: bool,
    /// Preferred language (BCP 47 tag such as `en` or `fi-FI`), if any.
    #[serde(default)]
    pub language: Option<String>,
}

impl CustomerPreferences {
    fn check(&self, e: &mut FieldErrors) {
        if let Some(tag) = &self.language {
            let ok = (2..=35).contains(&tag.len())
                && tag.split('-').all(|part| {
                    !part.is_empty()
                        && part.len() <= 8
                        && part.chars().all(|c| c.is_ascii_alphanumeric())
                });
            if !ok {
                e.push(
                    "preferences.language",
                    "invalid_language",
                    "language must be a tag such as en or fi-FI",
                );
            }
        }
    }
}

/// `GET /api/v1/customers/me`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CustomerProfile {
    /// Id.
    pub id: CustomerId,
    /// The store.
    pub business_id: BusinessId,
    /// Email.
    pub email: String,
    /// Phone.
    pub phone: Option<String>,
    /// Name.
    pub full_name: String,
    /// Loyalty points.
    pub loyalty_points: i64,
    /// Completed orders (delivered or collected; a refund takes one back).
    pub total_orders: i64,
    /// What the completed orders cost, in the store's currency (refunds taken back).
    pub total_spent: Money,
    /// Preferences.
    pub preferences: CustomerPreferences,
    /// Since.
    pub created_at: DateTime<Utc>,
}

/// `PATCH /api/v1/customers/me`. Absent fields stay; `phone: null` removes the phone.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateCustomerProfileRequest {
    /// New email (unique within the store).
    #[serde(default)]
    pub email: Option<String>,
    /// New name.
    #[serde(default)]
    pub full_name: Option<String>,
    /// New phone; `null` removes it.
    #[serde(default, deserialize_with = "patch")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub phone: Option<Option<String>>,
    /// New preferences (replace the old ones).
    #[serde(default)]
    pub preferences: Option<CustomerPreferences>,
}

/// A parsed profile update.
#[derive(Clone, Debug, Default)]
pub struct CustomerProfileUpdate {
    /// Email.
    pub email: Option<Email>,
    /// Name.
    pub full_name: Option<DisplayName>,
    /// Phone (outer: change?, inner: value).
    pub phone: Option<Option<Phone>>,
    /// Preferences.
    pub preferences: Option<CustomerPreferences>,
}

impl UpdateCustomerProfileRequest {
    /// Parses every present field.
    ///
    /// # Errors
    /// The field errors.
    pub fn parse(&self) -> Result<CustomerProfileUpdate, FieldErrors> {
        let mut e = FieldErrors::default();
        if let Some(p) = &self.preferences {
            p.check(&mut e);
        }
        let update = CustomerProfileUpdate {
            email: self
                .email
                .as_deref()
                .and_then(|v| e.check("email", Email::parse(v))),
            full_name: self
                .full_name
                .as_deref()
                .and_then(|v| e.check("full_name", DisplayName::parse(v))),
            phone: match &self.phone {
                None => None,
                Some(None) => Some(None),
                Some(Some(raw)) => e.check("phone", Phone::parse(raw)).map(Some),
            },
            preferences: self.preferences.clone(),
        };
        e.finish(|| Some(update))
    }
}

/// An address as sent by the customer (`POST /api/v1/customers/me/addresses`, and the full
/// replacement in `PATCH .../addresses/{id}`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AddressInput {
    /// A name for it ("Home", "Work").
    #[serde(default)]
    pub label: Option<String>,
    /// Street and number.
    pub address_line1: String,
    /// Flat, floor, building.
    #[serde(default)]
    pub address_line2: Option<String>,
    /// City.
    pub city: String,
    /// Postal code.
    #[serde(default)]
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2 country.
    pub country: String,
    /// Latitude of the door.
    pub latitude: f64,
    /// Longitude of the door.
    pub longitude: f64,
    /// For the courier ("ring twice").
    #[serde(default)]
    pub delivery_instructions: Option<String>,
    /// Make it the default address.
    #[serde(default)]
    pub is_default: bool,
}

/// A parsed address.
#[derive(Clone, Debug)]
pub struct Address {
    /// Label.
    pub label: Option<TextLine>,
    /// Line 1.
    pub address_line1: TextLine,
    /// Line 2.
    pub address_line2: Option<TextLine>,
    /// City.
    pub city: TextLine,
    /// Postal code.
    pub postal_code: Option<TextLine>,
    /// Country.
    pub country: CountryCode,
    /// Where.
    pub location: Coordinates,
    /// Instructions.
    pub delivery_instructions: Option<TextLine>,
    /// Default.
    pub is_default: bool,
}

fn optional(
    e: &mut FieldErrors,
    field: &str,
    raw: &Option<String>,
    max: usize,
) -> Option<Option<TextLine>> {
    match raw.as_deref().map(str::trim) {
        None | Some("") => Some(None),
        Some(text) => e.check(field, TextLine::parse_max(text, max)).map(Some),
    }
}

impl AddressInput {
    /// Parses every field.
    ///
    /// # Errors
    /// All field errors at once.
    pub fn parse(&self) -> Result<Address, FieldErrors> {
        let mut e = FieldErrors::default();
        let label = optional(&mut e, "label", &self.label, 40);
        let line1 = e.check(
            "address_line1",
            TextLine::parse_max(&self.address_line1, 200),
        );
        let line2 = optional(&mut e, "address_line2", &self.address_line2, 200);
        let city = e.check("city", TextLine::parse_max(&self.city, 100));
        let postal_code = optional(&mut e, "postal_code", &self.postal_code, 20);
        let country = e.check("country", CountryCode::parse(&self.country));
        let location = e.check(
            "latitude",
            Coordinates::parse(self.latitude, self.longitude),
        );
        let instructions = optional(
            &mut e,
            "delivery_instructions",
            &self.delivery_instructions,
            500,
        );
        e.finish(|| {
            Some(Address {
                label: label?,
                address_line1: line1?,
                address_line2: line2?,
                city: city?,
                postal_code: postal_code?,
                country: country?,
                location: location?,
                delivery_instructions: instructions?,
                is_default: self.is_default,
            })
        })
    }
}

/// A saved address.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AddressView {
    /// Id.
    pub id: Uuid,
    /// Label.
    pub label: Option<String>,
    /// Line 1.
    pub address_line1: String,
    /// Line 2.
    pub address_line2: Option<String>,
    /// City.
    pub city: String,
    /// Postal code.
    pub postal_code: Option<String>,
    /// Country.
    pub country: String,
    /// Where.
    pub location: Coordinates,
    /// Instructions.
    pub delivery_instructions: Option<String>,
    /// Default address.
    pub is_default: bool,
    /// Whether the store delivers there (inside its delivery radius).
    pub deliverable: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address() -> AddressInput {
        AddressInput {
            label: Some("Home".into()),
            address_line1: "Mannerheimintie 1".into(),
            address_line2: None,
            city: "Helsinki".into(),
            postal_code: Some("00100".into()),
            country: "fi".into(),
            latitude: 60.17,
            longitude: 24.94,
            delivery_instructions: Some("  ".into()),
            is_default: true,
        }
    }

    #[test]
    fn address_parses_and_normalises() {
        let parsed = address().parse().expect("valid");
        assert_eq!(parsed.country.as_str(), "FI");
        assert!(
            parsed.delivery_instructions.is_none(),
            "blank optional text is absent"
        );
    }

    #[test]
    fn address_reports_every_bad_field() {
        let bad = AddressInput {
            address_line1: " ".into(),
            city: "".into(),
            country: "XX".into(),
            latitude: 123.0,
            ..address()
        };
        let fields: Vec<String> = bad
            .parse()
            .expect_err("invalid")
            .0
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["address_line1", "city", "country", "latitude"]);
    }

    #[test]
    fn profile_patch_semantics() {
        let clear: UpdateCustomerProfileRequest =
            serde_json::from_str(r#"{"phone": null}"#).expect("valid");
        assert!(matches!(clear.parse().expect("valid").phone, Some(None)));
        let bad: UpdateCustomerProfileRequest =
            serde_json::from_str(r#"{"email": "nope", "preferences": {"language": "en_US!"}}"#)
                .expect("valid json");
        let fields: Vec<String> = bad
            .parse()
            .expect_err("invalid")
            .0
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["preferences.language", "email"]);
        assert!(
            serde_json::from_str::<UpdateCustomerProfileRequest>(r#"{"loyalty_points": 5}"#)
                .is_err()
        );
    }
}
