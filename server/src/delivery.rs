//! The delivery workflow: a driver's steps on the delivery it holds (arrived at the store,
//! picked up, arrived at the customer, delivered, or failed), proof photos, the staff's
//! reassignment, and the views of a delivery with its log.
//!
//! The rules are `fleetfront_domain::delivery` (who moves which edge, filled-in steps, proof and
//! cash) and `fleetfront_domain::earnings`; this module holds the SQL around them. A step runs
//! in one transaction: the driver's own principal finds and locks the delivery it holds (row
//! level security shows a driver nothing else, so another driver's delivery is a 404), then the
//! transaction switches to the `order_worker` principal scoped to the delivery's business for
//! the writes the step causes — the delivery and its log, the order's tracking events and its
//! transition (through [`orders::transition`], so the order's own rules, emails and payment
//! jobs apply), the driver's earnings and cash on `delivered`, emails, and the audit row. Money
//! moves after the commit ([`orders::settle`]); a delivery failed before pickup or reassigned
//! goes back to `pending` without a driver and is offered again after the commit
//! ([`dispatch::advance`]), never to a driver who gave it up ([`dispatch::step`] leaves out the
//! drivers of its `fail` and `reassign` log rows).

use chrono::{DateTime, Utc};
use fleetfront_domain::api::delivery::{
    DeliveryCashView, DeliveryEventView, DeliveryProofView, DeliveryStatusUpdateRequest,
    DeliverySteps, DeliveryView, DispatchStatus, ProofStatus, StepOutcome,
};
use fleetfront_domain::api::order::TrackingEventView;
use fleetfront_domain::auth::Claims;
use fleetfront_domain::delivery::{
    self, DeliveryActor, DeliveryChange, DeliveryCommand, DeliveryEffect, DeliveryError,
    DeliveryOutcome, DeliveryState, DeliveryStatus, Evidence, FailureReason, TrackingKind,
};
use fleetfront_domain::distance::metres_between;
use fleetfront_domain::earnings::{self, DeliveryPay, DriverEarnings};
use fleetfront_domain::money::Currency;
use fleetfront_domain::order::{Party, PhotoDigest, Reason};
use fleetfront_domain::value::Coordinates;
use fleetfront_domain::{BusinessId, ErrorCode, Money, UserId};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::app::App;
use crate::audit::{self, Event, Who};
use crate::context::Ctx;
use crate::db::{new_id, set_principal, Tx};
use crate::dispatch;
use crate::error::{Error, Result};
use crate::orders;
use crate::pay_rates;

/// The stored statuses in which a driver holds a delivery and may still work it.
pub const HELD: [&str; 4] = [
    "assigned",
    "arrived_at_store",
    "picked_up",
    "arrived_at_customer",
];

/// Maps a refused step to a problem: the domain's [`DeliveryError::error_code`] as the problem
/// code, and its [`DeliveryError::code`] on the field it concerns. Another driver's delivery is
/// a 404, like one that does not exist.
pub fn delivery_error(e: DeliveryError) -> Error {
    let field = match &e {
        DeliveryError::NotAssignedDriver => return Error::not_found("delivery"),
        DeliveryError::Forbidden { .. } => "status",
        DeliveryError::EvidenceRequired { .. } => "position",
        DeliveryError::ProofRequired => "proof_sha256",
        DeliveryError::CashAmountRequired
        | DeliveryError::CashNotDue
        | DeliveryError::InvalidCashAmount { .. }
        | DeliveryError::CashOverDue { .. }
        | DeliveryError::ShortfallReasonRequired { .. } => "cash_collected",
        DeliveryError::ReasonNeedsPickup { .. } => "failure",
    };
    Error::field(field, e.code(), e.to_string()).with_code(e.error_code())
}

/// What a step needs to know of the delivery's order and business, read as `order_worker`.
#[derive(sqlx::FromRow)]
struct OrderFacts {
    currency: String,
    total_minor: i64,
    delivery_fee_minor: i64,
    tip_minor: i64,
    payment_method: String,
    delivery_address: Option<Value>,
    store_latitude: f64,
    store_longitude: f64,
    proof_required: bool,
}

impl OrderFacts {
    fn currency(&self) -> Result<Currency> {
        Currency::parse(&self.currency).map_err(Error::unexpected)
    }

    fn store(&self) -> Result<Coordinates> {
        Coordinates::parse(self.store_latitude, self.store_longitude).map_err(Error::unexpected)
    }

    /// The drop-off; an address without coordinates counts as the store's position.
    fn dropoff(&self) -> Result<Coordinates> {
        let point = |key: &str| {
            self.delivery_address
                .as_ref()
                .and_then(|a| a.get(key))
                .and_then(Value::as_f64)
        };
        match (point("latitude"), point("longitude")) {
            (Some(lat), Some(lon)) => Coordinates::parse(lat, lon).map_err(Error::unexpected),
            _ => self.store(),
        }
    }
}

async fn order_facts(tx: &mut Tx, business: BusinessId, order: Uuid) -> Result<OrderFacts> {
    sqlx::query_as(
        "SELECT o.currency::text AS currency, o.total_minor, o.delivery_fee_minor, o.tip_minor, \
                o.payment_method, o.delivery_address, b.latitude AS store_latitude, \
                b.longitude AS store_longitude, coalesce(s.require_proof_photo, false) AS proof_required \
           FROM orders o JOIN businesses b ON b.id = o.business_id \
           LEFT JOIN business_dispatch_settings s ON s.business_id = o.business_id \
          WHERE o.business_id = $1 AND o.id = $2",
    )
    .bind(business.0)
    .bind(order)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| Error::unexpected(anyhow::anyhow!("the delivery's order {order} is not visible")))
}

/// A delivery with its business and order.
#[derive(Clone, Copy, Debug)]
pub struct DeliveryRef {
    /// The business.
    pub business: BusinessId,
    /// The order.
    pub order: Uuid,
    /// The delivery.
    pub delivery: Uuid,
}

/// A delivery as the step found it, locked.
struct Held {
    business: BusinessId,
    order: Uuid,
    status: DeliveryStatus,
}

fn stored_status(raw: &str) -> Result<DeliveryStatus> {
    DeliveryStatus::parse(raw)
        .ok_or_else(|| Error::unexpected(anyhow::anyhow!("delivery status {raw:?} is not held")))
}

/// Finds and locks the delivery `id` that `driver` holds, in the driver's own transaction.
async fn lock_held(tx: &mut Tx, driver: UserId, id: Uuid) -> Result<Held> {
    let row: Option<(Uuid, Uuid, String)> = sqlx::query_as(
        "SELECT business_id, order_id, status FROM deliveries \
          WHERE id = $1 AND driver_id = $2 FOR UPDATE",
    )
    .bind(id)
    .bind(driver.0)
    .fetch_optional(&mut **tx)
    .await?;
    let (business, order, status) = row.ok_or_else(|| Error::not_found("delivery"))?;
    Ok(Held {
        business: BusinessId(business),
        order,
        status: stored_status(&status)?,
    })
}

/// Fills in the proof of a `deliver` command: without a named photo, the latest photo uploaded
/// for the delivery is used. A named photo not uploaded yet is kept as the proof all the same
/// (the report is not held back by its upload, `../shared/design.md` section 4): the delivery
/// records its hash, and [`view`] shows the proof `pending` until the photo's upload completes
/// and attaches it ([`crate::uploads`]).
async fn with_proof(
    tx: &mut Tx,
    business: BusinessId,
    id: Uuid,
    command: DeliveryCommand,
) -> Result<DeliveryCommand> {
    let DeliveryCommand::Deliver { proof: None, cash } = command else {
        return Ok(command);
    };
    let stored: Option<String> = sqlx::query_scalar(
        "SELECT sha256 FROM delivery_proofs WHERE business_id = $1 AND delivery_id = $2 \
          ORDER BY created_at DESC, sha256 LIMIT 1",
    )
    .bind(business.0)
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    let proof = stored
        .map(|s| PhotoDigest::parse(&s))
        .transpose()
        .map_err(Error::unexpected)?;
    Ok(DeliveryCommand::Deliver { proof, cash })
}

/// One row of a delivery's log.
struct LogRow<'a> {
    command: &'a str,
    from: &'a str,
    to: &'a str,
    outcome: StepOutcome,
    filled_in: bool,
    by: Party,
    actor: Option<Uuid>,
    driver: Option<Uuid>,
    at: DateTime<Utc>,
    evidence: Option<Evidence>,
    details: Value,
}

async fn log(tx: &mut Tx, business: BusinessId, delivery: Uuid, row: &LogRow<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO delivery_events (business_id, id, delivery_id, driver_id, command, from_status, \
            to_status, outcome, filled_in, by_party, actor_id, at, recorded_at, latitude, longitude, details) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(business.0)
    .bind(new_id())
    .bind(delivery)
    .bind(row.driver)
    .bind(row.command)
    .bind(row.from)
    .bind(row.to)
    .bind(row.outcome.as_str())
    .bind(row.filled_in)
    .bind(row.by.as_str())
    .bind(row.actor)
    .bind(row.at)
    .bind(row.evidence.map(|e| e.recorded_at))
    .bind(row.evidence.map(|e| e.position.latitude))
    .bind(row.evidence.map(|e| e.position.longitude))
    .bind(&row.details)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A tracking event of the order, with the device's position when one was sent.
async fn track(
    tx: &mut Tx,
    target: DeliveryRef,
    kind: &str,
    at: DateTime<Utc>,
    evidence: Option<Evidence>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO order_tracking_events (business_id, id, order_id, kind, at, latitude, longitude, details) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(target.business.0)
    .bind(new_id())
    .bind(target.order)
    .bind(kind)
    .bind(at)
    .bind(evidence.map(|e| e.position.latitude))
    .bind(evidence.map(|e| e.position.longitude))
    .bind(json!({ "delivery_id": target.delivery }))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Records on the order's tracking that a driver took its delivery (an accepted offer or a
/// manual assignment), at the driver's latest known position if there is one. Runs as staff
/// of the business or as the `order_worker` scoped to it.
///
/// # Errors
/// Database errors.
pub async fn track_assignment(
    tx: &mut Tx,
    business: BusinessId,
    delivery: Uuid,
    at: DateTime<Utc>,
    position: Option<(f64, f64)>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO order_tracking_events (business_id, id, order_id, kind, at, latitude, longitude, details) \
         SELECT business_id, $3, order_id, 'driver_assigned', $4, $5, $6, jsonb_build_object('delivery_id', id) \
           FROM deliveries WHERE business_id = $1 AND id = $2",
    )
    .bind(business.0)
    .bind(delivery)
    .bind(new_id())
    .bind(at)
    .bind(position.map(|p| p.0))
    .bind(position.map(|p| p.1))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Sends a delivery back to `pending` without a driver (a failure before pickup, a
/// reassignment): its accepted offer is withdrawn and the step columns cleared; the log keeps
/// who had it. The caller runs [`dispatch::advance`] after the commit.
async fn release(tx: &mut Tx, business: BusinessId, id: Uuid, now: DateTime<Utc>) -> Result<()> {
    sqlx::query(
        "UPDATE dispatch_offers SET status = 'withdrawn' \
          WHERE business_id = $1 AND delivery_id = $2 AND status = 'accepted'",
    )
    .bind(business.0)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE deliveries SET status = 'pending', driver_id = NULL, assigned_at = NULL, \
                arrived_at_store_at = NULL, picked_up_at = NULL, arrived_at_customer_at = NULL, \
                finished_at = NULL, finished_recorded_at = NULL, failure_code = NULL, failure_text = NULL, \
                proof_sha256 = NULL, trip_metres = NULL, updated_at = $3 \
          WHERE business_id = $1 AND id = $2",
    )
    .bind(business.0)
    .bind(id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Emails the business's contact that a delivery failed.
async fn notify_business(
    tx: &mut Tx,
    business: BusinessId,
    order: Uuid,
    reason: &FailureReason,
    redispatched: bool,
) -> Result<()> {
    let to: Option<String> =
        sqlx::query_scalar("SELECT contact_email FROM businesses WHERE id = $1")
            .bind(business.0)
            .fetch_optional(&mut **tx)
            .await?;
    let Some(to) = to else {
        tracing::warn!(%order, "no business contact for a failed delivery");
        return Ok(());
    };
    let text = match reason {
        FailureReason::Other { text } => Some(text.as_str()),
        _ => None,
    };
    crate::notify::enqueue_email(
        tx,
        business,
        json!({
            "template": "delivery_failed", "to": to, "order_id": order,
            "reason": reason.as_str(), "text": text, "redispatched": redispatched,
        }),
    )
    .await
}

/// Emails a driver that the delivery of `order` was taken off it (`template`:
/// `delivery_reassigned` or `delivery_cancelled`). Call it while the driver still holds the
/// delivery: row level security shows staff and the order system the account of a driver
/// holding one of their deliveries, not of one who held it once.
///
/// # Errors
/// Database errors.
pub async fn notify_driver(
    tx: &mut Tx,
    business: BusinessId,
    driver: Uuid,
    order: Uuid,
    template: &str,
) -> Result<()> {
    let to: Option<String> = sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
        .bind(driver)
        .fetch_optional(&mut **tx)
        .await?;
    let Some(to) = to else {
        tracing::warn!(%order, %driver, "the driver's address is not visible; not notified");
        return Ok(());
    };
    crate::notify::enqueue_email(
        tx,
        business,
        json!({"template": template, "to": to, "order_id": order}),
    )
    .await
}

/// Earnings for the delivered step under the platform's rates for the order's currency (none:
/// the fee and the tip passed through), as [`pay_rates::rules_for`] reads them.
async fn record_earnings(
    tx: &mut Tx,
    w: &StepWrite<'_>,
    trip_metres: u32,
    recorded_at: Option<DateTime<Utc>>,
) -> Result<DriverEarnings> {
    let facts = w.facts;
    let currency = facts.currency()?;
    // The same rates the offer's estimate used (`crate::pay_rates`).
    let (rules, surge_bps) = pay_rates::rules_for(tx, currency).await?;
    let pay = DeliveryPay {
        delivery_fee: Money::new(facts.delivery_fee_minor, currency),
        distance_metres: trip_metres,
        tip: Money::new(facts.tip_minor, currency),
        surge_bps,
    };
    let e = earnings::compute(&pay, &rules).map_err(Error::unexpected)?;
    sqlx::query(
        "INSERT INTO driver_earnings (business_id, id, delivery_id, order_id, driver_id, currency, \
            delivery_fee_minor, distance_metres, distance_fee_minor, tip_minor, surge_bps, surge_minor, \
            platform_fee_minor, gross_minor, net_minor, earned_at, recorded_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
    )
    .bind(w.business.0)
    .bind(new_id())
    .bind(w.id)
    .bind(w.order)
    .bind(w.driver.0)
    .bind(&facts.currency)
    .bind(e.delivery_fee.minor)
    .bind(i32::try_from(trip_metres).unwrap_or(i32::MAX))
    .bind(e.distance_fee.minor)
    .bind(e.tip.minor)
    .bind(i32::try_from(e.surge_bps).unwrap_or(i32::MAX))
    .bind(e.surge.minor)
    .bind(e.platform_fee.minor)
    .bind(e.gross.minor)
    .bind(e.net.minor)
    .bind(w.now)
    .bind(recorded_at)
    .execute(&mut **tx)
    .await?;
    Ok(e)
}

/// Applies a driver's status report to the delivery it holds (see the module's description)
/// and answers the delivery as the driver sees it, with the outcome.
///
/// # Errors
/// `not_found` for a delivery the driver does not hold, `validation_failed` for bad fields and
/// cash, `invalid_transition` for refused steps (and an order that is not ready for pickup),
/// database errors.
pub async fn report(
    app: &App,
    ctx: &Ctx,
    claims: &Claims,
    id: Uuid,
    req: &DeliveryStatusUpdateRequest,
) -> Result<DeliveryView> {
    let now = app.clock.now();
    let (mut tx, _) = app.db.begin_as(claims).await?;
    let reported = match report_in(&mut tx, ctx, claims, id, req, now).await {
        Ok(reported) => reported,
        Err(e) => {
            // Release the order's and the delivery's locks now, not when the connection is
            // next used.
            if let Err(rollback) = tx.rollback().await {
                tracing::warn!(error = %rollback, "rollback of a refused delivery step failed");
            }
            return Err(e);
        }
    };
    tx.commit().await?;
    if reported.moved_order {
        // Money moves after the status change is committed (a delivered card order is
        // captured); the payment job task retries a failure.
        orders::settle(app, reported.business, reported.view.order_id).await;
    }
    if reported.redispatch {
        dispatch::advance(app, reported.business, id).await;
    }
    Ok(reported.view)
}

/// What [`report_in`] did, for the work after the commit ([`after_report`]).
pub(crate) struct Reported {
    pub(crate) view: DeliveryView,
    business: BusinessId,
    moved_order: bool,
    redispatch: bool,
}

/// The work after a committed step: the order's payment effects and a new dispatch round.
pub(crate) async fn after_report(app: &App, id: Uuid, reported: &Reported) {
    if reported.moved_order {
        orders::settle(app, reported.business, reported.view.order_id).await;
    }
    if reported.redispatch {
        dispatch::advance(app, reported.business, id).await;
    }
}

/// The step itself, in the driver's transaction `tx` (which it leaves set to the order
/// system's principal for the business).
pub(crate) async fn report_in(
    tx: &mut Tx,
    ctx: &Ctx,
    claims: &Claims,
    id: Uuid,
    req: &DeliveryStatusUpdateRequest,
    now: DateTime<Utc>,
) -> Result<Reported> {
    let driver = UserId(claims.sub);
    // Row level security shows the driver its own deliveries only.
    let found: Option<(Uuid, Uuid)> = sqlx::query_as(
        "SELECT business_id, order_id FROM deliveries WHERE id = $1 AND driver_id = $2",
    )
    .bind(id)
    .bind(driver.0)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((business, order)) = found else {
        return late_report(tx, ctx, claims, id, req, now).await;
    };
    let business = BusinessId(business);
    // The writes the step causes are the order system's, for this business only.
    set_principal(tx, "order_worker", None, None, Some(business.0)).await?;
    // The order first, then the delivery: the order every order transition takes (a
    // cancellation locks its delivery in `dispatch::cancel`), so the two never deadlock. The
    // delivery is read again under its lock, still this driver's.
    sqlx::query("SELECT 1 FROM orders WHERE business_id = $1 AND id = $2 FOR UPDATE")
        .bind(business.0)
        .bind(order)
        .execute(&mut **tx)
        .await?;
    let status: String = sqlx::query_scalar(
        "SELECT status FROM deliveries WHERE business_id = $1 AND id = $2 AND driver_id = $3 FOR UPDATE",
    )
    .bind(business.0)
    .bind(id)
    .bind(driver.0)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| Error::not_found("delivery"))?;
    let held = Held {
        business,
        order,
        status: stored_status(&status)?,
    };
    let facts = order_facts(tx, business, held.order).await?;
    let currency = facts.currency()?;
    let update = req.parse(currency, now)?;
    let command = with_proof(tx, business, id, update.command).await?;
    let state = DeliveryState {
        driver,
        status: held.status,
        proof_required: facts.proof_required,
        cash_due: (facts.payment_method == "cash").then(|| Money::new(facts.total_minor, currency)),
    };
    let name = command.name();
    let proof = match &command {
        DeliveryCommand::Deliver { proof, .. } => proof.clone(),
        _ => None,
    };
    let failure = match &command {
        DeliveryCommand::Fail { reason } => Some(reason.clone()),
        _ => None,
    };
    let step = delivery::apply(
        &state,
        command,
        update.evidence,
        DeliveryActor::Driver(driver),
        now,
    )
    .map_err(delivery_error)?;
    let outcome = match step.outcome {
        DeliveryOutcome::Applied => StepOutcome::Applied,
        DeliveryOutcome::Superseded => StepOutcome::Superseded,
    };
    let mut moved_order = false;
    let redispatch = step.effects.contains(&DeliveryEffect::Redispatch);
    if step.outcome == DeliveryOutcome::Superseded {
        log(
            tx,
            business,
            id,
            &LogRow {
                command: name,
                from: held.status.as_str(),
                to: held.status.as_str(),
                outcome,
                filled_in: false,
                by: Party::Driver,
                actor: Some(driver.0),
                driver: Some(driver.0),
                at: now,
                evidence: update.evidence,
                details: json!({}),
            },
        )
        .await?;
    } else {
        // The order follows first: a refusal there (an order not ready for pickup) refuses the
        // whole step.
        if let Some(event) = step.order_event.clone() {
            let (t, row) = orders::transition(
                tx,
                business,
                held.order,
                event,
                Party::Driver,
                Some(driver.0),
                now,
            )
            .await?;
            orders::enqueue_payment_effects(tx, &row, &t.effects, None).await?;
            moved_order = true;
        }
        apply_step(
            tx,
            &StepWrite {
                business,
                id,
                order: held.order,
                driver,
                facts: &facts,
                name,
                proof: proof.as_ref(),
                failure: failure.as_ref(),
                now,
                device_time: update.evidence.map(|e| e.recorded_at).or(req.recorded_at),
            },
            &step,
        )
        .await?;
    }
    audit::record(
        tx,
        ctx,
        Who::from(claims),
        Some(business),
        Event::ok("delivery.status", "delivery", id).with_details(json!({
            "command": name, "outcome": outcome.as_str(), "status": step.status.as_str(),
            "order_id": held.order,
        })),
    )
    .await?;
    let mut view = view(tx, business, id, Some(driver)).await?;
    view.outcome = Some(outcome);
    Ok(Reported {
        view,
        business,
        moved_order,
        redispatch,
    })
}

/// A report from a driver on a delivery it no longer holds (its order was cancelled, it was
/// reassigned, or it failed before pickup — typically an offline phone catching up): recorded
/// in the log as superseded and answered with the delivery as the driver may see it. A
/// delivery the driver never worked on is a 404.
async fn late_report(
    tx: &mut Tx,
    ctx: &Ctx,
    claims: &Claims,
    id: Uuid,
    req: &DeliveryStatusUpdateRequest,
    now: DateTime<Utc>,
) -> Result<Reported> {
    let driver = UserId(claims.sub);
    let Some(business) = driver_business(tx, driver, id).await? else {
        return Err(Error::not_found("delivery"));
    };
    set_principal(tx, "order_worker", None, None, Some(business.0)).await?;
    let (order, status): (Uuid, String) = sqlx::query_as(
        "SELECT order_id, status FROM deliveries WHERE business_id = $1 AND id = $2 FOR UPDATE",
    )
    .bind(business.0)
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| Error::not_found("delivery"))?;
    let facts = order_facts(tx, business, order).await?;
    let update = req.parse(facts.currency()?, now)?;
    let name = update.command.name();
    log(
        tx,
        business,
        id,
        &LogRow {
            command: name,
            from: &status,
            to: &status,
            outcome: StepOutcome::Superseded,
            filled_in: false,
            by: Party::Driver,
            actor: Some(driver.0),
            driver: Some(driver.0),
            at: now,
            evidence: update.evidence,
            details: json!({"held": false}),
        },
    )
    .await?;
    audit::record(
        tx,
        ctx,
        Who::from(claims),
        Some(business),
        Event::ok("delivery.status", "delivery", id).with_details(json!({
            "command": name, "outcome": "superseded", "status": status, "order_id": order,
        })),
    )
    .await?;
    let mut view = view(tx, business, id, Some(driver)).await?;
    view.outcome = Some(StepOutcome::Superseded);
    Ok(Reported {
        view,
        business,
        moved_order: false,
        redispatch: false,
    })
}

/// What [`apply_step`] writes for.
struct StepWrite<'a> {
    business: BusinessId,
    id: Uuid,
    order: Uuid,
    driver: UserId,
    facts: &'a OrderFacts,
    name: &'static str,
    proof: Option<&'a PhotoDigest>,
    failure: Option<&'a FailureReason>,
    now: DateTime<Utc>,
    /// When it happened by the device's clock (its evidence's time, or the report's
    /// `recorded_at` — the action time of a step queued offline): what reports use.
    device_time: Option<DateTime<Utc>>,
}

/// Writes an applied step: the log and tracking rows of every change, the delivery's columns
/// (or its release, for a failure before pickup), earnings and cash on delivery, and the
/// business's email on a failure.
async fn apply_step(
    tx: &mut Tx,
    w: &StepWrite<'_>,
    step: &delivery::DeliveryTransition,
) -> Result<()> {
    let (business, id, now) = (w.business, w.id, w.now);
    let redispatch = step.effects.contains(&DeliveryEffect::Redispatch);
    let details = match w.failure {
        Some(reason) => json!({"failure": reason, "redispatched": redispatch}),
        None => json!({}),
    };
    for DeliveryChange {
        from,
        to,
        filled_in,
        tracking,
    } in &step.changes
    {
        log(
            tx,
            business,
            id,
            &LogRow {
                command: w.name,
                from: from.as_str(),
                to: to.as_str(),
                outcome: StepOutcome::Applied,
                filled_in: *filled_in,
                by: Party::Driver,
                actor: Some(w.driver.0),
                driver: Some(w.driver.0),
                at: now,
                evidence: step.evidence,
                details: details.clone(),
            },
        )
        .await?;
        track(
            tx,
            DeliveryRef {
                business,
                order: w.order,
                delivery: id,
            },
            // The customer sees a failure before pickup as the change of driver it becomes.
            if redispatch {
                TrackingKind::DriverReassigned.as_str()
            } else {
                tracking.as_str()
            },
            now,
            step.evidence,
        )
        .await?;
    }
    if redispatch {
        release(tx, business, id, now).await?;
    } else {
        let reached = |s: DeliveryStatus| step.changes.iter().any(|c| c.to == s);
        let finished = matches!(
            step.status,
            DeliveryStatus::Delivered | DeliveryStatus::Failed
        );
        let trip = if step.status == DeliveryStatus::Delivered {
            Some(metres_between(w.facts.store()?, w.facts.dropoff()?))
        } else {
            None
        };
        let failure_text = match w.failure {
            Some(FailureReason::Other { text }) => Some(text.as_str()),
            _ => None,
        };
        sqlx::query(
            "UPDATE deliveries SET status = $3, updated_at = $4, \
                arrived_at_store_at = CASE WHEN $5 THEN coalesce(arrived_at_store_at, $4) ELSE arrived_at_store_at END, \
                picked_up_at = CASE WHEN $6 THEN coalesce(picked_up_at, $4) ELSE picked_up_at END, \
                arrived_at_customer_at = CASE WHEN $7 THEN coalesce(arrived_at_customer_at, $4) ELSE arrived_at_customer_at END, \
                finished_at = CASE WHEN $8 THEN $4 ELSE finished_at END, \
                finished_recorded_at = CASE WHEN $8 THEN $9 ELSE finished_recorded_at END, \
                proof_sha256 = coalesce($10, proof_sha256), \
                failure_code = coalesce($11, failure_code), failure_text = coalesce($12, failure_text), \
                trip_metres = coalesce($13, trip_metres) \
              WHERE business_id = $1 AND id = $2",
        )
        .bind(business.0)
        .bind(id)
        .bind(step.status.as_str())
        .bind(now)
        .bind(reached(DeliveryStatus::ArrivedAtStore))
        .bind(reached(DeliveryStatus::PickedUp))
        .bind(reached(DeliveryStatus::ArrivedAtCustomer))
        .bind(finished)
        .bind(w.device_time)
        .bind(w.proof.map(PhotoDigest::as_str))
        .bind(w.failure.map(FailureReason::as_str))
        .bind(failure_text)
        .bind(trip.map(|m| i32::try_from(m).unwrap_or(i32::MAX)))
        .execute(&mut **tx)
        .await?;
        if step.effects.contains(&DeliveryEffect::RecordEarnings) {
            record_earnings(tx, w, trip.unwrap_or(0), w.device_time).await?;
        }
    }
    if let (true, Some(cash)) = (
        step.effects.contains(&DeliveryEffect::RecordCash),
        &step.cash,
    ) {
        sqlx::query(
            "INSERT INTO driver_cash (business_id, id, driver_id, kind, delivery_id, order_id, currency, \
                amount_minor, due_minor, shortfall_minor, shortfall_reason, at, recorded_at, recorded_by) \
             VALUES ($1, $2, $3, 'collected', $4, $5, $6, $7, $8, $9, $10, $11, $12, $3)",
        )
        .bind(business.0)
        .bind(new_id())
        .bind(w.driver.0)
        .bind(id)
        .bind(w.order)
        .bind(cash.due.currency.code())
        .bind(cash.collected.minor)
        .bind(cash.due.minor)
        .bind(cash.shortfall.minor)
        .bind(cash.shortfall_reason.as_ref().map(Reason::as_str))
        .bind(now)
        .bind(w.device_time)
        .execute(&mut **tx)
        .await?;
    }
    if step.effects.contains(&DeliveryEffect::NotifyBusiness) {
        if let Some(reason) = w.failure {
            notify_business(tx, business, w.order, reason, redispatch).await?;
        }
    }
    Ok(())
}

/// Takes a delivery off its driver before pickup (staff, `dispatch.manage`): the domain's
/// `reassign` rule, the delivery back to `pending` with its accepted offer withdrawn, a log
/// row and a tracking event, the driver emailed, the audit row. The caller commits and then
/// runs [`dispatch::advance`].
///
/// # Errors
/// `not_found`; `conflict` for a delivery no driver holds; `invalid_transition` after pickup;
/// database errors.
pub async fn reassign(
    tx: &mut Tx,
    ctx: &Ctx,
    who: Who,
    business: BusinessId,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<()> {
    let row: Option<(Uuid, String, Option<Uuid>)> = sqlx::query_as(
        "SELECT order_id, status, driver_id FROM deliveries WHERE business_id = $1 AND id = $2 FOR UPDATE",
    )
    .bind(business.0)
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    let (order, status, driver) = row.ok_or_else(|| Error::not_found("delivery"))?;
    let Some(driver) = driver.filter(|_| HELD.contains(&status.as_str()) || is_finished(&status))
    else {
        return Err(Error::new(
            ErrorCode::Conflict,
            format!("no driver holds this delivery (it is {status})"),
        ));
    };
    let state = DeliveryState {
        driver: UserId(driver),
        status: stored_status(&status)?,
        proof_required: false,
        cash_due: None,
    };
    let step = delivery::apply(
        &state,
        DeliveryCommand::Reassign,
        None,
        DeliveryActor::Staff,
        now,
    )
    .map_err(delivery_error)?;
    if step.outcome == DeliveryOutcome::Superseded {
        return Err(Error::new(
            ErrorCode::InvalidTransition,
            format!("this delivery is {status}; it can no longer be reassigned"),
        ));
    }
    log(
        tx,
        business,
        id,
        &LogRow {
            command: "reassign",
            from: &status,
            to: step.status.as_str(),
            outcome: StepOutcome::Applied,
            filled_in: false,
            by: Party::Staff,
            actor: who.id,
            driver: Some(driver),
            at: now,
            evidence: None,
            details: json!({}),
        },
    )
    .await?;
    for change in &step.changes {
        let target = DeliveryRef {
            business,
            order,
            delivery: id,
        };
        track(tx, target, change.tracking.as_str(), now, None).await?;
    }
    if step.effects.contains(&DeliveryEffect::NotifyDriver) {
        notify_driver(tx, business, driver, order, "delivery_reassigned").await?;
    }
    release(tx, business, id, now).await?;
    audit::record(
        tx,
        ctx,
        who,
        Some(business),
        Event::ok("delivery.reassign", "delivery", id)
            .with_details(json!({"order_id": order, "driver_id": driver, "from_status": status})),
    )
    .await?;
    Ok(())
}

fn is_finished(status: &str) -> bool {
    matches!(status, "delivered" | "failed")
}

/// Records the cancellation of a held delivery's order in its log (principal of the order's
/// transition) and emails its driver, before [`dispatch::cancel`] clears the driver. Does
/// nothing for a delivery no driver holds.
///
/// # Errors
/// Database errors.
pub async fn record_cancel(
    tx: &mut Tx,
    target: DeliveryRef,
    status: &str,
    driver: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<()> {
    let Some(driver) = driver.filter(|_| HELD.contains(&status)) else {
        return Ok(());
    };
    let DeliveryRef {
        business,
        order,
        delivery: id,
    } = target;
    let state = DeliveryState {
        driver: UserId(driver),
        status: stored_status(status)?,
        proof_required: false,
        cash_due: None,
    };
    let step = match delivery::apply(
        &state,
        DeliveryCommand::Cancel,
        None,
        DeliveryActor::System,
        now,
    ) {
        Ok(step) => step,
        Err(e) => {
            // The order's own rules let it be cancelled only before pickup; say so if not.
            tracing::warn!(error = %e, %order, "a cancelled order's delivery refused the cancel");
            return Ok(());
        }
    };
    log(
        tx,
        business,
        id,
        &LogRow {
            command: "cancel",
            from: status,
            to: step.status.as_str(),
            outcome: StepOutcome::Applied,
            filled_in: false,
            by: Party::System,
            actor: None,
            driver: Some(driver),
            at: now,
            evidence: None,
            details: json!({}),
        },
    )
    .await?;
    if step.effects.contains(&DeliveryEffect::NotifyDriver) {
        notify_driver(tx, business, driver, order, "delivery_cancelled").await?;
    }
    Ok(())
}

// Views ------------------------------------------------------------------------------------------

type DeliveryRow = (
    Uuid,
    String,
    Option<Uuid>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i32>,
);

type EventRow = (
    String,
    String,
    String,
    String,
    bool,
    String,
    Option<Uuid>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Option<f64>,
    Option<f64>,
);

type EarningsRow = (String, i64, i64, i64, i32, i64, i64, i64, i64);

type CashRow = (String, i64, Option<i64>, Option<i64>, Option<String>);

type TrackingRow = (String, DateTime<Utc>, Option<f64>, Option<f64>);

fn failure_of(code: Option<&str>, text: Option<&str>) -> Option<FailureReason> {
    Some(match code? {
        "customer_unreachable" => FailureReason::CustomerUnreachable,
        "wrong_address" => FailureReason::WrongAddress,
        "refused" => FailureReason::Refused,
        "damaged" => FailureReason::Damaged,
        _ => FailureReason::Other {
            text: Reason::parse(text.unwrap_or("other")).ok()?,
        },
    })
}

fn currency_of(raw: &str) -> Result<Currency> {
    Currency::parse(raw.trim()).map_err(Error::unexpected)
}

/// The view of delivery `id` of `business` as the transaction's principal may see it. With
/// `driver`, only that driver's part: its log rows, proofs, cash and earnings, and the holder
/// only when it is that driver.
///
/// # Errors
/// `not_found`, database errors.
pub async fn view(
    tx: &mut Tx,
    business: BusinessId,
    id: Uuid,
    driver: Option<UserId>,
) -> Result<DeliveryView> {
    let only = driver.map(|d| d.0);
    let d: DeliveryRow = sqlx::query_as(
        "SELECT order_id, status, driver_id, assigned_at, arrived_at_store_at, picked_up_at, \
                arrived_at_customer_at, finished_at, finished_recorded_at, failure_code, failure_text, \
                proof_sha256, trip_metres \
           FROM deliveries WHERE business_id = $1 AND id = $2",
    )
    .bind(business.0)
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| Error::not_found("delivery"))?;
    let proofs: Vec<(String, String, i32, DateTime<Utc>)> = sqlx::query_as(
        "SELECT sha256, content_type, byte_size, created_at FROM delivery_proofs \
          WHERE business_id = $1 AND delivery_id = $2 AND ($3::uuid IS NULL OR uploaded_by = $3) \
          ORDER BY created_at, sha256",
    )
    .bind(business.0)
    .bind(id)
    .bind(only)
    .fetch_all(&mut **tx)
    .await?;
    let events: Vec<EventRow> = sqlx::query_as(
        "SELECT command, from_status, to_status, outcome, filled_in, by_party, driver_id, at, \
                recorded_at, latitude, longitude \
           FROM delivery_events WHERE business_id = $1 AND delivery_id = $2 \
            AND ($3::uuid IS NULL OR driver_id = $3) ORDER BY at, id",
    )
    .bind(business.0)
    .bind(id)
    .bind(only)
    .fetch_all(&mut **tx)
    .await?;
    let cash: Option<CashRow> = sqlx::query_as(
        "SELECT currency::text, amount_minor, due_minor, shortfall_minor, shortfall_reason FROM driver_cash \
          WHERE business_id = $1 AND delivery_id = $2 AND kind = 'collected' \
            AND ($3::uuid IS NULL OR driver_id = $3)",
    )
    .bind(business.0)
    .bind(id)
    .bind(only)
    .fetch_optional(&mut **tx)
    .await?;
    let earned: Option<EarningsRow> = sqlx::query_as(
        "SELECT currency::text, delivery_fee_minor, distance_fee_minor, tip_minor, surge_bps, surge_minor, \
                platform_fee_minor, gross_minor, net_minor FROM driver_earnings \
          WHERE business_id = $1 AND delivery_id = $2 AND ($3::uuid IS NULL OR driver_id = $3)",
    )
    .bind(business.0)
    .bind(id)
    .bind(only)
    .fetch_optional(&mut **tx)
    .await?;
    let cash = match cash {
        Some((currency, amount, due, shortfall, reason)) => {
            let currency = currency_of(&currency)?;
            Some(DeliveryCashView {
                due: Money::new(due.unwrap_or(amount), currency),
                collected: Money::new(amount, currency),
                shortfall: Money::new(shortfall.unwrap_or(0), currency),
                shortfall_reason: reason,
            })
        }
        None => None,
    };
    let earnings = match earned {
        Some(e) => {
            let c = currency_of(&e.0)?;
            Some(DriverEarnings {
                delivery_fee: Money::new(e.1, c),
                distance_fee: Money::new(e.2, c),
                tip: Money::new(e.3, c),
                surge_bps: i64::from(e.4),
                surge: Money::new(e.5, c),
                platform_fee: Money::new(e.6, c),
                gross: Money::new(e.7, c),
                net: Money::new(e.8, c),
            })
        }
        None => None,
    };
    let holder = d.2.filter(|holder| only.is_none_or(|me| me == *holder));
    let proof_sha256 = d.11.filter(|_| only.is_none() || holder.is_some());
    // Derived, so nothing needs clearing: the named photo is pending until its row exists.
    let proof = proof_sha256.as_ref().map(|sha| {
        if proofs.iter().any(|p| &p.0 == sha) {
            ProofStatus::Attached
        } else {
            ProofStatus::Pending
        }
    });
    Ok(DeliveryView {
        delivery_id: id,
        order_id: d.0,
        status: DispatchStatus::parse(&d.1).ok_or_else(|| {
            Error::unexpected(anyhow::anyhow!("unknown delivery status {:?}", d.1))
        })?,
        driver_id: holder,
        // A driver who no longer holds the delivery sees its own log, not the next driver's
        // progress.
        steps: if only.is_some() && holder.is_none() {
            DeliverySteps::default()
        } else {
            DeliverySteps {
                assigned_at: d.3,
                arrived_at_store_at: d.4,
                picked_up_at: d.5,
                arrived_at_customer_at: d.6,
                finished_at: d.7,
                finished_recorded_at: d.8,
            }
        },
        failure: failure_of(d.9.as_deref(), d.10.as_deref()),
        proof_sha256,
        proof,
        proofs: proofs
            .into_iter()
            .map(|(sha256, content_type, size, at)| DeliveryProofView {
                sha256,
                content_type,
                byte_size: u32::try_from(size).unwrap_or(0),
                uploaded_at: Some(at),
            })
            .collect(),
        trip_metres: d.12.and_then(|m| u32::try_from(m).ok()),
        cash,
        earnings,
        events: events
            .into_iter()
            .map(|e| DeliveryEventView {
                command: e.0,
                from_status: e.1,
                to_status: e.2,
                outcome: StepOutcome::parse(&e.3).unwrap_or(StepOutcome::Applied),
                filled_in: e.4,
                by: e.5,
                driver_id: e.6,
                at: e.7,
                recorded_at: e.8,
                position: match (e.9, e.10) {
                    (Some(lat), Some(lon)) => Coordinates::parse(lat, lon).ok(),
                    _ => None,
                },
            })
            .collect(),
        outcome: None,
    })
}

/// The business of a delivery the signed-in driver holds or worked on (its own log rows), in
/// the driver's transaction; `None` otherwise.
///
/// # Errors
/// Database errors.
pub async fn driver_business(tx: &mut Tx, driver: UserId, id: Uuid) -> Result<Option<BusinessId>> {
    let business: Option<Uuid> = sqlx::query_scalar(
        "SELECT d.business_id FROM deliveries d WHERE d.id = $1 AND (d.driver_id = $2 OR EXISTS ( \
            SELECT 1 FROM delivery_events e WHERE e.business_id = d.business_id \
               AND e.delivery_id = d.id AND e.driver_id = $2))",
    )
    .bind(id)
    .bind(driver.0)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(business.map(BusinessId))
}

/// Judges a proof photo's type from its bytes: JPEG, PNG or WebP.
///
/// # Errors
/// `unsupported_image_type` for anything else.
pub fn sniff_photo(bytes: &[u8]) -> Result<&'static str> {
    match image::guess_format(bytes) {
        Ok(image::ImageFormat::Jpeg) => Ok("image/jpeg"),
        Ok(image::ImageFormat::Png) => Ok("image/png"),
        Ok(image::ImageFormat::WebP) => Ok("image/webp"),
        _ => Err(Error::new(
            ErrorCode::UnsupportedImageType,
            "the photo is not a JPEG, PNG or WebP image",
        )),
    }
}

/// Checks, in the driver's transaction, that it holds delivery `id` and that the delivery is
/// not finished (locking it); returns the delivery's business.
///
/// # Errors
/// `not_found`; `conflict` for a finished delivery; database errors.
pub async fn lock_for_proof(tx: &mut Tx, driver: UserId, id: Uuid) -> Result<BusinessId> {
    let held = lock_held(tx, driver, id).await?;
    if held.status.is_terminal() {
        return Err(Error::new(
            ErrorCode::Conflict,
            format!("this delivery is {}; it takes no more photos", held.status),
        ));
    }
    Ok(held.business)
}

/// Checks, in the driver's transaction, that a completed upload of the photo `sha256` may
/// become a proof of delivery `id`: the driver holds the delivery, or delivered it naming this
/// very photo (the report went ahead of its upload, and the photo arrives late). Returns the
/// delivery's business.
///
/// # Errors
/// `not_found` for a delivery the driver never held (or held no more); `conflict` for a
/// finished delivery that does not wait for this photo; database errors.
pub async fn proof_target(
    tx: &mut Tx,
    driver: UserId,
    id: Uuid,
    sha256: &str,
) -> Result<BusinessId> {
    // A delivery released back to `pending` has no driver, so `driver_id` is this driver's
    // exactly while it holds the delivery or once it finished it.
    let row: Option<(Uuid, String, Option<String>)> = sqlx::query_as(
        "SELECT business_id, status, proof_sha256 FROM deliveries WHERE id = $1 AND driver_id = $2",
    )
    .bind(id)
    .bind(driver.0)
    .fetch_optional(&mut **tx)
    .await?;
    let (business, status, expected) = row.ok_or_else(|| Error::not_found("delivery"))?;
    if HELD.contains(&status.as_str()) || expected.as_deref() == Some(sha256) {
        Ok(BusinessId(business))
    } else {
        Err(Error::new(
            ErrorCode::Conflict,
            format!("this delivery is {status}; it takes no more photos"),
        ))
    }
}

/// Records a proof photo of delivery `id` (uploaded by `driver`, in its transaction after
/// [`lock_for_proof`] or [`proof_target`]); the same photo twice is one row.
///
/// # Errors
/// Database errors.
pub async fn insert_proof(
    tx: &mut Tx,
    business: BusinessId,
    id: Uuid,
    driver: UserId,
    proof: &DeliveryProofView,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO delivery_proofs (business_id, delivery_id, sha256, content_type, byte_size, uploaded_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (business_id, delivery_id, sha256) DO NOTHING",
    )
    .bind(business.0)
    .bind(id)
    .bind(&proof.sha256)
    .bind(&proof.content_type)
    .bind(i32::try_from(proof.byte_size).unwrap_or(i32::MAX))
    .bind(driver.0)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The tracking events of an order's delivery steps for its tracking page, oldest first, as the
/// caller's principal may see them; positions only `with_positions` (while a driver holds the
/// delivery).
///
/// # Errors
/// Database errors.
pub async fn tracking_events(
    tx: &mut Tx,
    business: BusinessId,
    order: Uuid,
    with_positions: bool,
) -> Result<Vec<TrackingEventView>> {
    let rows: Vec<TrackingRow> = sqlx::query_as(
        "SELECT kind, at, latitude, longitude FROM order_tracking_events \
          WHERE business_id = $1 AND order_id = $2 AND details ? 'delivery_id' ORDER BY at, id",
    )
    .bind(business.0)
    .bind(order)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(kind, at, lat, lon)| TrackingEventView {
            kind,
            at,
            position: match (with_positions, lat, lon) {
                (true, Some(lat), Some(lon)) => Coordinates::parse(lat, lon).ok(),
                _ => None,
            },
        })
        .collect())
}
