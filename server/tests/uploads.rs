//! Resumable, content-addressed uploads on real PostgreSQL through the HTTP router: a photo
//! arrives in chunks and resumes after a cut from the offset the server reports, a chunk at the
//! wrong offset is answered with the offset to resume from, a file that does not match its
//! address is discarded, uploads are private to their driver, sizes are bounded, and a
//! `delivered` report that names a photo not uploaded yet goes through with its proof pending,
//! which clears when the photo arrives (exactly one proof row, however often it is sent). The
//! client core's queue (`fleetfront_core::attachments`) is driven against the same server over
//! a real socket, across a network cut.

#![allow(clippy::unwrap_used)] // A failed unwrap in a test is a failed test.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use common::fleet::{accepted_order, answer, assignments, driver, only_offer, shop, Shop};
use common::net::Served;
use common::TestApp;
use fleetfront_core::attachments::{self, ChunkAnswer, UploadChunk};
use fleetfront_core::{ApiClient, Store};
use fleetfront_server::storage::hash_of;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use uuid::Uuid;

const KIB: usize = 1024;
const CHUNK: usize = 256 * KIB;

/// A "photo" of `len` bytes: a PNG signature (what the server sniffs) and a pattern seeded by
/// `seed`, so different seeds are different files.
fn photo(len: usize, seed: u8) -> Vec<u8> {
    let mut bytes = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    bytes.extend_from_slice(&[0, 0, 0, 13, b'I', b'H', b'D', b'R']);
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

fn sha(bytes: &[u8]) -> String {
    hash_of(bytes).as_str().to_owned()
}

/// A decoded answer with its headers.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    #[track_caller]
    fn expect(&self, status: StatusCode) -> &Value {
        assert_eq!(self.status, status, "body: {}", self.body);
        &self.body
    }

    #[track_caller]
    fn expect_problem(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "body: {}", self.body);
        assert_eq!(self.body["code"], json!(code), "body: {}", self.body);
    }

    fn field_codes(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .map(|e| e["code"].as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn offset_header(&self) -> Option<u64> {
        self.headers
            .get("upload-offset")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
    }
}

async fn call(t: &TestApp, request: Request<Body>) -> Answer {
    let response = t.router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// A chunk of an upload.
struct Put<'a> {
    sha: &'a str,
    offset: usize,
    length: usize,
    bytes: &'a [u8],
    /// The delivery the photo proves, if any.
    proof_of: Option<Uuid>,
}

async fn put(t: &TestApp, token: &str, p: Put<'_>) -> Answer {
    let uri = match p.proof_of {
        Some(id) => format!(
            "/api/v1/uploads/{}?purpose=delivery_proof&owner={id}",
            p.sha
        ),
        None => format!("/api/v1/uploads/{}", p.sha),
    };
    let request = Request::builder()
        .method(Method::PUT)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "image/png")
        .header("Upload-Offset", p.offset.to_string())
        .header("Upload-Length", p.length.to_string())
        .body(Body::from(p.bytes.to_vec()))
        .unwrap();
    call(t, request).await
}

/// Sends `file[from..to]` at offset `from`, as a chunk of the proof photo of `delivery`.
async fn put_range(
    t: &TestApp,
    token: &str,
    file: &[u8],
    range: std::ops::Range<usize>,
    delivery: Option<Uuid>,
) -> Answer {
    put(
        t,
        token,
        Put {
            sha: &sha(file),
            offset: range.start,
            length: file.len(),
            bytes: &file[range],
            proof_of: delivery,
        },
    )
    .await
}

async fn progress(t: &TestApp, method: Method, token: &str, sha: &str) -> Answer {
    let request = Request::builder()
        .method(method)
        .uri(format!("/api/v1/uploads/{sha}"))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    call(t, request).await
}

async fn count(t: &TestApp, sql: &str, sha: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(sha)
        .fetch_one(&t.db.pools.owner)
        .await
        .unwrap()
}

fn blob_exists(t: &TestApp, sha: &str) -> bool {
    common::blob_dir(&t.db.name)
        .join(&sha[0..2])
        .join(&sha[2..4])
        .join(sha)
        .is_file()
}

/// A shop that requires proof photos, with Ann holding the delivery of an accepted cash order;
/// returns (shop, Ann's token, Ben's token, order, delivery).
async fn proof_shop(t: &TestApp, subdomain: &str) -> (Shop, String, String, Uuid, Uuid) {
    let shop = shop(t, subdomain).await;
    sqlx::query(
        "UPDATE business_dispatch_settings SET require_proof_photo = true WHERE business_id = $1",
    )
    .bind(shop.business)
    .execute(&t.db.pools.owner)
    .await
    .unwrap();
    let (_, ann) = driver(t, "Ann", (60.171, 24.94), Some((shop.business, 1))).await;
    let (_, ben) = driver(t, "Ben", (60.19, 24.94), Some((shop.business, 2))).await;
    let order = accepted_order(t, &shop).await;
    let offer = only_offer(&assignments(t, &ann).await);
    let taken = answer(t, &ann, &offer, "accept")
        .await
        .expect(StatusCode::OK);
    let delivery = taken["delivery_id"].as_str().unwrap().parse().unwrap();
    (shop, ann, ben, order, delivery)
}

async fn business_view(t: &TestApp, shop: &Shop, delivery: Uuid) -> Value {
    t.send(
        Method::GET,
        &format!("/api/v1/business/deliveries/{delivery}"),
        Some(&shop.owner),
        None,
    )
    .await
    .expect(StatusCode::OK)
}

async fn proof_rows(t: &TestApp, delivery: Uuid) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM delivery_proofs WHERE delivery_id = $1")
        .bind(delivery)
        .fetch_one(&t.db.pools.owner)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_photo_arrives_in_chunks_and_resumes_from_the_servers_offset_after_a_cut() {
    let t = TestApp::new().await;
    let (shop, ann, _, _, delivery) = proof_shop(&t, "upload-resume").await;
    let file = photo(600 * KIB, 1);
    let hash = sha(&file);

    // Nothing yet: the status is a 404, so the client starts from 0.
    progress(&t, Method::GET, &ann, &hash)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "not_found");
    let first = put_range(&t, &ann, &file, 0..CHUNK, Some(delivery)).await;
    assert_eq!(first.expect(StatusCode::OK)["offset"], json!(CHUNK));
    assert_eq!(first.body["complete"], json!(false));
    assert_eq!(first.body["size"], json!(file.len()));
    assert_eq!(first.offset_header(), Some(CHUNK as u64));

    // The connection is cut while the second chunk is on its way: it never arrives. After the
    // cut the client asks how far the upload got, by GET or by HEAD.
    let asked = progress(&t, Method::GET, &ann, &hash).await;
    assert_eq!(asked.expect(StatusCode::OK)["offset"], json!(CHUNK));
    assert_eq!(asked.body["complete"], json!(false));
    let headed = progress(&t, Method::HEAD, &ann, &hash).await;
    assert_eq!(headed.status, StatusCode::OK);
    assert_eq!(headed.offset_header(), Some(CHUNK as u64));
    assert_eq!(headed.body, Value::Null, "HEAD answers headers only");

    // A chunk the server already has (its answer was lost) is accepted as is.
    let repeat = put_range(&t, &ann, &file, 0..CHUNK, Some(delivery)).await;
    assert_eq!(repeat.expect(StatusCode::OK)["offset"], json!(CHUNK));
    // A chunk past what arrived is refused with the offset to resume from.
    let ahead = put_range(&t, &ann, &file, 2 * CHUNK..file.len(), Some(delivery)).await;
    ahead.expect_problem(StatusCode::CONFLICT, "conflict");
    assert_eq!(ahead.offset_header(), Some(CHUNK as u64));
    assert_eq!(ahead.field_codes(), vec!["offset_mismatch".to_owned()]);
    assert!(
        ahead.body["detail"]
            .as_str()
            .unwrap()
            .contains(&CHUNK.to_string()),
        "{}",
        ahead.body
    );
    // A chunk overlapping what arrived adds only its new tail.
    let overlap = put_range(&t, &ann, &file, CHUNK / 2..2 * CHUNK, Some(delivery)).await;
    assert_eq!(overlap.expect(StatusCode::OK)["offset"], json!(2 * CHUNK));
    assert!(!blob_exists(&t, &hash), "nothing is stored before the end");
    assert_eq!(proof_rows(&t, delivery).await, 0);

    // The last byte completes, verifies and stores the photo, and attaches it.
    let done = put_range(&t, &ann, &file, 2 * CHUNK..file.len(), Some(delivery)).await;
    let body = done.expect(StatusCode::CREATED);
    assert_eq!(body["sha256"], json!(hash));
    assert_eq!(body["size"], json!(file.len()));
    assert_eq!(body["complete"], json!(true));
    assert_eq!(body["content_type"], json!("image/png"));
    assert!(blob_exists(&t, &hash));
    let stored = std::fs::read(
        common::blob_dir(&t.db.name)
            .join(&hash[0..2])
            .join(&hash[2..4])
            .join(&hash),
    )
    .unwrap();
    assert!(stored == file, "the stored blob is the file, byte for byte");
    assert_eq!(
        count(
            &t,
            "SELECT count(*) FROM upload_chunks WHERE sha256 = $1",
            &hash
        )
        .await,
        0,
        "the partial bytes are gone once the file is stored"
    );
    let complete = progress(&t, Method::GET, &ann, &hash).await;
    assert_eq!(complete.expect(StatusCode::OK)["complete"], json!(true));
    assert_eq!(complete.body["offset"], json!(file.len()));

    // The same photo again, from the start: the same answer, still one proof.
    let again = put_range(&t, &ann, &file, 0..CHUNK, Some(delivery)).await;
    assert_eq!(again.expect(StatusCode::CREATED)["complete"], json!(true));
    assert_eq!(proof_rows(&t, delivery).await, 1);
    let view = business_view(&t, &shop, delivery).await;
    assert_eq!(view["proofs"][0]["sha256"], json!(hash), "{view}");
    assert_eq!(view["proofs"][0]["byte_size"], json!(file.len()), "{view}");
}

#[tokio::test]
async fn a_file_that_is_not_what_its_address_says_is_discarded_and_sizes_are_bounded() {
    let t = TestApp::new().await;
    let (_, ann, _, _, delivery) = proof_shop(&t, "upload-refuse").await;
    let file = photo(300 * KIB, 2);
    let other = sha(&photo(300 * KIB, 3));

    // Two chunks addressed by another file's hash: the first is kept, the last discards all.
    let put_as = |range: std::ops::Range<usize>| Put {
        sha: &other,
        offset: range.start,
        length: file.len(),
        bytes: &file[range],
        proof_of: Some(delivery),
    };
    put(&t, &ann, put_as(0..CHUNK)).await.expect(StatusCode::OK);
    let mismatch = put(&t, &ann, put_as(CHUNK..file.len())).await;
    mismatch.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(mismatch.field_codes(), vec!["hash_mismatch".to_owned()]);
    progress(&t, Method::GET, &ann, &other)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "not_found");
    for sql in [
        "SELECT count(*) FROM uploads WHERE sha256 = $1",
        "SELECT count(*) FROM upload_chunks WHERE sha256 = $1",
    ] {
        assert_eq!(count(&t, sql, &other).await, 0, "{sql}");
    }
    assert!(!blob_exists(&t, &other));
    assert!(!blob_exists(&t, &sha(&file)));
    assert_eq!(proof_rows(&t, delivery).await, 0);

    // Too large: a file over 10 MiB, a chunk over 1 MiB.
    let big = put(
        &t,
        &ann,
        Put {
            sha: &sha(&file),
            offset: 0,
            length: 10 * 1024 * KIB + 1,
            bytes: &file[..CHUNK],
            proof_of: None,
        },
    )
    .await;
    big.expect_problem(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    let large = photo(1024 * KIB + 1, 4);
    put_range(&t, &ann, &large, 0..large.len(), None)
        .await
        .expect_problem(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert_eq!(
        count(
            &t,
            "SELECT count(*) FROM uploads WHERE sha256 = $1",
            &sha(&large)
        )
        .await,
        0
    );

    // Not a photo: refused from its first bytes.
    let words = b"just some words, not a photo at all".to_vec();
    put_range(&t, &ann, &words, 0..words.len(), None)
        .await
        .expect_problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_image_type");
    // A malformed address or missing header.
    put(
        &t,
        &ann,
        Put {
            sha: "not-a-hash",
            offset: 0,
            length: 10,
            bytes: &file[..10],
            proof_of: None,
        },
    )
    .await
    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
}

#[tokio::test]
async fn an_upload_is_its_drivers_alone() {
    let t = TestApp::new().await;
    let (shop, ann, ben, _, delivery) = proof_shop(&t, "upload-private").await;
    let file = photo(400 * KIB, 5);
    let hash = sha(&file);
    put_range(&t, &ann, &file, 0..CHUNK, Some(delivery))
        .await
        .expect(StatusCode::OK);

    // Ben neither sees Ann's upload nor appends to it: the same address is his own, empty.
    progress(&t, Method::GET, &ben, &hash)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "not_found");
    let appended = put_range(&t, &ben, &file, CHUNK..file.len(), None).await;
    appended.expect_problem(StatusCode::CONFLICT, "conflict");
    assert_eq!(appended.offset_header(), Some(0));
    // Nor names Ann's delivery as what his photo proves.
    put_range(&t, &ben, &file, 0..CHUNK, Some(delivery))
        .await
        .expect_problem(StatusCode::NOT_FOUND, "not_found");
    // Staff and anonymous callers have no uploads here.
    put_range(&t, &shop.owner, &file, 0..CHUNK, None)
        .await
        .expect_problem(StatusCode::FORBIDDEN, "forbidden");
    let anonymous = Request::builder()
        .method(Method::GET)
        .uri(format!("/api/v1/uploads/{hash}"))
        .body(Body::empty())
        .unwrap();
    call(&t, anonymous)
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "unauthenticated");

    // Ann's upload is untouched and completes; Ben's view of the delivery shows nothing.
    let mine = progress(&t, Method::GET, &ann, &hash).await;
    assert_eq!(mine.expect(StatusCode::OK)["offset"], json!(CHUNK));
    put_range(&t, &ann, &file, CHUNK..file.len(), Some(delivery))
        .await
        .expect(StatusCode::CREATED);
    progress(&t, Method::GET, &ben, &hash)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "not_found");
    assert_eq!(
        count(
            &t,
            "SELECT count(*) FROM delivery_proofs WHERE sha256 = $1",
            &hash
        )
        .await,
        1
    );
}

fn mutation(seq: u64, name: &str, args: Value) -> Value {
    json!({"seq": seq, "id": Uuid::now_v7(), "name": name, "args": args,
           "action_time": "2026-01-02T03:04:05Z"})
}

#[tokio::test]
async fn delivered_goes_ahead_of_its_photo_and_the_photo_attaches_when_it_arrives() {
    let t = TestApp::new().await;
    let (shop, ann, _, order, delivery) = proof_shop(&t, "upload-pending").await;
    t.send(
        Method::PATCH,
        &format!("/api/v1/business/orders/{order}"),
        Some(&shop.owner),
        Some(json!({"type": "mark_ready"})),
    )
    .await
    .expect(StatusCode::OK);
    let client = Uuid::now_v7();
    let push = |seq: u64, args: Value| {
        t.send(
            Method::POST,
            "/api/v1/sync/push",
            Some(&ann),
            Some(
                json!({"client_id": client, "mutations": [mutation(seq, "delivery.step@1", args)]}),
            ),
        )
    };
    let picked = push(1, json!({"delivery_id": delivery, "status": "picked_up"}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(picked["results"][0]["status"], json!("applied"), "{picked}");
    let cash = json!({"amount_minor": 1300});

    // Without any photo the business's rule still refuses.
    let refused = push(
        2,
        json!({"delivery_id": delivery, "status": "delivered", "cash_collected": cash}),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(
        refused["results"][0]["status"],
        json!("rejected"),
        "{refused}"
    );
    assert_eq!(
        refused["results"][0]["code"],
        json!("invalid_transition"),
        "{refused}"
    );

    // Naming a photo still on the phone: delivered at once, the proof pending.
    let file = photo(500 * KIB, 6);
    let hash = sha(&file);
    let delivered = push(
        3,
        json!({"delivery_id": delivery, "status": "delivered", "cash_collected": cash,
               "proof_sha256": hash}),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(
        delivered["results"][0]["status"],
        json!("applied"),
        "{delivered}"
    );
    assert_eq!(
        delivered["results"][0]["output"]["status"],
        json!("delivered")
    );
    assert_eq!(delivered["results"][0]["output"]["proof"], json!("pending"));
    let view = business_view(&t, &shop, delivery).await;
    assert_eq!(view["status"], json!("delivered"), "{view}");
    assert_eq!(view["proof_sha256"], json!(hash), "{view}");
    assert_eq!(view["proof"], json!("pending"), "{view}");
    assert_eq!(view["proofs"], json!([]), "{view}");

    // The photo arrives later: the finished delivery takes it, as the one it waits for.
    put_range(&t, &ann, &file, 0..CHUNK, Some(delivery))
        .await
        .expect(StatusCode::OK);
    let done = put_range(&t, &ann, &file, CHUNK..file.len(), Some(delivery)).await;
    assert_eq!(done.expect(StatusCode::CREATED)["complete"], json!(true));
    let view = business_view(&t, &shop, delivery).await;
    assert_eq!(view["proof"], json!("attached"), "{view}");
    assert_eq!(view["proofs"][0]["sha256"], json!(hash), "{view}");
    let driver_view = t
        .send(
            Method::GET,
            &format!("/api/v1/driver/deliveries/{delivery}"),
            Some(&ann),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(driver_view["proof"], json!("attached"), "{driver_view}");

    // Sent again (a client that never saw the answer): still one proof row.
    let again = put_range(&t, &ann, &file, 0..file.len() / 2, Some(delivery)).await;
    assert_eq!(again.expect(StatusCode::CREATED)["complete"], json!(true));
    assert_eq!(proof_rows(&t, delivery).await, 1);
    // Another photo for the finished delivery is refused before any byte is kept.
    let stray = photo(10 * KIB, 7);
    put_range(&t, &ann, &stray, 0..stray.len(), Some(delivery))
        .await
        .expect_problem(StatusCode::CONFLICT, "conflict");
    assert_eq!(proof_rows(&t, delivery).await, 1);
}

#[tokio::test]
async fn the_client_queue_sends_only_what_the_server_lacks_across_a_network_cut() {
    let t = TestApp::new().await;
    let (shop, ann, _, _, delivery) = proof_shop(&t, "upload-client").await;
    let dir = std::env::temp_dir().join(format!("ff-attachments-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = Arc::new(Store::open(dir.join("local.db")).unwrap());
    let file = photo(700 * KIB, 8);
    let source = dir.join("camera.png");
    std::fs::write(&source, &file).unwrap();
    let photos = dir.join("attachments");

    // The same photo attached twice is one file and one queue entry.
    let hash =
        attachments::attach_file(&store, "delivery_proof", delivery, &source, &photos).unwrap();
    let twice =
        attachments::attach_file(&store, "delivery_proof", delivery, &source, &photos).unwrap();
    assert_eq!(hash, sha(&file));
    assert_eq!(twice, hash);
    assert_eq!(store.pending_attachments().unwrap().len(), 1);
    assert_eq!(std::fs::read(photos.join(&hash)).unwrap(), file);

    let mut served = Served::start(t.router.clone()).await;
    let mut api = ApiClient::new(served.url.clone());
    api.access_token = Some(ann.clone());
    // An earlier round got the first chunk through before the link broke.
    let first = api
        .upload_chunk(UploadChunk {
            sha256: &hash,
            offset: 0,
            length: file.len() as u64,
            content_type: "image/png",
            purpose: "delivery_proof",
            owner_id: &delivery.to_string(),
            bytes: file[..CHUNK].to_vec(),
        })
        .await
        .unwrap();
    assert!(
        matches!(&first, ChunkAnswer::Stored(view) if view.offset == CHUNK as u64),
        "{first:?}"
    );

    // Offline: the try is recorded, nothing is lost.
    served.cut().await;
    let offline = attachments::upload_pending(&store, &api).await.unwrap();
    assert!(offline.offline, "{offline:?}");
    assert_eq!((offline.completed, offline.failed), (0, 1));
    let waiting = store.attachment(&hash).unwrap().unwrap();
    assert!(!waiting.done);
    assert_eq!(waiting.attempts, 1);
    assert!(waiting.last_error.is_some());

    // Back online: only the bytes the server lacks are sent, then the photo is attached.
    served.resume(t.router.clone()).await;
    let round = attachments::upload_pending(&store, &api).await.unwrap();
    assert_eq!(
        (round.completed, round.failed, round.refused),
        (1, 0, 0),
        "{round:?}"
    );
    assert_eq!(round.bytes_sent, (file.len() - CHUNK) as u64);
    let sent = store.attachment(&hash).unwrap().unwrap();
    assert!(sent.done);
    assert_eq!(sent.uploaded, file.len() as u64);
    assert_eq!(sent.last_error, None);
    assert!(store.pending_attachments().unwrap().is_empty());
    let view = business_view(&t, &shop, delivery).await;
    assert_eq!(view["proofs"][0]["sha256"], json!(hash), "{view}");
    assert_eq!(proof_rows(&t, delivery).await, 1);

    // A later round has nothing to do.
    let idle = attachments::upload_pending(&store, &api).await.unwrap();
    assert_eq!(idle, attachments::UploadReport::default());
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn abandoned_partial_uploads_are_purged_after_a_day() {
    let t = TestApp::new().await;
    let (_, ann, _, _, _) = proof_shop(&t, "upload-purge").await;
    let (old, fresh, done) = (
        photo(300 * KIB, 9),
        photo(300 * KIB, 10),
        photo(10 * KIB, 11),
    );
    for file in [&old, &fresh] {
        put_range(&t, &ann, file, 0..CHUNK, None)
            .await
            .expect(StatusCode::OK);
    }
    put_range(&t, &ann, &done, 0..done.len(), None)
        .await
        .expect(StatusCode::CREATED);
    // The old partial upload and the completed one last moved 25 hours ago.
    sqlx::query(
        "UPDATE uploads SET updated_at = now() - interval '25 hours' WHERE sha256 = ANY($1)",
    )
    .bind(vec![sha(&old), sha(&done)])
    .execute(&t.db.pools.owner)
    .await
    .unwrap();

    let purged = fleetfront_server::uploads::purge_stale(&t.app.db, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(purged, 1, "only the abandoned partial upload goes");
    progress(&t, Method::GET, &ann, &sha(&old))
        .await
        .expect_problem(StatusCode::NOT_FOUND, "not_found");
    assert_eq!(
        count(
            &t,
            "SELECT count(*) FROM upload_chunks WHERE sha256 = $1",
            &sha(&old)
        )
        .await,
        0
    );
    let kept = progress(&t, Method::GET, &ann, &sha(&fresh)).await;
    assert_eq!(kept.expect(StatusCode::OK)["offset"], json!(CHUNK));
    let complete = progress(&t, Method::GET, &ann, &sha(&done)).await;
    assert_eq!(complete.expect(StatusCode::OK)["complete"], json!(true));
}
