//! Resumable, content-addressed uploads (`../shared/design.md` section 4, "Attachments"): a
//! driver's proof photo travels in chunks addressed by the SHA-256 of the whole file, resumes
//! after a cut from the offset the server reports, and is verified before it is kept, so a
//! photo taken offline arrives exactly once and a weak link never loses what it already sent.
//!
//! The protocol (`PUT`/`GET /api/v1/uploads/{sha256}`, [`crate::api::uploads`]):
//! - A chunk names the bytes already sent (`Upload-Offset`) and the file's length
//!   (`Upload-Length`). It is appended at the offset; a chunk that starts past what arrived is
//!   refused with the current offset (409, and the `Upload-Offset` header), so the client
//!   resumes there; a chunk that repeats bytes already stored adds only its new tail (a resend
//!   after a lost answer is harmless).
//! - When the last byte arrives the whole is hashed and sniffed: a hash that differs from the
//!   address discards the partial upload (422 `hash_mismatch`); a file that is not a JPEG, PNG
//!   or WebP is discarded too. A verified file moves into the [`crate::storage::BlobStore`],
//!   where proof photos sent whole are kept as well.
//! - With `purpose=delivery_proof&owner=<delivery>` the completed photo is attached to the
//!   delivery as a `delivery_proofs` row (once, however often it is sent), when the driver
//!   holds the delivery or delivered it naming this photo ([`delivery::proof_target`]): that is
//!   how a `delivered` report made before its photo finished uploading gets its proof, and its
//!   `pending` flag clears.
//!
//! Partial bytes are kept in PostgreSQL (`upload_chunks`, at most 10 MiB per upload), not on one
//! instance's disk, so any server instance takes the next chunk. An upload belongs to the
//! account sending it (row level security: another account neither sees nor appends to it; the
//! same bytes sent by another driver are another upload). Abandoned partial uploads are removed
//! by [`purge_stale`], which an operator or a periodic job calls (nothing runs it on its own).

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use fleetfront_domain::api::delivery::DeliveryProofView;
use fleetfront_domain::api::media::{UploadView, PURPOSE_DELIVERY_PROOF};
use fleetfront_domain::auth::Claims;
use fleetfront_domain::media::{ContentHash, ImageKind, MAX_UPLOAD_BYTES, MAX_UPLOAD_CHUNK_BYTES};
use fleetfront_domain::permission::AccountKind;
use fleetfront_domain::{BusinessId, ErrorCode, UserId};
use serde_json::json;
use uuid::Uuid;

use crate::app::App;
use crate::audit::{self, Event, Who};
use crate::context::Ctx;
use crate::db::{Db, Tx};
use crate::delivery;
use crate::error::{Error, Result};
use crate::storage::hash_of;

/// How long a partial upload may sit without a new chunk before [`purge_stale`] removes it.
pub const STALE_AFTER_HOURS: i64 = 24;

/// What a completed upload is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// The proof photo of this delivery.
    DeliveryProof(Uuid),
}

impl Purpose {
    /// Parses the `purpose` and `owner` query parameters (both or neither).
    ///
    /// # Errors
    /// `validation_failed` for an unknown purpose or one without its owner (and the reverse).
    pub fn parse(purpose: Option<&str>, owner: Option<Uuid>) -> Result<Option<Purpose>> {
        match (purpose, owner) {
            (None, None) => Ok(None),
            (Some(PURPOSE_DELIVERY_PROOF), Some(id)) => Ok(Some(Purpose::DeliveryProof(id))),
            (Some(PURPOSE_DELIVERY_PROOF), None) => Err(Error::field(
                "owner",
                "required",
                "name the delivery the photo proves as `owner`",
            )),
            (None, Some(_)) => Err(Error::field(
                "purpose",
                "required",
                "say what the file is for: purpose=delivery_proof",
            )),
            (Some(_), _) => Err(Error::field(
                "purpose",
                "unknown_purpose",
                "the purpose must be delivery_proof",
            )),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Purpose::DeliveryProof(_) => PURPOSE_DELIVERY_PROOF,
        }
    }

    fn subject(self) -> Uuid {
        match self {
            Purpose::DeliveryProof(id) => id,
        }
    }
}

/// One chunk of an upload, as parsed from a request.
#[derive(Debug)]
pub struct Chunk<'a> {
    /// The address: the SHA-256 of the whole file.
    pub sha256: &'a ContentHash,
    /// The bytes the client says it sent before this chunk.
    pub offset: u64,
    /// The whole file's length.
    pub length: u64,
    /// The declared type of the whole file.
    pub content_type: ImageKind,
    /// What the file is for, if anything.
    pub purpose: Option<Purpose>,
    /// The chunk.
    pub bytes: &'a [u8],
}

/// What [`put_chunk`] did.
#[derive(Debug)]
pub enum Appended {
    /// Stored; more bytes are expected from `offset`.
    Partial(UploadView),
    /// Every byte arrived, was verified and is stored (now, or before: a repeat).
    Complete(UploadView),
    /// The chunk starts past the bytes received; nothing was stored. Resume from `offset`.
    WrongOffset(UploadView),
}

#[derive(sqlx::FromRow)]
struct UploadRow {
    length: i32,
    received: i32,
    content_type: String,
    purpose: Option<String>,
    subject_id: Option<Uuid>,
    completed_at: Option<DateTime<Utc>>,
}

impl UploadRow {
    fn view(&self, sha256: &ContentHash) -> UploadView {
        UploadView {
            sha256: sha256.as_str().to_owned(),
            size: u64::try_from(self.length).unwrap_or(0),
            offset: u64::try_from(self.received).unwrap_or(0),
            complete: self.completed_at.is_some(),
            content_type: self.content_type.clone(),
        }
    }

    /// The purpose recorded with the upload.
    fn purpose(&self) -> Option<Purpose> {
        match (self.purpose.as_deref(), self.subject_id) {
            (Some(PURPOSE_DELIVERY_PROOF), Some(id)) => Some(Purpose::DeliveryProof(id)),
            _ => None,
        }
    }
}

fn driver_of(claims: &Claims) -> Result<UserId> {
    if claims.kind == AccountKind::Driver {
        Ok(UserId(claims.sub))
    } else {
        Err(Error::forbidden("uploads are for drivers"))
    }
}

/// The 10 MiB limit of a whole file.
fn file_too_large() -> Error {
    Error::new(
        ErrorCode::PayloadTooLarge,
        format!(
            "the file is too large: at most {} MiB",
            MAX_UPLOAD_BYTES / (1024 * 1024)
        ),
    )
}

/// Checks a chunk against the protocol's limits before anything is read from the database.
fn check(chunk: &Chunk<'_>) -> Result<()> {
    if chunk.length > MAX_UPLOAD_BYTES as u64 {
        return Err(file_too_large());
    }
    if chunk.length == 0 {
        return Err(Error::field(
            "Upload-Length",
            "invalid",
            "an upload has at least one byte",
        ));
    }
    if chunk.bytes.len() > MAX_UPLOAD_CHUNK_BYTES {
        return Err(chunk_too_large());
    }
    let end = chunk.offset.saturating_add(chunk.bytes.len() as u64);
    if end > chunk.length {
        return Err(Error::field(
            "Upload-Offset",
            "past_end",
            format!(
                "the chunk ends at byte {end}, past the file's {}",
                chunk.length
            ),
        ));
    }
    // The first bytes show the type: refuse what is not a photo before 10 MiB of it arrive.
    if chunk.offset == 0 && (chunk.bytes.len() >= 16 || end == chunk.length) {
        delivery::sniff_photo(chunk.bytes)?;
    }
    Ok(())
}

/// The `payload_too_large` answer to a chunk over 1 MiB.
pub fn chunk_too_large() -> Error {
    Error::new(
        ErrorCode::PayloadTooLarge,
        format!(
            "a chunk is at most {} KiB; send the file in smaller parts",
            MAX_UPLOAD_CHUNK_BYTES / 1024
        ),
    )
}

async fn lock_upload(
    tx: &mut Tx,
    owner: UserId,
    sha256: &ContentHash,
) -> Result<Option<UploadRow>> {
    Ok(sqlx::query_as(
        "SELECT length, received, content_type, purpose, subject_id, completed_at FROM uploads \
          WHERE owner_id = $1 AND sha256 = $2 FOR UPDATE",
    )
    .bind(owner.0)
    .bind(sha256.as_str())
    .fetch_optional(&mut **tx)
    .await?)
}

/// Appends a chunk to the signed-in driver's upload `chunk.sha256` (created by its first
/// chunk), and completes it when the last byte arrives: verified, moved into the blob store
/// and, with a purpose, attached (see the module's description).
///
/// # Errors
/// `forbidden` for principals other than drivers; `payload_too_large` past 10 MiB a file or
/// 1 MiB a chunk; `validation_failed` for bad headers, a chunk past the declared length and
/// `hash_mismatch` (the partial upload is discarded); `unsupported_image_type` (discarded as
/// well); `conflict` for a length other than the upload's; the purpose's errors
/// ([`delivery::proof_target`]); blob store and database errors.
pub async fn put_chunk(
    app: &App,
    ctx: &Ctx,
    claims: &Claims,
    chunk: &Chunk<'_>,
) -> Result<Appended> {
    driver_of(claims)?;
    check(chunk)?;
    let (mut tx, _) = app.db.begin_as(claims).await?;
    let step = append(app, &mut tx, ctx, claims, chunk).await;
    let keep = match &step {
        Ok(Step::Keep(_) | Step::Discarded(_)) => true,
        Ok(Step::Undo(_)) | Err(_) => false,
    };
    if keep {
        tx.commit().await?;
    } else if let Err(e) = tx.rollback().await {
        // Release the upload's row lock now, not when the connection is next used.
        tracing::warn!(error = %e, "rollback of a refused upload chunk failed");
    }
    match step? {
        Step::Keep(appended) | Step::Undo(appended) => Ok(appended),
        Step::Discarded(refusal) => Err(refusal),
    }
}

/// How [`append`] leaves its transaction.
enum Step {
    /// Commit, and answer this.
    Keep(Appended),
    /// Roll back (nothing changed), and answer this.
    Undo(Appended),
    /// Commit the discarded upload, and answer this error.
    Discarded(Error),
}

/// The chunk itself, in the driver's transaction `tx`.
async fn append(
    app: &App,
    tx: &mut Tx,
    ctx: &Ctx,
    claims: &Claims,
    chunk: &Chunk<'_>,
) -> Result<Step> {
    let driver = UserId(claims.sub);
    let blobs = app.blob_store()?;
    let now = app.clock.now();
    let sha = chunk.sha256;
    // Who may attach to what first, so a driver sends no bytes for somebody else's delivery.
    if let Some(Purpose::DeliveryProof(id)) = chunk.purpose {
        delivery::proof_target(tx, driver, id, sha.as_str()).await?;
    }
    sqlx::query(
        "INSERT INTO uploads (owner_id, sha256, length, content_type, purpose, subject_id, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT (owner_id, sha256) DO NOTHING",
    )
    .bind(driver.0)
    .bind(sha.as_str())
    .bind(i32::try_from(chunk.length).map_err(|_| file_too_large())?)
    .bind(chunk.content_type.content_type())
    .bind(chunk.purpose.map(Purpose::as_str))
    .bind(chunk.purpose.map(Purpose::subject))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    let mut row = lock_upload(tx, driver, sha).await?.ok_or_else(|| {
        Error::unexpected(anyhow::anyhow!("the upload just written is not visible"))
    })?;
    if let Some(purpose) = chunk.purpose.filter(|p| row.purpose() != Some(*p)) {
        // The latest purpose named wins (a client may name it only from a later chunk on).
        sqlx::query(
            "UPDATE uploads SET purpose = $3, subject_id = $4 WHERE owner_id = $1 AND sha256 = $2",
        )
        .bind(driver.0)
        .bind(sha.as_str())
        .bind(purpose.as_str())
        .bind(purpose.subject())
        .execute(&mut **tx)
        .await?;
        row.purpose = Some(purpose.as_str().to_owned());
        row.subject_id = Some(purpose.subject());
    }
    if row.completed_at.is_some() {
        // A repeat of a finished upload: the same answer, and the attachment if it was missed.
        if let Some(purpose) = row.purpose() {
            attach(tx, ctx, claims, purpose, &row, sha, now).await?;
        }
        return Ok(Step::Keep(Appended::Complete(row.view(sha))));
    }
    if u64::try_from(row.length).ok() != Some(chunk.length) {
        return Err(Error::field(
            "Upload-Length",
            "length_mismatch",
            format!(
                "this upload was started with Upload-Length {}; send the same file",
                row.length
            ),
        )
        .with_code(ErrorCode::Conflict));
    }
    let received = u64::try_from(row.received).unwrap_or(0);
    if chunk.offset > received {
        return Ok(Step::Undo(Appended::WrongOffset(row.view(sha))));
    }
    // A resent chunk overlaps what arrived: keep only its new tail.
    let skip = usize::try_from(received - chunk.offset).unwrap_or(usize::MAX);
    let fresh = chunk.bytes.get(skip..).unwrap_or_default();
    if !fresh.is_empty() {
        sqlx::query(
            "INSERT INTO upload_chunks (owner_id, sha256, byte_offset, data) VALUES ($1, $2, $3, $4)",
        )
        .bind(driver.0)
        .bind(sha.as_str())
        .bind(row.received)
        .bind(fresh)
        .execute(&mut **tx)
        .await?;
        let added = i32::try_from(fresh.len()).map_err(|_| chunk_too_large())?;
        row.received += added;
        sqlx::query(
            "UPDATE uploads SET received = $3, updated_at = $4 WHERE owner_id = $1 AND sha256 = $2",
        )
        .bind(driver.0)
        .bind(sha.as_str())
        .bind(row.received)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    if row.received < row.length {
        return Ok(Step::Keep(Appended::Partial(row.view(sha))));
    }
    // The last byte arrived: the whole must be what its address says, and a photo.
    let parts: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT data FROM upload_chunks WHERE owner_id = $1 AND sha256 = $2 ORDER BY byte_offset",
    )
    .bind(driver.0)
    .bind(sha.as_str())
    .fetch_all(&mut **tx)
    .await?;
    let bytes = parts.concat();
    let (bytes, hash, sniffed) = tokio::task::spawn_blocking(move || {
        let hash = hash_of(&bytes);
        let sniffed = delivery::sniff_photo(&bytes);
        (bytes, hash, sniffed)
    })
    .await
    .map_err(Error::unexpected)?;
    let refusal = if hash != *sha {
        Some(Error::field(
            "sha256",
            "hash_mismatch",
            "the bytes received do not have this SHA-256; the upload was discarded, send the file again",
        ))
    } else {
        sniffed.as_ref().err().map(|_| {
            Error::new(
                ErrorCode::UnsupportedImageType,
                "the file is not a JPEG, PNG or WebP image; the upload was discarded",
            )
        })
    };
    if let Some(refusal) = refusal {
        discard(tx, driver, sha).await?;
        return Ok(Step::Discarded(refusal));
    }
    let content_type = sniffed?;
    blobs
        .put(Arc::new(bytes))
        .await
        .map_err(Error::unexpected)?;
    sqlx::query(
        "UPDATE uploads SET completed_at = $3, updated_at = $3, content_type = $4 \
          WHERE owner_id = $1 AND sha256 = $2",
    )
    .bind(driver.0)
    .bind(sha.as_str())
    .bind(now)
    .bind(content_type)
    .execute(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM upload_chunks WHERE owner_id = $1 AND sha256 = $2")
        .bind(driver.0)
        .bind(sha.as_str())
        .execute(&mut **tx)
        .await?;
    row.completed_at = Some(now);
    content_type.clone_into(&mut row.content_type);
    if let Some(purpose) = row.purpose() {
        attach(tx, ctx, claims, purpose, &row, sha, now).await?;
    }
    Ok(Step::Keep(Appended::Complete(row.view(sha))))
}

/// Removes a partial upload and its bytes.
async fn discard(tx: &mut Tx, owner: UserId, sha256: &ContentHash) -> Result<()> {
    sqlx::query("DELETE FROM uploads WHERE owner_id = $1 AND sha256 = $2")
        .bind(owner.0)
        .bind(sha256.as_str())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Attaches a completed upload to what it is for, once: a delivery's proof photo (with its
/// audit row the first time).
async fn attach(
    tx: &mut Tx,
    ctx: &Ctx,
    claims: &Claims,
    purpose: Purpose,
    row: &UploadRow,
    sha256: &ContentHash,
    now: DateTime<Utc>,
) -> Result<()> {
    let Purpose::DeliveryProof(id) = purpose;
    let driver = UserId(claims.sub);
    let business = delivery::proof_target(tx, driver, id, sha256.as_str()).await?;
    let attached: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM delivery_proofs WHERE business_id = $1 AND delivery_id = $2 AND sha256 = $3)",
    )
    .bind(business.0)
    .bind(id)
    .bind(sha256.as_str())
    .fetch_one(&mut **tx)
    .await?;
    if attached {
        return Ok(());
    }
    let proof = DeliveryProofView {
        sha256: sha256.as_str().to_owned(),
        content_type: row.content_type.clone(),
        byte_size: u32::try_from(row.length).unwrap_or(u32::MAX),
        uploaded_at: None,
    };
    delivery::insert_proof(tx, business, id, driver, &proof, now).await?;
    audit_attached(tx, ctx, claims, business, id, &proof).await
}

/// The audit row of an attached proof, the business's: scoped so, as the transaction's last
/// statement (as the whole-photo upload does).
async fn audit_attached(
    tx: &mut Tx,
    ctx: &Ctx,
    claims: &Claims,
    business: BusinessId,
    id: Uuid,
    proof: &DeliveryProofView,
) -> Result<()> {
    sqlx::query("SELECT set_config('app.business_id', $1, true)")
        .bind(business.0.to_string())
        .execute(&mut **tx)
        .await?;
    audit::record(
        tx,
        ctx,
        Who::from(claims),
        Some(business),
        Event::ok("delivery.proof", "delivery", id).with_details(json!({
            "sha256": proof.sha256, "content_type": proof.content_type,
            "byte_size": proof.byte_size, "via": "upload",
        })),
    )
    .await
}

/// How far the signed-in driver's upload `sha256` has got.
///
/// # Errors
/// `forbidden` for principals other than drivers; `not_found` for an upload this driver never
/// started (another account's upload is invisible); database errors.
pub async fn status(app: &App, claims: &Claims, sha256: &ContentHash) -> Result<UploadView> {
    let driver = driver_of(claims)?;
    let (mut tx, _) = app.db.begin_as(claims).await?;
    let row: Option<UploadRow> = sqlx::query_as(
        "SELECT length, received, content_type, purpose, subject_id, completed_at FROM uploads \
          WHERE owner_id = $1 AND sha256 = $2",
    )
    .bind(driver.0)
    .bind(sha256.as_str())
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    row.map(|r| r.view(sha256))
        .ok_or_else(|| Error::not_found("upload"))
}

/// Removes every partial upload whose last chunk is older than [`STALE_AFTER_HOURS`] before
/// `now`, with its bytes, and returns how many went. Completed uploads stay (a few bytes each;
/// they answer a repeated upload at once). Nothing calls this on its own: run it from a
/// periodic job or an operator's command.
///
/// # Errors
/// Database errors.
pub async fn purge_stale(db: &Db, now: DateTime<Utc>) -> Result<u64> {
    let before = now - Duration::hours(STALE_AFTER_HOURS);
    let gone: i32 = sqlx::query_scalar("SELECT purge_stale_uploads($1)")
        .bind(before)
        .fetch_one(&db.pool)
        .await?;
    Ok(u64::try_from(gone).unwrap_or(0))
}
