//! `POST /api/v1/sync/push`: a client's queued mutations, applied once each, in sequence order.
//!
//! A client id belongs to the principal that first pushed with it (`sync_clients.principal`,
//! row level security shows a principal only its own clients). Each mutation runs in its own
//! transaction that first locks the client's row (so two pushes of the same batch apply each
//! mutation once: the second waits, then sees a replay), checks the sequence number
//! ([`check_seq`]), applies the mutation inside a savepoint through the same server code as the
//! matching endpoint, and stores the result with `last_seq` in that same transaction: a crash
//! never keeps the effects without the result or the result without the effects. A refusal
//! (rules, permissions, bad arguments, an unknown `name@version`) rolls the savepoint back and
//! is stored as `rejected`, consuming the sequence number, so it never blocks the queue. An
//! unexpected failure (database, `internal`/`unavailable`) stores nothing and fails the push:
//! the client retries the same mutation. A gap ends the push with the results before it.

use chrono::{DateTime, Utc};
use fleetfront_domain::api::delivery::DeliveryStatusUpdateRequest;
use fleetfront_domain::api::sync::{
    Mutation, MutationResult, MutationStatus, PushRequest, PushResponse,
};
use fleetfront_domain::auth::Claims;
use fleetfront_domain::order::{Effect, OrderEvent, Party};
use fleetfront_domain::permission::{AccountKind, Actor, Permission, Resource};
use fleetfront_domain::sync::{check_seq, SeqCheck};
use fleetfront_domain::{BusinessId, ErrorCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::api::{authorize, staff_business};
use crate::app::App;
use crate::audit::{self, Event, Who};
use crate::context::Ctx;
use crate::db::{set_principal, Tx};
use crate::error::{Error, Result};
use crate::{delivery, orders};

/// The mutations this server applies, as `name@version`.
pub const KNOWN: [&str; 6] = [
    "order.accept@1",
    "order.mark_ready@1",
    "order.cancel@1",
    "delivery.step@1",
    "offer.accept@1",
    "offer.decline@1",
];

/// The rejection code of a `name@version` this server does not know (an app newer than the
/// server, or a version retired after its window).
pub const UNKNOWN_MUTATION: &str = "unknown_mutation";

/// The most mutations in one push.
pub const MAX_PUSH: usize = 500;

/// Checks a push's shape: 1–[`MAX_PUSH`] mutations with consecutive sequence numbers from 1 up.
///
/// # Errors
/// `validation_failed` naming `mutations`.
pub fn check_batch(req: &PushRequest) -> Result<()> {
    if req.mutations.is_empty() || req.mutations.len() > MAX_PUSH {
        return Err(Error::field(
            "mutations",
            "out_of_range",
            format!("send 1 to {MAX_PUSH} mutations"),
        ));
    }
    let first = req.mutations[0].seq;
    for (i, m) in req.mutations.iter().enumerate() {
        if m.seq == 0 || Some(m.seq) != first.checked_add(i as u64) {
            return Err(Error::field(
                "mutations",
                "out_of_order",
                "sequence numbers start at 1 and follow each other without gaps",
            ));
        }
        if m.name.is_empty() || m.name.len() > 100 {
            return Err(Error::field(
                "mutations",
                "invalid_name",
                "a mutation's name is name@version, at most 100 characters",
            ));
        }
    }
    if i64::try_from(first + req.mutations.len() as u64).is_err() {
        return Err(Error::field(
            "mutations",
            "out_of_range",
            "sequence number too large",
        ));
    }
    Ok(())
}

/// Applies a push (see the module's description).
///
/// # Errors
/// `conflict` for a client id of another principal or a mutation id reused at another
/// sequence number; database errors (nothing of the failing mutation is stored).
pub async fn push(
    app: &App,
    ctx: &Ctx,
    claims: &Claims,
    req: &PushRequest,
) -> Result<PushResponse> {
    let (mut tx, actor) = app.db.begin_as(claims).await?;
    sqlx::query(
        "INSERT INTO sync_clients (client_id, principal) VALUES ($1, app_sync_principal()) \
         ON CONFLICT (client_id) DO NOTHING",
    )
    .bind(req.client_id)
    .execute(&mut *tx)
    .await?;
    let mine: Option<i64> =
        sqlx::query_scalar("SELECT last_seq FROM sync_clients WHERE client_id = $1")
            .bind(req.client_id)
            .fetch_optional(&mut *tx)
            .await?;
    if mine.is_none() {
        return Err(Error::new(
            ErrorCode::Conflict,
            "this client id belongs to another account; make a new one",
        ));
    }
    tx.commit().await?;
    let mut results = Vec::with_capacity(req.mutations.len());
    for m in &req.mutations {
        match one(app, ctx, claims, &actor, req.client_id, m).await? {
            Some(result) => results.push(result),
            None => break,
        }
    }
    let (mut tx, _) = app.db.begin_as(claims).await?;
    let last: i64 = sqlx::query_scalar("SELECT last_seq FROM sync_clients WHERE client_id = $1")
        .bind(req.client_id)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(PushResponse {
        results,
        last_seq: u64::try_from(last).unwrap_or(0),
    })
}

type StoredRow = (
    i64,
    Uuid,
    String,
    Option<String>,
    Option<String>,
    Option<Value>,
);

fn stored(row: StoredRow) -> MutationResult {
    let (seq, id, status, code, message, output) = row;
    MutationResult {
        seq: u64::try_from(seq).unwrap_or(0),
        id,
        status: if status == "applied" {
            MutationStatus::Applied
        } else {
            MutationStatus::Rejected
        },
        code,
        message,
        output,
    }
}

/// Work to do once a mutation's transaction has committed.
enum After {
    Nothing,
    Order {
        business: BusinessId,
        id: Uuid,
        dispatch: bool,
    },
    Delivery(Uuid, Box<delivery::Reported>),
    /// A declined offer: offer the delivery to the next driver.
    NextOffer(BusinessId, Uuid),
}

/// One mutation in its own transaction; `None` at a gap.
async fn one(
    app: &App,
    ctx: &Ctx,
    claims: &Claims,
    actor: &Actor,
    client: Uuid,
    m: &Mutation,
) -> Result<Option<MutationResult>> {
    let (mut tx, _) = app.db.begin_as(claims).await?;
    // The client's row lock orders concurrent pushes of one client.
    let last: i64 =
        sqlx::query_scalar("SELECT last_seq FROM sync_clients WHERE client_id = $1 FOR UPDATE")
            .bind(client)
            .fetch_one(&mut *tx)
            .await?;
    let seq = i64::try_from(m.seq)
        .map_err(|_| Error::field("mutations", "out_of_range", "sequence number too large"))?;
    match check_seq(u64::try_from(last).unwrap_or(0), m.seq) {
        SeqCheck::Gap { .. } => {
            tx.rollback().await?;
            return Ok(None);
        }
        SeqCheck::Replay => {
            let row: Option<StoredRow> = sqlx::query_as(
                "SELECT seq, id, status, code, message, output FROM sync_mutations \
                  WHERE client_id = $1 AND seq = $2",
            )
            .bind(client)
            .bind(seq)
            .fetch_optional(&mut *tx)
            .await?;
            tx.rollback().await?;
            return row.map(|r| Some(stored(r))).ok_or_else(|| {
                Error::new(
                    ErrorCode::Conflict,
                    "this mutation's result is no longer kept",
                )
            });
        }
        SeqCheck::Apply => {}
    }
    let reused: Option<i64> =
        sqlx::query_scalar("SELECT seq FROM sync_mutations WHERE client_id = $1 AND id = $2")
            .bind(client)
            .bind(m.id)
            .fetch_optional(&mut *tx)
            .await?;
    if reused.is_some() {
        return Err(Error::new(
            ErrorCode::Conflict,
            format!(
                "mutation id {} was already used with another sequence number",
                m.id
            ),
        ));
    }
    let now = app.clock.now();
    sqlx::query("SAVEPOINT mutation").execute(&mut *tx).await?;
    let outcome = apply(&mut tx, ctx, claims, actor, m, now).await;
    let (result, after) = match outcome {
        Ok((output, after)) => {
            sqlx::query("RELEASE SAVEPOINT mutation")
                .execute(&mut *tx)
                .await?;
            // The step may have switched the transaction to the order system's principal.
            set_principal(
                &mut tx,
                claims.kind.as_str(),
                (claims.kind != AccountKind::Customer).then_some(claims.sub),
                (claims.kind == AccountKind::Customer).then_some(claims.sub),
                claims.business_id.map(|b| b.0),
            )
            .await?;
            let result = MutationResult {
                seq: m.seq,
                id: m.id,
                status: MutationStatus::Applied,
                code: None,
                message: None,
                output: Some(output),
            };
            (result, after)
        }
        Err(e) if !matches!(e.code(), ErrorCode::Internal | ErrorCode::Unavailable) => {
            sqlx::query("ROLLBACK TO SAVEPOINT mutation")
                .execute(&mut *tx)
                .await?;
            let code = if KNOWN.contains(&m.name.as_str()) {
                e.code().as_str()
            } else {
                UNKNOWN_MUTATION
            };
            let result = MutationResult {
                seq: m.seq,
                id: m.id,
                status: MutationStatus::Rejected,
                code: Some(code.to_owned()),
                message: Some(e.detail().to_owned()),
                output: None,
            };
            (result, After::Nothing)
        }
        Err(e) => return Err(e),
    };
    sqlx::query(
        "INSERT INTO sync_mutations (client_id, seq, id, name, status, code, message, output, action_time, applied_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(client)
    .bind(seq)
    .bind(m.id)
    .bind(&m.name)
    .bind(match result.status {
        MutationStatus::Applied => "applied",
        MutationStatus::Rejected => "rejected",
    })
    .bind(&result.code)
    .bind(&result.message)
    .bind(&result.output)
    .bind(m.action_time)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE sync_clients SET last_seq = $2 WHERE client_id = $1")
        .bind(client)
        .bind(seq)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    match after {
        After::Nothing => {}
        After::Order {
            business,
            id,
            dispatch,
        } => {
            orders::settle(app, business, id).await;
            if dispatch {
                crate::dispatch::start(app, business, id).await;
            }
        }
        After::Delivery(id, reported) => delivery::after_report(app, id, &reported).await,
        After::NextOffer(business, delivery) => {
            crate::dispatch::advance(app, business, delivery).await;
        }
    }
    Ok(Some(result))
}

fn bad_args(e: serde_json::Error) -> Error {
    Error::field("args", "invalid", e.to_string())
}

/// Splits `{"<id_field>": uuid, …rest}` into the id and the rest.
fn take_id(args: &Value, id_field: &str) -> Result<(Uuid, serde_json::Map<String, Value>)> {
    let mut rest = args
        .as_object()
        .cloned()
        .ok_or_else(|| Error::field("args", "invalid", "args is an object"))?;
    let id = rest
        .remove(id_field)
        .ok_or_else(|| Error::field(id_field, "required", format!("{id_field} is required")))?;
    let id: Uuid = serde_json::from_value(id).map_err(bad_args)?;
    Ok((id, rest))
}

/// Applies one mutation in `tx` (inside its savepoint): its output and the work after commit.
async fn apply(
    tx: &mut Tx,
    ctx: &Ctx,
    claims: &Claims,
    actor: &Actor,
    m: &Mutation,
    now: DateTime<Utc>,
) -> Result<(Value, After)> {
    match m.name.as_str() {
        "order.accept@1" => order_event(tx, ctx, actor, &m.args, "accept", now).await,
        "order.mark_ready@1" => order_event(tx, ctx, actor, &m.args, "mark_ready", now).await,
        "order.cancel@1" => order_event(tx, ctx, actor, &m.args, "cancel", now).await,
        "delivery.step@1" => {
            if claims.kind != AccountKind::Driver {
                return Err(Error::forbidden("delivery steps are for drivers"));
            }
            let (id, rest) = take_id(&m.args, "delivery_id")?;
            let req: DeliveryStatusUpdateRequest =
                serde_json::from_value(Value::Object(rest)).map_err(bad_args)?;
            let reported = delivery::report_in(tx, ctx, claims, id, &req, now).await?;
            let output = serde_json::to_value(&reported.view).map_err(Error::unexpected)?;
            Ok((output, After::Delivery(id, Box::new(reported))))
        }
        "offer.accept@1" | "offer.decline@1" => {
            if claims.kind != AccountKind::Driver {
                return Err(Error::forbidden("offers are answered by drivers"));
            }
            let (id, rest) = take_id(&m.args, "offer_id")?;
            if !rest.is_empty() {
                return Err(Error::field("args", "invalid", "only offer_id is expected"));
            }
            let driver = fleetfront_domain::UserId(claims.sub);
            if m.name == "offer.accept@1" {
                // The same rules as `POST /api/v1/driver/assignments/{id}/accept`: only an open
                // offer strictly before its expiry (the server's clock, not the device's).
                let offer =
                    crate::api::dispatch::take_offer(tx, ctx, claims, driver, id, now, None)
                        .await?;
                Ok((
                    json!({"delivery_id": offer.1, "status": "accepted"}),
                    After::Nothing,
                ))
            } else {
                let offer =
                    crate::api::dispatch::refuse_offer(tx, ctx, claims, driver, id, now).await?;
                Ok((
                    json!({"delivery_id": offer.1, "status": "declined"}),
                    After::NextOffer(BusinessId(offer.0), offer.1),
                ))
            }
        }
        _ => Err(Error::new(
            ErrorCode::ValidationFailed,
            format!("unknown mutation {:?}", m.name),
        )),
    }
}

/// A staff member's order transition, as `PATCH /api/v1/business/orders/{id}` does it.
async fn order_event(
    tx: &mut Tx,
    ctx: &Ctx,
    actor: &Actor,
    args: &Value,
    kind: &str,
    now: DateTime<Utc>,
) -> Result<(Value, After)> {
    let business = staff_business(actor)?;
    authorize(
        actor,
        Permission::OrdersManage,
        Resource::Business(business),
    )?;
    let (id, mut rest) = take_id(args, "order_id")?;
    rest.insert("type".to_owned(), Value::String(kind.to_owned()));
    let event: OrderEvent = serde_json::from_value(Value::Object(rest)).map_err(bad_args)?;
    let user = match actor {
        Actor::Staff { user, .. } => Some(user.0),
        _ => None,
    };
    let (t, row) = orders::transition(tx, business, id, event, Party::Staff, user, now).await?;
    audit::record(
        tx,
        ctx,
        Who::from(actor),
        Some(business),
        Event::ok("order.update", "order", id).with_details(json!({
            "event": kind, "outcome": t.outcome.as_str(), "status": t.status.as_str(),
            "via": "sync",
        })),
    )
    .await?;
    orders::enqueue_payment_effects(tx, &row, &t.effects, None).await?;
    Ok((
        json!({"status": t.status.as_str(), "outcome": t.outcome.as_str()}),
        After::Order {
            business,
            id,
            dispatch: t.effects.contains(&Effect::StartDispatch),
        },
    ))
}
