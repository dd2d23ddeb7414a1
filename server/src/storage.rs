//! The blob store: immutable bytes addressed by their SHA-256 (product images and their
//! thumbnails now, delivery proof photos later). Nothing here knows what the bytes are; callers
//! keep the metadata (type, size, owner) in PostgreSQL, where row level security applies.
//!
//! [`BlobStore`] is the one trait; [`LocalDiskStore`] keeps blobs under a directory (by default
//! `<data dir>/blobs`, or `FLEETFRONT_BLOB_DIR`). An S3-compatible store can implement the same
//! trait later.
//!
//! Writes are atomic and idempotent: the bytes go to a temporary file in the same directory
//! tree, are synced, and are renamed onto their address, so a reader sees a whole blob or none,
//! and putting the same bytes twice (or concurrently) leaves one identical file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fleetfront_domain::media::ContentHash;
use sha2::{Digest, Sha256};

/// A boxed future, so the trait stays object safe (`Arc<dyn BlobStore>`).
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// A failure of the blob store.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The file system failed.
    #[error("blob store i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A blocking task did not finish (the runtime is shutting down).
    #[error("blob store task failed: {0}")]
    Task(String),
}

impl StorageError {
    /// Whether retrying later may succeed.
    pub fn is_retryable(&self) -> bool {
        true
    }
}

/// The SHA-256 of `bytes`, as a content hash.
pub fn hash_of(bytes: &[u8]) -> ContentHash {
    let digest = Sha256::digest(bytes);
    ContentHash::parse(&hex::encode(digest)).expect("hex of a SHA-256 digest is a content hash")
}

/// Immutable blobs addressed by the SHA-256 of their bytes.
pub trait BlobStore: Send + Sync + std::fmt::Debug {
    /// Stores `bytes` and returns their hash. Idempotent: bytes already stored are not written
    /// again.
    fn put(&self, bytes: Arc<Vec<u8>>) -> BoxFuture<'_, Result<ContentHash, StorageError>>;

    /// The bytes stored under `hash`, if any.
    fn get<'a>(
        &'a self,
        hash: &'a ContentHash,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StorageError>>;

    /// Whether a blob is stored under `hash`.
    fn exists<'a>(&'a self, hash: &'a ContentHash) -> BoxFuture<'a, Result<bool, StorageError>>;
}

/// Blobs as files under one directory: `<root>/<h[0..2]>/<h[2..4]>/<hash>`, with temporary
/// files in `<root>/tmp` (same file system, so the final rename is atomic).
#[derive(Clone, Debug)]
pub struct LocalDiskStore {
    root: PathBuf,
}

impl LocalDiskStore {
    /// A store under `root`, created if missing.
    ///
    /// # Errors
    /// When the directory cannot be created.
    pub fn open(root: impl Into<PathBuf>) -> Result<LocalDiskStore, StorageError> {
        let root = root.into();
        std::fs::create_dir_all(root.join("tmp"))?;
        Ok(LocalDiskStore { root })
    }

    /// A store under `root`; directories are created by the first write.
    pub fn new(root: impl Into<PathBuf>) -> LocalDiskStore {
        LocalDiskStore { root: root.into() }
    }

    /// The directory blobs live under.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob `hash` lives.
    pub fn path_of(&self, hash: &ContentHash) -> PathBuf {
        let h = hash.as_str();
        self.root.join(&h[0..2]).join(&h[2..4]).join(h)
    }

    fn put_blocking(&self, bytes: &[u8]) -> Result<ContentHash, StorageError> {
        let hash = hash_of(bytes);
        let path = self.path_of(&hash);
        if path.is_file() {
            return Ok(hash);
        }
        let dir = path.parent().expect("a blob path has a parent directory");
        std::fs::create_dir_all(dir)?;
        std::fs::create_dir_all(self.root.join("tmp"))?;
        let tmp = self.root.join("tmp").join(format!(
            "{}.{}.tmp",
            hash.as_str(),
            uuid::Uuid::new_v4().simple()
        ));
        let written = (|| -> std::io::Result<()> {
            let mut file = std::fs::OpenOptions::new()
                .create_new(true)
                .write(true)
                .open(&tmp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            // Make the rename itself durable (best effort: not every file system allows it).
            if let Ok(dir) = std::fs::File::open(dir) {
                let _ = dir.sync_all();
            }
            Ok(())
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(e.into());
        }
        Ok(hash)
    }
}

impl BlobStore for LocalDiskStore {
    fn put(&self, bytes: Arc<Vec<u8>>) -> BoxFuture<'_, Result<ContentHash, StorageError>> {
        let store = self.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || store.put_blocking(&bytes))
                .await
                .map_err(|e| StorageError::Task(e.to_string()))?
        })
    }

    fn get<'a>(
        &'a self,
        hash: &'a ContentHash,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StorageError>> {
        Box::pin(async move {
            match tokio::fs::read(self.path_of(hash)).await {
                Ok(bytes) => Ok(Some(bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
    }

    fn exists<'a>(&'a self, hash: &'a ContentHash) -> BoxFuture<'a, Result<bool, StorageError>> {
        Box::pin(async move { Ok(tokio::fs::try_exists(self.path_of(hash)).await?) })
    }
}

/// Answers a private upload (a proof photo, a driver's document) to the one reader allowed to
/// see it: never cached, never sniffed into another type, and sandboxed should a browser open
/// it directly.
///
/// # Errors
/// A stored content type that is not a valid header value (the upload checks make it one).
pub fn private_download(
    content_type: &str,
    bytes: Vec<u8>,
) -> crate::error::Result<axum::response::Response> {
    use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
    use axum::response::IntoResponse;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type).map_err(crate::error::Error::unexpected)?,
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    Ok((StatusCode::OK, headers, bytes).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_is_idempotent_and_addressed_by_sha256() {
        let root = std::env::temp_dir().join(format!("ff-blobs-{}", uuid::Uuid::new_v4()));
        let store = LocalDiskStore::open(&root).expect("open");
        let bytes = Arc::new(b"hello".to_vec());
        let hash = store.put(bytes.clone()).await.expect("put");
        assert_eq!(
            hash.as_str(),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(store.put(bytes).await.expect("again"), hash);
        assert!(store.exists(&hash).await.expect("exists"));
        assert_eq!(
            store.get(&hash).await.expect("get").as_deref(),
            Some(&b"hello"[..])
        );
        let other = hash_of(b"other");
        assert!(!store.exists(&other).await.expect("exists"));
        assert_eq!(store.get(&other).await.expect("get"), None);
        let leftovers = std::fs::read_dir(root.join("tmp")).expect("tmp").count();
        assert_eq!(leftovers, 0, "no temporary files are left behind");
        std::fs::remove_dir_all(root).ok();
    }
}
