//! Drivers: the driver's own onboarding and availability (`/api/v1/driver/profile`,
//! `/documents`, `/schedule`, `/availability`) and the platform admin's review, suspension and
//! assignment of drivers (`/api/v1/admin/drivers…`).
//!
//! A pending driver (awaiting approval) may sign in, complete the profile, upload documents and
//! set a schedule; going online needs [`fleetfront_domain::driver::may_go_online`]. Driver and
//! admin writes are audited in the platform log; assignments also in the business's log.
//! Bank details are sealed before they are stored and appear in no answer and no audit row.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Utc};
use fleetfront_domain::api::driver::{
    AdminDriverView, AssignDriverRequest, AvailabilityRequest, DriverAssignmentView,
    DriverDocumentView, DriverPage, DriverProfileView, DriverSummary, PutScheduleRequest,
    RejectDriverRequest, ReviewDocumentRequest, ScheduleView, UpdateDriverProfileRequest,
    UploadDocumentForm, WindowView,
};
use fleetfront_domain::api::Problem;
use fleetfront_domain::driver::{self, DocumentKind, DriverStatus, VehicleType};
use fleetfront_domain::media::{self, ContentHash};
use fleetfront_domain::permission::{Actor, PlatformPermission};
use fleetfront_domain::plan::LimitKind;
use fleetfront_domain::{BusinessId, ErrorCode, UserId};
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::admin::{begin_admin, decode_cursor, encode_cursor};
use crate::app::App;
use crate::audit::{self, Event, Who};
use crate::context::Ctx;
use crate::db::Tx;
use crate::drivers::{self, NewDocument};
use crate::error::{Error, Result};
use crate::extract::{
    multipart_error, read_field, too_large, ApiJson, ApiMultipart, ApiPath, ApiQuery, Auth,
};
use crate::tenancy;

/// The body limit of the document upload route: the largest file plus the multipart framing.
const UPLOAD_BODY_LIMIT: usize = media::MAX_UPLOAD_BYTES + 64 * 1024;

pub(crate) fn routes(router: OpenApiRouter<App>) -> OpenApiRouter<App> {
    let uploads = OpenApiRouter::new()
        .routes(routes!(list_documents, upload_document))
        .layer(DefaultBodyLimit::max(UPLOAD_BODY_LIMIT));
    router
        .merge(uploads)
        .routes(routes!(get_profile, update_profile))
        .routes(routes!(get_schedule, put_schedule))
        .routes(routes!(set_availability))
        .routes(routes!(list_drivers))
        .routes(routes!(get_driver))
        .routes(routes!(approve_driver))
        .routes(routes!(reject_driver))
        .routes(routes!(suspend_driver))
        .routes(routes!(review_document))
        .routes(routes!(document_content))
        .routes(routes!(assign_driver))
        .routes(routes!(unassign_driver))
}

/// Begins as the signed-in driver.
async fn begin_driver(app: &App, auth: &Auth) -> Result<(Tx, Actor, Uuid)> {
    let (tx, actor) = app.db.begin_as(&auth.0).await?;
    match actor {
        Actor::Driver { user } => Ok((tx, actor, user.0)),
        _ => Err(Error::forbidden("this endpoint is for drivers")),
    }
}

/// The signed-in driver's profile.
#[utoipa::path(get, path = "/api/v1/driver/profile", tag = "driver", security(("bearer" = [])),
    responses((status = 200, body = DriverProfileView), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn get_profile(State(app): State<App>, auth: Auth) -> Result<Json<DriverProfileView>> {
    let (mut tx, _, me) = begin_driver(&app, &auth).await?;
    let view = drivers::profile(&mut tx, me, false)
        .await?
        .view(app.clock.now())?;
    tx.commit().await?;
    Ok(Json(view))
}

/// Changes the signed-in driver's profile. Expiry dates may not be in the past (in the
/// driver's time zone). The bank account is stored encrypted; answers show its last four
/// characters only.
#[utoipa::path(patch, path = "/api/v1/driver/profile", tag = "driver", security(("bearer" = [])),
    request_body = UpdateDriverProfileRequest,
    responses((status = 200, body = DriverProfileView), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn update_profile(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiJson(req): ApiJson<UpdateDriverProfileRequest>,
) -> Result<Json<DriverProfileView>> {
    let now = app.clock.now();
    let key = app.data_key()?;
    let (mut tx, actor, me) = begin_driver(&app, &auth).await?;
    let current = drivers::profile(&mut tx, me, true).await?;
    let zone = match &req.time_zone {
        Some(raw) => fleetfront_domain::value::TimeZoneName::parse(raw).unwrap_or(current.zone()?),
        None => current.zone()?,
    };
    let changes = req.parse(now.with_timezone(&zone.tz()).date_naive())?;
    let sealed = changes
        .bank_account
        .as_ref()
        .map(|account| drivers::seal_bank_account(&key, me, account))
        .transpose()?;
    sqlx::query(
        "UPDATE driver_profiles SET vehicle_type = coalesce($2, vehicle_type), \
         vehicle_plate = coalesce($3, vehicle_plate), license_number = coalesce($4, license_number), \
         license_expires_on = coalesce($5, license_expires_on), insurance_policy = coalesce($6, insurance_policy), \
         insurance_expires_on = coalesce($7, insurance_expires_on), time_zone = coalesce($8, time_zone), \
         bank_account_ciphertext = coalesce($9, bank_account_ciphertext), \
         bank_account_nonce = coalesce($10, bank_account_nonce), \
         bank_account_last4 = coalesce($11, bank_account_last4), updated_at = $12 \
         WHERE driver_id = $1",
    )
    .bind(me)
    .bind(changes.vehicle_type.map(VehicleType::as_str))
    .bind(changes.vehicle_plate.as_ref().map(|v| v.as_str()))
    .bind(changes.license_number.as_ref().map(|v| v.as_str()))
    .bind(changes.license_expires_on)
    .bind(changes.insurance_policy.as_ref().map(|v| v.as_str()))
    .bind(changes.insurance_expires_on)
    .bind(changes.time_zone.as_ref().map(|v| v.as_str()))
    .bind(sealed.as_ref().map(|s| s.ciphertext.clone()))
    .bind(sealed.as_ref().map(|s| s.nonce.clone()))
    .bind(changes.bank_account.as_ref().map(|a| a.last4()))
    .bind(now)
    .execute(&mut *tx)
    .await?;
    // Field names only: the values (the bank account above all) stay out of the log.
    let event = Event::ok("driver.profile.update", "driver", me)
        .with_details(json!({"fields": changes.fields()}));
    audit::record(&mut tx, &ctx, Who::from(&actor), None, event).await?;
    let view = drivers::profile(&mut tx, me, false).await?.view(now)?;
    tx.commit().await?;
    Ok(Json(view))
}

/// The signed-in driver's documents, newest first.
#[utoipa::path(get, path = "/api/v1/driver/documents", tag = "driver", security(("bearer" = [])),
    responses((status = 200, body = Vec<DriverDocumentView>), (status = 403, body = Problem)))]
async fn list_documents(
    State(app): State<App>,
    auth: Auth,
) -> Result<Json<Vec<DriverDocumentView>>> {
    let (mut tx, _, me) = begin_driver(&app, &auth).await?;
    let docs = drivers::documents(&mut tx, me).await?;
    tx.commit().await?;
    Ok(Json(docs))
}

/// The upload's fields: `file` and `kind`, each once.
async fn read_form(multipart: &mut axum::extract::Multipart) -> Result<(Vec<u8>, DocumentKind)> {
    let mut file = None;
    let mut kind = None;
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| multipart_error(&e))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "file" if file.is_none() => {
                file = Some(read_field(&mut field, media::MAX_UPLOAD_BYTES, too_large).await?);
            }
            "kind" if kind.is_none() => {
                let raw = read_field(&mut field, 64, || {
                    Error::field("kind", "invalid", "unknown document kind")
                })
                .await?;
                let text = String::from_utf8(raw).unwrap_or_default();
                kind = Some(DocumentKind::parse(text.trim()).ok_or_else(|| {
                    Error::field(
                        "kind",
                        "invalid",
                        "kind must be license, insurance, identity or vehicle_registration",
                    )
                })?);
            }
            "file" | "kind" => {
                return Err(Error::field(&name, "duplicate", "send this field once"));
            }
            _ => {
                return Err(Error::field(
                    &name,
                    "unknown_field",
                    "unknown field; expected file and kind",
                ));
            }
        }
    }
    let kind = kind.ok_or_else(|| Error::field("kind", "required", "send the document's kind"))?;
    let file =
        file.ok_or_else(|| Error::field("file", "required", "send the document as `file`"))?;
    if file.is_empty() {
        return Err(Error::field("file", "required", "the file is empty"));
    }
    Ok((file, kind))
}

/// Uploads a document (`multipart/form-data`: `file`, and `kind` — license, insurance,
/// identity or vehicle_registration). JPEG, PNG or PDF, judged from the bytes, at most 10 MiB.
/// It waits for a platform admin's review.
#[utoipa::path(post, path = "/api/v1/driver/documents", tag = "driver", security(("bearer" = [])),
    request_body(content = UploadDocumentForm, content_type = "multipart/form-data"),
    responses((status = 201, body = DriverDocumentView),
        (status = 400, body = Problem, description = "A malformed multipart body"),
        (status = 403, body = Problem),
        (status = 409, body = Problem, description = "30 documents on file already"),
        (status = 413, body = Problem, description = "Larger than 10 MiB"),
        (status = 415, body = Problem, description = "Not multipart, or not a JPEG, PNG or PDF file"),
        (status = 422, body = Problem)))]
async fn upload_document(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiMultipart(mut multipart): ApiMultipart,
) -> Result<(StatusCode, Json<DriverDocumentView>)> {
    let blobs = app.blob_store()?;
    // Who is asking first, so nobody but a driver gets to send 10 MiB into the store.
    let (tx, _, _) = begin_driver(&app, &auth).await?;
    tx.commit().await?;
    let (file, kind) = read_form(&mut multipart).await?;
    let content_type = drivers::sniff_document(&file)?;
    let byte_size = i64::try_from(file.len()).unwrap_or(i64::MAX);
    let hash = blobs.put(Arc::new(file)).await.map_err(Error::unexpected)?;
    let (mut tx, actor, me) = begin_driver(&app, &auth).await?;
    // The profile lock serialises a driver's uploads, so the count below holds.
    drivers::profile(&mut tx, me, true).await?;
    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM driver_documents WHERE driver_id = $1")
            .bind(me)
            .fetch_one(&mut *tx)
            .await?;
    if usize::try_from(count).unwrap_or(usize::MAX) >= driver::MAX_DOCUMENTS {
        return Err(Error::new(
            ErrorCode::Conflict,
            format!(
                "a driver may keep at most {} documents; ask a platform admin to review those on file",
                driver::MAX_DOCUMENTS
            ),
        ));
    }
    let doc = drivers::insert_document(
        &mut tx,
        me,
        &NewDocument {
            kind,
            content_hash: hash.as_str(),
            content_type,
            byte_size,
        },
        app.clock.now(),
    )
    .await?;
    let event = Event::ok("driver.document.upload", "driver_document", doc.id).with_details(
        json!({"kind": kind.as_str(), "content_type": content_type, "byte_size": byte_size}),
    );
    audit::record(&mut tx, &ctx, Who::from(&actor), None, event).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(doc)))
}

/// The signed-in driver's week, online status and dedicated businesses.
#[utoipa::path(get, path = "/api/v1/driver/schedule", tag = "driver", security(("bearer" = [])),
    responses((status = 200, body = ScheduleView), (status = 403, body = Problem)))]
async fn get_schedule(State(app): State<App>, auth: Auth) -> Result<Json<ScheduleView>> {
    let now = app.clock.now();
    let (mut tx, _, me) = begin_driver(&app, &auth).await?;
    let profile = drivers::profile(&mut tx, me, false).await?;
    let view = drivers::schedule_view(&mut tx, &profile, now).await?;
    tx.commit().await?;
    Ok(Json(view))
}

/// Replaces the signed-in driver's availability windows (local times in the profile's zone;
/// at most 21, none overlapping another on its day). Nothing changes when any window is bad.
#[utoipa::path(put, path = "/api/v1/driver/schedule", tag = "driver", security(("bearer" = [])),
    request_body = PutScheduleRequest,
    responses((status = 200, body = ScheduleView), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn put_schedule(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiJson(req): ApiJson<PutScheduleRequest>,
) -> Result<Json<ScheduleView>> {
    let week = req.parse()?;
    let now = app.clock.now();
    let (mut tx, actor, me) = begin_driver(&app, &auth).await?;
    let profile = drivers::profile(&mut tx, me, true).await?;
    drivers::replace_schedule(&mut tx, me, &week).await?;
    let windows: Vec<WindowView> = week.windows().iter().map(WindowView::from).collect();
    let event = Event::ok("driver.schedule.replace", "driver", me)
        .with_details(json!({"windows": windows}));
    audit::record(&mut tx, &ctx, Who::from(&actor), None, event).await?;
    let view = drivers::schedule_view(&mut tx, &profile, now).await?;
    tx.commit().await?;
    Ok(Json(view))
}

/// Goes online or offline. Going online needs an approved driver with a valid licence and an
/// approved licence document (409 `driver_not_ready` otherwise; the profile's `blockers` list
/// what is missing). Going offline always works.
#[utoipa::path(patch, path = "/api/v1/driver/availability", tag = "driver", security(("bearer" = [])),
    request_body = AvailabilityRequest,
    responses((status = 200, body = ScheduleView), (status = 403, body = Problem),
        (status = 409, body = Problem, description = "`driver_not_ready`"), (status = 422, body = Problem)))]
async fn set_availability(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiJson(req): ApiJson<AvailabilityRequest>,
) -> Result<Json<ScheduleView>> {
    let now = app.clock.now();
    let (mut tx, actor, me) = begin_driver(&app, &auth).await?;
    let profile = drivers::profile(&mut tx, me, true).await?;
    if req.online {
        driver::may_go_online(&profile.readiness(), profile.today(now)?).map_err(|blocker| {
            Error::new(
                ErrorCode::DriverNotReady,
                format!("you cannot go online yet: {blocker}"),
            )
        })?;
    }
    drivers::set_online(&mut tx, me, req.online, now).await?;
    let event =
        Event::ok("driver.availability", "driver", me).with_details(json!({"online": req.online}));
    audit::record(&mut tx, &ctx, Who::from(&actor), None, event).await?;
    let profile = drivers::profile(&mut tx, me, false).await?;
    let view = drivers::schedule_view(&mut tx, &profile, now).await?;
    tx.commit().await?;
    if !req.online {
        // An offline driver is no longer a dispatch candidate; its last position is kept in
        // driver_locations, not in the live index.
        app.locations.store.remove(UserId(me));
    }
    Ok(Json(view))
}

// Platform admin ---------------------------------------------------------------------------------

/// Query of the driver list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DriverQuery {
    /// Page size, 1–100 (default 50).
    pub limit: Option<i64>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
    /// Only drivers with this status.
    pub status: Option<DriverStatus>,
    /// Only drivers online (`true`) or offline (`false`).
    pub online: Option<bool>,
    /// Search in name, email and plate.
    pub q: Option<String>,
}

#[derive(sqlx::FromRow)]
struct SummaryRow {
    id: Uuid,
    email: String,
    full_name: String,
    status: String,
    created_at: DateTime<Utc>,
    vehicle_type: Option<String>,
    is_online: bool,
    rating_tenths: Option<i32>,
    rejected: bool,
    pending_documents: i64,
}

/// Lists drivers, newest first, with cursor pagination.
#[utoipa::path(get, path = "/api/v1/admin/drivers", tag = "admin", security(("bearer" = [])), params(DriverQuery),
    responses((status = 200, body = DriverPage), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn list_drivers(
    State(app): State<App>,
    auth: Auth,
    ApiQuery(query): ApiQuery<DriverQuery>,
) -> Result<Json<DriverPage>> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(Error::field(
            "limit",
            "out_of_range",
            "limit must be 1 to 100",
        ));
    }
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let (mut tx, _) = begin_admin(&app, &auth, PlatformPermission::DriversManage).await?;
    let rows: Vec<SummaryRow> = sqlx::query_as(
        "SELECT u.id, u.email, u.full_name, u.status, u.created_at, p.vehicle_type, p.is_online, p.rating_tenths, \
                p.rejection_reason IS NOT NULL AS rejected, \
                (SELECT count(*) FROM driver_documents d WHERE d.driver_id = u.id AND d.status = 'pending') AS pending_documents \
           FROM users u JOIN driver_profiles p ON p.driver_id = u.id \
          WHERE u.kind = 'driver' \
            AND ($1::timestamptz IS NULL OR (u.created_at, u.id) < ($1, $2)) \
            AND ($3::text IS NULL OR CASE $3 \
                    WHEN 'approved' THEN u.status = 'active' \
                    WHEN 'suspended' THEN u.status = 'suspended' \
                    WHEN 'rejected' THEN u.status = 'pending' AND p.rejection_reason IS NOT NULL \
                    ELSE u.status = 'pending' AND p.rejection_reason IS NULL END) \
            AND ($4::boolean IS NULL OR p.is_online = $4) \
            AND ($5::text IS NULL OR u.full_name ILIKE '%' || $5 || '%' OR u.email ILIKE '%' || $5 || '%' \
                 OR p.vehicle_plate ILIKE '%' || $5 || '%') \
          ORDER BY u.created_at DESC, u.id DESC LIMIT $6",
    )
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(query.status.map(DriverStatus::as_str))
    .bind(query.online)
    .bind(
        query
            .q
            .as_deref()
            .map(|s| s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")),
    )
    .bind(limit + 1)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let mut items: Vec<DriverSummary> = rows
        .into_iter()
        .map(|r| DriverSummary {
            id: r.id,
            email: r.email,
            full_name: r.full_name,
            status: DriverStatus::of(&r.status, r.rejected),
            vehicle_type: r.vehicle_type.as_deref().and_then(VehicleType::parse),
            is_online: r.is_online,
            rating_tenths: r.rating_tenths.map(i64::from),
            pending_documents: r.pending_documents,
            created_at: r.created_at,
        })
        .collect();
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(usize::try_from(limit).unwrap_or(50));
        items.last().map(|d| encode_cursor(d.created_at, d.id))
    } else {
        None
    };
    Ok(Json(DriverPage { items, next_cursor }))
}

async fn admin_view(tx: &mut Tx, id: Uuid, now: DateTime<Utc>) -> Result<AdminDriverView> {
    let profile = drivers::profile(tx, id, false).await?;
    let week = drivers::schedule(tx, id).await?;
    Ok(AdminDriverView {
        profile: profile.view(now)?,
        documents: drivers::documents(tx, id).await?,
        windows: week.windows().iter().map(WindowView::from).collect(),
        assignments: drivers::assignments(tx, id).await?,
    })
}

/// One driver: profile (never the bank account, only its last four characters), documents,
/// week and dedicated businesses.
#[utoipa::path(get, path = "/api/v1/admin/drivers/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Driver id")),
    responses((status = 200, body = AdminDriverView), (status = 404, body = Problem)))]
async fn get_driver(
    State(app): State<App>,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<AdminDriverView>> {
    let (mut tx, _) = begin_admin(&app, &auth, PlatformPermission::DriversManage).await?;
    let view = admin_view(&mut tx, id, app.clock.now()).await?;
    tx.commit().await?;
    Ok(Json(view))
}

/// Sets the account's status and records the decision.
async fn decide(
    app: &App,
    ctx: &Ctx,
    auth: &Auth,
    id: Uuid,
    decision: Decision,
) -> Result<Json<AdminDriverView>> {
    let now = app.clock.now();
    let (mut tx, actor) = begin_admin(app, auth, PlatformPermission::DriversManage).await?;
    let admin = match &actor {
        Actor::Admin { user } => user.0,
        _ => return Err(Error::forbidden("this endpoint is for platform admins")),
    };
    let current = drivers::profile(&mut tx, id, true).await?.status();
    let (action, details) = match &decision {
        Decision::Approve => {
            if current == DriverStatus::Approved {
                return Err(Error::new(
                    ErrorCode::Conflict,
                    "the driver is already approved",
                ));
            }
            sqlx::query("UPDATE users SET status = 'active' WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE driver_profiles SET approved_at = $2, approved_by = $3, rejection_reason = NULL, updated_at = $2 \
                 WHERE driver_id = $1",
            )
            .bind(id)
            .bind(now)
            .bind(admin)
            .execute(&mut *tx)
            .await?;
            ("driver.approve", json!({"from": current.as_str()}))
        }
        Decision::Reject(reason) => {
            if matches!(current, DriverStatus::Approved | DriverStatus::Suspended) {
                return Err(Error::new(
                    ErrorCode::Conflict,
                    "only a driver awaiting approval can be rejected; suspend an approved driver instead",
                ));
            }
            sqlx::query(
                "UPDATE driver_profiles SET rejection_reason = $2, approved_at = NULL, approved_by = NULL, \
                 is_online = false, online_since = NULL, updated_at = $3 WHERE driver_id = $1",
            )
            .bind(id)
            .bind(reason)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            ("driver.reject", json!({"reason": reason}))
        }
        Decision::Suspend => {
            if current == DriverStatus::Suspended {
                return Err(Error::new(
                    ErrorCode::Conflict,
                    "the driver is already suspended",
                ));
            }
            // Suspension ends every session at once (the session check reads the status).
            sqlx::query("UPDATE users SET status = 'suspended', session_version = session_version + 1 WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            drivers::set_online(&mut tx, id, false, now).await?;
            ("driver.suspend", json!({"from": current.as_str()}))
        }
    };
    let event = Event::ok(action, "driver", id).with_details(details);
    audit::record(&mut tx, ctx, Who::from(&actor), None, event).await?;
    let view = admin_view(&mut tx, id, now).await?;
    tx.commit().await?;
    if !view.profile.is_online {
        app.locations.store.remove(UserId(id));
    }
    Ok(Json(view))
}

enum Decision {
    Approve,
    Reject(String),
    Suspend,
}

/// Approves a driver (pending, rejected, or suspended — which reinstates them). They may go
/// online once their licence and an approved licence document are in order.
#[utoipa::path(post, path = "/api/v1/admin/drivers/{id}/approve", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Driver id")),
    responses((status = 200, body = AdminDriverView), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn approve_driver(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<AdminDriverView>> {
    decide(&app, &ctx, &auth, id, Decision::Approve).await
}

/// Rejects a driver awaiting approval, with a reason the driver sees.
#[utoipa::path(post, path = "/api/v1/admin/drivers/{id}/reject", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Driver id")), request_body = RejectDriverRequest,
    responses((status = 200, body = AdminDriverView), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn reject_driver(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<RejectDriverRequest>,
) -> Result<Json<AdminDriverView>> {
    let reason = req.parse()?;
    decide(&app, &ctx, &auth, id, Decision::Reject(reason)).await
}

/// Suspends a driver: offline at once, and signed out everywhere.
#[utoipa::path(post, path = "/api/v1/admin/drivers/{id}/suspend", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Driver id")),
    responses((status = 200, body = AdminDriverView), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn suspend_driver(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<AdminDriverView>> {
    decide(&app, &ctx, &auth, id, Decision::Suspend).await
}

/// Approves or rejects (with a reason) one of a driver's documents.
#[utoipa::path(patch, path = "/api/v1/admin/drivers/{id}/documents/{doc_id}", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Driver id"), ("doc_id" = Uuid, Path, description = "Document id")),
    request_body = ReviewDocumentRequest,
    responses((status = 200, body = DriverDocumentView), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn review_document(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiPath((id, doc_id)): ApiPath<(Uuid, Uuid)>,
    ApiJson(req): ApiJson<ReviewDocumentRequest>,
) -> Result<Json<DriverDocumentView>> {
    let decision = req.parse()?;
    let (mut tx, actor) = begin_admin(&app, &auth, PlatformPermission::DriversManage).await?;
    let admin = match &actor {
        Actor::Admin { user } => user.0,
        _ => return Err(Error::forbidden("this endpoint is for platform admins")),
    };
    let status = decision.0;
    let doc =
        drivers::review_document(&mut tx, id, doc_id, decision, admin, app.clock.now()).await?;
    let event = Event::ok("driver.document.review", "driver_document", doc_id)
        .with_details(json!({"driver": id, "status": status.as_str()}));
    audit::record(&mut tx, &ctx, Who::from(&actor), None, event).await?;
    tx.commit().await?;
    Ok(Json(doc))
}

/// The bytes of one of a driver's documents, for the admin reviewing it. Never cached, never
/// rendered inline as anything but its sniffed type.
#[utoipa::path(get, path = "/api/v1/admin/drivers/{id}/documents/{doc_id}/content", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Driver id"), ("doc_id" = Uuid, Path, description = "Document id")),
    responses((status = 200, description = "The bytes, as image/jpeg, image/png or application/pdf"),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn document_content(
    State(app): State<App>,
    auth: Auth,
    ApiPath((id, doc_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<Response> {
    let blobs = app.blob_store()?;
    let (mut tx, _) = begin_admin(&app, &auth, PlatformPermission::DriversManage).await?;
    let (hash, content_type): (String, String) = sqlx::query_as(
        "SELECT content_hash, content_type FROM driver_documents WHERE driver_id = $1 AND id = $2",
    )
    .bind(id)
    .bind(doc_id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| Error::not_found("document"))?;
    tx.commit().await?;
    let hash =
        ContentHash::parse(&hash).map_err(|e| Error::unexpected(anyhow::anyhow!(e.message)))?;
    let bytes = blobs
        .get(&hash)
        .await
        .map_err(Error::unexpected)?
        .ok_or_else(|| Error::not_found("document"))?;
    crate::storage::private_download(&content_type, bytes)
}

/// Dedicates a driver to a business with a priority (1 = asked first), or changes the
/// priority of an existing assignment. A new assignment must fit the business plan's
/// `dedicated_drivers` limit (403 `plan_limit_reached`).
#[utoipa::path(post, path = "/api/v1/admin/drivers/{id}/assign", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Driver id")), request_body = AssignDriverRequest,
    responses((status = 201, body = DriverAssignmentView, description = "Assigned"),
        (status = 200, body = DriverAssignmentView, description = "Priority changed"),
        (status = 403, body = Problem, description = "`plan_limit_reached`"), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "The driver is suspended"), (status = 422, body = Problem)))]
async fn assign_driver(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<AssignDriverRequest>,
) -> Result<(StatusCode, Json<DriverAssignmentView>)> {
    let priority = req.parse()?;
    let business = BusinessId(req.business_id);
    let (mut tx, actor) = begin_admin(&app, &auth, PlatformPermission::DriversManage).await?;
    let status = drivers::profile(&mut tx, id, true).await?.status();
    if status == DriverStatus::Suspended {
        return Err(Error::new(ErrorCode::Conflict, "the driver is suspended"));
    }
    // The business row lock serialises assignments to one business, so two at once cannot
    // both squeeze under the plan's limit.
    let name: String = sqlx::query_scalar("SELECT name FROM businesses WHERE id = $1 FOR UPDATE")
        .bind(business.0)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::not_found("business"))?;
    let existing: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM driver_businesses WHERE business_id = $1 AND driver_id = $2)",
    )
    .bind(business.0)
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    if !existing {
        let current: i64 =
            sqlx::query_scalar("SELECT count(*) FROM driver_businesses WHERE business_id = $1")
                .bind(business.0)
                .fetch_one(&mut *tx)
                .await?;
        tenancy::check_plan_limit(&mut tx, business, LimitKind::DedicatedDrivers, current).await?;
    }
    let (priority, created_at): (i16, DateTime<Utc>) = sqlx::query_as(
        "INSERT INTO driver_businesses (business_id, driver_id, priority, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (business_id, driver_id) DO UPDATE SET priority = EXCLUDED.priority \
         RETURNING priority, created_at",
    )
    .bind(business.0)
    .bind(id)
    .bind(i16::from(priority.get()))
    .bind(app.clock.now())
    .fetch_one(&mut *tx)
    .await?;
    let event = Event::ok("driver.assign", "driver", id)
        .with_details(json!({"business": business.0, "priority": priority, "new": !existing}));
    audit::record(
        &mut tx,
        &ctx,
        Who::from(&actor),
        Some(business),
        event.clone(),
    )
    .await?;
    audit::record(&mut tx, &ctx, Who::from(&actor), None, event).await?;
    tx.commit().await?;
    let status = if existing {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        Json(DriverAssignmentView {
            business_id: business.0,
            business_name: Some(name),
            priority: i64::from(priority),
            created_at,
        }),
    ))
}

/// Ends a driver's dedication to a business.
#[utoipa::path(delete, path = "/api/v1/admin/drivers/{id}/assignments/{business_id}", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Driver id"), ("business_id" = Uuid, Path, description = "Business id")),
    responses((status = 204, description = "Removed"), (status = 404, body = Problem)))]
async fn unassign_driver(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiPath((id, business_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<StatusCode> {
    let business = BusinessId(business_id);
    let (mut tx, actor) = begin_admin(&app, &auth, PlatformPermission::DriversManage).await?;
    let deleted =
        sqlx::query("DELETE FROM driver_businesses WHERE business_id = $1 AND driver_id = $2")
            .bind(business.0)
            .bind(id)
            .execute(&mut *tx)
            .await?;
    if deleted.rows_affected() == 0 {
        return Err(Error::not_found("assignment"));
    }
    let event =
        Event::ok("driver.unassign", "driver", id).with_details(json!({"business": business.0}));
    audit::record(
        &mut tx,
        &ctx,
        Who::from(&actor),
        Some(business),
        event.clone(),
    )
    .await?;
    audit::record(&mut tx, &ctx, Who::from(&actor), None, event).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
