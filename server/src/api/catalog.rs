//! The business's catalog: `/api/v1/business/products` and `/api/v1/business/categories`.
//!
//! The business is always the one in the verified token; ids in paths are looked up inside it,
//! so another business's ids answer 404 (and the middleware audits the attempt). Reading needs
//! `catalog.read`, writing `catalog.manage`; every write leaves an audit row in its own
//! transaction.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use fleetfront_domain::api::catalog::{
    CategoryView, CreateCategoryRequest, CreateProductRequest, ProductListQuery, ProductPage,
    ProductView, UpdateCategoryRequest, UpdateProductRequest,
};
use fleetfront_domain::api::{FieldErrors, Problem};
use fleetfront_domain::catalog::{self, CategoryTreeError};
use fleetfront_domain::permission::{Actor, Permission};
use fleetfront_domain::plan::LimitKind;
use fleetfront_domain::{BusinessId, CategoryId, ErrorCode};
use sqlx::FromRow;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::business::begin_staff;
use super::staff_business;
use crate::app::App;
use crate::audit::{self, Event, Who};
use crate::catalog::{self as store, Audience};
use crate::context::Ctx;
use crate::db::{new_id, Tx};
use crate::error::{Error, Result};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth};
use crate::tenancy;

pub(crate) fn routes(router: OpenApiRouter<App>) -> OpenApiRouter<App> {
    router
        .routes(routes!(list_products, create_product))
        .routes(routes!(get_product, update_product, archive_product))
        .routes(routes!(list_categories, create_category))
        .routes(routes!(update_category, delete_category))
}

/// A product of `business` as its staff see it.
///
/// # Errors
/// `not_found`, database errors.
pub(crate) async fn view(tx: &mut Tx, business: BusinessId, id: Uuid) -> Result<ProductView> {
    let row = store::product(tx, business, id, Audience::Staff)
        .await?
        .ok_or_else(|| Error::not_found("product"))?;
    let currency = store::currency(tx, business).await?;
    let mut views =
        store::with_variants(tx, business, vec![row], currency, store::product_view).await?;
    crate::images::attach(tx, business, &mut views).await?;
    views.pop().ok_or_else(|| Error::not_found("product"))
}

fn unknown_category() -> Error {
    Error::field(
        "category_id",
        "unknown_category",
        "there is no category with this id",
    )
}

/// The catalog: products that are not archived, drafts included, with filters, full-text
/// search and cursor pagination (the same query as the storefront's).
#[utoipa::path(get, path = "/api/v1/business/products", tag = "catalog", security(("bearer" = [])), params(ProductListQuery),
    responses((status = 200, body = ProductPage), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn list_products(
    State(app): State<App>,
    auth: Auth,
    ApiQuery(query): ApiQuery<ProductListQuery>,
) -> Result<Json<ProductPage>> {
    let listing = query.parse()?;
    let (mut tx, _, business) = begin_staff(&app, &auth, Permission::CatalogRead).await?;
    let currency = store::currency(&mut tx, business).await?;
    let (rows, next_cursor) = store::list(&mut tx, business, &listing, Audience::Staff).await?;
    let mut items =
        store::with_variants(&mut tx, business, rows, currency, store::product_view).await?;
    crate::images::attach(&mut tx, business, &mut items).await?;
    tx.commit().await?;
    Ok(Json(ProductPage { items, next_cursor }))
}

/// Adds a product with its variants. Counts against the plan's product limit (archived
/// products do not count).
#[utoipa::path(post, path = "/api/v1/business/products", tag = "catalog", security(("bearer" = [])), request_body = CreateProductRequest,
    responses((status = 201, body = ProductView), (status = 403, body = Problem, description = "Forbidden, or the plan's product limit is reached (`plan_limit_reached`)"),
        (status = 409, body = Problem, description = "A SKU is taken"), (status = 422, body = Problem)))]
async fn create_product(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiJson(req): ApiJson<CreateProductRequest>,
) -> Result<(StatusCode, Json<ProductView>)> {
    let (mut tx, actor, _) = begin_staff(&app, &auth, Permission::CatalogManage).await?;
    let view = create_product_in(&mut tx, &ctx, &actor, new_id(), &req).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Adds the product `id` with its variants in `tx`, as the staff member `actor`
/// (whose `catalog.manage` in their business the caller checked): the endpoint's body, which `product.create@1`
/// of `POST /api/v1/sync/push` shares with a client-made id. A product `id` already there is
/// answered as it is, unchanged.
///
/// # Errors
/// `validation_failed`, `plan_limit_reached`, an unknown category, a SKU taken (`conflict`),
/// database errors.
pub(crate) async fn create_product_in(
    tx: &mut Tx,
    ctx: &Ctx,
    actor: &Actor,
    id: Uuid,
    req: &CreateProductRequest,
) -> Result<ProductView> {
    let draft = req.parse()?;
    let business = staff_business(actor)?;
    // Two concurrent creations must not both take the last slot of the plan.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('products:' || $1::text, 0))")
        .bind(business.0)
        .execute(&mut **tx)
        .await?;
    // A client-made id (`product.create@1`) is the creation's idempotency key: a product
    // already there (a second mutation creating it) is answered as it is. The lock above
    // orders two creations of one id.
    if store::product(tx, business, id, Audience::Staff)
        .await?
        .is_some()
    {
        return view(tx, business, id).await;
    }
    let count: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM products WHERE business_id = $1 AND archived_at IS NULL",
    )
    .bind(business.0)
    .fetch_one(&mut **tx)
    .await?;
    tenancy::check_plan_limit(tx, business, LimitKind::Products, count).await?;
    if let Some(category) = draft.category {
        if !store::category_exists(tx, business, category).await? {
            return Err(unknown_category());
        }
    }
    store::refuse_clashes(
        store::sku_clashes(tx, business, id, Some(&draft.sku), Some(&draft.variants)).await?,
    )?;
    sqlx::query(
        "INSERT INTO products (business_id, id, sku, name, description, price_minor, cost_minor, category_id, is_published, preparation_time_minutes) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(business.0)
    .bind(id)
    .bind(draft.sku.as_str())
    .bind(draft.name.as_str())
    .bind(draft.description.as_ref().map(|d| d.as_str()))
    .bind(draft.price_minor)
    .bind(draft.cost_minor)
    .bind(draft.category.map(|c| c.0))
    .bind(draft.is_published)
    .bind(i32::from(draft.preparation_time_minutes))
    .execute(&mut **tx)
    .await?;
    store::replace_variants(tx, business, id, &draft.variants).await?;
    let event = Event::ok("product.create", "product", id).with_request(req)?;
    audit::record(tx, ctx, Who::from(actor), Some(business), event).await?;
    view(tx, business, id).await
}

/// One product, archived or not.
#[utoipa::path(get, path = "/api/v1/business/products/{id}", tag = "catalog", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Product id")),
    responses((status = 200, body = ProductView), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_product(
    State(app): State<App>,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<ProductView>> {
    let (mut tx, _, business) = begin_staff(&app, &auth, Permission::CatalogRead).await?;
    let view = view(&mut tx, business, id).await?;
    tx.commit().await?;
    Ok(Json(view))
}

/// Changes a product. `variants`, when sent, replaces the whole list: a variant whose SKU the
/// product already has keeps its id, the others are new, and unlisted ones are removed.
/// Archived products cannot be edited (409).
#[utoipa::path(patch, path = "/api/v1/business/products/{id}", tag = "catalog", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Product id")), request_body = UpdateProductRequest,
    responses((status = 200, body = ProductView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "Archived, or a SKU is taken"), (status = 422, body = Problem)))]
async fn update_product(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<UpdateProductRequest>,
) -> Result<Json<ProductView>> {
    let (mut tx, actor, _) = begin_staff(&app, &auth, Permission::CatalogManage).await?;
    let view = update_product_in(&mut tx, &ctx, &actor, id, &req).await?;
    tx.commit().await?;
    Ok(Json(view))
}

/// Changes the product `id` in `tx`, as the staff member `actor` (whose
/// `catalog.manage` the caller checked): the endpoint's body, shared with `product.update@1`
/// of `POST /api/v1/sync/push`.
///
/// # Errors
/// `validation_failed`, `not_found`, `conflict` (archived, a SKU taken), database errors.
pub(crate) async fn update_product_in(
    tx: &mut Tx,
    ctx: &Ctx,
    actor: &Actor,
    id: Uuid,
    req: &UpdateProductRequest,
) -> Result<ProductView> {
    let change = req.parse()?;
    let business = staff_business(actor)?;
    let current: (i64, Option<chrono::DateTime<chrono::Utc>>) = sqlx::query_as(
        "SELECT price_minor, archived_at FROM products WHERE business_id = $1 AND id = $2 FOR UPDATE",
    )
    .bind(business.0)
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| Error::not_found("product"))?;
    if current.1.is_some() {
        return Err(Error::new(
            ErrorCode::Conflict,
            "this product is archived and cannot be edited",
        ));
    }
    let adjustments: Vec<i64> = sqlx::query_scalar(
        "SELECT price_adjustment_minor FROM product_variants WHERE business_id = $1 AND product_id = $2",
    )
    .bind(business.0)
    .bind(id)
    .fetch_all(&mut **tx)
    .await?;
    change.check_against(current.0, &adjustments)?;
    if let Some(Some(category)) = change.category {
        if !store::category_exists(tx, business, category).await? {
            return Err(unknown_category());
        }
    }
    store::refuse_clashes(
        store::sku_clashes(
            tx,
            business,
            id,
            change.sku.as_ref(),
            change.variants.as_deref(),
        )
        .await?,
    )?;
    sqlx::query(
        "UPDATE products SET sku = coalesce($3, sku), name = coalesce($4, name), \
           description = CASE WHEN $5 THEN $6 ELSE description END, price_minor = coalesce($7, price_minor), \
           cost_minor = CASE WHEN $8 THEN $9 ELSE cost_minor END, category_id = CASE WHEN $10 THEN $11 ELSE category_id END, \
           is_published = coalesce($12, is_published), preparation_time_minutes = coalesce($13, preparation_time_minutes), \
           updated_at = now() \
         WHERE business_id = $1 AND id = $2",
    )
    .bind(business.0)
    .bind(id)
    .bind(change.sku.as_ref().map(|s| s.as_str()))
    .bind(change.name.as_ref().map(|n| n.as_str()))
    .bind(change.description.is_some())
    .bind(change.description.as_ref().and_then(|d| d.as_ref().map(|d| d.as_str())))
    .bind(change.price_minor)
    .bind(change.cost_minor.is_some())
    .bind(change.cost_minor.flatten())
    .bind(change.category.is_some())
    .bind(change.category.flatten().map(|c| c.0))
    .bind(change.is_published)
    .bind(change.preparation_time_minutes.map(i32::from))
    .execute(&mut **tx)
    .await?;
    if let Some(variants) = &change.variants {
        store::replace_variants(tx, business, id, variants).await?;
    }
    let event = Event::ok("product.update", "product", id).with_request(req)?;
    audit::record(tx, ctx, Who::from(actor), Some(business), event).await?;
    view(tx, business, id).await
}

/// Deletes a product from the catalog by archiving it: it is unpublished, leaves every list and
/// the storefront, stops counting against the plan, and can no longer be edited; `GET` by id
/// still shows it. Products are never removed from the database: order lines keep their own
/// snapshot of what was sold (name, variant, price), so an archived product is history, not a
/// dangling reference. Archiving twice is a no-op.
#[utoipa::path(delete, path = "/api/v1/business/products/{id}", tag = "catalog", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Product id")),
    responses((status = 204, description = "Archived"), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn archive_product(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode> {
    let (mut tx, actor, business) = begin_staff(&app, &auth, Permission::CatalogManage).await?;
    let archived: Option<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar::<_, Option<_>>(
        "SELECT archived_at FROM products WHERE business_id = $1 AND id = $2 FOR UPDATE",
    )
    .bind(business.0)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| Error::not_found("product"))?;
    if archived.is_none() {
        sqlx::query(
            "UPDATE products SET archived_at = now(), is_published = false, updated_at = now() \
             WHERE business_id = $1 AND id = $2",
        )
        .bind(business.0)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        audit::record(
            &mut tx,
            &ctx,
            Who::from(&actor),
            Some(business),
            Event::ok("product.archive", "product", id),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(FromRow)]
struct CategoryRow {
    id: Uuid,
    parent_id: Option<Uuid>,
    name: String,
    slug: String,
    display_order: i32,
    is_active: bool,
    product_count: i64,
}

const CATEGORY_SELECT: &str = "SELECT c.id, c.parent_id, c.name, c.slug, c.display_order, c.is_active, \
    (SELECT count(*) FROM products p WHERE p.business_id = c.business_id AND p.category_id = c.id AND p.archived_at IS NULL) AS product_count \
    FROM product_categories c";

async fn categories(tx: &mut Tx, business: BusinessId) -> Result<Vec<CategoryView>> {
    let rows: Vec<CategoryRow> =
        sqlx::query_as(&format!("{CATEGORY_SELECT} WHERE c.business_id = $1"))
            .bind(business.0)
            .fetch_all(&mut **tx)
            .await?;
    let nodes: Vec<catalog::CategoryNode> = rows
        .iter()
        .map(|r| catalog::CategoryNode {
            id: CategoryId(r.id),
            parent: r.parent_id.map(CategoryId),
            display_order: r.display_order,
        })
        .collect();
    Ok(catalog::tree_order(&nodes)
        .into_iter()
        .map(|(i, depth)| {
            let r = &rows[i];
            CategoryView {
                id: CategoryId(r.id),
                parent_id: r.parent_id.map(CategoryId),
                name: r.name.clone(),
                slug: r.slug.clone(),
                display_order: r.display_order,
                is_active: r.is_active,
                depth,
                product_count: r.product_count,
            }
        })
        .collect())
}

async fn category(tx: &mut Tx, business: BusinessId, id: Uuid) -> Result<CategoryView> {
    categories(tx, business)
        .await?
        .into_iter()
        .find(|c| c.id.0 == id)
        .ok_or_else(|| Error::not_found("category"))
}

/// Checks that `category` may sit under `parent` (same business, no cycle).
async fn check_parent(
    tx: &mut Tx,
    business: BusinessId,
    category: CategoryId,
    parent: CategoryId,
) -> Result<()> {
    let nodes = store::category_nodes(tx, business).await?;
    catalog::check_parent(&nodes, category, parent).map_err(|e| {
        let code = match e {
            CategoryTreeError::UnknownParent => "unknown_category",
            CategoryTreeError::Cycle => "cycle",
        };
        Error::field("parent_id", code, e.to_string())
    })
}

async fn refuse_taken_slug(
    tx: &mut Tx,
    business: BusinessId,
    slug: &str,
    except: Option<Uuid>,
) -> Result<()> {
    let taken: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM product_categories WHERE business_id = $1 AND slug = $2 AND id IS DISTINCT FROM $3)",
    )
    .bind(business.0)
    .bind(slug)
    .bind(except)
    .fetch_one(&mut **tx)
    .await?;
    if taken {
        let mut errors = FieldErrors::default();
        errors.push("slug", "taken", "another category has this slug");
        return store::refuse_clashes(errors);
    }
    Ok(())
}

/// Every category, in tree order (depth first, siblings by display order), inactive ones
/// included, with the number of products directly in each.
#[utoipa::path(get, path = "/api/v1/business/categories", tag = "catalog", security(("bearer" = [])),
    responses((status = 200, body = Vec<CategoryView>), (status = 403, body = Problem)))]
async fn list_categories(State(app): State<App>, auth: Auth) -> Result<Json<Vec<CategoryView>>> {
    let (mut tx, _, business) = begin_staff(&app, &auth, Permission::CatalogRead).await?;
    let list = categories(&mut tx, business).await?;
    tx.commit().await?;
    Ok(Json(list))
}

/// Adds a category, optionally under a parent of the same business.
#[utoipa::path(post, path = "/api/v1/business/categories", tag = "catalog", security(("bearer" = [])), request_body = CreateCategoryRequest,
    responses((status = 201, body = CategoryView), (status = 403, body = Problem), (status = 409, body = Problem, description = "The slug is taken"),
        (status = 422, body = Problem)))]
async fn create_category(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiJson(req): ApiJson<CreateCategoryRequest>,
) -> Result<(StatusCode, Json<CategoryView>)> {
    let new = req.parse()?;
    let (mut tx, actor, business) = begin_staff(&app, &auth, Permission::CatalogManage).await?;
    let id = new_id();
    if let Some(parent) = new.parent {
        check_parent(&mut tx, business, CategoryId(id), parent).await?;
    }
    refuse_taken_slug(&mut tx, business, new.slug.as_str(), None).await?;
    sqlx::query(
        "INSERT INTO product_categories (business_id, id, parent_id, name, slug, display_order, is_active) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(business.0)
    .bind(id)
    .bind(new.parent.map(|p| p.0))
    .bind(new.name.as_str())
    .bind(new.slug.as_str())
    .bind(new.display_order)
    .bind(new.is_active)
    .execute(&mut *tx)
    .await?;
    let event = Event::ok("category.create", "category", id).with_request(&req)?;
    audit::record(&mut tx, &ctx, Who::from(&actor), Some(business), event).await?;
    let view = category(&mut tx, business, id).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Changes a category. A new parent must be in the same business and must not be the category
/// itself or one of its subcategories.
#[utoipa::path(patch, path = "/api/v1/business/categories/{id}", tag = "catalog", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Category id")), request_body = UpdateCategoryRequest,
    responses((status = 200, body = CategoryView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "The slug is taken"), (status = 422, body = Problem)))]
async fn update_category(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<UpdateCategoryRequest>,
) -> Result<Json<CategoryView>> {
    let change = req.parse()?;
    let (mut tx, actor, business) = begin_staff(&app, &auth, Permission::CatalogManage).await?;
    // Category moves are serialized per business, so two concurrent moves cannot close a cycle
    // that neither would close alone.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('categories:' || $1::text, 0))")
        .bind(business.0)
        .execute(&mut *tx)
        .await?;
    let exists: Option<Uuid> = sqlx::query_scalar(
        "SELECT id FROM product_categories WHERE business_id = $1 AND id = $2 FOR UPDATE",
    )
    .bind(business.0)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    exists.ok_or_else(|| Error::not_found("category"))?;
    if let Some(Some(parent)) = change.parent {
        check_parent(&mut tx, business, CategoryId(id), parent).await?;
    }
    if let Some(slug) = &change.slug {
        refuse_taken_slug(&mut tx, business, slug.as_str(), Some(id)).await?;
    }
    sqlx::query(
        "UPDATE product_categories SET name = coalesce($3, name), slug = coalesce($4, slug), \
           parent_id = CASE WHEN $5 THEN $6 ELSE parent_id END, display_order = coalesce($7, display_order), \
           is_active = coalesce($8, is_active) \
         WHERE business_id = $1 AND id = $2",
    )
    .bind(business.0)
    .bind(id)
    .bind(change.name.as_ref().map(|n| n.as_str()))
    .bind(change.slug.as_ref().map(|s| s.as_str()))
    .bind(change.parent.is_some())
    .bind(change.parent.flatten().map(|p| p.0))
    .bind(change.display_order)
    .bind(change.is_active)
    .execute(&mut *tx)
    .await?;
    let event = Event::ok("category.update", "category", id).with_request(&req)?;
    audit::record(&mut tx, &ctx, Who::from(&actor), Some(business), event).await?;
    let view = category(&mut tx, business, id).await?;
    tx.commit().await?;
    Ok(Json(view))
}

/// Deletes a category that no product (archived ones aside) and no subcategory uses (409
/// otherwise). Archived products in it lose their category.
#[utoipa::path(delete, path = "/api/v1/business/categories/{id}", tag = "catalog", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Category id")),
    responses((status = 204, description = "Deleted"), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "Products or subcategories use it")))]
async fn delete_category(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode> {
    let (mut tx, actor, business) = begin_staff(&app, &auth, Permission::CatalogManage).await?;
    let exists: Option<Uuid> = sqlx::query_scalar(
        "SELECT id FROM product_categories WHERE business_id = $1 AND id = $2 FOR UPDATE",
    )
    .bind(business.0)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    exists.ok_or_else(|| Error::not_found("category"))?;
    let (products, children): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM products WHERE business_id = $1 AND category_id = $2 AND archived_at IS NULL), \
                (SELECT count(*) FROM product_categories WHERE business_id = $1 AND parent_id = $2)",
    )
    .bind(business.0)
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    if products > 0 || children > 0 {
        return Err(Error::new(
            ErrorCode::Conflict,
            format!(
                "{products} products and {children} subcategories use this category; move them first"
            ),
        ));
    }
    sqlx::query(
        "UPDATE products SET category_id = NULL WHERE business_id = $1 AND category_id = $2",
    )
    .bind(business.0)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM product_categories WHERE business_id = $1 AND id = $2")
        .bind(business.0)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut tx,
        &ctx,
        Who::from(&actor),
        Some(business),
        Event::ok("category.delete", "category", id),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
