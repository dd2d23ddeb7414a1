//! Bad input to every endpoint gets a 4xx problem response and leaves the database unchanged.
//!
//! The sweep walks the operations of the OpenAPI document instead of a hand-written list, so an
//! endpoint joins it the day it is added. Each operation gets the malformed bodies, wrong content
//! types, oversized bodies, unknown fields and non-UUID ids in the path a careless or hostile
//! client might send (the document says which path parameters are UUIDs; free-text ones, such
//! as a storefront's subdomain, get a well-formed value that names nothing); every answer must be
//! an RFC 9457 problem with the documented shape, never a 5xx, and a fingerprint of the database
//! must be the same before and after the sweep.
//!
//! The rest checks the edges of the router: fields a caller may not set, unknown routes and
//! methods, the OpenAPI document and docs page, and the health endpoints.

#![allow(clippy::unwrap_used)] // A failed unwrap in a test is a failed test.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::{onboarding, Reply, TestApp, PASSWORD};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use uuid::Uuid;

/// Tables the sweep may append to by design, left out of the fingerprint: denied attempts are
/// audited (`audit_log`, `platform_audit_log`) and failed sign-ins are counted against the
/// account and the client address (`auth_throttle`), so that refusing a request is on record.
const WRITTEN_ON_DENIAL: &[&str] = &["audit_log", "platform_audit_log", "auth_throttle"];

const BUSINESSES: &str = "/api/v1/admin/businesses";
const STOREFRONT: &str = "/api/v1/business/storefront";

/// One operation of the OpenAPI document.
#[derive(Debug)]
struct Operation {
    method: Method,
    /// Path template, e.g. `/api/v1/admin/businesses/{id}`.
    template: String,
    has_body: bool,
    /// The body is `multipart/form-data` (uploads), not JSON.
    multipart: bool,
    path_params: Vec<PathParam>,
    query_params: Vec<String>,
}

/// A path parameter, and whether the document declares it a UUID (ids) or free text (e.g. a
/// storefront's subdomain).
#[derive(Debug)]
struct PathParam {
    name: String,
    uuid: bool,
}

/// What the sweep puts in free-text path parameters: a well-formed value that names nothing.
const TEXT_PARAM: &str = "zz-sweep-nothing";

impl Operation {
    /// The path with every UUID parameter replaced by `value` and every text parameter by
    /// [`TEXT_PARAM`].
    fn path_with(&self, value: &str) -> String {
        self.path_params
            .iter()
            .fold(self.template.clone(), |path, param| {
                let value = if param.uuid { value } else { TEXT_PARAM };
                path.replace(&format!("{{{}}}", param.name), value)
            })
    }

    fn path_param_names(&self) -> BTreeSet<String> {
        self.path_params.iter().map(|p| p.name.clone()).collect()
    }

    fn label(&self) -> String {
        format!("{} {}", self.method, self.template)
    }
}

/// Every operation the API documents.
fn operations() -> Vec<Operation> {
    let (_, openapi) = fleetfront_server::app::api_router();
    let doc = serde_json::to_value(&openapi).unwrap();
    let mut operations = Vec::new();
    for (template, item) in doc["paths"].as_object().unwrap() {
        for (name, method) in [
            ("get", Method::GET),
            ("put", Method::PUT),
            ("post", Method::POST),
            ("patch", Method::PATCH),
            ("delete", Method::DELETE),
        ] {
            let Some(op) = item.get(name) else { continue };
            let params = |location: &str| -> Vec<&Value> {
                op["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["in"] == location)
                    .collect()
            };
            let name = |p: &Value| p["name"].as_str().unwrap().to_owned();
            operations.push(Operation {
                method,
                template: template.clone(),
                has_body: op.get("requestBody").is_some(),
                multipart: op["requestBody"]["content"]
                    .get("multipart/form-data")
                    .is_some(),
                path_params: params("path")
                    .into_iter()
                    .map(|p| PathParam {
                        name: name(p),
                        uuid: p["schema"]["format"] == "uuid",
                    })
                    .collect(),
                query_params: params("query").into_iter().map(name).collect(),
            });
        }
    }
    operations
}

/// The tokens the sweep signs in with.
struct Tokens {
    admin: String,
    owner: String,
    fresh: String,
}

impl Tokens {
    /// An admin for `/admin`, the owner for `/business`, a freshly signed-in account otherwise.
    fn for_path(&self, path: &str) -> &str {
        if path.starts_with("/api/v1/admin/") {
            &self.admin
        } else if path.starts_with("/api/v1/business/") {
            &self.owner
        } else {
            &self.fresh
        }
    }
}

/// A bad request and the answer it must get.
struct Probe {
    label: String,
    request: Request<Body>,
    status: StatusCode,
    /// The problem code.
    code: &'static str,
}

/// Builds a request with a bearer token and, when given, a body with its content type.
fn request(
    method: &Method,
    path: &str,
    token: &str,
    body: Option<(&str, Vec<u8>)>,
) -> Request<Body> {
    let builder = Request::builder()
        .method(method.clone())
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"));
    match body {
        Some((content_type, bytes)) => builder
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(bytes))
            .unwrap(),
        None => builder.body(Body::empty()).unwrap(),
    }
}

/// A body every operation that takes one must refuse, and the problem it must get.
struct BadBody {
    what: &'static str,
    content_type: &'static str,
    bytes: Vec<u8>,
    status: StatusCode,
    code: &'static str,
}

/// Bad JSON bodies; the oversized one is `oversized_kib` KiB (above the route's body limit).
fn bad_bodies(oversized_kib: usize) -> Vec<BadBody> {
    let json = "application/json";
    let bad = |what, content_type, bytes: &[u8], status, code| BadBody {
        what,
        content_type,
        bytes: bytes.to_vec(),
        status,
        code,
    };
    let oversized = format!("{{\"zzz\": \"{}\"}}", "a".repeat(oversized_kib * 1024));
    vec![
        bad(
            "malformed JSON",
            json,
            b"{\"",
            StatusCode::BAD_REQUEST,
            "malformed_request",
        ),
        bad(
            "a JSON array",
            json,
            b"[]",
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        bad(
            "an unknown field",
            json,
            br#"{"zzz_unknown": 1}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        bad(
            "a text/plain body",
            "text/plain",
            b"{}",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        bad(
            "an oversized body (100 KiB; 2 MiB for a sync push)",
            json,
            oversized.as_bytes(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
    ]
}

/// Bodies an upload (`multipart/form-data`) operation must refuse before it looks at anything
/// else: JSON or text is the wrong media type, and a multipart type without a boundary is
/// malformed.
fn bad_multipart_bodies() -> Vec<BadBody> {
    let bad = |what, content_type, bytes: &[u8], status, code| BadBody {
        what,
        content_type,
        bytes: bytes.to_vec(),
        status,
        code,
    };
    let unsupported = StatusCode::UNSUPPORTED_MEDIA_TYPE;
    vec![
        bad(
            "a JSON body",
            "application/json",
            b"{}",
            unsupported,
            "unsupported_media_type",
        ),
        bad(
            "malformed JSON",
            "application/json",
            b"{\"",
            unsupported,
            "unsupported_media_type",
        ),
        bad(
            "a text/plain body",
            "text/plain",
            b"{}",
            unsupported,
            "unsupported_media_type",
        ),
        bad(
            "multipart without a boundary",
            "multipart/form-data",
            b"garbage",
            StatusCode::BAD_REQUEST,
            "malformed_request",
        ),
    ]
}

/// Bodies a resumable upload's chunk (the file's raw bytes, at most 1 MiB) must refuse before
/// it looks at anything else: JSON or text is the wrong media type, 2 MiB too many bytes.
fn bad_chunk_bodies() -> Vec<BadBody> {
    let mut bodies: Vec<BadBody> = bad_multipart_bodies()
        .into_iter()
        .filter(|b| !b.content_type.starts_with("multipart/"))
        .collect();
    bodies.push(BadBody {
        what: "an oversized chunk (2 MiB)",
        content_type: "image/png",
        bytes: vec![0; 2 * 1024 * 1024],
        status: StatusCode::PAYLOAD_TOO_LARGE,
        code: "payload_too_large",
    });
    bodies
}

/// The bad requests for one operation.
fn probes(op: &Operation, tokens: &Tokens) -> Vec<Probe> {
    let mut probes = Vec::new();
    let path = op.path_with(&Uuid::new_v4().to_string());
    let token = tokens.for_path(&path);
    let mut probe = |what: &str, request: Request<Body>, status: StatusCode, code: &'static str| {
        let label = format!("{} with {what}", op.label());
        probes.push(Probe {
            label,
            request,
            status,
            code,
        });
    };
    // A provider's webhook checks its signature before it reads the body: an unsigned JSON
    // body, however malformed, is an `invalid_signature`.
    let signed = path.starts_with("/api/v1/webhooks/");
    if op.has_body {
        let bodies = if op.multipart {
            bad_multipart_bodies()
        } else if op.template.starts_with("/api/v1/uploads/") {
            bad_chunk_bodies()
        } else if op.template == "/api/v1/sync/push" {
            // A push carries up to 500 mutations: its limit is 1 MiB.
            bad_bodies(2 * 1024)
        } else {
            bad_bodies(100)
        };
        for bad in bodies {
            let request = request(
                &op.method,
                &path,
                token,
                Some((bad.content_type, bad.bytes)),
            );
            let (status, code) = match bad.status {
                StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY if signed => {
                    (StatusCode::BAD_REQUEST, "invalid_signature")
                }
                _ => (bad.status, bad.code),
            };
            probe(bad.what, request, status, code);
        }
    }
    if op.path_params.iter().any(|p| p.uuid) {
        let path = op.path_with("not-a-uuid");
        let body = op.has_body.then(|| ("application/json", b"{}".to_vec()));
        let request = request(&op.method, &path, tokens.for_path(&path), body);
        probe(
            "a non-UUID path parameter",
            request,
            StatusCode::BAD_REQUEST,
            "malformed_request",
        );
    }
    if !op.query_params.is_empty() {
        let request = request(&op.method, &format!("{path}?zzz_unknown=1"), token, None);
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        probe(
            "an unknown query parameter",
            request,
            status,
            "validation_failed",
        );
    }
    probes
}

/// What is wrong with a reply that should be a problem with `status` (and `code`), if anything.
fn problem_violation(reply: &Reply, status: StatusCode, code: &str) -> Option<String> {
    let body = &reply.body;
    let mut wrong = Vec::new();
    if reply.status.is_server_error() {
        wrong.push("a server error".to_owned());
    }
    if reply.status != status {
        wrong.push(format!("status {} instead of {status}", reply.status));
    }
    if reply.content_type != "application/problem+json" {
        wrong.push(format!("content type {:?}", reply.content_type));
    }
    for member in ["type", "title", "detail", "code"] {
        if !body[member].is_string() {
            wrong.push(format!("no string `{member}`"));
        }
    }
    if body["status"].as_u64() != Some(u64::from(reply.status.as_u16())) {
        wrong.push("`status` differs from the HTTP status".to_owned());
    }
    if body["code"] != code {
        wrong.push(format!("code {} instead of {code}", body["code"]));
    }
    (!wrong.is_empty()).then(|| format!("{}; body: {body}", wrong.join(", ")))
}

/// A digest of every row of every table in the public schema, except [`WRITTEN_ON_DENIAL`].
async fn fingerprint(t: &TestApp) -> BTreeMap<String, String> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' AND NOT tablename = ANY($1) ORDER BY 1",
    )
    .bind(WRITTEN_ON_DENIAL)
    .fetch_all(&t.db.pools.owner)
    .await
    .unwrap();
    let mut digests = BTreeMap::new();
    for table in tables {
        let digest: String = sqlx::query_scalar(&format!(
            "SELECT coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), 'empty') FROM public.\"{table}\" t"
        ))
        .fetch_one(&t.db.pools.owner)
        .await
        .unwrap();
        digests.insert(table, digest);
    }
    digests
}

/// Signs in and returns an access token.
async fn access_token(t: &TestApp, email: &str) -> String {
    t.login(email, PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The `(field, code)` pairs of a problem's field errors.
fn field_errors(body: &Value) -> Vec<(String, String)> {
    let text = |e: &Value, key: &str| e[key].as_str().unwrap_or_default().to_owned();
    body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| (text(e, "field"), text(e, "code")))
        .collect()
}

/// Sends a request and keeps the headers, which [`Reply`] does not.
async fn send_raw(
    t: &TestApp,
    request: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let response = t.router.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    (
        parts.status,
        parts.headers,
        body.collect().await.unwrap().to_bytes().to_vec(),
    )
}

#[tokio::test]
async fn bad_input_to_every_endpoint_is_a_4xx_problem_and_changes_nothing() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let (_, owner) = t.business(&admin, "sweep-shop", "growth").await;
    t.business(&admin, "other-shop", "starter").await;
    let tokens = Tokens {
        admin,
        owner,
        fresh: access_token(&t, "owner@other-shop.test").await,
    };

    let operations = operations();
    assert!(
        operations.len() >= 25,
        "the OpenAPI document lists only {} operations",
        operations.len()
    );
    assert!(
        operations.iter().filter(|op| op.has_body).count() >= 15,
        "too few operations take a body"
    );
    assert!(
        operations
            .iter()
            .any(|op| op.path_params.iter().any(|p| p.uuid)),
        "no operation has a UUID path parameter"
    );
    assert!(
        operations.iter().any(|op| !op.query_params.is_empty()),
        "no operation has a query parameter"
    );

    let before = fingerprint(&t).await;
    let mut sent = 0;
    let mut failures = Vec::new();
    for op in &operations {
        for probe in probes(op, &tokens) {
            sent += 1;
            let reply = t.raw(probe.request).await;
            if let Some(wrong) = problem_violation(&reply, probe.status, probe.code) {
                failures.push(format!("{}: {wrong}", probe.label));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {sent} bad requests were mishandled:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(
        fingerprint(&t).await,
        before,
        "the bad requests changed the database"
    );
}

#[tokio::test]
async fn fields_a_caller_may_not_set_are_refused() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let (business, owner) = t.business(&admin, "strict-shop", "growth").await;
    let before = fingerprint(&t).await;
    let elsewhere = json!(Uuid::new_v4());

    // (method, path, token, body, the field that must be refused)
    let mut cases = Vec::new();
    for (field, value) in [
        ("status", json!("suspended")),
        ("business_id", elsewhere.clone()),
        ("id", elsewhere.clone()),
    ] {
        let mut body = onboarding("sneaky-shop", "starter");
        body[field] = value;
        cases.push((Method::POST, BUSINESSES.to_owned(), &admin, body, field));
    }
    let mut staff = json!({"email": "new@strict-shop.test", "full_name": "New", "role": "staff", "password": PASSWORD});
    staff["business_id"] = elsewhere.clone();
    cases.push((
        Method::POST,
        "/api/v1/business/staff".to_owned(),
        &owner,
        staff,
        "business_id",
    ));
    let storefront = json!({"is_published": true, "business_id": elsewhere});
    cases.push((
        Method::PATCH,
        STOREFRONT.to_owned(),
        &owner,
        storefront,
        "business_id",
    ));
    let change = json!({"name": "Renamed", "id": elsewhere});
    cases.push((
        Method::PATCH,
        format!("{BUSINESSES}/{business}"),
        &admin,
        change,
        "id",
    ));

    for (method, path, token, body, field) in cases {
        let reply = t.send(method.clone(), &path, Some(token), Some(body)).await;
        reply.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        let expected = [(field.to_owned(), "unknown_field".to_owned())];
        assert_eq!(
            field_errors(&reply.body),
            expected,
            "{method} {path}: {}",
            reply.body
        );
    }
    assert_eq!(fingerprint(&t).await, before);
}

#[tokio::test]
async fn a_body_must_be_a_json_object_even_when_every_field_is_optional() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let (business, owner) = t.business(&admin, "array-shop", "growth").await;
    let starter = "00000000-0000-7000-8000-0000000000a1";
    let before = fingerprint(&t).await;

    // serde would build these structs from arrays, positionally: `[]` as an empty change.
    let cases = [
        (
            Method::PATCH,
            format!("{BUSINESSES}/{business}"),
            &admin,
            json!([]),
        ),
        (
            Method::PATCH,
            format!("/api/v1/admin/plans/{starter}"),
            &admin,
            json!([]),
        ),
        (Method::PATCH, STOREFRONT.to_owned(), &owner, json!([])),
        (
            Method::PATCH,
            STOREFRONT.to_owned(),
            &owner,
            json!(["paint-shop"]),
        ),
        (
            Method::POST,
            "/api/v1/auth/refresh".to_owned(),
            &owner,
            json!(["not-a-token"]),
        ),
    ];
    for (method, path, token, body) in cases {
        let reply = t
            .send(method.clone(), &path, Some(token), Some(body.clone()))
            .await;
        let wrong = problem_violation(
            &reply,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        assert_eq!(wrong, None, "{method} {path} with {body}");
    }
    assert_eq!(fingerprint(&t).await, before);
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    let t = TestApp::new().await;
    for path in [
        "/api/v1/nothing-here",
        "/nowhere",
        "/api/v1/admin/businesses/x/y",
    ] {
        t.send(Method::GET, path, None, None)
            .await
            .expect_problem(StatusCode::NOT_FOUND, "not_found");
    }
    let cases = [
        (Method::PUT, "/api/v1/admin/plans", "GET,POST"),
        (Method::DELETE, STOREFRONT, "GET,PATCH"),
        (Method::GET, "/api/v1/auth/login", "POST"),
    ];
    for (method, path, allowed) in cases {
        let request = Request::builder()
            .method(method.clone())
            .uri(path)
            .body(Body::empty())
            .unwrap();
        let (status, headers, body) = send_raw(&t, request).await;
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}: {body}"
        );
        assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
        assert_eq!(body["code"], "method_not_allowed");
        assert_eq!(body["status"], 405);
        let allow: BTreeSet<String> = headers
            .get(header::ALLOW)
            .map(|v| {
                v.to_str()
                    .unwrap()
                    .split(',')
                    .map(|m| m.trim().to_owned())
                    .collect()
            })
            .unwrap_or_default();
        let expected: BTreeSet<String> = allowed.split(',').map(str::to_owned).collect();
        assert!(
            allow.is_superset(&expected),
            "{method} {path}: Allow is {allow:?}"
        );
    }
}

#[tokio::test]
async fn the_openapi_document_and_docs_page_describe_every_path() {
    let t = TestApp::new().await;
    let request = Request::builder()
        .uri("/api/v1/openapi.json")
        .body(Body::empty())
        .unwrap();
    let (status, headers, body) = send_raw(&t, request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let paths: BTreeSet<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    for required in ["/api/v1/auth/login", "/api/v1/admin/businesses", STOREFRONT] {
        assert!(paths.contains(required), "{required} is not documented");
    }
    let (_, built) = fleetfront_server::app::api_router();
    assert_eq!(
        doc,
        serde_json::to_value(&built).unwrap(),
        "the served document is the router's"
    );
    // Every schema reference resolves (a type used only through a query parameter's
    // `value_type` is not collected into the components by itself).
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let text = doc.to_string();
    let dangling: BTreeSet<&str> = text
        .split("\"#/components/schemas/")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|name| !schemas.contains_key(*name))
        .collect();
    assert!(
        dangling.is_empty(),
        "unresolved schema references: {dangling:?}"
    );
    // Path parameters are exactly the template's placeholders, so generated clients build the
    // right URLs (a query struct documented as path parameters breaks them).
    for op in operations() {
        let placeholders: BTreeSet<String> = op
            .template
            .split('{')
            .skip(1)
            .filter_map(|s| s.split_once('}'))
            .map(|(name, _)| name.to_owned())
            .collect();
        assert_eq!(
            op.path_param_names(),
            placeholders,
            "{}: path parameters",
            op.label()
        );
    }

    let request = Request::builder()
        .uri("/api/v1/docs")
        .body(Body::empty())
        .unwrap();
    let (status, headers, body) = send_raw(&t, request).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = String::from_utf8(body).unwrap();
    for path in &paths {
        assert!(
            html.contains(&format!("<code>{path}</code>")),
            "the docs page does not mention {path}"
        );
    }
    // Every problem's `type` points at an anchor of the docs page, one per documented code.
    let codes = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap();
    assert!(codes.iter().any(|c| c == "plan_limit_reached"));
    for code in codes {
        let anchor = format!("id=\"error-{}\"", code.as_str().unwrap());
        assert!(html.contains(&anchor), "the docs page has no {anchor}");
    }
}

#[tokio::test]
async fn health_endpoints_answer() {
    let t = TestApp::new().await;
    for path in ["/healthz", "/readyz"] {
        let body = t
            .send(Method::GET, path, None, None)
            .await
            .expect(StatusCode::OK);
        assert_eq!(body, json!({"status": "ok"}), "{path}");
    }
}
