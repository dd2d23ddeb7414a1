//! Per-request context: the request id (also in every log line and problem body) and the
//! client's address (for throttling and audit).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The request id of the request being served on this task, if any.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Who is calling, as far as the connection tells.
#[derive(Clone, Debug)]
pub struct Ctx {
    /// The `x-request-id` of this request.
    pub request_id: String,
    /// The client's address, or `unknown` when the server runs without a socket (tests).
    pub client_address: String,
}

/// Whether `X-Forwarded-For` is trusted (the server runs behind a proxy that sets it).
#[derive(Clone, Copy, Debug)]
pub struct TrustForwarded(pub bool);

/// Middleware: makes the request id available to error responses and builds [`Ctx`].
pub async fn middleware(mut request: Request, next: Next) -> Response {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let trust = request
        .extensions()
        .get::<TrustForwarded>()
        .is_some_and(|t| t.0);
    let forwarded = trust
        .then(|| {
            request
                .headers()
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .and_then(|v| v.trim().parse::<IpAddr>().ok())
        })
        .flatten();
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let client_address = forwarded
        .or(peer)
        .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    request.extensions_mut().insert(Ctx {
        request_id: request_id.clone(),
        client_address,
    });
    REQUEST_ID.scope(request_id, next.run(request)).await
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<Ctx>().cloned().unwrap_or(Ctx {
            request_id: "-".to_owned(),
            client_address: "unknown".to_owned(),
        }))
    }
}
