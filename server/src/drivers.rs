//! Drivers' SQL, shared by the driver's own endpoints, the platform admin's and the
//! business's: profile, documents, availability windows and dedicated businesses, mapped to
//! the wire views. Every query runs in the caller's transaction, under row level security (a
//! driver sees its own rows, admins all, a business's staff its dedicated drivers).
//!
//! Bank details are sealed here ([`seal_bank_account`]) and never selected for a view: views
//! carry the last four characters only.

use chrono::{DateTime, NaiveDate, Utc};
use fleetfront_domain::api::driver::{
    DriverAssignmentView, DriverDocumentView, DriverProfileView, ScheduleView, WindowView,
};
use fleetfront_domain::driver::{
    self, BankAccount, Blocker, DocumentKind, DocumentStatus, DriverStatus, Readiness, Schedule,
    VehicleType, Window,
};
use fleetfront_domain::value::TimeZoneName;
use fleetfront_domain::ErrorCode;
use sqlx::FromRow;
use uuid::Uuid;

use crate::crypto::{DataKey, Sealed};
use crate::db::{new_id, Tx};
use crate::error::{Error, Result};

/// The profile columns a view needs (never the sealed account).
const PROFILE_SELECT: &str = "SELECT u.id, u.email, u.full_name, u.phone, u.status, u.created_at, \
    p.vehicle_type, p.vehicle_plate, p.license_number, p.license_expires_on, p.insurance_policy, \
    p.insurance_expires_on, p.time_zone, p.bank_account_last4, p.rating_tenths, p.is_online, \
    p.online_since, p.approved_at, p.rejection_reason, \
    EXISTS (SELECT 1 FROM driver_documents d WHERE d.driver_id = u.id AND d.kind = 'license' \
            AND d.status = 'approved') AS has_approved_license \
    FROM users u JOIN driver_profiles p ON p.driver_id = u.id";

/// A driver's profile row.
#[derive(Debug, FromRow)]
pub struct ProfileRow {
    id: Uuid,
    email: String,
    full_name: String,
    phone: Option<String>,
    status: String,
    created_at: DateTime<Utc>,
    vehicle_type: Option<String>,
    vehicle_plate: Option<String>,
    license_number: Option<String>,
    license_expires_on: Option<NaiveDate>,
    insurance_policy: Option<String>,
    insurance_expires_on: Option<NaiveDate>,
    time_zone: String,
    bank_account_last4: Option<String>,
    rating_tenths: Option<i32>,
    is_online: bool,
    online_since: Option<DateTime<Utc>>,
    approved_at: Option<DateTime<Utc>>,
    rejection_reason: Option<String>,
    has_approved_license: bool,
}

impl ProfileRow {
    /// The account's status.
    pub fn status(&self) -> DriverStatus {
        DriverStatus::of(&self.status, self.rejection_reason.is_some())
    }

    /// The driver's zone.
    ///
    /// # Errors
    /// A stored zone that is not in the IANA database (an internal error).
    pub fn zone(&self) -> Result<TimeZoneName> {
        TimeZoneName::parse(&self.time_zone)
            .map_err(|e| Error::unexpected(anyhow::anyhow!(e.message)))
    }

    /// The driver's local date at `now`.
    ///
    /// # Errors
    /// As [`ProfileRow::zone`].
    pub fn today(&self, now: DateTime<Utc>) -> Result<NaiveDate> {
        Ok(now.with_timezone(&self.zone()?.tz()).date_naive())
    }

    /// What the online rule needs.
    pub fn readiness(&self) -> Readiness {
        Readiness {
            status: self.status(),
            license_expires_on: self.license_expires_on,
            has_approved_license: self.has_approved_license,
        }
    }

    /// What keeps the driver offline at `now`.
    ///
    /// # Errors
    /// As [`ProfileRow::zone`].
    pub fn blockers(&self, now: DateTime<Utc>) -> Result<Vec<Blocker>> {
        Ok(driver::blockers(&self.readiness(), self.today(now)?))
    }

    /// The view.
    ///
    /// # Errors
    /// As [`ProfileRow::zone`].
    pub fn view(&self, now: DateTime<Utc>) -> Result<DriverProfileView> {
        Ok(DriverProfileView {
            id: self.id,
            email: self.email.clone(),
            full_name: self.full_name.clone(),
            phone: self.phone.clone(),
            status: self.status(),
            vehicle_type: self.vehicle_type.as_deref().and_then(VehicleType::parse),
            vehicle_plate: self.vehicle_plate.clone(),
            license_number: self.license_number.clone(),
            license_expires_on: self.license_expires_on,
            insurance_policy: self.insurance_policy.clone(),
            insurance_expires_on: self.insurance_expires_on,
            time_zone: self.time_zone.clone(),
            bank_account_last4: self.bank_account_last4.clone(),
            rating_tenths: self.rating_tenths.map(i64::from),
            is_online: self.is_online,
            online_since: self.online_since,
            approved_at: self.approved_at,
            rejection_reason: self.rejection_reason.clone(),
            blockers: self.blockers(now)?,
            created_at: self.created_at,
        })
    }
}

/// A driver's profile; `lock` takes the profile row `FOR UPDATE` (serialising the driver's
/// own changes and an admin's decisions).
///
/// # Errors
/// `not_found` when there is no such driver visible to the caller.
pub async fn profile(tx: &mut Tx, driver: Uuid, lock: bool) -> Result<ProfileRow> {
    let lock = if lock { " FOR UPDATE OF p" } else { "" };
    sqlx::query_as::<_, ProfileRow>(&format!(
        "{PROFILE_SELECT} WHERE u.id = $1 AND u.kind = 'driver'{lock}"
    ))
    .bind(driver)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| Error::not_found("driver"))
}

/// Seals a bank account for `driver`.
///
/// # Errors
/// Internal errors of the cipher.
pub fn seal_bank_account(key: &DataKey, driver: Uuid, account: &BankAccount) -> Result<Sealed> {
    key.seal(driver.as_bytes(), account.expose().as_bytes())
        .map_err(Error::unexpected)
}

#[derive(FromRow)]
struct DocumentRow {
    id: Uuid,
    kind: String,
    content_type: String,
    byte_size: i64,
    content_hash: String,
    status: String,
    rejection_reason: Option<String>,
    uploaded_at: DateTime<Utc>,
    reviewed_at: Option<DateTime<Utc>>,
}

impl DocumentRow {
    fn view(self) -> Result<DriverDocumentView> {
        let bad =
            |what: &str| Error::unexpected(anyhow::anyhow!("stored document {what} is unknown"));
        Ok(DriverDocumentView {
            id: self.id,
            kind: DocumentKind::parse(&self.kind).ok_or_else(|| bad("kind"))?,
            content_type: self.content_type,
            byte_size: self.byte_size,
            content_hash: self.content_hash,
            status: DocumentStatus::parse(&self.status).ok_or_else(|| bad("status"))?,
            rejection_reason: self.rejection_reason,
            uploaded_at: self.uploaded_at,
            reviewed_at: self.reviewed_at,
        })
    }
}

const DOCUMENT_COLUMNS: &str = "id, kind, content_type, byte_size, content_hash, status, rejection_reason, uploaded_at, reviewed_at";

/// A driver's documents, newest first.
///
/// # Errors
/// Database errors.
pub async fn documents(tx: &mut Tx, driver: Uuid) -> Result<Vec<DriverDocumentView>> {
    let rows: Vec<DocumentRow> = sqlx::query_as(&format!(
        "SELECT {DOCUMENT_COLUMNS} FROM driver_documents WHERE driver_id = $1 ORDER BY uploaded_at DESC, id DESC"
    ))
    .bind(driver)
    .fetch_all(&mut **tx)
    .await?;
    rows.into_iter().map(DocumentRow::view).collect()
}

/// A new document's facts.
#[derive(Debug)]
pub struct NewDocument<'a> {
    /// What it is.
    pub kind: DocumentKind,
    /// The blob's hash.
    pub content_hash: &'a str,
    /// Sniffed type.
    pub content_type: &'static str,
    /// Size in bytes.
    pub byte_size: i64,
}

/// Records an uploaded document (pending review).
///
/// # Errors
/// Database errors.
pub async fn insert_document(
    tx: &mut Tx,
    driver: Uuid,
    doc: &NewDocument<'_>,
    now: DateTime<Utc>,
) -> Result<DriverDocumentView> {
    let row: DocumentRow = sqlx::query_as(&format!(
        "INSERT INTO driver_documents (id, driver_id, kind, content_hash, content_type, byte_size, uploaded_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {DOCUMENT_COLUMNS}"
    ))
    .bind(new_id())
    .bind(driver)
    .bind(doc.kind.as_str())
    .bind(doc.content_hash)
    .bind(doc.content_type)
    .bind(doc.byte_size)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?;
    row.view()
}

/// Records an admin's decision on a document.
///
/// # Errors
/// `not_found` when the driver has no such document.
pub async fn review_document(
    tx: &mut Tx,
    driver: Uuid,
    document: Uuid,
    decision: (DocumentStatus, Option<String>),
    reviewer: Uuid,
    now: DateTime<Utc>,
) -> Result<DriverDocumentView> {
    let row: DocumentRow = sqlx::query_as(&format!(
        "UPDATE driver_documents SET status = $3, rejection_reason = $4, reviewed_at = $5, reviewed_by = $6 \
         WHERE driver_id = $1 AND id = $2 RETURNING {DOCUMENT_COLUMNS}"
    ))
    .bind(driver)
    .bind(document)
    .bind(decision.0.as_str())
    .bind(decision.1)
    .bind(now)
    .bind(reviewer)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| Error::not_found("document"))?;
    row.view()
}

/// A driver's week.
///
/// # Errors
/// Database errors; stored windows that break the rules (an internal error).
pub async fn schedule(tx: &mut Tx, driver: Uuid) -> Result<Schedule> {
    let rows: Vec<(i16, String, String)> = sqlx::query_as(
        "SELECT day_of_week, to_char(start_time, 'HH24:MI'), to_char(end_time, 'HH24:MI') \
         FROM driver_availability_windows WHERE driver_id = $1",
    )
    .bind(driver)
    .fetch_all(&mut **tx)
    .await?;
    let windows = rows
        .iter()
        .map(|(day, start, end)| Window::parse(i64::from(*day), start, end))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(Error::unexpected)?;
    Schedule::new(windows).map_err(Error::unexpected)
}

/// Replaces a driver's week (the caller holds the profile row locked).
///
/// # Errors
/// Database errors.
pub async fn replace_schedule(tx: &mut Tx, driver: Uuid, schedule: &Schedule) -> Result<()> {
    sqlx::query("DELETE FROM driver_availability_windows WHERE driver_id = $1")
        .bind(driver)
        .execute(&mut **tx)
        .await?;
    let windows = schedule.windows();
    let ids: Vec<Uuid> = windows.iter().map(|_| new_id()).collect();
    let days: Vec<i16> = windows.iter().map(|w| i16::from(w.day())).collect();
    let starts: Vec<String> = windows
        .iter()
        .map(|w| driver::format_time(w.start()))
        .collect();
    let ends: Vec<String> = windows
        .iter()
        .map(|w| driver::format_time(w.end()))
        .collect();
    sqlx::query(
        "INSERT INTO driver_availability_windows (driver_id, id, day_of_week, start_time, end_time) \
         SELECT $1, w.id, w.day, w.start_time::time, w.end_time::time \
           FROM unnest($2::uuid[], $3::int2[], $4::text[], $5::text[]) AS w (id, day, start_time, end_time)",
    )
    .bind(driver)
    .bind(ids)
    .bind(days)
    .bind(starts)
    .bind(ends)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The businesses a driver is dedicated to, by priority.
///
/// # Errors
/// Database errors.
pub async fn assignments(tx: &mut Tx, driver: Uuid) -> Result<Vec<DriverAssignmentView>> {
    let rows: Vec<(Uuid, Option<String>, i16, DateTime<Utc>)> = sqlx::query_as(
        "SELECT d.business_id, b.name, d.priority, d.created_at FROM driver_businesses d \
         LEFT JOIN businesses b ON b.id = d.business_id \
         WHERE d.driver_id = $1 ORDER BY d.priority, d.created_at, d.business_id",
    )
    .bind(driver)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(business_id, business_name, priority, created_at)| DriverAssignmentView {
                business_id,
                business_name,
                priority: i64::from(priority),
                created_at,
            },
        )
        .collect())
}

/// The driver's schedule view at `now`.
///
/// # Errors
/// Database errors.
pub async fn schedule_view(
    tx: &mut Tx,
    profile: &ProfileRow,
    now: DateTime<Utc>,
) -> Result<ScheduleView> {
    let week = schedule(tx, profile.id).await?;
    let zone = profile.zone()?;
    Ok(ScheduleView {
        time_zone: profile.time_zone.clone(),
        windows: week.windows().iter().map(WindowView::from).collect(),
        in_window_now: week.covers(now, zone.tz()),
        is_online: profile.is_online,
        online_since: profile.online_since,
        dedicated_businesses: assignments(tx, profile.id).await?,
        blockers: profile.blockers(now)?,
    })
}

/// Sets a driver online or offline; going online keeps an earlier `online_since`.
///
/// # Errors
/// Database errors.
pub async fn set_online(tx: &mut Tx, driver: Uuid, online: bool, now: DateTime<Utc>) -> Result<()> {
    sqlx::query(
        "UPDATE driver_profiles SET is_online = $2, \
         online_since = CASE WHEN $2 THEN coalesce(online_since, $3) END, updated_at = $3 \
         WHERE driver_id = $1",
    )
    .bind(driver)
    .bind(online)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The content type of an uploaded document, judged from its bytes only: JPEG and PNG by the
/// image sniffer the product images use, PDF by its `%PDF-` signature.
///
/// # Errors
/// `unsupported_media_type` for anything else.
pub fn sniff_document(bytes: &[u8]) -> Result<&'static str> {
    if bytes.starts_with(b"%PDF-") {
        return Ok("application/pdf");
    }
    match image::guess_format(bytes) {
        Ok(image::ImageFormat::Jpeg) => Ok("image/jpeg"),
        Ok(image::ImageFormat::Png) => Ok("image/png"),
        _ => Err(Error::new(
            ErrorCode::UnsupportedMediaType,
            "the document is not a JPEG, PNG or PDF file",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_sniffed_from_their_bytes() {
        assert_eq!(
            sniff_document(b"%PDF-1.7\n...").ok(),
            Some("application/pdf")
        );
        assert_eq!(
            sniff_document(&[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0]).ok(),
            Some("image/png")
        );
        assert_eq!(
            sniff_document(&[0xff, 0xd8, 0xff, 0xe0, 0]).ok(),
            Some("image/jpeg")
        );
        assert!(sniff_document(b"GIF89a....").is_err());
        assert!(sniff_document(b"hello").is_err());
    }
}
