//! Liveness and readiness.

use axum::extract::State;
use axum::Json;
use fleetfront_domain::ErrorCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::App;
use crate::error::{Error, Result};

/// Health status.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: &'static str,
}

pub(crate) fn routes(router: OpenApiRouter<App>) -> OpenApiRouter<App> {
    router.routes(routes!(healthz)).routes(routes!(readyz))
}

/// Liveness: the process serves requests.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: the database answers as the runtime role.
#[utoipa::path(get, path = "/readyz", tag = "health", responses((status = 200, body = Health), (status = 503, body = fleetfront_domain::api::Problem)))]
async fn readyz(State(app): State<App>) -> Result<Json<Health>> {
    sqlx::query_scalar::<_, i32>("SELECT 1")
        .fetch_one(&app.db.pool)
        .await
        .map_err(|_| Error::new(ErrorCode::Unavailable, "the database is not reachable"))?;
    Ok(Json(Health { status: "ok" }))
}
