//! Application state and the router: every route, the middleware stack, the OpenAPI document.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderName, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use fleetfront_domain::auth::{Claims, TokenType};
use fleetfront_domain::ErrorCode;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tower_http::LatencyUnit;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::api;
use crate::audit::{self, Event};
use crate::auth::Keys;
use crate::context::{self, Ctx, TrustForwarded};
use crate::db::{Clock, Db};
use crate::error::Error;
use crate::payments::{CashGateway, PaymentGateway};

/// Shared state of every handler.
#[derive(Clone, Debug)]
pub struct App(Arc<AppInner>);

/// The parts of [`App`].
#[derive(Debug)]
pub struct AppInner {
    /// Runtime-role database access.
    pub db: Db,
    /// Token keys.
    pub keys: Keys,
    /// Storefront base domain.
    pub base_domain: String,
    /// The clock.
    pub clock: Clock,
    /// Trust `X-Forwarded-For`.
    pub trust_forwarded_for: bool,
    /// The payment gateways orders are paid through.
    pub payments: Gateways,
    /// Stripe's webhook verification and API client, once configured.
    pub stripe: std::sync::OnceLock<Arc<crate::payments::webhook::Stripe>>,
    /// Where uploaded blobs (product images) are kept, once configured.
    pub blobs: std::sync::OnceLock<Arc<dyn crate::storage::BlobStore>>,
    /// The key that seals personal data at rest (drivers' bank details), once configured.
    pub data_key: std::sync::OnceLock<Arc<crate::crypto::DataKey>>,
    /// Drivers' latest positions and the queue that persists them (`locations`).
    pub locations: crate::locations::Locations,
}

/// The payment gateways by kind: cash always; a card gateway (Stripe) once configured.
pub struct Gateways {
    cash: Arc<dyn PaymentGateway>,
    card: std::sync::OnceLock<Arc<dyn PaymentGateway>>,
}

impl Default for Gateways {
    fn default() -> Self {
        Self {
            cash: Arc::new(CashGateway),
            card: std::sync::OnceLock::new(),
        }
    }
}

impl std::fmt::Debug for Gateways {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateways")
            .field("card", &self.card.get().map(|g| g.kind()))
            .finish()
    }
}

impl Gateways {
    /// The cash-on-delivery gateway.
    pub fn cash(&self) -> Arc<dyn PaymentGateway> {
        self.cash.clone()
    }

    /// The card gateway, when one is configured.
    pub fn card(&self) -> Option<Arc<dyn PaymentGateway>> {
        self.card.get().cloned()
    }

    /// The gateway of an order's stored payment method (`cash` or `card`).
    pub fn for_method(&self, method: &str) -> Option<Arc<dyn PaymentGateway>> {
        match method {
            "cash" => Some(self.cash()),
            "card" => self.card(),
            _ => None,
        }
    }

    /// Configures the card gateway (once, at start-up); false when one was already set.
    pub fn set_card(&self, gateway: Arc<dyn PaymentGateway>) -> bool {
        self.card.set(gateway).is_ok()
    }
}

impl std::ops::Deref for App {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

impl App {
    /// Builds the state.
    pub fn new(db: Db, keys: Keys, base_domain: String, trust_forwarded_for: bool) -> App {
        App(Arc::new(AppInner {
            db,
            keys,
            base_domain,
            clock: Clock::default(),
            trust_forwarded_for,
            payments: Gateways::default(),
            stripe: std::sync::OnceLock::new(),
            blobs: std::sync::OnceLock::new(),
            data_key: std::sync::OnceLock::new(),
            locations: crate::locations::Locations::default(),
        }))
    }

    /// Configures the blob store (once, at start-up). False when one was already set.
    pub fn configure_blobs(&self, store: Arc<dyn crate::storage::BlobStore>) -> bool {
        self.blobs.set(store).is_ok()
    }

    /// The blob store.
    ///
    /// # Errors
    /// `unavailable` when none is configured.
    pub fn blob_store(&self) -> Result<Arc<dyn crate::storage::BlobStore>, Error> {
        self.blobs
            .get()
            .cloned()
            .ok_or_else(|| Error::new(ErrorCode::Unavailable, "file storage is not configured"))
    }

    /// Configures the data key (once, at start-up). False when one was already set.
    pub fn configure_data_key(&self, key: crate::crypto::DataKey) -> bool {
        self.data_key.set(Arc::new(key)).is_ok()
    }

    /// The data key.
    ///
    /// # Errors
    /// `unavailable` when none is configured.
    pub fn data_key(&self) -> Result<Arc<crate::crypto::DataKey>, Error> {
        self.data_key.get().cloned().ok_or_else(|| {
            Error::new(
                ErrorCode::Unavailable,
                "encryption of personal data is not configured",
            )
        })
    }

    /// Configures Stripe (once, at start-up): the card gateway of orders and the webhook
    /// endpoint. False when Stripe was already configured.
    pub fn configure_stripe(&self, stripe: crate::payments::webhook::Stripe) -> bool {
        let stripe = Arc::new(stripe);
        if self.stripe.set(stripe.clone()).is_err() {
            return false;
        }
        self.payments.set_card(Arc::new(stripe.gateway.clone()))
    }

    /// The public URL of a storefront.
    pub fn storefront_url(&self, subdomain: &str) -> String {
        if self.base_domain == "localhost" {
            format!("http://{subdomain}.localhost:8080/")
        } else {
            format!("https://{subdomain}.{}/", self.base_domain)
        }
    }
}

/// The OpenAPI document's root.
#[derive(OpenApi)]
#[openapi(
    info(title = "Fleetfront API", version = "1", description = "White-labeled stores with their own delivery fleet. Errors are RFC 9457 problem+json with a stable `code`."),
    modifiers(&BearerAuth),
    components(schemas(fleetfront_domain::api::Problem, fleetfront_domain::ErrorCode))
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Every API route, with its OpenAPI description.
pub fn api_router() -> (Router<App>, utoipa::openapi::OpenApi) {
    let router = OpenApiRouter::with_openapi(ApiDoc::openapi());
    let router = api::health::routes(router);
    let router = api::auth::routes(router);
    let router = api::admin::routes(router);
    let router = api::business::routes(router);
    let router = api::commerce::routes(router);
    let router = api::catalog::routes(router);
    let router = api::images::routes(router);
    let router = api::storefront::routes(router);
    let router = api::customers::routes(router);
    let router = api::payment_methods::routes(router);
    let router = api::webhooks::routes(router);
    let router = api::orders::routes(router);
    let router = api::reviews::routes(router);
    let router = api::cart::routes(router);
    let router = api::drivers::routes(router);
    let router = api::fleet::routes(router);
    let router = api::locations::routes(router);
    let router = api::dispatch::routes(router);
    let router = api::delivery::routes(router);
    let router = api::pay_rates::routes(router);
    let router = api::payouts::routes(router);
    let router = api::sync::routes(router);
    let router = api::uploads::routes(router);
    router.split_for_parts()
}

/// The whole application.
pub fn app(state: App) -> Router {
    let (api, openapi) = api_router();
    let openapi = Arc::new(openapi);
    let request_id = HeaderName::from_static("x-request-id");
    let trust = TrustForwarded(state.trust_forwarded_for);
    api.merge(api::docs::routes(openapi))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(DefaultBodyLimit::max(64 * 1024))
        .layer(middleware::from_fn(context::middleware))
        .layer(axum::Extension(trust))
        .layer(CatchPanicLayer::custom(|_| Error::unexpected(anyhow::anyhow!("handler panicked")).into_response()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    let request_id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
                    tracing::info_span!("request", method = %request.method(), uri = %request.uri().path(), request_id)
                })
                .on_request(())
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO).latency_unit(LatencyUnit::Micros)),
        )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

async fn not_found() -> Response {
    let mut response = Error::new(ErrorCode::NotFound, "no such endpoint").into_response();
    // An unknown path is not an attempt on a resource: not audited.
    response.extensions_mut().remove::<crate::error::Denied>();
    response
}

async fn method_not_allowed(method: Method) -> Response {
    Error::new(
        ErrorCode::MethodNotAllowed,
        format!("{method} is not allowed on this path"),
    )
    .into_response()
}

/// Marks the response of a state-changing request that changed nothing a session check reads
/// (e.g. a driver's location batch), so the instance keeps its verified sessions.
#[derive(Clone, Copy, Debug)]
pub struct KeepSessions;

/// Decodes the bearer token (when present) for the handlers, and writes an audit row for every
/// denied attempt: a rejected token, or a handler's forbidden / not-found / elevation answer.
async fn authenticate(State(app): State<App>, mut request: Request, next: Next) -> Response {
    let ctx = request.extensions().get::<Ctx>().cloned().unwrap_or(Ctx {
        request_id: "-".into(),
        client_address: "unknown".into(),
    });
    let action = format!("{} {}", request.method(), request.uri().path());
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().ok().and_then(bearer_token).map(str::to_owned));
    let claims: Option<Arc<Claims>> = match bearer {
        None => None,
        Some(None) => {
            return deny(
                &app,
                &ctx,
                None,
                &action,
                Error::unauthenticated("the Authorization header must be Bearer <token>"),
            )
            .await;
        }
        Some(Some(token)) => match app.keys.verify(&token, TokenType::Access, app.clock.now()) {
            Ok(claims) => Some(Arc::new(claims)),
            Err(e) => return deny(&app, &ctx, None, &action, e).await,
        },
    };
    if let Some(claims) = &claims {
        request.extensions_mut().insert(claims.clone());
    }
    let changes_state = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let response = next.run(request).await;
    if changes_state && response.extensions().get::<KeepSessions>().is_none() {
        // Whatever this request changed (a role, a suspension, a sign-out everywhere) must be
        // seen by this instance's very next request.
        app.db.sessions.clear();
    }
    if let Some(crate::error::Denied(code)) =
        response.extensions().get::<crate::error::Denied>().copied()
    {
        let event = Event::denied(&action, serde_json::json!({ "code": code.as_str() }));
        if let Err(e) = audit::record_denial(&app.db, &ctx, claims.as_deref(), event).await {
            tracing::error!(error = %e, "could not audit a denied attempt");
        }
    }
    response
}

async fn deny(
    app: &App,
    ctx: &Ctx,
    claims: Option<&Claims>,
    action: &str,
    error: Error,
) -> Response {
    let event = Event::denied(action, serde_json::json!({ "code": error.code().as_str() }));
    if let Err(e) = audit::record_denial(&app.db, ctx, claims, event).await {
        tracing::error!(error = %e, "could not audit a denied attempt");
    }
    let mut response = error.into_response();
    response.extensions_mut().remove::<crate::error::Denied>();
    response
}

/// The token of an `Authorization: Bearer <token>` header; the scheme is case-insensitive
/// (RFC 9110 §11.1).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer abc"), Some("abc"));
        assert_eq!(bearer_token("BEARER  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("abc"), None);
    }
}
