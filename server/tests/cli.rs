//! The `fleetfront` binary as an operator uses it: configuration errors, `admin create`, and
//! `serve --demo` over a real socket with graceful shutdown.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::ROLE_PASSWORD;
use serde_json::{json, Value};

/// An owner-role URL for the test database `name`, derived from the harness's superuser URL.
fn owner_url(name: &str) -> String {
    let base = std::env::var("FLEETFRONT_TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .expect("test database URL");
    let rest = base
        .split_once("://")
        .map(|(_, r)| r)
        .expect("URL with scheme");
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let query = path
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    format!("postgres://fleetfront_owner:{ROLE_PASSWORD}@{host}/{name}{query}")
}

fn fleetfront() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fleetfront"));
    cmd.env_remove("DATABASE_URL")
        .env_remove("FLEETFRONT_LISTEN")
        .env("FLEETFRONT_LOG", "warn");
    cmd
}

#[test]
fn bad_configuration_is_named_and_exits_2() {
    let output = fleetfront()
        .args(["serve", "--listen", "not-an-address"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("FLEETFRONT_LISTEN"), "{stderr}");
    let output = fleetfront()
        .arg("migrate")
        .env("DATABASE_URL", "mysql://nope")
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("DATABASE_URL"));
}

fn admin_create(url: &str, email: &str, password: &str) -> std::process::Output {
    let mut child = fleetfront()
        .args(["admin", "create", "--email", email, "--password-stdin"])
        .env("DATABASE_URL", url)
        .env("FLEETFRONT_APP_DB_PASSWORD", ROLE_PASSWORD)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawns");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("writes");
    child.wait_with_output().expect("finishes")
}

#[tokio::test]
async fn admin_create_reads_the_password_from_stdin() {
    let db = common::fresh_db().await;
    let url = owner_url(&db.name);
    let weak = admin_create(&url, "root@fleetfront.test", "short");
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("at least 10 characters"));
    let created = admin_create(&url, "root@fleetfront.test", "a long admin password");
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    assert!(String::from_utf8_lossy(&created.stdout).contains("created"));
    let again = admin_create(&url, "root@fleetfront.test", "a long admin password");
    assert!(String::from_utf8_lossy(&again.stdout).contains("already exists"));
    let t = common::TestApp::over(db);
    let tokens = t
        .login("root@fleetfront.test", "a long admin password")
        .await;
    assert_eq!(tokens["principal"]["kind"], "admin");
}

#[tokio::test]
async fn serve_demo_answers_over_a_socket_and_shuts_down_gracefully() {
    let db = common::fresh_db().await;
    let url = owner_url(&db.name);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("addr")
        .port();
    let data = std::env::temp_dir().join(format!("ff-serve-{}", uuid::Uuid::new_v4().simple()));
    let mut child = fleetfront()
        .args([
            "serve",
            "--demo",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(&data)
        .env("DATABASE_URL", &url)
        .env("FLEETFRONT_APP_DB_PASSWORD", ROLE_PASSWORD)
        .spawn()
        .expect("spawns");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await {
            if r.status().is_success() {
                break;
            }
        }
        assert!(Instant::now() < deadline, "server did not become ready");
        assert!(
            child.try_wait().expect("status").is_none(),
            "server exited early"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let login: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": "owner@greengrocer.test", "password": fleetfront_server::demo::PASSWORD}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    let token = login["access_token"].as_str().expect("token");
    let storefront = client
        .get(format!("{base}/api/v1/business/storefront"))
        .bearer_auth(token)
        .send()
        .await
        .expect("read");
    assert_eq!(storefront.status(), 200);
    assert!(storefront.headers().contains_key("x-request-id"));
    let body: Value = storefront.json().await.expect("json");
    assert_eq!(body["subdomain"], "greengrocer");
    // The demo stores have a public catalog.
    let products: Value = client
        .get(format!(
            "{base}/api/v1/storefronts/greengrocer/products?sort=price_asc"
        ))
        .send()
        .await
        .expect("browse")
        .json()
        .await
        .expect("json");
    assert_eq!(
        products["items"].as_array().map(Vec::len),
        Some(3),
        "{products}"
    );
    assert_eq!(products["items"][0]["name"], "Carrots");
    // The demo driver is approved, dedicated to Pizza Palace, and may go online; the data key
    // that seals its bank account was generated into the data folder, readable by the owner only.
    let login: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": "driver@fleetfront.test", "password": fleetfront_server::demo::PASSWORD}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    let online = client
        .patch(format!("{base}/api/v1/driver/availability"))
        .bearer_auth(login["access_token"].as_str().expect("driver token"))
        .json(&json!({"online": true}))
        .send()
        .await
        .expect("online");
    assert_eq!(online.status(), 200);
    let online: Value = online.json().await.expect("json");
    assert_eq!(
        online["dedicated_businesses"][0]["business_name"],
        "Pizza Palace"
    );
    assert_eq!(online["in_window_now"], true);
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("data-key"))
            .expect("data key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("status") {
            break exit;
        }
        assert!(Instant::now() < deadline, "server did not shut down");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "graceful shutdown exits 0: {exit:?}");
    let _ = std::fs::remove_dir_all(&data);
}
