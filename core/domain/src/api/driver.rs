//! Drivers on the wire: the driver's own profile, documents, schedule and availability; the
//! platform admin's driver list, review and assignment requests; a business's dedicated drivers
//! and dispatch settings. Requests parse into the rules of [`crate::driver`].
//!
//! Bank details travel in one direction only: a driver sends the account number, and every
//! answer carries its last four characters at most.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::FieldErrors;
use crate::driver::{
    self, BankAccount, Blocker, DocumentKind, DocumentStatus, DriverStatus, InsurancePolicy,
    LicenseNumber, Plate, Priority, Schedule, ScheduleError, VehicleType, Window,
};
use crate::earnings::{self, EarningsRules};
use crate::money::{Currency, Money};
use crate::value::TimeZoneName;

/// A driver's profile, as the driver and platform admins see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DriverProfileView {
    /// The driver's account id.
    pub id: Uuid,
    /// Sign-in email.
    pub email: String,
    /// Name.
    pub full_name: String,
    /// Phone (E.164).
    pub phone: Option<String>,
    /// Where the account stands with the platform.
    pub status: DriverStatus,
    /// Vehicle.
    pub vehicle_type: Option<VehicleType>,
    /// Registration plate (none for bicycles).
    pub vehicle_plate: Option<String>,
    /// Driving licence number.
    pub license_number: Option<String>,
    /// Licence expiry date.
    pub license_expires_on: Option<NaiveDate>,
    /// Insurance policy number.
    pub insurance_policy: Option<String>,
    /// Insurance expiry date.
    pub insurance_expires_on: Option<NaiveDate>,
    /// The driver's IANA time zone (availability windows are read in it).
    pub time_zone: String,
    /// The last four characters of the bank account, when one is on file; the account itself
    /// is stored encrypted and never returned.
    pub bank_account_last4: Option<String>,
    /// Average rating in tenths of a star (45 = 4.5), once rated.
    pub rating_tenths: Option<i64>,
    /// Whether the driver is online.
    pub is_online: bool,
    /// Since when.
    pub online_since: Option<DateTime<Utc>>,
    /// When a platform admin approved the driver.
    pub approved_at: Option<DateTime<Utc>>,
    /// Why the driver was rejected, if they were.
    pub rejection_reason: Option<String>,
    /// What keeps the driver from going online today; empty when they may.
    pub blockers: Vec<Blocker>,
    /// Registration time.
    pub created_at: DateTime<Utc>,
}

/// `PATCH /api/v1/driver/profile`: absent fields stay as they are. `bank_account` is sealed
/// before it is stored and never echoed back.
#[derive(Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateDriverProfileRequest {
    /// Vehicle.
    #[serde(default)]
    pub vehicle_type: Option<VehicleType>,
    /// Registration plate, 2–12 letters, digits, spaces or hyphens.
    #[serde(default)]
    pub vehicle_plate: Option<String>,
    /// Driving licence number, 4–32 characters.
    #[serde(default)]
    pub license_number: Option<String>,
    /// Licence expiry date (not in the past).
    #[serde(default)]
    pub license_expires_on: Option<NaiveDate>,
    /// Insurance policy number, 3–64 characters.
    #[serde(default)]
    pub insurance_policy: Option<String>,
    /// Insurance expiry date (not in the past).
    #[serde(default)]
    pub insurance_expires_on: Option<NaiveDate>,
    /// IANA time zone, e.g. `Europe/Helsinki`.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// Bank account (IBAN or domestic number), 8–34 letters and digits.
    #[serde(default)]
    pub bank_account: Option<String>,
}

impl std::fmt::Debug for UpdateDriverProfileRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The bank account stays out of any log.
        f.debug_struct("UpdateDriverProfileRequest")
            .field("vehicle_type", &self.vehicle_type)
            .field("vehicle_plate", &self.vehicle_plate)
            .field("time_zone", &self.time_zone)
            .field("bank_account", &self.bank_account.as_ref().map(|_| "…"))
            .finish_non_exhaustive()
    }
}

/// A parsed profile change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProfileChanges {
    /// Vehicle.
    pub vehicle_type: Option<VehicleType>,
    /// Plate.
    pub vehicle_plate: Option<Plate>,
    /// Licence number.
    pub license_number: Option<LicenseNumber>,
    /// Licence expiry.
    pub license_expires_on: Option<NaiveDate>,
    /// Policy number.
    pub insurance_policy: Option<InsurancePolicy>,
    /// Insurance expiry.
    pub insurance_expires_on: Option<NaiveDate>,
    /// Time zone.
    pub time_zone: Option<TimeZoneName>,
    /// Bank account (to be sealed).
    pub bank_account: Option<BankAccount>,
}

impl ProfileChanges {
    /// The names of the fields that change (for the audit log: names, never values).
    pub fn fields(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        let mut add = |present: bool, name| {
            if present {
                out.push(name);
            }
        };
        add(self.vehicle_type.is_some(), "vehicle_type");
        add(self.vehicle_plate.is_some(), "vehicle_plate");
        add(self.license_number.is_some(), "license_number");
        add(self.license_expires_on.is_some(), "license_expires_on");
        add(self.insurance_policy.is_some(), "insurance_policy");
        add(self.insurance_expires_on.is_some(), "insurance_expires_on");
        add(self.time_zone.is_some(), "time_zone");
        add(self.bank_account.is_some(), "bank_account");
        out
    }
}

impl UpdateDriverProfileRequest {
    /// Parses the change; expiry dates are judged against `today` (the driver's local date).
    ///
    /// # Errors
    /// Every field error at once.
    pub fn parse(&self, today: NaiveDate) -> Result<ProfileChanges, FieldErrors> {
        let mut errors = FieldErrors::default();
        let mut changes = ProfileChanges {
            vehicle_type: self.vehicle_type,
            ..ProfileChanges::default()
        };
        if let Some(raw) = &self.vehicle_plate {
            changes.vehicle_plate = errors.check("vehicle_plate", Plate::parse(raw));
        }
        if let Some(raw) = &self.license_number {
            changes.license_number = errors.check("license_number", LicenseNumber::parse(raw));
        }
        if let Some(on) = self.license_expires_on {
            errors.check("license_expires_on", driver::check_not_expired(on, today));
            changes.license_expires_on = Some(on);
        }
        if let Some(raw) = &self.insurance_policy {
            changes.insurance_policy =
                errors.check("insurance_policy", InsurancePolicy::parse(raw));
        }
        if let Some(on) = self.insurance_expires_on {
            errors.check("insurance_expires_on", driver::check_not_expired(on, today));
            changes.insurance_expires_on = Some(on);
        }
        if let Some(raw) = &self.time_zone {
            changes.time_zone = errors.check("time_zone", TimeZoneName::parse(raw));
        }
        if let Some(raw) = &self.bank_account {
            changes.bank_account = errors.check("bank_account", BankAccount::parse(raw));
        }
        if errors.is_empty() {
            Ok(changes)
        } else {
            Err(errors)
        }
    }
}

/// A driver's document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DriverDocumentView {
    /// Id.
    pub id: Uuid,
    /// What it is.
    pub kind: DocumentKind,
    /// `image/jpeg`, `image/png` or `application/pdf` (judged from the bytes).
    pub content_type: String,
    /// Size in bytes.
    pub byte_size: i64,
    /// SHA-256 of the bytes (hex).
    pub content_hash: String,
    /// Review status.
    pub status: DocumentStatus,
    /// Why it was rejected.
    pub rejection_reason: Option<String>,
    /// Upload time.
    pub uploaded_at: DateTime<Utc>,
    /// Review time.
    pub reviewed_at: Option<DateTime<Utc>>,
}

/// `POST /api/v1/driver/documents` (`multipart/form-data`).
#[derive(Clone, Debug)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadDocumentForm {
    /// The document: JPEG, PNG or PDF (judged from its bytes), at most 10 MiB.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Binary))]
    pub file: Vec<u8>,
    /// What it is.
    pub kind: DocumentKind,
}

/// One availability window on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct WindowView {
    /// 0 = Monday … 6 = Sunday.
    pub day_of_week: i64,
    /// Start, `HH:MM`, local time.
    pub start: String,
    /// End (exclusive), `HH:MM`, local time; `24:00` for the end of the day.
    pub end: String,
}

impl From<&Window> for WindowView {
    fn from(w: &Window) -> Self {
        WindowView {
            day_of_week: i64::from(w.day()),
            start: driver::format_time(w.start()),
            end: driver::format_time(w.end()),
        }
    }
}

/// `PUT /api/v1/driver/schedule`: the whole week, replacing the windows on file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PutScheduleRequest {
    /// At most 21 windows, none overlapping another on its day.
    pub windows: Vec<WindowView>,
}

impl PutScheduleRequest {
    /// Parses the week.
    ///
    /// # Errors
    /// Field errors named `windows[i].…` (or `windows` for too many).
    pub fn parse(&self) -> Result<Schedule, FieldErrors> {
        let mut errors = FieldErrors::default();
        if self.windows.len() > driver::MAX_WINDOWS {
            let e = ScheduleError::TooMany;
            errors.push("windows", e.code(), e.to_string());
            return Err(errors);
        }
        let mut windows = Vec::with_capacity(self.windows.len());
        for (i, w) in self.windows.iter().enumerate() {
            match Window::parse(w.day_of_week, &w.start, &w.end) {
                Ok(window) => windows.push(window),
                Err(e) => {
                    let field = match e {
                        ScheduleError::DayOutOfRange(_) => "day_of_week",
                        ScheduleError::EndNotAfterStart => "end",
                        _ => "start",
                    };
                    errors.push(&format!("windows[{i}].{field}"), e.code(), e.to_string());
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Schedule::new(windows).map_err(|e| {
            let field = match &e {
                ScheduleError::Overlap { index, .. } => format!("windows[{index}]"),
                _ => "windows".to_owned(),
            };
            let mut errors = FieldErrors::default();
            errors.push(&field, e.code(), e.to_string());
            errors
        })
    }
}

/// A business a driver is dedicated to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DriverAssignmentView {
    /// The business.
    pub business_id: Uuid,
    /// Its name (when the caller may see it).
    pub business_name: Option<String>,
    /// 1 = asked first.
    pub priority: i64,
    /// Since when.
    pub created_at: DateTime<Utc>,
}

/// `GET /api/v1/driver/schedule`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScheduleView {
    /// The zone the windows are read in.
    pub time_zone: String,
    /// The week, by day and start.
    pub windows: Vec<WindowView>,
    /// Whether now falls inside a window.
    pub in_window_now: bool,
    /// Whether the driver is online.
    pub is_online: bool,
    /// Since when.
    pub online_since: Option<DateTime<Utc>>,
    /// Businesses the driver is dedicated to, by priority.
    pub dedicated_businesses: Vec<DriverAssignmentView>,
    /// What keeps the driver from going online; empty when they may.
    pub blockers: Vec<Blocker>,
}

/// `PATCH /api/v1/driver/availability`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AvailabilityRequest {
    /// `true` to go online, `false` to go offline.
    pub online: bool,
}

/// A driver in the admin list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DriverSummary {
    /// Account id.
    pub id: Uuid,
    /// Email.
    pub email: String,
    /// Name.
    pub full_name: String,
    /// Status.
    pub status: DriverStatus,
    /// Vehicle.
    pub vehicle_type: Option<VehicleType>,
    /// Online now.
    pub is_online: bool,
    /// Rating in tenths.
    pub rating_tenths: Option<i64>,
    /// Documents waiting for review.
    pub pending_documents: i64,
    /// Registration time.
    pub created_at: DateTime<Utc>,
}

/// A page of drivers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DriverPage {
    /// Drivers, newest first.
    pub items: Vec<DriverSummary>,
    /// Cursor of the next page.
    pub next_cursor: Option<String>,
}

/// One driver in full, for a platform admin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdminDriverView {
    /// The profile.
    pub profile: DriverProfileView,
    /// Documents, newest first.
    pub documents: Vec<DriverDocumentView>,
    /// The week.
    pub windows: Vec<WindowView>,
    /// Dedicated businesses.
    pub assignments: Vec<DriverAssignmentView>,
}

/// `POST /api/v1/admin/drivers/{id}/reject`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RejectDriverRequest {
    /// Why (shown to the driver), 1–500 characters.
    pub reason: String,
}

impl RejectDriverRequest {
    /// Parses the reason.
    ///
    /// # Errors
    /// `reason` blank or too long.
    pub fn parse(&self) -> Result<String, FieldErrors> {
        let mut errors = FieldErrors::default();
        let reason = errors.check("reason", driver::parse_reason(&self.reason));
        errors.finish(|| reason)
    }
}

/// What an admin decides about a document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DocumentDecision {
    /// Accept it.
    Approved,
    /// Refuse it (a reason is required).
    Rejected,
}

/// `PATCH /api/v1/admin/drivers/{id}/documents/{doc_id}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReviewDocumentRequest {
    /// The decision.
    pub status: DocumentDecision,
    /// Why, when rejecting.
    #[serde(default)]
    pub reason: Option<String>,
}

impl ReviewDocumentRequest {
    /// Parses the decision: a rejection needs a reason, an approval takes none.
    ///
    /// # Errors
    /// `reason` missing, blank, too long, or given with an approval.
    pub fn parse(&self) -> Result<(DocumentStatus, Option<String>), FieldErrors> {
        let mut errors = FieldErrors::default();
        match (self.status, &self.reason) {
            (DocumentDecision::Approved, None) => Ok((DocumentStatus::Approved, None)),
            (DocumentDecision::Approved, Some(_)) => {
                errors.push("reason", "not_allowed", "an approval takes no reason");
                Err(errors)
            }
            (DocumentDecision::Rejected, None) => {
                errors.push("reason", "required", "give a reason for the rejection");
                Err(errors)
            }
            (DocumentDecision::Rejected, Some(raw)) => {
                let reason = errors.check("reason", driver::parse_reason(raw));
                errors.finish(|| reason.map(|r| (DocumentStatus::Rejected, Some(r))))
            }
        }
    }
}

/// `POST /api/v1/admin/drivers/{id}/assign`: dedicates the driver to a business.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AssignDriverRequest {
    /// The business.
    pub business_id: Uuid,
    /// 1 (asked first) to 10.
    pub priority: i64,
}

impl AssignDriverRequest {
    /// Parses the priority.
    ///
    /// # Errors
    /// `priority` outside 1–10.
    pub fn parse(&self) -> Result<Priority, FieldErrors> {
        let mut errors = FieldErrors::default();
        let priority = errors.check("priority", Priority::new(self.priority));
        errors.finish(|| priority)
    }
}

/// A dedicated driver, as its business sees them (no documents, no bank details).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BusinessDriverView {
    /// The driver's account id.
    pub driver_id: Uuid,
    /// Name.
    pub full_name: String,
    /// Phone.
    pub phone: Option<String>,
    /// Vehicle.
    pub vehicle_type: Option<VehicleType>,
    /// 1 = asked first.
    pub priority: i64,
    /// Online now.
    pub is_online: bool,
    /// Since when.
    pub online_since: Option<DateTime<Utc>>,
    /// Rating in tenths.
    pub rating_tenths: Option<i64>,
}

/// A business's dispatch settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DispatchSettingsView {
    /// Whether orders may go to the platform's shared driver pool.
    pub shared_pool_opt_in: bool,
    /// Whether the plan includes the shared pool.
    pub shared_pool_available: bool,
    /// Seconds a driver has to accept an offer (10–300).
    pub offer_timeout_secs: i64,
    /// Whether a delivery needs a proof photo before it is marked delivered.
    pub require_proof_photo: bool,
    /// Most cash a driver may hold before cash orders stop, in minor units.
    pub cash_cap_minor: i64,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// `PATCH /api/v1/business/dispatch-settings`: absent fields stay.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateDispatchSettingsRequest {
    /// Opt in to the shared pool (the plan must include it).
    #[serde(default)]
    pub shared_pool_opt_in: Option<bool>,
    /// 10–300 seconds.
    #[serde(default)]
    pub offer_timeout_secs: Option<i64>,
    /// Require a proof photo.
    #[serde(default)]
    pub require_proof_photo: Option<bool>,
    /// Cash cap in minor units, 0 to 100,000,000.
    #[serde(default)]
    pub cash_cap_minor: Option<i64>,
}

/// The largest cash cap accepted, in minor units.
pub const MAX_CASH_CAP_MINOR: i64 = 100_000_000;

impl UpdateDispatchSettingsRequest {
    /// Checks the bounds.
    ///
    /// # Errors
    /// Every out-of-range field.
    pub fn parse(&self) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::default();
        if let Some(secs) = self.offer_timeout_secs {
            if !driver::OFFER_TIMEOUT_SECS.contains(&secs) {
                errors.push(
                    "offer_timeout_secs",
                    "out_of_range",
                    "the offer timeout must be 10 to 300 seconds",
                );
            }
        }
        if let Some(cap) = self.cash_cap_minor {
            if !(0..=MAX_CASH_CAP_MINOR).contains(&cap) {
                errors.push(
                    "cash_cap_minor",
                    "out_of_range",
                    format!("the cash cap must be 0 to {MAX_CASH_CAP_MINOR}"),
                );
            }
        }
        if errors.is_empty() {
            Ok(self.clone())
        } else {
            Err(errors)
        }
    }
}

/// The platform's pay rates for drivers in one currency
/// (`GET /api/v1/admin/driver-rates`, `GET /api/v1/driver/rates`). A currency without rates pays
/// drivers the delivery fee and the tip whole ([`crate::earnings::EarningsRules::pass_through`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DriverPayRatesView {
    /// The currency the rates are in (ISO 4217).
    pub currency: Currency,
    /// Paid per kilometre beyond `included_metres`, in minor units.
    pub per_km_minor: i64,
    /// Metres the delivery fee already pays for.
    pub included_metres: i64,
    /// The platform's commission on the fees and the surge (never the tip), in basis points.
    pub commission_bps: i64,
    /// The surge multiplier in basis points (10 000 = ×1.0).
    pub surge_bps: i64,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// The largest rate per kilometre accepted, in minor units.
pub const MAX_PER_KM_MINOR: i64 = 1_000_000;
/// The largest included distance accepted, in metres.
pub const MAX_INCLUDED_METRES: i64 = 100_000;

/// `PUT /api/v1/admin/driver-rates/{currency}`: the currency's rates, replacing those on file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PutDriverPayRatesRequest {
    /// Per kilometre beyond the included distance, 0 to 1,000,000 minor units.
    pub per_km_minor: i64,
    /// Metres the delivery fee pays for, 0 to 100,000.
    pub included_metres: i64,
    /// The platform's commission, 0 to 10,000 basis points.
    pub commission_bps: i64,
    /// The surge, 10,000 (×1.0) to 50,000 (×5.0) basis points.
    pub surge_bps: i64,
}

/// Parsed driver pay rates: the earnings rules of one currency and its surge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DriverPayRates {
    /// The rules [`crate::earnings::compute`] applies (their currency is the rates').
    pub rules: EarningsRules,
    /// The surge multiplier in basis points, within
    /// [`earnings::NO_SURGE_BPS`]..=[`earnings::MAX_SURGE_BPS`].
    pub surge_bps: i64,
}

impl PutDriverPayRatesRequest {
    /// Parses the rates for `currency` (the path's code, which must be one the platform
    /// supports; field `currency`).
    ///
    /// # Errors
    /// Every field error at once: `currency` unknown, a value out of range.
    pub fn parse(&self, currency: &str) -> Result<DriverPayRates, FieldErrors> {
        let mut errors = FieldErrors::default();
        let currency = match Currency::parse(currency) {
            Ok(currency) => Some(currency),
            Err(e) => {
                errors.push("currency", "unknown_currency", e.to_string());
                None
            }
        };
        let mut range = |field: &str, value: i64, min: i64, max: i64| {
            if !(min..=max).contains(&value) {
                errors.push(
                    field,
                    "out_of_range",
                    format!("{field} must be {min} to {max}, not {value}"),
                );
            }
        };
        range("per_km_minor", self.per_km_minor, 0, MAX_PER_KM_MINOR);
        range(
            "included_metres",
            self.included_metres,
            0,
            MAX_INCLUDED_METRES,
        );
        range("commission_bps", self.commission_bps, 0, 10_000);
        range(
            "surge_bps",
            self.surge_bps,
            earnings::NO_SURGE_BPS,
            earnings::MAX_SURGE_BPS,
        );
        errors.finish(|| {
            Some(DriverPayRates {
                rules: EarningsRules {
                    per_km: Money::new(self.per_km_minor, currency?),
                    included_metres: u32::try_from(self.included_metres).ok()?,
                    commission_bps: self.commission_bps,
                },
                surge_bps: self.surge_bps,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_errors_name_the_window() {
        let w = |d: i64, s: &str, e: &str| WindowView {
            day_of_week: d,
            start: s.into(),
            end: e.into(),
        };
        let bad = PutScheduleRequest {
            windows: vec![
                w(0, "09:00", "12:00"),
                w(9, "09:00", "10:00"),
                w(1, "10:00", "09:00"),
            ],
        }
        .parse()
        .expect_err("invalid");
        let fields: Vec<_> = bad.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["windows[1].day_of_week", "windows[2].end"]);
        let overlap = PutScheduleRequest {
            windows: vec![w(0, "09:00", "12:00"), w(0, "11:00", "13:00")],
        }
        .parse()
        .expect_err("overlap");
        assert_eq!(overlap.0[0].field, "windows[1]");
        assert_eq!(overlap.0[0].code, "overlap");
    }

    #[test]
    fn profile_changes_collect_every_error_and_hide_the_account() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 25).expect("valid");
        let req = UpdateDriverProfileRequest {
            vehicle_plate: Some("#".into()),
            license_expires_on: NaiveDate::from_ymd_opt(2020, 1, 1),
            bank_account: Some("FI2112345600000785".into()),
            ..UpdateDriverProfileRequest::default()
        };
        assert!(!format!("{req:?}").contains("0785"));
        let errors = req.parse(today).expect_err("invalid");
        assert_eq!(errors.0.len(), 2);
        let ok = UpdateDriverProfileRequest {
            bank_account: Some("FI2112345600000785".into()),
            time_zone: Some("Europe/Helsinki".into()),
            ..UpdateDriverProfileRequest::default()
        }
        .parse(today)
        .expect("valid");
        assert_eq!(ok.fields(), ["time_zone", "bank_account"]);
    }

    #[test]
    fn document_review_needs_a_reason_to_reject() {
        let parse = |status, reason: Option<&str>| {
            ReviewDocumentRequest {
                status,
                reason: reason.map(str::to_owned),
            }
            .parse()
        };
        assert!(parse(DocumentDecision::Approved, None).is_ok());
        assert!(parse(DocumentDecision::Approved, Some("x")).is_err());
        assert!(parse(DocumentDecision::Rejected, None).is_err());
        assert_eq!(
            parse(DocumentDecision::Rejected, Some(" blurry ")),
            Ok((DocumentStatus::Rejected, Some("blurry".into())))
        );
    }

    #[test]
    fn pay_rates_parse_within_the_tables_ranges() {
        let req = |per_km, included, commission, surge| PutDriverPayRatesRequest {
            per_km_minor: per_km,
            included_metres: included,
            commission_bps: commission,
            surge_bps: surge,
        };
        let eur = Currency::parse("EUR").expect("known");
        let rates = req(120, 2_000, 1_500, 12_500).parse("EUR").expect("valid");
        assert_eq!(rates.rules.per_km, Money::new(120, eur));
        assert_eq!(
            (
                rates.rules.included_metres,
                rates.rules.commission_bps,
                rates.surge_bps
            ),
            (2_000, 1_500, 12_500)
        );
        // The edges of every range are accepted.
        assert!(req(0, 0, 0, 10_000).parse("JPY").is_ok());
        assert!(req(MAX_PER_KM_MINOR, MAX_INCLUDED_METRES, 10_000, 50_000)
            .parse("KWD")
            .is_ok());
        // Every problem at once, each under its field.
        let errors = req(-1, 100_001, 10_001, 9_999)
            .parse("eur")
            .expect_err("invalid");
        let fields: Vec<_> = errors
            .0
            .iter()
            .map(|e| (e.field.as_str(), e.code.as_str()))
            .collect();
        assert_eq!(
            fields,
            [
                ("currency", "unknown_currency"),
                ("per_km_minor", "out_of_range"),
                ("included_metres", "out_of_range"),
                ("commission_bps", "out_of_range"),
                ("surge_bps", "out_of_range"),
            ]
        );
        assert!(req(0, 0, 0, 50_001).parse("QQQ").is_err());
        assert_eq!(
            req(0, 0, 0, 50_001).parse("EUR").expect_err("surge").0[0].field,
            "surge_bps"
        );
    }
}
