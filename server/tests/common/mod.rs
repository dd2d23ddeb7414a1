//! Shared test harness: a fresh database per test (cloned from a migrated template), the real
//! router driven with `oneshot`, and helpers to sign in and seed businesses.
//!
//! The PostgreSQL server comes from `FLEETFRONT_TEST_DATABASE_URL` (a superuser URL, set by
//! `scripts/test.sh`, which starts a temporary cluster when `DATABASE_URL` is unset).

#![allow(dead_code, clippy::unwrap_used)]

use std::str::FromStr;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use fleetfront_domain::api::admin::{CreateBusinessRequest, LocationInput, OwnerInput};
use fleetfront_domain::hours::OperatingHours;
use fleetfront_domain::value::Email;
use fleetfront_server::auth::Keys;
use fleetfront_server::db::Db;
use fleetfront_server::pg::{self, Pools, APP_ROLE, OWNER_ROLE};
use fleetfront_server::App;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use tower::ServiceExt;
use uuid::Uuid;

pub mod fleet;
pub mod net;

/// Password given to the test roles (needed when the server uses password auth over TCP).
pub const ROLE_PASSWORD: &str = "fleetfront-test-role";
/// Password of accounts the helpers create.
pub const PASSWORD: &str = "correct horse battery";

fn admin_options() -> PgConnectOptions {
    let url = std::env::var("FLEETFRONT_TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .expect("FLEETFRONT_TEST_DATABASE_URL is not set: run the tests with scripts/test.sh");
    PgConnectOptions::from_str(&url)
        .expect("valid test database URL")
        .disable_statement_logging()
}

fn template_name() -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for m in pg::MIGRATOR.iter() {
        std::hash::Hash::hash(&m.checksum, &mut hasher);
    }
    format!("ff_tpl_{:016x}", std::hash::Hasher::finish(&hasher))
}

/// One test's database.
pub struct TestDb {
    /// Database name.
    pub name: String,
    /// Owner and runtime pools.
    pub pools: Pools,
}

impl TestDb {
    /// Options to connect to this database as `user`.
    pub fn options(&self, user: &str) -> PgConnectOptions {
        admin_options()
            .username(user)
            .password(ROLE_PASSWORD)
            .database(&self.name)
    }

    /// A superuser connection to this database (to break things on purpose).
    pub async fn superuser(&self) -> PgConnection {
        PgConnection::connect_with(&admin_options().database(&self.name))
            .await
            .unwrap()
    }

    /// A new pair of pools on the same database (a server restart).
    pub async fn reconnect(&self) -> Pools {
        pg::connect(self.options(OWNER_ROLE), self.options(APP_ROLE), 8)
            .await
            .unwrap()
    }
}

/// Creates a fresh, migrated database for one test.
pub async fn fresh_db() -> TestDb {
    let mut admin = PgConnection::connect_with(&admin_options())
        .await
        .expect("connect to the test PostgreSQL as superuser");
    // One test process at a time sets up roles and the template (concurrent ALTER ROLE on the
    // same role fails with "tuple concurrently updated").
    sqlx::query("SELECT pg_advisory_lock(727275)")
        .execute(&mut admin)
        .await
        .unwrap();
    pg::ensure_roles(&mut admin, Some(ROLE_PASSWORD))
        .await
        .unwrap();
    sqlx::query(&format!(
        "ALTER ROLE {OWNER_ROLE} PASSWORD '{ROLE_PASSWORD}'"
    ))
    .execute(&mut admin)
    .await
    .unwrap();
    let template = template_name();
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&template)
            .fetch_one(&mut admin)
            .await
            .unwrap();
    if !exists {
        let building = format!("{template}_building");
        sqlx::query(&format!("DROP DATABASE IF EXISTS \"{building}\""))
            .execute(&mut admin)
            .await
            .unwrap();
        pg::ensure_database(&mut admin, &building).await.unwrap();
        let owner = sqlx::PgPool::connect_with(
            admin_options()
                .username(OWNER_ROLE)
                .password(ROLE_PASSWORD)
                .database(&building),
        )
        .await
        .unwrap();
        pg::migrate(&owner).await.unwrap();
        owner.close().await;
        sqlx::query(&format!(
            "ALTER DATABASE \"{building}\" RENAME TO \"{template}\""
        ))
        .execute(&mut admin)
        .await
        .unwrap();
    }
    let name = format!("ff_test_{}", Uuid::new_v4().simple());
    sqlx::query(&format!(
        "CREATE DATABASE \"{name}\" TEMPLATE \"{template}\" OWNER {OWNER_ROLE}"
    ))
    .execute(&mut admin)
    .await
    .unwrap();
    sqlx::query("SELECT pg_advisory_unlock(727275)")
        .execute(&mut admin)
        .await
        .unwrap();
    pg::ensure_database(&mut admin, &name).await.unwrap();
    admin.close().await.ok();
    let options = |user: &str| {
        admin_options()
            .username(user)
            .password(ROLE_PASSWORD)
            .database(&name)
    };
    let pools = pg::connect(options(OWNER_ROLE), options(APP_ROLE), 8)
        .await
        .unwrap();
    TestDb { name, pools }
}

/// A running application over a fresh database.
pub struct TestApp {
    /// The database.
    pub db: TestDb,
    /// Handler state.
    pub app: App,
    /// The router.
    pub router: Router,
}

/// A response, decoded.
#[derive(Debug)]
pub struct Reply {
    /// Status.
    pub status: StatusCode,
    /// Content type.
    pub content_type: String,
    /// JSON body (`Null` when empty or not JSON).
    pub body: Value,
}

impl Reply {
    /// The problem's `code`.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    /// Asserts the status and returns the body.
    #[track_caller]
    pub fn expect(self, status: StatusCode) -> Value {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.body
        );
        self.body
    }

    /// Asserts a problem response with this status and code.
    #[track_caller]
    pub fn expect_problem(&self, status: StatusCode, code: &str) {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.body
        );
        assert_eq!(
            self.content_type, "application/problem+json",
            "body: {}",
            self.body
        );
        assert_eq!(self.code(), code, "body: {}", self.body);
    }
}

/// The signing keys every test app uses (tests forge tokens with them).
pub fn keys() -> Keys {
    Keys::from_secret(b"test-signing-secret-that-is-long-enough").unwrap()
}

impl TestApp {
    /// A new app over a fresh database.
    pub async fn new() -> TestApp {
        let db = fresh_db().await;
        Self::over(db)
    }

    /// An app over an existing database (e.g. after a "restart").
    pub fn over(db: TestDb) -> TestApp {
        let app = App::new(
            Db::new(db.pools.app.clone()),
            keys(),
            "fleetfront.test".into(),
            false,
        );
        app.configure_blobs(std::sync::Arc::new(
            fleetfront_server::storage::LocalDiskStore::new(blob_dir(&db.name)),
        ));
        app.configure_data_key(fleetfront_server::crypto::DataKey::from_bytes(DATA_KEY));
        let router = fleetfront_server::app(app.clone());
        TestApp { db, app, router }
    }

    /// Sends a request.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        self.send_with(method, path, token, body, &[]).await
    }

    /// Sends a request with extra headers.
    pub async fn send_with(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = match body {
            Some(body) => request
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        }
        .unwrap();
        self.raw(request).await
    }

    /// Sends a prepared request.
    pub async fn raw(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            content_type,
            body,
        }
    }

    /// Creates a platform admin and returns an access token.
    pub async fn admin_token(&self) -> String {
        let email = format!("admin-{}@fleetfront.test", Uuid::new_v4().simple());
        fleetfront_server::demo::create_admin(
            &self.db.pools,
            &Email::parse(&email).unwrap(),
            "Test Admin",
            PASSWORD,
        )
        .await
        .unwrap();
        self.login(&email, PASSWORD).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Signs in a platform account; returns the token response.
    pub async fn login(&self, email: &str, password: &str) -> Value {
        self.send(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": email, "password": password})),
        )
        .await
        .expect(StatusCode::OK)
    }

    /// Onboards a business on `plan` with owner `owner@<subdomain>.test`; returns
    /// (business id, owner access token).
    pub async fn business(&self, admin: &str, subdomain: &str, plan: &str) -> (Uuid, String) {
        let body = onboarding(subdomain, plan);
        let created = self
            .send(
                Method::POST,
                "/api/v1/admin/businesses",
                Some(admin),
                Some(body),
            )
            .await
            .expect(StatusCode::CREATED);
        let id = Uuid::parse_str(created["id"].as_str().unwrap()).unwrap();
        let token = self
            .login(&format!("owner@{subdomain}.test"), PASSWORD)
            .await["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        (id, token)
    }

    /// Onboards a business on `plan` whose storefront is published and open all day (so a
    /// checkout never meets closed hours, whenever the test runs); returns (business id, owner
    /// access token).
    pub async fn open_store(&self, subdomain: &str, plan: &str) -> (Uuid, String) {
        let admin = self.admin_token().await;
        let (business, owner) = self.business(&admin, subdomain, plan).await;
        self.send(
            Method::PATCH,
            "/api/v1/business/storefront",
            Some(&owner),
            Some(json!({"is_published": true, "operating_hours": all_day()})),
        )
        .await
        .expect(StatusCode::OK);
        (business, owner)
    }

    /// Delivery: 3.00 base within 1 km, 1.00 per started km beyond; tax at `tax_bps`, included
    /// in prices.
    pub async fn set_delivery_fees(&self, business: Uuid, tax_bps: i32) {
        sqlx::query(
            "UPDATE business_commerce_settings SET delivery_base_fee_minor = 300, delivery_fee_per_km_minor = 100, \
             delivery_included_m = 1000, tax_rate_bps = $2 WHERE business_id = $1",
        )
        .bind(business)
        .bind(tax_bps)
        .execute(&self.db.pools.owner)
        .await
        .unwrap();
    }

    /// Creates a product from `body` (which has one variant) as `owner`; returns (product id,
    /// variant id).
    pub async fn product_with_variant(&self, owner: &str, body: Value) -> (Uuid, Uuid) {
        let product = self
            .send(
                Method::POST,
                "/api/v1/business/products",
                Some(owner),
                Some(body),
            )
            .await
            .expect(StatusCode::CREATED);
        let id = |v: &Value| Uuid::parse_str(v.as_str().unwrap()).unwrap();
        (id(&product["id"]), id(&product["variants"][0]["id"]))
    }
}

/// Opening hours from 00:00 to 23:59 every day.
pub fn all_day() -> Value {
    let day = json!([{"open": "00:00", "close": "23:59"}]);
    json!({"monday": day, "tuesday": day, "wednesday": day, "thursday": day,
           "friday": day, "saturday": day, "sunday": day})
}

/// A valid onboarding request.
pub fn onboarding(subdomain: &str, plan: &str) -> Value {
    serde_json::to_value(CreateBusinessRequest {
        name: format!("Store {subdomain}"),
        contact_email: format!("hello@{subdomain}.test"),
        contact_phone: None,
        currency: "EUR".into(),
        time_zone: "Europe/Helsinki".into(),
        delivery_radius_m: 4000,
        location: LocationInput {
            latitude: 60.17,
            longitude: 24.94,
        },
        operating_hours: Some(OperatingHours::every_day("08:00", "20:00").unwrap()),
        plan: plan.into(),
        billing_interval: None,
        owner: OwnerInput {
            email: format!("owner@{subdomain}.test"),
            full_name: "Owner".into(),
            password: Some(PASSWORD.into()),
        },
        categories: vec!["Mains".into(), "Drinks".into()],
        subdomain: subdomain.into(),
    })
    .unwrap()
}

/// The data key every test app seals personal data with.
pub const DATA_KEY: [u8; 32] = [7; 32];

/// The secret behind [`keys`], for tests that forge tokens with `jsonwebtoken` directly.
pub const SIGNING_SECRET: &[u8] = b"test-signing-secret-that-is-long-enough";

impl TestApp {
    /// Sends a request and also returns the response headers (e.g. `Retry-After`).
    pub async fn send_for_headers(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (Reply, axum::http::HeaderMap) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => request
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        }
        .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let headers = response.headers().clone();
        let status = response.status();
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let content_type = content_type.unwrap_or("").to_owned();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (
            Reply {
                status,
                content_type,
                body,
            },
            headers,
        )
    }

    /// A "restart": this app is dropped and a new one (new pools, new state, a fresh clock) is
    /// built over the same database.
    pub async fn restart(self) -> TestApp {
        let pools = self.db.reconnect().await;
        let name = self.db.name.clone();
        drop(self);
        TestApp::over(TestDb { name, pools })
    }
}

/// Where a test database's app keeps uploaded blobs: a temporary folder of its own.
pub fn blob_dir(database: &str) -> std::path::PathBuf {
    std::env::temp_dir()
        .join("fleetfront-test-blobs")
        .join(database)
}
