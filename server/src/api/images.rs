//! Product images: `/api/v1/business/products/{id}/images` (upload, list, change, delete) for
//! the business, and `/api/v1/images/{hash}` serving the bytes of any size to anybody.
//!
//! An upload is checked in three steps so that no transaction stays open while a client sends
//! up to 10 MiB or while the image is decoded: a short transaction checks the permission
//! (`catalog.manage`, as for editing a product) and the product; the body is then read, sniffed,
//! decoded and thumbnailed on a blocking thread and the blobs are stored (idempotent, content
//! addressed, so a later failure leaves at most unreferenced blobs, never a half-written row);
//! a second transaction locks the product, inserts the row and its audit entry. The same bytes
//! uploaded again to the same product return the existing image.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use fleetfront_domain::api::media::{ProductImageView, UpdateProductImageRequest, UploadImageForm};
use fleetfront_domain::api::Problem;
use fleetfront_domain::media::{self, AltText, ContentHash};
use fleetfront_domain::permission::Permission;
use fleetfront_domain::{BusinessId, ErrorCode};
use serde_json::json;
use sqlx::types::Json as SqlJson;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::business::begin_staff;
use crate::app::App;
use crate::audit::{self, Event, Who};
use crate::context::Ctx;
use crate::db::{new_id, Tx};
use crate::error::{Denied, Error, Result};
use crate::extract::{
    multipart_error, read_field, too_large, ApiJson, ApiMultipart, ApiPath, Auth,
};
use crate::images::{self, Thumbnail};

/// The body limit of the upload route: the largest file plus room for the other fields and
/// the multipart framing.
const UPLOAD_BODY_LIMIT: usize = media::MAX_UPLOAD_BYTES + 64 * 1024;

/// The longest alt text field read, in bytes, before it is parsed.
const MAX_ALT_BYTES: usize = 4 * 1024;

/// Images decoded at once per server: a decoded image may take up to 256 MB
/// (`media::MAX_DECODED_BYTES`), so concurrent uploads wait their turn instead of exhausting
/// memory.
static DECODING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

pub(crate) fn routes(router: OpenApiRouter<App>) -> OpenApiRouter<App> {
    let uploads = OpenApiRouter::new()
        .routes(routes!(list_images, upload_image))
        .layer(DefaultBodyLimit::max(UPLOAD_BODY_LIMIT));
    router
        .merge(uploads)
        .routes(routes!(update_image, delete_image))
        .routes(routes!(serve_image))
}

/// Locks a product for an image change: it must exist (404) and not be archived (409).
async fn lock_product(tx: &mut Tx, business: BusinessId, id: Uuid) -> Result<()> {
    let archived: Option<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar::<_, Option<_>>(
        "SELECT archived_at FROM products WHERE business_id = $1 AND id = $2 FOR UPDATE",
    )
    .bind(business.0)
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| Error::not_found("product"))?;
    if archived.is_some() {
        return Err(Error::new(
            ErrorCode::Conflict,
            "this product is archived and cannot be edited",
        ));
    }
    Ok(())
}

/// Marks the product changed (its JSON includes its images).
async fn touch_product(tx: &mut Tx, business: BusinessId, id: Uuid) -> Result<()> {
    sqlx::query("UPDATE products SET updated_at = now() WHERE business_id = $1 AND id = $2")
        .bind(business.0)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The upload's fields: `file` (required, once) and `alt` (optional).
async fn read_form(multipart: &mut axum::extract::Multipart) -> Result<(Vec<u8>, Option<AltText>)> {
    let mut file = None;
    let mut alt = None;
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| multipart_error(&e))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "file" if file.is_none() => {
                file = Some(read_field(&mut field, media::MAX_UPLOAD_BYTES, too_large).await?);
            }
            "alt" if alt.is_none() => {
                let raw = read_field(&mut field, MAX_ALT_BYTES, || {
                    Error::field("alt", "too_long", "alt text must be at most 300 characters")
                })
                .await?;
                let text = String::from_utf8(raw)
                    .map_err(|_| Error::field("alt", "invalid", "alt text must be UTF-8"))?;
                alt = Some(text);
            }
            "file" | "alt" => {
                return Err(Error::field(&name, "duplicate", "send this field once"));
            }
            _ => {
                return Err(Error::field(
                    &name,
                    "unknown_field",
                    "unknown field; expected file and, optionally, alt",
                ));
            }
        }
    }
    let file = file.ok_or_else(|| Error::field("file", "required", "send the image as `file`"))?;
    if file.is_empty() {
        return Err(Error::field("file", "required", "the file is empty"));
    }
    let alt = match alt {
        None => None,
        Some(raw) => {
            Some(AltText::parse(&raw).map_err(|e| Error::field("alt", e.code, e.message))?)
        }
    };
    Ok((file, alt))
}

/// Adds an image to a product, as `multipart/form-data` with the image in `file` and optional
/// `alt` text. The type is judged from the bytes (JPEG, PNG or WebP), never from the file name
/// or the part's declared type. Thumbnails 160, 480 and 1024 pixels wide are made (never wider
/// than the original). The product's first image becomes its primary image. Uploading bytes the
/// product already has returns that image (200) instead of adding a duplicate.
#[utoipa::path(post, path = "/api/v1/business/products/{id}/images", tag = "catalog", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Product id")),
    request_body(content = UploadImageForm, content_type = "multipart/form-data"),
    responses((status = 201, body = ProductImageView, description = "Added"),
        (status = 200, body = ProductImageView, description = "The product already had these bytes: that image"),
        (status = 400, body = Problem, description = "A malformed multipart body"),
        (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "The product is archived, or has 20 images already"),
        (status = 413, body = Problem, description = "Larger than 10 MiB (`payload_too_large`)"),
        (status = 415, body = Problem, description = "Not multipart (`unsupported_media_type`), or not a JPEG, PNG or WebP image (`unsupported_image_type`)"),
        (status = 422, body = Problem, description = "Corrupt, truncated or larger than 8000×8000 pixels (`invalid_image`), or bad fields")))]
async fn upload_image(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiMultipart(mut multipart): ApiMultipart,
) -> Result<(StatusCode, Json<ProductImageView>)> {
    let blobs = app.blob_store()?;
    // Permission and product first, so nobody decodes images for a product they cannot edit.
    let (mut tx, _, business) = begin_staff(&app, &auth, Permission::CatalogManage).await?;
    lock_product(&mut tx, business, id).await?;
    tx.commit().await?;

    let (file, alt) = read_form(&mut multipart).await?;
    let permit = DECODING.acquire().await.map_err(Error::unexpected)?;
    let processed = tokio::task::spawn_blocking(move || images::process(file))
        .await
        .map_err(Error::unexpected)??;
    drop(permit);
    let original = Arc::new(processed.original.bytes);
    let hash = blobs
        .put(original.clone())
        .await
        .map_err(Error::unexpected)?;
    let mut thumbnails = Vec::with_capacity(processed.thumbnails.len());
    for thumbnail in processed.thumbnails {
        let byte_size = u64::try_from(thumbnail.bytes.len()).unwrap_or(u64::MAX);
        let thumb_hash = blobs
            .put(Arc::new(thumbnail.bytes))
            .await
            .map_err(Error::unexpected)?;
        thumbnails.push(Thumbnail {
            width: thumbnail.width,
            height: thumbnail.height,
            hash: thumb_hash.to_string(),
            content_type: thumbnail.kind.content_type().to_owned(),
            byte_size,
        });
    }

    let (mut tx, actor, business) = begin_staff(&app, &auth, Permission::CatalogManage).await?;
    lock_product(&mut tx, business, id).await?;
    if let Some(existing) = images::image_by_hash(&mut tx, business, id, hash.as_str()).await? {
        tx.commit().await?;
        return Ok((StatusCode::OK, Json(existing.view())));
    }
    let (count, next_order): (i64, i32) = sqlx::query_as(
        "SELECT count(*), coalesce(max(display_order) + 1, 0) FROM product_images WHERE business_id = $1 AND product_id = $2",
    )
    .bind(business.0)
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    if usize::try_from(count).unwrap_or(usize::MAX) >= media::MAX_IMAGES_PER_PRODUCT {
        return Err(Error::new(
            ErrorCode::Conflict,
            format!(
                "a product may have at most {} images; delete one first",
                media::MAX_IMAGES_PER_PRODUCT
            ),
        ));
    }
    let image_id = new_id();
    let byte_size = i64::try_from(original.len()).unwrap_or(i64::MAX);
    sqlx::query(
        "INSERT INTO product_images (business_id, id, product_id, content_hash, content_type, width, height, \
           byte_size, thumbnails, display_order, is_primary, alt_text) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 = 0, $12)",
    )
    .bind(business.0)
    .bind(image_id)
    .bind(id)
    .bind(hash.as_str())
    .bind(processed.original.kind.content_type())
    .bind(i32::try_from(processed.original.width).unwrap_or(i32::MAX))
    .bind(i32::try_from(processed.original.height).unwrap_or(i32::MAX))
    .bind(byte_size)
    .bind(SqlJson(&thumbnails))
    .bind(next_order.min(i32::try_from(media::MAX_DISPLAY_ORDER).unwrap_or(i32::MAX)))
    .bind(count)
    .bind(alt.as_ref().map(AltText::as_str))
    .execute(&mut *tx)
    .await?;
    touch_product(&mut tx, business, id).await?;
    let event = Event::ok("product_image.create", "product_image", image_id).with_details(json!({
        "product_id": id,
        "hash": hash.as_str(),
        "content_type": processed.original.kind.content_type(),
        "byte_size": byte_size,
        "alt": alt.as_ref().map(AltText::as_str),
    }));
    audit::record(&mut tx, &ctx, Who::from(&actor), Some(business), event).await?;
    let view = images::image(&mut tx, business, id, image_id)
        .await?
        .ok_or_else(|| Error::not_found("image"))?
        .view();
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// A product's images, the primary image first, then by display order.
#[utoipa::path(get, path = "/api/v1/business/products/{id}/images", tag = "catalog", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Product id")),
    responses((status = 200, body = Vec<ProductImageView>), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn list_images(
    State(app): State<App>,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Vec<ProductImageView>>> {
    let (mut tx, _, business) = begin_staff(&app, &auth, Permission::CatalogRead).await?;
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM products WHERE business_id = $1 AND id = $2)",
    )
    .bind(business.0)
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    if !exists {
        return Err(Error::not_found("product"));
    }
    let mut by_product = images::images_of(&mut tx, business, &[id]).await?;
    tx.commit().await?;
    let rows = by_product.remove(&id).unwrap_or_default();
    Ok(Json(rows.into_iter().map(images::ImageRow::view).collect()))
}

/// Changes an image: make it the primary image (the previous primary stops being one), move
/// it, or change its alt text.
#[utoipa::path(patch, path = "/api/v1/business/products/{id}/images/{image_id}", tag = "catalog", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Product id"), ("image_id" = Uuid, Path, description = "Image id")),
    request_body = UpdateProductImageRequest,
    responses((status = 200, body = ProductImageView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "The product is archived"), (status = 422, body = Problem)))]
async fn update_image(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiPath((id, image_id)): ApiPath<(Uuid, Uuid)>,
    ApiJson(req): ApiJson<UpdateProductImageRequest>,
) -> Result<Json<ProductImageView>> {
    let change = req.parse()?;
    let (mut tx, actor, business) = begin_staff(&app, &auth, Permission::CatalogManage).await?;
    lock_product(&mut tx, business, id).await?;
    images::image(&mut tx, business, id, image_id)
        .await?
        .ok_or_else(|| Error::not_found("image"))?;
    if change.is_primary == Some(true) {
        // Two statements: the partial unique index allows one primary at any moment.
        sqlx::query(
            "UPDATE product_images SET is_primary = false \
             WHERE business_id = $1 AND product_id = $2 AND is_primary AND id <> $3",
        )
        .bind(business.0)
        .bind(id)
        .bind(image_id)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        "UPDATE product_images SET is_primary = coalesce($4, is_primary), \
           display_order = coalesce($5, display_order), \
           alt_text = CASE WHEN $6 THEN $7 ELSE alt_text END \
         WHERE business_id = $1 AND product_id = $2 AND id = $3",
    )
    .bind(business.0)
    .bind(id)
    .bind(image_id)
    .bind(change.is_primary)
    .bind(change.display_order)
    .bind(change.alt.is_some())
    .bind(
        change
            .alt
            .as_ref()
            .and_then(|a| a.as_ref().map(AltText::as_str)),
    )
    .execute(&mut *tx)
    .await?;
    touch_product(&mut tx, business, id).await?;
    let event = Event::ok("product_image.update", "product_image", image_id).with_request(&req)?;
    audit::record(&mut tx, &ctx, Who::from(&actor), Some(business), event).await?;
    let view = images::image(&mut tx, business, id, image_id)
        .await?
        .ok_or_else(|| Error::not_found("image"))?
        .view();
    tx.commit().await?;
    Ok(Json(view))
}

/// Removes an image from a product. When it was the primary image, the next one in display
/// order becomes primary. The stored bytes stay (other images may share them) but are no
/// longer served once no image uses them.
#[utoipa::path(delete, path = "/api/v1/business/products/{id}/images/{image_id}", tag = "catalog", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Product id"), ("image_id" = Uuid, Path, description = "Image id")),
    responses((status = 204, description = "Removed"), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "The product is archived")))]
async fn delete_image(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiPath((id, image_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<StatusCode> {
    let (mut tx, actor, business) = begin_staff(&app, &auth, Permission::CatalogManage).await?;
    lock_product(&mut tx, business, id).await?;
    let deleted: Option<(bool, String)> = sqlx::query_as(
        "DELETE FROM product_images WHERE business_id = $1 AND product_id = $2 AND id = $3 \
         RETURNING is_primary, content_hash",
    )
    .bind(business.0)
    .bind(id)
    .bind(image_id)
    .fetch_optional(&mut *tx)
    .await?;
    let (was_primary, hash) = deleted.ok_or_else(|| Error::not_found("image"))?;
    if was_primary {
        sqlx::query(
            "UPDATE product_images SET is_primary = true WHERE business_id = $1 AND id = ( \
               SELECT id FROM product_images WHERE business_id = $1 AND product_id = $2 \
               ORDER BY display_order, created_at, id LIMIT 1)",
        )
        .bind(business.0)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    }
    touch_product(&mut tx, business, id).await?;
    let event = Event::ok("product_image.delete", "product_image", image_id)
        .with_details(json!({ "product_id": id, "hash": hash }));
    audit::record(&mut tx, &ctx, Who::from(&actor), Some(business), event).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An error of the public image route: the same problem, not audited as a denied attempt
/// (anybody may ask for any hash).
fn public_error(error: Error) -> Response {
    let mut response = error.into_response();
    response.extensions_mut().remove::<Denied>();
    response
}

/// The bytes of a product image (original or thumbnail) by their SHA-256, for anybody. The
/// content never changes for a hash, so it is cacheable forever; the ETag is the hash.
#[utoipa::path(get, path = "/api/v1/images/{hash}", tag = "catalog",
    params(("hash" = String, Path, description = "SHA-256 of the bytes, 64 lower-case hex digits")),
    responses((status = 200, description = "The bytes, as image/jpeg, image/png or image/webp"),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 400, body = Problem, description = "Not a SHA-256 hex hash"), (status = 404, body = Problem)))]
async fn serve_image(
    State(app): State<App>,
    headers: HeaderMap,
    ApiPath(hash): ApiPath<String>,
) -> Response {
    match serve(&app, &headers, &hash).await {
        Ok(response) => response,
        Err(e) => public_error(e),
    }
}

async fn serve(app: &App, request: &HeaderMap, raw: &str) -> Result<Response> {
    let hash =
        ContentHash::parse(raw).map_err(|e| Error::new(ErrorCode::MalformedRequest, e.message))?;
    let content_type: Option<String> = sqlx::query_scalar("SELECT product_image_content_type($1)")
        .bind(hash.as_str())
        .fetch_one(&app.db.pool)
        .await?;
    let content_type = content_type.ok_or_else(|| Error::not_found("image"))?;
    let etag = format!("\"{hash}\"");
    let mut headers = HeaderMap::new();
    let value = |v: &str| HeaderValue::from_str(v).map_err(Error::unexpected);
    headers.insert(header::CONTENT_TYPE, value(&content_type)?);
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    headers.insert(header::ETAG, value(&etag)?);
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    let cached = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if cached {
        return Ok((StatusCode::NOT_MODIFIED, headers).into_response());
    }
    let bytes = app
        .blob_store()?
        .get(&hash)
        .await
        .map_err(Error::unexpected)?
        .ok_or_else(|| Error::not_found("image"))?;
    Ok((StatusCode::OK, headers, bytes).into_response())
}
