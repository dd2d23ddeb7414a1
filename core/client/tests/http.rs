//! The HTTP client and one sync round against a tiny local stand-in of the server's three
//! endpoints (the real server's sync is being built; the engine's real test runs against it).
//! The stand-in only checks what the client sends and answers fixed pages.

#![allow(clippy::unwrap_used)] // A failed unwrap in a test is a failed test.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{TimeZone, Utc};
use fleetfront_core::{ApiClient, ApiError, Store, SyncEngine};
use fleetfront_domain::api::auth::LoginRequest;
use fleetfront_domain::api::sync::{
    BucketPage, MutationResult, MutationStatus, PullQuery, PullResponse, PushRequest, PushResponse,
    SyncRow,
};
use fleetfront_domain::sync::{checksum_add, format_cursors, row_checksum, Bucket};
use serde_json::json;
use uuid::Uuid;

#[derive(Default)]
struct Seen {
    pushes: Vec<PushRequest>,
    pulls: Vec<Option<String>>,
}

type Shared = Arc<Mutex<Seen>>;

fn shop() -> Bucket {
    Bucket::catalog(Uuid::from_u128(7))
}

fn product(n: u128, version: u64) -> SyncRow {
    SyncRow {
        kind: "product".to_owned(),
        id: Uuid::from_u128(n),
        version,
        data: Some(json!({"name": format!("P{n}")})),
    }
}

fn problem(status: StatusCode, code: &str, detail: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        Json(
            json!({"type": "about:blank", "title": "t", "status": status.as_u16(),
                    "detail": detail, "code": code}),
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

async fn login(Json(body): Json<LoginRequest>) -> Response {
    if body.password != "right" {
        return problem(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "Wrong email or password",
        );
    }
    Json(json!({
        "access_token": "tok", "token_type": "Bearer", "expires_in": 900,
        "refresh_token": "r", "refresh_expires_in": 86400,
        "principal": {"id": Uuid::from_u128(1), "kind": "staff", "email": body.email,
            "full_name": "Till", "business_id": Uuid::from_u128(7), "role": "owner",
            "permissions": [], "memberships": []}
    }))
    .into_response()
}

async fn pull(
    State(seen): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<PullQuery>,
) -> Response {
    if !signed_in(&headers) {
        return problem(StatusCode::UNAUTHORIZED, "unauthenticated", "Sign in");
    }
    seen.lock().unwrap().pulls.push(q.cursors.clone());
    let first = format_cursors(&[(shop(), 2)]);
    let answer = match q.cursors.as_deref() {
        None => PullResponse {
            buckets: vec![BucketPage {
                bucket: shop(),
                reset: false,
                rows: vec![product(1, 1), product(2, 2)],
                version: 2,
                complete: false,
                checksum: None,
            }],
            removed: vec![],
            more: true,
        },
        Some(c) if c == first => {
            let sum = [(1, 1), (2, 2), (3, 3)].iter().fold(0, |s, (n, v)| {
                checksum_add(s, row_checksum("product", Uuid::from_u128(*n), *v))
            });
            PullResponse {
                buckets: vec![BucketPage {
                    bucket: shop(),
                    reset: false,
                    rows: vec![product(3, 3)],
                    version: 3,
                    complete: true,
                    checksum: Some(sum),
                }],
                removed: vec![],
                more: false,
            }
        }
        Some(_) => PullResponse {
            buckets: vec![],
            removed: vec![],
            more: false,
        },
    };
    Json(answer).into_response()
}

async fn push(
    State(seen): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<PushRequest>,
) -> Response {
    if !signed_in(&headers) {
        return problem(StatusCode::UNAUTHORIZED, "unauthenticated", "Sign in");
    }
    let results = body
        .mutations
        .iter()
        .map(|m| {
            let rejected = m.name.starts_with("stock.");
            MutationResult {
                seq: m.seq,
                id: m.id,
                status: if rejected {
                    MutationStatus::Rejected
                } else {
                    MutationStatus::Applied
                },
                code: rejected.then(|| "out_of_stock".to_owned()),
                message: rejected.then(|| "The last cake was already sold".to_owned()),
                output: None,
            }
        })
        .collect();
    let last_seq = body.mutations.last().map_or(0, |m| m.seq);
    seen.lock().unwrap().pushes.push(body);
    Json(PushResponse { results, last_seq }).into_response()
}

async fn stand_in() -> (String, Shared) {
    let seen = Shared::default();
    let app = Router::new()
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/sync/pull", get(pull))
        .route("/api/v1/sync/push", post(push))
        .with_state(Arc::clone(&seen));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/"), seen)
}

#[tokio::test]
async fn problems_network_failures_and_missing_sign_in_are_told_apart() {
    let (url, _) = stand_in().await;
    let mut api = ApiClient::new(url);
    assert!(matches!(
        api.pull("", None).await,
        Err(ApiError::NotSignedIn)
    ));

    let err = api.login("till@shop.example", "wrong").await.unwrap_err();
    match &err {
        ApiError::Problem {
            status,
            code,
            detail,
            ..
        } => {
            assert_eq!((*status, code.as_str()), (401, "invalid_credentials"));
            assert_eq!(detail, "Wrong email or password");
        }
        other => panic!("{other:?}"),
    }
    assert!(!err.is_retryable() && !err.is_offline());

    api.access_token = Some("stale".to_owned());
    let err = api.pull("", None).await.unwrap_err();
    assert!(err.is_unauthenticated(), "{err}");

    let tokens = api.login("till@shop.example", "right").await.unwrap();
    assert_eq!(tokens.access_token, "tok");
    assert_eq!(api.access_token.as_deref(), Some("tok"));
    assert!(api.pull("", Some(10)).await.unwrap().more);

    // Nothing listens on a port we just let go.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut offline = ApiClient::new(format!("http://127.0.0.1:{port}"));
    offline.access_token = Some("tok".to_owned());
    let err = offline.pull("", None).await.unwrap_err();
    assert!(err.is_offline() && err.is_retryable(), "{err}");
}

struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn one_round_pushes_records_and_pulls_every_page() {
    let (url, seen) = stand_in().await;
    let dir = Scratch(std::env::temp_dir().join(format!("fleetfront-core-{}", Uuid::now_v7())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let store = Arc::new(Store::open(dir.0.join("client.db")).unwrap());
    let when = Utc.timestamp_opt(1_800_000_000, 0).unwrap();
    store
        .enqueue("order.create@1", json!({"lines": 1}), when)
        .unwrap();
    store
        .enqueue("stock.take@1", json!({"sku": "CAKE"}), when)
        .unwrap();

    let mut api = ApiClient::new(url);
    api.login("till@shop.example", "right").await.unwrap();
    let engine = SyncEngine::new(Arc::clone(&store), api);
    let report = engine.sync_now().await.unwrap();
    assert_eq!((report.applied, report.rejected, report.pulls), (1, 1, 2));
    assert_eq!(report.rows_changed, 3);
    assert_eq!(report.refetched, 0);

    let status = engine.status();
    assert!(status.online && status.last_error.is_none() && status.last_synced_at.is_some());
    assert_eq!(status.pending, 0);
    assert_eq!(store.rows("product").unwrap().len(), 3);
    assert_eq!(store.cursors().unwrap(), format_cursors(&[(shop(), 3)]));
    let rejections = store.rejections().unwrap();
    assert_eq!(rejections[0].message, "The last cake was already sold");

    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.pushes.len(), 1);
        assert_eq!(seen.pushes[0].client_id, store.client_id().unwrap());
        assert_eq!(
            seen.pushes[0]
                .mutations
                .iter()
                .map(|m| m.seq)
                .collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert_eq!(seen.pulls, vec![None, Some(format_cursors(&[(shop(), 2)]))]);
    }

    // A second round has nothing to push and one empty pull.
    let report = engine.sync_now().await.unwrap();
    assert_eq!(
        (report.applied, report.pulls, report.rows_changed),
        (0, 1, 0)
    );

    // After a restart the apps still see when the last round finished.
    let restarted = SyncEngine::new(Arc::clone(&store), ApiClient::new("http://127.0.0.1:9"));
    assert_eq!(
        restarted.status().last_synced_at.map(|t| t.timestamp()),
        engine.status().last_synced_at.map(|t| t.timestamp())
    );
    assert!(restarted.status().last_synced_at.is_some() && !restarted.status().online);
}
