//! A business's commerce settings (`/api/v1/business/commerce-settings`) and discount codes
//! (`/api/v1/business/discount-codes`): the pricing policy checkout applies. Both need the
//! `storefront.manage` permission — they decide what customers pay, like the storefront
//! settings, rather than what is in the catalog. Requests are parsed by
//! `fleetfront_domain::api::commerce` into the types pricing uses.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use fleetfront_domain::api::commerce::{
    CommerceSettingsView, CreateDiscountCodeRequest, DiscountAmount, DiscountCodeList,
    DiscountCodeRules, DiscountCodeView, UpdateCommerceSettingsRequest, UpdateDiscountCodeRequest,
};
use fleetfront_domain::api::Problem;
use fleetfront_domain::permission::Permission;
use fleetfront_domain::pricing::BasisPoints;
use fleetfront_domain::{BusinessId, ErrorCode};
use sqlx::FromRow;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::business::begin_staff;
use crate::app::App;
use crate::audit::{self, Event, Who};
use crate::context::Ctx;
use crate::db::{new_id, Tx};
use crate::error::{Error, Result};
use crate::extract::{ApiJson, ApiPath, Auth};

pub(crate) fn routes(router: OpenApiRouter<App>) -> OpenApiRouter<App> {
    router
        .routes(routes!(get_commerce_settings, update_commerce_settings))
        .routes(routes!(list_discount_codes, create_discount_code))
        .routes(routes!(update_discount_code, delete_discount_code))
}

#[derive(FromRow)]
struct SettingsRow {
    tax_rate_bps: i32,
    prices_include_tax: bool,
    tax_includes_delivery: bool,
    offers_delivery: bool,
    offers_pickup: bool,
    delivery_base_fee_minor: i64,
    delivery_fee_per_km_minor: i64,
    delivery_included_m: i32,
    delivery_max_distance_m: Option<i32>,
    minimum_order_minor: i64,
    acceptance_window_secs: i32,
    updated_at: DateTime<Utc>,
}

impl From<SettingsRow> for CommerceSettingsView {
    fn from(r: SettingsRow) -> Self {
        Self {
            tax_rate_bps: i64::from(r.tax_rate_bps),
            prices_include_tax: r.prices_include_tax,
            tax_includes_delivery: r.tax_includes_delivery,
            offers_delivery: r.offers_delivery,
            offers_pickup: r.offers_pickup,
            delivery_base_fee_minor: r.delivery_base_fee_minor,
            delivery_fee_per_km_minor: r.delivery_fee_per_km_minor,
            delivery_included_m: i64::from(r.delivery_included_m),
            delivery_max_distance_m: r.delivery_max_distance_m.map(i64::from),
            minimum_order_minor: r.minimum_order_minor,
            acceptance_window_secs: i64::from(r.acceptance_window_secs),
            updated_at: r.updated_at,
        }
    }
}

const SETTINGS_COLUMNS: &str = "tax_rate_bps, prices_include_tax, tax_includes_delivery, offers_delivery, offers_pickup, \
    delivery_base_fee_minor, delivery_fee_per_km_minor, delivery_included_m, delivery_max_distance_m, \
    minimum_order_minor, acceptance_window_secs, updated_at";

async fn settings(tx: &mut Tx, business: BusinessId) -> Result<CommerceSettingsView> {
    let row: SettingsRow = sqlx::query_as(&format!(
        "SELECT {SETTINGS_COLUMNS} FROM business_commerce_settings WHERE business_id = $1"
    ))
    .bind(business.0)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| Error::not_found("commerce settings"))?;
    Ok(row.into())
}

/// The store's commerce settings: tax, delivery fee rule, minimum order, acceptance window.
#[utoipa::path(get, path = "/api/v1/business/commerce-settings", tag = "business", security(("bearer" = [])),
    responses((status = 200, body = CommerceSettingsView), (status = 403, body = Problem)))]
async fn get_commerce_settings(
    State(app): State<App>,
    auth: Auth,
) -> Result<Json<CommerceSettingsView>> {
    let (mut tx, _, business) = begin_staff(&app, &auth, Permission::StorefrontManage).await?;
    let view = settings(&mut tx, business).await?;
    tx.commit().await?;
    Ok(Json(view))
}

/// Changes the store's commerce settings; absent fields stay. The next checkout prices with
/// them (orders already placed keep their amounts).
#[utoipa::path(patch, path = "/api/v1/business/commerce-settings", tag = "business", security(("bearer" = [])),
    request_body = UpdateCommerceSettingsRequest,
    responses((status = 200, body = CommerceSettingsView), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn update_commerce_settings(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiJson(req): ApiJson<UpdateCommerceSettingsRequest>,
) -> Result<Json<CommerceSettingsView>> {
    let update = req.parse()?;
    let (mut tx, actor, business) = begin_staff(&app, &auth, Permission::StorefrontManage).await?;
    let (clear_max, max) = match update.delivery_max_distance_m {
        None => (false, None),
        Some(value) => (value.is_none(), value),
    };
    let changed = sqlx::query(
        "UPDATE business_commerce_settings SET \
           tax_rate_bps = coalesce($2, tax_rate_bps), \
           prices_include_tax = coalesce($3, prices_include_tax), \
           tax_includes_delivery = coalesce($4, tax_includes_delivery), \
           offers_delivery = coalesce($5, offers_delivery), \
           offers_pickup = coalesce($6, offers_pickup), \
           delivery_base_fee_minor = coalesce($7, delivery_base_fee_minor), \
           delivery_fee_per_km_minor = coalesce($8, delivery_fee_per_km_minor), \
           delivery_included_m = coalesce($9, delivery_included_m), \
           delivery_max_distance_m = CASE WHEN $10 THEN NULL ELSE coalesce($11, delivery_max_distance_m) END, \
           minimum_order_minor = coalesce($12, minimum_order_minor), \
           acceptance_window_secs = coalesce($13, acceptance_window_secs), \
           updated_at = now() \
         WHERE business_id = $1",
    )
    .bind(business.0)
    .bind(update.tax_rate.map(|r| i32::from(r.get())))
    .bind(update.prices_include_tax)
    .bind(update.tax_includes_delivery)
    .bind(update.offers_delivery)
    .bind(update.offers_pickup)
    .bind(update.delivery_base_fee_minor)
    .bind(update.delivery_fee_per_km_minor)
    .bind(update.delivery_included_m)
    .bind(clear_max)
    .bind(max)
    .bind(update.minimum_order_minor)
    .bind(
        update
            .acceptance_window
            .map(|w| i32::try_from(w.secs()).expect("at most 3600")),
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if changed == 0 {
        return Err(Error::not_found("commerce settings"));
    }
    let view = settings(&mut tx, business).await?;
    if !view.offers_delivery && !view.offers_pickup {
        return Err(Error::field(
            "offers_pickup",
            "no_fulfilment",
            "a store offers delivery, pickup or both",
        ));
    }
    audit::record(
        &mut tx,
        &ctx,
        Who::from(&actor),
        Some(business),
        Event::ok("commerce_settings.update", "business", business.0).with_request(&req)?,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(view))
}

#[derive(FromRow)]
struct CodeRow {
    id: Uuid,
    code: String,
    percent_bps: Option<i32>,
    amount_minor: Option<i64>,
    valid_from: Option<DateTime<Utc>>,
    valid_until: Option<DateTime<Utc>>,
    minimum_subtotal_minor: i64,
    usage_limit: Option<i32>,
    times_used: i32,
    is_active: bool,
    created_at: DateTime<Utc>,
}

const CODE_COLUMNS: &str = "id, code, percent_bps, amount_minor, valid_from, valid_until, \
    minimum_subtotal_minor, usage_limit, times_used, is_active, created_at";

impl CodeRow {
    fn view(self) -> DiscountCodeView {
        DiscountCodeView {
            id: self.id,
            code: self.code,
            percent_bps: self.percent_bps.map(i64::from),
            amount_minor: self.amount_minor,
            valid_from: self.valid_from,
            valid_until: self.valid_until,
            minimum_subtotal_minor: self.minimum_subtotal_minor,
            usage_limit: self.usage_limit.map(i64::from),
            times_used: i64::from(self.times_used),
            is_active: self.is_active,
            created_at: self.created_at,
        }
    }

    fn rules(&self) -> Result<DiscountCodeRules> {
        let value = match (self.percent_bps, self.amount_minor) {
            (Some(bps), _) => DiscountAmount::Percent(
                BasisPoints::new(i64::from(bps)).map_err(Error::unexpected)?,
            ),
            (None, Some(amount)) => DiscountAmount::Fixed(amount),
            (None, None) => {
                return Err(Error::unexpected(anyhow::anyhow!(
                    "discount code without value"
                )))
            }
        };
        Ok(DiscountCodeRules {
            code: self.code.clone(),
            value,
            valid_from: self.valid_from,
            valid_until: self.valid_until,
            minimum_subtotal_minor: self.minimum_subtotal_minor,
            usage_limit: self.usage_limit,
            is_active: self.is_active,
        })
    }
}

async fn code_by_id(tx: &mut Tx, business: BusinessId, id: Uuid) -> Result<CodeRow> {
    sqlx::query_as(&format!(
        "SELECT {CODE_COLUMNS} FROM discount_codes WHERE business_id = $1 AND id = $2"
    ))
    .bind(business.0)
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| Error::not_found("discount code"))
}

/// Maps the per-business, case-insensitive uniqueness of codes to a field error.
fn code_taken(e: Error) -> Error {
    if e.code() == ErrorCode::Conflict {
        Error::field(
            "code",
            "taken",
            "another discount code of this store has this code (codes ignore case)",
        )
        .with_code(ErrorCode::Conflict)
    } else {
        e
    }
}

fn split(value: DiscountAmount) -> (Option<i32>, Option<i64>) {
    match value {
        DiscountAmount::Percent(bps) => (Some(i32::from(bps.get())), None),
        DiscountAmount::Fixed(amount) => (None, Some(amount)),
    }
}

/// The store's discount codes, newest first.
#[utoipa::path(get, path = "/api/v1/business/discount-codes", tag = "business", security(("bearer" = [])),
    responses((status = 200, body = DiscountCodeList), (status = 403, body = Problem)))]
async fn list_discount_codes(State(app): State<App>, auth: Auth) -> Result<Json<DiscountCodeList>> {
    let (mut tx, _, business) = begin_staff(&app, &auth, Permission::StorefrontManage).await?;
    let rows: Vec<CodeRow> = sqlx::query_as(&format!(
        "SELECT {CODE_COLUMNS} FROM discount_codes WHERE business_id = $1 ORDER BY created_at DESC, id DESC"
    ))
    .bind(business.0)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Json(DiscountCodeList {
        items: rows.into_iter().map(CodeRow::view).collect(),
    }))
}

/// Creates a discount code: a percentage or a fixed amount off, an optional validity window,
/// minimum subtotal and usage limit. Codes are unique per store regardless of case (409).
#[utoipa::path(post, path = "/api/v1/business/discount-codes", tag = "business", security(("bearer" = [])),
    request_body = CreateDiscountCodeRequest,
    responses((status = 201, body = DiscountCodeView), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_discount_code(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiJson(req): ApiJson<CreateDiscountCodeRequest>,
) -> Result<(StatusCode, Json<DiscountCodeView>)> {
    let rules = req.parse()?;
    let (mut tx, actor, business) = begin_staff(&app, &auth, Permission::StorefrontManage).await?;
    let id = new_id();
    let (percent, amount) = split(rules.value);
    sqlx::query(
        "INSERT INTO discount_codes (business_id, id, code, percent_bps, amount_minor, valid_from, valid_until, \
           minimum_subtotal_minor, usage_limit, is_active) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(business.0)
    .bind(id)
    .bind(&rules.code)
    .bind(percent)
    .bind(amount)
    .bind(rules.valid_from)
    .bind(rules.valid_until)
    .bind(rules.minimum_subtotal_minor)
    .bind(rules.usage_limit)
    .bind(rules.is_active)
    .execute(&mut *tx)
    .await
    .map_err(|e| code_taken(e.into()))?;
    audit::record(
        &mut tx,
        &ctx,
        Who::from(&actor),
        Some(business),
        Event::ok("discount_code.create", "discount_code", id)
            .with_details(serde_json::json!({"code": rules.code})),
    )
    .await?;
    let row = code_by_id(&mut tx, business, id).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(row.view())))
}

/// Changes a discount code; the result is checked as a whole (a usage limit below the uses so
/// far is a 409).
#[utoipa::path(patch, path = "/api/v1/business/discount-codes/{id}", tag = "business", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Discount code id")), request_body = UpdateDiscountCodeRequest,
    responses((status = 200, body = DiscountCodeView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn update_discount_code(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<UpdateDiscountCodeRequest>,
) -> Result<Json<DiscountCodeView>> {
    let (mut tx, actor, business) = begin_staff(&app, &auth, Permission::StorefrontManage).await?;
    let current = code_by_id(&mut tx, business, id).await?;
    let rules = req.apply(&current.rules()?)?;
    if let Some(limit) = rules.usage_limit {
        if limit < current.times_used {
            return Err(Error::field(
                "usage_limit",
                "below_uses",
                format!("the code was used {} times already", current.times_used),
            )
            .with_code(ErrorCode::Conflict));
        }
    }
    let (percent, amount) = split(rules.value);
    sqlx::query(
        "UPDATE discount_codes SET code = $3, percent_bps = $4, amount_minor = $5, valid_from = $6, valid_until = $7, \
           minimum_subtotal_minor = $8, usage_limit = $9, is_active = $10 WHERE business_id = $1 AND id = $2",
    )
    .bind(business.0)
    .bind(id)
    .bind(&rules.code)
    .bind(percent)
    .bind(amount)
    .bind(rules.valid_from)
    .bind(rules.valid_until)
    .bind(rules.minimum_subtotal_minor)
    .bind(rules.usage_limit)
    .bind(rules.is_active)
    .execute(&mut *tx)
    .await
    .map_err(|e| code_taken(e.into()))?;
    audit::record(
        &mut tx,
        &ctx,
        Who::from(&actor),
        Some(business),
        Event::ok("discount_code.update", "discount_code", id).with_request(&req)?,
    )
    .await?;
    let row = code_by_id(&mut tx, business, id).await?;
    tx.commit().await?;
    Ok(Json(row.view()))
}

/// Retires a discount code: customers can no longer use it. Orders that used it keep
/// referring to it, so the row stays (inactive) and its code stays taken.
#[utoipa::path(delete, path = "/api/v1/business/discount-codes/{id}", tag = "business", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Discount code id")),
    responses((status = 204, description = "Retired"), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn delete_discount_code(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode> {
    let (mut tx, actor, business) = begin_staff(&app, &auth, Permission::StorefrontManage).await?;
    let changed = sqlx::query(
        "UPDATE discount_codes SET is_active = false WHERE business_id = $1 AND id = $2",
    )
    .bind(business.0)
    .bind(id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if changed == 0 {
        return Err(Error::not_found("discount code"));
    }
    audit::record(
        &mut tx,
        &ctx,
        Who::from(&actor),
        Some(business),
        Event::ok("discount_code.delete", "discount_code", id),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
