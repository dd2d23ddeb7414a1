//! Delivery workflow endpoints: the driver's status reports and proof photos on the delivery it
//! holds (`/api/v1/driver/deliveries/{id}/status|proof`) and its view of a delivery, and the
//! business's view of a delivery, its proof photos and the reassignment
//! (`/api/v1/business/deliveries/{id}…`). The rules and SQL are in [`crate::delivery`].

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use fleetfront_domain::api::delivery::{
    DeliveryProofView, DeliveryStatusUpdateRequest, DeliveryView, UploadProofForm,
};
use fleetfront_domain::api::Problem;
use fleetfront_domain::auth::Claims;
use fleetfront_domain::media::{self, ContentHash};
use fleetfront_domain::permission::{AccountKind, Permission};
use fleetfront_domain::UserId;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::business::begin_staff;
use crate::app::App;
use crate::audit::{self, Event, Who};
use crate::context::Ctx;
use crate::delivery;
use crate::dispatch;
use crate::error::{Error, Result};
use crate::extract::{
    multipart_error, read_field, too_large, ApiJson, ApiMultipart, ApiPath, Auth,
};
use crate::storage::hash_of;

/// The body limit of the proof upload route: the largest photo plus the multipart framing.
const UPLOAD_BODY_LIMIT: usize = media::MAX_UPLOAD_BYTES + 64 * 1024;

pub(crate) fn routes(router: OpenApiRouter<App>) -> OpenApiRouter<App> {
    let uploads = OpenApiRouter::new()
        .routes(routes!(upload_proof))
        .layer(DefaultBodyLimit::max(UPLOAD_BODY_LIMIT));
    router
        .merge(uploads)
        .routes(routes!(report_status))
        .routes(routes!(driver_delivery))
        .routes(routes!(business_delivery))
        .routes(routes!(proof_content))
        .routes(routes!(reassign))
}

fn driver_of(claims: &Claims) -> Result<UserId> {
    if claims.kind == AccountKind::Driver {
        Ok(UserId(claims.sub))
    } else {
        Err(Error::forbidden("this endpoint is for drivers"))
    }
}

/// Reports a step of the delivery the signed-in driver holds: `arrived_at_store`, `picked_up`,
/// `arrived_at_customer`, `delivered` (with the proof photo when the business requires one, and
/// the cash collected on a cash order) or `failed` (with a reason). A `proof_sha256` whose photo
/// has not been uploaded yet is accepted: the delivery's `proof` shows `pending` until the
/// photo's upload (`PUT /api/v1/uploads/{sha256}?purpose=delivery_proof&owner={id}`) completes. Steps may be skipped (they
/// are filled in); skipping the pickup needs the device's `position` and `recorded_at`, and for
/// `delivered` a proof photo. A step the delivery has passed is recorded as `superseded`. The
/// order follows (`picked_up`, `delivered`; a delivered card order is captured), and delivering
/// records the driver's earnings. A failure before pickup offers the delivery to another
/// driver. Another driver's delivery is a 404.
#[utoipa::path(patch, path = "/api/v1/driver/deliveries/{id}/status", tag = "driver", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Delivery id")), request_body = DeliveryStatusUpdateRequest,
    responses((status = 200, body = DeliveryView), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem),
        (status = 409, body = Problem, description = "invalid_transition: proof_required, delivery_evidence_required, delivery_forbidden, reason_needs_pickup, or the order is not ready"),
        (status = 422, body = Problem, description = "Bad fields or cash: cash_amount_required, cash_not_due, invalid_cash_amount, cash_over_due, shortfall_reason_required")))]
async fn report_status(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<DeliveryStatusUpdateRequest>,
) -> Result<Json<DeliveryView>> {
    driver_of(&auth.0)?;
    Ok(Json(delivery::report(&app, &ctx, &auth.0, id, &req).await?))
}

/// The upload's one field, `photo`.
async fn read_photo(multipart: &mut axum::extract::Multipart) -> Result<Vec<u8>> {
    let mut photo = None;
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| multipart_error(&e))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "photo" if photo.is_none() => {
                photo = Some(read_field(&mut field, media::MAX_UPLOAD_BYTES, too_large).await?);
            }
            "photo" => return Err(Error::field(&name, "duplicate", "send the photo once")),
            _ => {
                return Err(Error::field(
                    &name,
                    "unknown_field",
                    "unknown field; expected photo",
                ))
            }
        }
    }
    let photo =
        photo.ok_or_else(|| Error::field("photo", "required", "send the photo as `photo`"))?;
    if photo.is_empty() {
        return Err(Error::field("photo", "required", "the photo is empty"));
    }
    Ok(photo)
}

/// Uploads a proof photo for the delivery the signed-in driver holds (`multipart/form-data`,
/// field `photo`): JPEG, PNG or WebP judged from the bytes, at most 10 MiB. Stored by its
/// SHA-256; the same photo twice is the same answer. A finished delivery takes no more photos.
#[utoipa::path(post, path = "/api/v1/driver/deliveries/{id}/proof", tag = "driver", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Delivery id")),
    request_body(content = UploadProofForm, content_type = "multipart/form-data"),
    responses((status = 201, body = DeliveryProofView),
        (status = 400, body = Problem, description = "A malformed multipart body"),
        (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "The delivery is finished"),
        (status = 413, body = Problem, description = "Larger than 10 MiB"),
        (status = 415, body = Problem, description = "Not multipart, or not a JPEG, PNG or WebP image"),
        (status = 422, body = Problem)))]
async fn upload_proof(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiMultipart(mut multipart): ApiMultipart,
) -> Result<(StatusCode, Json<DeliveryProofView>)> {
    let driver = driver_of(&auth.0)?;
    let blobs = app.blob_store()?;
    // Who is asking and for what first, so only the delivery's driver sends 10 MiB.
    let (mut tx, _) = app.db.begin_as(&auth.0).await?;
    delivery::lock_for_proof(&mut tx, driver, id).await?;
    tx.commit().await?;
    let photo = read_photo(&mut multipart).await?;
    let content_type = delivery::sniff_photo(&photo)?;
    let proof = DeliveryProofView {
        sha256: hash_of(&photo).as_str().to_owned(),
        content_type: content_type.to_owned(),
        byte_size: u32::try_from(photo.len()).unwrap_or(u32::MAX),
        uploaded_at: None,
    };
    blobs
        .put(Arc::new(photo))
        .await
        .map_err(Error::unexpected)?;
    let (mut tx, _) = app.db.begin_as(&auth.0).await?;
    let business = delivery::lock_for_proof(&mut tx, driver, id).await?;
    delivery::insert_proof(&mut tx, business, id, driver, &proof, app.clock.now()).await?;
    // The audit row is the business's: scope it so, as the last statement.
    sqlx::query("SELECT set_config('app.business_id', $1, true)")
        .bind(business.0.to_string())
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut tx,
        &ctx,
        Who::from(auth.0.as_ref()),
        Some(business),
        Event::ok("delivery.proof", "delivery", id).with_details(json!({
            "sha256": proof.sha256, "content_type": proof.content_type, "byte_size": proof.byte_size,
        })),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(proof)))
}

/// A delivery the signed-in driver holds or worked on, with its own part of the log, its
/// proofs, the cash it collected and what it earned.
#[utoipa::path(get, path = "/api/v1/driver/deliveries/{id}", tag = "driver", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Delivery id")),
    responses((status = 200, body = DeliveryView), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn driver_delivery(
    State(app): State<App>,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<DeliveryView>> {
    let driver = driver_of(&auth.0)?;
    let (mut tx, _) = app.db.begin_as(&auth.0).await?;
    let business = delivery::driver_business(&mut tx, driver, id)
        .await?
        .ok_or_else(|| Error::not_found("delivery"))?;
    let view = delivery::view(&mut tx, business, id, Some(driver)).await?;
    tx.commit().await?;
    Ok(Json(view))
}

/// One of the business's deliveries with its whole log, proof photos, cash and the driver's
/// earnings (permission `dispatch.manage`).
#[utoipa::path(get, path = "/api/v1/business/deliveries/{id}", tag = "business", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Delivery id")),
    responses((status = 200, body = DeliveryView), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn business_delivery(
    State(app): State<App>,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<DeliveryView>> {
    let (mut tx, _, business) = begin_staff(&app, &auth, Permission::DispatchManage).await?;
    let view = delivery::view(&mut tx, business, id, None).await?;
    tx.commit().await?;
    Ok(Json(view))
}

/// The bytes of a proof photo of one of the business's deliveries (permission
/// `dispatch.manage`). Never cached, never rendered as anything but its sniffed type.
#[utoipa::path(get, path = "/api/v1/business/deliveries/{id}/proof/{sha256}", tag = "business", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Delivery id"), ("sha256" = String, Path, description = "The photo's SHA-256")),
    responses((status = 200, description = "The bytes, as image/jpeg, image/png or image/webp"),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn proof_content(
    State(app): State<App>,
    auth: Auth,
    ApiPath((id, sha256)): ApiPath<(Uuid, String)>,
) -> Result<Response> {
    let blobs = app.blob_store()?;
    let hash = ContentHash::parse(&sha256).map_err(|_| Error::not_found("proof"))?;
    let (mut tx, _, business) = begin_staff(&app, &auth, Permission::DispatchManage).await?;
    let content_type: String = sqlx::query_scalar(
        "SELECT content_type FROM delivery_proofs WHERE business_id = $1 AND delivery_id = $2 AND sha256 = $3",
    )
    .bind(business.0)
    .bind(id)
    .bind(hash.as_str())
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| Error::not_found("proof"))?;
    tx.commit().await?;
    let bytes = blobs
        .get(&hash)
        .await
        .map_err(Error::unexpected)?
        .ok_or_else(|| Error::not_found("proof"))?;
    crate::storage::private_download(&content_type, bytes)
}

/// Takes a delivery off its driver before pickup (permission `dispatch.manage`): the delivery
/// goes back to `pending`, the driver is told by email, and it is offered to another driver
/// (never to this one again). After pickup it is a 409 `invalid_transition`; a delivery no
/// driver holds a 409 `conflict`.
#[utoipa::path(post, path = "/api/v1/business/deliveries/{id}/reassign", tag = "business", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Delivery id")),
    responses((status = 200, body = DeliveryView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "invalid_transition, conflict")))]
async fn reassign(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<DeliveryView>> {
    let (mut tx, actor, business) = begin_staff(&app, &auth, Permission::DispatchManage).await?;
    let now = app.clock.now();
    delivery::reassign(&mut tx, &ctx, Who::from(&actor), business, id, now).await?;
    tx.commit().await?;
    dispatch::advance(&app, business, id).await;
    let (mut tx, _, business) = begin_staff(&app, &auth, Permission::DispatchManage).await?;
    let view = delivery::view(&mut tx, business, id, None).await?;
    tx.commit().await?;
    Ok(Json(view))
}
