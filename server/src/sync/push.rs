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
//!
//! The mutations and their args are [`fleetfront_domain::api::mutations`]'s (args refuse
//! unknown fields, as `validation_failed`). Ids a client makes for what a mutation creates
//! are that creation's idempotency key beyond the sequence number: a second `order.create@1`
//! or `product.create@1` with the same id answers what is there. One mutation leaves the
//! transaction: `order.place@1` is the customer's checkout, which authorizes the payment with
//! no transaction open and writes the order in its own statement, so it commits before the
//! mutation's result; its idempotency key (the args' `order_id`) makes the retry after a
//! crash between the two answer the same order without charging again.

use chrono::{DateTime, Utc};
use fleetfront_domain::api::mutations::{
    self, CartAddArgs, DeliveryStepArgs, OfferArgs, OfferOutput, OrderAcceptArgs, OrderCancelArgs,
    OrderCreateArgs, OrderMarkReadyArgs, OrderPlaceArgs, OrderStepOutput, ProductCreateArgs,
    ProductUpdateArgs,
};
use fleetfront_domain::api::sync::{
    Mutation, MutationResult, MutationStatus, PushRequest, PushResponse,
};
use fleetfront_domain::auth::Claims;
use fleetfront_domain::order::{Effect, OrderEvent, Party};
use fleetfront_domain::permission::{AccountKind, Actor, Permission, Resource};
use fleetfront_domain::sync::{check_seq, SeqCheck};
use fleetfront_domain::{BusinessId, ErrorCode};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::api::{authorize, staff_business};
use crate::app::App;
use crate::audit::{self, Event, Who};
use crate::context::Ctx;
use crate::db::{set_principal, Tx};
use crate::error::{Error, Result};
use crate::{delivery, orders};

/// The mutations this server applies, as `name@version` (their args are the types of
/// [`fleetfront_domain::api::mutations`]).
pub const KNOWN: &[&str] = &[
    mutations::ORDER_ACCEPT,
    mutations::ORDER_MARK_READY,
    mutations::ORDER_CANCEL,
    mutations::DELIVERY_STEP,
    mutations::OFFER_ACCEPT,
    mutations::OFFER_DECLINE,
    mutations::ORDER_CREATE,
    mutations::CART_ADD,
    mutations::ORDER_PLACE,
    mutations::PRODUCT_CREATE,
    mutations::PRODUCT_UPDATE,
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
    let mut rest = &req.mutations[..];
    while !rest.is_empty() {
        let done = chunk(app, ctx, claims, &actor, req.client_id, rest, &mut results).await?;
        if done == 0 {
            break;
        }
        rest = &rest[done..];
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
        /// The transition queued payment jobs: perform them now.
        settle: bool,
        dispatch: bool,
    },
    Delivery(Uuid, Box<delivery::Reported>),
    /// A declined offer: offer the delivery to the next driver.
    NextOffer(BusinessId, Uuid),
}

/// The most mutations one transaction applies, and how long it goes on taking more: a chunk
/// commits once (the commit is most of a small mutation's cost) while its locks are held for
/// at most about this long.
const CHUNK_MUTATIONS: usize = 50;
const CHUNK_TIME: std::time::Duration = std::time::Duration::from_millis(20);

/// Whether a mutation runs in a transaction of its own: `order.place@1` runs checkout, which
/// opens its own transactions and must not wait on locks an earlier mutation of the same
/// chunk holds.
fn runs_alone(m: &Mutation) -> bool {
    m.name == mutations::ORDER_PLACE
}

/// Applies the head of `mutations` in one transaction (one savepoint per mutation, each
/// result stored with its effects, `last_seq` once) and does their work after the commit;
/// pushes their results and returns how many were decided (0 at a gap). A mutation whose
/// application fails unexpectedly ends the chunk: what came before it commits, then the error
/// fails the push and the client retries from that mutation.
async fn chunk(
    app: &App,
    ctx: &Ctx,
    claims: &Claims,
    actor: &Actor,
    client: Uuid,
    mutations: &[Mutation],
    results: &mut Vec<MutationResult>,
) -> Result<usize> {
    let (mut tx, _) = app.db.begin_as(claims).await?;
    // The client's row lock orders concurrent pushes of one client.
    let mut last: i64 =
        sqlx::query_scalar("SELECT last_seq FROM sync_clients WHERE client_id = $1 FOR UPDATE")
            .bind(client)
            .fetch_one(&mut *tx)
            .await?;
    let first_last = last;
    lock_orders(&mut tx, claims, mutations).await?;
    let started = std::time::Instant::now();
    let mut afters = Vec::new();
    let mut decided = 0;
    let mut failure = None;
    for m in mutations {
        if decided > 0
            && (decided == CHUNK_MUTATIONS || started.elapsed() >= CHUNK_TIME || runs_alone(m))
        {
            break;
        }
        match one(app, &mut tx, ctx, claims, actor, client, m, last).await {
            Ok(None) => break,
            Ok(Some((result, after, applied))) => {
                if applied {
                    last = i64::try_from(m.seq).unwrap_or(last);
                }
                results.push(result);
                afters.push(after);
                decided += 1;
                if runs_alone(m) {
                    break;
                }
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    if last != first_last {
        sqlx::query("UPDATE sync_clients SET last_seq = $2 WHERE client_id = $1")
            .bind(client)
            .bind(last)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    for after in afters {
        after.run(app).await;
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(decided),
    }
}

/// Locks the orders the staff's order mutations of a chunk name, in id order, before any of
/// them runs: two tills' chunks over the same orders then take their locks in one order (and
/// the business's bucket lock after all of them), so they wait for each other instead of
/// deadlocking.
async fn lock_orders(tx: &mut Tx, claims: &Claims, mutations: &[Mutation]) -> Result<()> {
    let Some(business) = claims
        .business_id
        .filter(|_| claims.kind == AccountKind::Staff)
    else {
        return Ok(());
    };
    let mut ids: Vec<Uuid> = mutations
        .iter()
        .take(CHUNK_MUTATIONS)
        .filter(|m| {
            [
                mutations::ORDER_ACCEPT,
                mutations::ORDER_MARK_READY,
                mutations::ORDER_CANCEL,
            ]
            .contains(&m.name.as_str())
        })
        .filter_map(|m| m.args.get("order_id")?.as_str()?.parse().ok())
        .collect();
    if ids.len() < 2 {
        return Ok(());
    }
    ids.sort_unstable();
    ids.dedup();
    sqlx::query(
        "SELECT 1 FROM orders WHERE business_id = $1 AND id = ANY ($2) ORDER BY id FOR UPDATE",
    )
    .bind(business.0)
    .bind(&ids)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// One mutation inside the chunk's transaction, after the client's last sequence number
/// `last`: its result, the work after the commit, and whether it consumed its sequence
/// number (a replay does not); `None` at a gap. An unexpected failure leaves the transaction
/// as it was before the mutation.
#[allow(clippy::too_many_arguments)] // the chunk's context, passed down once per mutation
async fn one(
    app: &App,
    tx: &mut Tx,
    ctx: &Ctx,
    claims: &Claims,
    actor: &Actor,
    client: Uuid,
    m: &Mutation,
    last: i64,
) -> Result<Option<(MutationResult, After, bool)>> {
    let seq = i64::try_from(m.seq)
        .map_err(|_| Error::field("mutations", "out_of_range", "sequence number too large"))?;
    match check_seq(u64::try_from(last).unwrap_or(0), m.seq) {
        SeqCheck::Gap { .. } => return Ok(None),
        SeqCheck::Replay => {
            let row: Option<StoredRow> = sqlx::query_as(
                "SELECT seq, id, status, code, message, output FROM sync_mutations \
                  WHERE client_id = $1 AND seq = $2",
            )
            .bind(client)
            .bind(seq)
            .fetch_optional(&mut **tx)
            .await?;
            return row
                .map(|r| Some((stored(r), After::Nothing, false)))
                .ok_or_else(|| {
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
            .fetch_optional(&mut **tx)
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
    sqlx::query("SAVEPOINT mutation").execute(&mut **tx).await?;
    let outcome = apply(app, tx, ctx, claims, actor, m, now).await;
    let (result, after) = match outcome {
        Ok((output, after)) => {
            sqlx::query("RELEASE SAVEPOINT mutation")
                .execute(&mut **tx)
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
        Err(e) => {
            sqlx::query("ROLLBACK TO SAVEPOINT mutation")
                .execute(&mut **tx)
                .await?;
            if matches!(e.code(), ErrorCode::Internal | ErrorCode::Unavailable) {
                reset_principal(tx, claims).await?;
                return Err(e);
            }
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
    };
    // The step may have switched the transaction to the order system's principal.
    reset_principal(tx, claims).await?;
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
    .execute(&mut **tx)
    .await?;
    Ok(Some((result, after, true)))
}

/// Back to the pushing principal (a delivery step switches to the order system's).
async fn reset_principal(tx: &mut Tx, claims: &Claims) -> Result<()> {
    set_principal(
        tx,
        claims.kind.as_str(),
        (claims.kind != AccountKind::Customer).then_some(claims.sub),
        (claims.kind == AccountKind::Customer).then_some(claims.sub),
        claims.business_id.map(|b| b.0),
    )
    .await
}

impl After {
    /// The work after the commit.
    async fn run(self, app: &App) {
        match self {
            After::Nothing => {}
            After::Order {
                business,
                id,
                settle,
                dispatch,
            } => {
                if settle {
                    orders::settle(app, business, id).await;
                }
                if dispatch {
                    crate::dispatch::start(app, business, id).await;
                }
            }
            After::Delivery(id, reported) => delivery::after_report(app, id, &reported).await,
            After::NextOffer(business, delivery) => {
                crate::dispatch::advance(app, business, delivery).await;
            }
        }
    }
}

fn bad_args(e: serde_json::Error) -> Error {
    Error::field("args", "invalid", e.to_string())
}

/// A mutation's typed args; unknown fields are refused.
fn args<T: DeserializeOwned>(m: &Mutation) -> Result<T> {
    serde_json::from_value(m.args.clone()).map_err(bad_args)
}

fn to_output(value: &impl serde::Serialize) -> Result<Value> {
    serde_json::to_value(value).map_err(Error::unexpected)
}

/// Applies one mutation in `tx` (inside its savepoint): its output and the work after commit.
async fn apply(
    app: &App,
    tx: &mut Tx,
    ctx: &Ctx,
    claims: &Claims,
    actor: &Actor,
    m: &Mutation,
    now: DateTime<Utc>,
) -> Result<(Value, After)> {
    match m.name.as_str() {
        mutations::ORDER_ACCEPT => {
            let business = staff_with(actor, Permission::OrdersManage)?;
            let a: OrderAcceptArgs = args(m)?;
            order_event(tx, ctx, actor, business, a.order_id, a.event(), now).await
        }
        mutations::ORDER_MARK_READY => {
            let business = staff_with(actor, Permission::OrdersManage)?;
            let a: OrderMarkReadyArgs = args(m)?;
            order_event(tx, ctx, actor, business, a.order_id, a.event(), now).await
        }
        mutations::ORDER_CANCEL => {
            let business = staff_with(actor, Permission::OrdersManage)?;
            let a: OrderCancelArgs = args(m)?;
            order_event(tx, ctx, actor, business, a.order_id, a.event(), now).await
        }
        mutations::DELIVERY_STEP => {
            if claims.kind != AccountKind::Driver {
                return Err(Error::forbidden("delivery steps are for drivers"));
            }
            let a: DeliveryStepArgs = args(m)?;
            let mut request = a.request();
            // A step queued offline happened at its action time: that is the time reports
            // use (the server's own clock stays the order of events). A device clock ahead of
            // the server's is taken as now.
            if request.recorded_at.is_none() {
                request.recorded_at = Some(m.action_time.min(now));
            }
            let reported =
                delivery::report_in(tx, ctx, claims, a.delivery_id, &request, now).await?;
            let output = to_output(&reported.view)?;
            Ok((output, After::Delivery(a.delivery_id, Box::new(reported))))
        }
        mutations::OFFER_ACCEPT | mutations::OFFER_DECLINE => {
            if claims.kind != AccountKind::Driver {
                return Err(Error::forbidden("offers are answered by drivers"));
            }
            let OfferArgs { offer_id: id } = args(m)?;
            let driver = fleetfront_domain::UserId(claims.sub);
            if m.name == mutations::OFFER_ACCEPT {
                // The same rules as `POST /api/v1/driver/assignments/{id}/accept`: only an open
                // offer strictly before its expiry (the server's clock, not the device's).
                let offer =
                    crate::api::dispatch::take_offer(tx, ctx, claims, driver, id, now, None)
                        .await?;
                let output = OfferOutput {
                    delivery_id: offer.1,
                    status: "accepted".to_owned(),
                };
                Ok((to_output(&output)?, After::Nothing))
            } else {
                let offer =
                    crate::api::dispatch::refuse_offer(tx, ctx, claims, driver, id, now).await?;
                let output = OfferOutput {
                    delivery_id: offer.1,
                    status: "declined".to_owned(),
                };
                Ok((
                    to_output(&output)?,
                    After::NextOffer(BusinessId(offer.0), offer.1),
                ))
            }
        }
        mutations::ORDER_CREATE => sale(tx, ctx, actor, m, now).await,
        mutations::CART_ADD => {
            let a: CartAddArgs = args(m)?;
            let cart =
                crate::api::cart::set_customer_item(tx, ctx, actor, &a.request(), now).await?;
            Ok((to_output(&cart)?, After::Nothing))
        }
        mutations::ORDER_PLACE => place(app, ctx, claims, m).await,
        mutations::PRODUCT_CREATE => {
            staff_with(actor, Permission::CatalogManage)?;
            let a: ProductCreateArgs = args(m)?;
            // The client's id is the creation's idempotency key: a product already there is
            // answered as it is.
            let view = crate::api::catalog::create_product_in(
                tx,
                ctx,
                actor,
                a.product_id.0,
                &a.request(),
            )
            .await?;
            Ok((to_output(&view)?, After::Nothing))
        }
        mutations::PRODUCT_UPDATE => {
            staff_with(actor, Permission::CatalogManage)?;
            let a: ProductUpdateArgs = args(m)?;
            let view = crate::api::catalog::update_product_in(
                tx,
                ctx,
                actor,
                a.product_id.0,
                &a.request(),
            )
            .await?;
            Ok((to_output(&view)?, After::Nothing))
        }
        _ => Err(Error::new(
            ErrorCode::ValidationFailed,
            format!("unknown mutation {:?}", m.name),
        )),
    }
}

/// The business of a staff actor allowed `permission` in it.
fn staff_with(actor: &Actor, permission: Permission) -> Result<BusinessId> {
    let business = staff_business(actor)?;
    authorize(actor, permission, Resource::Business(business))?;
    Ok(business)
}

/// A staff member's order transition, as `PATCH /api/v1/business/orders/{id}` does it.
async fn order_event(
    tx: &mut Tx,
    ctx: &Ctx,
    actor: &Actor,
    business: BusinessId,
    id: Uuid,
    event: OrderEvent,
    now: DateTime<Utc>,
) -> Result<(Value, After)> {
    let user = match actor {
        Actor::Staff { user, .. } => Some(user.0),
        _ => None,
    };
    let kind = event.kind();
    let (t, row) = orders::transition(tx, business, id, event, Party::Staff, user, now).await?;
    audit::record(
        tx,
        ctx,
        Who::from(actor),
        Some(business),
        Event::ok("order.update", "order", id).with_details(json!({
            "event": kind.as_str(), "outcome": t.outcome.as_str(), "status": t.status.as_str(),
            "via": "sync",
        })),
    )
    .await?;
    let settle = orders::enqueue_payment_effects(tx, &row, &t.effects, None).await?;
    let output = OrderStepOutput {
        status: t.status.as_str().to_owned(),
        outcome: t.outcome.as_str().to_owned(),
    };
    Ok((
        to_output(&output)?,
        After::Order {
            business,
            id,
            settle,
            dispatch: t.effects.contains(&Effect::StartDispatch),
        },
    ))
}

/// `order.create@1`: a sale at the till ([`orders::sell`]). The sale happened at the
/// mutation's action time (never later than the server's clock), which becomes the order's
/// `placed_at` and `accepted_at`.
async fn sale(
    tx: &mut Tx,
    ctx: &Ctx,
    actor: &Actor,
    m: &Mutation,
    now: DateTime<Utc>,
) -> Result<(Value, After)> {
    let business = staff_with(actor, Permission::OrdersManage)?;
    let Actor::Staff { user, .. } = actor else {
        return Err(Error::forbidden(
            "sales at the till are for a business's team",
        ));
    };
    let a: OrderCreateArgs = args(m)?;
    let sale = a.parse()?;
    let sold = orders::sell(tx, business, user.0, &sale, m.action_time.min(now)).await?;
    if sold.created {
        audit::record(
            tx,
            ctx,
            Who::from(actor),
            Some(business),
            Event::ok("order.create", "order", sale.order_id).with_details(json!({
                "via": "sync", "channel": "pos", "tender": sale.payment.as_str(),
                "total_minor": sold.view.total.minor,
                "customer_name": sale.customer_name.as_ref().map(|n| n.as_str()),
                "note": sale.note.as_ref().map(|n| n.as_str()),
            })),
        )
        .await?;
    }
    Ok((to_output(&sold.view)?, After::Nothing))
}

/// `order.place@1`: the customer's checkout, through [`orders::checkout`] exactly as
/// `POST /api/v1/orders` runs it, with `sync:order.place:<order_id>` as its idempotency key.
///
/// Checkout cannot run inside the mutation's transaction: it authorizes the payment with no
/// transaction open and writes the order in one statement of its own (see [`orders`]). So the
/// order commits before the mutation's result does. A crash between the two leaves the
/// mutation unanswered; the client pushes it again, and the checkout, finding the key's
/// stored response (same fingerprint: the same args), answers the same order without placing
/// or charging anything again. A different request under the same `order_id` is rejected as
/// `idempotency_key_reused`. A refusal (price changed, out of stock, store closed, payment
/// declined…) places nothing and is stored as rejected with the checkout's code.
async fn place(app: &App, ctx: &Ctx, claims: &Claims, m: &Mutation) -> Result<(Value, After)> {
    if claims.kind != AccountKind::Customer {
        return Err(Error::forbidden("orders are placed by a store's customers"));
    }
    let a: OrderPlaceArgs = args(m)?;
    let req = a.request();
    let key = format!("sync:order.place:{}", a.order_id);
    let fingerprint = orders::fingerprint("SYNC", mutations::ORDER_PLACE, &req);
    let shopper = orders::Shopper::Customer(std::sync::Arc::new(claims.clone()));
    let (_, body) = orders::checkout(app, ctx, &shopper, &key, &fingerprint, &req).await?;
    Ok((body, After::Nothing))
}
