//! Webhooks from payment providers. They act for nobody: no token, the provider's signature
//! instead, checked over the raw body bytes (re-serialized JSON would not match it).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use fleetfront_domain::ErrorCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::App;
use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::payments::webhook;

/// The answer to a webhook delivery.
#[derive(Serialize, ToSchema)]
pub struct WebhookAck {
    /// Always true: the event was accepted (Stripe stops retrying).
    pub received: bool,
    /// `processed`, `duplicate` (processed before; not processed again) or `ignored`.
    pub outcome: &'static str,
}

pub(crate) fn routes(router: OpenApiRouter<App>) -> OpenApiRouter<App> {
    router.routes(routes!(stripe_webhook))
}

/// Receives a Stripe event. The `Stripe-Signature` header must carry a `v1` HMAC-SHA256 of
/// `"{t}.{body}"` made with the endpoint's signing secret, with `t` within 300 s of the
/// server's clock. Each event id is processed once; the payment is re-read from Stripe rather
/// than taken from the event, so events may arrive in any order.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/stripe",
    tag = "payments",
    params(("Stripe-Signature" = String, Header, description = "Stripe's signature: `t=<unix time>,v1=<hex HMAC>[,v1=…]`")),
    request_body(content = String, content_type = "application/json", description = "A Stripe event object, exactly as Stripe sent it"),
    responses(
        (status = 200, description = "Accepted (processed now, before, or not acted on)", body = WebhookAck),
        (status = 400, description = "`invalid_signature`: missing, wrong or stale signature (or no signing secret configured); `malformed_request`: not an event", body = fleetfront_domain::api::Problem),
        (status = 413, description = "`payload_too_large`", body = fleetfront_domain::api::Problem),
        (status = 415, description = "`unsupported_media_type`: not `application/json`", body = fleetfront_domain::api::Problem),
        (status = 503, description = "Stripe or the order could not be read yet; Stripe retries", body = fleetfront_domain::api::Problem),
    )
)]
async fn stripe_webhook(
    State(app): State<App>,
    ctx: Ctx,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Json<WebhookAck>> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Error::new(ErrorCode::PayloadTooLarge, "the body is too large")
        } else {
            Error::new(ErrorCode::MalformedRequest, "the body could not be read")
        }
    })?;
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(Error::new(
            ErrorCode::UnsupportedMediaType,
            "a Stripe event is sent as application/json",
        ));
    }
    let Some(stripe) = app.stripe.get() else {
        // Without the endpoint's signing secret no signature can be verified; Stripe keeps
        // retrying (it retries every non-2xx answer) until the server is configured.
        tracing::warn!("a Stripe webhook arrived but FLEETFRONT_STRIPE_WEBHOOK_SECRET is not set");
        return Err(Error::new(
            ErrorCode::InvalidSignature,
            "no Stripe webhook signing secret is configured on this server",
        ));
    };
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    let outcome =
        webhook::process(&app.db, &ctx, stripe, signature, &body, app.clock.now()).await?;
    Ok(Json(WebhookAck {
        received: true,
        outcome: outcome.as_str(),
    }))
}
