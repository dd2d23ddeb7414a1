//! Offline-first sync endpoints: `GET /api/v1/sync/pull` (the principal's buckets, read in one
//! snapshot) and `POST /api/v1/sync/push` (a client's queued mutations, each applied once). The
//! SQL and the mutation log are in [`crate::sync`].

use axum::extract::{DefaultBodyLimit, State};
use axum::Json;
use fleetfront_domain::api::sync::{PullQuery, PullResponse, PushRequest, PushResponse};
use fleetfront_domain::api::Problem;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::App;
use crate::context::Ctx;
use crate::error::Result;
use crate::extract::{ApiJson, ApiQuery, Auth};
use crate::sync::{self, push, Pull};

/// Largest push body: 500 mutations of up to ~2 KB each (a delivery step with its evidence is
/// a few hundred bytes; a POS order with its lines more).
pub const PUSH_BODY_LIMIT: usize = 1024 * 1024;

pub(crate) fn routes(router: OpenApiRouter<App>) -> OpenApiRouter<App> {
    let push = OpenApiRouter::new()
        .routes(routes!(push_mutations))
        .layer(DefaultBodyLimit::max(PUSH_BODY_LIMIT));
    router.routes(routes!(pull)).merge(push)
}

/// Pulls what changed in the buckets the signed-in principal may read, after the client's
/// cursors (`bucket=version,…`; none for a fresh client). Staff read their business's catalog
/// (`cat:`) and operations (`biz:`), a customer its store's catalog and its own orders
/// (`cust:`), a driver its work (`drv:`). All buckets are read in one snapshot; rows come in
/// version order, at most `limit` over all buckets, with `more` when some bucket has more. A
/// bucket the client is up to date with is left out; a cursor for a bucket the principal may
/// not read is answered in `removed` (drop it), never with an error.
#[utoipa::path(get, path = "/api/v1/sync/pull", tag = "sync", security(("bearer" = [])),
    params(
        ("cursors" = Option<String>, Query, description = "bucket=version pairs separated by commas; none for a fresh client"),
        ("limit" = Option<u32>, Query, description = "The most rows over all buckets (1–5,000; 1,000 by default)")),
    responses((status = 200, body = PullResponse), (status = 401, body = Problem),
        (status = 422, body = Problem, description = "Bad cursors or limit")))]
async fn pull(
    State(app): State<App>,
    auth: Auth,
    ApiQuery(query): ApiQuery<PullQuery>,
) -> Result<Json<PullResponse>> {
    let req = Pull::parse(query.cursors.as_deref(), query.limit)?;
    let (mut tx, actor) = app.db.begin_snapshot_as(&auth.0).await?;
    let readable = fleetfront_domain::sync::readable_buckets(&actor);
    let answer = sync::pull(&mut tx, &readable, &req).await?;
    tx.commit().await?;
    Ok(Json(answer))
}

/// Pushes a client's queued mutations (1–500, consecutive sequence numbers). Each is applied
/// in its own transaction through the same rules as the matching endpoint, and its result is
/// stored in that transaction; a sequence number already seen answers the stored result
/// (nothing is applied twice). A rejected mutation (refused by the rules, bad arguments, an
/// unknown `name@version`) is stored as `rejected` with a code and a message and consumes its
/// sequence number. A gap (a sequence number above the next expected one) stops the push:
/// the answer lists the results before the gap, and `last_seq` tells the client where the
/// server is. A client id belongs to the account that first used it (another account: 409).
///
/// Mutations: `order.accept@1 {order_id, prep_time}`, `order.mark_ready@1 {order_id}`,
/// `order.cancel@1 {order_id, reason}` (staff with `orders.manage`), `delivery.step@1
/// {delivery_id, status, …}` (drivers; the fields of `PATCH
/// /api/v1/driver/deliveries/{id}/status`).
#[utoipa::path(post, path = "/api/v1/sync/push", tag = "sync", security(("bearer" = [])),
    request_body = PushRequest,
    responses((status = 200, body = PushResponse), (status = 401, body = Problem),
        (status = 409, body = Problem, description = "The client id belongs to another account"),
        (status = 422, body = Problem, description = "No mutations, more than 500, or sequence numbers out of order")))]
async fn push_mutations(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiJson(req): ApiJson<PushRequest>,
) -> Result<Json<PushResponse>> {
    push::check_batch(&req)?;
    Ok(Json(push::push(&app, &ctx, &auth.0, &req).await?))
}
