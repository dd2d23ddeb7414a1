//! The sync benchmark (issue 5): the offline-first client of `fleetfront-core` (its file-backed
//! SQLite [`Store`], [`ApiClient`] and [`SyncEngine`]) against a running server, and its store
//! alone at a large size.
//!
//! `sync` seeds a store of its own (a new business, `--sync-products` products, so its buckets
//! hold nothing the other scenarios wrote) and measures, a couple of times each:
//! 1. the initial pull of its catalog into an empty client store, end to end and the local
//!    apply alone, with the bytes on the wire;
//! 2. an incremental pull with nothing changed;
//! 3. an incremental pull after one product changed 50 times (one row expected);
//! 4. a push of 1,000 queued `order.accept@1` in batches of 500;
//! 5. three devices (three staff sessions) with 1,000 offline mutations each on 50 shared
//!    orders reconnecting at once: the time until the three stores hold identical order rows
//!    at the server's head, then every order's status history checked against the order rules.
//!
//! `sync-local` needs no server: it fills a store with `--sync-local-rows` synthetic rows
//! through [`Store::apply_pull`] and times one upsert and one tombstone on it.
//!
//! While client stores apply pulls, a reader thread reads `rows("product")` in a loop, and every
//! "database is locked"/busy error anywhere is counted (the target is none). Timing targets
//! are reported as met or not; only broken correctness (busy errors, diverging stores, a
//! forbidden order history, a mutation without a result) fails the run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use fleetfront_core::{ApiClient, Store, StoreError, SyncEngine, SyncError, SyncReport};
use fleetfront_domain::api::order::TrackingView;
use fleetfront_domain::api::sync::{BucketPage, PullResponse, SyncRow};
use fleetfront_domain::order::{OrderStatus, Outcome};
use fleetfront_domain::sync::Bucket;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::cpu::{Sample, Watched};
use crate::scenario;
use crate::seed::{self, BenchStore};

/// Mutations a device pushes at most at once (the engine's batch, the server's limit).
const PUSH_BATCH: usize = fleetfront_core::engine::PUSH_BATCH;

/// "database is locked"/busy errors met anywhere in the suite (target: none).
static BUSY: AtomicU64 = AtomicU64::new(0);

/// What the `sync` scenario is asked to do.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Products in the sync store.
    pub products: usize,
    /// Seed of the devices' mutation mix.
    pub seed: u64,
    /// Repetitions of each figure.
    pub runs: usize,
    /// The server and PostgreSQL, for CPU per pushed mutation.
    pub watched: Watched,
    /// Clock ticks per second of `/proc` times.
    pub ticks: f64,
}

/// Whether a scenario's correctness checks held (its lines are printed as they come, so a
/// long run shows its progress).
pub struct Report {
    /// False when a correctness check failed (never for a missed timing target).
    pub passed: bool,
}

impl Report {
    fn new() -> Self {
        Self { passed: true }
    }

    fn line(&mut self, line: String) {
        println!("{line}");
    }

    fn fail(&mut self, why: String) {
        self.line(format!("sync     FAILED: {why}"));
        self.passed = false;
    }
}

/// "database is locked", "database is busy" and the like.
fn is_busy(e: &StoreError) -> bool {
    if e.is_retryable() {
        return true;
    }
    let text = e.to_string().to_lowercase();
    text.contains("locked") || text.contains("busy")
}

/// A store call's result, counting busy errors.
fn counted<T>(result: Result<T, StoreError>) -> anyhow::Result<T> {
    result.map_err(|e| {
        if is_busy(&e) {
            BUSY.fetch_add(1, Ordering::Relaxed);
        }
        anyhow::Error::new(e)
    })
}

/// A sync round's result, counting busy errors of its store.
fn counted_round(result: Result<SyncReport, SyncError>) -> anyhow::Result<SyncReport> {
    result.map_err(|e| {
        if let SyncError::Store(store) = &e {
            if is_busy(store) {
                BUSY.fetch_add(1, Ordering::Relaxed);
            }
        }
        anyhow::Error::new(e)
    })
}

/// Runs a store call on a blocking thread, as the engine does.
async fn blocking<T, F>(store: &Arc<Store>, f: F) -> anyhow::Result<T>
where
    T: Send + 'static,
    F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
{
    let store = Arc::clone(store);
    counted(tokio::task::spawn_blocking(move || f(&store)).await?)
}

/// A thread reading every product of a store in a loop, on the store's read connection.
struct Reader {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<(u64, u64)>,
}

impl Reader {
    fn start(store: Arc<Store>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            let (mut reads, mut errors) = (0, 0);
            while !flag.load(Ordering::Relaxed) {
                match store.rows("product") {
                    Ok(_) => reads += 1,
                    Err(e) => {
                        if is_busy(&e) {
                            BUSY.fetch_add(1, Ordering::Relaxed);
                        }
                        errors += 1;
                    }
                }
            }
            (reads, errors)
        });
        Self { stop, handle }
    }

    /// Stops the thread: its reads and its errors.
    fn finish(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or((0, u64::MAX))
    }
}

/// A folder for the run's client databases, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("fleetfront-bench-sync-{}", Uuid::now_v7()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self(dir))
    }

    fn open(&self, name: &str) -> anyhow::Result<Arc<Store>> {
        Ok(Arc::new(counted(Store::open(self.0.join(name)))?))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What one pull cost on the wire.
#[derive(Clone, Debug)]
struct Wire {
    /// Response body bytes as received.
    body: usize,
    /// Status line and header bytes (HTTP/1.1 as received, CRLFs included).
    headers: usize,
    /// `Content-Encoding`, if any.
    encoding: Option<String>,
}

/// `GET /api/v1/sync/pull` as the client sends it, keeping the sizes the client never sees.
async fn raw_pull(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    cursors: &str,
    limit: Option<u32>,
) -> anyhow::Result<(PullResponse, Wire)> {
    let mut query: Vec<(&str, String)> = Vec::new();
    if !cursors.is_empty() {
        query.push(("cursors", cursors.to_owned()));
    }
    if let Some(limit) = limit {
        query.push(("limit", limit.to_string()));
    }
    let response = http
        .get(format!("{url}/api/v1/sync/pull"))
        .bearer_auth(token)
        .query(&query)
        .send()
        .await?;
    let status = response.status();
    let headers = "HTTP/1.1 200 \r\n".len()
        + status.canonical_reason().map_or(0, str::len)
        + response
            .headers()
            .iter()
            .map(|(name, value)| name.as_str().len() + 2 + value.len() + 2)
            .sum::<usize>()
        + 2;
    let encoding = response
        .headers()
        .get(reqwest::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = response.bytes().await?;
    if !status.is_success() {
        bail!(
            "pull failed: {status} {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
        );
    }
    let pull: PullResponse = serde_json::from_slice(&bytes).context("pull answer")?;
    Ok((
        pull,
        Wire {
            body: bytes.len(),
            headers,
            encoding,
        },
    ))
}

fn rows_in(pull: &PullResponse) -> usize {
    pull.buckets.iter().map(|b| b.rows.len()).sum()
}

/// One initial pull, first request to last page applied.
struct Initial {
    pages: usize,
    rows: usize,
    body: usize,
    headers: usize,
    encoding: Option<String>,
    total: Duration,
    apply: Duration,
    reader: (u64, u64),
}

async fn initial_pull(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    store: &Arc<Store>,
    limit: Option<u32>,
    with_reader: bool,
) -> anyhow::Result<Initial> {
    let reader = with_reader.then(|| Reader::start(Arc::clone(store)));
    let t0 = Instant::now();
    let mut out = Initial {
        pages: 0,
        rows: 0,
        body: 0,
        headers: 0,
        encoding: None,
        total: Duration::ZERO,
        apply: Duration::ZERO,
        reader: (0, 0),
    };
    let outcome: anyhow::Result<()> = async {
        loop {
            if out.pages == 1_000 {
                bail!("still more to pull after 1,000 pages");
            }
            let cursors = blocking(store, |s| s.cursors()).await?;
            let (pull, wire) = raw_pull(http, url, token, &cursors, limit).await?;
            out.pages += 1;
            out.rows += rows_in(&pull);
            out.body += wire.body;
            out.headers += wire.headers;
            out.encoding = out.encoding.take().or(wire.encoding);
            let more = pull.more;
            let (applied, took) = blocking(store, move |s| {
                let t = Instant::now();
                let applied = s.apply_pull(&pull)?;
                Ok((applied, t.elapsed()))
            })
            .await?;
            out.apply += took;
            if !applied.mismatched.is_empty() {
                bail!("checksum mismatch on {:?}", applied.mismatched);
            }
            if !more {
                return Ok(());
            }
        }
    }
    .await;
    out.total = t0.elapsed();
    out.reader = reader.map_or((0, 0), Reader::finish);
    outcome.map(|()| out)
}

/// Server and PostgreSQL CPU per mutation between two samples.
fn per_mutation(before: Sample, after: Sample, mutations: u32) -> String {
    let each = |b: Option<f64>, a: Option<f64>| match (b, a) {
        (Some(b), Some(a)) => format!("{:.0} µs", (a - b) * 1e6 / f64::from(mutations)),
        _ => "n/a".to_owned(),
    };
    format!(
        "server {} + PostgreSQL {}",
        each(before.server, after.server),
        each(before.postgres, after.postgres)
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `a–b` of the values (or one value), with `digits` decimals.
fn span(values: &[f64], digits: usize) -> String {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if values.is_empty() {
        "n/a".to_owned()
    } else if (max - min).abs() < f64::EPSILON {
        format!("{min:.digits$}")
    } else {
        format!("{min:.digits$}–{max:.digits$}")
    }
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "NOT MET"
    }
}

fn max_of(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

/// Signs in as the store's owner (a staff session) through the client's [`ApiClient`].
async fn staff_session(url: &str, store: &BenchStore) -> anyhow::Result<ApiClient> {
    let mut api = ApiClient::new(url);
    api.login(&format!("owner@{}.test", store.subdomain), seed::PASSWORD)
        .await
        .context("staff sign-in")?;
    Ok(api)
}

/// A placed guest order: its id and its private tracking token.
struct Placed {
    id: Uuid,
    tracking: String,
}

/// Places `n` guest orders (pickup, cash: pending until the store accepts), 16 at a time.
async fn place_orders(
    http: &reqwest::Client,
    url: &str,
    store: &BenchStore,
    n: usize,
) -> anyhow::Result<Vec<Placed>> {
    let slots = Arc::new(Semaphore::new(16));
    let endpoint = format!("{url}/api/v1/customers/guest-checkout");
    let mut tasks = Vec::with_capacity(n);
    // Not the first product: the pull figures change its price.
    let on_sale = &store.products[1..];
    for i in 0..n {
        let product = on_sale[i % on_sale.len()];
        let body = scenario::guest_order(&store.subdomain, "sync@bench.test", product);
        let permit = slots.clone().acquire_owned().await?;
        let request = http
            .post(&endpoint)
            .header("idempotency-key", Uuid::now_v7().to_string())
            .json(&body);
        tasks.push(tokio::spawn(async move {
            let response = request.send().await?;
            let body = seed::checked(response, "placing an order").await?;
            drop(permit);
            Ok::<_, anyhow::Error>(Placed {
                id: body["id"]
                    .as_str()
                    .and_then(|s| Uuid::parse_str(s).ok())
                    .context("no order id in the answer")?,
                tracking: body["tracking_token"]
                    .as_str()
                    .context("no tracking token in the answer")?
                    .to_owned(),
            })
        }));
    }
    let mut ids = Vec::with_capacity(n);
    for task in tasks {
        ids.push(task.await??);
    }
    Ok(ids)
}

/// Runs the `sync` scenario against the server at `url`.
///
/// # Errors
/// The server or the client store failing outright (a missed target or a failed check is a
/// line of the report instead).
pub async fn run(http: &reqwest::Client, url: &str, settings: &Settings) -> anyhow::Result<Report> {
    let mut report = Report::new();
    let busy_before = BUSY.load(Ordering::Relaxed);
    let t0 = Instant::now();
    let store = seed::seed(http, url, settings.products, 1).await?;
    report.line(format!(
        "sync     seeded store {:?}: {} products (no variants) + 1 product with 1 variant, 2 categories, in {:.1}s",
        store.subdomain,
        store.products.len(),
        t0.elapsed().as_secs_f64()
    ));
    let scratch = Scratch::new()?;
    let staff = staff_session(url, &store).await?;
    let token = staff
        .access_token
        .clone()
        .context("signed in without a token")?;

    // 1. Initial pull into empty stores, at the server's default page and at its largest,
    // alone and with a reader thread reading every product in a tight loop meanwhile (it takes
    // one of the two cores, so it is timed apart).
    let mut last = None;
    for (limit, with_reader) in [
        (None, false),
        (None, true),
        (Some(5_000), false),
        (Some(5_000), true),
    ] {
        let (mut totals, mut applies) = (Vec::new(), Vec::new());
        let mut sample = None;
        for run in 0..settings.runs {
            let name = format!("initial-{}-{with_reader}-{run}.db", limit.unwrap_or(0));
            let client = scratch.open(&name)?;
            let pulled = initial_pull(http, url, &token, &client, limit, with_reader).await?;
            totals.push(pulled.total.as_secs_f64());
            applies.push(ms(pulled.apply));
            if pulled.reader.1 > 0 {
                report.fail(format!(
                    "the reader thread met {} errors during the initial pull",
                    pulled.reader.1
                ));
            }
            let products = blocking(&client, |s| s.rows("product")).await?.len();
            if products != store.products.len() + 1 {
                report.fail(format!(
                    "the client holds {products} products after the initial pull, not {}",
                    store.products.len() + 1
                ));
            }
            sample = Some(pulled);
            last = Some(client);
        }
        let Some(s) = sample else { continue };
        let total_ok = max_of(&totals) <= 1.0;
        let apply_ok = max_of(&applies) <= 150.0;
        report.line(format!(
            "sync     1 initial pull, limit {}, {}: {} rows in {} pages; end-to-end {} s (≤ 1 s: {}), local apply {} ms (≤ 150 ms: {}); body {:.2} MB, headers {} B over the pages, content-encoding {}; reader thread {} reads, {} errors",
            limit.map_or("default (1,000)".to_owned(), |l| l.to_string()),
            if with_reader { "reader thread busy" } else { "no other reader" },
            s.rows,
            s.pages,
            span(&totals, 2),
            verdict(total_ok),
            span(&applies, 0),
            verdict(apply_ok),
            s.body as f64 / 1e6,
            s.headers,
            s.encoding.as_deref().unwrap_or("none (uncompressed)"),
            s.reader.0,
            s.reader.1,
        ));
    }
    let client = last.context("no initial pull ran")?;

    // 2. Nothing changed: an incremental pull.
    let (mut bodies, mut headers) = (Vec::new(), Vec::new());
    for _ in 0..settings.runs.max(3) {
        let cursors = blocking(&client, |s| s.cursors()).await?;
        let (pull, wire) = raw_pull(http, url, &token, &cursors, None).await?;
        if !pull.buckets.is_empty() || pull.more {
            report.fail(format!(
                "an incremental pull with nothing changed answered {} buckets",
                pull.buckets.len()
            ));
        }
        bodies.push(wire.body as f64);
        headers.push(wire.headers as f64);
    }
    report.line(format!(
        "sync     2 empty incremental pull: body {} B (≤ 200 B: {}), headers {} B",
        span(&bodies, 0),
        verdict(max_of(&bodies) <= 200.0),
        span(&headers, 0),
    ));

    // 3. One product changed 50 times, then an incremental pull.
    let product = store.products[0];
    let (mut bodies, mut headers) = (Vec::new(), Vec::new());
    let mut one_row = true;
    for run in 0..settings.runs {
        for i in 0..50 {
            let price = 300 + (run * 50 + i) as i64;
            let response = http
                .patch(format!("{url}/api/v1/business/products/{}", product.id))
                .bearer_auth(&store.owner_token)
                .json(&json!({"price_minor": price}))
                .send()
                .await?;
            seed::checked(response, "changing a product").await?;
        }
        let cursors = blocking(&client, |s| s.cursors()).await?;
        let (pull, wire) = raw_pull(http, url, &token, &cursors, None).await?;
        let rows: Vec<&SyncRow> = pull.buckets.iter().flat_map(|b| &b.rows).collect();
        let expected = 300 + (run * 50 + 49) as i64;
        let right = rows.len() == 1
            && rows[0].id == product.id
            && rows[0]
                .data
                .as_ref()
                .and_then(|d| d["price_minor"].as_i64())
                == Some(expected);
        if !right {
            one_row = false;
            report.fail(format!(
                "after 50 changes of one product the pull carried {} rows, not that product's last state",
                rows.len()
            ));
        }
        blocking(&client, move |s| s.apply_pull(&pull)).await?;
        bodies.push(wire.body as f64);
        headers.push(wire.headers as f64);
    }
    report.line(format!(
        "sync     3 one product changed 50 times, incremental pull: body {} B (≤ 1,024 B: {}), exactly one row: {}; headers {} B",
        span(&bodies, 0),
        verdict(max_of(&bodies) <= 1024.0),
        if one_row { "yes" } else { "NO" },
        span(&headers, 0),
    ));
    drop(client);

    // 4. A push of 1,000 queued order.accept.
    let mut pushes = Vec::new();
    let mut pulls = Vec::new();
    let mut cpu = Vec::new();
    for run in 0..settings.runs {
        let orders: Vec<Uuid> = place_orders(http, url, &store, 1_000)
            .await?
            .into_iter()
            .map(|o| o.id)
            .collect();
        let device = scratch.open(&format!("push-{run}.db"))?;
        let api = staff_session(url, &store).await?;
        let engine = SyncEngine::new(Arc::clone(&device), api.clone());
        counted_round(engine.sync_now().await)?;
        let queued = orders.clone();
        blocking(&device, move |s| {
            for id in queued {
                s.enqueue(
                    "order.accept@1",
                    json!({"order_id": id, "prep_time": 15}),
                    chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now()),
                )?;
            }
            Ok(())
        })
        .await?;
        let client_id = blocking(&device, |s| s.client_id()).await?;
        // The engine's push loop, timed on its own (the engine times push and pull together).
        let cpu_before = settings.watched.sample(settings.ticks);
        let t = Instant::now();
        let (mut applied, mut rejected, mut batches) = (0, 0, 0);
        loop {
            let batch = blocking(&device, |s| s.pending(PUSH_BATCH)).await?;
            if batch.is_empty() {
                break;
            }
            batches += 1;
            let answer = api.push(client_id, batch).await?;
            let recorded = blocking(&device, move |s| s.record_results(&answer)).await?;
            applied += recorded.applied;
            rejected += recorded.rejected;
            if recorded.applied + recorded.rejected == 0 {
                bail!("the server decided none of a push");
            }
        }
        let pushed = t.elapsed();
        cpu.push(per_mutation(
            cpu_before,
            settings.watched.sample(settings.ticks),
            1_000,
        ));
        let t = Instant::now();
        counted_round(engine.sync_now().await)?;
        let pulled = t.elapsed();
        pushes.push(pushed.as_secs_f64());
        pulls.push(ms(pulled));
        let local = blocking(&device, |s| s.rows("order")).await?;
        let confirmed = local
            .iter()
            .filter(|(id, data)| orders.contains(id) && data["status"] == "confirmed")
            .count();
        if applied != 1_000 || rejected != 0 || confirmed != 1_000 {
            report.fail(format!(
                "push of 1,000 accepts: {applied} applied, {rejected} rejected, {confirmed} confirmed locally after the pull"
            ));
        }
        if run == 0 {
            report.line(format!(
                "sync     4 (run 1: {batches} batches, {applied} applied, {rejected} rejected, {confirmed} orders confirmed in the client store)"
            ));
        }
    }
    report.line(format!(
        "sync     4 push of 1,000 queued order.accept (batches of ≤ {PUSH_BATCH}): all applied in {} s (≤ 2 s: {}); the pull of the 1,000 changed orders after it {} ms; CPU per mutation {}",
        span(&pushes, 2),
        verdict(max_of(&pushes) <= 2.0),
        span(&pulls, 0),
        cpu.join(" / "),
    ));

    // 5. Three devices, 1,000 offline mutations each on 50 shared orders, reconnecting at once.
    let mut times = Vec::new();
    for run in 0..settings.runs {
        let cpu_before = settings.watched.sample(settings.ticks);
        let outcome = devices(http, url, &store, &scratch, settings.seed + run as u64).await?;
        // Includes the devices' sign-ins, first pulls and the 50 orders' placement.
        let cpu = per_mutation(cpu_before, settings.watched.sample(settings.ticks), 3_000);
        times.push(outcome.converged.as_secs_f64());
        report.line(format!(
            "sync     5 (run {}: {} rounds; results per device {}; rejections by code {:?}; final statuses {:?}; history entries {}, every applied step allowed: {}; orders whose log listed by time is not in applied order: {}; CPU per mutation with the set-up {cpu})",
            run + 1,
            outcome.rounds,
            outcome.results,
            outcome.codes,
            outcome.finals,
            outcome.entries,
            if outcome.problems.is_empty() { "yes" } else { "NO" },
            outcome.out_of_order,
        ));
        for problem in outcome.problems {
            report.fail(problem);
        }
    }
    report.line(format!(
        "sync     5 3 devices × 1,000 offline mutations on 50 shared orders, concurrent reconnect: identical order rows at the server's head in {} s (≤ 5 s: {})",
        span(&times, 2),
        verdict(max_of(&times) <= 5.0),
    ));

    let busy = BUSY.load(Ordering::Relaxed) - busy_before;
    report.line(format!(
        "sync     7 \"database is locked\"/busy errors in this scenario: {busy} (= 0: {})",
        verdict(busy == 0)
    ));
    if busy > 0 {
        report.fail(format!("{busy} busy errors"));
    }
    Ok(report)
}

/// What the three devices did.
struct Devices {
    converged: Duration,
    rounds: usize,
    results: String,
    codes: BTreeMap<String, usize>,
    finals: BTreeMap<String, usize>,
    entries: usize,
    /// Orders whose status log, listed by time, is not in the order its steps were applied.
    out_of_order: usize,
    problems: Vec<String>,
}

/// The forward path of an order (`fleetfront_domain::order`'s, which it keeps private).
fn forward(status: OrderStatus) -> Option<usize> {
    [
        OrderStatus::AwaitingPayment,
        OrderStatus::Pending,
        OrderStatus::Confirmed,
        OrderStatus::Preparing,
        OrderStatus::Ready,
        OrderStatus::PickedUp,
        OrderStatus::Delivered,
    ]
    .iter()
    .position(|s| *s == status)
}

/// What an order's status history showed.
struct History {
    /// Entries, applied or not.
    entries: usize,
    /// Whether the log, in the order the server lists it (by time), has a step whose `from` is
    /// not the status before it: the times are not the order the steps were applied in.
    out_of_order: bool,
}

/// Checks an order's status history against the order rules. The applied steps, linked by
/// their `from` and `to` (not by their times, see [`History::out_of_order`]), must form one
/// chain from the placement, each step forward along the path or into `cancelled`/`rejected`
/// from a live status, none after a terminal one, ending at the order's status.
fn check_history(view: &TrackingView) -> Result<History, String> {
    let id = view.order_id;
    let mut applied: Vec<_> = view
        .history
        .iter()
        .filter(|e| e.outcome == Outcome::Applied)
        .collect();
    let mut out_of_order = false;
    let mut listed: Option<OrderStatus> = None;
    for entry in &applied {
        out_of_order |= entry.from != listed;
        listed = Some(entry.to);
    }
    let mut current: Option<OrderStatus> = None;
    while !applied.is_empty() {
        let next = applied
            .iter()
            .position(|e| e.from == current)
            .ok_or_else(|| {
                format!(
                    "order {id}: applied steps left that do not follow {current:?}: {applied:?}"
                )
            })?;
        let entry = applied.swap_remove(next);
        let allowed = match current {
            None => entry.to == OrderStatus::Pending,
            Some(from) if from.is_terminal() => false,
            Some(from) => match (forward(from), forward(entry.to)) {
                (Some(a), Some(b)) => b > a,
                _ => matches!(entry.to, OrderStatus::Cancelled | OrderStatus::Rejected),
            },
        };
        if !allowed {
            return Err(format!(
                "order {id}: forbidden step {current:?} -> {}",
                entry.to.as_str()
            ));
        }
        current = Some(entry.to);
    }
    if current != Some(view.status) {
        return Err(format!(
            "order {id}: history ends at {current:?}, status is {}",
            view.status.as_str()
        ));
    }
    Ok(History {
        entries: view.history.len(),
        out_of_order,
    })
}

async fn devices(
    http: &reqwest::Client,
    url: &str,
    store: &BenchStore,
    scratch: &Scratch,
    seed: u64,
) -> anyhow::Result<Devices> {
    const DEVICES: usize = 3;
    const MUTATIONS: usize = 1_000;
    let placed = place_orders(http, url, store, 50).await?;
    let orders: Vec<Uuid> = placed.iter().map(|o| o.id).collect();
    let mut stores = Vec::new();
    let mut engines = Vec::new();
    let mut tokens = Vec::new();
    for d in 0..DEVICES {
        let device = scratch.open(&format!("device-{seed}-{d}.db"))?;
        let api = staff_session(url, store).await?;
        tokens.push(api.access_token.clone().context("no token")?);
        let engine = Arc::new(SyncEngine::new(Arc::clone(&device), api));
        counted_round(engine.sync_now().await)?;
        // Offline: a seeded mix of accept, mark_ready and cancel on the shared orders.
        let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(31).wrapping_add(d as u64));
        let queued: Vec<(String, Value)> = (0..MUTATIONS)
            .map(|_| {
                let order = orders[rng.gen_range(0..orders.len())];
                // Cancels are rare (2 %), as at a real till: about a third of the orders never
                // see one, so the end states differ and the comparison means something.
                match rng.gen_range(0..100) {
                    0..=48 => (
                        "order.accept@1".to_owned(),
                        json!({"order_id": order, "prep_time": rng.gen_range(5..60)}),
                    ),
                    49..=97 => ("order.mark_ready@1".to_owned(), json!({"order_id": order})),
                    _ => (
                        "order.cancel@1".to_owned(),
                        json!({"order_id": order, "reason": "Out of ingredients"}),
                    ),
                }
            })
            .collect();
        blocking(&device, move |s| {
            for (name, args) in queued {
                s.enqueue(
                    &name,
                    args,
                    chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now()),
                )?;
            }
            Ok(())
        })
        .await?;
        stores.push(device);
        engines.push(engine);
    }

    let readers: Vec<Reader> = stores
        .iter()
        .map(|s| Reader::start(Arc::clone(s)))
        .collect();
    let mut decided = [(0usize, 0usize); DEVICES];
    let t0 = Instant::now();
    let mut rounds = 0;
    let converged = loop {
        rounds += 1;
        let handles: Vec<_> = engines
            .iter()
            .map(|e| {
                let e = Arc::clone(e);
                tokio::spawn(async move { e.sync_now().await })
            })
            .collect();
        for (d, handle) in handles.into_iter().enumerate() {
            let done = counted_round(handle.await?)?;
            decided[d].0 += done.applied;
            decided[d].1 += done.rejected;
        }
        let mut snapshots = Vec::new();
        for device in &stores {
            snapshots.push(blocking(device, |s| s.rows("order")).await?);
        }
        let identical = snapshots.windows(2).all(|w| w[0] == w[1]);
        // At the server's head: a pull with each device's cursors brings nothing.
        let mut at_head = identical;
        for (device, token) in stores.iter().zip(&tokens) {
            if !at_head {
                break;
            }
            let cursors = blocking(device, |s| s.cursors()).await?;
            let (pull, _) = raw_pull(http, url, token, &cursors, None).await?;
            at_head = pull.buckets.is_empty();
        }
        if at_head {
            break t0.elapsed();
        }
        if t0.elapsed() > Duration::from_secs(60) || rounds == 20 {
            bail!("the three devices did not converge in 60 s ({rounds} rounds)");
        }
    };
    let mut problems = Vec::new();
    for (d, reader) in readers.into_iter().enumerate() {
        let (_, errors) = reader.finish();
        if errors > 0 {
            problems.push(format!("device {d}'s reader thread met {errors} errors"));
        }
    }

    // Every mutation got a result.
    let mut codes = BTreeMap::new();
    for (d, device) in stores.iter().enumerate() {
        let pending = blocking(device, |s| s.pending_count()).await?;
        let rejections = blocking(device, |s| s.rejections()).await?;
        let (applied, rejected) = decided[d];
        if pending != 0 || applied + rejected != MUTATIONS || rejections.len() != rejected {
            problems.push(format!(
                "device {d}: {applied} applied + {rejected} rejected of {MUTATIONS}, {pending} still queued, {} rejections logged",
                rejections.len()
            ));
        }
        for r in rejections {
            *codes
                .entry(r.code.unwrap_or_else(|| "none".to_owned()))
                .or_insert(0) += 1;
        }
    }

    // The server's view of each order: its status equals the devices', its history follows
    // the rules.
    let local: BTreeMap<Uuid, Value> = blocking(&stores[0], |s| s.rows("order"))
        .await?
        .into_iter()
        .collect();
    let mut finals = BTreeMap::new();
    let mut entries = 0;
    let mut out_of_order = 0;
    for Placed { id, tracking } in &placed {
        let response = http
            .get(format!("{url}/api/v1/orders/{id}/tracking"))
            .query(&[("token", tracking)])
            .send()
            .await?;
        let body = seed::checked(response, "reading an order's tracking").await?;
        let view: TrackingView = serde_json::from_value(body).context("a tracking view")?;
        let theirs = view.status.as_str();
        let ours = local.get(id).and_then(|d| d["status"].as_str());
        if ours != Some(theirs) {
            problems.push(format!(
                "order {id}: {theirs} on the server, {ours:?} on the devices"
            ));
        }
        *finals.entry(theirs.to_owned()).or_insert(0) += 1;
        match check_history(&view) {
            Ok(h) => {
                entries += h.entries;
                out_of_order += usize::from(h.out_of_order);
            }
            Err(e) => problems.push(e),
        }
    }
    let results = decided
        .iter()
        .map(|(a, r)| format!("{a} applied + {r} rejected"))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(Devices {
        converged,
        rounds,
        results,
        codes,
        finals,
        entries,
        out_of_order,
        problems,
    })
}

/// A product-like row for the synthetic catalog.
fn synthetic_row(id: Uuid, version: u64, n: u64) -> SyncRow {
    SyncRow {
        kind: "product".to_owned(),
        id,
        version,
        data: Some(json!({
            "sku": format!("L-{n:06}"),
            "name": format!("Synthetic Dish {n:06}"),
            "description": "Spicy noodles with salmon, made to order",
            "price_minor": 200 + (seed::mix(n) % 4800) as i64,
            "category_id": null,
            "preparation_time_minutes": 10,
            "rating_count": 0,
            "rating_sum": 0,
        })),
    }
}

fn one_page(bucket: Bucket, version: u64, rows: Vec<SyncRow>, complete: bool) -> PullResponse {
    PullResponse {
        buckets: vec![BucketPage {
            bucket,
            reset: false,
            rows,
            version,
            complete,
            checksum: None,
        }],
        removed: Vec::new(),
        more: !complete,
    }
}

/// Percentile of sorted milliseconds.
fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Times `n` single-row applies (upserts, then tombstones) of rows among `ids`, in order.
/// Each change is one sync round: the apply (timed), then the checkpoint the engine runs
/// between rounds (timed apart, into `checkpoints`).
fn single_changes(
    store: &Store,
    bucket: Bucket,
    version: &mut u64,
    ids: &mut Vec<Uuid>,
    n: usize,
    rng: &mut StdRng,
    checkpoints: &mut Vec<f64>,
) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let (mut upserts, mut deletes) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut checkpoint = |store: &Store| -> anyhow::Result<()> {
        let t = Instant::now();
        counted(store.checkpoint())?;
        checkpoints.push(ms(t.elapsed()));
        Ok(())
    };
    for i in 0..n {
        *version += 1;
        let id = ids[rng.gen_range(0..ids.len())];
        let page = one_page(
            bucket,
            *version,
            vec![synthetic_row(id, *version, i as u64)],
            true,
        );
        let t = Instant::now();
        let applied = counted(store.apply_pull(&page))?;
        upserts.push(ms(t.elapsed()));
        if applied.upserted != 1 {
            bail!("an upsert applied {applied:?}");
        }
        checkpoint(store)?;
    }
    for _ in 0..n {
        *version += 1;
        let id = ids.swap_remove(rng.gen_range(0..ids.len()));
        let page = one_page(
            bucket,
            *version,
            vec![SyncRow {
                kind: "product".to_owned(),
                id,
                version: *version,
                data: None,
            }],
            true,
        );
        let t = Instant::now();
        let applied = counted(store.apply_pull(&page))?;
        deletes.push(ms(t.elapsed()));
        if applied.deleted != 1 {
            bail!("a tombstone applied {applied:?}");
        }
        checkpoint(store)?;
    }
    Ok((upserts, deletes))
}

/// Runs the `sync-local` scenario: a file-backed store of `rows` synthetic rows, then single
/// upserts and tombstones on it, without and with a concurrent reader. Blocking.
///
/// # Errors
/// The store failing outright.
pub fn run_local(rows: usize, seed: u64) -> anyhow::Result<Report> {
    const PAGE: usize = 20_000;
    const CHANGES: usize = 1_000;
    let mut report = Report::new();
    let busy_before = BUSY.load(Ordering::Relaxed);
    let scratch = Scratch::new()?;
    let store = scratch.open("local.db")?;
    let bucket = Bucket::catalog(Uuid::now_v7());
    let mut rng = StdRng::seed_from_u64(seed);
    let mut ids: Vec<Uuid> = (0..rows).map(|_| Uuid::from_u128(rng.gen())).collect();
    let t0 = Instant::now();
    let mut version = 0u64;
    for chunk in ids.chunks(PAGE) {
        let first = version;
        let page_rows: Vec<SyncRow> = chunk
            .iter()
            .enumerate()
            .map(|(i, id)| synthetic_row(*id, first + i as u64 + 1, first + i as u64))
            .collect();
        version += chunk.len() as u64;
        let complete = version as usize == rows;
        counted(store.apply_pull(&one_page(bucket, version, page_rows, complete)))?;
    }
    counted(store.checkpoint())?;
    let built = t0.elapsed();
    let size = std::fs::metadata(scratch.path().join("local.db")).map_or(0, |m| m.len());
    let count = counted(store.rows("product"))?.len();
    if count != rows {
        report.fail(format!("the store holds {count} rows, not {rows}"));
    }
    report.line(format!(
        "sync-local 6 built a file-backed store of {count} rows (one bucket, pages of {PAGE}) through apply_pull in {:.1}s, {:.0} MB",
        built.as_secs_f64(),
        size as f64 / 1e6
    ));
    for with_reader in [false, true] {
        let held = ids.len();
        let reader = with_reader.then(|| Reader::start(Arc::clone(&store)));
        let mut checkpoints = Vec::with_capacity(2 * CHANGES);
        let (upserts, deletes) = single_changes(
            &store,
            bucket,
            &mut version,
            &mut ids,
            CHANGES,
            &mut rng,
            &mut checkpoints,
        )?;
        checkpoints.sort_by(f64::total_cmp);
        report.line(format!(
            "sync-local 6 the engine's checkpoint after each of those rounds (between rounds, not in the apply): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            pct(&checkpoints, 0.5),
            pct(&checkpoints, 0.99),
            max_of(&checkpoints),
        ));
        let reads = reader.map(Reader::finish);
        if let Some((_, errors)) = reads {
            if errors > 0 {
                report.fail(format!("the reader thread met {errors} errors"));
            }
        }
        for (what, in_order) in [("upsert", &upserts), ("tombstone", &deletes)] {
            // Which applies were slow, by position (a regular spacing pointed at SQLite's WAL
            // auto-checkpoint inside the committing apply, before the store turned it off).
            let slow: Vec<usize> = (0..in_order.len()).filter(|i| in_order[*i] > 2.0).collect();
            let mut sorted = in_order.clone();
            sorted.sort_by(f64::total_cmp);
            let times = &sorted;
            report.line(format!(
                "sync-local 6 one {what} on {held} rows, {}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms over {CHANGES}, {} over 5 ms (≤ 5 ms: {} at p99, {} at max)",
                match reads {
                    Some((n, _)) => format!("reader thread reading all rows meanwhile ({n} full reads)"),
                    None => "no other reader".to_owned(),
                },
                pct(times, 0.5),
                pct(times, 0.99),
                max_of(times),
                times.iter().filter(|t| **t > 5.0).count(),
                verdict(pct(times, 0.99) <= 5.0),
                verdict(max_of(times) <= 5.0),
            ));
            report.line(format!(
                "sync-local 6   {what}s over 2 ms at positions {slow:?}"
            ));
        }
    }
    let busy = BUSY.load(Ordering::Relaxed) - busy_before;
    report.line(format!(
        "sync-local 7 \"database is locked\"/busy errors in this scenario: {busy} (= 0: {})",
        verdict(busy == 0)
    ));
    if busy > 0 {
        report.fail(format!("{busy} busy errors"));
    }
    Ok(report)
}
