//! A business's delivery fleet: its dedicated drivers (`/api/v1/business/drivers`, read only —
//! platform admins assign drivers) and its dispatch settings
//! (`/api/v1/business/dispatch-settings`: shared pool opt-in, offer timeout, proof photos, cash
//! cap). The business is the one in the token; row level security shows its own rows only.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use fleetfront_domain::api::driver::{
    BusinessDriverView, DispatchSettingsView, UpdateDispatchSettingsRequest,
};
use fleetfront_domain::api::Problem;
use fleetfront_domain::driver::VehicleType;
use fleetfront_domain::permission::{can, Actor, Permission, Resource};
use fleetfront_domain::{BusinessId, ErrorCode};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::staff_business;
use crate::app::App;
use crate::audit::{self, Event, Who};
use crate::context::Ctx;
use crate::db::Tx;
use crate::error::{Error, Result};
use crate::extract::{ApiJson, ApiPath, Auth};
use crate::tenancy;

pub(crate) fn routes(router: OpenApiRouter<App>) -> OpenApiRouter<App> {
    router
        .routes(routes!(list_drivers))
        .routes(routes!(get_driver))
        .routes(routes!(get_dispatch_settings, update_dispatch_settings))
}

/// Begins as staff holding any of `permissions` in their business.
async fn begin_staff_any(
    app: &App,
    auth: &Auth,
    permissions: &[Permission],
) -> Result<(Tx, Actor, BusinessId)> {
    let (tx, actor) = app.db.begin_as(&auth.0).await?;
    let business = staff_business(&actor)?;
    if !permissions
        .iter()
        .any(|p| can(&actor, *p, Resource::Business(business)))
    {
        return Err(Error::forbidden("your role does not allow this"));
    }
    Ok((tx, actor, business))
}

type DriverRow = (
    Uuid,
    String,
    Option<String>,
    Option<String>,
    i16,
    bool,
    Option<DateTime<Utc>>,
    Option<i32>,
);

const DRIVER_SELECT: &str = "SELECT d.driver_id, u.full_name, u.phone, p.vehicle_type, d.priority, p.is_online, p.online_since, p.rating_tenths \
       FROM driver_businesses d \
       JOIN users u ON u.id = d.driver_id \
       JOIN driver_profiles p ON p.driver_id = d.driver_id \
      WHERE d.business_id = $1";

fn driver_view(row: DriverRow) -> BusinessDriverView {
    let (driver_id, full_name, phone, vehicle, priority, is_online, online_since, rating) = row;
    BusinessDriverView {
        driver_id,
        full_name,
        phone,
        vehicle_type: vehicle.as_deref().and_then(VehicleType::parse),
        priority: i64::from(priority),
        is_online,
        online_since,
        rating_tenths: rating.map(i64::from),
    }
}

/// The business's dedicated drivers, by priority, with whether each is online.
#[utoipa::path(get, path = "/api/v1/business/drivers", tag = "business", security(("bearer" = [])),
    responses((status = 200, body = Vec<BusinessDriverView>), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn list_drivers(State(app): State<App>, auth: Auth) -> Result<Json<Vec<BusinessDriverView>>> {
    let (mut tx, _, business) = begin_staff_any(
        &app,
        &auth,
        &[Permission::DispatchManage, Permission::OrdersRead],
    )
    .await?;
    let rows: Vec<DriverRow> = sqlx::query_as(&format!(
        "{DRIVER_SELECT} ORDER BY d.priority, u.full_name, d.driver_id"
    ))
    .bind(business.0)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Json(rows.into_iter().map(driver_view).collect()))
}

/// One of the business's dedicated drivers; any other driver answers 404.
#[utoipa::path(get, path = "/api/v1/business/drivers/{id}", tag = "business", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Driver id")),
    responses((status = 200, body = BusinessDriverView), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_driver(
    State(app): State<App>,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<BusinessDriverView>> {
    let (mut tx, _, business) = begin_staff_any(
        &app,
        &auth,
        &[Permission::DispatchManage, Permission::OrdersRead],
    )
    .await?;
    let row: DriverRow = sqlx::query_as(&format!("{DRIVER_SELECT} AND d.driver_id = $2"))
        .bind(business.0)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::not_found("driver"))?;
    tx.commit().await?;
    Ok(Json(driver_view(row)))
}

type SettingsRow = (bool, i32, bool, i64, DateTime<Utc>);

async fn settings_view(tx: &mut Tx, business: BusinessId) -> Result<DispatchSettingsView> {
    // A trigger makes the row with every business (and migration 0017 for those before it);
    // a missing row reads as the defaults, and the first change writes it.
    let select = "SELECT shared_pool_opt_in, offer_timeout_secs, require_proof_photo, cash_cap_minor, updated_at \
                  FROM business_dispatch_settings WHERE business_id = $1";
    let row: Option<SettingsRow> = sqlx::query_as(select)
        .bind(business.0)
        .fetch_optional(&mut **tx)
        .await?;
    let (opt_in, timeout, proof, cap, updated_at) = match row {
        Some(row) => row,
        None => {
            sqlx::query(
                "INSERT INTO business_dispatch_settings (business_id) VALUES ($1) ON CONFLICT (business_id) DO NOTHING",
            )
            .bind(business.0)
            .execute(&mut **tx)
            .await?;
            sqlx::query_as(select)
                .bind(business.0)
                .fetch_one(&mut **tx)
                .await?
        }
    };
    let (_, features) = tenancy::entitlements(tx, business).await?;
    Ok(DispatchSettingsView {
        shared_pool_opt_in: opt_in,
        shared_pool_available: features.shared_driver_pool,
        offer_timeout_secs: i64::from(timeout),
        require_proof_photo: proof,
        cash_cap_minor: cap,
        updated_at,
    })
}

/// The business's dispatch settings.
#[utoipa::path(get, path = "/api/v1/business/dispatch-settings", tag = "business", security(("bearer" = [])),
    responses((status = 200, body = DispatchSettingsView), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn get_dispatch_settings(
    State(app): State<App>,
    auth: Auth,
) -> Result<Json<DispatchSettingsView>> {
    let (mut tx, _, business) = begin_staff_any(
        &app,
        &auth,
        &[Permission::DispatchManage, Permission::BusinessRead],
    )
    .await?;
    let view = settings_view(&mut tx, business).await?;
    tx.commit().await?;
    Ok(Json(view))
}

/// Changes the dispatch settings (`dispatch.manage`). Opting into the shared driver pool needs
/// a plan that includes it (403 `plan_limit_reached` otherwise).
#[utoipa::path(patch, path = "/api/v1/business/dispatch-settings", tag = "business", security(("bearer" = [])),
    request_body = UpdateDispatchSettingsRequest,
    responses((status = 200, body = DispatchSettingsView), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn update_dispatch_settings(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiJson(req): ApiJson<UpdateDispatchSettingsRequest>,
) -> Result<Json<DispatchSettingsView>> {
    let update = req.parse()?;
    let (mut tx, actor, business) =
        begin_staff_any(&app, &auth, &[Permission::DispatchManage]).await?;
    if update.shared_pool_opt_in == Some(true) {
        let (_, features) = tenancy::entitlements(&mut tx, business).await?;
        if !features.shared_driver_pool {
            return Err(Error::new(
                ErrorCode::PlanLimitReached,
                "the plan does not include the shared driver pool; upgrade to use it",
            ));
        }
    }
    let timeout = update
        .offer_timeout_secs
        .map(i32::try_from)
        .transpose()
        .map_err(Error::unexpected)?;
    sqlx::query(
        "INSERT INTO business_dispatch_settings (business_id) VALUES ($1) ON CONFLICT (business_id) DO NOTHING",
    )
    .bind(business.0)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE business_dispatch_settings SET shared_pool_opt_in = coalesce($2, shared_pool_opt_in), \
         offer_timeout_secs = coalesce($3, offer_timeout_secs), require_proof_photo = coalesce($4, require_proof_photo), \
         cash_cap_minor = coalesce($5, cash_cap_minor), updated_at = $6 WHERE business_id = $1",
    )
    .bind(business.0)
    .bind(update.shared_pool_opt_in)
    .bind(timeout)
    .bind(update.require_proof_photo)
    .bind(update.cash_cap_minor)
    .bind(app.clock.now())
    .execute(&mut *tx)
    .await?;
    let event = Event::ok("dispatch_settings.update", "business", business).with_request(&req)?;
    audit::record(&mut tx, &ctx, Who::from(&actor), Some(business), event).await?;
    let view = settings_view(&mut tx, business).await?;
    tx.commit().await?;
    Ok(Json(view))
}
