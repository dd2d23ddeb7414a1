//! Drivers' live locations over HTTP: a driver's device sends batches of GPS fixes
//! (`POST /api/v1/driver/location`), and platform admins read the drivers nearest to a point
//! (`GET /api/v1/admin/drivers/locations`), the read the dispatch board will use. The rules are
//! in `fleetfront_domain::location`; the store and its persistence in [`crate::locations`].
//!
//! Ingestion is the hottest write path of the platform (every online driver, every few
//! seconds), so it does not open a transaction per batch: a driver's session and approval are
//! checked against the database once and then trusted for
//! [`crate::locations::APPROVAL_TTL`] (like the session
//! cache, whose invalidation a suspension still goes through), and the fixes go to memory and a
//! queue. The batch answers 202: stored in memory and queued, written to PostgreSQL within a
//! quarter of a second.

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use fleetfront_domain::api::location::{
    LocationAccepted, LocationBatchRequest, NearbyDriver, NearbyDriverList, NearbyDriversQuery,
};
use fleetfront_domain::api::Problem;
use fleetfront_domain::auth::Claims;
use fleetfront_domain::location::is_live;
use fleetfront_domain::permission::{AccountKind, PlatformPermission, Resource};
use fleetfront_domain::{ErrorCode, UserId};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::authorize;
use crate::app::{App, KeepSessions};
use crate::error::{Error, Result};
use crate::extract::{ApiJson, ApiQuery, Auth};
use crate::locations::IngestError;

/// Largest location batch body: 500 fixes at ~150 bytes each, with room to spare.
pub const BATCH_BODY_LIMIT: usize = 96 * 1024;

pub(crate) fn routes(router: OpenApiRouter<App>) -> OpenApiRouter<App> {
    let ingest = OpenApiRouter::new()
        .routes(routes!(ingest_locations))
        .layer(DefaultBodyLimit::max(BATCH_BODY_LIMIT));
    router.merge(ingest).routes(routes!(nearby_drivers))
}

/// The caller as an approved driver: a driver token whose session is current and whose account
/// is `active` (approved), not `pending`.
async fn approved_driver(app: &App, claims: &Claims) -> Result<UserId> {
    if claims.kind != AccountKind::Driver {
        return Err(Error::forbidden("this endpoint is for drivers"));
    }
    let driver = UserId(claims.sub);
    let session_current = matches!(app.db.cached_actor(claims), Some(Ok(_)));
    if session_current && app.locations.approved.get(driver, claims.sv) {
        return Ok(driver);
    }
    let (mut tx, _) = app.db.begin_as(claims).await?;
    let status: Option<String> = sqlx::query_scalar("SELECT status FROM users WHERE id = $1")
        .bind(claims.sub)
        .fetch_optional(&mut *tx)
        .await?;
    tx.commit().await?;
    if status.as_deref() != Some("active") {
        return Err(Error::new(
            ErrorCode::AccountInactive,
            "this driver account is not approved yet",
        ));
    }
    app.locations.approved.put(driver, claims.sv);
    Ok(driver)
}

/// Takes a batch of GPS fixes from one of the driver's devices (oldest first, `seq` strictly
/// increasing). The whole batch is checked first: one impossible fix refuses it (422, errors
/// named `fixes[i].field`) and nothing is recorded. Fixes already received (same device and
/// `seq`) are counted as duplicates and ignored. The newest fix is the driver's position as soon
/// as this answers; the fixes reach the database within a quarter of a second. When the server
/// is behind on writing, it answers 503 with `Retry-After`: keep the batch and send it again.
#[utoipa::path(post, path = "/api/v1/driver/location", tag = "driver", security(("bearer" = [])),
    request_body = LocationBatchRequest,
    responses((status = 202, body = LocationAccepted), (status = 401, body = Problem),
        (status = 403, body = Problem, description = "not a driver token, or `account_inactive`: not approved yet"),
        (status = 422, body = Problem), (status = 503, body = Problem)))]
async fn ingest_locations(
    State(app): State<App>,
    auth: Auth,
    ApiJson(req): ApiJson<LocationBatchRequest>,
) -> Result<Response> {
    let driver = approved_driver(&app, &auth.0).await?;
    let now = app.clock.now();
    let batch = req.parse(now).map_err(Error::validation)?;
    let accepted = app
        .locations
        .ingest(driver, &batch.device_id, &batch.fixes, now)
        .map_err(|IngestError::Busy| {
            Error::new(
                ErrorCode::Unavailable,
                "the server is behind on storing locations; send this batch again shortly",
            )
            .with_retry_after(1)
        })?;
    let body = LocationAccepted {
        accepted: u32::try_from(accepted.new.len()).unwrap_or(u32::MAX),
        duplicates: u32::try_from(accepted.duplicates).unwrap_or(u32::MAX),
    };
    let mut response = (StatusCode::ACCEPTED, Json(body)).into_response();
    response.extensions_mut().insert(KeepSessions);
    Ok(response)
}

/// The drivers nearest to a point by their latest known position, nearest first, with the
/// distance and when each was last seen (`live` is false for positions older than a minute).
#[utoipa::path(get, path = "/api/v1/admin/drivers/locations", tag = "admin", security(("bearer" = [])),
    params(NearbyDriversQuery),
    responses((status = 200, body = NearbyDriverList), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn nearby_drivers(
    State(app): State<App>,
    auth: Auth,
    ApiQuery(query): ApiQuery<NearbyDriversQuery>,
) -> Result<Json<NearbyDriverList>> {
    let (tx, actor) = app.db.begin_as(&auth.0).await?;
    tx.commit().await?;
    authorize(
        &actor,
        PlatformPermission::DriversManage,
        Resource::Platform,
    )?;
    let q = query.parse().map_err(Error::validation)?;
    let now = app.clock.now();
    let found = app.locations.store.nearest(
        q.latitude,
        q.longitude,
        q.k,
        f64::from(q.max_distance_m),
        |_| true,
    );
    let drivers = found
        .into_iter()
        .map(|(driver, distance, fix)| {
            let received_at = app
                .locations
                .store
                .latest(driver)
                .map_or(now, |(_, received)| received);
            NearbyDriver {
                driver_id: driver.0,
                distance_m: distance.round().min(f64::from(u32::MAX)) as u32,
                latitude: fix.latitude(),
                longitude: fix.longitude(),
                accuracy_m: fix.accuracy_m(),
                heading_deg: fix.heading_deg(),
                speed_mps: fix.speed_mps(),
                last_seen_at: fix.recorded_at(),
                received_at,
                live: is_live(fix.recorded_at(), now),
            }
        })
        .collect();
    Ok(Json(NearbyDriverList { drivers }))
}
