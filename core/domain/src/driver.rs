//! Drivers: what a driver's profile holds and what makes it valid, weekly availability windows
//! in the driver's own time zone, and whether a driver may go online. Pure rules; the server
//! stores profiles (bank details sealed), documents and windows, and asks [`may_go_online`]
//! before it lets a driver take work.
//!
//! Dates and instants are inputs: expiry dates are judged against the `today` a caller passes
//! (the driver's local date), and [`Schedule::covers`] takes the instant and the zone.

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::value::ValueError;

/// Most availability windows a driver may keep (three a day).
pub const MAX_WINDOWS: usize = 21;
/// Minutes in a day; a window may end at `24:00`.
pub const MINUTES_PER_DAY: u16 = 24 * 60;
/// Most documents a driver may keep on file (each up to the upload limit).
pub const MAX_DOCUMENTS: usize = 30;
/// Most characters of a rejection reason.
pub const MAX_REASON_CHARS: usize = 500;

fn invalid(code: &'static str, message: impl Into<String>) -> ValueError {
    ValueError {
        code,
        message: message.into(),
    }
}

/// What a driver delivers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum VehicleType {
    /// A bicycle (no plate).
    Bicycle,
    /// A moped or scooter.
    Scooter,
    /// A motorcycle.
    Motorcycle,
    /// A car.
    Car,
    /// A van.
    Van,
}

impl VehicleType {
    /// Every type, in a stable order.
    pub const ALL: [VehicleType; 5] = [
        Self::Bicycle,
        Self::Scooter,
        Self::Motorcycle,
        Self::Car,
        Self::Van,
    ];

    /// The stable key, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bicycle => "bicycle",
            Self::Scooter => "scooter",
            Self::Motorcycle => "motorcycle",
            Self::Car => "car",
            Self::Van => "van",
        }
    }

    /// Parses a stored key.
    pub fn parse(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == key)
    }

    /// Whether the vehicle is registered and so needs a plate.
    pub fn needs_plate(self) -> bool {
        !matches!(self, Self::Bicycle)
    }
}

/// The kinds of document a driver uploads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    /// Driving licence.
    License,
    /// Insurance certificate.
    Insurance,
    /// Identity document.
    Identity,
    /// Vehicle registration.
    VehicleRegistration,
}

impl DocumentKind {
    /// Every kind, in a stable order.
    pub const ALL: [DocumentKind; 4] = [
        Self::License,
        Self::Insurance,
        Self::Identity,
        Self::VehicleRegistration,
    ];

    /// The stable key, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::License => "license",
            Self::Insurance => "insurance",
            Self::Identity => "identity",
            Self::VehicleRegistration => "vehicle_registration",
        }
    }

    /// Parses a key.
    pub fn parse(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == key)
    }
}

/// Where a document's review stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DocumentStatus {
    /// Waiting for a platform admin.
    Pending,
    /// Accepted.
    Approved,
    /// Refused (a new upload may follow).
    Rejected,
}

impl DocumentStatus {
    /// The stable key, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
        }
    }

    /// Parses a stored key.
    pub fn parse(key: &str) -> Option<Self> {
        [Self::Pending, Self::Approved, Self::Rejected]
            .into_iter()
            .find(|v| v.as_str() == key)
    }
}

/// Where a driver's account stands with the platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DriverStatus {
    /// Registered, waiting for approval: may complete the profile and upload documents.
    Pending,
    /// Approved by a platform admin.
    Approved,
    /// Refused by a platform admin (with a reason); may fix the profile and be approved later.
    Rejected,
    /// Suspended: may not sign in.
    Suspended,
}

impl DriverStatus {
    /// The stable key.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Suspended => "suspended",
        }
    }

    /// The status of an account from its stored parts: the account's status (`pending`,
    /// `active`, `suspended`) and whether a rejection reason is on record.
    pub fn of(account_status: &str, rejected: bool) -> Self {
        match account_status {
            "suspended" => Self::Suspended,
            "active" => Self::Approved,
            _ if rejected => Self::Rejected,
            _ => Self::Pending,
        }
    }
}

/// Normalises an identifier typed by a person: trimmed, inner runs of spaces kept single,
/// upper case; only letters, digits, spaces, `-` and `/` allowed.
fn identifier(
    raw: &str,
    field: &str,
    min: usize,
    max: usize,
    extra: &[char],
) -> Result<String, ValueError> {
    let text = raw
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase();
    let len = text.chars().count();
    if len == 0 {
        return Err(invalid("required", format!("{field} is required")));
    }
    if len < min || len > max {
        return Err(invalid(
            "invalid_length",
            format!("{field} must be {min} to {max} characters"),
        ));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == ' ' || extra.contains(&c);
    if !text.chars().all(allowed) || !text.chars().any(|c| c.is_ascii_alphanumeric()) {
        return Err(invalid(
            "invalid_characters",
            format!("{field} may hold only letters, digits, spaces and {extra:?}"),
        ));
    }
    Ok(text)
}

/// A vehicle registration plate: 2–12 letters, digits, spaces or hyphens, upper case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plate(String);

impl Plate {
    /// Parses a plate.
    ///
    /// # Errors
    /// When empty, too long or holding other characters.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        identifier(raw, "the plate", 2, 12, &['-']).map(Self)
    }

    /// The normalised plate.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A driving licence number: 4–32 letters, digits, spaces, `-` or `/`, upper case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LicenseNumber(String);

impl LicenseNumber {
    /// Parses a licence number.
    ///
    /// # Errors
    /// When empty, of the wrong length or holding other characters.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        identifier(raw, "the licence number", 4, 32, &['-', '/']).map(Self)
    }

    /// The normalised number.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An insurance policy number: 3–64 letters, digits, spaces, `-`, `/` or `.`, upper case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InsurancePolicy(String);

impl InsurancePolicy {
    /// Parses a policy number.
    ///
    /// # Errors
    /// When empty, of the wrong length or holding other characters.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        identifier(raw, "the policy number", 3, 64, &['-', '/', '.']).map(Self)
    }

    /// The normalised number.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A bank account number (an IBAN, or a domestic account number): 8–34 letters and digits once
/// spaces are removed, upper case. An IBAN (two letters, two digits, …) must pass its mod-97
/// check. Its `Debug` shows only the last four characters, so it never reaches a log whole.
#[derive(Clone, PartialEq, Eq)]
pub struct BankAccount(String);

impl std::fmt::Debug for BankAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BankAccount(…{})", self.last4())
    }
}

impl BankAccount {
    /// Parses an account number.
    ///
    /// # Errors
    /// When empty, of the wrong length, holding other characters, or an IBAN whose check
    /// digits are wrong.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let text: String = raw
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect::<String>()
            .to_uppercase();
        if text.is_empty() {
            return Err(invalid("required", "the bank account is required"));
        }
        if !(8..=34).contains(&text.len()) {
            return Err(invalid(
                "invalid_length",
                "the bank account must be 8 to 34 letters and digits",
            ));
        }
        if !text.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(invalid(
                "invalid_characters",
                "the bank account may hold only letters and digits",
            ));
        }
        let bytes = text.as_bytes();
        let looks_iban = bytes[0].is_ascii_alphabetic()
            && bytes[1].is_ascii_alphabetic()
            && bytes[2].is_ascii_digit()
            && bytes[3].is_ascii_digit();
        if looks_iban && !iban_checks(&text) {
            return Err(invalid(
                "invalid_iban",
                "the IBAN's check digits do not match",
            ));
        }
        Ok(Self(text))
    }

    /// The whole number (to be sealed before it is stored; never logged or returned).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The last four characters, shown to the driver so they recognise the account.
    pub fn last4(&self) -> &str {
        let start = self.0.len().saturating_sub(4);
        &self.0[start..]
    }
}

/// The ISO 13616 check: move the first four characters to the end, letters become 10–35, and
/// the number modulo 97 must be 1.
fn iban_checks(iban: &str) -> bool {
    let rotated = iban[4..].chars().chain(iban[..4].chars());
    let mut remainder: u32 = 0;
    for c in rotated {
        let Some(value) = c.to_digit(36) else {
            return false;
        };
        remainder = if value < 10 {
            (remainder * 10 + value) % 97
        } else {
            (remainder * 100 + value) % 97
        };
    }
    remainder == 1
}

/// Checks that an expiry date is not before `today` (the driver's local date).
///
/// # Errors
/// `expired` when the date has passed.
pub fn check_not_expired(expires_on: NaiveDate, today: NaiveDate) -> Result<(), ValueError> {
    if expires_on < today {
        Err(invalid(
            "expired",
            format!("the date {expires_on} has passed"),
        ))
    } else {
        Ok(())
    }
}

/// A time of day in minutes since midnight, `00:00` to `24:00`.
fn parse_time(raw: &str) -> Result<u16, ValueError> {
    let bad = || {
        invalid(
            "invalid_time",
            format!("{raw:?} is not a time written as HH:MM"),
        )
    };
    let (h, m) = raw.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let h: u16 = h.parse().map_err(|_| bad())?;
    let m: u16 = m.parse().map_err(|_| bad())?;
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// Formats minutes since midnight as `HH:MM` (`24:00` for the end of the day).
pub fn format_time(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// Why a window or a schedule is refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ScheduleError {
    /// The day is not 0 (Monday) to 6 (Sunday).
    #[error("the day must be 0 (Monday) to 6 (Sunday), not {0}")]
    DayOutOfRange(i64),
    /// A time is not `HH:MM` within the day.
    #[error("{0}")]
    InvalidTime(String),
    /// The window does not end after it starts.
    #[error("the window must end after it starts")]
    EndNotAfterStart,
    /// More windows than [`MAX_WINDOWS`].
    #[error("at most {MAX_WINDOWS} windows")]
    TooMany,
    /// Two windows of the same day overlap (their positions in the request).
    #[error("this window overlaps window {other} on the same day")]
    Overlap {
        /// The window that overlaps.
        index: usize,
        /// The one it overlaps.
        other: usize,
    },
}

impl ScheduleError {
    /// The stable code of the rule.
    pub fn code(&self) -> &'static str {
        match self {
            Self::DayOutOfRange(_) => "out_of_range",
            Self::InvalidTime(_) => "invalid_time",
            Self::EndNotAfterStart => "end_before_start",
            Self::TooMany => "too_many",
            Self::Overlap { .. } => "overlap",
        }
    }
}

/// One weekly availability window in the driver's local time: a day (0 = Monday … 6 = Sunday)
/// and a span `[start, end)` within it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Window {
    day: u8,
    start: u16,
    end: u16,
}

impl Window {
    /// A window from `HH:MM` texts (`end` may be `24:00`).
    ///
    /// # Errors
    /// A day outside 0–6, a malformed time, or an end not after the start.
    pub fn parse(day: i64, start: &str, end: &str) -> Result<Self, ScheduleError> {
        let day = u8::try_from(day)
            .ok()
            .filter(|d| *d <= 6)
            .ok_or(ScheduleError::DayOutOfRange(day))?;
        let start = parse_time(start).map_err(|e| ScheduleError::InvalidTime(e.message))?;
        let end = parse_time(end).map_err(|e| ScheduleError::InvalidTime(e.message))?;
        if start >= MINUTES_PER_DAY {
            return Err(ScheduleError::InvalidTime(
                "a window cannot start at 24:00".to_owned(),
            ));
        }
        if end <= start {
            return Err(ScheduleError::EndNotAfterStart);
        }
        Ok(Self { day, start, end })
    }

    /// The day, 0 = Monday.
    pub fn day(&self) -> u8 {
        self.day
    }

    /// Start, minutes since midnight.
    pub fn start(&self) -> u16 {
        self.start
    }

    /// End (exclusive), minutes since midnight, at most 1440.
    pub fn end(&self) -> u16 {
        self.end
    }

    fn overlaps(&self, other: &Window) -> bool {
        self.day == other.day && self.start < other.end && other.start < self.end
    }
}

/// A driver's week: at most [`MAX_WINDOWS`] windows, none overlapping another of its day,
/// kept in day and time order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Schedule(Vec<Window>);

impl Schedule {
    /// Builds a schedule from windows given in any order.
    ///
    /// # Errors
    /// [`ScheduleError::TooMany`], or [`ScheduleError::Overlap`] naming the later of two
    /// overlapping windows by its position in `windows`.
    pub fn new(windows: Vec<Window>) -> Result<Self, ScheduleError> {
        if windows.len() > MAX_WINDOWS {
            return Err(ScheduleError::TooMany);
        }
        for (index, window) in windows.iter().enumerate() {
            if let Some(other) = windows[..index].iter().position(|w| w.overlaps(window)) {
                return Err(ScheduleError::Overlap { index, other });
            }
        }
        let mut sorted = windows;
        sorted.sort();
        Ok(Self(sorted))
    }

    /// The windows, by day and start.
    pub fn windows(&self) -> &[Window] {
        &self.0
    }

    /// Whether `at` falls inside a window, read in the driver's zone `tz`.
    pub fn covers(&self, at: DateTime<Utc>, tz: chrono_tz::Tz) -> bool {
        let local = at.with_timezone(&tz);
        let day = u8::try_from(local.weekday().num_days_from_monday()).unwrap_or(u8::MAX);
        let minute = u16::try_from(local.hour() * 60 + local.minute()).unwrap_or(u16::MAX);
        self.0
            .iter()
            .any(|w| w.day == day && w.start <= minute && minute < w.end)
    }
}

/// What the online rule needs to know about a driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Readiness {
    /// The account's status.
    pub status: DriverStatus,
    /// The licence's expiry date on the profile, if given.
    pub license_expires_on: Option<NaiveDate>,
    /// Whether a platform admin approved at least one licence document.
    pub has_approved_license: bool,
}

/// Why a driver may not go online.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Error)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Blocker {
    /// The account is not approved (pending, rejected or suspended).
    #[error("a platform admin has not approved this driver")]
    NotApproved,
    /// The profile has no licence expiry date.
    #[error("the profile has no driving licence")]
    LicenseMissing,
    /// The licence has expired.
    #[error("the driving licence has expired")]
    LicenseExpired,
    /// No licence document has been approved.
    #[error("no driving licence document has been approved")]
    LicenseDocumentMissing,
}

/// Everything that keeps a driver offline on `today` (their local date), in a stable order;
/// empty when they may go online.
pub fn blockers(driver: &Readiness, today: NaiveDate) -> Vec<Blocker> {
    let mut out = Vec::new();
    if driver.status != DriverStatus::Approved {
        out.push(Blocker::NotApproved);
    }
    match driver.license_expires_on {
        None => out.push(Blocker::LicenseMissing),
        Some(on) if on < today => out.push(Blocker::LicenseExpired),
        Some(_) => {}
    }
    if !driver.has_approved_license {
        out.push(Blocker::LicenseDocumentMissing);
    }
    out
}

/// Whether a driver may go online on `today`: approved, with a licence that has not expired
/// and an approved licence document.
///
/// # Errors
/// The first [`Blocker`].
pub fn may_go_online(driver: &Readiness, today: NaiveDate) -> Result<(), Blocker> {
    match blockers(driver, today).first() {
        Some(blocker) => Err(*blocker),
        None => Ok(()),
    }
}

/// A priority of a dedicated driver at a business: 1 (asked first) to 10.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Priority(u8);

impl Priority {
    /// Parses a priority.
    ///
    /// # Errors
    /// `out_of_range` outside 1–10.
    pub fn new(value: i64) -> Result<Self, ValueError> {
        u8::try_from(value)
            .ok()
            .filter(|v| (1..=10).contains(v))
            .map(Self)
            .ok_or_else(|| invalid("out_of_range", "the priority must be 1 (first) to 10"))
    }

    /// The value.
    pub fn get(self) -> u8 {
        self.0
    }
}

/// A business's offer timeout bounds, in seconds.
pub const OFFER_TIMEOUT_SECS: std::ops::RangeInclusive<i64> = 10..=300;

/// A reason given by an admin (rejecting a driver or a document): trimmed, 1–500 characters.
///
/// # Errors
/// `required` when blank, `too_long` past [`MAX_REASON_CHARS`].
pub fn parse_reason(raw: &str) -> Result<String, ValueError> {
    let text = raw.trim();
    if text.is_empty() {
        return Err(invalid("required", "give a reason"));
    }
    if text.chars().count() > MAX_REASON_CHARS {
        return Err(invalid(
            "too_long",
            format!("the reason must be at most {MAX_REASON_CHARS} characters"),
        ));
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
    }

    fn window(day: i64, start: &str, end: &str) -> Window {
        Window::parse(day, start, end).expect("valid window")
    }

    #[test]
    fn identifiers_are_normalised_and_checked() {
        assert_eq!(
            Plate::parse("  abc-123 ").expect("valid").as_str(),
            "ABC-123"
        );
        assert_eq!(Plate::parse("").map_err(|e| e.code), Err("required"));
        assert_eq!(Plate::parse("A").map_err(|e| e.code), Err("invalid_length"));
        assert_eq!(
            Plate::parse("AB#12").map_err(|e| e.code),
            Err("invalid_characters")
        );
        assert_eq!(
            Plate::parse("--").map_err(|e| e.code),
            Err("invalid_characters")
        );
        assert_eq!(
            LicenseNumber::parse("fi 1234/5").expect("valid").as_str(),
            "FI 1234/5"
        );
        assert!(LicenseNumber::parse("12").is_err());
        assert!(InsurancePolicy::parse("POL-2026.1").is_ok());
    }

    #[test]
    fn bank_accounts_check_ibans_and_hide_in_debug() {
        let iban = BankAccount::parse("FI21 1234 5600 0007 85").expect("valid IBAN");
        assert_eq!(iban.expose(), "FI2112345600000785");
        assert_eq!(iban.last4(), "0785");
        assert!(!format!("{iban:?}").contains("FI2112"));
        assert_eq!(
            BankAccount::parse("FI22 1234 5600 0007 85").map_err(|e| e.code),
            Err("invalid_iban")
        );
        assert!(BankAccount::parse("12345678").is_ok());
        assert_eq!(
            BankAccount::parse("1234").map_err(|e| e.code),
            Err("invalid_length")
        );
        assert_eq!(
            BankAccount::parse("1234567_89").map_err(|e| e.code),
            Err("invalid_characters")
        );
    }

    #[test]
    fn expiry_is_judged_against_the_given_day() {
        let today = date(2026, 11, 25);
        assert!(check_not_expired(today, today).is_ok());
        assert!(check_not_expired(date(2027, 1, 1), today).is_ok());
        assert_eq!(
            check_not_expired(date(2026, 11, 24), today).map_err(|e| e.code),
            Err("expired")
        );
    }

    #[test]
    fn vehicle_types_round_trip() {
        for v in VehicleType::ALL {
            assert_eq!(VehicleType::parse(v.as_str()), Some(v));
        }
        assert!(!VehicleType::Bicycle.needs_plate());
        assert!(VehicleType::Van.needs_plate());
        for k in DocumentKind::ALL {
            assert_eq!(DocumentKind::parse(k.as_str()), Some(k));
        }
    }

    #[test]
    fn windows_check_their_bounds() {
        assert_eq!(window(0, "00:00", "24:00").end(), 1440);
        assert_eq!(
            Window::parse(7, "09:00", "10:00"),
            Err(ScheduleError::DayOutOfRange(7))
        );
        assert_eq!(
            Window::parse(-1, "09:00", "10:00"),
            Err(ScheduleError::DayOutOfRange(-1))
        );
        assert_eq!(
            Window::parse(1, "10:00", "10:00"),
            Err(ScheduleError::EndNotAfterStart)
        );
        assert_eq!(
            Window::parse(1, "22:00", "02:00"),
            Err(ScheduleError::EndNotAfterStart)
        );
        for bad in ["9:00", "24:30", "12:60", "ab:cd", "24:00"] {
            let err = Window::parse(1, bad, "24:00").expect_err(bad);
            assert_eq!(err.code(), "invalid_time", "{bad}");
        }
        assert_eq!(format_time(1440), "24:00");
        assert_eq!(format_time(545), "09:05");
    }

    #[test]
    fn schedules_refuse_overlaps_and_too_many() {
        let ok = Schedule::new(vec![
            window(1, "12:00", "14:00"),
            window(0, "09:00", "12:00"),
            window(0, "12:00", "13:00"),
        ])
        .expect("touching windows do not overlap");
        assert_eq!(ok.windows()[0], window(0, "09:00", "12:00"));
        assert_eq!(
            Schedule::new(vec![
                window(2, "09:00", "12:00"),
                window(3, "09:00", "12:00"),
                window(2, "11:59", "13:00"),
            ]),
            Err(ScheduleError::Overlap { index: 2, other: 0 })
        );
        let many: Vec<Window> = (0..22)
            .map(|i| {
                let day = i % 7;
                let start = format_time(u16::try_from(i / 7 * 60).expect("small"));
                let end = format_time(u16::try_from(i / 7 * 60 + 30).expect("small"));
                window(day, &start, &end)
            })
            .collect();
        assert_eq!(Schedule::new(many.clone()), Err(ScheduleError::TooMany));
        assert!(Schedule::new(many[..21].to_vec()).is_ok());
    }

    #[test]
    fn covers_reads_the_drivers_zone() {
        // Monday 2026-11-23 09:30 in Helsinki (UTC+2) is 07:30 UTC.
        let schedule = Schedule::new(vec![window(0, "09:00", "10:00")]).expect("valid");
        let tz = chrono_tz::Europe::Helsinki;
        let at = |h, m| {
            Utc.with_ymd_and_hms(2026, 11, 23, h, m, 0)
                .single()
                .expect("valid")
        };
        assert!(schedule.covers(at(7, 30), tz));
        assert!(schedule.covers(at(7, 0), tz));
        assert!(!schedule.covers(at(8, 0), tz), "the end is exclusive");
        assert!(!schedule.covers(at(9, 30), tz));
        assert!(!schedule.covers(at(7, 30), chrono_tz::UTC));
        let all_day = Schedule::new(vec![window(6, "00:00", "24:00")]).expect("valid");
        // Sunday 23:59 local.
        assert!(all_day.covers(at(0, 0) - chrono::Duration::minutes(121), tz));
        assert!(!Schedule::default().covers(at(7, 30), tz));
    }

    #[test]
    fn going_online_needs_approval_licence_and_document() {
        let today = date(2026, 11, 25);
        let ready = Readiness {
            status: DriverStatus::Approved,
            license_expires_on: Some(date(2027, 5, 1)),
            has_approved_license: true,
        };
        assert_eq!(may_go_online(&ready, today), Ok(()));
        let pending = Readiness {
            status: DriverStatus::Pending,
            ..ready.clone()
        };
        assert_eq!(may_go_online(&pending, today), Err(Blocker::NotApproved));
        let expired = Readiness {
            license_expires_on: Some(date(2026, 11, 24)),
            ..ready.clone()
        };
        assert_eq!(may_go_online(&expired, today), Err(Blocker::LicenseExpired));
        let nothing = Readiness {
            status: DriverStatus::Suspended,
            license_expires_on: None,
            has_approved_license: false,
        };
        assert_eq!(
            blockers(&nothing, today),
            vec![
                Blocker::NotApproved,
                Blocker::LicenseMissing,
                Blocker::LicenseDocumentMissing
            ]
        );
    }

    #[test]
    fn status_follows_the_account() {
        assert_eq!(DriverStatus::of("active", true), DriverStatus::Approved);
        assert_eq!(DriverStatus::of("pending", false), DriverStatus::Pending);
        assert_eq!(DriverStatus::of("pending", true), DriverStatus::Rejected);
        assert_eq!(
            DriverStatus::of("suspended", false),
            DriverStatus::Suspended
        );
        assert!(Priority::new(0).is_err());
        assert!(Priority::new(11).is_err());
        assert_eq!(Priority::new(1).map(Priority::get), Ok(1));
        assert_eq!(parse_reason("  ").map_err(|e| e.code), Err("required"));
    }
}
