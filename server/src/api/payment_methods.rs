//! A customer's saved cards: `/api/v1/customers/me/payment-methods`. Only the payment
//! provider's tokens are kept (Stripe `pm_…`, attached to the customer's Stripe `cus_…`) with
//! what to show — brand, last four digits, expiry — as the provider reports them: the client
//! sends a `pm_…` id it made with the provider's SDK, never card data, and the server reads the
//! display fields from the provider rather than from the client. A checkout may pay with one of
//! the customer's own saved cards (`{"method": "saved_card", "payment_method_id": …}`).
//!
//! Provider calls happen between short transactions, never inside one. Guests cannot save cards
//! (no account to save them to); staff never see them.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use fleetfront_domain::api::payment::{
    PaymentMethodView, SavePaymentMethodRequest, UpdatePaymentMethodRequest,
};
use fleetfront_domain::api::Problem;
use fleetfront_domain::permission::Actor;
use fleetfront_domain::{BusinessId, CustomerId, ErrorCode};
use sqlx::FromRow;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::App;
use crate::audit::{self, Event, Who};
use crate::context::Ctx;
use crate::db::{new_id, Tx};
use crate::error::{Error, Result};
use crate::extract::{ApiJson, ApiPath, Auth};
use crate::payments::stripe::StripeGateway;
use crate::payments::PaymentError;

/// Cards one customer may keep.
pub const MAX_PAYMENT_METHODS: i64 = 10;

pub(crate) fn routes(router: OpenApiRouter<App>) -> OpenApiRouter<App> {
    router
        .routes(routes!(list_payment_methods, save_payment_method))
        .routes(routes!(update_payment_method, delete_payment_method))
}

async fn begin_customer(app: &App, auth: &Auth) -> Result<(Tx, Actor, CustomerId, BusinessId)> {
    let (tx, actor) = app.db.begin_as(&auth.0).await?;
    match actor {
        Actor::Customer { customer, business } => Ok((tx, actor, customer, business)),
        _ => Err(Error::forbidden("this endpoint is for a store's customers")),
    }
}

fn stripe(app: &App) -> Result<StripeGateway> {
    app.stripe.get().map(|s| s.gateway.clone()).ok_or_else(|| {
        Error::new(
            ErrorCode::PaymentMethodUnavailable,
            "card payments are not available at this store",
        )
    })
}

/// A provider error while saving or removing a card, as a problem for the client.
fn gateway_error(e: PaymentError) -> Error {
    match e {
        PaymentError::Unavailable(_) => Error::new(
            ErrorCode::Unavailable,
            "the payment provider is unavailable; retry later",
        ),
        PaymentError::Declined(m) => Error::new(ErrorCode::PaymentDeclined, m),
        PaymentError::Invalid(m) => {
            tracing::info!(error = %m, "payment provider refused a saved-card request");
            Error::field(
                "payment_method_id",
                "unknown_payment_method",
                "the payment provider does not know this payment method, or it belongs to someone else",
            )
        }
    }
}

#[derive(FromRow)]
struct Row {
    id: Uuid,
    payment_type: String,
    card_brand: Option<String>,
    card_last4: Option<String>,
    card_exp_month: Option<i16>,
    card_exp_year: Option<i16>,
    is_default: bool,
    created_at: DateTime<Utc>,
}

impl From<Row> for PaymentMethodView {
    fn from(r: Row) -> Self {
        PaymentMethodView {
            id: r.id,
            payment_type: r.payment_type,
            card_brand: r.card_brand,
            card_last4: r.card_last4,
            card_exp_month: r.card_exp_month.map(i32::from),
            card_exp_year: r.card_exp_year.map(i32::from),
            is_default: r.is_default,
            created_at: r.created_at,
        }
    }
}

async fn methods(
    tx: &mut Tx,
    customer: CustomerId,
    business: BusinessId,
    only: Option<Uuid>,
) -> Result<Vec<PaymentMethodView>> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, payment_type, card_brand, card_last4, card_exp_month, card_exp_year, is_default, created_at \
         FROM customer_payment_methods WHERE business_id = $1 AND customer_id = $2 \
           AND ($3::uuid IS NULL OR id = $3) \
         ORDER BY is_default DESC, created_at DESC, id",
    )
    .bind(business.0)
    .bind(customer.0)
    .bind(only)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(PaymentMethodView::from).collect())
}

/// Makes `id` the customer's one default card.
async fn make_default(
    tx: &mut Tx,
    customer: CustomerId,
    business: BusinessId,
    id: Uuid,
) -> Result<()> {
    sqlx::query(
        "UPDATE customer_payment_methods SET is_default = false, updated_at = now() \
         WHERE business_id = $1 AND customer_id = $2 AND is_default AND id <> $3",
    )
    .bind(business.0)
    .bind(customer.0)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE customer_payment_methods SET is_default = true, updated_at = now() \
         WHERE business_id = $1 AND customer_id = $2 AND id = $3",
    )
    .bind(business.0)
    .bind(customer.0)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The signed-in customer's saved cards, the default first.
#[utoipa::path(get, path = "/api/v1/customers/me/payment-methods", tag = "customers", security(("bearer" = [])),
    responses((status = 200, body = Vec<PaymentMethodView>), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn list_payment_methods(
    State(app): State<App>,
    auth: Auth,
) -> Result<Json<Vec<PaymentMethodView>>> {
    let (mut tx, _, customer, business) = begin_customer(&app, &auth).await?;
    let list = methods(&mut tx, customer, business, None).await?;
    tx.commit().await?;
    Ok(Json(list))
}

/// Saves a card the client tokenized with the provider's SDK (`payment_method_id`, Stripe
/// `pm_…`). The server reads its brand, last four digits and expiry from the provider,
/// attaches it to the customer's provider account (created once, on the first card) and keeps
/// only the token and those display fields. The first card, or one sent with `is_default`,
/// becomes the default. Saving the same card again answers the saved one (200).
#[utoipa::path(post, path = "/api/v1/customers/me/payment-methods", tag = "customers", security(("bearer" = [])),
    request_body = SavePaymentMethodRequest,
    responses((status = 201, body = PaymentMethodView), (status = 200, body = PaymentMethodView, description = "Already saved"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem), (status = 503, body = Problem)))]
async fn save_payment_method(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiJson(req): ApiJson<SavePaymentMethodRequest>,
) -> Result<(StatusCode, Json<PaymentMethodView>)> {
    let save = req.parse()?;
    let pm = save.payment_method_id.as_str().to_owned();
    // What is saved already, the provider account and the email, read before any provider call.
    let (mut tx, _, customer, business) = begin_customer(&app, &auth).await?;
    let existing: Option<Uuid> = sqlx::query_scalar(
        "SELECT id FROM customer_payment_methods WHERE business_id = $1 AND customer_id = $2 \
         AND gateway_payment_method_id = $3",
    )
    .bind(business.0)
    .bind(customer.0)
    .bind(&pm)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(id) = existing {
        let view = methods(&mut tx, customer, business, Some(id))
            .await?
            .pop()
            .ok_or_else(|| Error::not_found("payment method"))?;
        tx.commit().await?;
        return Ok((StatusCode::OK, Json(view)));
    }
    let count: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM customer_payment_methods WHERE business_id = $1 AND customer_id = $2",
    )
    .bind(business.0)
    .bind(customer.0)
    .fetch_one(&mut *tx)
    .await?;
    if count >= MAX_PAYMENT_METHODS {
        return Err(Error::new(
            ErrorCode::Conflict,
            format!("at most {MAX_PAYMENT_METHODS} cards can be saved; remove one first"),
        ));
    }
    let account: Option<String> = sqlx::query_scalar(
        "SELECT gateway_customer_id FROM customer_gateway_accounts \
         WHERE business_id = $1 AND customer_id = $2 AND gateway = 'stripe'",
    )
    .bind(business.0)
    .bind(customer.0)
    .fetch_optional(&mut *tx)
    .await?;
    let email: String =
        sqlx::query_scalar("SELECT email FROM customers WHERE business_id = $1 AND id = $2")
            .bind(business.0)
            .bind(customer.0)
            .fetch_one(&mut *tx)
            .await?;
    tx.commit().await?;

    // The provider: what the card is, the customer's account (once), the attachment.
    let gateway = stripe(&app)?;
    let method = gateway
        .retrieve_payment_method(&pm)
        .await
        .map_err(gateway_error)?;
    let Some(card) = method.card.filter(|_| method.kind == "card") else {
        return Err(Error::field(
            "payment_method_id",
            "not_a_card",
            "only cards can be saved",
        ));
    };
    let account = match account {
        Some(account) => account,
        None => {
            // The same key for every attempt: a retry, or a concurrent first save, gets the
            // same provider customer back.
            let key = format!("customer:{}:stripe", customer.0);
            let created = gateway
                .create_customer(&key, &email, business.0, customer.0)
                .await
                .map_err(gateway_error)?;
            let (mut tx, _, _, _) = begin_customer(&app, &auth).await?;
            sqlx::query(
                "INSERT INTO customer_gateway_accounts (business_id, customer_id, gateway, gateway_customer_id) \
                 VALUES ($1, $2, 'stripe', $3) ON CONFLICT DO NOTHING",
            )
            .bind(business.0)
            .bind(customer.0)
            .bind(&created)
            .execute(&mut *tx)
            .await?;
            let account: String = sqlx::query_scalar(
                "SELECT gateway_customer_id FROM customer_gateway_accounts \
                 WHERE business_id = $1 AND customer_id = $2 AND gateway = 'stripe'",
            )
            .bind(business.0)
            .bind(customer.0)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            account
        }
    };
    if method.customer.as_deref().is_some_and(|c| c != account) {
        return Err(Error::field(
            "payment_method_id",
            "unknown_payment_method",
            "the payment provider does not know this payment method, or it belongs to someone else",
        ));
    }
    let key = format!("customer:{}:attach:{pm}", customer.0);
    gateway
        .attach_payment_method(&key, &pm, &account)
        .await
        .map_err(gateway_error)?;

    let (mut tx, actor, customer, business) = begin_customer(&app, &auth).await?;
    let id = new_id();
    let inserted = sqlx::query(
        "INSERT INTO customer_payment_methods (business_id, id, customer_id, payment_type, gateway, \
           gateway_payment_method_id, card_brand, card_last4, card_exp_month, card_exp_year) \
         VALUES ($1, $2, $3, 'card', 'stripe', $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
    )
    .bind(business.0)
    .bind(id)
    .bind(customer.0)
    .bind(&pm)
    .bind(card.brand.chars().take(32).collect::<String>())
    .bind(
        Some(card.last4)
            .filter(|l| l.len() == 4 && l.bytes().all(|b| b.is_ascii_digit())),
    )
    .bind(i16::try_from(card.exp_month).ok().filter(|m| (1..=12).contains(m)))
    .bind(i16::try_from(card.exp_year).ok().filter(|y| (2000..=2200).contains(y)))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let id = if inserted == 1 {
        id
    } else {
        // A concurrent save of the same card won.
        sqlx::query_scalar(
            "SELECT id FROM customer_payment_methods WHERE business_id = $1 AND customer_id = $2 \
             AND gateway_payment_method_id = $3",
        )
        .bind(business.0)
        .bind(customer.0)
        .bind(&pm)
        .fetch_one(&mut *tx)
        .await?
    };
    let has_default: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM customer_payment_methods WHERE business_id = $1 AND customer_id = $2 AND is_default)",
    )
    .bind(business.0)
    .bind(customer.0)
    .fetch_one(&mut *tx)
    .await?;
    if inserted == 1 && (save.is_default || !has_default) {
        make_default(&mut tx, customer, business, id).await?;
    }
    if inserted == 1 {
        audit::record(
            &mut tx,
            &ctx,
            Who::from(&actor),
            Some(business),
            Event::ok("customer.payment_method.add", "payment_method", id),
        )
        .await?;
    }
    let view = methods(&mut tx, customer, business, Some(id))
        .await?
        .pop()
        .ok_or_else(|| Error::not_found("payment method"))?;
    tx.commit().await?;
    let status = if inserted == 1 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)))
}

/// Makes a saved card the default (`{"is_default": true}`), or leaves the customer without a
/// default card (`false`).
#[utoipa::path(patch, path = "/api/v1/customers/me/payment-methods/{id}", tag = "customers", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Saved card id")), request_body = UpdatePaymentMethodRequest,
    responses((status = 200, body = PaymentMethodView), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
async fn update_payment_method(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<UpdatePaymentMethodRequest>,
) -> Result<Json<PaymentMethodView>> {
    let (mut tx, actor, customer, business) = begin_customer(&app, &auth).await?;
    if methods(&mut tx, customer, business, Some(id))
        .await?
        .is_empty()
    {
        return Err(Error::not_found("payment method"));
    }
    if req.is_default {
        make_default(&mut tx, customer, business, id).await?;
    } else {
        sqlx::query(
            "UPDATE customer_payment_methods SET is_default = false, updated_at = now() \
             WHERE business_id = $1 AND customer_id = $2 AND id = $3",
        )
        .bind(business.0)
        .bind(customer.0)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    }
    audit::record(
        &mut tx,
        &ctx,
        Who::from(&actor),
        Some(business),
        Event::ok("customer.payment_method.update", "payment_method", id),
    )
    .await?;
    let view = methods(&mut tx, customer, business, Some(id))
        .await?
        .pop()
        .ok_or_else(|| Error::not_found("payment method"))?;
    tx.commit().await?;
    Ok(Json(view))
}

/// Removes a saved card: it is forgotten here and detached from the customer's provider
/// account, so it cannot be charged again. When it was the default, the most recently saved
/// remaining card becomes the default.
#[utoipa::path(delete, path = "/api/v1/customers/me/payment-methods/{id}", tag = "customers", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Saved card id")),
    responses((status = 204, description = "Removed"), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn delete_payment_method(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode> {
    let (mut tx, actor, customer, business) = begin_customer(&app, &auth).await?;
    let removed: Option<(String, bool)> = sqlx::query_as(
        "DELETE FROM customer_payment_methods WHERE business_id = $1 AND customer_id = $2 AND id = $3 \
         RETURNING gateway_payment_method_id, is_default",
    )
    .bind(business.0)
    .bind(customer.0)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((pm, was_default)) = removed else {
        return Err(Error::not_found("payment method"));
    };
    if was_default {
        sqlx::query(
            "UPDATE customer_payment_methods SET is_default = true WHERE business_id = $1 AND id = \
             (SELECT id FROM customer_payment_methods WHERE business_id = $1 AND customer_id = $2 \
              ORDER BY created_at DESC, id LIMIT 1)",
        )
        .bind(business.0)
        .bind(customer.0)
        .execute(&mut *tx)
        .await?;
    }
    audit::record(
        &mut tx,
        &ctx,
        Who::from(&actor),
        Some(business),
        Event::ok("customer.payment_method.delete", "payment_method", id),
    )
    .await?;
    tx.commit().await?;
    // Forgotten here whatever the provider says; detaching is best effort (a detached card can
    // no longer be charged, and an attached one is only usable with our secret key).
    if let Ok(gateway) = stripe(&app) {
        let key = format!("customer:{}:detach:{pm}", customer.0);
        if let Err(e) = gateway.detach_payment_method(&key, &pm).await {
            tracing::warn!(payment_method = %pm, error = %e, "could not detach a removed card");
        }
    }
    Ok(StatusCode::NO_CONTENT)
}
