//! Drivers' pay rates: the platform admin's `GET /api/v1/admin/driver-rates` and
//! `PUT /api/v1/admin/driver-rates/{currency}`, and the driver's `GET /api/v1/driver/rates`.
//!
//! The rates are platform terms, one row per currency (see [`crate::pay_rates`]); admins write
//! them under the `drivers.manage` platform permission, audited in the platform log. Drivers
//! read every currency's rates: a shared-pool driver may work for a business in any currency,
//! and the terms are the same for every driver.

use axum::extract::State;
use axum::Json;
use fleetfront_domain::api::driver::{DriverPayRatesView, PutDriverPayRatesRequest};
use fleetfront_domain::api::Problem;
use fleetfront_domain::permission::{Actor, PlatformPermission};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::admin::begin_admin;
use crate::app::App;
use crate::audit::{self, Event, Who};
use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::extract::{ApiJson, ApiPath, Auth};
use crate::pay_rates;

pub(crate) fn routes(router: OpenApiRouter<App>) -> OpenApiRouter<App> {
    router
        .routes(routes!(list_rates))
        .routes(routes!(put_rates))
        .routes(routes!(driver_rates))
}

/// Every currency's driver pay rates. A currency that is not listed pays drivers the delivery
/// fee and the tip whole (no distance rate, no commission, no surge).
#[utoipa::path(get, path = "/api/v1/admin/driver-rates", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Vec<DriverPayRatesView>), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn list_rates(State(app): State<App>, auth: Auth) -> Result<Json<Vec<DriverPayRatesView>>> {
    let (mut tx, _) = begin_admin(&app, &auth, PlatformPermission::DriversManage).await?;
    let rates = pay_rates::list(&mut tx).await?;
    tx.commit().await?;
    Ok(Json(rates))
}

/// Sets one currency's driver pay rates, replacing those on file. They apply to offers made
/// and deliveries completed from now on. An unknown currency code or a value out of range is a
/// 422 naming every field at fault.
#[utoipa::path(put, path = "/api/v1/admin/driver-rates/{currency}", tag = "admin", security(("bearer" = [])),
    params(("currency" = String, Path, description = "ISO 4217 code, e.g. EUR")),
    request_body = PutDriverPayRatesRequest,
    responses((status = 200, body = DriverPayRatesView), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 422, body = Problem)))]
async fn put_rates(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiPath(currency): ApiPath<String>,
    ApiJson(req): ApiJson<PutDriverPayRatesRequest>,
) -> Result<Json<DriverPayRatesView>> {
    let (mut tx, actor) = begin_admin(&app, &auth, PlatformPermission::DriversManage).await?;
    let rates = req.parse(&currency)?;
    let admin = match actor {
        Actor::Admin { user } => user.0,
        _ => return Err(Error::forbidden("this endpoint is for platform admins")),
    };
    let view = pay_rates::put(&mut tx, &rates, admin, app.clock.now()).await?;
    let event =
        Event::ok("driver_rates.update", "driver_pay_rates", view.currency).with_request(&req)?;
    audit::record(&mut tx, &ctx, Who::from(&actor), None, event).await?;
    tx.commit().await?;
    Ok(Json(view))
}

/// The driver pay rates of every currency, as the signed-in driver works under them. A currency
/// that is not listed pays the delivery fee and the tip whole.
#[utoipa::path(get, path = "/api/v1/driver/rates", tag = "driver", security(("bearer" = [])),
    responses((status = 200, body = Vec<DriverPayRatesView>), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn driver_rates(State(app): State<App>, auth: Auth) -> Result<Json<Vec<DriverPayRatesView>>> {
    let (mut tx, actor) = app.db.begin_as(&auth.0).await?;
    if !matches!(actor, Actor::Driver { .. }) {
        return Err(Error::forbidden("this endpoint is for drivers"));
    }
    let rates = pay_rates::list(&mut tx).await?;
    tx.commit().await?;
    Ok(Json(rates))
}
