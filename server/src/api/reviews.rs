//! Reviews over HTTP: a customer reviews their completed order (`POST
//! /api/v1/orders/{id}/review`), the storefront lists a product's approved reviews (`GET
//! /api/v1/storefronts/{subdomain}/products/{id}/reviews`), and the business reads its reviews,
//! replies and approves or hides product reviews (`/api/v1/business/reviews`). The rules live in
//! `fleetfront_domain::review`; the SQL is here.
//!
//! Reviews are for account customers only: a guest order has no account to own a review, and
//! its tracking token travels in emails that may be forwarded, so it is proof of access to the
//! order's status, not of who ate the food.
//!
//! Product reviews start unapproved; the business's approval shows them on the storefront and
//! adds them to the product's `rating_count`/`rating_sum` in the same transaction (hiding takes
//! them out again), so listings read the aggregate instead of computing it.

use std::collections::{BTreeSet, HashMap};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use fleetfront_domain::api::review::{
    misfit_errors, BusinessReviewQuery, CreateReviewRequest, ProductReviewView, PublicReview,
    PublicReviewPage, ReviewPage, ReviewPageQuery, ReviewView, UpdateReviewRequest,
};
use fleetfront_domain::api::{FieldErrors, Problem};
use fleetfront_domain::permission::{Actor, Permission};
use fleetfront_domain::review::{self, RatingSummary, ReviewDraft, ReviewedOrder};
use fleetfront_domain::{BusinessId, ErrorCode};
use serde_json::json;
use sqlx::FromRow;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::business::begin_staff;
use crate::app::App;
use crate::audit::{self, Event, Who};
use crate::context::Ctx;
use crate::db::{new_id, set_principal, Tx};
use crate::error::{Denied, Error, Result};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth};
use crate::{orders, tenancy};

pub(crate) fn routes(router: OpenApiRouter<App>) -> OpenApiRouter<App> {
    router
        .routes(routes!(review_order))
        .routes(routes!(product_reviews))
        .routes(routes!(list_business_reviews))
        .routes(routes!(update_business_review))
}

// Reading ----------------------------------------------------------------------------------------

const REVIEW_COLUMNS: &str =
    "id, order_id, customer_id, overall_rating, food_quality_rating, delivery_rating, \
    review_text, business_reply, replied_at, created_at";

#[derive(FromRow)]
struct ReviewRow {
    id: Uuid,
    order_id: Uuid,
    customer_id: Uuid,
    overall_rating: i16,
    food_quality_rating: Option<i16>,
    delivery_rating: Option<i16>,
    review_text: Option<String>,
    business_reply: Option<String>,
    replied_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

#[derive(FromRow)]
struct ProductReviewRow {
    id: Uuid,
    order_id: Uuid,
    product_id: Uuid,
    rating: i16,
    review_text: Option<String>,
    verified_purchase: bool,
    is_approved: bool,
    created_at: DateTime<Utc>,
}

/// The views of order review rows, with the product reviews of the same orders, in row order.
async fn views(tx: &mut Tx, business: BusinessId, rows: Vec<ReviewRow>) -> Result<Vec<ReviewView>> {
    let orders: Vec<Uuid> = rows.iter().map(|r| r.order_id).collect();
    let products: Vec<ProductReviewRow> = sqlx::query_as(
        "SELECT id, order_id, product_id, rating, review_text, verified_purchase, is_approved, created_at \
         FROM product_reviews WHERE business_id = $1 AND order_id = ANY($2) ORDER BY order_id, created_at, id",
    )
    .bind(business.0)
    .bind(&orders)
    .fetch_all(&mut **tx)
    .await?;
    let mut by_order: HashMap<Uuid, Vec<ProductReviewView>> = HashMap::new();
    for p in products {
        by_order
            .entry(p.order_id)
            .or_default()
            .push(ProductReviewView {
                id: p.id,
                product_id: p.product_id,
                rating: i64::from(p.rating),
                review_text: p.review_text,
                verified_purchase: p.verified_purchase,
                is_approved: p.is_approved,
                created_at: p.created_at,
            });
    }
    Ok(rows
        .into_iter()
        .map(|r| ReviewView {
            id: r.id,
            order_id: r.order_id,
            customer_id: r.customer_id,
            overall_rating: i64::from(r.overall_rating),
            food_quality_rating: r.food_quality_rating.map(i64::from),
            delivery_rating: r.delivery_rating.map(i64::from),
            review_text: r.review_text,
            business_reply: r.business_reply,
            replied_at: r.replied_at,
            created_at: r.created_at,
            products: by_order.remove(&r.order_id).unwrap_or_default(),
        })
        .collect())
}

async fn find(tx: &mut Tx, business: BusinessId, id: Uuid) -> Result<Option<ReviewRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {REVIEW_COLUMNS} FROM order_reviews WHERE business_id = $1 AND id = $2"
    ))
    .bind(business.0)
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?)
}

/// A page size, 1 to 100.
fn limit(raw: Option<i64>, default: i64) -> Result<i64> {
    match raw {
        None => Ok(default),
        Some(n @ 1..=100) => Ok(n),
        Some(_) => Err(Error::field("limit", "invalid", "limit must be 1 to 100")),
    }
}

/// A newest-first cursor: `<created_at in microseconds>_<id>`.
fn parse_cursor(raw: Option<&str>) -> Result<Option<(DateTime<Utc>, Uuid)>> {
    let Some(raw) = raw else { return Ok(None) };
    let bad = || Error::field("cursor", "invalid", "not a cursor from a previous page");
    let (at, id) = raw.split_once('_').ok_or_else(bad)?;
    let at = at
        .parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(bad)?;
    Ok(Some((at, Uuid::parse_str(id).map_err(|_| bad())?)))
}

fn cursor_of(at: DateTime<Utc>, id: Uuid) -> String {
    format!("{}_{id}", at.timestamp_micros())
}

/// The first `limit` rows, and whether more followed.
fn page<T>(mut rows: Vec<T>, limit: i64) -> (Vec<T>, bool) {
    let limit = usize::try_from(limit).unwrap_or(0);
    let more = rows.len() > limit;
    rows.truncate(limit);
    (rows, more)
}

// The customer's review ----------------------------------------------------------------------------

/// Reviews the signed-in customer's own order, once, after it is complete (delivered, or
/// collected for a pickup order; still after a refund): overall, food and delivery ratings
/// (no delivery rating for pickup orders), words, and optional ratings of products the order
/// contained (verified purchases, shown on the storefront once the business approves them).
/// Guests cannot review (see the module documentation).
#[utoipa::path(post, path = "/api/v1/orders/{id}/review", tag = "reviews", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Order id")), request_body = CreateReviewRequest,
    responses((status = 201, body = ReviewView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "order_not_complete, already_reviewed"),
        (status = 422, body = Problem)))]
async fn review_order(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<CreateReviewRequest>,
) -> Result<(StatusCode, Json<ReviewView>)> {
    let draft = req.parse()?;
    let (mut tx, actor) = app.db.begin_as(&auth.0).await?;
    let Actor::Customer { customer, business } = actor else {
        return Err(Error::forbidden(
            "only the customer who placed an order reviews it",
        ));
    };
    // Row level security shows a customer their own orders only.
    let order = orders::find(&mut tx, business, id)
        .await?
        .filter(|o| o.customer_id() == Some(customer.0))
        .ok_or_else(|| Error::not_found("order"))?;
    let state = order.state()?;
    review::may_review(&state)
        .map_err(|e| Error::new(ErrorCode::OrderNotComplete, e.to_string()))?;
    let reviewed: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM order_reviews WHERE business_id = $1 AND order_id = $2)",
    )
    .bind(business.0)
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    if reviewed {
        return Err(Error::new(
            ErrorCode::AlreadyReviewed,
            "this order has been reviewed already",
        ));
    }
    let products: BTreeSet<Uuid> = orders::items_of(&mut tx, business.0, &[id])
        .await?
        .remove(&id)
        .unwrap_or_default()
        .into_iter()
        .map(|item| item.product_id)
        .collect();
    review::fit(
        &draft,
        &ReviewedOrder {
            fulfilment: state.fulfilment,
            products,
        },
    )
    .map_err(|e| Error::validation(misfit_errors(&e)))?;
    let review_id = insert(&mut tx, business, customer.0, id, &draft).await?;
    audit::record(
        &mut tx,
        &ctx,
        Who::from(&actor),
        Some(business),
        Event::ok("review.create", "order_review", review_id).with_details(json!({
            "order_id": id,
            "overall_rating": draft.order.overall.stars(),
            "products": draft.products.len(),
        })),
    )
    .await?;
    let row = find(&mut tx, business, review_id)
        .await?
        .ok_or_else(|| Error::not_found("review"))?;
    let view = views(&mut tx, business, vec![row]).await?.pop();
    tx.commit().await?;
    view.map(|v| (StatusCode::CREATED, Json(v)))
        .ok_or_else(|| Error::not_found("review"))
}

async fn insert(
    tx: &mut Tx,
    business: BusinessId,
    customer: Uuid,
    order: Uuid,
    draft: &ReviewDraft,
) -> Result<Uuid> {
    let stars = |r: Option<review::Rating>| r.map(|r| i16::try_from(r.stars()).unwrap_or(0));
    let id = new_id();
    sqlx::query(
        "INSERT INTO order_reviews (business_id, id, order_id, customer_id, overall_rating, food_quality_rating, \
           delivery_rating, review_text) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(business.0)
    .bind(id)
    .bind(order)
    .bind(customer)
    .bind(stars(Some(draft.order.overall)))
    .bind(stars(draft.order.food_quality))
    .bind(stars(draft.order.delivery))
    .bind(draft.order.text.as_ref().map(|t| t.as_str()))
    .execute(&mut **tx)
    .await?;
    for p in &draft.products {
        sqlx::query(
            "INSERT INTO product_reviews (business_id, id, product_id, customer_id, order_id, rating, review_text, \
               verified_purchase) VALUES ($1, $2, $3, $4, $5, $6, $7, true)",
        )
        .bind(business.0)
        .bind(new_id())
        .bind(p.product)
        .bind(customer)
        .bind(order)
        .bind(stars(Some(p.rating)))
        .bind(p.text.as_ref().map(|t| t.as_str()))
        .execute(&mut **tx)
        .await?;
    }
    Ok(id)
}

// The storefront ---------------------------------------------------------------------------------

/// An error of a public route: the same problem response, without the mark that makes the
/// middleware audit it as a denied attempt (as in `api::storefront`: anybody may ask).
struct PublicError(Error);

impl IntoResponse for PublicError {
    fn into_response(self) -> Response {
        let mut response = self.0.into_response();
        response.extensions_mut().remove::<Denied>();
        response
    }
}

/// A product's approved reviews, newest first, cursor-paged, with its rating (count, sum and
/// the average in tenths of a star). Unapproved and hidden reviews, and reviews of products
/// that are not published, are never shown.
#[utoipa::path(get, path = "/api/v1/storefronts/{subdomain}/products/{id}/reviews", tag = "storefront",
    params(("subdomain" = String, Path, description = "The store's subdomain"), ("id" = Uuid, Path, description = "Product id"),
        ReviewPageQuery),
    responses((status = 200, body = PublicReviewPage), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn product_reviews(
    State(app): State<App>,
    ApiPath((subdomain, id)): ApiPath<(String, Uuid)>,
    ApiQuery(query): ApiQuery<ReviewPageQuery>,
) -> std::result::Result<Json<PublicReviewPage>, PublicError> {
    public_reviews(&app, &subdomain, id, &query)
        .await
        .map(Json)
        .map_err(PublicError)
}

async fn public_reviews(
    app: &App,
    subdomain: &str,
    product: Uuid,
    query: &ReviewPageQuery,
) -> Result<PublicReviewPage> {
    let limit = limit(query.limit, 20)?;
    let after = parse_cursor(query.cursor.as_deref())?;
    // As `api::storefront`: a read-only transaction as the store's `public` principal.
    let mut tx = app.db.pool.begin_with("BEGIN READ ONLY").await?;
    let business = tenancy::published_store(&mut *tx, subdomain)
        .await?
        .ok_or_else(|| Error::not_found("store"))?;
    set_principal(&mut tx, "public", None, None, Some(business.0)).await?;
    let (count, sum): (i32, i64) = sqlx::query_as(
        "SELECT rating_count, rating_sum FROM products \
         WHERE business_id = $1 AND id = $2 AND is_published AND archived_at IS NULL",
    )
    .bind(business.0)
    .bind(product)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| Error::not_found("product"))?;
    #[allow(clippy::type_complexity)] // one row shape, read right here
    let rows: Vec<(Uuid, i16, Option<String>, bool, DateTime<Utc>)> = sqlx::query_as(
        "SELECT id, rating, review_text, verified_purchase, created_at FROM product_reviews \
         WHERE business_id = $1 AND product_id = $2 AND is_approved \
           AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4)) \
         ORDER BY created_at DESC, id DESC LIMIT $5",
    )
    .bind(business.0)
    .bind(product)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(limit + 1)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let (rows, more) = page(rows, limit);
    let next_cursor = more
        .then(|| rows.last().map(|r| cursor_of(r.4, r.0)))
        .flatten();
    Ok(PublicReviewPage {
        items: rows
            .into_iter()
            .map(|r| PublicReview {
                id: r.0,
                rating: i64::from(r.1),
                review_text: r.2,
                verified_purchase: r.3,
                created_at: r.4,
            })
            .collect(),
        rating: RatingSummary::new(i64::from(count), sum),
        next_cursor,
    })
}

// The business -----------------------------------------------------------------------------------

/// The store's reviews, newest first, each with the product ratings that came with it;
/// filtered by overall rating, and by whether the business has replied (`unreplied=true`:
/// not yet; `unreplied=false`: replied). Needs `orders.read`.
#[utoipa::path(get, path = "/api/v1/business/reviews", tag = "reviews", security(("bearer" = [])),
    params(BusinessReviewQuery),
    responses((status = 200, body = ReviewPage), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn list_business_reviews(
    State(app): State<App>,
    auth: Auth,
    ApiQuery(query): ApiQuery<BusinessReviewQuery>,
) -> Result<Json<ReviewPage>> {
    let rating = query.rating()?;
    let limit = limit(query.limit, 50)?;
    let after = parse_cursor(query.cursor.as_deref())?;
    let (mut tx, _, business) = begin_staff(&app, &auth, Permission::OrdersRead).await?;
    let rows: Vec<ReviewRow> = sqlx::query_as(&format!(
        "SELECT {REVIEW_COLUMNS} FROM order_reviews WHERE business_id = $1 \
           AND ($2::smallint IS NULL OR overall_rating = $2) \
           AND ($3::boolean IS NULL OR (business_reply IS NULL) = $3) \
           AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5)) \
         ORDER BY created_at DESC, id DESC LIMIT $6"
    ))
    .bind(business.0)
    .bind(rating.map(|r| i16::try_from(r.stars()).unwrap_or(0)))
    .bind(query.unreplied)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(limit + 1)
    .fetch_all(&mut *tx)
    .await?;
    let (rows, more) = page(rows, limit);
    let next_cursor = more
        .then(|| rows.last().map(|r| cursor_of(r.created_at, r.id)))
        .flatten();
    let items = views(&mut tx, business, rows).await?;
    tx.commit().await?;
    Ok(Json(ReviewPage { items, next_cursor }))
}

/// Replies to a review (`"reply": null` withdraws the reply) and approves or hides the product
/// reviews that came with it; an approved product review shows on the storefront and counts in
/// the product's rating. Needs `reviews.manage`.
#[utoipa::path(patch, path = "/api/v1/business/reviews/{id}", tag = "reviews", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Review id")), request_body = UpdateReviewRequest,
    responses((status = 200, body = ReviewView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
async fn update_business_review(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<UpdateReviewRequest>,
) -> Result<Json<ReviewView>> {
    let update = req.parse()?;
    let (mut tx, actor, business) = begin_staff(&app, &auth, Permission::ReviewsManage).await?;
    let order: Uuid = sqlx::query_scalar(
        "SELECT order_id FROM order_reviews WHERE business_id = $1 AND id = $2 FOR UPDATE",
    )
    .bind(business.0)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| Error::not_found("review"))?;
    if let Some(reply) = &update.reply {
        sqlx::query(
            "UPDATE order_reviews SET business_reply = $3, \
               replied_at = CASE WHEN $3::text IS NULL THEN NULL ELSE $4 END WHERE business_id = $1 AND id = $2",
        )
        .bind(business.0)
        .bind(id)
        .bind(reply.as_ref().map(|t| t.as_str()))
        .bind(app.clock.now())
        .execute(&mut *tx)
        .await?;
    }
    let mut errors = FieldErrors::default();
    let mut changed = 0;
    for (i, (product_review, approve)) in update.products.iter().enumerate() {
        let current: Option<(Uuid, i16, bool)> = sqlx::query_as(
            "SELECT product_id, rating, is_approved FROM product_reviews \
             WHERE business_id = $1 AND id = $2 AND order_id = $3 FOR UPDATE",
        )
        .bind(business.0)
        .bind(product_review)
        .bind(order)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((product, rating, approved)) = current else {
            errors.push(
                &format!("products[{i}].id"),
                "not_found",
                "not a product review of this review",
            );
            continue;
        };
        if approved == *approve {
            continue;
        }
        sqlx::query(
            "UPDATE product_reviews SET is_approved = $3 WHERE business_id = $1 AND id = $2",
        )
        .bind(business.0)
        .bind(product_review)
        .bind(approve)
        .execute(&mut *tx)
        .await?;
        // The aggregate moves with the approval, in this transaction.
        let sign: i64 = if *approve { 1 } else { -1 };
        sqlx::query(
            "UPDATE products SET rating_count = rating_count + $3, rating_sum = rating_sum + $4 \
             WHERE business_id = $1 AND id = $2",
        )
        .bind(business.0)
        .bind(product)
        .bind(i32::try_from(sign).unwrap_or(0))
        .bind(sign * i64::from(rating))
        .execute(&mut *tx)
        .await?;
        changed += 1;
    }
    if !errors.is_empty() {
        // Nothing is stored: the transaction is dropped, and rolled back.
        return Err(Error::validation(errors));
    }
    audit::record(
        &mut tx,
        &ctx,
        Who::from(&actor),
        Some(business),
        Event::ok("review.update", "order_review", id).with_details(json!({
            "reply": match &update.reply {
                None => "unchanged",
                Some(None) => "removed",
                Some(Some(_)) => "set",
            },
            "moderated": changed,
        })),
    )
    .await?;
    let row = find(&mut tx, business, id)
        .await?
        .ok_or_else(|| Error::not_found("review"))?;
    let view = views(&mut tx, business, vec![row]).await?.pop();
    tx.commit().await?;
    view.map(Json).ok_or_else(|| Error::not_found("review"))
}
