//! The attachment queue (`../shared/design.md` section 4, "Attachments"): proof photos taken on
//! the device wait here, content-addressed, until they reach the server through its resumable
//! upload (`PUT`/`GET /api/v1/uploads/{sha256}`), independently of the outbox.
//!
//! [`attach_file`] hashes a file, copies it into the app's attachments directory under its
//! SHA-256 (the same photo twice is one file and one queue entry) and queues it. The mutation
//! that names the photo (a `delivered` step with `proof_sha256`) goes through the outbox at
//! once: the server accepts it with the proof `pending`, so a photo never holds "delivered"
//! back on a weak link. [`upload_pending`], called by the sync engine after its push, then
//! sends each queued file: it asks the server how far the upload got, sends the rest in chunks
//! of [`CHUNK_BYTES`] and records the progress after each chunk, so a cut costs at most one
//! chunk and the next round resumes where the server stands. When the last chunk lands the
//! server verifies the hash and attaches the photo to its delivery, exactly once.
//!
//! A failure is recorded on the entry (`attempts`, `last_error`) and the queue goes on with the
//! next file; only an offline network stops the round, since nothing else would get through. A
//! refusal no retry can change (the delivery is not this driver's, the file is not a photo or
//! does not match its hash) ends the entry's tries: it is marked done with its `last_error` kept
//! and its `uploaded` short of its `size`, so the app can show the photo as refused; the file
//! stays in the directory.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use fleetfront_domain::api::media::UploadView;
use fleetfront_domain::media::MAX_UPLOAD_BYTES;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::http::{ApiClient, ApiError};
use crate::store::{Store, StoreError};

/// The size of the chunks [`upload_pending`] sends (256 KiB; the server takes up to 1 MiB).
pub const CHUNK_BYTES: usize = 256 * 1024;

/// How often one round follows the server's "resume from here" for one file before it gives
/// the file up for this round (a server and a client that disagree must not loop).
const MAX_REWINDS: usize = 3;

/// A failure of the attachment queue.
#[derive(Debug, thiserror::Error)]
pub enum AttachmentError {
    /// Reading or copying the file failed.
    #[error("attachment file: {0}")]
    Io(#[from] std::io::Error),
    /// The local database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The file is larger than the server takes.
    #[error("the file has {size} bytes; at most {max} are accepted")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The file is empty or not a JPEG, PNG or WebP image.
    #[error("the file is not a JPEG, PNG or WebP image")]
    Unsupported,
    /// A blocking task did not finish (the runtime is shutting down).
    #[error("attachment task failed: {0}")]
    Task(String),
}

impl AttachmentError {
    /// Whether trying again later may succeed (a busy database, a file system hiccup).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Io(_) | Self::Task(_) => true,
            Self::Store(e) => e.is_retryable(),
            Self::TooLarge { .. } | Self::Unsupported => false,
        }
    }
}

/// One queued file, as the `attachments` table keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// The SHA-256 of the file, in hex: its address on the device and on the server.
    pub sha256: String,
    /// What it is for (`delivery_proof`).
    pub purpose: String,
    /// What it belongs to (the delivery's id).
    pub owner_id: String,
    /// `image/jpeg`, `image/png` or `image/webp`, judged from the bytes.
    pub content_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// Where the copy in the attachments directory is.
    pub path: PathBuf,
    /// Bytes the server is known to hold.
    pub uploaded: u64,
    /// Uploaded and verified, or given up (then `last_error` says why).
    pub done: bool,
    /// Failed tries.
    pub attempts: u32,
    /// The last failure, in words.
    pub last_error: Option<String>,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
}

/// One chunk of a resumable upload, for [`ApiClient::upload_chunk`].
#[derive(Clone, Debug)]
pub struct UploadChunk<'a> {
    /// The whole file's SHA-256, in hex.
    pub sha256: &'a str,
    /// Where the chunk starts: the bytes already sent.
    pub offset: u64,
    /// The whole file's length.
    pub length: u64,
    /// The whole file's type.
    pub content_type: &'a str,
    /// What the completed file is for (`delivery_proof`).
    pub purpose: &'a str,
    /// What it belongs to (the delivery's id).
    pub owner_id: &'a str,
    /// The chunk's bytes.
    pub bytes: Vec<u8>,
}

/// The server's answer to a chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChunkAnswer {
    /// Stored: the upload's progress (`complete` once the file is verified).
    Stored(UploadView),
    /// The chunk started past what the server holds; resume from this offset.
    Resume(u64),
}

/// What one [`upload_pending`] round did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UploadReport {
    /// Files now complete on the server.
    pub completed: usize,
    /// Files that failed this round and will be tried again.
    pub failed: usize,
    /// Files the server refused for good (marked done, with their error).
    pub refused: usize,
    /// Bytes of file content sent this round.
    pub bytes_sent: u64,
    /// Whether the round stopped because the server could not be reached.
    pub offline: bool,
}

/// Judges a photo's type from its first bytes, as the server does.
fn sniff(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if head.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        Some("image/png")
    } else if head.len() >= 12 && head.starts_with(b"RIFF") && &head[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// The SHA-256 of `bytes` in lower-case hex.
fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Queues the file at `source` for upload as `purpose` of `owner_id` (a proof photo:
/// `"delivery_proof"` and the delivery's id): hashes it, copies it into `attachments_dir` named
/// by its SHA-256 and records it in the store. Returns the SHA-256, to be named by the mutation
/// the file belongs to (`proof_sha256`). The same photo twice is one file and one entry (the
/// first one's purpose stays). Blocking, like the store: async callers run it in
/// `tokio::task::spawn_blocking`.
///
/// # Errors
/// [`AttachmentError::TooLarge`] over 10 MiB, [`AttachmentError::Unsupported`] for anything but
/// a JPEG, PNG or WebP image, I/O and store errors.
pub fn attach_file(
    store: &Store,
    purpose: &str,
    owner_id: Uuid,
    source: &Path,
    attachments_dir: &Path,
) -> Result<String, AttachmentError> {
    let size = std::fs::metadata(source)?.len();
    let max = MAX_UPLOAD_BYTES as u64;
    if size > max {
        return Err(AttachmentError::TooLarge { size, max });
    }
    let bytes = std::fs::read(source)?;
    let content_type = sniff(&bytes).ok_or(AttachmentError::Unsupported)?;
    let sha256 = sha256_hex(&bytes);
    std::fs::create_dir_all(attachments_dir)?;
    let path = attachments_dir.join(&sha256);
    if !path.is_file() {
        // Written aside and renamed, so a crash never leaves a partial file under the hash.
        let tmp = attachments_dir.join(format!("{sha256}.{}.tmp", Uuid::new_v4().simple()));
        let written = (|| -> std::io::Result<()> {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &path)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(e.into());
        }
    }
    store.insert_attachment(&Attachment {
        sha256: sha256.clone(),
        purpose: purpose.to_owned(),
        owner_id: owner_id.to_string(),
        content_type: content_type.to_owned(),
        size: bytes.len() as u64,
        path,
        uploaded: 0,
        done: false,
        attempts: 0,
        last_error: None,
        created_at: crate::now(),
    })?;
    Ok(sha256)
}

/// Runs a store call on a blocking thread.
async fn blocking<T, F>(store: &Arc<Store>, f: F) -> Result<T, AttachmentError>
where
    T: Send + 'static,
    F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
{
    let store = Arc::clone(store);
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .map_err(|e| AttachmentError::Task(e.to_string()))?
        .map_err(AttachmentError::Store)
}

/// Reads `len` bytes of the file at `path` from `offset`, on a blocking thread.
async fn read_chunk(path: PathBuf, offset: u64, len: usize) -> Result<Vec<u8>, AttachmentError> {
    tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
        let mut file = std::fs::File::open(path)?;
        file.seek(SeekFrom::Start(offset))?;
        let mut bytes = vec![0; len];
        file.read_exact(&mut bytes)?;
        Ok(bytes)
    })
    .await
    .map_err(|e| AttachmentError::Task(e.to_string()))?
    .map_err(AttachmentError::Io)
}

/// How one file's upload ended this round.
enum Outcome {
    Complete,
    /// Worth another try later.
    Failed(String),
    /// The server refused it for good.
    Refused(String),
    /// The server could not be reached.
    Offline(String),
}

fn judge(e: &ApiError) -> Outcome {
    if e.is_offline() {
        Outcome::Offline(e.to_string())
    } else if e.is_retryable() || e.is_unauthenticated() {
        Outcome::Failed(e.to_string())
    } else {
        Outcome::Refused(e.to_string())
    }
}

/// Uploads every queued file that is not done yet, oldest first (see the module's
/// description), and reports what happened. The sync engine calls it after its push, so the
/// mutations that name the photos are never held back by them.
///
/// # Errors
/// Store errors and blocking-task failures only; a file's failure is recorded on its entry
/// and the round goes on.
pub async fn upload_pending(
    store: &Arc<Store>,
    api: &ApiClient,
) -> Result<UploadReport, AttachmentError> {
    let mut report = UploadReport::default();
    for attachment in blocking(store, Store::pending_attachments).await? {
        let sha = attachment.sha256.clone();
        let outcome = match upload_one(store, api, &attachment, &mut report).await {
            Ok(outcome) => outcome,
            // The local copy is gone or unreadable: nothing to send, now or later.
            Err(AttachmentError::Io(e)) => Outcome::Refused(format!("attachment file: {e}")),
            Err(e) => return Err(e),
        };
        match outcome {
            Outcome::Complete => {
                blocking(store, move |s| s.finish_attachment(&sha)).await?;
                report.completed += 1;
            }
            Outcome::Failed(error) => {
                blocking(store, move |s| s.fail_attachment(&sha, &error, false)).await?;
                report.failed += 1;
            }
            Outcome::Refused(error) => {
                blocking(store, move |s| s.fail_attachment(&sha, &error, true)).await?;
                report.refused += 1;
            }
            Outcome::Offline(error) => {
                blocking(store, move |s| s.fail_attachment(&sha, &error, false)).await?;
                report.failed += 1;
                report.offline = true;
                break;
            }
        }
    }
    Ok(report)
}

/// Sends what the server lacks of one file.
async fn upload_one(
    store: &Arc<Store>,
    api: &ApiClient,
    a: &Attachment,
    report: &mut UploadReport,
) -> Result<Outcome, AttachmentError> {
    let mut offset = match api.upload_status(&a.sha256).await {
        Ok(Some(view)) if view.complete => return Ok(Outcome::Complete),
        Ok(Some(view)) => view.offset,
        Ok(None) => 0,
        Err(e) => return Ok(judge(&e)),
    };
    let mut rewinds = 0;
    loop {
        let sha = a.sha256.clone();
        blocking(store, move |s| s.set_attachment_uploaded(&sha, offset)).await?;
        if offset >= a.size {
            // The server holds every byte but has not completed: it will not from here.
            return Ok(Outcome::Failed(format!(
                "the server holds all {} bytes but has not completed the upload",
                a.size
            )));
        }
        let len = usize::try_from((a.size - offset).min(CHUNK_BYTES as u64)).unwrap_or(CHUNK_BYTES);
        let bytes = read_chunk(a.path.clone(), offset, len).await?;
        let chunk = UploadChunk {
            sha256: &a.sha256,
            offset,
            length: a.size,
            content_type: &a.content_type,
            purpose: &a.purpose,
            owner_id: &a.owner_id,
            bytes,
        };
        match api.upload_chunk(chunk).await {
            Ok(ChunkAnswer::Stored(view)) => {
                report.bytes_sent += len as u64;
                if view.complete {
                    return Ok(Outcome::Complete);
                }
                offset = view.offset;
            }
            Ok(ChunkAnswer::Resume(at)) => {
                rewinds += 1;
                if rewinds > MAX_REWINDS {
                    return Ok(Outcome::Failed(format!(
                        "the server keeps asking to resume from byte {at}"
                    )));
                }
                offset = at;
            }
            Err(e) => return Ok(judge(&e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn photos_are_judged_by_their_first_bytes() {
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("image/jpeg"));
        assert_eq!(
            sniff(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0]),
            Some("image/png")
        );
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff(b"RIFF\0\0\0\0WAVE"), None);
        assert_eq!(sniff(b"hello"), None);
        assert_eq!(sniff(b""), None);
    }

    #[test]
    fn the_hash_is_lower_case_hex_sha256() {
        assert_eq!(
            sha256_hex(b"hello"),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
    }
}
