//! The `locations` scenario: simulated drivers on a synthetic city (30×30 km around Helsinki)
//! send batches of GPS fixes to `POST /api/v1/driver/location`, and a prober measures how long a
//! fix takes from its send to its visibility through the admin's nearest-drivers read.
//!
//! Drivers are real accounts, made through the public API as an operator would: each registers
//! (`/api/v1/auth/driver/register`, an argon2id hash on the server) and the demo admin approves
//! it (`/api/v1/admin/drivers/{id}/approve`), many at once; the seeding time is reported. A few
//! drivers are kept apart for the prober so their sequence numbers never race the load.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::{DateTime, SubsecRound, Utc};
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use crate::load::{Op, OpFuture};
use crate::seed::{checked, login, ADMIN_EMAIL, PASSWORD};

/// Centre of the synthetic city.
pub const CITY_LAT: f64 = 60.17;
/// Centre of the synthetic city.
pub const CITY_LON: f64 = 24.94;
/// Half the city's side in degrees of latitude (15 km).
pub const HALF_LAT: f64 = 15_000.0 / 111_320.0;

/// Half the city's side in degrees of longitude at its latitude (15 km).
pub fn half_lon() -> f64 {
    15_000.0 / (111_320.0 * CITY_LAT.to_radians().cos())
}

/// A deterministic point of the city for `n` (splitmix64 spread).
pub fn city_point(n: u64) -> (f64, f64) {
    let h = crate::seed::mix(n);
    let a = (h >> 32) as f64 / f64::from(u32::MAX);
    let b = (h & 0xffff_ffff) as f64 / f64::from(u32::MAX);
    (
        CITY_LAT + (a * 2.0 - 1.0) * HALF_LAT,
        CITY_LON + (b * 2.0 - 1.0) * half_lon(),
    )
}

/// A seeded driver.
pub struct Driver {
    /// Account id.
    pub id: String,
    /// Access token.
    pub token: String,
    /// Where the driver circles around.
    pub home: (f64, f64),
    /// Next batch number.
    pub batches: AtomicI64,
}

/// Registers and approves `count` drivers, `concurrency` at a time.
pub async fn seed_drivers(
    client: &reqwest::Client,
    url: &str,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<Vec<Arc<Driver>>> {
    let admin = Arc::new(login(client, url, ADMIN_EMAIL, PASSWORD).await?);
    let salt: u32 = rand::random();
    let slots = Arc::new(Semaphore::new(concurrency));
    let mut tasks = Vec::with_capacity(count);
    for i in 0..count {
        let permit = slots.clone().acquire_owned().await?;
        let client = client.clone();
        let url = url.to_owned();
        let admin = admin.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let email = format!("bench-driver-{salt:08x}-{i}@drivers.test");
            let response = client
                .post(format!("{url}/api/v1/auth/driver/register"))
                .json(&json!({
                    "email": email,
                    "password": PASSWORD,
                    "full_name": format!("Bench Driver {i}"),
                    "phone": format!("+35840{:07}", i % 10_000_000),
                }))
                .send()
                .await?;
            let body = checked(response, "driver registration").await?;
            let id = body["principal"]["id"]
                .as_str()
                .context("no principal id in the registration response")?
                .to_owned();
            let token = body["access_token"]
                .as_str()
                .context("no access token in the registration response")?
                .to_owned();
            let response = client
                .post(format!("{url}/api/v1/admin/drivers/{id}/approve"))
                .bearer_auth(admin.as_str())
                .send()
                .await?;
            checked(response, "driver approval").await?;
            anyhow::Ok(Arc::new(Driver {
                id,
                token,
                home: city_point(i as u64),
                batches: AtomicI64::new(0),
            }))
        }));
    }
    let mut drivers = Vec::with_capacity(count);
    for task in tasks {
        drivers.push(task.await??);
    }
    Ok(drivers)
}

/// The position of a driver at fix number `seq`: circling its home at ~11 m/s, 1 fix/s.
fn position(home: (f64, f64), seq: i64) -> (f64, f64) {
    let angle = seq as f64 * 0.01;
    (home.0 + 0.01 * angle.sin(), home.1 + 0.02 * angle.cos())
}

/// The JSON body of a batch of `size` fixes (1 Hz) ending now, and its newest fix's position
/// and time.
fn batch_body(
    device: &str,
    home: (f64, f64),
    first_seq: i64,
    size: usize,
) -> (String, (f64, f64), DateTime<Utc>) {
    let now = Utc::now().trunc_subsecs(6);
    let mut fixes = Vec::with_capacity(size);
    let mut last = (home, now);
    for i in 0..size {
        let seq = first_seq + i as i64;
        let at = now - chrono::Duration::seconds((size - 1 - i) as i64);
        let (lat, lon) = position(home, seq);
        last = ((lat, lon), at);
        fixes.push(format!(
            "{{\"latitude\":{lat:.7},\"longitude\":{lon:.7},\"accuracy_m\":6.0,\"heading_deg\":90.0,\
             \"speed_mps\":11.0,\"recorded_at\":\"{}\",\"seq\":{seq}}}",
            at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        ));
    }
    (
        format!(
            "{{\"device_id\":\"{device}\",\"fixes\":[{}]}}",
            fixes.join(",")
        ),
        last.0,
        last.1,
    )
}

/// Positions are rounded to 1e-7° on the wire; the prober compares what it reads with this.
fn wire(x: f64) -> f64 {
    (x * 1e7).round() / 1e7
}

async fn send_batch(
    client: &reqwest::Client,
    url: &str,
    driver: &Driver,
    size: usize,
) -> (Option<u16>, (f64, f64), DateTime<Utc>) {
    let n = driver.batches.fetch_add(1, Ordering::Relaxed);
    let (body, at, when) = batch_body("bench-phone", driver.home, n * size as i64, size);
    let status = client
        .post(format!("{url}/api/v1/driver/location"))
        .bearer_auth(&driver.token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16());
    (status, (wire(at.0), wire(at.1)), when)
}

/// The load: request `n` sends the next batch of driver `n mod drivers`.
pub fn ingest(
    client: &reqwest::Client,
    url: &str,
    drivers: Arc<Vec<Arc<Driver>>>,
    size: usize,
) -> Op {
    let client = client.clone();
    let url = url.to_owned();
    Arc::new(move |n| -> OpFuture {
        let client = client.clone();
        let url = url.clone();
        let driver = drivers[(n % drivers.len() as u64) as usize].clone();
        Box::pin(async move { send_batch(&client, &url, &driver, size).await.0 })
    })
}

/// What the prober saw.
pub struct Visibility {
    /// Send-to-visible delays, µs, sorted.
    pub delays: Vec<u64>,
    /// Probes whose fix was not seen within 5 s (or whose send failed).
    pub missed: usize,
}

impl Visibility {
    /// A report line.
    pub fn report(&self) -> String {
        let p = |q: f64| {
            if self.delays.is_empty() {
                0.0
            } else {
                self.delays[((self.delays.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0
            }
        };
        format!(
            "visible  probes={} missed={} send-to-visible p50={:.2}ms p99={:.2}ms max={:.2}ms",
            self.delays.len(),
            self.missed,
            p(0.5),
            p(0.99),
            p(1.0)
        )
    }
}

/// Until `deadline`, each prober driver in turn sends a batch and polls the admin's nearest
/// read at its newest position until the driver shows there with that fix; `tasks` probers
/// run at once.
pub async fn probe(
    client: reqwest::Client,
    url: String,
    probers: Vec<Arc<Driver>>,
    size: usize,
    tasks: usize,
    deadline: Instant,
) -> anyhow::Result<Visibility> {
    let admin = Arc::new(login(&client, &url, ADMIN_EMAIL, PASSWORD).await?);
    let probers = Arc::new(probers);
    let mut handles = Vec::new();
    for t in 0..tasks {
        let client = client.clone();
        let url = url.clone();
        let admin = admin.clone();
        let probers = probers.clone();
        handles.push(tokio::spawn(async move {
            let mut delays = Vec::new();
            let mut missed = 0usize;
            let mut i = t;
            while Instant::now() < deadline {
                let driver = &probers[i % probers.len()];
                i += tasks;
                let t0 = Instant::now();
                let (status, (lat, lon), when) = send_batch(&client, &url, driver, size).await;
                if status != Some(202) {
                    missed += 1;
                    continue;
                }
                let give_up = t0 + Duration::from_secs(5);
                let mut seen = false;
                while Instant::now() < give_up {
                    let found: Option<Value> = async {
                        client
                            .get(format!(
                                "{url}/api/v1/admin/drivers/locations?near={lat},{lon}&k=1&max_distance_m=100"
                            ))
                            .bearer_auth(admin.as_str())
                            .send()
                            .await
                            .ok()?
                            .json()
                            .await
                            .ok()
                    }
                    .await;
                    let first = found.as_ref().and_then(|f| f["drivers"].get(0));
                    let visible = first.is_some_and(|d| {
                        d["driver_id"] == driver.id.as_str()
                            && d["last_seen_at"]
                                .as_str()
                                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                                .is_some_and(|s| s == when)
                    });
                    if visible {
                        seen = true;
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                if seen {
                    delays.push(t0.elapsed().as_micros() as u64);
                } else {
                    missed += 1;
                }
                // About 20 probes per second per task: a sample, not a load of its own.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (delays, missed)
        }));
    }
    let mut all = Visibility {
        delays: Vec::new(),
        missed: 0,
    };
    for h in handles {
        let (d, m) = h.await?;
        all.delays.extend(d);
        all.missed += m;
    }
    all.delays.sort_unstable();
    if all.delays.is_empty() {
        bail!(
            "no probe saw its fix become visible ({} missed)",
            all.missed
        );
    }
    Ok(all)
}
