//! Public storefront browsing: `/api/v1/storefronts/{subdomain}/*`, for anybody, no token
//! needed. (A token, if sent, is still verified by the authentication middleware, but never
//! used for scoping: the store comes from the path.)
//!
//! The store is resolved by subdomain with `storefront_begin()` (one statement that resolves it
//! through the `storefront_business()` resolver, sets the principal and returns the currency);
//! an unknown, unpublished or suspended store answers 404. The queries then run in a read-only
//! transaction as principal kind `public` scoped to that store, so row level security lets
//! them see only the published storefront, published products that are not archived (and
//! their variants), and active categories, even if a query here forgot a condition.
//!
//! A 404 here is not audited as a denied attempt: the storefront is public, and auditing every
//! anonymous miss would let anybody fill the platform's audit log.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use fleetfront_domain::api::business::ThemeColors;
use fleetfront_domain::api::catalog::ProductListQuery;
use fleetfront_domain::api::storefront::{
    PublicCategory, PublicProduct, PublicProductPage, PublicStorefront,
};
use fleetfront_domain::api::Problem;
use fleetfront_domain::catalog::{self, CategoryNode};
use fleetfront_domain::hours::OperatingHours;
use fleetfront_domain::money::Currency;
use fleetfront_domain::value::TimeZoneName;
use fleetfront_domain::{BusinessId, CategoryId};
use sqlx::FromRow;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::App;
use crate::catalog::{self as store, Audience};
use crate::db::Tx;
use crate::error::{Denied, Error, Result};
use crate::extract::{ApiPath, ApiQuery};

pub(crate) fn routes(router: OpenApiRouter<App>) -> OpenApiRouter<App> {
    router
        .routes(routes!(get_storefront))
        .routes(routes!(list_products))
        .routes(routes!(get_product))
        .routes(routes!(list_categories))
}

/// An error of a public route: the same problem response, without the mark that makes the
/// middleware audit it as a denied attempt.
struct PublicError(Error);

impl IntoResponse for PublicError {
    fn into_response(self) -> Response {
        let mut response = self.0.into_response();
        response.extensions_mut().remove::<Denied>();
        response
    }
}

type PublicResult<T> = std::result::Result<Json<T>, PublicError>;

fn answer<T>(result: Result<T>) -> PublicResult<T> {
    result.map(Json).map_err(PublicError)
}

/// Opens a read-only transaction for a published, active store as its `public` principal, in
/// one round trip after `BEGIN` (`storefront_begin()`, migration 0014), and returns the store
/// with its currency.
async fn begin_public(app: &App, subdomain: &str) -> Result<(Tx, BusinessId, Currency)> {
    let mut tx = app.db.pool.begin_with("BEGIN READ ONLY").await?;
    let (business, currency): (Uuid, String) =
        sqlx::query_as("SELECT business_id, currency FROM storefront_begin($1)")
            .bind(subdomain)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| Error::not_found("store"))?;
    let currency = Currency::parse(currency.trim()).map_err(Error::unexpected)?;
    Ok((tx, BusinessId(business), currency))
}

#[derive(FromRow)]
struct StorefrontRow {
    name: String,
    subdomain: String,
    theme_colors: serde_json::Value,
    operating_hours: serde_json::Value,
    logo_url: Option<String>,
    banner_url: Option<String>,
    time_zone: String,
    currency: String,
    delivery_radius_m: i32,
}

/// A published store: name, branding, hours and whether it is open now (in its own time
/// zone), currency and delivery radius. Contact details and location stay private.
#[utoipa::path(get, path = "/api/v1/storefronts/{subdomain}", tag = "storefront",
    params(("subdomain" = String, Path, description = "The store's subdomain")),
    responses((status = 200, body = PublicStorefront), (status = 404, body = Problem)))]
async fn get_storefront(
    State(app): State<App>,
    ApiPath(subdomain): ApiPath<String>,
) -> PublicResult<PublicStorefront> {
    answer(storefront(&app, &subdomain).await)
}

async fn storefront(app: &App, subdomain: &str) -> Result<PublicStorefront> {
    let (mut tx, business, _) = begin_public(app, subdomain).await?;
    let row: StorefrontRow = sqlx::query_as(
        "SELECT b.name, s.subdomain, s.theme_colors, s.operating_hours, s.logo_url, s.banner_url, \
           b.time_zone, b.currency, b.delivery_radius_m \
         FROM business_storefront_settings s JOIN businesses b ON b.id = s.business_id \
         WHERE s.business_id = $1 AND s.is_published",
    )
    .bind(business.0)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| Error::not_found("store"))?;
    tx.commit().await?;
    let hours: OperatingHours =
        serde_json::from_value(row.operating_hours).map_err(Error::unexpected)?;
    let zone = TimeZoneName::parse(&row.time_zone).map_err(Error::unexpected)?;
    Ok(PublicStorefront {
        name: row.name,
        subdomain: row.subdomain,
        theme_colors: serde_json::from_value::<ThemeColors>(row.theme_colors).unwrap_or_default(),
        logo_url: row.logo_url,
        banner_url: row.banner_url,
        open_now: hours.is_open_at(app.clock.now(), zone.tz()),
        operating_hours: hours,
        time_zone: zone.into_inner(),
        currency: Currency::parse(row.currency.trim()).map_err(Error::unexpected)?,
        delivery_radius_m: i64::from(row.delivery_radius_m),
    })
}

/// The store's published products, with filters, full-text search (web search syntax), sort
/// orders and cursor pagination that stays consistent while products are added.
#[utoipa::path(get, path = "/api/v1/storefronts/{subdomain}/products", tag = "storefront",
    params(("subdomain" = String, Path, description = "The store's subdomain"), ProductListQuery),
    responses((status = 200, body = PublicProductPage), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn list_products(
    State(app): State<App>,
    ApiPath(subdomain): ApiPath<String>,
    ApiQuery(query): ApiQuery<ProductListQuery>,
) -> PublicResult<PublicProductPage> {
    answer(products(&app, &subdomain, &query).await)
}

async fn products(
    app: &App,
    subdomain: &str,
    query: &ProductListQuery,
) -> Result<PublicProductPage> {
    let listing = query.parse()?;
    let (mut tx, business, currency) = begin_public(app, subdomain).await?;
    let (rows, next_cursor) = store::list(&mut tx, business, &listing, Audience::Public).await?;
    let mut items =
        store::with_variants(&mut tx, business, rows, currency, store::public_product).await?;
    crate::images::attach(&mut tx, business, &mut items).await?;
    tx.commit().await?;
    Ok(PublicProductPage { items, next_cursor })
}

/// One published product of the store.
#[utoipa::path(get, path = "/api/v1/storefronts/{subdomain}/products/{id}", tag = "storefront",
    params(("subdomain" = String, Path, description = "The store's subdomain"), ("id" = Uuid, Path, description = "Product id")),
    responses((status = 200, body = PublicProduct), (status = 404, body = Problem)))]
async fn get_product(
    State(app): State<App>,
    ApiPath((subdomain, id)): ApiPath<(String, Uuid)>,
) -> PublicResult<PublicProduct> {
    answer(product(&app, &subdomain, id).await)
}

async fn product(app: &App, subdomain: &str, id: Uuid) -> Result<PublicProduct> {
    let (mut tx, business, currency) = begin_public(app, subdomain).await?;
    let row = store::product(&mut tx, business, id, Audience::Public)
        .await?
        .ok_or_else(|| Error::not_found("product"))?;
    let mut items = store::with_variants(
        &mut tx,
        business,
        vec![row],
        currency,
        store::public_product,
    )
    .await?;
    crate::images::attach(&mut tx, business, &mut items).await?;
    tx.commit().await?;
    items.pop().ok_or_else(|| Error::not_found("product"))
}

/// The store's active categories in tree order (depth first, siblings by display order). A
/// subcategory of an inactive category is hidden with it.
#[utoipa::path(get, path = "/api/v1/storefronts/{subdomain}/categories", tag = "storefront",
    params(("subdomain" = String, Path, description = "The store's subdomain")),
    responses((status = 200, body = Vec<PublicCategory>), (status = 404, body = Problem)))]
async fn list_categories(
    State(app): State<App>,
    ApiPath(subdomain): ApiPath<String>,
) -> PublicResult<Vec<PublicCategory>> {
    answer(categories(&app, &subdomain).await)
}

async fn categories(app: &App, subdomain: &str) -> Result<Vec<PublicCategory>> {
    let (mut tx, business, _) = begin_public(app, subdomain).await?;
    let rows: Vec<(Uuid, Option<Uuid>, String, String, i32)> = sqlx::query_as(
        "SELECT id, parent_id, name, slug, display_order FROM product_categories WHERE business_id = $1 AND is_active",
    )
    .bind(business.0)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let nodes: Vec<CategoryNode> = rows
        .iter()
        .map(|(id, parent, _, _, order)| CategoryNode {
            id: CategoryId(*id),
            parent: parent.map(CategoryId),
            display_order: *order,
        })
        .collect();
    Ok(catalog::tree_order(&nodes)
        .into_iter()
        .map(|(i, depth)| {
            let (id, parent, name, slug, _) = &rows[i];
            PublicCategory {
                id: CategoryId(*id),
                parent_id: parent.map(CategoryId),
                name: name.clone(),
                slug: slug.clone(),
                depth,
            }
        })
        .collect())
}
