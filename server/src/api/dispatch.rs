//! Dispatch endpoints: the driver's offers and deliveries (`/api/v1/driver/assignments`, accept
//! and decline), the business's manual assignment (`POST /api/v1/business/orders/{id}/assign`)
//! and its dispatch board (`GET /api/v1/business/dispatch`).
//!
//! A driver's own rows are found in the driver's transaction (row level security shows a
//! driver only the offers addressed to it); what the driver may know about those offers'
//! orders and stores (store name and position, drop-off, items) is then read for exactly those
//! ids as the `dispatcher`, since a shared-pool driver has no other access to the business.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use fleetfront_domain::api::delivery::{
    AssignmentView, BoardOfferView, DispatchBoardEntry, DispatchStatus, DriverAssignmentsView,
    ManualAssignRequest, OfferView, OpenOfferView,
};
use fleetfront_domain::api::Problem;
use fleetfront_domain::auth::Claims;
use fleetfront_domain::delivery::DeliveryStatus;
use fleetfront_domain::dispatch::{Collection, DispatchError, Offer, OfferState, OfferTimeout};
use fleetfront_domain::distance::metres_between;
use fleetfront_domain::earnings::{self, DeliveryPay};
use fleetfront_domain::money::Currency;
use fleetfront_domain::permission::{AccountKind, Permission};
use fleetfront_domain::value::Coordinates;
use fleetfront_domain::{BusinessId, ErrorCode, Money, UserId};
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::business::begin_staff;
use crate::app::App;
use crate::audit::{self, Event, Who};
use crate::context::Ctx;
use crate::db::{new_id, set_principal, Tx};
use crate::dispatch;
use crate::error::{Error, Result};
use crate::extract::{ApiJson, ApiPath, Auth};
use crate::pay_rates;

pub(crate) fn routes(router: OpenApiRouter<App>) -> OpenApiRouter<App> {
    router
        .routes(routes!(driver_assignments))
        .routes(routes!(accept_offer))
        .routes(routes!(decline_offer))
        .routes(routes!(assign_by_hand))
        .routes(routes!(dispatch_board))
}

fn driver_of(claims: &Claims) -> Result<UserId> {
    if claims.kind == AccountKind::Driver {
        Ok(UserId(claims.sub))
    } else {
        Err(Error::forbidden("this endpoint is for drivers"))
    }
}

/// What a driver's views need about a delivery, read as the dispatcher.
#[derive(sqlx::FromRow)]
struct DeliveryFacts {
    delivery_id: Uuid,
    order_id: Uuid,
    driver_id: Option<Uuid>,
    /// The delivery's stored status.
    status: String,
    assigned_at: Option<DateTime<Utc>>,
    store_name: String,
    store_latitude: f64,
    store_longitude: f64,
    delivery_address: Option<Value>,
    currency: String,
    delivery_fee_minor: i64,
    tip_minor: i64,
    total_minor: i64,
    payment_method: String,
    items_count: i64,
    proof_required: bool,
    /// The driver pay rates of the order's currency, when configured (offer estimates).
    rate_per_km_minor: Option<i64>,
    rate_included_metres: Option<i32>,
    rate_commission_bps: Option<i32>,
    rate_surge_bps: Option<i32>,
}

impl DeliveryFacts {
    fn pickup(&self) -> Result<Coordinates> {
        Coordinates::parse(self.store_latitude, self.store_longitude).map_err(Error::unexpected)
    }

    fn dropoff(&self) -> Result<Coordinates> {
        let point = |key: &str| {
            self.delivery_address
                .as_ref()
                .and_then(|a| a.get(key))
                .and_then(Value::as_f64)
        };
        match (point("latitude"), point("longitude")) {
            (Some(lat), Some(lon)) => Coordinates::parse(lat, lon).map_err(Error::unexpected),
            // An address without coordinates is delivered from the store's position.
            _ => self.pickup(),
        }
    }

    fn money(&self, minor: i64) -> Result<Money> {
        let currency = Currency::parse(&self.currency).map_err(Error::unexpected)?;
        Ok(Money::new(minor, currency))
    }

    fn cash(&self) -> Result<Option<Money>> {
        if self.payment_method == "cash" {
            Ok(Some(self.money(self.total_minor)?))
        } else {
            Ok(None)
        }
    }

    fn items(&self) -> u32 {
        u32::try_from(self.items_count).unwrap_or(u32::MAX)
    }
}

/// Reads [`DeliveryFacts`] of `deliveries` (business, id) as the dispatcher.
async fn facts(app: &App, deliveries: &[(Uuid, Uuid)]) -> Result<HashMap<Uuid, DeliveryFacts>> {
    if deliveries.is_empty() {
        return Ok(HashMap::new());
    }
    let mut tx = app.db.pool.begin().await?;
    set_principal(&mut tx, "dispatcher", None, None, None).await?;
    let facts = facts_in(&mut tx, deliveries).await?;
    tx.rollback().await?;
    Ok(facts)
}

/// What an offer promises its driver, fixed when it is made: the trip to the store from the
/// driver's position then, the trip to the customer, and the estimated net earnings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct OfferTerms {
    /// From the driver's position to the store, in metres (0 without a known position).
    pub pickup_metres: u32,
    /// From the store to the customer, in metres.
    pub dropoff_metres: u32,
    /// [`estimate`]'s net earnings.
    pub estimated_net: Money,
}

/// The terms of offering `delivery` to a driver at `position`, read in the dispatcher's
/// transaction `tx`; `None` for a delivery that is gone.
///
/// # Errors
/// Database errors; stored data that does not parse.
pub(crate) async fn offer_terms(
    tx: &mut Tx,
    business: Uuid,
    delivery: Uuid,
    position: Option<Coordinates>,
) -> Result<Option<OfferTerms>> {
    let Some(f) = facts_in(tx, &[(business, delivery)])
        .await?
        .remove(&delivery)
    else {
        return Ok(None);
    };
    let pickup = f.pickup()?;
    let dropoff_metres = metres_between(pickup, f.dropoff()?);
    Ok(Some(OfferTerms {
        pickup_metres: position.map_or(0, |p| metres_between(p, pickup)),
        dropoff_metres,
        estimated_net: estimate(&f, dropoff_metres)?,
    }))
}

/// [`facts`] in a transaction of the dispatcher.
async fn facts_in(
    tx: &mut Tx,
    deliveries: &[(Uuid, Uuid)],
) -> Result<HashMap<Uuid, DeliveryFacts>> {
    let businesses: Vec<Uuid> = deliveries.iter().map(|d| d.0).collect();
    let ids: Vec<Uuid> = deliveries.iter().map(|d| d.1).collect();
    let rows: Vec<DeliveryFacts> = sqlx::query_as(
        "SELECT d.id AS delivery_id, d.order_id, d.driver_id, d.status, d.assigned_at, \
                b.name AS store_name, b.latitude AS store_latitude, b.longitude AS store_longitude, \
                o.delivery_address, o.currency::text AS currency, o.delivery_fee_minor, o.tip_minor, \
                o.total_minor, o.payment_method, \
                (SELECT coalesce(sum(i.quantity), 0)::bigint FROM order_items i \
                  WHERE i.business_id = o.business_id AND i.order_id = o.id) AS items_count, \
                coalesce(s.require_proof_photo, false) AS proof_required, \
                r.per_km_minor AS rate_per_km_minor, r.included_metres AS rate_included_metres, \
                r.commission_bps AS rate_commission_bps, r.surge_bps AS rate_surge_bps \
           FROM unnest($1::uuid[], $2::uuid[]) AS k(business_id, id) \
           JOIN deliveries d ON d.business_id = k.business_id AND d.id = k.id \
           JOIN orders o ON o.business_id = d.business_id AND o.id = d.order_id \
           JOIN businesses b ON b.id = d.business_id \
           LEFT JOIN business_dispatch_settings s ON s.business_id = d.business_id \
           LEFT JOIN driver_pay_rates r ON r.currency = o.currency",
    )
    .bind(&businesses)
    .bind(&ids)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(|r| (r.delivery_id, r)).collect())
}

fn assignment_view(f: &DeliveryFacts, reason: Option<String>) -> Result<AssignmentView> {
    Ok(AssignmentView {
        delivery_id: f.delivery_id,
        order_id: f.order_id,
        driver_id: f.driver_id.unwrap_or_default(),
        // A delivery the driver holds is at one of its workflow's steps; `assigned` until then.
        status: DeliveryStatus::parse(&f.status).unwrap_or(DeliveryStatus::Assigned),
        store_name: f.store_name.clone(),
        pickup: f.pickup()?,
        dropoff: f.dropoff()?,
        items_count: f.items(),
        cash_to_collect: f.cash()?,
        proof_required: f.proof_required,
        reason,
        assigned_at: f.assigned_at.unwrap_or_default(),
    })
}

type OwnOfferRow = (Uuid, Uuid, Uuid, i32, DateTime<Utc>, DateTime<Utc>, String);

/// The signed-in driver's open offers (not yet expired, soonest expiry first) and the
/// deliveries it holds.
#[utoipa::path(get, path = "/api/v1/driver/assignments", tag = "driver", security(("bearer" = [])),
    responses((status = 200, body = DriverAssignmentsView), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn driver_assignments(
    State(app): State<App>,
    auth: Auth,
) -> Result<Json<DriverAssignmentsView>> {
    let driver = driver_of(&auth.0)?;
    let now = app.clock.now();
    let (mut tx, _) = app.db.begin_as(&auth.0).await?;
    // Row level security shows the driver only its own offers and deliveries.
    let offers: Vec<OwnOfferRow> = sqlx::query_as(
        "SELECT business_id, id, delivery_id, attempt, offered_at, expires_at, reason FROM dispatch_offers \
          WHERE driver_id = $1 AND status = 'open' AND expires_at > $2 ORDER BY expires_at, id",
    )
    .bind(driver.0)
    .bind(now)
    .fetch_all(&mut *tx)
    .await?;
    let held: Vec<(Uuid, Uuid, Option<String>)> = sqlx::query_as(
        "SELECT d.business_id, d.id, \
                (SELECT o.reason FROM dispatch_offers o WHERE o.business_id = d.business_id \
                    AND o.delivery_id = d.id AND o.status = 'accepted') \
           FROM deliveries d WHERE d.driver_id = $1 \
            AND d.status IN ('assigned', 'arrived_at_store', 'picked_up', 'arrived_at_customer') \
          ORDER BY d.assigned_at DESC, d.id",
    )
    .bind(driver.0)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let keys: Vec<(Uuid, Uuid)> = offers
        .iter()
        .map(|o| (o.0, o.2))
        .chain(held.iter().map(|h| (h.0, h.1)))
        .collect();
    let facts = facts(&app, &keys).await?;
    let position = app
        .locations
        .store
        .latest(driver)
        .and_then(|(fix, _)| Coordinates::parse(fix.latitude(), fix.longitude()).ok());
    let mut open = Vec::new();
    for (_, offer_id, delivery_id, attempt, offered_at, expires_at, _) in offers {
        let Some(f) = facts.get(&delivery_id) else {
            continue;
        };
        let pickup = f.pickup()?;
        let dropoff = f.dropoff()?;
        open.push(OpenOfferView {
            offer_id,
            delivery_id,
            offer: OfferView {
                order_id: f.order_id,
                attempt: u32::try_from(attempt).unwrap_or(0),
                store_name: f.store_name.clone(),
                pickup,
                pickup_metres: position.map_or(0, |p| metres_between(p, pickup)),
                dropoff_metres: metres_between(pickup, dropoff),
                estimated_earnings: estimate(f, metres_between(pickup, dropoff))?,
                items_count: f.items(),
                cash_to_collect: f.cash()?,
                offered_at,
                expires_at,
            },
        });
    }
    let mut assignments = Vec::new();
    for (_, delivery_id, reason) in held {
        if let Some(f) = facts.get(&delivery_id) {
            assignments.push(assignment_view(f, reason)?);
        }
    }
    Ok(Json(DriverAssignmentsView {
        offers: open,
        assignments,
    }))
}

/// What the offer shows the driver it would earn: fleetfront-domain's earnings for the trip
/// under the driver pay rates and surge of the order's currency (the fee and the tip passed
/// through when it has none; see [`crate::pay_rates`]).
fn estimate(f: &DeliveryFacts, trip_metres: u32) -> Result<Money> {
    let delivery_fee = f.money(f.delivery_fee_minor)?;
    let stored = pay_rates::StoredRates::from_columns(
        f.rate_per_km_minor,
        f.rate_included_metres,
        f.rate_commission_bps,
        f.rate_surge_bps,
    );
    let (rules, surge_bps) = pay_rates::rules_of(delivery_fee.currency, stored)?;
    let pay = DeliveryPay {
        delivery_fee,
        distance_metres: trip_metres,
        tip: f.money(f.tip_minor)?,
        surge_bps,
    };
    Ok(earnings::compute(&pay, &rules)
        .map_err(Error::unexpected)?
        .net)
}

/// A driver's offer as stored: business, delivery, attempt, status, offered at, expires at,
/// reason.
pub(crate) type OfferRow = (
    Uuid,
    Uuid,
    i32,
    String,
    DateTime<Utc>,
    DateTime<Utc>,
    String,
);

/// Finds the driver's offer and takes its delivery's row lock (always the delivery first, then
/// its offers, as every dispatch step does). 404 for offers of other drivers.
async fn lock_offer(tx: &mut Tx, id: Uuid) -> Result<OfferRow> {
    let offer: OfferRow = sqlx::query_as(
        "SELECT business_id, delivery_id, attempt, status, offered_at, expires_at, reason \
           FROM dispatch_offers WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| Error::not_found("offer"))?;
    // Row level security lets the driver lock the delivery only while its offer is open.
    sqlx::query("SELECT 1 FROM deliveries WHERE business_id = $1 AND id = $2 FOR UPDATE")
        .bind(offer.0)
        .bind(offer.1)
        .execute(&mut **tx)
        .await?;
    // Read again under the lock: an answer, a timeout or a manual assignment may have won.
    let status: String =
        sqlx::query_scalar("SELECT status FROM dispatch_offers WHERE business_id = $1 AND id = $2")
            .bind(offer.0)
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?
            .ok_or_else(|| Error::not_found("offer"))?;
    Ok((offer.0, offer.1, offer.2, status, offer.4, offer.5, offer.6))
}

/// The domain's view of one open offer.
fn open_state(driver: UserId, offer: &OfferRow) -> OfferState {
    let mut state = OfferState::new(Collection::Prepaid, OfferTimeout::DEFAULT);
    state.current = Some(Offer {
        attempt: u32::try_from(offer.2).unwrap_or(0),
        driver,
        offered_at: offer.4,
        expires_at: offer.5,
        reason: offer.6.clone(),
    });
    state
}

fn dispatch_error(e: DispatchError) -> Error {
    match e {
        DispatchError::OfferExpired { .. } => Error::new(
            ErrorCode::OfferExpired,
            "this offer expired before it was accepted",
        ),
        other => Error::new(other.error_code(), other.to_string()),
    }
}

/// Refuses an offer that is not open any more: `offer_expired` for one that timed out, a
/// conflict for one answered, withdrawn or taken.
fn not_open(status: &str) -> Error {
    if status == "expired" {
        Error::new(
            ErrorCode::OfferExpired,
            "this offer expired before it was answered",
        )
    } else {
        Error::new(
            ErrorCode::Conflict,
            format!("this offer is {status}, not open"),
        )
    }
}

/// Scopes the driver's audit row to the offer's business: the last statement of the
/// transaction, so it widens nothing the driver reads.
async fn driver_audit(
    tx: &mut Tx,
    ctx: &Ctx,
    claims: &Claims,
    business: Uuid,
    event: Event<'_>,
) -> Result<()> {
    sqlx::query("SELECT set_config('app.business_id', $1, true)")
        .bind(business.to_string())
        .execute(&mut **tx)
        .await?;
    audit::record(
        tx,
        ctx,
        Who::from(claims),
        Some(BusinessId(business)),
        event,
    )
    .await
}

/// Commits the answer's transaction, or rolls it back at once on a refusal so the delivery's
/// row lock is released now rather than when the connection is next used.
async fn settle_answer(tx: Tx, answer: Result<OfferRow>) -> Result<OfferRow> {
    match answer {
        Ok(offer) => {
            tx.commit().await?;
            Ok(offer)
        }
        Err(e) => {
            if let Err(rollback) = tx.rollback().await {
                tracing::warn!(error = %rollback, "rollback of a refused offer answer failed");
            }
            Err(e)
        }
    }
}

/// The accept itself, under the delivery's lock: the domain rule, then the atomic update.
pub(crate) async fn take_offer(
    tx: &mut Tx,
    ctx: &Ctx,
    claims: &Claims,
    driver: UserId,
    id: Uuid,
    now: DateTime<Utc>,
    position: Option<(f64, f64)>,
) -> Result<OfferRow> {
    let offer = lock_offer(tx, id).await?;
    if offer.3 != "open" {
        return Err(not_open(&offer.3));
    }
    let mut state = open_state(driver, &offer);
    let attempt = u32::try_from(offer.2).unwrap_or(0);
    state.accept(driver, attempt, now).map_err(dispatch_error)?;
    let taken = sqlx::query(
        "UPDATE dispatch_offers SET status = 'accepted', answered_at = $3 \
         WHERE business_id = $1 AND id = $2 AND status = 'open' AND expires_at > $3",
    )
    .bind(offer.0)
    .bind(id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    if taken.rows_affected() == 0 {
        return Err(Error::new(
            ErrorCode::Conflict,
            "this offer is no longer open",
        ));
    }
    let assigned = sqlx::query(
        "UPDATE deliveries SET status = 'assigned', driver_id = $3, assigned_at = $4, updated_at = $4 \
         WHERE business_id = $1 AND id = $2 AND status IN ('pending', 'offered')",
    )
    .bind(offer.0)
    .bind(offer.1)
    .bind(driver.0)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    if assigned.rows_affected() == 0 {
        return Err(Error::new(
            ErrorCode::Conflict,
            "this delivery is no longer available",
        ));
    }
    driver_audit(
        tx,
        ctx,
        claims,
        offer.0,
        Event::ok("dispatch.accept", "dispatch_offer", id)
            .with_details(json!({"delivery_id": offer.1, "attempt": offer.2})),
    )
    .await?;
    // The customer's tracking shows the courier assigned: written by the order system for
    // this business, the transaction's last statement.
    set_principal(tx, "order_worker", None, None, Some(offer.0)).await?;
    crate::delivery::track_assignment(tx, BusinessId(offer.0), offer.1, now, position).await?;
    Ok(offer)
}

/// Accepts an open offer addressed to the signed-in driver: the delivery is theirs. Atomic —
/// only an offer still open and strictly before its expiry is taken, and a delivery has at most
/// one accepted offer. An expired offer is `409 offer_expired`; one that is no longer open
/// (answered, withdrawn, assigned by hand) is `409 conflict`; other drivers' offers are 404.
#[utoipa::path(post, path = "/api/v1/driver/assignments/{id}/accept", tag = "driver", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Offer id")),
    responses((status = 200, body = AssignmentView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "offer_expired, conflict")))]
async fn accept_offer(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<AssignmentView>> {
    let driver = driver_of(&auth.0)?;
    let now = app.clock.now();
    let (mut tx, _) = app.db.begin_as(&auth.0).await?;
    let position = app
        .locations
        .store
        .latest(driver)
        .map(|(fix, _)| (fix.latitude(), fix.longitude()));
    let taken = take_offer(&mut tx, &ctx, &auth.0, driver, id, now, position).await;
    let offer = settle_answer(tx, taken).await?;
    let facts = facts(&app, &[(offer.0, offer.1)]).await?;
    let f = facts
        .get(&offer.1)
        .ok_or_else(|| Error::not_found("delivery"))?;
    Ok(Json(assignment_view(f, Some(offer.6))?))
}

/// The decline itself, under the delivery's lock; a decline after the expiry is recorded as the
/// timeout it is.
pub(crate) async fn refuse_offer(
    tx: &mut Tx,
    ctx: &Ctx,
    claims: &Claims,
    driver: UserId,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<OfferRow> {
    let offer = lock_offer(tx, id).await?;
    if offer.3 != "open" {
        return Err(not_open(&offer.3));
    }
    let mut state = open_state(driver, &offer);
    let attempt = u32::try_from(offer.2).unwrap_or(0);
    let outcome = state
        .decline(driver, attempt, now)
        .map_err(dispatch_error)?;
    let status = match outcome {
        fleetfront_domain::dispatch::OfferOutcome::Declined => "declined",
        _ => "expired",
    };
    sqlx::query(
        "UPDATE dispatch_offers SET status = $3, answered_at = $4 \
         WHERE business_id = $1 AND id = $2 AND status = 'open'",
    )
    .bind(offer.0)
    .bind(id)
    .bind(status)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    driver_audit(
        tx,
        ctx,
        claims,
        offer.0,
        Event::ok("dispatch.decline", "dispatch_offer", id)
            .with_details(json!({"delivery_id": offer.1, "attempt": offer.2, "outcome": status})),
    )
    .await?;
    Ok(offer)
}

/// Declines an open offer addressed to the signed-in driver; the order is offered to the next
/// candidate (never to this driver again). A decline after the expiry counts as the timeout.
#[utoipa::path(post, path = "/api/v1/driver/assignments/{id}/decline", tag = "driver", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Offer id")),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "offer_expired, conflict")))]
async fn decline_offer(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode> {
    let driver = driver_of(&auth.0)?;
    let now = app.clock.now();
    let (mut tx, _) = app.db.begin_as(&auth.0).await?;
    let refused = refuse_offer(&mut tx, &ctx, &auth.0, driver, id, now).await;
    let offer = settle_answer(tx, refused).await?;
    // The next offer, as the dispatcher; the timeout task retries if this fails.
    dispatch::advance(&app, BusinessId(offer.0), offer.1).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Assigns the order's delivery to a driver by hand (permission `dispatch.manage`): a driver
/// dedicated to the business, or from the shared pool if the business opted in, online and
/// approved. The open offer, if any, is withdrawn. An order already assigned is a 409; an
/// order without a delivery (not a delivery order, or not accepted yet) a 404.
#[utoipa::path(post, path = "/api/v1/business/orders/{id}/assign", tag = "business", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Order id")), request_body = ManualAssignRequest,
    responses((status = 200, body = DispatchBoardEntry), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn assign_by_hand(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiPath(order): ApiPath<Uuid>,
    ApiJson(req): ApiJson<ManualAssignRequest>,
) -> Result<Json<DispatchBoardEntry>> {
    let (mut tx, actor, business) = begin_staff(&app, &auth, Permission::DispatchManage).await?;
    let now = app.clock.now();
    let delivery: (Uuid, String) = sqlx::query_as(
        "SELECT id, status FROM deliveries WHERE business_id = $1 AND order_id = $2 FOR UPDATE",
    )
    .bind(business.0)
    .bind(order)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| Error::not_found("delivery"))?;
    if !matches!(delivery.1.as_str(), "pending" | "offered" | "unassigned") {
        return Err(Error::new(
            ErrorCode::Conflict,
            format!("this delivery is {}", delivery.1),
        ));
    }
    let dedicated: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM driver_businesses WHERE business_id = $1 AND driver_id = $2)",
    )
    .bind(business.0)
    .bind(req.driver_id)
    .fetch_one(&mut *tx)
    .await?;
    let shared: bool = sqlx::query_scalar(
        "SELECT coalesce((SELECT shared_pool_opt_in FROM business_dispatch_settings WHERE business_id = $1), false)",
    )
    .bind(business.0)
    .fetch_one(&mut *tx)
    .await?;
    let ready: bool = sqlx::query_scalar("SELECT dispatch_driver_ready($1)")
        .bind(req.driver_id)
        .fetch_one(&mut *tx)
        .await?;
    if !(dedicated || shared) || !ready {
        return Err(Error::field(
            "driver_id",
            "driver_unavailable",
            "choose an online, approved driver dedicated to your business (or from the shared pool, if you opted in)",
        ));
    }
    sqlx::query(
        "UPDATE dispatch_offers SET status = 'withdrawn', answered_at = $3 \
         WHERE business_id = $1 AND delivery_id = $2 AND status = 'open'",
    )
    .bind(business.0)
    .bind(delivery.0)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let attempt: i32 = sqlx::query_scalar(
        "SELECT coalesce(max(attempt), 0) + 1 FROM dispatch_offers WHERE business_id = $1 AND delivery_id = $2",
    )
    .bind(business.0)
    .bind(delivery.0)
    .fetch_one(&mut *tx)
    .await?;
    // The assignment is an accepted offer too, so the one-accepted-offer index covers it.
    sqlx::query(
        "INSERT INTO dispatch_offers (business_id, id, delivery_id, driver_id, attempt, status, offered_at, expires_at, answered_at, score, reason) \
         VALUES ($1, $2, $3, $4, $5, 'accepted', $6, $6 + interval '1 second', $6, 0, 'assigned by hand')",
    )
    .bind(business.0)
    .bind(new_id())
    .bind(delivery.0)
    .bind(req.driver_id)
    .bind(attempt)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE deliveries SET status = 'assigned', driver_id = $3, assigned_at = $4, updated_at = $4 \
         WHERE business_id = $1 AND id = $2",
    )
    .bind(business.0)
    .bind(delivery.0)
    .bind(req.driver_id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        &ctx,
        Who::from(&actor),
        Some(business),
        Event::ok("dispatch.assign", "delivery", delivery.0)
            .with_details(json!({"order_id": order, "driver_id": req.driver_id})),
    )
    .await?;
    let position = app
        .locations
        .store
        .latest(UserId(req.driver_id))
        .map(|(fix, _)| (fix.latitude(), fix.longitude()));
    crate::delivery::track_assignment(&mut tx, business, delivery.0, now, position).await?;
    let entry = board(&mut tx, business, Some(delivery.0))
        .await?
        .pop()
        .ok_or_else(|| Error::not_found("delivery"))?;
    tx.commit().await?;
    Ok(Json(entry))
}

type BoardRow = (
    Uuid,
    Uuid,
    String,
    Option<Uuid>,
    Option<DateTime<Utc>>,
    DateTime<Utc>,
    i64,
    Option<String>,
    Option<Uuid>,
    Option<Uuid>,
    Option<i32>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<String>,
);

/// The board's rows: unassigned first, then waiting (offered, pending), then the rest, newest
/// first within each.
async fn board(
    tx: &mut Tx,
    business: BusinessId,
    only: Option<Uuid>,
) -> Result<Vec<DispatchBoardEntry>> {
    let rows: Vec<BoardRow> = sqlx::query_as(
        "SELECT d.id, d.order_id, d.status, d.driver_id, d.assigned_at, d.created_at, \
                (SELECT count(*) FROM dispatch_offers c WHERE c.business_id = d.business_id AND c.delivery_id = d.id), \
                (SELECT a.reason FROM dispatch_offers a WHERE a.business_id = d.business_id \
                    AND a.delivery_id = d.id AND a.status = 'accepted'), \
                o.id, o.driver_id, o.attempt, o.offered_at, o.expires_at, o.reason \
           FROM deliveries d \
           LEFT JOIN dispatch_offers o ON o.business_id = d.business_id AND o.delivery_id = d.id AND o.status = 'open' \
          WHERE d.business_id = $1 AND ($2::uuid IS NULL OR d.id = $2) \
          ORDER BY CASE d.status WHEN 'unassigned' THEN 0 WHEN 'pending' THEN 1 WHEN 'offered' THEN 1 \
                   WHEN 'assigned' THEN 2 WHEN 'arrived_at_store' THEN 2 \
                   WHEN 'picked_up' THEN 2 WHEN 'arrived_at_customer' THEN 2 ELSE 3 END, d.created_at DESC, d.id \
          LIMIT 500",
    )
    .bind(business.0)
    .bind(only)
    .fetch_all(&mut **tx)
    .await?;
    rows.into_iter()
        .map(|r| {
            let current_offer = match (r.8, r.9, r.10, r.11, r.12, r.13) {
                (
                    Some(offer_id),
                    Some(driver_id),
                    Some(attempt),
                    Some(offered_at),
                    Some(expires_at),
                    Some(reason),
                ) => Some(BoardOfferView {
                    offer_id,
                    driver_id,
                    attempt: u32::try_from(attempt).unwrap_or(0),
                    offered_at,
                    expires_at,
                    reason,
                }),
                _ => None,
            };
            Ok(DispatchBoardEntry {
                delivery_id: r.0,
                order_id: r.1,
                status: DispatchStatus::parse(&r.2).ok_or_else(|| {
                    Error::unexpected(anyhow::anyhow!("unknown delivery status {:?}", r.2))
                })?,
                current_offer,
                driver_id: r.3,
                assigned_at: r.4,
                reason: r.7,
                attempts: u32::try_from(r.6).unwrap_or(u32::MAX),
                created_at: r.5,
            })
        })
        .collect()
}

/// The business's dispatch board: its deliveries with where dispatch stands, the open offer
/// and its expiry, the assigned driver; unassigned deliveries first.
#[utoipa::path(get, path = "/api/v1/business/dispatch", tag = "business", security(("bearer" = [])),
    responses((status = 200, body = Vec<DispatchBoardEntry>), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn dispatch_board(
    State(app): State<App>,
    auth: Auth,
) -> Result<Json<Vec<DispatchBoardEntry>>> {
    let (mut tx, _, business) = begin_staff(&app, &auth, Permission::DispatchManage).await?;
    let entries = board(&mut tx, business, None).await?;
    tx.commit().await?;
    Ok(Json(entries))
}
