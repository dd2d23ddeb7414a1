//! Money endpoints of issue 4: a driver's earnings (`/api/v1/driver/earnings`), payouts (the
//! admin's run, list and PIN-elevated processing; a business's own list), the platform's fee
//! report, the driver performance report, and cash a driver hands back to a business. The SQL
//! and the processing steps live in [`crate::payouts`]; the sums in `fleetfront_domain::payout`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use fleetfront_domain::api::payout::{
    CashDepositRequest, CashDepositView, DriverEarningsQuery, DriverEarningsView,
    DriverPerformanceQuery, DriverPerformanceReport, PayoutAccountRequest, PayoutAccountView,
    PayoutListQuery, PayoutPage, PayoutPartyKind, PayoutRecord, PayoutRunRequest, PayoutRunView,
    PlatformFeesQuery, PlatformFeesView,
};
use fleetfront_domain::api::{FieldErrors, Problem};
use fleetfront_domain::permission::{
    can, Actor, Permission, PlatformPermission, Resource, SensitiveAction,
};
use fleetfront_domain::{BusinessId, ErrorCode};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::admin::begin_admin;
use super::business::begin_staff;
use super::staff_business;
use crate::app::App;
use crate::audit::{self, Event, Who};
use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::extract::{require_elevation, ApiJson, ApiPath, ApiQuery, Auth};
use crate::payouts::{self, Prepared, Scope};

pub(crate) fn routes(router: OpenApiRouter<App>) -> OpenApiRouter<App> {
    router
        .routes(routes!(driver_earnings))
        .routes(routes!(run_payouts))
        .routes(routes!(list_payouts))
        .routes(routes!(process_payout))
        .routes(routes!(business_payouts))
        .routes(routes!(platform_fees))
        .routes(routes!(driver_performance))
        .routes(routes!(cash_deposit))
        .routes(routes!(driver_payouts))
        .routes(routes!(business_payout_account))
        .routes(routes!(driver_payout_account))
}

/// Bad query values are a 400 with every field error (an unknown parameter stays a 422, as
/// everywhere).
fn bad_query(errors: FieldErrors) -> Error {
    Error::validation(errors).with_code(ErrorCode::MalformedRequest)
}

/// Running and processing payouts, and the accounts they go to.
const PAYOUTS: PlatformPermission = PlatformPermission::PayoutsManage;

fn admin_id(actor: &Actor) -> Result<Uuid> {
    match actor {
        Actor::Admin { user } => Ok(user.0),
        _ => Err(Error::forbidden("this endpoint is for platform admins")),
    }
}

/// The signed-in driver's earnings by local day or week (the driver's time zone): deliveries,
/// gross, tips, platform fees, net, pending and paid per period and in total, the cash the
/// driver holds per business, and the latest deliveries. `from` and `to` are local dates,
/// both inclusive, at most 366 days apart; bad values are a 400 with field errors.
#[utoipa::path(get, path = "/api/v1/driver/earnings", tag = "driver", security(("bearer" = [])),
    params(DriverEarningsQuery),
    responses((status = 200, body = DriverEarningsView), (status = 400, body = Problem),
        (status = 403, body = Problem), (status = 422, body = Problem, description = "an unknown query parameter")))]
async fn driver_earnings(
    State(app): State<App>,
    auth: Auth,
    ApiQuery(query): ApiQuery<DriverEarningsQuery>,
) -> Result<Json<DriverEarningsView>> {
    let (mut tx, actor) = app.db.begin_as(&auth.0).await?;
    let Actor::Driver { user } = actor else {
        return Err(Error::forbidden("this endpoint is for drivers"));
    };
    let (name, tz) = payouts::driver_zone(&mut tx, user.0).await?;
    let today = app.clock.now().with_timezone(&tz).date_naive();
    let range = query.parse(today).map_err(bad_query)?;
    let view = payouts::driver_earnings(&mut tx, user.0, (name, tz), range).await?;
    tx.commit().await?;
    Ok(Json(view))
}

/// Computes the pending payouts of every period (each party's local day or week) that ended
/// before `until` and before now and has unpaid items: one per business, driver and currency.
/// Running it again creates nothing new.
#[utoipa::path(post, path = "/api/v1/admin/payouts/run", tag = "admin", security(("bearer" = [])),
    request_body = PayoutRunRequest,
    responses((status = 200, body = PayoutRunView), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn run_payouts(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiJson(req): ApiJson<PayoutRunRequest>,
) -> Result<Json<PayoutRunView>> {
    let (mut tx, actor) = begin_admin(&app, &auth, PAYOUTS).await?;
    let ids = payouts::run(&mut tx, req.grouping, req.until, app.clock.now()).await?;
    let mut created = Vec::with_capacity(ids.len());
    for id in ids {
        created.push(payouts::find(&mut tx, id).await?);
    }
    let event = Event::ok("payout.run", "payout_run", req.until).with_details(
        serde_json::json!({"grouping": req.grouping, "until": req.until, "created": created.len()}),
    );
    audit::record(&mut tx, &ctx, Who::from(&actor), None, event).await?;
    for p in &created {
        if let Some(business) = p.business_id {
            let event = Event::ok("payout.create", "payout", p.id)
                .with_details(serde_json::json!({"key": p.key}));
            audit::record(
                &mut tx,
                &ctx,
                Who::from(&actor),
                Some(BusinessId(business)),
                event,
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok(Json(PayoutRunView { created }))
}

/// Every payout, newest period first: filter by `status` and `party`, page by `page`.
#[utoipa::path(get, path = "/api/v1/admin/payouts", tag = "admin", security(("bearer" = [])),
    params(PayoutListQuery),
    responses((status = 200, body = PayoutPage), (status = 400, body = Problem), (status = 403, body = Problem)))]
async fn list_payouts(
    State(app): State<App>,
    auth: Auth,
    ApiQuery(query): ApiQuery<PayoutListQuery>,
) -> Result<Json<PayoutPage>> {
    let filter = query.parse().map_err(bad_query)?;
    let (mut tx, _) = begin_admin(&app, &auth, PAYOUTS).await?;
    let (items, total) = payouts::page(&mut tx, &filter, Scope::All).await?;
    tx.commit().await?;
    Ok(Json(PayoutPage {
        items,
        page: filter.page,
        per_page: filter.per_page,
        total,
    }))
}

/// Processes a payout: a positive net is transferred to the party's connected account (the
/// transfer's idempotency key is the payout key), a negative one is carried over, zero is
/// settled as it is; a driver's cash is netted first. Needs a PIN-elevated token for action
/// `payout`. Processing again is safe: a paid payout is returned as it is, one being processed
/// is not transferred twice, a failed one is retried.
#[utoipa::path(post, path = "/api/v1/admin/payouts/{id}/process", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Payout id"),
        ("X-Fleetfront-Elevation" = String, Header, description = "A PIN-elevated token for action `payout`")),
    responses((status = 200, body = PayoutRecord, description = "the payout after processing: paid, carried_over, processing or failed with the reason"),
        (status = 403, body = Problem, description = "forbidden, elevation_required"), (status = 404, body = Problem),
        (status = 503, body = Problem, description = "no payout gateway is configured")))]
async fn process_payout(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    headers: HeaderMap,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<PayoutRecord>> {
    let (mut tx, actor) = begin_admin(&app, &auth, PAYOUTS).await?;
    require_elevation(&app, &headers, &auth, SensitiveAction::Payout)?;
    let admin = admin_id(&actor)?;
    let prepared = payouts::prepare(&mut tx, id, admin, app.clock.now()).await?;
    let gateway = payouts::gateway(&app);
    if gateway.is_none() && matches!(prepared, Prepared::Transfer(_)) {
        // Dropping the transaction rolls the payout back to where it was.
        return Err(Error::new(
            ErrorCode::Unavailable,
            "no payout gateway is configured",
        ));
    }
    let record = match &prepared {
        Prepared::Done(record) => (**record).clone(),
        Prepared::Transfer(_) => payouts::find(&mut tx, id).await?,
    };
    audit_payout(&mut tx, &ctx, &actor, "payout.process", &record).await?;
    tx.commit().await?;
    let (Prepared::Transfer(request), Some(gateway)) = (prepared, gateway) else {
        return Ok(Json(record));
    };
    // No transaction is open while the provider is called.
    let outcome = gateway.transfer(request).await;
    if let Err(e) = &outcome {
        tracing::warn!(payout = %id, error = %e, "payout transfer failed");
    }
    let (mut tx, actor) = begin_admin(&app, &auth, PAYOUTS).await?;
    let record = payouts::finish(&mut tx, id, &outcome, admin, app.clock.now()).await?;
    audit_payout(&mut tx, &ctx, &actor, "payout.transfer", &record).await?;
    tx.commit().await?;
    Ok(Json(record))
}

async fn audit_payout(
    tx: &mut crate::db::Tx,
    ctx: &Ctx,
    actor: &Actor,
    action: &str,
    record: &PayoutRecord,
) -> Result<()> {
    let event = Event::ok(action, "payout", record.id).with_details(serde_json::json!({
        "key": record.key, "status": record.status, "transfer_id": record.transfer_id,
        "failure_reason": record.failure_reason,
    }));
    audit::record(tx, ctx, Who::from(actor), None, event.clone()).await?;
    if let Some(business) = record.business_id {
        audit::record(tx, ctx, Who::from(actor), Some(BusinessId(business)), event).await?;
    }
    Ok(())
}

/// The signed-in business's payouts, newest period first (needs `finance.read`).
#[utoipa::path(get, path = "/api/v1/business/payouts", tag = "business", security(("bearer" = [])),
    params(PayoutListQuery),
    responses((status = 200, body = PayoutPage), (status = 400, body = Problem), (status = 403, body = Problem)))]
async fn business_payouts(
    State(app): State<App>,
    auth: Auth,
    ApiQuery(query): ApiQuery<PayoutListQuery>,
) -> Result<Json<PayoutPage>> {
    let filter = query.parse().map_err(bad_query)?;
    let (mut tx, _, business) = begin_staff(&app, &auth, Permission::FinanceRead).await?;
    let (items, total) = payouts::page(&mut tx, &filter, Scope::Business(business)).await?;
    tx.commit().await?;
    Ok(Json(PayoutPage {
        items,
        page: filter.page,
        per_page: filter.per_page,
        total,
    }))
}

/// The platform's commissions per business and currency over UTC days `from`–`to`: order
/// commissions and delivery commissions, pending and paid (withheld by a settled payout).
#[utoipa::path(get, path = "/api/v1/admin/platform-fees", tag = "admin", security(("bearer" = [])),
    params(PlatformFeesQuery),
    responses((status = 200, body = PlatformFeesView), (status = 400, body = Problem), (status = 403, body = Problem)))]
async fn platform_fees(
    State(app): State<App>,
    auth: Auth,
    ApiQuery(query): ApiQuery<PlatformFeesQuery>,
) -> Result<Json<PlatformFeesView>> {
    let filter = query
        .parse(app.clock.now().date_naive())
        .map_err(bad_query)?;
    let (mut tx, _) = begin_admin(&app, &auth, PlatformPermission::MetricsRead).await?;
    let businesses = payouts::platform_fees(&mut tx, filter.days, filter.business_id).await?;
    tx.commit().await?;
    Ok(Json(PlatformFeesView {
        range: filter.days,
        businesses,
    }))
}

/// Per driver over UTC days `from`–`to`: deliveries delivered and failed, acceptance rate
/// (accepted out of offers answered or expired), on-time rate (handed over by acceptance +
/// prep time + the courier ETA of the trip + 10 minutes) and rating.
#[utoipa::path(get, path = "/api/v1/admin/driver-performance", tag = "admin", security(("bearer" = [])),
    params(DriverPerformanceQuery),
    responses((status = 200, body = DriverPerformanceReport), (status = 400, body = Problem), (status = 403, body = Problem)))]
async fn driver_performance(
    State(app): State<App>,
    auth: Auth,
    ApiQuery(query): ApiQuery<DriverPerformanceQuery>,
) -> Result<Json<DriverPerformanceReport>> {
    let range = query
        .parse(app.clock.now().date_naive())
        .map_err(bad_query)?;
    let (mut tx, _) = begin_admin(&app, &auth, PlatformPermission::DriversManage).await?;
    let drivers = payouts::driver_performance(&mut tx, range).await?;
    tx.commit().await?;
    Ok(Json(DriverPerformanceReport { range, drivers }))
}

/// Records cash a driver handed back to the business (needs `dispatch.manage` or
/// `finance.read`): at most what the driver holds for it (`amount_minor` `exceeds_held`
/// otherwise).
#[utoipa::path(post, path = "/api/v1/business/drivers/{driver_id}/cash-deposits", tag = "business", security(("bearer" = [])),
    params(("driver_id" = Uuid, Path, description = "The driver")), request_body = CashDepositRequest,
    responses((status = 201, body = CashDepositView), (status = 403, body = Problem),
        (status = 404, body = Problem, description = "the driver never held cash for this business"),
        (status = 422, body = Problem, description = "amount_minor: not_positive or exceeds_held")))]
async fn cash_deposit(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiPath(driver): ApiPath<Uuid>,
    ApiJson(req): ApiJson<CashDepositRequest>,
) -> Result<(StatusCode, Json<CashDepositView>)> {
    let (mut tx, actor) = app.db.begin_as(&auth.0).await?;
    let business = staff_business(&actor)?;
    let allowed = [Permission::DispatchManage, Permission::FinanceRead]
        .into_iter()
        .any(|p| can(&actor, p, Resource::Business(business)));
    if !allowed {
        return Err(Error::forbidden("your role does not allow this"));
    }
    let Actor::Staff { user, .. } = &actor else {
        return Err(Error::forbidden("this endpoint is for a business's team"));
    };
    let view = payouts::deposit(
        &mut tx,
        business,
        driver,
        req.amount_minor,
        user.0,
        app.clock.now(),
    )
    .await?;
    let event = Event::ok("driver_cash.deposit", "driver_cash", view.id).with_details(
        serde_json::json!({"driver_id": driver, "amount_minor": view.amount.minor, "held_minor": view.held.minor}),
    );
    audit::record(&mut tx, &ctx, Who::from(&actor), Some(business), event).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// The signed-in driver's payouts, newest period first.
#[utoipa::path(get, path = "/api/v1/driver/payouts", tag = "driver", security(("bearer" = [])),
    params(PayoutListQuery),
    responses((status = 200, body = PayoutPage), (status = 400, body = Problem), (status = 403, body = Problem)))]
async fn driver_payouts(
    State(app): State<App>,
    auth: Auth,
    ApiQuery(query): ApiQuery<PayoutListQuery>,
) -> Result<Json<PayoutPage>> {
    let filter = query.parse().map_err(bad_query)?;
    let (mut tx, actor) = app.db.begin_as(&auth.0).await?;
    let Actor::Driver { user } = actor else {
        return Err(Error::forbidden("this endpoint is for drivers"));
    };
    let (items, total) = payouts::page(&mut tx, &filter, Scope::Driver(user)).await?;
    tx.commit().await?;
    Ok(Json(PayoutPage {
        items,
        page: filter.page,
        per_page: filter.per_page,
        total,
    }))
}

async fn set_payout_account(
    app: &App,
    ctx: &Ctx,
    auth: &Auth,
    party: PayoutPartyKind,
    id: Uuid,
    req: &PayoutAccountRequest,
) -> Result<Json<PayoutAccountView>> {
    let account = req.parse()?;
    let (mut tx, actor) = begin_admin(app, auth, PAYOUTS).await?;
    if !payouts::set_account(&mut tx, party, id, account.as_deref()).await? {
        return Err(Error::not_found(match party {
            PayoutPartyKind::Business => "business",
            PayoutPartyKind::Driver => "driver",
        }));
    }
    // The account id is not a secret, but only whether it changed is worth keeping.
    let event = Event::ok("payout_account.set", "payout_account", id)
        .with_details(serde_json::json!({"party": party, "set": account.is_some()}));
    audit::record(&mut tx, ctx, Who::from(&actor), None, event.clone()).await?;
    if party == PayoutPartyKind::Business {
        audit::record(&mut tx, ctx, Who::from(&actor), Some(BusinessId(id)), event).await?;
    }
    tx.commit().await?;
    Ok(Json(PayoutAccountView { id, account }))
}

/// Sets or removes the connected account a business's payouts are transferred to.
#[utoipa::path(put, path = "/api/v1/admin/businesses/{id}/payout-account", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Business id")), request_body = PayoutAccountRequest,
    responses((status = 200, body = PayoutAccountView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
async fn business_payout_account(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<PayoutAccountRequest>,
) -> Result<Json<PayoutAccountView>> {
    set_payout_account(&app, &ctx, &auth, PayoutPartyKind::Business, id, &req).await
}

/// Sets or removes the connected account a driver's payouts are transferred to.
#[utoipa::path(put, path = "/api/v1/admin/drivers/{id}/payout-account", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Driver id")), request_body = PayoutAccountRequest,
    responses((status = 200, body = PayoutAccountView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
async fn driver_payout_account(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<PayoutAccountRequest>,
) -> Result<Json<PayoutAccountView>> {
    set_payout_account(&app, &ctx, &auth, PayoutPartyKind::Driver, id, &req).await
}
