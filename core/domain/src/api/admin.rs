//! Platform administration: onboarding businesses, plans, metrics.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::hours::OperatingHours;
use crate::id::{BusinessId, PlanId, SubscriptionId};
use crate::money::{Currency, Money};
use crate::plan::{
    BillingInterval, PlanFeatures, PlanLimits, SubscriptionStatus, MAX_PLATFORM_FEE_BPS,
};
use crate::value::{
    Coordinates, DeliveryRadius, DisplayName, Email, Password, Phone, Slug, Subdomain, TimeZoneName,
};

use super::FieldErrors;

/// A point as sent on the wire.
#[derive(Clone, Copy, Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LocationInput {
    /// Latitude.
    pub latitude: f64,
    /// Longitude.
    pub longitude: f64,
}

/// The first owner of a new business.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct OwnerInput {
    /// Owner's email; an existing staff account is reused.
    pub email: String,
    /// Owner's name.
    pub full_name: String,
    /// Initial password; when absent the welcome email carries a one-time link to choose one.
    #[serde(default)]
    pub password: Option<String>,
}

/// `POST /api/v1/admin/businesses`: onboard a business in one step.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateBusinessRequest {
    /// Business name.
    pub name: String,
    /// Contact email.
    pub contact_email: String,
    /// Contact phone.
    #[serde(default)]
    pub contact_phone: Option<String>,
    /// ISO 4217 currency.
    pub currency: String,
    /// IANA time zone.
    pub time_zone: String,
    /// Delivery radius in metres.
    pub delivery_radius_m: i64,
    /// The store's location (pickup point).
    pub location: LocationInput,
    /// Weekly opening hours (local time); default closed every day.
    #[serde(default)]
    pub operating_hours: Option<OperatingHours>,
    /// Plan key, e.g. `starter`.
    pub plan: String,
    /// Billing interval after the trial.
    #[serde(default)]
    pub billing_interval: Option<BillingInterval>,
    /// The owner.
    pub owner: OwnerInput,
    /// Initial product category names.
    #[serde(default)]
    pub categories: Vec<String>,
    /// The storefront subdomain to reserve.
    pub subdomain: String,
}

/// A parsed onboarding request.
#[derive(Clone, Debug)]
pub struct Onboarding {
    /// Business name.
    pub name: DisplayName,
    /// Contact email.
    pub contact_email: Email,
    /// Contact phone.
    pub contact_phone: Option<Phone>,
    /// Currency.
    pub currency: Currency,
    /// Time zone.
    pub time_zone: TimeZoneName,
    /// Delivery radius.
    pub delivery_radius: DeliveryRadius,
    /// Location.
    pub location: Coordinates,
    /// Opening hours.
    pub operating_hours: OperatingHours,
    /// Plan key.
    pub plan: Slug,
    /// Billing interval.
    pub billing_interval: BillingInterval,
    /// Owner email.
    pub owner_email: Email,
    /// Owner name.
    pub owner_name: DisplayName,
    /// Owner initial password.
    pub owner_password: Option<Password>,
    /// Initial categories: name and derived slug, unique by slug.
    pub categories: Vec<(DisplayName, Slug)>,
    /// Subdomain.
    pub subdomain: Subdomain,
}

impl CreateBusinessRequest {
    /// Parses every field, reporting all errors at once.
    ///
    /// # Errors
    /// The field errors.
    pub fn parse(&self) -> Result<Onboarding, FieldErrors> {
        let mut e = FieldErrors::default();
        let name = e.check("name", DisplayName::parse(&self.name));
        let contact_email = e.check("contact_email", Email::parse(&self.contact_email));
        let contact_phone = match &self.contact_phone {
            Some(raw) => e.check("contact_phone", Phone::parse(raw)).map(Some),
            None => Some(None),
        };
        let currency = match Currency::parse(&self.currency) {
            Ok(c) => Some(c),
            Err(err) => {
                e.push("currency", "unknown_currency", err.to_string());
                None
            }
        };
        let time_zone = e.check("time_zone", TimeZoneName::parse(&self.time_zone));
        let delivery_radius = e.check(
            "delivery_radius_m",
            DeliveryRadius::parse(self.delivery_radius_m),
        );
        let location = e.check(
            "location",
            Coordinates::parse(self.location.latitude, self.location.longitude),
        );
        let operating_hours = self.operating_hours.clone().unwrap_or_default();
        e.check("operating_hours", operating_hours.validate());
        let plan = e.check("plan", Slug::parse(&self.plan));
        let owner_email = e.check("owner.email", Email::parse(&self.owner.email));
        let owner_name = e.check("owner.full_name", DisplayName::parse(&self.owner.full_name));
        let owner_password = match &self.owner.password {
            Some(raw) => e
                .check("owner.password", Password::parse_new(raw))
                .map(Some),
            None => Some(None),
        };
        if self.categories.len() > 50 {
            e.push("categories", "too_many", "at most 50 initial categories");
        }
        let mut categories: Vec<(DisplayName, Slug)> = Vec::new();
        for (i, raw) in self.categories.iter().enumerate() {
            let field = format!("categories[{i}]");
            let Some(name) = e.check(&field, DisplayName::parse(raw)) else {
                continue;
            };
            let Some(slug) = e.check(&field, Slug::from_name(name.as_str())) else {
                continue;
            };
            if categories.iter().any(|(_, s)| *s == slug) {
                e.push(
                    &field,
                    "duplicate",
                    format!("category {:?} is listed twice", name.as_str()),
                );
                continue;
            }
            categories.push((name, slug));
        }
        let subdomain = e.check("subdomain", Subdomain::parse(&self.subdomain));
        e.finish(|| {
            Some(Onboarding {
                name: name?,
                contact_email: contact_email?,
                contact_phone: contact_phone?,
                currency: currency?,
                time_zone: time_zone?,
                delivery_radius: delivery_radius?,
                location: location?,
                operating_hours,
                plan: plan?,
                billing_interval: self.billing_interval.unwrap_or(BillingInterval::Monthly),
                owner_email: owner_email?,
                owner_name: owner_name?,
                owner_password: owner_password?,
                categories,
                subdomain: subdomain?,
            })
        })
    }
}

/// Whether a business may operate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BusinessStatus {
    /// Operating.
    Active,
    /// Suspended by the platform: staff and customers are locked out.
    Suspended,
}

impl BusinessStatus {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
        }
    }

    /// Parses the stored form.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "active" => Some(Self::Active),
            "suspended" => Some(Self::Suspended),
            _ => None,
        }
    }
}

/// A business's subscription.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SubscriptionView {
    /// Subscription id.
    pub id: SubscriptionId,
    /// The plan's key.
    pub plan: String,
    /// Life-cycle status.
    pub status: SubscriptionStatus,
    /// Billing interval.
    pub billing_interval: BillingInterval,
    /// Current period start.
    pub current_period_start: DateTime<Utc>,
    /// Current period end.
    pub current_period_end: DateTime<Utc>,
}

/// A business as the platform admin sees it.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BusinessView {
    /// Id.
    pub id: BusinessId,
    /// Name.
    pub name: String,
    /// Status.
    pub status: BusinessStatus,
    /// Contact email.
    pub contact_email: String,
    /// Contact phone.
    pub contact_phone: Option<String>,
    /// Currency.
    pub currency: Currency,
    /// Time zone.
    pub time_zone: String,
    /// Delivery radius in metres.
    pub delivery_radius_m: i64,
    /// Location.
    pub location: Coordinates,
    /// Storefront subdomain.
    pub subdomain: String,
    /// Storefront URL.
    pub storefront_url: String,
    /// Current subscription.
    pub subscription: Option<SubscriptionView>,
    /// Created at.
    pub created_at: DateTime<Utc>,
}

/// A page of businesses.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BusinessPage {
    /// The businesses, newest first.
    pub items: Vec<BusinessView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// `PATCH /api/v1/admin/businesses/:id`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateBusinessRequest {
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New contact email.
    #[serde(default)]
    pub contact_email: Option<String>,
    /// New contact phone.
    #[serde(default)]
    pub contact_phone: Option<String>,
    /// Suspend or reactivate.
    #[serde(default)]
    pub status: Option<BusinessStatus>,
    /// Move to another plan (key).
    #[serde(default)]
    pub plan: Option<String>,
    /// Change billing interval.
    #[serde(default)]
    pub billing_interval: Option<BillingInterval>,
    /// New time zone.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// New delivery radius.
    #[serde(default)]
    pub delivery_radius_m: Option<i64>,
}

/// A parsed business update.
#[derive(Clone, Debug, Default)]
pub struct BusinessUpdate {
    /// New name.
    pub name: Option<DisplayName>,
    /// New contact email.
    pub contact_email: Option<Email>,
    /// New contact phone.
    pub contact_phone: Option<Phone>,
    /// New status.
    pub status: Option<BusinessStatus>,
    /// New plan.
    pub plan: Option<Slug>,
    /// New interval.
    pub billing_interval: Option<BillingInterval>,
    /// New zone.
    pub time_zone: Option<TimeZoneName>,
    /// New radius.
    pub delivery_radius: Option<DeliveryRadius>,
}

impl UpdateBusinessRequest {
    /// Parses every present field.
    ///
    /// # Errors
    /// The field errors.
    pub fn parse(&self) -> Result<BusinessUpdate, FieldErrors> {
        let mut e = FieldErrors::default();
        let update = BusinessUpdate {
            name: self
                .name
                .as_deref()
                .and_then(|v| e.check("name", DisplayName::parse(v))),
            contact_email: self
                .contact_email
                .as_deref()
                .and_then(|v| e.check("contact_email", Email::parse(v))),
            contact_phone: self
                .contact_phone
                .as_deref()
                .and_then(|v| e.check("contact_phone", Phone::parse(v))),
            status: self.status,
            plan: self
                .plan
                .as_deref()
                .and_then(|v| e.check("plan", Slug::parse(v))),
            billing_interval: self.billing_interval,
            time_zone: self
                .time_zone
                .as_deref()
                .and_then(|v| e.check("time_zone", TimeZoneName::parse(v))),
            delivery_radius: self
                .delivery_radius_m
                .and_then(|v| e.check("delivery_radius_m", DeliveryRadius::parse(v))),
        };
        e.finish(|| Some(update))
    }
}

/// A subscription plan.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlanView {
    /// Id.
    pub id: PlanId,
    /// Stable key, e.g. `growth`.
    pub key: String,
    /// Display name.
    pub name: String,
    /// Monthly price.
    pub price_monthly: Money,
    /// Yearly price.
    pub price_yearly: Money,
    /// Feature switches.
    pub features: PlanFeatures,
    /// Limits.
    pub limits: PlanLimits,
    /// The platform's fee on every completed order, in basis points (100 = 1 %); copied into
    /// a subscription when it starts or changes plan.
    pub platform_fee_bps: i64,
    /// Whether new businesses may choose it.
    pub is_active: bool,
}

/// `POST /api/v1/admin/plans`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreatePlanRequest {
    /// Stable key.
    pub key: String,
    /// Display name.
    pub name: String,
    /// Currency of the prices.
    pub currency: String,
    /// Monthly price, minor units.
    pub price_monthly_minor: i64,
    /// Yearly price, minor units.
    pub price_yearly_minor: i64,
    /// Feature switches.
    #[serde(default)]
    pub features: PlanFeatures,
    /// Limits.
    #[serde(default)]
    pub limits: PlanLimits,
    /// The platform's fee on every completed order, in basis points (0 to 10,000); the
    /// starter rate (500) when left out.
    #[serde(default)]
    pub platform_fee_bps: Option<i64>,
}

/// A parsed new plan.
#[derive(Clone, Debug)]
pub struct NewPlan {
    /// Key.
    pub key: Slug,
    /// Name.
    pub name: DisplayName,
    /// Monthly price.
    pub price_monthly: Money,
    /// Yearly price.
    pub price_yearly: Money,
    /// Features.
    pub features: PlanFeatures,
    /// Limits.
    pub limits: PlanLimits,
    /// Platform fee, basis points.
    pub platform_fee_bps: i64,
}

/// The platform fee of a new plan that names none: the starter plan's.
pub const DEFAULT_PLATFORM_FEE_BPS: i64 = 500;

fn check_fee(e: &mut FieldErrors, bps: i64) -> Option<i64> {
    if (0..=MAX_PLATFORM_FEE_BPS).contains(&bps) {
        Some(bps)
    } else {
        e.push(
            "platform_fee_bps",
            "out_of_range",
            format!("the platform fee must be between 0 and {MAX_PLATFORM_FEE_BPS} basis points"),
        );
        None
    }
}

fn check_price(e: &mut FieldErrors, field: &str, minor: i64) -> Option<i64> {
    if (0..=10_000_000_000).contains(&minor) {
        Some(minor)
    } else {
        e.push(
            field,
            "out_of_range",
            "price must be between 0 and 10000000000 minor units",
        );
        None
    }
}

impl CreatePlanRequest {
    /// Parses every field.
    ///
    /// # Errors
    /// The field errors.
    pub fn parse(&self) -> Result<NewPlan, FieldErrors> {
        let mut e = FieldErrors::default();
        let key = e.check("key", Slug::parse(&self.key));
        let name = e.check("name", DisplayName::parse(&self.name));
        let currency = match Currency::parse(&self.currency) {
            Ok(c) => Some(c),
            Err(err) => {
                e.push("currency", "unknown_currency", err.to_string());
                None
            }
        };
        let monthly = check_price(&mut e, "price_monthly_minor", self.price_monthly_minor);
        let yearly = check_price(&mut e, "price_yearly_minor", self.price_yearly_minor);
        let fee = check_fee(
            &mut e,
            self.platform_fee_bps.unwrap_or(DEFAULT_PLATFORM_FEE_BPS),
        );
        e.finish(|| {
            let currency = currency?;
            Some(NewPlan {
                key: key?,
                name: name?,
                price_monthly: Money::new(monthly?, currency),
                price_yearly: Money::new(yearly?, currency),
                features: self.features.clone(),
                limits: self.limits.clone(),
                platform_fee_bps: fee?,
            })
        })
    }
}

/// `PATCH /api/v1/admin/plans/:id`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdatePlanRequest {
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New monthly price, minor units (same currency).
    #[serde(default)]
    pub price_monthly_minor: Option<i64>,
    /// New yearly price, minor units.
    #[serde(default)]
    pub price_yearly_minor: Option<i64>,
    /// New features.
    #[serde(default)]
    pub features: Option<PlanFeatures>,
    /// New limits; replaces all of them (a limit left out becomes unlimited).
    #[serde(default)]
    pub limits: Option<PlanLimits>,
    /// New platform fee, basis points (0 to 10,000). Existing subscriptions keep their rate
    /// until they change plan.
    #[serde(default)]
    pub platform_fee_bps: Option<i64>,
    /// Offer or withdraw the plan.
    #[serde(default)]
    pub is_active: Option<bool>,
}

/// A parsed plan update.
#[derive(Clone, Debug, Default)]
pub struct PlanUpdate {
    /// Name.
    pub name: Option<DisplayName>,
    /// Monthly price, minor units.
    pub price_monthly_minor: Option<i64>,
    /// Yearly price, minor units.
    pub price_yearly_minor: Option<i64>,
    /// Features.
    pub features: Option<PlanFeatures>,
    /// Limits.
    pub limits: Option<PlanLimits>,
    /// Platform fee, basis points.
    pub platform_fee_bps: Option<i64>,
    /// Active.
    pub is_active: Option<bool>,
}

impl UpdatePlanRequest {
    /// Parses every present field.
    ///
    /// # Errors
    /// The field errors.
    pub fn parse(&self) -> Result<PlanUpdate, FieldErrors> {
        let mut e = FieldErrors::default();
        let update = PlanUpdate {
            name: self
                .name
                .as_deref()
                .and_then(|v| e.check("name", DisplayName::parse(v))),
            price_monthly_minor: self
                .price_monthly_minor
                .and_then(|v| check_price(&mut e, "price_monthly_minor", v)),
            price_yearly_minor: self
                .price_yearly_minor
                .and_then(|v| check_price(&mut e, "price_yearly_minor", v)),
            features: self.features.clone(),
            limits: self.limits.clone(),
            platform_fee_bps: self.platform_fee_bps.and_then(|v| check_fee(&mut e, v)),
            is_active: self.is_active,
        };
        e.finish(|| Some(update))
    }
}

/// `GET /api/v1/admin/platform-metrics`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlatformMetrics {
    /// All businesses.
    pub businesses_total: i64,
    /// Active businesses.
    pub businesses_active: i64,
    /// Suspended businesses.
    pub businesses_suspended: i64,
    /// Businesses per plan key (current subscriptions).
    pub businesses_by_plan: BTreeMap<String, i64>,
    /// Subscriptions per status.
    pub subscriptions_by_status: BTreeMap<String, i64>,
    /// Staff accounts.
    pub staff_accounts: i64,
    /// Driver accounts.
    pub driver_accounts: i64,
    /// Customer accounts across all stores.
    pub customers: i64,
    /// Published storefronts.
    pub storefronts_published: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(fee: Option<i64>) -> CreatePlanRequest {
        CreatePlanRequest {
            key: "pro".into(),
            name: "Pro".into(),
            currency: "EUR".into(),
            price_monthly_minor: 1000,
            price_yearly_minor: 10000,
            features: PlanFeatures::default(),
            limits: PlanLimits::default(),
            platform_fee_bps: fee,
        }
    }

    #[test]
    fn plan_platform_fees_are_basis_points_of_at_most_everything() {
        let fee = |bps| plan(bps).parse().map(|p| p.platform_fee_bps);
        assert_eq!(fee(None).ok(), Some(DEFAULT_PLATFORM_FEE_BPS));
        assert_eq!(fee(Some(0)).ok(), Some(0));
        assert_eq!(fee(Some(10_000)).ok(), Some(10_000));
        for bad in [-1, 10_001, i64::MAX] {
            let errors = fee(Some(bad)).expect_err("out of range");
            assert_eq!(errors.0[0].field, "platform_fee_bps", "{bad}");
        }
        let update = |bps| {
            UpdatePlanRequest {
                platform_fee_bps: Some(bps),
                ..UpdatePlanRequest::default()
            }
            .parse()
            .map(|u| u.platform_fee_bps)
        };
        assert_eq!(update(250).ok(), Some(Some(250)));
        assert!(update(-5).is_err());
        assert!(update(20_000).is_err());
    }
}
