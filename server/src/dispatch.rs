//! Dispatch: a delivery order's delivery and its offers to one driver at a time.
//!
//! The rules are `fleetfront_domain::dispatch` (ranking, [`OfferState`]); this module holds the
//! SQL around them. The delivery is created in the order's acceptance transaction
//! ([`create_delivery`], so it commits with the status change), and the offers are made by the
//! `dispatcher` principal in their own transactions ([`advance`]) right after that commit, after
//! a driver declines, and by the timeout task ([`run_due_offers`]), which also picks up every
//! delivery still waiting for an offer — the state lives in the database, so a restart (or a
//! crash between the commit and the first offer) loses nothing. Every step takes the delivery
//! row `FOR UPDATE` first and only then its offers, in every principal's transaction, so an
//! accept, a manual assignment and the timeout task are serialized per delivery; the partial
//! unique indexes (one open and one accepted offer per delivery) hold even if they were not.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use fleetfront_domain::dispatch::{
    rank, Assignment, Availability, Candidate, Collection, NextStep, Offer, OfferOutcome,
    OfferState, OfferTimeout, PastOffer, Pool, Ranked, Weights,
};
use fleetfront_domain::driver::Priority;
use fleetfront_domain::money::Currency;
use fleetfront_domain::payout::cash_cap_reached;
use fleetfront_domain::value::Coordinates;
use fleetfront_domain::{BusinessId, Money, UserId};
use serde_json::json;
use uuid::Uuid;

use crate::app::App;
use crate::audit::{self, Event, Who};
use crate::context::Ctx;
use crate::db::{new_id, set_principal, Tx};
use crate::error::{Error, Result};

/// How many of the nearest drivers are considered for an offer.
pub const CANDIDATE_LIMIT: usize = 50;
/// How far from the store a driver may be to be offered an order, in metres.
pub const CANDIDATE_RADIUS_M: f64 = 15_000.0;

/// Creates the delivery of a delivery order in `tx` (the transition's transaction), waiting for
/// its first offer; does nothing if the order has one already. Returns the delivery's id.
///
/// # Errors
/// Database errors.
pub async fn create_delivery(
    tx: &mut Tx,
    business: BusinessId,
    order: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<Uuid>> {
    let id: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO deliveries (business_id, id, order_id, status, created_at, updated_at) \
         VALUES ($1, $2, $3, 'pending', $4, $4) ON CONFLICT (business_id, order_id) DO NOTHING \
         RETURNING id",
    )
    .bind(business.0)
    .bind(new_id())
    .bind(order)
    .bind(now)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(id)
}

/// Withdraws the open offer of a cancelled order's delivery and marks the delivery cancelled,
/// in the transition's transaction (the business's staff, or the order system). A driver
/// holding the delivery gets a `cancel` row in the delivery's log and an email
/// ([`crate::delivery::record_cancel`]).
///
/// # Errors
/// Database errors.
pub async fn cancel(
    tx: &mut Tx,
    business: BusinessId,
    order: Uuid,
    now: DateTime<Utc>,
) -> Result<()> {
    let delivery: Option<(Uuid, String, Option<Uuid>)> = sqlx::query_as(
        "SELECT id, status, driver_id FROM deliveries WHERE business_id = $1 AND order_id = $2 FOR UPDATE",
    )
    .bind(business.0)
    .bind(order)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((delivery, status, driver)) = delivery else {
        return Ok(());
    };
    let target = crate::delivery::DeliveryRef {
        business,
        order,
        delivery,
    };
    crate::delivery::record_cancel(tx, target, &status, driver, now).await?;
    sqlx::query(
        "UPDATE dispatch_offers SET status = 'withdrawn', answered_at = $3 \
         WHERE business_id = $1 AND delivery_id = $2 AND status = 'open'",
    )
    .bind(business.0)
    .bind(delivery)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE deliveries SET status = 'cancelled', driver_id = NULL, assigned_at = NULL, updated_at = $3 \
         WHERE business_id = $1 AND id = $2",
    )
    .bind(business.0)
    .bind(delivery)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Opens a transaction as the `dispatcher` principal scoped to `business` (outbox and audit
/// rows are written for that business only).
async fn begin_dispatcher(app: &App, business: Option<BusinessId>) -> Result<Tx> {
    let mut tx = app.db.pool.begin().await?;
    set_principal(&mut tx, "dispatcher", None, None, business.map(|b| b.0)).await?;
    Ok(tx)
}

/// Makes the next offer of the order's delivery if it waits for one (see [`step`]), in its own
/// transaction as the `dispatcher`. Failures are logged: the timeout task retries.
pub async fn start(app: &App, business: BusinessId, order: Uuid) {
    if let Err(e) = start_inner(app, business, order).await {
        tracing::warn!(error = %e, %order, "dispatch step failed; the timeout task will retry");
    }
}

async fn start_inner(app: &App, business: BusinessId, order: Uuid) -> Result<()> {
    let mut tx = begin_dispatcher(app, Some(business)).await?;
    let delivery: Option<Uuid> =
        sqlx::query_scalar("SELECT id FROM deliveries WHERE business_id = $1 AND order_id = $2")
            .bind(business.0)
            .bind(order)
            .fetch_optional(&mut *tx)
            .await?;
    tx.rollback().await?;
    if let Some(delivery) = delivery {
        advance(app, business, delivery).await;
    }
    Ok(())
}

/// Runs [`step`] for one delivery in its own transaction as the `dispatcher`. Failures are
/// logged: the timeout task retries.
pub async fn advance(app: &App, business: BusinessId, delivery: Uuid) {
    if let Err(e) = advance_inner(app, business, delivery).await {
        tracing::warn!(error = %e, %delivery, "dispatch step failed; the timeout task will retry");
    }
}

async fn advance_inner(app: &App, business: BusinessId, delivery: Uuid) -> Result<()> {
    let mut tx = begin_dispatcher(app, Some(business)).await?;
    step(app, &mut tx, business, delivery, app.clock.now()).await?;
    tx.commit().await?;
    Ok(())
}

/// One stored offer row.
type OfferRow = (
    Uuid,
    i32,
    Uuid,
    String,
    DateTime<Utc>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    String,
);

/// Rebuilds the domain's [`OfferState`] from the delivery's offer rows (oldest first); returns
/// it with the open offer's id.
fn offer_state(
    rows: &[OfferRow],
    collection: Collection,
    timeout: OfferTimeout,
) -> (OfferState, Option<Uuid>) {
    let mut state = OfferState::new(collection, timeout);
    let mut open = None;
    for (id, attempt, driver, status, offered_at, expires_at, answered_at, reason) in rows {
        let offer = Offer {
            attempt: u32::try_from(*attempt).unwrap_or(0),
            driver: UserId(*driver),
            offered_at: *offered_at,
            expires_at: *expires_at,
            reason: reason.clone(),
        };
        let at = answered_at.unwrap_or(*expires_at);
        let outcome = match status.as_str() {
            "open" => {
                state.current = Some(offer);
                open = Some(*id);
                continue;
            }
            "accepted" => {
                state.assigned = Some(Assignment {
                    driver: offer.driver,
                    offer: offer.clone(),
                    accepted_at: at,
                });
                OfferOutcome::Accepted
            }
            "declined" => OfferOutcome::Declined,
            "expired" => OfferOutcome::TimedOut,
            _ => OfferOutcome::Withdrawn,
        };
        state.history.push(PastOffer { offer, outcome, at });
    }
    (state, open)
}

/// Loads the offer rows of a delivery, oldest first.
///
/// # Errors
/// Database errors.
pub async fn offer_rows(
    tx: &mut Tx,
    business: BusinessId,
    delivery: Uuid,
) -> Result<Vec<OfferRow>> {
    Ok(sqlx::query_as(
        "SELECT id, attempt, driver_id, status, offered_at, expires_at, answered_at, reason \
           FROM dispatch_offers WHERE business_id = $1 AND delivery_id = $2 ORDER BY attempt",
    )
    .bind(business.0)
    .bind(delivery)
    .fetch_all(&mut **tx)
    .await?)
}

/// The business's offer timeout and whether it takes shared-pool drivers.
async fn settings(tx: &mut Tx, business: BusinessId) -> Result<(OfferTimeout, bool)> {
    let row: Option<(i32, bool)> = sqlx::query_as(
        "SELECT offer_timeout_secs, shared_pool_opt_in FROM business_dispatch_settings WHERE business_id = $1",
    )
    .bind(business.0)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(match row {
        Some((secs, shared)) => (
            OfferTimeout::from_secs(i64::from(secs)).unwrap_or_default(),
            shared,
        ),
        None => (OfferTimeout::DEFAULT, false),
    })
}

/// Moves a delivery on, holding its row lock: an open offer past its expiry times out, and a
/// delivery without an open offer (new, declined, timed out) is offered to the best candidate
/// who may still have it, or becomes `unassigned` and the business is emailed. Does nothing
/// for an open offer still running or a delivery that is assigned, unassigned or cancelled.
/// Runs as the `dispatcher`, scoped to `business`.
///
/// # Errors
/// Database errors.
pub async fn step(
    app: &App,
    tx: &mut Tx,
    business: BusinessId,
    delivery: Uuid,
    now: DateTime<Utc>,
) -> Result<()> {
    let row: Option<(Uuid, String, String)> = sqlx::query_as(
        "SELECT d.order_id, d.status, o.payment_method FROM deliveries d \
           JOIN orders o ON o.business_id = d.business_id AND o.id = d.order_id \
          WHERE d.business_id = $1 AND d.id = $2 FOR UPDATE OF d",
    )
    .bind(business.0)
    .bind(delivery)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((order, status, payment_method)) = row else {
        return Ok(());
    };
    if !matches!(status.as_str(), "pending" | "offered") {
        return Ok(());
    }
    let collection = if payment_method == "cash" {
        Collection::Cash
    } else {
        Collection::Prepaid
    };
    let (timeout, shared) = settings(tx, business).await?;
    let rows = offer_rows(tx, business, delivery).await?;
    let (mut state, open) = offer_state(&rows, collection, timeout);
    if state.assigned.is_some() {
        return Ok(());
    }
    if let Some(open) = open {
        let Ok(driver) = state.expire(now) else {
            // Still open: its driver has until it expires.
            return Ok(());
        };
        sqlx::query(
            "UPDATE dispatch_offers SET status = 'expired', answered_at = $3 \
             WHERE business_id = $1 AND id = $2 AND status = 'open'",
        )
        .bind(business.0)
        .bind(open)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        record(
            tx,
            business,
            "dispatch.offer_expire",
            "dispatch_offer",
            open,
            json!({
                "delivery_id": delivery, "driver_id": driver.0,
            }),
        )
        .await?;
    }
    // A driver who failed the delivery before pickup or was taken off it is not asked again.
    let gave_up: Vec<Uuid> = sqlx::query_scalar(
        "SELECT DISTINCT driver_id FROM delivery_events WHERE business_id = $1 AND delivery_id = $2 \
            AND command IN ('fail', 'reassign') AND outcome = 'applied' AND driver_id IS NOT NULL",
    )
    .bind(business.0)
    .bind(delivery)
    .fetch_all(&mut **tx)
    .await?;
    let mut ranked = candidates(app, tx, business, shared).await?;
    ranked.retain(|r| !gave_up.contains(&r.driver.0));
    match state.next(&ranked, now) {
        Ok(NextStep::Offer(offer)) => {
            let score = ranked
                .iter()
                .find(|r| r.driver == offer.driver)
                .map_or(0, |r| r.score.0);
            let id = new_id();
            // The terms the driver sees, fixed now: they travel with the offer to the
            // driver's device (its `drv:` bucket), where the offer screen works offline.
            let position = app
                .locations
                .store
                .latest(offer.driver)
                .and_then(|(fix, _)| Coordinates::parse(fix.latitude(), fix.longitude()).ok());
            let terms =
                crate::api::dispatch::offer_terms(tx, business.0, delivery, position).await?;
            sqlx::query(
                "INSERT INTO dispatch_offers (business_id, id, delivery_id, driver_id, attempt, status, offered_at, expires_at, score, reason, \
                    pickup_metres, dropoff_metres, estimated_net_minor) \
                 VALUES ($1, $2, $3, $4, $5, 'open', $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(business.0)
            .bind(id)
            .bind(delivery)
            .bind(offer.driver.0)
            .bind(i32::try_from(offer.attempt).unwrap_or(i32::MAX))
            .bind(offer.offered_at)
            .bind(offer.expires_at)
            .bind(score)
            .bind(truncate(&offer.reason, 500))
            .bind(terms.map(|t| i32::try_from(t.pickup_metres).unwrap_or(i32::MAX)))
            .bind(terms.map(|t| i32::try_from(t.dropoff_metres).unwrap_or(i32::MAX)))
            .bind(terms.map(|t| t.estimated_net.minor))
            .execute(&mut **tx)
            .await?;
            set_status(tx, business, delivery, "offered", now).await?;
            record(
                tx,
                business,
                "dispatch.offer",
                "dispatch_offer",
                id,
                json!({
                    "delivery_id": delivery, "order_id": order, "driver_id": offer.driver.0,
                    "attempt": offer.attempt, "reason": offer.reason,
                }),
            )
            .await?;
        }
        Ok(NextStep::Unassigned) => {
            set_status(tx, business, delivery, "unassigned", now).await?;
            notify_unassigned(tx, business, order).await?;
            record(
                tx,
                business,
                "dispatch.unassigned",
                "delivery",
                delivery,
                json!({
                    "order_id": order, "offers": state.history.len(),
                }),
            )
            .await?;
        }
        Err(e) => {
            // The state was checked above; a refusal here means another step got there first.
            tracing::debug!(error = %e, %delivery, "no dispatch step to take");
        }
    }
    Ok(())
}

fn truncate(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}

async fn set_status(
    tx: &mut Tx,
    business: BusinessId,
    delivery: Uuid,
    status: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "UPDATE deliveries SET status = $3, updated_at = $4 WHERE business_id = $1 AND id = $2",
    )
    .bind(business.0)
    .bind(delivery)
    .bind(status)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// An audit row written by the dispatcher for `business`.
async fn record(
    tx: &mut Tx,
    business: BusinessId,
    action: &str,
    resource_type: &str,
    resource: Uuid,
    details: serde_json::Value,
) -> Result<()> {
    audit::record(
        tx,
        &Ctx {
            request_id: "dispatch".into(),
            client_address: "system".into(),
        },
        Who {
            kind: "system",
            id: None,
        },
        Some(business),
        Event::ok(action, resource_type, resource).with_details(details),
    )
    .await
}

/// Emails the business's contact that an order found no driver.
async fn notify_unassigned(tx: &mut Tx, business: BusinessId, order: Uuid) -> Result<()> {
    let to: Option<String> =
        sqlx::query_scalar("SELECT contact_email FROM businesses WHERE id = $1")
            .bind(business.0)
            .fetch_optional(&mut **tx)
            .await?;
    let Some(to) = to else {
        tracing::warn!(%order, "no business contact for an unassigned delivery");
        return Ok(());
    };
    crate::notify::enqueue_email(
        tx,
        business,
        json!({"template": "dispatch_unassigned", "to": to, "order_id": order}),
    )
    .await
}

/// The ranked candidates for an order of `business`: the nearest online, approved drivers
/// around the store (at most [`CANDIDATE_LIMIT`] within [`CANDIDATE_RADIUS_M`]) who are
/// dedicated to the business or, if it opted in, in the shared pool. A driver holding cash for
/// the business at or over its cash cap is marked `over_cash_cap`, so a cash order passes
/// them over ([`OfferState::may_offer_to`]) while a prepaid one does not.
async fn candidates(
    app: &App,
    tx: &mut Tx,
    business: BusinessId,
    shared: bool,
) -> Result<Vec<Ranked>> {
    let store: Option<(f64, f64, String, Option<i64>)> = sqlx::query_as(
        "SELECT b.latitude, b.longitude, b.currency::text, s.cash_cap_minor FROM businesses b \
           LEFT JOIN business_dispatch_settings s ON s.business_id = b.id WHERE b.id = $1",
    )
    .bind(business.0)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((latitude, longitude, currency, cash_cap)) = store else {
        return Ok(Vec::new());
    };
    let dedicated: HashMap<Uuid, i16> = sqlx::query_as::<_, (Uuid, i16)>(
        "SELECT driver_id, priority FROM driver_businesses WHERE business_id = $1",
    )
    .bind(business.0)
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .collect();
    let nearby = app.locations.store.nearest(
        latitude,
        longitude,
        CANDIDATE_LIMIT,
        CANDIDATE_RADIUS_M,
        |d| shared || dedicated.contains_key(&d.0),
    );
    if nearby.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = nearby.iter().map(|(d, _, _)| d.0).collect();
    let ready: HashMap<Uuid, (Option<i32>, Option<DateTime<Utc>>)> =
        sqlx::query_as::<_, (Uuid, Option<i32>, Option<DateTime<Utc>>)>(
            "SELECT u.id, p.rating_tenths, p.online_since FROM users u \
               JOIN driver_profiles p ON p.driver_id = u.id \
              WHERE u.id = ANY($1) AND u.kind = 'driver' AND u.status = 'active' AND p.is_online",
        )
        .bind(&ids)
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .map(|(id, rating, since)| (id, (rating, since)))
        .collect();
    let now = app.clock.now();
    let weights = Weights::default();
    let window_start = now - chrono::Duration::minutes(i64::from(weights.recent_window_minutes));
    // Current load (deliveries held) and recent work (deliveries taken within the window).
    let work: HashMap<Uuid, (i64, i64)> = sqlx::query_as::<_, (Uuid, i64, i64)>(
        "SELECT driver_id, count(*) FILTER (WHERE status IN ('assigned', 'arrived_at_store', 'picked_up', 'arrived_at_customer')), \
                count(*) FILTER (WHERE assigned_at >= $2) \
           FROM deliveries WHERE driver_id = ANY($1) GROUP BY driver_id",
    )
    .bind(&ids)
    .bind(window_start)
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .map(|(id, load, recent)| (id, (load, recent)))
    .collect();
    let held = cash_held(tx, business, &ids, &currency).await?;
    // The cap is in the business's currency, as is every cash order it takes. Every business
    // has its settings row (a trigger makes it); without one no cap is known.
    let cash_cap = cash_cap
        .map(|minor| -> Result<Money> {
            let currency = Currency::parse(&currency).map_err(Error::unexpected)?;
            Ok(Money::new(minor, currency))
        })
        .transpose()?;
    let mut list = Vec::new();
    for (driver, metres, _) in nearby {
        let Some((rating, since)) = ready.get(&driver.0) else {
            continue;
        };
        let dedicated_priority = dedicated
            .get(&driver.0)
            .and_then(|p| Priority::new(i64::from(*p)).ok());
        let pool = match dedicated_priority {
            Some(priority) => Pool::Dedicated { priority },
            None if shared => Pool::Shared,
            None => continue,
        };
        let idle = since.map_or(0, |s| (now - s).num_minutes().max(0));
        let (load, recent) = work.get(&driver.0).copied().unwrap_or((0, 0));
        let over_cash_cap = match cash_cap {
            Some(cap) => {
                let held = Money::new(held.get(&driver.0).copied().unwrap_or(0), cap.currency);
                cash_cap_reached(held, cap).map_err(Error::unexpected)?
            }
            None => false,
        };
        list.push(Candidate {
            driver,
            // Metres within the search radius: the float is small and non-negative.
            pickup_metres: metres.round().clamp(0.0, f64::from(u32::MAX)) as u32,
            pool,
            recent_deliveries: u32::try_from(recent).unwrap_or(u32::MAX),
            idle_minutes: u32::try_from(idle).unwrap_or(u32::MAX),
            rating_tenths: rating.and_then(|r| u8::try_from(r).ok()),
            active_deliveries: u32::try_from(load).unwrap_or(u32::MAX),
            over_cash_cap,
            availability: Availability::READY,
        });
    }
    Ok(rank(&list, &weights))
}

/// The cash each of `drivers` holds for `business` in its `currency` (collected on cash orders,
/// less what was deposited with the business or settled in a payout); drivers holding none
/// are left out.
async fn cash_held(
    tx: &mut Tx,
    business: BusinessId,
    drivers: &[Uuid],
    currency: &str,
) -> Result<HashMap<Uuid, i64>> {
    let rows: Vec<(Uuid, i64)> = sqlx::query_as(
        "SELECT driver_id, sum(CASE kind WHEN 'collected' THEN amount_minor ELSE -amount_minor END)::bigint \
           FROM driver_cash WHERE business_id = $1 AND driver_id = ANY($2) AND currency = $3 \
          GROUP BY driver_id",
    )
    .bind(business.0)
    .bind(drivers)
    .bind(currency)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Moves on every delivery that waits for a step at `now`: open offers past their expiry time
/// out and the next candidate is offered the order; deliveries without an open offer (new, or
/// whose offer was declined, when the immediate step failed or the server stopped) get their
/// offer. Runs as the `dispatcher`, one delivery per transaction, claimed with
/// `FOR UPDATE SKIP LOCKED` so several instances share the work. Returns how many deliveries
/// were handled.
///
/// # Errors
/// Database errors.
pub async fn run_due_offers(app: &App, now: DateTime<Utc>) -> Result<usize> {
    let mut handled: Vec<Uuid> = Vec::new();
    loop {
        let mut tx = begin_dispatcher(app, None).await?;
        let due: Option<(Uuid, Uuid)> = sqlx::query_as(
            "SELECT d.business_id, d.id FROM deliveries d \
              WHERE d.status IN ('pending', 'offered') AND NOT (d.id = ANY($2)) \
                AND NOT EXISTS (SELECT 1 FROM dispatch_offers o \
                     WHERE o.business_id = d.business_id AND o.delivery_id = d.id \
                       AND o.status = 'open' AND o.expires_at > $1) \
              ORDER BY d.created_at, d.id LIMIT 1 FOR UPDATE OF d SKIP LOCKED",
        )
        .bind(now)
        .bind(&handled)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((business, delivery)) = due else {
            tx.rollback().await?;
            return Ok(handled.len());
        };
        let business = BusinessId(business);
        // Scope the outbox and audit rows to the delivery's business.
        sqlx::query("SELECT set_config('app.business_id', $1, true)")
            .bind(business.0.to_string())
            .execute(&mut *tx)
            .await?;
        step(app, &mut tx, business, delivery, now).await?;
        tx.commit().await?;
        handled.push(delivery);
    }
}

/// Runs [`run_due_offers`] every `poll` until the task is aborted.
pub fn spawn_offer_timeouts(app: App, poll: std::time::Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(e) = run_due_offers(&app, app.clock.now()).await {
                tracing::warn!(error = %e, "offer timeout pass failed");
            }
            tokio::time::sleep(poll).await;
        }
    })
}
