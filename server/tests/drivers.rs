//! Drivers end to end through the real router on PostgreSQL: registration, profile (bank
//! details sealed and never shown), documents, the online rule, admin review, schedules,
//! dedicated drivers under the plan's limit, what a business sees of its fleet, and its
//! dispatch settings.

#![allow(clippy::unwrap_used)] // A failed unwrap in a test is a failed test.

mod common;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::{Reply, TestApp, DATA_KEY, PASSWORD};
use fleetfront_server::crypto::{DataKey, Sealed};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use uuid::Uuid;

const BOUNDARY: &str = "fleetfront-driver-boundary-41ac";
const IBAN: &str = "FI2112345600000785";
const PDF: &[u8] = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n";

/// Registers a driver; returns (id, access token).
async fn register(t: &TestApp, email: &str) -> (Uuid, String) {
    let body = json!({"email": email, "password": PASSWORD, "full_name": format!("Driver {email}"), "phone": "+358401234567"});
    let tokens = t
        .send(
            Method::POST,
            "/api/v1/auth/driver/register",
            None,
            Some(body),
        )
        .await
        .expect(StatusCode::CREATED);
    let token = tokens["access_token"].as_str().unwrap().to_owned();
    let profile = t
        .send(Method::GET, "/api/v1/driver/profile", Some(&token), None)
        .await
        .expect(StatusCode::OK);
    (
        Uuid::parse_str(profile["id"].as_str().unwrap()).unwrap(),
        token,
    )
}

/// Uploads a document as `multipart/form-data`.
async fn upload(t: &TestApp, token: &str, kind: Option<&str>, bytes: &[u8]) -> Reply {
    let mut body = Vec::new();
    if let Some(kind) = kind {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\n{kind}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"doc.pdf\"\r\nContent-Type: application/pdf\r\n\r\n")
            .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    let request = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/driver/documents")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(Body::from(body))
        .unwrap();
    t.raw(request).await
}

fn full_profile() -> Value {
    json!({
        "vehicle_type": "car",
        "vehicle_plate": "abc-123",
        "license_number": "FI 998877",
        "license_expires_on": "2099-01-31",
        "insurance_policy": "POL-1",
        "insurance_expires_on": "2099-06-30",
        "time_zone": "Europe/Helsinki",
        "bank_account": "FI21 1234 5600 0007 85",
    })
}

/// Profile, licence document and approval: a driver that may go online.
async fn ready_driver(t: &TestApp, admin: &str, email: &str) -> (Uuid, String) {
    let (id, token) = register(t, email).await;
    t.send(
        Method::PATCH,
        "/api/v1/driver/profile",
        Some(&token),
        Some(full_profile()),
    )
    .await
    .expect(StatusCode::OK);
    let doc = upload(t, &token, Some("license"), PDF)
        .await
        .expect(StatusCode::CREATED);
    t.send(
        Method::PATCH,
        &format!(
            "/api/v1/admin/drivers/{id}/documents/{}",
            doc["id"].as_str().unwrap()
        ),
        Some(admin),
        Some(json!({"status": "approved"})),
    )
    .await
    .expect(StatusCode::OK);
    t.send(
        Method::POST,
        &format!("/api/v1/admin/drivers/{id}/approve"),
        Some(admin),
        None,
    )
    .await
    .expect(StatusCode::OK);
    (id, token)
}

fn blockers(v: &Value) -> Vec<&str> {
    v["blockers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn a_driver_registers_is_approved_and_goes_online() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let (id, token) = register(&t, "dee@drivers.test").await;
    let mut answers = Vec::new();

    let profile = t
        .send(Method::GET, "/api/v1/driver/profile", Some(&token), None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(profile["status"], "pending");
    assert_eq!(
        blockers(&profile),
        [
            "not_approved",
            "license_missing",
            "license_document_missing"
        ]
    );

    // Bad values: every field error at once, nothing stored.
    let bad = t
        .send(
            Method::PATCH,
            "/api/v1/driver/profile",
            Some(&token),
            Some(json!({"license_expires_on": "2020-01-01", "vehicle_plate": "#", "bank_account": "FI22 1234 5600 0007 85", "time_zone": "Mars/Base"})),
        )
        .await;
    bad.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let fields: Vec<&str> = bad.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "vehicle_plate",
            "license_expires_on",
            "time_zone",
            "bank_account"
        ]
    );
    t.send(
        Method::PATCH,
        "/api/v1/driver/profile",
        Some(&token),
        Some(json!({"status": "active"})),
    )
    .await
    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");

    let profile = t
        .send(
            Method::PATCH,
            "/api/v1/driver/profile",
            Some(&token),
            Some(full_profile()),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(profile["vehicle_plate"], "ABC-123");
    assert_eq!(profile["bank_account_last4"], "0785");
    assert_eq!(profile["time_zone"], "Europe/Helsinki");
    assert_eq!(
        blockers(&profile),
        ["not_approved", "license_document_missing"]
    );
    answers.push(profile);

    // Documents: sniffed from the bytes.
    upload(&t, &token, Some("license"), b"GIF89a not a document")
        .await
        .expect_problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    upload(&t, &token, None, PDF)
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    upload(&t, &token, Some("passport"), PDF)
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let doc = upload(&t, &token, Some("license"), PDF)
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(doc["content_type"], "application/pdf");
    assert_eq!(doc["status"], "pending");
    let docs = t
        .send(Method::GET, "/api/v1/driver/documents", Some(&token), None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(docs.as_array().unwrap().len(), 1);

    // Pending: may not go online.
    t.send(
        Method::PATCH,
        "/api/v1/driver/availability",
        Some(&token),
        Some(json!({"online": true})),
    )
    .await
    .expect_problem(StatusCode::CONFLICT, "driver_not_ready");

    // The admin reviews.
    let listed = t
        .send(
            Method::GET,
            "/api/v1/admin/drivers?status=pending",
            Some(&admin),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(listed["items"][0]["id"], id.to_string());
    assert_eq!(listed["items"][0]["pending_documents"], 1);
    let doc_path = format!(
        "/api/v1/admin/drivers/{id}/documents/{}",
        doc["id"].as_str().unwrap()
    );
    t.send(
        Method::PATCH,
        &doc_path,
        Some(&admin),
        Some(json!({"status": "rejected"})),
    )
    .await
    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    t.send(
        Method::PATCH,
        &format!("/api/v1/admin/drivers/{id}/documents/{}", Uuid::now_v7()),
        Some(&admin),
        Some(json!({"status": "approved"})),
    )
    .await
    .expect_problem(StatusCode::NOT_FOUND, "not_found");
    // The admin sees what it approves: the stored bytes, as sniffed.
    let content = t
        .router
        .clone()
        .oneshot(
            Request::builder()
                .uri(format!("{doc_path}/content"))
                .header(header::AUTHORIZATION, format!("Bearer {admin}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(content.status(), StatusCode::OK);
    assert_eq!(content.headers()[header::CONTENT_TYPE], "application/pdf");
    assert_eq!(
        content.headers()[header::CACHE_CONTROL],
        "private, no-store"
    );
    let bytes = content.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&bytes[..], PDF);
    t.send(
        Method::GET,
        &format!("{doc_path}/content"),
        Some(&token),
        None,
    )
    .await
    .expect_problem(StatusCode::FORBIDDEN, "forbidden");
    t.send(
        Method::PATCH,
        &doc_path,
        Some(&admin),
        Some(json!({"status": "approved"})),
    )
    .await
    .expect(StatusCode::OK);
    // Approved documents are not enough while the driver is pending.
    t.send(
        Method::PATCH,
        "/api/v1/driver/availability",
        Some(&token),
        Some(json!({"online": true})),
    )
    .await
    .expect_problem(StatusCode::CONFLICT, "driver_not_ready");
    // A driver cannot use admin endpoints.
    t.send(
        Method::POST,
        &format!("/api/v1/admin/drivers/{id}/approve"),
        Some(&token),
        None,
    )
    .await
    .expect_problem(StatusCode::FORBIDDEN, "forbidden");
    let approved = t
        .send(
            Method::POST,
            &format!("/api/v1/admin/drivers/{id}/approve"),
            Some(&admin),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(approved["profile"]["status"], "approved");
    assert_eq!(approved["documents"][0]["status"], "approved");
    answers.push(approved);
    t.send(
        Method::POST,
        &format!("/api/v1/admin/drivers/{id}/approve"),
        Some(&admin),
        None,
    )
    .await
    .expect_problem(StatusCode::CONFLICT, "conflict");

    let online = t
        .send(
            Method::PATCH,
            "/api/v1/driver/availability",
            Some(&token),
            Some(json!({"online": true})),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(online["is_online"], true);
    assert!(online["online_since"].is_string());
    let listed = t
        .send(
            Method::GET,
            "/api/v1/admin/drivers?online=true",
            Some(&admin),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    let detail = t
        .send(
            Method::GET,
            &format!("/api/v1/admin/drivers/{id}"),
            Some(&admin),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(detail["profile"]["is_online"], true);
    answers.push(detail);
    let offline = t
        .send(
            Method::PATCH,
            "/api/v1/driver/availability",
            Some(&token),
            Some(json!({"online": false})),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(offline["is_online"], false);

    // The bank account: in no answer, in no audit row, sealed in the database.
    for answer in &answers {
        let text = answer.to_string();
        assert!(
            !text.contains(IBAN) && !text.contains("1234 5600"),
            "{text}"
        );
    }
    let db = &t.db.pools.owner;
    for table in ["platform_audit_log", "audit_log"] {
        let leaks: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {table} WHERE details::text LIKE '%12345600000785%' OR details::text LIKE '%1234 5600%'"
        ))
        .fetch_one(db)
        .await
        .unwrap();
        assert_eq!(leaks, 0, "{table}");
    }
    let update_audit: Value = sqlx::query_scalar(
        "SELECT details FROM platform_audit_log WHERE action = 'driver.profile.update' AND outcome = 'ok' LIMIT 1",
    )
    .fetch_one(db)
    .await
    .unwrap();
    assert!(update_audit["fields"]
        .as_array()
        .unwrap()
        .contains(&json!("bank_account")));
    let (ciphertext, nonce, last4): (Vec<u8>, Vec<u8>, String) = sqlx::query_as(
        "SELECT bank_account_ciphertext, bank_account_nonce, bank_account_last4 FROM driver_profiles WHERE driver_id = $1",
    )
    .bind(id)
    .fetch_one(db)
    .await
    .unwrap();
    assert_eq!(last4, "0785");
    assert!(!ciphertext.windows(IBAN.len()).any(|w| w == IBAN.as_bytes()));
    let opened = DataKey::from_bytes(DATA_KEY)
        .open(id.as_bytes(), &Sealed { ciphertext, nonce })
        .unwrap();
    assert_eq!(opened, IBAN.as_bytes());
}

#[tokio::test]
async fn schedules_are_validated_and_replaced_whole() {
    let t = TestApp::new().await;
    let (_, token) = register(&t, "sam@drivers.test").await;
    let week = json!({"windows": [
        {"day_of_week": 0, "start": "09:00", "end": "12:00"},
        {"day_of_week": 0, "start": "13:00", "end": "24:00"},
    ]});
    let saved = t
        .send(
            Method::PUT,
            "/api/v1/driver/schedule",
            Some(&token),
            Some(week),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(saved["windows"].as_array().unwrap().len(), 2);
    assert_eq!(saved["windows"][1]["end"], "24:00");

    let overlap = json!({"windows": [
        {"day_of_week": 2, "start": "09:00", "end": "12:00"},
        {"day_of_week": 2, "start": "11:00", "end": "13:00"},
    ]});
    let reply = t
        .send(
            Method::PUT,
            "/api/v1/driver/schedule",
            Some(&token),
            Some(overlap),
        )
        .await;
    reply.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(reply.body["errors"][0]["field"], "windows[1]");
    assert_eq!(reply.body["errors"][0]["code"], "overlap");
    for bad in [
        json!({"windows": [{"day_of_week": 7, "start": "09:00", "end": "10:00"}]}),
        json!({"windows": [{"day_of_week": 1, "start": "10:00", "end": "09:00"}]}),
        json!({"windows": [{"day_of_week": 1, "start": "9:00", "end": "10:00"}]}),
        json!({"windows": (0..22).map(|i| json!({"day_of_week": i % 7, "start": format!("{:02}:00", i / 7), "end": format!("{:02}:30", i / 7)})).collect::<Vec<_>>()}),
    ] {
        t.send(
            Method::PUT,
            "/api/v1/driver/schedule",
            Some(&token),
            Some(bad),
        )
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    }
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM driver_availability_windows")
        .fetch_one(&t.db.pools.owner)
        .await
        .unwrap();
    assert_eq!(stored, 2, "a refused week changes nothing");
    let schedule = t
        .send(Method::GET, "/api/v1/driver/schedule", Some(&token), None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(schedule["windows"], saved["windows"]);
    assert_eq!(schedule["is_online"], false);

    let cleared = t
        .send(
            Method::PUT,
            "/api/v1/driver/schedule",
            Some(&token),
            Some(json!({"windows": []})),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(cleared["windows"], json!([]));
    assert_eq!(cleared["in_window_now"], false);
}

#[tokio::test]
async fn dedicated_drivers_follow_the_plan_and_stay_inside_their_business() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let (a, a_owner) = t.business(&admin, "fleet-a", "starter").await;
    let (b, b_owner) = t.business(&admin, "fleet-b", "growth").await;
    let (d1, d1_token) = ready_driver(&t, &admin, "one@drivers.test").await;
    let (d2, _) = register(&t, "two@drivers.test").await;
    let (d3, _) = register(&t, "three@drivers.test").await;
    let assign = |driver: Uuid, business: Uuid, priority: i64| {
        let admin = admin.clone();
        let t = &t;
        async move {
            t.send(
                Method::POST,
                &format!("/api/v1/admin/drivers/{driver}/assign"),
                Some(&admin),
                Some(json!({"business_id": business, "priority": priority})),
            )
            .await
        }
    };
    assign(d1, a, 1).await.expect(StatusCode::CREATED);
    assign(d2, a, 2).await.expect(StatusCode::CREATED);
    // The starter plan allows two dedicated drivers.
    assign(d3, a, 3)
        .await
        .expect_problem(StatusCode::FORBIDDEN, "plan_limit_reached");
    // Changing a priority is not a new driver.
    let changed = assign(d2, a, 5).await.expect(StatusCode::OK);
    assert_eq!(changed["priority"], 5);
    assign(d3, b, 1).await.expect(StatusCode::CREATED);
    assign(d1, b, 11)
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assign(d1, Uuid::now_v7(), 1)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "not_found");
    let in_a: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE business_id = $1 AND action = 'driver.assign'",
    )
    .bind(a)
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(in_a, 3, "assignments are in the business's log");

    // The driver goes online; business A sees it, B does not.
    t.send(
        Method::PATCH,
        "/api/v1/driver/availability",
        Some(&d1_token),
        Some(json!({"online": true})),
    )
    .await
    .expect(StatusCode::OK);
    let schedule = t
        .send(
            Method::GET,
            "/api/v1/driver/schedule",
            Some(&d1_token),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        schedule["dedicated_businesses"][0]["business_id"],
        a.to_string()
    );
    assert_eq!(
        schedule["dedicated_businesses"][0]["business_name"],
        "Store fleet-a"
    );
    let ids = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|d| d["driver_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let fleet_a = t
        .send(
            Method::GET,
            "/api/v1/business/drivers",
            Some(&a_owner),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(ids(&fleet_a), [d1.to_string(), d2.to_string()]);
    assert_eq!(fleet_a[0]["is_online"], true);
    assert!(!fleet_a.to_string().contains("0785"));
    let fleet_b = t
        .send(
            Method::GET,
            "/api/v1/business/drivers",
            Some(&b_owner),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(ids(&fleet_b), [d3.to_string()]);
    t.send(
        Method::GET,
        &format!("/api/v1/business/drivers/{d1}"),
        Some(&a_owner),
        None,
    )
    .await
    .expect(StatusCode::OK);
    // Another business's staff: 404, as for any id it cannot see.
    t.send(
        Method::GET,
        &format!("/api/v1/business/drivers/{d1}"),
        Some(&b_owner),
        None,
    )
    .await
    .expect_problem(StatusCode::NOT_FOUND, "not_found");

    // A cashier (built-in staff role: orders.read, no dispatch.manage).
    t.send(
        Method::POST,
        "/api/v1/business/staff",
        Some(&a_owner),
        Some(json!({"email": "cashier@fleet-a.test", "full_name": "Cash Ier", "role": "staff", "password": PASSWORD})),
    )
    .await
    .expect(StatusCode::CREATED);
    let cashier = t.login("cashier@fleet-a.test", PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    t.send(
        Method::GET,
        "/api/v1/business/drivers",
        Some(&cashier),
        None,
    )
    .await
    .expect(StatusCode::OK);
    t.send(
        Method::PATCH,
        "/api/v1/business/dispatch-settings",
        Some(&cashier),
        Some(json!({"offer_timeout_secs": 60})),
    )
    .await
    .expect_problem(StatusCode::FORBIDDEN, "forbidden");
    // A role with neither orders.read nor dispatch.manage sees no fleet.
    t.send(
        Method::POST,
        "/api/v1/business/roles",
        Some(&b_owner),
        Some(json!({"key": "baker", "name": "Baker", "permissions": ["catalog.read"]})),
    )
    .await
    .expect(StatusCode::CREATED);
    t.send(
        Method::POST,
        "/api/v1/business/staff",
        Some(&b_owner),
        Some(json!({"email": "baker@fleet-b.test", "full_name": "Bea Ker", "role": "baker", "password": PASSWORD})),
    )
    .await
    .expect(StatusCode::CREATED);
    let baker = t.login("baker@fleet-b.test", PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    t.send(Method::GET, "/api/v1/business/drivers", Some(&baker), None)
        .await
        .expect_problem(StatusCode::FORBIDDEN, "forbidden");

    // Dispatch settings: defaults, bounds, and the shared pool only on plans that include it.
    let settings = t
        .send(
            Method::GET,
            "/api/v1/business/dispatch-settings",
            Some(&a_owner),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(settings["offer_timeout_secs"], 30);
    assert_eq!(settings["shared_pool_opt_in"], false);
    assert_eq!(settings["shared_pool_available"], false);
    t.send(
        Method::PATCH,
        "/api/v1/business/dispatch-settings",
        Some(&a_owner),
        Some(json!({"shared_pool_opt_in": true})),
    )
    .await
    .expect_problem(StatusCode::FORBIDDEN, "plan_limit_reached");
    t.send(
        Method::PATCH,
        "/api/v1/business/dispatch-settings",
        Some(&a_owner),
        Some(json!({"offer_timeout_secs": 5, "cash_cap_minor": -1})),
    )
    .await
    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let changed = t
        .send(
            Method::PATCH,
            "/api/v1/business/dispatch-settings",
            Some(&a_owner),
            Some(json!({"offer_timeout_secs": 45, "require_proof_photo": true, "cash_cap_minor": 15000})),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(changed["offer_timeout_secs"], 45);
    assert_eq!(changed["require_proof_photo"], true);
    let pooled = t
        .send(
            Method::PATCH,
            "/api/v1/business/dispatch-settings",
            Some(&b_owner),
            Some(json!({"shared_pool_opt_in": true})),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(pooled["shared_pool_opt_in"], true);
    let b_settings = t
        .send(
            Method::GET,
            "/api/v1/business/dispatch-settings",
            Some(&b_owner),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        b_settings["offer_timeout_secs"], 30,
        "A's change stayed in A"
    );

    // Ending an assignment frees a place under the limit.
    t.send(
        Method::DELETE,
        &format!("/api/v1/admin/drivers/{d2}/assignments/{a}"),
        Some(&admin),
        None,
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    t.send(
        Method::DELETE,
        &format!("/api/v1/admin/drivers/{d2}/assignments/{a}"),
        Some(&admin),
        None,
    )
    .await
    .expect_problem(StatusCode::NOT_FOUND, "not_found");
    assign(d3, a, 2).await.expect(StatusCode::CREATED);
}

#[tokio::test]
async fn rejected_and_suspended_drivers() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let (pending, pending_token) = register(&t, "later@drivers.test").await;
    t.send(
        Method::POST,
        &format!("/api/v1/admin/drivers/{pending}/reject"),
        Some(&admin),
        Some(json!({"reason": "  "})),
    )
    .await
    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let rejected = t
        .send(
            Method::POST,
            &format!("/api/v1/admin/drivers/{pending}/reject"),
            Some(&admin),
            Some(json!({"reason": "The licence photo is unreadable"})),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(rejected["profile"]["status"], "rejected");
    // A rejected driver still signs in and sees why.
    let own = t
        .send(
            Method::GET,
            "/api/v1/driver/profile",
            Some(&pending_token),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(own["rejection_reason"], "The licence photo is unreadable");
    let listed = t
        .send(
            Method::GET,
            "/api/v1/admin/drivers?status=rejected&q=later",
            Some(&admin),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);

    let (active, token) = ready_driver(&t, &admin, "gone@drivers.test").await;
    t.send(
        Method::PATCH,
        "/api/v1/driver/availability",
        Some(&token),
        Some(json!({"online": true})),
    )
    .await
    .expect(StatusCode::OK);
    t.send(
        Method::POST,
        &format!("/api/v1/admin/drivers/{active}/reject"),
        Some(&admin),
        Some(json!({"reason": "no"})),
    )
    .await
    .expect_problem(StatusCode::CONFLICT, "conflict");
    let suspended = t
        .send(
            Method::POST,
            &format!("/api/v1/admin/drivers/{active}/suspend"),
            Some(&admin),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(suspended["profile"]["status"], "suspended");
    assert_eq!(suspended["profile"]["is_online"], false);
    let reply = t
        .send(Method::GET, "/api/v1/driver/profile", Some(&token), None)
        .await;
    assert_eq!(reply.status.as_u16() / 100, 4, "{:?}", reply.body);
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM platform_audit_log WHERE action IN ('driver.reject', 'driver.suspend', 'driver.approve')",
    )
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(audited, 3);
    // Staff and drivers cannot reach the admin list.
    let (_, owner) = t.business(&admin, "fleet-c", "starter").await;
    for token in [&owner, &pending_token] {
        t.send(Method::GET, "/api/v1/admin/drivers", Some(token), None)
            .await
            .expect_problem(StatusCode::FORBIDDEN, "forbidden");
    }
    t.send(Method::GET, "/api/v1/driver/profile", Some(&owner), None)
        .await
        .expect_problem(StatusCode::FORBIDDEN, "forbidden");
}

#[tokio::test]
async fn documents_on_file_are_capped() {
    let t = TestApp::new().await;
    let (_, token) = register(&t, "many@drivers.test").await;
    for _ in 0..30 {
        upload(&t, &token, Some("identity"), PDF)
            .await
            .expect(StatusCode::CREATED);
    }
    upload(&t, &token, Some("identity"), PDF)
        .await
        .expect_problem(StatusCode::CONFLICT, "conflict");
    let docs = t
        .send(Method::GET, "/api/v1/driver/documents", Some(&token), None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(docs.as_array().unwrap().len(), 30);
}
