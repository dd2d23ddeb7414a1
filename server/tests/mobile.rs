//! fleetfront-mobile, the UniFFI library of the Android and iOS apps, driven through the Python
//! bindings UniFFI generates from it, against the real server over real HTTP: the same FFI
//! (C ABI, async calls, records, errors) Kotlin and Swift use.
//!
//! The test builds the library and its bindings generator with a nested `cargo build` on this
//! target directory (cargo releases the directory's lock once the test binaries are built, and
//! skips what is fresh), generates the bindings into a temporary directory, and runs
//! `mobile/tests/test_client.py` there; then checks the server's database.

#![allow(clippy::unwrap_used)] // A failed unwrap in a test is a failed test.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::fleet::{self, shop};
use common::net::Served;
use common::{TestApp, PASSWORD};
use serde_json::{json, Value};
use uuid::Uuid;

/// A folder removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let path = std::env::temp_dir().join(format!("fleetfront-mobile-{}", Uuid::now_v7()));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// How long the nested build may take (a cold build of the library on a slow machine) before
/// the test gives up instead of hanging, e.g. on a build lock a future cargo might keep.
const BUILD_DEADLINE: Duration = Duration::from_secs(20 * 60);

/// Builds `libfleetfront_mobile.so` and the `uniffi-bindgen` binary into this test's target
/// directory (the profile directory holding `deps/<this test>`) and returns their paths.
#[track_caller]
fn build_mobile() -> (PathBuf, PathBuf) {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    let target_dir = profile_dir.parent().unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut build = Command::new(cargo);
    build
        .current_dir(workspace_root())
        .args([
            "build",
            "--locked",
            "-p",
            "fleetfront-mobile",
            "--features",
            "bindgen",
        ])
        .args(["--lib", "--bin", "uniffi-bindgen", "--target-dir"])
        .arg(target_dir)
        .stdout(Stdio::null());
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    // Cargo runs this test with variables describing the server's package; build scripts that
    // watch one (ring's watches CARGO_MANIFEST_DIR) would rerun, and rebuild everything above
    // them, in this build and then again in the next ordinary one.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let set_by_cargo = [
            "CARGO_MANIFEST_",
            "CARGO_PKG_",
            "CARGO_BIN_",
            "CARGO_CRATE_",
        ]
        .iter()
        .any(|prefix| name.starts_with(prefix))
            || ["CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR"].contains(&name.as_ref());
        if set_by_cargo {
            build.env_remove(name.as_ref());
        }
    }
    let started = Instant::now();
    let mut child = build.spawn().unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > BUILD_DEADLINE {
            let _ = child.kill();
            panic!("building fleetfront-mobile took over {BUILD_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        status.success(),
        "building fleetfront-mobile failed: {status}"
    );
    eprintln!("fleetfront-mobile built in {:?}", started.elapsed());
    let library = profile_dir.join(format!(
        "{}fleetfront_mobile{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    let bindgen = profile_dir.join(format!("uniffi-bindgen{}", std::env::consts::EXE_SUFFIX));
    assert!(library.is_file(), "{} missing", library.display());
    assert!(bindgen.is_file(), "{} missing", bindgen.display());
    (library, bindgen)
}

/// Generates the Python bindings into `dir`, with a copy of the library beside them (where
/// the generated module loads it from).
#[track_caller]
fn python_bindings(dir: &Path) {
    let (library, bindgen) = build_mobile();
    let copy = dir.join(library.file_name().unwrap());
    std::fs::copy(&library, &copy).unwrap();
    let out = Command::new(bindgen)
        .args([
            "generate",
            "--language",
            "python",
            "--no-format",
            "--library",
        ])
        .arg(&copy)
        .arg("--out-dir")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "uniffi-bindgen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.join("fleetfront_mobile.py").is_file());
}

async fn pending_order(t: &TestApp, shop: &fleet::Shop) -> Uuid {
    let order = fleet::guest_order(t, shop, json!({"kind": "pickup"}), 1000).await;
    order["id"].as_str().unwrap().parse().unwrap()
}

async fn server_status(t: &TestApp, order: Uuid) -> String {
    sqlx::query_scalar("SELECT status FROM orders WHERE id = $1")
        .bind(order)
        .fetch_one(&t.db.pools.owner)
        .await
        .unwrap()
}

async fn email_of(t: &TestApp, user: Uuid) -> String {
    sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
        .bind(user)
        .fetch_one(&t.db.pools.owner)
        .await
        .unwrap()
}

/// Where a scenario of `test_client.py` runs: its bindings and the device's folder.
struct Device {
    bindings: TempDir,
    files: TempDir,
}

impl Device {
    /// Builds the library and generates its Python bindings (before the database and the
    /// server are up: the build blocks).
    async fn new() -> Device {
        let bindings = TempDir::new();
        let dir = bindings.0.clone();
        tokio::task::spawn_blocking(move || python_bindings(&dir))
            .await
            .unwrap();
        Device {
            bindings,
            files: TempDir::new(),
        }
    }

    /// Runs `test_client.py <scenario>` signed in as `email` against `net`, while this
    /// runtime serves its requests; returns the JSON of its last line.
    async fn run(&self, scenario: &str, net: &Served, email: &str, env: &[(&str, &str)]) -> Value {
        let script = workspace_root().join("mobile/tests/test_client.py");
        let out = tokio::process::Command::new("python3")
            .arg(&script)
            .arg(scenario)
            .env("PYTHONPATH", &self.bindings.0)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("FLEETFRONT_URL", &net.url)
            .env("FLEETFRONT_EMAIL", email)
            .env("FLEETFRONT_PASSWORD", PASSWORD)
            .env("FLEETFRONT_DIR", &self.files.0)
            .envs(env.iter().copied())
            .kill_on_drop(true)
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "test_client.py {scenario} failed ({}):\n{stdout}\n{stderr}",
            out.status
        );
        let report = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
        eprintln!("test_client.py {scenario}: {report}");
        report
    }
}

fn id(report: &Value, field: &str) -> Uuid {
    report[field].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_till_on_the_mobile_library_works_offline_and_syncs() {
    let device = Device::new().await;
    let t = TestApp::new().await;
    let shop = shop(&t, "mobiletill").await;
    let first = pending_order(&t, &shop).await;
    let second = pending_order(&t, &shop).await;
    let net = Served::start(t.router.clone()).await;

    let email = format!("owner@{}.test", shop.subdomain);
    let orders = format!("{first},{second}");
    let report = device
        .run("till", &net, &email, &[("FLEETFRONT_ORDERS", &orders)])
        .await;

    // What the device did reached the server, once, with the action's own time.
    assert_eq!(server_status(&t, first).await, "confirmed");
    assert_eq!(server_status(&t, second).await, "confirmed");
    let kept: Vec<(Uuid, String, chrono::DateTime<chrono::Utc>)> =
        sqlx::query_as("SELECT id, status, action_time FROM sync_mutations ORDER BY seq")
            .fetch_all(&t.db.pools.owner)
            .await
            .unwrap();
    assert_eq!(
        kept.iter()
            .map(|(id, status, _)| (*id, status.as_str()))
            .collect::<Vec<_>>(),
        vec![
            (id(&report, "offline_mutation_id"), "applied"),
            (id(&report, "background_mutation_id"), "applied")
        ]
    );
    assert_eq!(
        kept[0].2.timestamp_millis(),
        report["offline_action_time_ms"].as_i64().unwrap()
    );
    // The refusal carried the domain's stable code.
    assert!(!report["refused_code"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn a_driver_on_the_mobile_library_delivers_offline_and_it_lands_once() {
    let device = Device::new().await;
    let t = TestApp::new().await;
    let shop = shop(&t, "mobiledrive").await;
    let (ann, _) = fleet::driver(&t, "Ann", (60.171, 24.94), Some((shop.business, 1))).await;
    let order = fleet::accepted_order(&t, &shop).await;
    let net = Served::start(t.router.clone()).await;

    let report = device
        .run("driver", &net, &email_of(&t, ann).await, &[])
        .await;

    assert_eq!(server_status(&t, order).await, "delivered");
    let delivery = id(&report, "delivery_id");
    let (order_of_delivery, status): (Uuid, String) =
        sqlx::query_as("SELECT order_id, status FROM deliveries WHERE id = $1")
            .bind(delivery)
            .fetch_one(&t.db.pools.owner)
            .await
            .unwrap();
    assert_eq!((order_of_delivery, status.as_str()), (order, "delivered"));
    let steps: Vec<(String, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "SELECT status, action_time FROM sync_mutations WHERE name = 'delivery.step@1' \
         ORDER BY seq",
    )
    .fetch_all(&t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(steps.len(), 3, "{steps:?}");
    assert!(steps.iter().all(|(status, _)| status == "applied"));
    assert_eq!(
        steps[2].1.timestamp_millis(),
        report["delivered_at_ms"].as_i64().unwrap()
    );
}
