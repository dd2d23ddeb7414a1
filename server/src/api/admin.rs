//! Platform administration: `/api/v1/admin/*`.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use fleetfront_domain::api::admin::{
    BusinessPage, BusinessStatus, BusinessView, CreateBusinessRequest, CreatePlanRequest, PlanView,
    PlatformMetrics, UpdateBusinessRequest, UpdatePlanRequest,
};
use fleetfront_domain::api::Problem;
use fleetfront_domain::money::{Currency, Money};
use fleetfront_domain::permission::{Actor, PlatformPermission, Resource};
use fleetfront_domain::plan::{self, LimitKind};
use fleetfront_domain::{BusinessId, ErrorCode, PlanId};
use serde::Deserialize;
use sqlx::Row;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::authorize;
use crate::app::App;
use crate::audit::{self, Event, Who};
use crate::context::Ctx;
use crate::db::{new_id, Tx};
use crate::error::{Error, Result};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth};
use crate::tenancy;

pub(crate) fn routes(router: OpenApiRouter<App>) -> OpenApiRouter<App> {
    router
        .routes(routes!(list_businesses, create_business))
        .routes(routes!(get_business, update_business))
        .routes(routes!(list_plans, create_plan))
        .routes(routes!(get_plan, update_plan, delete_plan))
        .routes(routes!(platform_metrics))
}

pub(crate) async fn begin_admin(
    app: &App,
    auth: &Auth,
    permission: PlatformPermission,
) -> Result<(Tx, Actor)> {
    let (tx, actor) = app.db.begin_as(&auth.0).await?;
    authorize(&actor, permission, Resource::Platform)?;
    Ok((tx, actor))
}

/// Query of the business list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct BusinessQuery {
    /// Page size, 1–100 (default 50).
    pub limit: Option<i64>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
    /// Only businesses with this status.
    pub status: Option<BusinessStatus>,
    /// Search in name and subdomain.
    pub q: Option<String>,
}

pub(crate) fn decode_cursor(raw: &str) -> Result<(DateTime<Utc>, Uuid)> {
    let invalid = || {
        Error::field(
            "cursor",
            "invalid",
            "the cursor is not one this API returned",
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (micros, id) = text.split_once('|').ok_or_else(invalid)?;
    let micros: i64 = micros.parse().map_err(|_| invalid())?;
    let at = DateTime::from_timestamp_micros(micros).ok_or_else(invalid)?;
    Ok((at, Uuid::parse_str(id).map_err(|_| invalid())?))
}

pub(crate) fn encode_cursor(at: DateTime<Utc>, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}|{id}", at.timestamp_micros()))
}

/// Lists businesses, newest first, with cursor pagination.
#[utoipa::path(get, path = "/api/v1/admin/businesses", tag = "admin", security(("bearer" = [])), params(BusinessQuery),
    responses((status = 200, body = BusinessPage), (status = 403, body = Problem)))]
async fn list_businesses(
    State(app): State<App>,
    auth: Auth,
    ApiQuery(query): ApiQuery<BusinessQuery>,
) -> Result<Json<BusinessPage>> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(Error::field(
            "limit",
            "out_of_range",
            "limit must be 1 to 100",
        ));
    }
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let (mut tx, _) = begin_admin(&app, &auth, PlatformPermission::BusinessesManage).await?;
    let mut items = tenancy::business_page(
        &mut tx,
        &app,
        after,
        query.status,
        query.q.as_deref(),
        limit + 1,
    )
    .await?;
    tx.commit().await?;
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(usize::try_from(limit).unwrap_or(50));
        items.last().map(|b| encode_cursor(b.created_at, b.id.0))
    } else {
        None
    };
    Ok(Json(BusinessPage { items, next_cursor }))
}

/// Onboards a business in one transaction: details, plan (trial), owner account, categories,
/// reserved subdomain, welcome email.
#[utoipa::path(post, path = "/api/v1/admin/businesses", tag = "admin", security(("bearer" = [])), request_body = CreateBusinessRequest,
    responses((status = 201, body = BusinessView), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_business(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiJson(req): ApiJson<CreateBusinessRequest>,
) -> Result<(StatusCode, HeaderMap, Json<BusinessView>)> {
    let onboarding = req.parse()?;
    let (mut tx, actor) = begin_admin(&app, &auth, PlatformPermission::BusinessesManage).await?;
    let done = tenancy::onboard(&mut tx, &app, &onboarding).await?;
    let event = Event::ok("business.onboard", "business", done.business)
        .with_details(serde_json::json!({"plan": onboarding.plan.as_str(), "subdomain": onboarding.subdomain.as_str(), "owner": done.owner}));
    audit::record(
        &mut tx,
        &ctx,
        Who::from(&actor),
        Some(done.business),
        event.clone(),
    )
    .await?;
    audit::record(&mut tx, &ctx, Who::from(&actor), None, event).await?;
    let view = tenancy::business_view(&mut tx, &app, done.business).await?;
    tx.commit().await?;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::LOCATION,
        HeaderValue::from_str(&format!("/api/v1/admin/businesses/{}", view.id))
            .expect("ids are header-safe"),
    );
    Ok((StatusCode::CREATED, headers, Json(view)))
}

/// One business.
#[utoipa::path(get, path = "/api/v1/admin/businesses/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Business id")),
    responses((status = 200, body = BusinessView), (status = 404, body = Problem)))]
async fn get_business(
    State(app): State<App>,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<BusinessView>> {
    let (mut tx, _) = begin_admin(&app, &auth, PlatformPermission::BusinessesManage).await?;
    let view = tenancy::business_view(&mut tx, &app, BusinessId(id)).await?;
    tx.commit().await?;
    Ok(Json(view))
}

/// Updates details, suspends or reactivates, or moves a business to another plan.
#[utoipa::path(patch, path = "/api/v1/admin/businesses/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Business id")), request_body = UpdateBusinessRequest,
    responses((status = 200, body = BusinessView), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn update_business(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<UpdateBusinessRequest>,
) -> Result<Json<BusinessView>> {
    let update = req.parse()?;
    let business = BusinessId(id);
    let (mut tx, actor) = begin_admin(&app, &auth, PlatformPermission::BusinessesManage).await?;
    let exists: Option<String> =
        sqlx::query_scalar("SELECT status FROM businesses WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    exists.ok_or_else(|| Error::not_found("business"))?;
    sqlx::query(
        "UPDATE businesses SET name = coalesce($2, name), contact_email = coalesce($3, contact_email), \
         contact_phone = coalesce($4, contact_phone), status = coalesce($5, status), time_zone = coalesce($6, time_zone), \
         delivery_radius_m = coalesce($7, delivery_radius_m), updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(update.name.as_ref().map(|v| v.as_str()))
    .bind(update.contact_email.as_ref().map(|v| v.as_str()))
    .bind(update.contact_phone.as_ref().map(|v| v.as_str()))
    .bind(update.status.map(|s| s.as_str()))
    .bind(update.time_zone.as_ref().map(|v| v.as_str()))
    .bind(update.delivery_radius.map(|r| i32::try_from(r.metres()).expect("radius fits")))
    .execute(&mut *tx)
    .await?;
    if update.plan.is_some() || update.billing_interval.is_some() {
        let plan = match &update.plan {
            Some(key) => Some(
                tenancy::plan_by_key(&mut tx, key.as_str())
                    .await?
                    .filter(|p| p.is_active)
                    .ok_or_else(|| {
                        Error::field(
                            "plan",
                            "unknown_plan",
                            format!("there is no active plan {:?}", key.as_str()),
                        )
                    })?,
            ),
            None => None,
        };
        if let Some(plan) = &plan {
            // Moving to a smaller plan must not leave the business over its new limits.
            let seats: i64 =
                sqlx::query_scalar("SELECT count(*) FROM memberships WHERE business_id = $1")
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
            let products: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM products WHERE business_id = $1 AND archived_at IS NULL",
            )
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
            for (kind, current) in [
                (LimitKind::StaffSeats, seats),
                (LimitKind::Products, products),
            ] {
                plan::check_fits(&plan.limits, kind, u64::try_from(current).unwrap_or(0)).map_err(
                    |e| Error::new(ErrorCode::PlanLimitReached, format!("{}: {e}", plan.key)),
                )?;
            }
        }
        let updated = sqlx::query(
            "UPDATE business_subscriptions SET plan_id = coalesce($2, plan_id), billing_interval = coalesce($3, billing_interval), \
             usage_limits = coalesce($4, usage_limits), features_enabled = coalesce($5, features_enabled), \
             platform_fee_bps = coalesce((SELECT platform_fee_bps FROM subscription_plans WHERE id = $2), platform_fee_bps), updated_at = now() \
             WHERE business_id = $1 AND status <> 'canceled'",
        )
        .bind(id)
        .bind(plan.as_ref().map(|p| p.id))
        .bind(update.billing_interval.map(|b| b.as_str()))
        .bind(plan.as_ref().map(|p| serde_json::to_value(&p.limits)).transpose().map_err(Error::unexpected)?)
        .bind(plan.as_ref().map(|p| serde_json::to_value(&p.features)).transpose().map_err(Error::unexpected)?)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(Error::new(
                ErrorCode::Conflict,
                "the business has no live subscription to change",
            ));
        }
    }
    let event = Event::ok("business.update", "business", business).with_request(&req)?;
    audit::record(
        &mut tx,
        &ctx,
        Who::from(&actor),
        Some(business),
        event.clone(),
    )
    .await?;
    audit::record(&mut tx, &ctx, Who::from(&actor), None, event).await?;
    let view = tenancy::business_view(&mut tx, &app, business).await?;
    tx.commit().await?;
    Ok(Json(view))
}

fn plan_view(row: &sqlx::postgres::PgRow) -> Result<PlanView> {
    let currency: String = row.try_get("currency")?;
    let currency = Currency::parse(currency.trim()).map_err(Error::unexpected)?;
    Ok(PlanView {
        id: PlanId(row.try_get("id")?),
        key: row.try_get("plan_key")?,
        name: row.try_get("name")?,
        price_monthly: Money::new(row.try_get("price_monthly_minor")?, currency),
        price_yearly: Money::new(row.try_get("price_yearly_minor")?, currency),
        features: serde_json::from_value(row.try_get("features")?).map_err(Error::unexpected)?,
        limits: serde_json::from_value(row.try_get("limits")?).map_err(Error::unexpected)?,
        platform_fee_bps: i64::from(row.try_get::<i32, _>("platform_fee_bps")?),
        is_active: row.try_get("is_active")?,
    })
}

/// A parsed fee rate (0 to 10,000) as the `integer` column stores it.
fn fee_bps(bps: i64) -> Result<i32> {
    i32::try_from(bps).map_err(Error::unexpected)
}

const PLAN_COLUMNS: &str = "id, plan_key, name, currency, price_monthly_minor, price_yearly_minor, features, limits, platform_fee_bps, is_active";

/// Lists subscription plans.
#[utoipa::path(get, path = "/api/v1/admin/plans", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Vec<PlanView>), (status = 403, body = Problem)))]
async fn list_plans(State(app): State<App>, auth: Auth) -> Result<Json<Vec<PlanView>>> {
    let (mut tx, _) = begin_admin(&app, &auth, PlatformPermission::PlansManage).await?;
    let rows = sqlx::query(&format!(
        "SELECT {PLAN_COLUMNS} FROM subscription_plans ORDER BY price_monthly_minor, plan_key"
    ))
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Json(rows.iter().map(plan_view).collect::<Result<_>>()?))
}

/// Creates a plan.
#[utoipa::path(post, path = "/api/v1/admin/plans", tag = "admin", security(("bearer" = [])), request_body = CreatePlanRequest,
    responses((status = 201, body = PlanView), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_plan(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiJson(req): ApiJson<CreatePlanRequest>,
) -> Result<(StatusCode, Json<PlanView>)> {
    let plan = req.parse()?;
    let (mut tx, actor) = begin_admin(&app, &auth, PlatformPermission::PlansManage).await?;
    if tenancy::plan_by_key(&mut tx, plan.key.as_str())
        .await?
        .is_some()
    {
        return Err(Error::field("key", "taken", "a plan with this key exists")
            .with_code(ErrorCode::Conflict));
    }
    let id = new_id();
    let row = sqlx::query(&format!(
        "INSERT INTO subscription_plans (id, plan_key, name, currency, price_monthly_minor, price_yearly_minor, features, limits, platform_fee_bps) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {PLAN_COLUMNS}"
    ))
    .bind(id)
    .bind(plan.key.as_str())
    .bind(plan.name.as_str())
    .bind(plan.price_monthly.currency.code())
    .bind(plan.price_monthly.minor)
    .bind(plan.price_yearly.minor)
    .bind(serde_json::to_value(&plan.features).map_err(Error::unexpected)?)
    .bind(serde_json::to_value(&plan.limits).map_err(Error::unexpected)?)
    .bind(fee_bps(plan.platform_fee_bps)?)
    .fetch_one(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        &ctx,
        Who::from(&actor),
        None,
        Event::ok("plan.create", "plan", id),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(plan_view(&row)?)))
}

/// One plan.
#[utoipa::path(get, path = "/api/v1/admin/plans/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Plan id")),
    responses((status = 200, body = PlanView), (status = 404, body = Problem)))]
async fn get_plan(
    State(app): State<App>,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<PlanView>> {
    let (mut tx, _) = begin_admin(&app, &auth, PlatformPermission::PlansManage).await?;
    let row = sqlx::query(&format!(
        "SELECT {PLAN_COLUMNS} FROM subscription_plans WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| Error::not_found("plan"))?;
    tx.commit().await?;
    Ok(Json(plan_view(&row)?))
}

/// Updates a plan. Existing subscriptions keep the limits they were sold until they change plan.
#[utoipa::path(patch, path = "/api/v1/admin/plans/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Plan id")), request_body = UpdatePlanRequest,
    responses((status = 200, body = PlanView), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn update_plan(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<UpdatePlanRequest>,
) -> Result<Json<PlanView>> {
    let update = req.parse()?;
    let (mut tx, actor) = begin_admin(&app, &auth, PlatformPermission::PlansManage).await?;
    let row = sqlx::query(&format!(
        "UPDATE subscription_plans SET name = coalesce($2, name), price_monthly_minor = coalesce($3, price_monthly_minor), \
         price_yearly_minor = coalesce($4, price_yearly_minor), features = coalesce($5, features), limits = coalesce($6, limits), \
         is_active = coalesce($7, is_active), platform_fee_bps = coalesce($8, platform_fee_bps), updated_at = now() \
         WHERE id = $1 RETURNING {PLAN_COLUMNS}"
    ))
    .bind(id)
    .bind(update.name.as_ref().map(|n| n.as_str()))
    .bind(update.price_monthly_minor)
    .bind(update.price_yearly_minor)
    .bind(update.features.as_ref().map(serde_json::to_value).transpose().map_err(Error::unexpected)?)
    .bind(update.limits.as_ref().map(serde_json::to_value).transpose().map_err(Error::unexpected)?)
    .bind(update.is_active)
    .bind(update.platform_fee_bps.map(fee_bps).transpose()?)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| Error::not_found("plan"))?;
    audit::record(
        &mut tx,
        &ctx,
        Who::from(&actor),
        None,
        Event::ok("plan.update", "plan", id),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(plan_view(&row)?))
}

/// Deletes a plan no business has ever subscribed to; deactivate plans in use instead.
#[utoipa::path(delete, path = "/api/v1/admin/plans/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Plan id")),
    responses((status = 204, description = "Deleted"), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn delete_plan(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode> {
    let (mut tx, actor) = begin_admin(&app, &auth, PlatformPermission::PlansManage).await?;
    let in_use: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM business_subscriptions WHERE plan_id = $1)",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    if in_use {
        return Err(Error::new(
            ErrorCode::Conflict,
            "businesses subscribe to this plan; set is_active to false instead",
        ));
    }
    let deleted = sqlx::query("DELETE FROM subscription_plans WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if deleted.rows_affected() == 0 {
        return Err(Error::not_found("plan"));
    }
    audit::record(
        &mut tx,
        &ctx,
        Who::from(&actor),
        None,
        Event::ok("plan.delete", "plan", id),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Platform counts.
#[utoipa::path(get, path = "/api/v1/admin/platform-metrics", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = PlatformMetrics), (status = 403, body = Problem)))]
async fn platform_metrics(State(app): State<App>, auth: Auth) -> Result<Json<PlatformMetrics>> {
    let (mut tx, _) = begin_admin(&app, &auth, PlatformPermission::MetricsRead).await?;
    let row = sqlx::query(
        "SELECT (SELECT count(*) FROM businesses) AS total, \
                (SELECT count(*) FROM businesses WHERE status = 'active') AS active, \
                (SELECT count(*) FROM businesses WHERE status = 'suspended') AS suspended, \
                (SELECT count(*) FROM users WHERE kind = 'staff') AS staff, \
                (SELECT count(*) FROM users WHERE kind = 'driver') AS drivers, \
                (SELECT count(*) FROM customers) AS customers, \
                (SELECT count(*) FROM business_storefront_settings WHERE is_published) AS published",
    )
    .fetch_one(&mut *tx)
    .await?;
    let by_plan: Vec<(String, i64)> = sqlx::query_as(
        "SELECT p.plan_key, count(*) FROM business_subscriptions s JOIN subscription_plans p ON p.id = s.plan_id \
         WHERE s.status <> 'canceled' GROUP BY p.plan_key",
    )
    .fetch_all(&mut *tx)
    .await?;
    let by_status: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM business_subscriptions GROUP BY status")
            .fetch_all(&mut *tx)
            .await?;
    tx.commit().await?;
    Ok(Json(PlatformMetrics {
        businesses_total: row.try_get("total")?,
        businesses_active: row.try_get("active")?,
        businesses_suspended: row.try_get("suspended")?,
        businesses_by_plan: by_plan.into_iter().collect::<BTreeMap<_, _>>(),
        subscriptions_by_status: by_status.into_iter().collect::<BTreeMap<_, _>>(),
        staff_accounts: row.try_get("staff")?,
        driver_accounts: row.try_get("drivers")?,
        customers: row.try_get("customers")?,
        storefronts_published: row.try_get("published")?,
    }))
}
