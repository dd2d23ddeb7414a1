//! A customer's own account at the store they signed in to: `/api/v1/customers/me/*`. The store
//! and the customer come only from the token; ids in paths are looked up inside that account.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use fleetfront_domain::api::customer::{
    Address, AddressInput, AddressView, CustomerPreferences, CustomerProfile,
    UpdateCustomerProfileRequest,
};
use fleetfront_domain::api::Problem;
use fleetfront_domain::permission::Actor;
use fleetfront_domain::value::{Coordinates, DeliveryRadius};
use fleetfront_domain::{BusinessId, Currency, CustomerId, ErrorCode, Money};
use sqlx::FromRow;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::App;
use crate::audit::{self, Event, Who};
use crate::context::Ctx;
use crate::db::{new_id, Tx};
use crate::error::{Error, Result};
use crate::extract::{ApiJson, ApiPath, Auth};

/// Addresses one customer may keep.
pub const MAX_ADDRESSES: i64 = 20;

pub(crate) fn routes(router: OpenApiRouter<App>) -> OpenApiRouter<App> {
    router
        .routes(routes!(get_me, update_me))
        .routes(routes!(list_addresses, add_address))
        .routes(routes!(replace_address, delete_address))
}

async fn begin_customer(app: &App, auth: &Auth) -> Result<(Tx, Actor, CustomerId, BusinessId)> {
    let (tx, actor) = app.db.begin_as(&auth.0).await?;
    match actor {
        Actor::Customer { customer, business } => Ok((tx, actor, customer, business)),
        _ => Err(Error::forbidden("this endpoint is for a store's customers")),
    }
}

#[derive(FromRow)]
struct ProfileRow {
    id: Uuid,
    business_id: Uuid,
    email: String,
    phone: Option<String>,
    full_name: String,
    loyalty_points: i64,
    total_orders: i64,
    total_spent_minor: i64,
    currency: String,
    preferences: serde_json::Value,
    created_at: DateTime<Utc>,
}

async fn profile(
    tx: &mut Tx,
    customer: CustomerId,
    business: BusinessId,
) -> Result<CustomerProfile> {
    let row: ProfileRow = sqlx::query_as(
        "SELECT c.id, c.business_id, c.email, c.phone, c.full_name, c.loyalty_points, c.total_orders, \
           c.total_spent_minor, b.currency::text AS currency, c.preferences, c.created_at \
         FROM customers c JOIN businesses b ON b.id = c.business_id WHERE c.business_id = $1 AND c.id = $2",
    )
    .bind(business.0)
    .bind(customer.0)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| Error::not_found("customer"))?;
    Ok(CustomerProfile {
        id: CustomerId(row.id),
        business_id: BusinessId(row.business_id),
        email: row.email,
        phone: row.phone,
        full_name: row.full_name,
        loyalty_points: row.loyalty_points,
        total_orders: row.total_orders,
        total_spent: Money::new(
            row.total_spent_minor,
            Currency::parse(row.currency.trim()).map_err(Error::unexpected)?,
        ),
        preferences: serde_json::from_value::<CustomerPreferences>(row.preferences)
            .unwrap_or_default(),
        created_at: row.created_at,
    })
}

/// The signed-in customer's profile.
#[utoipa::path(get, path = "/api/v1/customers/me", tag = "customers", security(("bearer" = [])),
    responses((status = 200, body = CustomerProfile), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn get_me(State(app): State<App>, auth: Auth) -> Result<Json<CustomerProfile>> {
    let (mut tx, _, customer, business) = begin_customer(&app, &auth).await?;
    let view = profile(&mut tx, customer, business).await?;
    tx.commit().await?;
    Ok(Json(view))
}

/// Changes the signed-in customer's name, email, phone or preferences.
#[utoipa::path(patch, path = "/api/v1/customers/me", tag = "customers", security(("bearer" = [])),
    request_body = UpdateCustomerProfileRequest,
    responses((status = 200, body = CustomerProfile), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn update_me(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiJson(req): ApiJson<UpdateCustomerProfileRequest>,
) -> Result<Json<CustomerProfile>> {
    let update = req.parse()?;
    let (mut tx, actor, customer, business) = begin_customer(&app, &auth).await?;
    let preferences = update
        .preferences
        .as_ref()
        .map(serde_json::to_value)
        .transpose()
        .map_err(Error::unexpected)?;
    sqlx::query(
        "UPDATE customers SET email = coalesce($3, email), full_name = coalesce($4, full_name), \
         phone = CASE WHEN $5 THEN $6 ELSE phone END, preferences = coalesce($7, preferences) \
         WHERE business_id = $1 AND id = $2",
    )
    .bind(business.0)
    .bind(customer.0)
    .bind(update.email.as_ref().map(|e| e.as_str()))
    .bind(update.full_name.as_ref().map(|n| n.as_str()))
    .bind(update.phone.is_some())
    .bind(
        update
            .phone
            .as_ref()
            .and_then(|p| p.as_ref().map(|p| p.as_str())),
    )
    .bind(preferences)
    .execute(&mut *tx)
    .await?;
    let changed: Vec<&str> = [
        update.email.is_some().then_some("email"),
        update.full_name.is_some().then_some("full_name"),
        update.phone.is_some().then_some("phone"),
        update.preferences.is_some().then_some("preferences"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let event = Event::ok("customer.update", "customer", customer)
        .with_details(serde_json::json!({ "fields": changed }));
    audit::record(&mut tx, &ctx, Who::from(&actor), Some(business), event).await?;
    let view = profile(&mut tx, customer, business).await?;
    tx.commit().await?;
    Ok(Json(view))
}

#[derive(FromRow)]
struct AddressRow {
    id: Uuid,
    label: Option<String>,
    address_line1: String,
    address_line2: Option<String>,
    city: String,
    postal_code: Option<String>,
    country: String,
    latitude: f64,
    longitude: f64,
    delivery_instructions: Option<String>,
    is_default: bool,
}

/// The store's pickup point and delivery radius, for the "deliverable" flag.
async fn delivery_area(tx: &mut Tx, business: BusinessId) -> Result<(Coordinates, DeliveryRadius)> {
    let (latitude, longitude, radius): (f64, f64, i32) = sqlx::query_as(
        "SELECT latitude, longitude, delivery_radius_m FROM businesses WHERE id = $1",
    )
    .bind(business.0)
    .fetch_one(&mut **tx)
    .await?;
    let store = Coordinates::parse(latitude, longitude).map_err(Error::unexpected)?;
    let radius = DeliveryRadius::parse(i64::from(radius)).map_err(Error::unexpected)?;
    Ok((store, radius))
}

async fn addresses(
    tx: &mut Tx,
    customer: CustomerId,
    business: BusinessId,
    only: Option<Uuid>,
) -> Result<Vec<AddressView>> {
    let (store, radius) = delivery_area(tx, business).await?;
    let rows: Vec<AddressRow> = sqlx::query_as(
        "SELECT id, label, address_line1, address_line2, city, postal_code, country, latitude, longitude, \
         delivery_instructions, is_default FROM customer_addresses \
         WHERE business_id = $1 AND customer_id = $2 AND ($3::uuid IS NULL OR id = $3) \
         ORDER BY is_default DESC, created_at DESC, id",
    )
    .bind(business.0)
    .bind(customer.0)
    .bind(only)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let location = Coordinates {
                latitude: r.latitude,
                longitude: r.longitude,
            };
            AddressView {
                id: r.id,
                label: r.label,
                address_line1: r.address_line1,
                address_line2: r.address_line2,
                city: r.city,
                postal_code: r.postal_code,
                country: r.country.trim().to_owned(),
                deliverable: fleetfront_domain::distance::within_radius(store, location, radius),
                location,
                delivery_instructions: r.delivery_instructions,
                is_default: r.is_default,
            }
        })
        .collect())
}

/// The signed-in customer's addresses, default first, each marked whether the store delivers there.
#[utoipa::path(get, path = "/api/v1/customers/me/addresses", tag = "customers", security(("bearer" = [])),
    responses((status = 200, body = Vec<AddressView>), (status = 403, body = Problem)))]
async fn list_addresses(State(app): State<App>, auth: Auth) -> Result<Json<Vec<AddressView>>> {
    let (mut tx, _, customer, business) = begin_customer(&app, &auth).await?;
    let list = addresses(&mut tx, customer, business, None).await?;
    tx.commit().await?;
    Ok(Json(list))
}

async fn write_address(
    tx: &mut Tx,
    customer: CustomerId,
    business: BusinessId,
    id: Uuid,
    address: &Address,
    insert: bool,
) -> Result<()> {
    // The first address is the default; a new default replaces the old one.
    let has_default: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM customer_addresses WHERE business_id = $1 AND customer_id = $2 AND is_default AND id <> $3)",
    )
    .bind(business.0)
    .bind(customer.0)
    .bind(id)
    .fetch_one(&mut **tx)
    .await?;
    let is_default = address.is_default || !has_default;
    if is_default {
        sqlx::query("UPDATE customer_addresses SET is_default = false WHERE business_id = $1 AND customer_id = $2 AND is_default AND id <> $3")
            .bind(business.0)
            .bind(customer.0)
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    let sql = if insert {
        "INSERT INTO customer_addresses (business_id, id, customer_id, label, address_line1, address_line2, city, postal_code, \
         country, latitude, longitude, delivery_instructions, is_default) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    } else {
        "UPDATE customer_addresses SET label = $4, address_line1 = $5, address_line2 = $6, city = $7, postal_code = $8, \
         country = $9, latitude = $10, longitude = $11, delivery_instructions = $12, is_default = $13, updated_at = now() \
         WHERE business_id = $1 AND id = $2 AND customer_id = $3"
    };
    sqlx::query(sql)
        .bind(business.0)
        .bind(id)
        .bind(customer.0)
        .bind(address.label.as_ref().map(|v| v.as_str()))
        .bind(address.address_line1.as_str())
        .bind(address.address_line2.as_ref().map(|v| v.as_str()))
        .bind(address.city.as_str())
        .bind(address.postal_code.as_ref().map(|v| v.as_str()))
        .bind(address.country.as_str())
        .bind(address.location.latitude)
        .bind(address.location.longitude)
        .bind(address.delivery_instructions.as_ref().map(|v| v.as_str()))
        .bind(is_default)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Saves a new address (at most 20). The first address, or one marked default, becomes the default.
#[utoipa::path(post, path = "/api/v1/customers/me/addresses", tag = "customers", security(("bearer" = [])),
    request_body = AddressInput,
    responses((status = 201, body = AddressView), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn add_address(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiJson(req): ApiJson<AddressInput>,
) -> Result<(StatusCode, Json<AddressView>)> {
    let address = req.parse()?;
    let (mut tx, actor, customer, business) = begin_customer(&app, &auth).await?;
    let count: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM customer_addresses WHERE business_id = $1 AND customer_id = $2",
    )
    .bind(business.0)
    .bind(customer.0)
    .fetch_one(&mut *tx)
    .await?;
    if count >= MAX_ADDRESSES {
        return Err(Error::new(
            ErrorCode::Conflict,
            format!("at most {MAX_ADDRESSES} addresses can be saved; delete one first"),
        ));
    }
    let id = new_id();
    write_address(&mut tx, customer, business, id, &address, true).await?;
    audit::record(
        &mut tx,
        &ctx,
        Who::from(&actor),
        Some(business),
        Event::ok("customer.address.add", "address", id),
    )
    .await?;
    let view = addresses(&mut tx, customer, business, Some(id))
        .await?
        .pop()
        .ok_or_else(|| Error::not_found("address"))?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(view)))
}

async fn own_address_exists(
    tx: &mut Tx,
    customer: CustomerId,
    business: BusinessId,
    id: Uuid,
) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM customer_addresses WHERE business_id = $1 AND customer_id = $2 AND id = $3)",
    )
    .bind(business.0)
    .bind(customer.0)
    .bind(id)
    .fetch_one(&mut **tx)
    .await?)
}

/// Replaces one of the signed-in customer's addresses.
#[utoipa::path(patch, path = "/api/v1/customers/me/addresses/{id}", tag = "customers", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Address id")), request_body = AddressInput,
    responses((status = 200, body = AddressView), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn replace_address(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<AddressInput>,
) -> Result<Json<AddressView>> {
    let address = req.parse()?;
    let (mut tx, actor, customer, business) = begin_customer(&app, &auth).await?;
    if !own_address_exists(&mut tx, customer, business, id).await? {
        return Err(Error::not_found("address"));
    }
    write_address(&mut tx, customer, business, id, &address, false).await?;
    audit::record(
        &mut tx,
        &ctx,
        Who::from(&actor),
        Some(business),
        Event::ok("customer.address.update", "address", id),
    )
    .await?;
    let view = addresses(&mut tx, customer, business, Some(id))
        .await?
        .pop()
        .ok_or_else(|| Error::not_found("address"))?;
    tx.commit().await?;
    Ok(Json(view))
}

/// Deletes one of the signed-in customer's addresses; when it was the default, the most recent
/// remaining address becomes the default.
#[utoipa::path(delete, path = "/api/v1/customers/me/addresses/{id}", tag = "customers", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Address id")),
    responses((status = 204, description = "Deleted"), (status = 404, body = Problem)))]
async fn delete_address(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode> {
    let (mut tx, actor, customer, business) = begin_customer(&app, &auth).await?;
    let was_default: Option<bool> = sqlx::query_scalar(
        "DELETE FROM customer_addresses WHERE business_id = $1 AND customer_id = $2 AND id = $3 RETURNING is_default",
    )
    .bind(business.0)
    .bind(customer.0)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(was_default) = was_default else {
        return Err(Error::not_found("address"));
    };
    if was_default {
        sqlx::query(
            "UPDATE customer_addresses SET is_default = true WHERE business_id = $1 AND id = \
             (SELECT id FROM customer_addresses WHERE business_id = $1 AND customer_id = $2 ORDER BY created_at DESC, id LIMIT 1)",
        )
        .bind(business.0)
        .bind(customer.0)
        .execute(&mut *tx)
        .await?;
    }
    audit::record(
        &mut tx,
        &ctx,
        Who::from(&actor),
        Some(business),
        Event::ok("customer.address.delete", "address", id),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
