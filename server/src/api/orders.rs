//! Orders over HTTP: checkout for customers (`POST /api/v1/orders`) and guests
//! (`POST /api/v1/customers/guest-checkout`), the business's order board
//! (`/api/v1/business/orders`), the customer's history (`/api/v1/customers/me/orders`) and
//! tracking (`/api/v1/orders/{id}/tracking`). The logic lives in [`crate::orders`]; these
//! handlers extract, authorize and map.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use fleetfront_domain::api::order::{
    BusinessOrderQuery, CancelOrderRequest, CheckoutRequest, GuestCheckoutRequest, OrderPage,
    OrderView, PageQuery, PaymentConfirmation, RefundRequest, TrackingQuery, TrackingView,
};
use fleetfront_domain::api::{FieldErrors, Problem};
use fleetfront_domain::auth::Claims;
use fleetfront_domain::order::{Effect, OrderEvent, OrderStatus, Outcome, Party};
use fleetfront_domain::permission::{Actor, Permission, SensitiveAction};
use fleetfront_domain::value::{Email, Phone};
use fleetfront_domain::{BusinessId, ErrorCode, Money};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::business::begin_staff;
use crate::app::App;
use crate::audit::{self, Event, Who};
use crate::auth::secret_hash;
use crate::context::Ctx;
use crate::db::set_principal;
use crate::error::{Error, Result};
use crate::extract::{require_elevation, ApiJson, ApiPath, ApiQuery, Auth};
use crate::orders::{self, OrderRow, Shopper, ORDER_COLUMNS};

pub(crate) fn routes(router: OpenApiRouter<App>) -> OpenApiRouter<App> {
    router
        .routes(routes!(place_order))
        .routes(routes!(guest_checkout))
        .routes(routes!(list_business_orders))
        .routes(routes!(get_business_order, update_business_order))
        .routes(routes!(refund_order))
        .routes(routes!(my_orders))
        .routes(routes!(track_order))
        .routes(routes!(cancel_my_order))
        .routes(routes!(confirm_order_payment))
}

fn idempotency_key(headers: &HeaderMap) -> Result<String> {
    orders::parse_idempotency_key(
        headers
            .get("idempotency-key")
            .map(|v| v.to_str().unwrap_or("\u{0}")),
    )
}

fn created(status: StatusCode, body: serde_json::Value) -> Response {
    (status, Json(body)).into_response()
}

/// Places an order for the signed-in customer at their store, paying cash on delivery or by
/// card. Needs an `Idempotency-Key`: a retry with the same key and body returns the first
/// response; the same key with another body is refused.
#[utoipa::path(post, path = "/api/v1/orders", tag = "orders", security(("bearer" = [])),
    params(("Idempotency-Key" = String, Header, description = "A new random key per order attempt; reuse it to retry")),
    request_body = CheckoutRequest,
    responses((status = 201, body = OrderView), (status = 409, body = Problem, description = "price_changed, out_of_stock, item_unavailable"),
        (status = 422, body = Problem, description = "validation, store_closed, outside_delivery_area, discount_invalid, payment_method_unavailable")))]
async fn place_order(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    headers: HeaderMap,
    ApiJson(req): ApiJson<CheckoutRequest>,
) -> Result<Response> {
    let key = idempotency_key(&headers)?;
    let fingerprint = orders::fingerprint("POST", "/api/v1/orders", &req);
    let shopper = Shopper::Customer(auth.0.clone());
    let (status, body) = orders::checkout(&app, &ctx, &shopper, &key, &fingerprint, &req).await?;
    Ok(created(status, body))
}

/// Places an order as a guest of the store named in the body (email and phone instead of an
/// account). The response carries the private tracking token. Needs an `Idempotency-Key`.
#[utoipa::path(post, path = "/api/v1/customers/guest-checkout", tag = "orders",
    params(("Idempotency-Key" = String, Header, description = "A new random key per order attempt; reuse it to retry")),
    request_body = GuestCheckoutRequest,
    responses((status = 201, body = OrderView), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn guest_checkout(
    State(app): State<App>,
    ctx: Ctx,
    headers: HeaderMap,
    ApiJson(req): ApiJson<GuestCheckoutRequest>,
) -> Result<Response> {
    let mut errors = FieldErrors::default();
    let email = errors.check("email", Email::parse(&req.email));
    let phone = errors.check("phone", Phone::parse(&req.phone));
    let (Some(email), Some(phone)) = (email, phone) else {
        return Err(Error::validation(errors));
    };
    let key = idempotency_key(&headers)?;
    let fingerprint = orders::fingerprint("POST", "/api/v1/customers/guest-checkout", &req);
    let shopper = Shopper::Guest {
        store: req.store.trim().to_ascii_lowercase(),
        email,
        phone,
    };
    let (status, body) =
        orders::checkout(&app, &ctx, &shopper, &key, &fingerprint, &req.checkout()).await?;
    Ok(created(status, body))
}

/// Live-first rank of a status: pending first, then orders in progress, then finished ones.
const RANK: &str = "CASE WHEN status = 'pending' THEN 0 \
    WHEN status IN ('confirmed', 'preparing', 'ready', 'picked_up') THEN 1 ELSE 2 END";
/// Sort key inside a rank: oldest first while live, newest first once done (microseconds).
const KEY: &str = "CASE WHEN status IN ('delivered', 'rejected', 'cancelled', 'refunded') \
    THEN -(extract(epoch FROM placed_at) * 1000000)::bigint ELSE (extract(epoch FROM placed_at) * 1000000)::bigint END";

fn parse_cursor(raw: Option<&str>, parts: usize) -> Result<Option<Vec<String>>> {
    let Some(raw) = raw else { return Ok(None) };
    let fields: Vec<String> = raw.split('_').map(str::to_owned).collect();
    if fields.len() != parts || Uuid::parse_str(&fields[parts - 1]).is_err() {
        return Err(Error::field(
            "cursor",
            "invalid",
            "not a cursor from a previous page",
        ));
    }
    Ok(Some(fields))
}

fn limit(raw: Option<i64>, default: i64) -> Result<i64> {
    match raw {
        None => Ok(default),
        Some(n @ 1..=100) => Ok(n),
        Some(_) => Err(Error::field("limit", "invalid", "limit must be 1 to 100")),
    }
}

/// The store's orders, live first: pending (oldest first), then in progress (oldest first),
/// then finished (newest first). Filters by status and placement time; cursor-paged.
#[utoipa::path(get, path = "/api/v1/business/orders", tag = "orders", security(("bearer" = [])),
    params(BusinessOrderQuery),
    responses((status = 200, body = OrderPage), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn list_business_orders(
    State(app): State<App>,
    auth: Auth,
    ApiQuery(query): ApiQuery<BusinessOrderQuery>,
) -> Result<Json<OrderPage>> {
    let status = match query.status.as_deref() {
        None => None,
        Some(raw) => Some(OrderStatus::parse(raw).ok_or_else(|| {
            Error::field(
                "status",
                "invalid",
                format!("{raw:?} is not an order status"),
            )
        })?),
    };
    let limit = limit(query.limit, 50)?;
    let cursor = parse_cursor(query.cursor.as_deref(), 3)?;
    let after = match &cursor {
        None => None,
        Some(f) => Some((
            f[0].parse::<i32>()
                .map_err(|_| Error::field("cursor", "invalid", "bad cursor"))?,
            f[1].parse::<i64>()
                .map_err(|_| Error::field("cursor", "invalid", "bad cursor"))?,
            Uuid::parse_str(&f[2]).map_err(|_| Error::field("cursor", "invalid", "bad cursor"))?,
        )),
    };
    let (mut tx, _, business) = begin_staff(&app, &auth, Permission::OrdersRead).await?;
    let sql = format!(
        "SELECT {ORDER_COLUMNS}, ({RANK}) AS live_rank, ({KEY}) AS live_key FROM orders \
         WHERE business_id = $1 AND status <> 'awaiting_payment' AND ($2::text IS NULL OR status = $2) AND ($3::timestamptz IS NULL OR placed_at >= $3) \
         AND ($4::int IS NULL OR (({RANK}), ({KEY}), id) > ($4, $5, $6)) \
         ORDER BY live_rank, live_key, id LIMIT $7"
    );
    let rows: Vec<RankedRow> = sqlx::query_as(&sql)
        .bind(business.0)
        .bind(status.map(OrderStatus::as_str))
        .bind(query.since)
        .bind(after.map(|a| a.0))
        .bind(after.map(|a| a.1))
        .bind(after.map(|a| a.2))
        .bind(limit + 1)
        .fetch_all(&mut *tx)
        .await?;
    let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    let rows: Vec<RankedRow> = rows
        .into_iter()
        .take(usize::try_from(limit).unwrap_or(0))
        .collect();
    let next_cursor = more.then(|| {
        rows.last()
            .map(|r| format!("{}_{}_{}", r.live_rank, r.live_key, r.order.id()))
    });
    let views = orders::views(&mut tx, rows.into_iter().map(|r| r.order).collect()).await?;
    tx.commit().await?;
    Ok(Json(OrderPage {
        items: views,
        next_cursor: next_cursor.flatten(),
    }))
}

#[derive(sqlx::FromRow)]
struct RankedRow {
    #[sqlx(flatten)]
    order: OrderRow,
    live_rank: i32,
    live_key: i64,
}

/// One of the store's orders.
#[utoipa::path(get, path = "/api/v1/business/orders/{id}", tag = "orders", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Order id")),
    responses((status = 200, body = OrderView), (status = 404, body = Problem)))]
async fn get_business_order(
    State(app): State<App>,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<OrderView>> {
    let (mut tx, _, business) = begin_staff(&app, &auth, Permission::OrdersRead).await?;
    // An order awaiting the customer's payment step is not the business's yet.
    let row = orders::find(&mut tx, business, id)
        .await?
        .filter(|r| !r.is_awaiting_payment())
        .ok_or_else(|| Error::not_found("order"))?;
    let view = orders::views(&mut tx, vec![row]).await?.pop();
    tx.commit().await?;
    view.map(Json).ok_or_else(|| Error::not_found("order"))
}

/// Works an order: `{"type": "accept", "prep_time": 15}`, `{"type": "reject", "reason": …}`,
/// `{"type": "start_preparing"}`, `{"type": "mark_ready"}`, `{"type": "pick_up"}` (pickup
/// orders) or `{"type": "cancel", "reason": …}`. Every change goes through the order state
/// machine and is recorded with the staff member and reason; the customer is emailed. Refunds
/// have their own endpoint (`POST /api/v1/business/orders/{id}/refund`); `refund` here is a 422.
#[utoipa::path(patch, path = "/api/v1/business/orders/{id}", tag = "orders", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Order id")), request_body = OrderEvent,
    responses((status = 200, body = OrderView), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn update_business_order(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(event): ApiJson<OrderEvent>,
) -> Result<Json<OrderView>> {
    if matches!(event, OrderEvent::Refund { .. }) {
        // Refunds need their own permission and a PIN elevation: only the refund endpoint.
        return Err(Error::field(
            "type",
            "use_refund_endpoint",
            "refund through POST /api/v1/business/orders/{id}/refund",
        ));
    }
    let (mut tx, actor, business) = begin_staff(&app, &auth, Permission::OrdersManage).await?;
    let user = match &actor {
        Actor::Staff { user, .. } => Some(user.0),
        _ => None,
    };
    let kind = event.kind();
    let now = app.clock.now();
    let (t, row) =
        orders::transition(&mut tx, business, id, event, Party::Staff, user, now).await?;
    audit::record(
        &mut tx,
        &ctx,
        Who::from(&actor),
        Some(business),
        Event::ok("order.update", "order", id).with_details(serde_json::json!({
            "event": kind.as_str(), "outcome": t.outcome.as_str(), "status": t.status.as_str(),
        })),
    )
    .await?;
    orders::enqueue_payment_effects(&mut tx, &row, &t.effects, None).await?;
    tx.commit().await?;
    // Money moves after the status change is committed (no lock held across a provider call).
    orders::settle(&app, business, id).await;
    if t.effects.contains(&Effect::StartDispatch) {
        // The first offer, as the dispatcher; the timeout task retries if this fails.
        crate::dispatch::start(&app, business, id).await;
    }
    let (mut tx, _, _) = begin_staff(&app, &auth, Permission::OrdersManage).await?;
    let row = orders::find(&mut tx, business, id)
        .await?
        .ok_or_else(|| Error::not_found("order"))?;
    let view = orders::views(&mut tx, vec![row]).await?.pop();
    tx.commit().await?;
    view.map(Json).ok_or_else(|| Error::not_found("order"))
}

/// Refunds a completed, paid order: all of it, or `amount_minor` of it. Needs the
/// `payments.refund` permission and a PIN-elevated token for action `refund` in
/// `X-Fleetfront-Elevation`. The order moves to `refunded` through the order state machine;
/// the money goes back through the order's payment gateway after that is committed, and the
/// ledger records it. An order that is not complete, not captured or already refunded is a 409.
#[utoipa::path(post, path = "/api/v1/business/orders/{id}/refund", tag = "orders", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Order id"),
        ("X-Fleetfront-Elevation" = String, Header, description = "A PIN-elevated token for action `refund`")),
    request_body = RefundRequest,
    responses((status = 200, body = OrderView), (status = 403, body = Problem, description = "forbidden, elevation_required"),
        (status = 404, body = Problem), (status = 409, body = Problem, description = "invalid_transition"), (status = 422, body = Problem)))]
async fn refund_order(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    headers: HeaderMap,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<RefundRequest>,
) -> Result<Json<OrderView>> {
    let refund = req.parse()?;
    let (mut tx, actor, business) = begin_staff(&app, &auth, Permission::PaymentsRefund).await?;
    require_elevation(&app, &headers, &auth, SensitiveAction::Refund)?;
    let user = match &actor {
        Actor::Staff { user, .. } => Some(user.0),
        _ => None,
    };
    let event = OrderEvent::Refund {
        reason: refund.reason.clone(),
    };
    let now = app.clock.now();
    let (t, row) =
        orders::transition(&mut tx, business, id, event, Party::Staff, user, now).await?;
    if t.outcome != Outcome::Applied {
        return Err(Error::new(
            ErrorCode::InvalidTransition,
            format!("an order that is {} cannot be refunded", t.status.as_str()),
        ));
    }
    let total = row.total()?;
    let amount = match refund.amount_minor {
        None => None,
        Some(minor) if minor <= total.minor => Some(Money::new(minor, total.currency)),
        Some(_) => {
            return Err(Error::field(
                "amount_minor",
                "too_large",
                format!("at most the order's total, {total}, can be refunded"),
            ))
        }
    };
    audit::record(
        &mut tx,
        &ctx,
        Who::from(&actor),
        Some(business),
        Event::ok("order.refund", "order", id).with_details(serde_json::json!({
            "amount_minor": amount.map_or(total.minor, |a| a.minor),
            "reason": refund.reason.as_str(),
        })),
    )
    .await?;
    orders::enqueue_payment_effects(&mut tx, &row, &t.effects, amount).await?;
    tx.commit().await?;
    // The money goes back after the status change is committed (no lock held across a
    // provider call); the ledger is written with the gateway's answer.
    orders::settle(&app, business, id).await;
    let (mut tx, _, _) = begin_staff(&app, &auth, Permission::PaymentsRefund).await?;
    let row = orders::find(&mut tx, business, id)
        .await?
        .ok_or_else(|| Error::not_found("order"))?;
    let view = orders::views(&mut tx, vec![row]).await?.pop();
    tx.commit().await?;
    view.map(Json).ok_or_else(|| Error::not_found("order"))
}

/// Cancels the signed-in customer's own order while it is pending (its stock and discount use
/// are given back and a card authorization is released). Once the store has accepted it, the
/// cancellation becomes a request for the store, recorded in the order's status log; the
/// answer shows the order either way.
#[utoipa::path(post, path = "/api/v1/orders/{id}/cancel", tag = "orders", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Order id")), request_body = CancelOrderRequest,
    responses((status = 200, body = TrackingView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn cancel_my_order(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<CancelOrderRequest>,
) -> Result<Json<TrackingView>> {
    let reason = req.parse()?;
    let view = orders::cancel_by_customer(&app, &ctx, &auth.0, id, reason).await?;
    Ok(Json(view))
}

/// The signed-in customer's orders at this store, newest first, cursor-paged.
#[utoipa::path(get, path = "/api/v1/customers/me/orders", tag = "customers", security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, body = OrderPage), (status = 403, body = Problem)))]
async fn my_orders(
    State(app): State<App>,
    auth: Auth,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<OrderPage>> {
    let limit = limit(query.limit, 20)?;
    let cursor = parse_cursor(query.cursor.as_deref(), 2)?;
    let after: Option<(DateTime<Utc>, Uuid)> = match &cursor {
        None => None,
        Some(f) => Some((
            f[0].parse::<i64>()
                .ok()
                .and_then(DateTime::from_timestamp_micros)
                .ok_or_else(|| Error::field("cursor", "invalid", "bad cursor"))?,
            Uuid::parse_str(&f[1]).map_err(|_| Error::field("cursor", "invalid", "bad cursor"))?,
        )),
    };
    let (mut tx, actor) = app.db.begin_as(&auth.0).await?;
    let Actor::Customer { customer, business } = actor else {
        return Err(Error::forbidden("this endpoint is for a store's customers"));
    };
    let rows: Vec<OrderRow> = sqlx::query_as(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE business_id = $1 AND customer_id = $2 \
         AND ($3::timestamptz IS NULL OR (placed_at, id) < ($3, $4)) ORDER BY placed_at DESC, id DESC LIMIT $5"
    ))
    .bind(business.0)
    .bind(customer.0)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(limit + 1)
    .fetch_all(&mut *tx)
    .await?;
    let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    let rows: Vec<OrderRow> = rows
        .into_iter()
        .take(usize::try_from(limit).unwrap_or(0))
        .collect();
    let views = orders::views(&mut tx, rows).await?;
    tx.commit().await?;
    let next_cursor = if more {
        views
            .last()
            .map(|v| format!("{}_{}", v.placed_at.timestamp_micros(), v.id))
    } else {
        None
    };
    Ok(Json(OrderPage {
        items: views,
        next_cursor,
    }))
}

/// Tracks an order: its status, status log and an estimated ready time. Open to the customer
/// who placed it (with their bearer token) and to anybody holding the private tracking token
/// from the confirmation (`?token=`). Any other order answers 404.
#[utoipa::path(get, path = "/api/v1/orders/{id}/tracking", tag = "orders",
    params(("id" = Uuid, Path, description = "Order id"), TrackingQuery),
    responses((status = 200, body = TrackingView), (status = 404, body = Problem)))]
async fn track_order(
    State(app): State<App>,
    claims: Option<Extension<Arc<Claims>>>,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<TrackingQuery>,
) -> Result<Json<TrackingView>> {
    if let Some(token) = query.token.as_deref().filter(|t| !t.is_empty()) {
        let mut tx = app.db.pool.begin_with("BEGIN READ ONLY").await?;
        set_principal(&mut tx, "public", None, None, None).await?;
        orders::set_tracking_hash(&mut tx, &secret_hash(token)).await?;
        let row: Option<OrderRow> =
            sqlx::query_as(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1"))
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let row = row.ok_or_else(|| Error::not_found("order"))?;
        // The token holder is a visitor of that order's store from here on: its public
        // principal may read what the store shows anybody (the pickup location for the ETA).
        set_principal(&mut tx, "public", None, None, Some(row.business_id().0)).await?;
        let view = orders::tracking(&mut tx, &row, &app.locations.store, app.clock.now()).await?;
        tx.commit().await?;
        return Ok(Json(view));
    }
    let Some(Extension(claims)) = claims else {
        return Err(Error::unauthenticated(
            "send the tracking token (?token=) or sign in as the customer who placed the order",
        ));
    };
    let (mut tx, actor) = app.db.begin_as(&claims).await?;
    let (business, customer): (BusinessId, _) = match actor {
        Actor::Customer { business, customer } => (business, customer),
        _ => return Err(Error::not_found("order")),
    };
    let row = orders::find(&mut tx, business, id)
        .await?
        .filter(|r| r.customer_id() == Some(customer.0))
        .ok_or_else(|| Error::not_found("order"))?;
    let view = orders::tracking(&mut tx, &row, &app.locations.store, app.clock.now()).await?;
    tx.commit().await?;
    Ok(Json(view))
}

/// Confirms a card payment after the customer's step in the payment provider's UI (3-D
/// Secure): the checkout of such an order answers `awaiting_payment` with a `payment_action`
/// whose `client_secret` the client hands to the provider's SDK; then it calls this. The
/// payment is re-read from the provider (the client's word is not taken): once the money is
/// held the order becomes `pending` for the business and its acceptance window starts (Stripe's
/// webhook does the same if it comes first; either way, once). Open to the customer who placed
/// the order (bearer token) and to the holder of its tracking token (`?token=`, guests).
#[utoipa::path(post, path = "/api/v1/orders/{id}/payment/confirm", tag = "orders",
    params(("id" = Uuid, Path, description = "Order id"), TrackingQuery),
    responses((status = 200, body = PaymentConfirmation), (status = 401, body = Problem),
        (status = 402, body = Problem, description = "payment_declined: the authentication failed; another card may be tried until the deadline"),
        (status = 404, body = Problem),
        (status = 409, body = Problem, description = "payment_action_required: the customer's step is not complete"),
        (status = 503, body = Problem)))]
async fn confirm_order_payment(
    State(app): State<App>,
    ctx: Ctx,
    claims: Option<Extension<Arc<Claims>>>,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<TrackingQuery>,
) -> Result<Json<PaymentConfirmation>> {
    let (row, who) = if let Some(token) = query.token.as_deref().filter(|t| !t.is_empty()) {
        let mut tx = app.db.pool.begin_with("BEGIN READ ONLY").await?;
        set_principal(&mut tx, "public", None, None, None).await?;
        orders::set_tracking_hash(&mut tx, &secret_hash(token)).await?;
        let row: Option<OrderRow> =
            sqlx::query_as(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1"))
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        tx.commit().await?;
        let who = Who {
            kind: "guest",
            id: None,
        };
        (row.ok_or_else(|| Error::not_found("order"))?, who)
    } else {
        let Some(Extension(claims)) = claims else {
            return Err(Error::unauthenticated(
                "send the tracking token (?token=) or sign in as the customer who placed the order",
            ));
        };
        let (mut tx, actor) = app.db.begin_as(&claims).await?;
        let (business, customer): (BusinessId, _) = match actor {
            Actor::Customer { business, customer } => (business, customer),
            _ => return Err(Error::not_found("order")),
        };
        let row = orders::find(&mut tx, business, id)
            .await?
            .filter(|r| r.customer_id() == Some(customer.0))
            .ok_or_else(|| Error::not_found("order"))?;
        tx.commit().await?;
        (row, Who::customer(Some(customer.0)))
    };
    Ok(Json(orders::confirm_payment(&app, &ctx, &row, who).await?))
}
