//! Request extractors that turn every kind of bad input into a problem response: JSON bodies
//! (unknown fields, wrong types and non-objects → 422, bad syntax → 400, not JSON → 415, too
//! large → 413), path and query parameters, the bearer token and the PIN elevation header.

use std::marker::PhantomData;
use std::sync::Arc;

use axum::extract::multipart::{Field, MultipartError};
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use fleetfront_domain::auth::{Claims, TokenType};
use fleetfront_domain::permission::SensitiveAction;
use fleetfront_domain::{media, ErrorCode};
use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::app::App;
use crate::error::{Error, Result};

/// A JSON body.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<ObjectOnly<T>>::from_request(req, state).await {
            Ok(axum::Json(ObjectOnly(value))) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// Deserializes `T` from a JSON object only. serde also builds a struct from a JSON array, field
/// by field in declaration order with defaults for the missing ones, so without this `[]` would
/// be accepted as an empty PATCH and `["a", "b"]` as positional fields.
struct ObjectOnly<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectOnly<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = T;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }

        deserializer
            .deserialize_map(ObjectVisitor(PhantomData))
            .map(ObjectOnly)
    }
}

fn json_rejection(rejection: JsonRejection) -> Error {
    match rejection {
        JsonRejection::JsonDataError(e) => {
            let text = e.body_text();
            let detail = text
                .strip_prefix("Failed to deserialize the JSON body into the target type: ")
                .unwrap_or(&text);
            let (field, message) = match detail.split_once(": ") {
                Some((path, msg)) if !path.contains(' ') => (path.to_owned(), msg.to_owned()),
                _ => ("body".to_owned(), detail.to_owned()),
            };
            let code = if message.starts_with("unknown field") {
                "unknown_field"
            } else if message.starts_with("missing field") {
                "required"
            } else {
                "invalid"
            };
            Error::field(&field, code, message)
        }
        JsonRejection::JsonSyntaxError(e) => Error::new(
            ErrorCode::MalformedRequest,
            format!("the body is not valid JSON: {}", e.body_text()),
        ),
        JsonRejection::MissingJsonContentType(_) => Error::new(
            ErrorCode::UnsupportedMediaType,
            "send the body as application/json",
        ),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Error::new(ErrorCode::PayloadTooLarge, "the body is too large")
        }
        other => Error::new(ErrorCode::MalformedRequest, other.body_text()),
    }
}

/// Path parameters.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|e: PathRejection| {
                Error::new(
                    ErrorCode::MalformedRequest,
                    format!("invalid path parameter: {}", e.body_text()),
                )
            })
    }
}

/// Query parameters.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e: QueryRejection| Error::field("query", "invalid", e.body_text()))
    }
}

/// The verified access token of the caller (decoded by the authentication middleware).
#[derive(Clone, Debug)]
pub struct Auth(pub Arc<Claims>);

impl<S: Send + Sync> FromRequestParts<S> for Auth {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Arc<Claims>>()
            .cloned()
            .map(Auth)
            .ok_or_else(|| {
                Error::unauthenticated("sign in first: send Authorization: Bearer <access token>")
            })
    }
}

/// The header carrying a PIN-elevated token.
pub const ELEVATION_HEADER: &str = "x-fleetfront-elevation";

/// Requires a valid elevated token for `action`, issued to the same account and scope as
/// `auth`, sent in [`ELEVATION_HEADER`].
///
/// # Errors
/// `elevation_required` when absent, expired, or for another action or account.
pub fn require_elevation(
    app: &App,
    parts_headers: &axum::http::HeaderMap,
    auth: &Auth,
    action: SensitiveAction,
) -> Result<(), Error> {
    let refuse = || {
        Error::new(
            ErrorCode::ElevationRequired,
            format!(
                "confirm with your PIN first: POST /api/v1/auth/pin/verify with action {:?}",
                action.as_str()
            ),
        )
    };
    let token = parts_headers
        .get(ELEVATION_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(refuse)?;
    let claims = app
        .keys
        .verify(token, TokenType::Elevated, app.clock.now())
        .map_err(|_| refuse())?;
    let same_scope = claims.sub == auth.0.sub
        && claims.kind == auth.0.kind
        && claims.business_id == auth.0.business_id
        && claims.sv == auth.0.sv;
    if !same_scope || claims.act != Some(action) {
        return Err(refuse());
    }
    Ok(())
}

/// A `multipart/form-data` body (uploads). Any other content type is a 415, a multipart body
/// without a boundary a 400; errors while reading its fields are mapped by the handler.
#[derive(Debug)]
pub struct ApiMultipart(pub axum::extract::Multipart);

impl<S: Send + Sync> FromRequest<S> for ApiMultipart {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let multipart = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("multipart/form-data")
            });
        if !multipart {
            return Err(Error::new(
                ErrorCode::UnsupportedMediaType,
                "send the file as multipart/form-data",
            ));
        }
        axum::extract::Multipart::from_request(req, state)
            .await
            .map(ApiMultipart)
            .map_err(|e| Error::new(ErrorCode::MalformedRequest, e.body_text()))
    }
}

// Uploads ---------------------------------------------------------------------------------------

/// The problem for a multipart body that cannot be read (413 when it is over the limit).
pub(crate) fn multipart_error(e: &MultipartError) -> Error {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large()
    } else {
        Error::new(
            ErrorCode::MalformedRequest,
            format!("the multipart body is malformed: {}", e.body_text()),
        )
    }
}

/// The problem for an upload over [`media::MAX_UPLOAD_BYTES`].
pub(crate) fn too_large() -> Error {
    Error::new(
        ErrorCode::PayloadTooLarge,
        format!(
            "the file is too large: at most {} MiB",
            media::MAX_UPLOAD_BYTES / (1024 * 1024)
        ),
    )
}

/// Reads a multipart field up to `limit` bytes; `over` is the error past it.
pub(crate) async fn read_field(
    field: &mut Field<'_>,
    limit: usize,
    over: fn() -> Error,
) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(&e))? {
        if bytes.len() + chunk.len() > limit {
            return Err(over());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}
