//! The attachment queue against a small stand-in of the server's resumable upload protocol
//! (`PUT`/`GET /api/v1/uploads/{sha256}`: offsets, resume, the hash checked at the end), reached
//! through a TCP relay that can cut the network in the middle of a request. The queue against
//! the real server is tested in the server's `tests/uploads.rs`; here the cut falls inside one
//! round, between two chunks of the same file.

#![allow(clippy::unwrap_used)] // A failed unwrap in a test is a failed test.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use fleetfront_core::attachments::{self, AttachmentError, UploadReport};
use fleetfront_core::{ApiClient, Store};
use fleetfront_domain::api::media::UploadView;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use uuid::Uuid;

const KIB: usize = 1024;

/// A relay in front of the stand-in: while down, every connection (open or new) is dropped.
struct Relay {
    up: AtomicBool,
    connections: Mutex<Vec<JoinHandle<()>>>,
}

impl Relay {
    /// Starts a relay to `target`; returns its address.
    async fn start(target: SocketAddr) -> (SocketAddr, Arc<Relay>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let relay = Arc::new(Relay {
            up: AtomicBool::new(true),
            connections: Mutex::new(Vec::new()),
        });
        let accepting = Arc::clone(&relay);
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if !accepting.up.load(Ordering::SeqCst) {
                    continue; // Dropped: the client sees the connection close.
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                accepting.connections.lock().unwrap().push(task);
            }
        });
        (addr, relay)
    }

    /// Cuts the network: open connections break, new ones are dropped.
    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for task in self.connections.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    fn resume(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// One upload as the stand-in keeps it.
struct Upload {
    length: usize,
    data: Vec<u8>,
    complete: bool,
    content_type: String,
}

impl Upload {
    fn view(&self, sha: &str) -> UploadView {
        UploadView {
            sha256: sha.to_owned(),
            size: self.length as u64,
            offset: self.data.len() as u64,
            complete: self.complete,
            content_type: self.content_type.clone(),
        }
    }
}

/// What the stand-in holds and saw.
#[derive(Default)]
struct Server {
    uploads: HashMap<String, Upload>,
    /// Every chunk that reached the handler: (sha256, offset, length, purpose, owner).
    chunks: Vec<(String, usize, usize, String, String)>,
    /// Cut the network when the handler receives this chunk (counted from 1), before storing it.
    cut_at_chunk: Option<usize>,
    relay: Option<Arc<Relay>>,
}

type Shared = Arc<Mutex<Server>>;

fn problem(status: StatusCode, code: &str, field_code: Option<&str>) -> Response {
    let errors = match field_code {
        Some(c) => json!([{"field": "sha256", "code": c, "message": c}]),
        None => json!([]),
    };
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        Json(
            json!({"type": "about:blank", "title": "t", "status": status.as_u16(),
                    "detail": code, "code": code, "errors": errors}),
        ),
    )
        .into_response()
}

fn signed_in(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some("Bearer tok")
}

fn number(headers: &HeaderMap, name: &str) -> Option<usize> {
    headers.get(name)?.to_str().ok()?.parse().ok()
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn status(
    State(server): State<Shared>,
    headers: HeaderMap,
    Path(sha): Path<String>,
) -> Response {
    if !signed_in(&headers) {
        return problem(StatusCode::UNAUTHORIZED, "unauthenticated", None);
    }
    match server.lock().unwrap().uploads.get(&sha) {
        Some(upload) => Json(upload.view(&sha)).into_response(),
        None => problem(StatusCode::NOT_FOUND, "not_found", None),
    }
}

#[derive(Deserialize)]
struct Purpose {
    purpose: String,
    owner: String,
}

async fn put_chunk(
    State(server): State<Shared>,
    headers: HeaderMap,
    Path(sha): Path<String>,
    Query(purpose): Query<Purpose>,
    body: Bytes,
) -> Response {
    if !signed_in(&headers) {
        return problem(StatusCode::UNAUTHORIZED, "unauthenticated", None);
    }
    let (Some(offset), Some(length)) = (
        number(&headers, "upload-offset"),
        number(&headers, "upload-length"),
    ) else {
        return problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", None);
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let cut = {
        let mut s = server.lock().unwrap();
        s.chunks.push((
            sha.clone(),
            offset,
            body.len(),
            purpose.purpose,
            purpose.owner,
        ));
        let relay = s.relay.clone();
        (s.cut_at_chunk == Some(s.chunks.len())).then_some(relay)
    };
    if let Some(relay) = cut {
        // The network goes down while this chunk is in flight: it is never stored, and no
        // answer ever leaves.
        relay.unwrap().cut();
        std::future::pending::<()>().await;
    }
    let mut s = server.lock().unwrap();
    let upload = s.uploads.entry(sha.clone()).or_insert_with(|| Upload {
        length,
        data: Vec::new(),
        complete: false,
        content_type,
    });
    if upload.complete {
        return (StatusCode::CREATED, Json(upload.view(&sha))).into_response();
    }
    if offset > upload.data.len() {
        let mut response = problem(StatusCode::CONFLICT, "conflict", Some("offset_mismatch"));
        response
            .headers_mut()
            .insert("upload-offset", upload.data.len().into());
        return response;
    }
    let skip = upload.data.len() - offset;
    upload
        .data
        .extend_from_slice(body.get(skip..).unwrap_or_default());
    if upload.data.len() < upload.length {
        return Json(upload.view(&sha)).into_response();
    }
    if hex_sha256(&upload.data) != sha {
        s.uploads.remove(&sha);
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            Some("hash_mismatch"),
        );
    }
    upload.complete = true;
    (StatusCode::CREATED, Json(upload.view(&sha))).into_response()
}

/// Serves the stand-in behind a relay; returns the client's base URL and the relay.
async fn serve(server: &Shared) -> (String, Arc<Relay>) {
    let app = Router::new()
        .route("/api/v1/uploads/{sha}", get(status).put(put_chunk))
        .with_state(Arc::clone(server));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let (addr, relay) = Relay::start(target).await;
    server.lock().unwrap().relay = Some(Arc::clone(&relay));
    (format!("http://{addr}"), relay)
}

/// A "photo": a PNG signature and a pattern seeded by `seed`.
fn photo(len: usize, seed: u8) -> Vec<u8> {
    let mut bytes = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    let mut x = u32::from(seed).wrapping_mul(2_654_435_761).wrapping_add(1);
    while bytes.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        bytes.push(x.to_le_bytes()[0]);
    }
    bytes.truncate(len);
    bytes
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ff-attach-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn a_cut_mid_upload_resumes_with_only_the_missing_bytes() {
    let dir = temp_dir();
    let store = Arc::new(Store::open(dir.join("local.db")).unwrap());
    let photos = dir.join("attachments");
    let delivery = Uuid::now_v7();
    let file = photo(700 * KIB, 1);
    let source = dir.join("camera.png");
    std::fs::write(&source, &file).unwrap();

    // Taken twice (the same picture saved again): one file, one entry.
    let sha =
        attachments::attach_file(&store, "delivery_proof", delivery, &source, &photos).unwrap();
    let again =
        attachments::attach_file(&store, "delivery_proof", delivery, &source, &photos).unwrap();
    assert_eq!(sha, hex_sha256(&file));
    assert_eq!(again, sha);
    let queued = store.pending_attachments().unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].size, file.len() as u64);
    assert_eq!(queued[0].content_type, "image/png");
    assert_eq!(queued[0].owner_id, delivery.to_string());
    let copies: Vec<_> = std::fs::read_dir(&photos).unwrap().collect();
    assert_eq!(copies.len(), 1, "one file in the attachments directory");

    let server: Shared = Arc::default();
    server.lock().unwrap().cut_at_chunk = Some(2);
    let (url, relay) = serve(&server).await;
    let mut api = ApiClient::new(url);
    api.access_token = Some("tok".to_owned());

    // The first chunk arrives, the network goes down during the second.
    let cut = attachments::upload_pending(&store, &api).await.unwrap();
    assert!(cut.offline, "{cut:?}");
    assert_eq!((cut.completed, cut.failed), (0, 1));
    assert_eq!(cut.bytes_sent, attachments::CHUNK_BYTES as u64);
    let waiting = store.attachment(&sha).unwrap().unwrap();
    assert_eq!(waiting.uploaded, attachments::CHUNK_BYTES as u64);
    assert_eq!(waiting.attempts, 1);
    assert!(waiting.last_error.is_some());
    assert!(!waiting.done);

    // Still offline: another try, nothing sent, nothing lost.
    let offline = attachments::upload_pending(&store, &api).await.unwrap();
    assert!(offline.offline);
    assert_eq!(offline.bytes_sent, 0);
    assert_eq!(store.attachment(&sha).unwrap().unwrap().attempts, 2);

    // Back online: the queue asks the server where it stands and sends only the rest.
    relay.resume();
    let before = server.lock().unwrap().chunks.len();
    let round = attachments::upload_pending(&store, &api).await.unwrap();
    assert_eq!(
        round,
        UploadReport {
            completed: 1,
            bytes_sent: (file.len() - attachments::CHUNK_BYTES) as u64,
            ..UploadReport::default()
        }
    );
    let s = server.lock().unwrap();
    let resent = &s.chunks[before..];
    assert_eq!(
        resent[0].1,
        attachments::CHUNK_BYTES,
        "resumed at the server's offset"
    );
    let mut expected = attachments::CHUNK_BYTES;
    for (chunk_sha, offset, len, purpose, owner) in resent {
        assert_eq!(chunk_sha, &sha);
        assert_eq!(*offset, expected, "each chunk starts where the last ended");
        assert_eq!(
            (purpose.as_str(), owner.as_str()),
            ("delivery_proof", &*delivery.to_string())
        );
        expected += len;
    }
    assert_eq!(expected, file.len());
    let stored = &s.uploads[&sha];
    assert!(stored.complete);
    assert!(
        stored.data == file,
        "the server holds the file, byte for byte"
    );
    drop(s);
    let sent = store.attachment(&sha).unwrap().unwrap();
    assert!(sent.done);
    assert_eq!(sent.uploaded, file.len() as u64);
    assert_eq!(sent.last_error, None);
    assert!(store.pending_attachments().unwrap().is_empty());
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn a_resend_after_a_lost_answer_and_a_refused_file_do_not_block_the_queue() {
    let dir = temp_dir();
    let store = Arc::new(Store::open(dir.join("local.db")).unwrap());
    let photos = dir.join("attachments");
    let server: Shared = Arc::default();
    let (url, _relay) = serve(&server).await;
    let mut api = ApiClient::new(url);
    api.access_token = Some("tok".to_owned());

    // A photo whose local copy went bad after it was queued: the server refuses it for good.
    let bad = photo(40 * KIB, 2);
    std::fs::write(dir.join("bad.png"), &bad).unwrap();
    let bad_sha = attachments::attach_file(
        &store,
        "delivery_proof",
        Uuid::now_v7(),
        &dir.join("bad.png"),
        &photos,
    )
    .unwrap();
    let mut corrupt = bad.clone();
    corrupt[20] ^= 0xff;
    std::fs::write(photos.join(&bad_sha), &corrupt).unwrap();
    // A good one queued after it, already half sent by a round whose answer was lost.
    let good = photo(300 * KIB, 3);
    std::fs::write(dir.join("good.png"), &good).unwrap();
    let good_sha = attachments::attach_file(
        &store,
        "delivery_proof",
        Uuid::now_v7(),
        &dir.join("good.png"),
        &photos,
    )
    .unwrap();
    server.lock().unwrap().uploads.insert(
        good_sha.clone(),
        Upload {
            length: good.len(),
            data: good[..100 * KIB].to_vec(),
            complete: false,
            content_type: "image/png".to_owned(),
        },
    );

    let round = attachments::upload_pending(&store, &api).await.unwrap();
    assert_eq!(
        (round.completed, round.refused, round.failed),
        (1, 1, 0),
        "{round:?}"
    );
    assert!(!round.offline);
    let refused = store.attachment(&bad_sha).unwrap().unwrap();
    assert!(refused.done, "a refusal ends the tries");
    assert!(refused.uploaded < refused.size);
    assert!(refused.last_error.unwrap().contains("validation_failed"));
    let sent = store.attachment(&good_sha).unwrap().unwrap();
    assert!(sent.done);
    assert_eq!(sent.last_error, None);
    assert!(server.lock().unwrap().uploads[&good_sha].data == good);

    // Not a photo, or too large: refused before anything is queued.
    std::fs::write(dir.join("notes.txt"), b"not a photo").unwrap();
    let not_photo = attachments::attach_file(
        &store,
        "delivery_proof",
        Uuid::now_v7(),
        &dir.join("notes.txt"),
        &photos,
    );
    assert!(
        matches!(not_photo, Err(AttachmentError::Unsupported)),
        "{not_photo:?}"
    );
    let huge = dir.join("huge.png");
    std::fs::write(&huge, photo(10 * 1024 * KIB + 1, 4)).unwrap();
    let too_large =
        attachments::attach_file(&store, "delivery_proof", Uuid::now_v7(), &huge, &photos);
    assert!(
        matches!(too_large, Err(AttachmentError::TooLarge { .. })),
        "{too_large:?}"
    );
    assert!(store.pending_attachments().unwrap().is_empty());
    std::fs::remove_dir_all(&dir).ok();
}
