//! Resumable upload endpoints (`/api/v1/uploads/{sha256}`): a driver sends a file in chunks
//! addressed by the SHA-256 of the whole and asks how far it got after a cut. The protocol and
//! its SQL are in [`crate::uploads`].

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use fleetfront_domain::api::media::{UploadView, UPLOAD_LENGTH_HEADER, UPLOAD_OFFSET_HEADER};
use fleetfront_domain::api::Problem;
use fleetfront_domain::media::{ContentHash, ImageKind, MAX_UPLOAD_CHUNK_BYTES};
use fleetfront_domain::ErrorCode;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::App;
use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::extract::{ApiPath, ApiQuery, Auth};
use crate::uploads::{self, Appended, Chunk, Purpose};

pub(crate) fn routes(router: OpenApiRouter<App>) -> OpenApiRouter<App> {
    // The status has no body; the limit is the chunk's (the server-wide one is 64 KiB).
    let uploads = OpenApiRouter::new()
        .routes(routes!(put_chunk, upload_status))
        .layer(DefaultBodyLimit::max(MAX_UPLOAD_CHUNK_BYTES));
    router.merge(uploads)
}

/// What the completed file is for.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadQuery {
    purpose: Option<String>,
    owner: Option<Uuid>,
}

fn address(raw: &str) -> Result<ContentHash> {
    ContentHash::parse(&raw.to_ascii_lowercase())
        .map_err(|e| Error::field("sha256", e.code, e.message))
}

/// A required numeric header.
fn number(headers: &HeaderMap, name: &'static str, label: &str) -> Result<u64> {
    let raw = headers
        .get(name)
        .ok_or_else(|| Error::field(label, "required", format!("send the {label} header")))?;
    raw.to_str()
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| Error::field(label, "invalid", format!("{label} is a number of bytes")))
}

/// The declared type of the whole file, from `Content-Type`.
fn declared_type(headers: &HeaderMap) -> Result<ImageKind> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .and_then(|v| ImageKind::from_content_type(v.trim()))
        .ok_or_else(|| {
            Error::new(
                ErrorCode::UnsupportedMediaType,
                "send the file's type as Content-Type: image/jpeg, image/png or image/webp",
            )
        })
}

/// The `Upload-Offset` and `Upload-Length` headers of an answer.
fn progress_headers(view: &UploadView) -> [(HeaderName, HeaderValue); 2] {
    [
        (
            HeaderName::from_static(UPLOAD_OFFSET_HEADER),
            HeaderValue::from(view.offset),
        ),
        (
            HeaderName::from_static(UPLOAD_LENGTH_HEADER),
            HeaderValue::from(view.size),
        ),
    ]
}

/// Sends one chunk of a file addressed by its SHA-256 (drivers). `Upload-Offset` is the bytes
/// already sent, `Upload-Length` the whole file's length (at most 10 MiB), `Content-Type` the
/// whole file's type; the body is the chunk (at most 1 MiB). A chunk that starts past what
/// arrived is a 409 naming the current offset (also in the `Upload-Offset` header): resume
/// there; one that repeats stored bytes is accepted as is. When the last byte arrives the file
/// is checked — its SHA-256 must be its address (else 422 `hash_mismatch` and the partial upload
/// is discarded), its bytes a JPEG, PNG or WebP image — and stored: 201 with `complete: true`
/// (also the answer to any later repeat). With `purpose=delivery_proof&owner={delivery id}` the
/// photo becomes that delivery's proof, once: for a delivery the driver holds, or delivered
/// naming this photo (its `pending` proof is then attached).
#[utoipa::path(put, path = "/api/v1/uploads/{sha256}", tag = "driver", security(("bearer" = [])),
    params(("sha256" = String, Path, description = "The whole file's SHA-256, in hex"),
        ("Upload-Offset" = u64, Header, description = "Bytes already sent: where this chunk starts"),
        ("Upload-Length" = u64, Header, description = "The whole file's length in bytes (at most 10 MiB)"),
        ("purpose" = Option<String>, Query, description = "`delivery_proof` to attach the completed photo to a delivery"),
        ("owner" = Option<Uuid>, Query, description = "The delivery the photo proves")),
    request_body(content = Vec<u8>, content_type = "image/jpeg", description = "The chunk's bytes; Content-Type is the whole file's: image/jpeg, image/png or image/webp"),
    responses((status = 200, body = UploadView, description = "Stored; send the rest from `offset`"),
        (status = 201, body = UploadView, description = "Complete: verified and stored"),
        (status = 403, body = Problem), (status = 404, body = Problem, description = "The purpose's delivery is not the driver's"),
        (status = 409, body = Problem, description = "conflict: the chunk starts past the bytes received (resume from the Upload-Offset header), another Upload-Length, or a finished delivery"),
        (status = 413, body = Problem, description = "A file over 10 MiB or a chunk over 1 MiB"),
        (status = 415, body = Problem, description = "Not a JPEG, PNG or WebP image"),
        (status = 422, body = Problem, description = "Bad headers or purpose, a chunk past the length, hash_mismatch")))]
async fn put_chunk(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiPath(sha256): ApiPath<String>,
    ApiQuery(query): ApiQuery<UploadQuery>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Response> {
    // The body first, as every upload does: the wrong media type or too many bytes are refused
    // before anything else is looked at.
    let content_type = declared_type(&headers)?;
    let bytes = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            uploads::chunk_too_large()
        } else {
            Error::new(ErrorCode::MalformedRequest, "the chunk could not be read")
        }
    })?;
    let sha256 = address(&sha256)?;
    let purpose = Purpose::parse(query.purpose.as_deref(), query.owner)?;
    let offset = number(&headers, UPLOAD_OFFSET_HEADER, "Upload-Offset")?;
    let length = number(&headers, UPLOAD_LENGTH_HEADER, "Upload-Length")?;
    let chunk = Chunk {
        sha256: &sha256,
        offset,
        length,
        content_type,
        purpose,
        bytes: &bytes,
    };
    Ok(
        match uploads::put_chunk(&app, &ctx, &auth.0, &chunk).await? {
            Appended::Partial(view) => {
                (StatusCode::OK, progress_headers(&view), Json(view)).into_response()
            }
            Appended::Complete(view) => {
                (StatusCode::CREATED, progress_headers(&view), Json(view)).into_response()
            }
            Appended::WrongOffset(view) => {
                let problem = Error::field(
                    "Upload-Offset",
                    "offset_mismatch",
                    format!(
                        "{} bytes have arrived; resume from offset {}",
                        view.offset, view.offset
                    ),
                )
                .with_code(ErrorCode::Conflict)
                .with_detail(format!(
                "the chunk starts at {offset}, but the upload has {} bytes: resume from offset {}",
                view.offset, view.offset
            ));
                (progress_headers(&view), problem).into_response()
            }
        },
    )
}

/// How far the signed-in driver's upload of a file has got: `offset` (also the `Upload-Offset`
/// header; `HEAD` answers the headers alone) and whether it is `complete`. An upload never
/// started, or another account's, is a 404: start from offset 0.
#[utoipa::path(get, path = "/api/v1/uploads/{sha256}", tag = "driver", security(("bearer" = [])),
    params(("sha256" = String, Path, description = "The whole file's SHA-256, in hex")),
    responses((status = 200, body = UploadView), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn upload_status(
    State(app): State<App>,
    auth: Auth,
    ApiPath(sha256): ApiPath<String>,
) -> Result<Response> {
    let sha256 = address(&sha256)?;
    let view = uploads::status(&app, &auth.0, &sha256).await?;
    Ok((progress_headers(&view), Json(view)).into_response())
}
