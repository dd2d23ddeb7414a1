//! `fleetfront-bench`: a load generator for a running Fleetfront server over loopback.
//!
//! Prepares its own store through the public API (see [`seed`]), then runs each chosen
//! scenario for `--seconds` after a warm-up, in a closed loop (`--connections` requests in
//! flight) or an open loop (`--rate` requests per second on a fixed schedule), and prints
//! throughput, p50/p99/p999 latency, errors by status and, when given the server's and
//! PostgreSQL's process ids, the CPU each spends per operation. The flash sale is a
//! correctness check under contention and fails the run when it does not hold. Every run is
//! bounded in time and talks only to the given URL (use a loopback address).

#![forbid(unsafe_code)]

mod cpu;
mod dispatch;
mod flash;
mod load;
mod locations;
mod nearest;
mod scenario;
mod seed;
mod sync;

use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use clap::{Parser, ValueEnum};

use crate::cpu::Watched;
use crate::load::{Mode, Op};

/// Load generator for the Fleetfront API.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Server base URL (loopback).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Staff account for the `read` and `write` scenarios.
    #[arg(long, default_value = "owner@pizzapalace.test")]
    email: String,
    /// Its password.
    #[arg(long, default_value = "fleetfront-demo")]
    password: String,
    /// Closed loop: requests in flight at once.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Open loop: requests per second on a fixed schedule (latency from the scheduled time).
    /// Without it, the closed loop runs.
    #[arg(long)]
    rate: Option<f64>,
    /// Open loop: most requests outstanding at once; waiting for a slot counts as latency.
    #[arg(long, default_value_t = 1024)]
    max_in_flight: usize,
    /// Measured seconds per scenario.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Warm-up seconds before each measured scenario (not reported).
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Scenarios to run, in order.
    #[arg(long, value_enum, num_args = 1.., default_values_t = Scenario::ALL)]
    scenario: Vec<Scenario>,
    /// The server's process id, for CPU per operation.
    #[arg(long)]
    server_pid: Option<u32>,
    /// The PostgreSQL postmaster's process id (its children are counted too).
    #[arg(long)]
    postgres_pid: Option<u32>,
    /// Products in the bench store.
    #[arg(long, default_value_t = 1000)]
    products: usize,
    /// Flash sale: concurrent buyers.
    #[arg(long, default_value_t = 1000)]
    flash_buyers: usize,
    /// Flash sale: units in stock.
    #[arg(long, default_value_t = 10)]
    flash_stock: u32,
    /// Flash sale: share of buyers that retry with the same Idempotency-Key (half of them
    /// concurrently with their first attempt, all of them again after it answered).
    #[arg(long, default_value_t = 0.2)]
    flash_retry_share: f64,
    /// Locations and nearest: simulated drivers (accounts registered and approved through the
    /// API for `locations`; in memory for `nearest`).
    #[arg(long, default_value_t = 10_000)]
    drivers: usize,
    /// Locations: fixes per batch (1 Hz GPS; 10 is a batch every 10 s).
    #[arg(long, default_value_t = 10)]
    batch_size: usize,
    /// Locations: drivers registered at once while seeding.
    #[arg(long, default_value_t = 32)]
    seed_concurrency: usize,
    /// Nearest: query threads (in process).
    #[arg(long, default_value_t = 2)]
    nearest_threads: usize,
    /// Nearest: drivers per answer.
    #[arg(long, default_value_t = 10)]
    nearest_k: usize,
    /// Dispatch: ready orders per round.
    #[arg(long, default_value_t = 500)]
    dispatch_orders: usize,
    /// Dispatch: free drivers per round.
    #[arg(long, default_value_t = 1000)]
    dispatch_drivers: usize,
    /// Sync: products in the sync scenario's own store.
    #[arg(long, default_value_t = 10_000)]
    sync_products: usize,
    /// Sync: repetitions of each figure.
    #[arg(long, default_value_t = 2)]
    sync_runs: usize,
    /// Sync: seed of the devices' offline mutation mix and of the synthetic rows.
    #[arg(long, default_value_t = 5)]
    sync_seed: u64,
    /// Sync-local: rows in the client store.
    #[arg(long, default_value_t = 500_000)]
    sync_local_rows: usize,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum Scenario {
    /// `GET /api/v1/business/storefront`, authenticated.
    Read,
    /// `PATCH /api/v1/business/storefront`, authenticated, audited.
    Write,
    /// `GET /api/v1/storefronts/{store}/products?limit=24`, varying sort, page, search.
    Listing,
    /// Guest carts: create, set and remove items.
    Cart,
    /// Guest checkout, cash, one item, a new `Idempotency-Key` each.
    Order,
    /// Many buyers at once for a few units; checks the outcome.
    Flash,
    /// Drivers' GPS batches (`POST /api/v1/driver/location`) and send-to-visible delay
    /// (only when named).
    Locations,
    /// Nearest-driver queries on the server's in-memory index, in process, and Redis
    /// GEOSEARCH when installed (only when named; needs no server).
    Nearest,
    /// Batch dispatch rounds on a synthetic city, in process, against the greedy baseline
    /// (only when named; needs no server).
    Dispatch,
    /// The offline-first client (`fleetfront-core`) against the server: initial and
    /// incremental pulls, a push of 1,000 mutations, three devices reconnecting at once (only
    /// when named; seeds a store of its own).
    Sync,
    /// One change applied to a client store of 500,000 rows (only when named; needs no server).
    SyncLocal,
}

impl Scenario {
    const ALL: [Scenario; 6] = [
        Scenario::Read,
        Scenario::Write,
        Scenario::Listing,
        Scenario::Cart,
        Scenario::Order,
        Scenario::Flash,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Listing => "listing",
            Self::Cart => "cart",
            Self::Order => "order",
            Self::Flash => "flash",
            Self::Locations => "locations",
            Self::Nearest => "nearest",
            Self::Dispatch => "dispatch",
            Self::Sync => "sync",
            Self::SyncLocal => "sync-local",
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !(1..=1024).contains(&args.connections) || !(1..=600).contains(&args.seconds) {
        bail!("--connections must be 1..=1024 and --seconds 1..=600");
    }
    if args.rate.is_some_and(|r| !(1.0..=100_000.0).contains(&r))
        || !(1..=10_000).contains(&args.max_in_flight)
    {
        bail!("--rate must be 1..=100000 and --max-in-flight 1..=10000");
    }
    if !(1..=10_000).contains(&args.flash_buyers)
        || !(1..=100_000).contains(&args.products)
        || !(0.0..=1.0).contains(&args.flash_retry_share)
    {
        bail!("--flash-buyers 1..=10000, --products 1..=100000, --flash-retry-share 0..=1");
    }
    if !(200..=1_000_000).contains(&args.drivers)
        || !(1..=500).contains(&args.batch_size)
        || !(1..=1024).contains(&args.seed_concurrency)
        || !(1..=64).contains(&args.nearest_threads)
        || !(1..=100).contains(&args.nearest_k)
    {
        bail!("--drivers 200..=1000000, --batch-size 1..=500, --seed-concurrency 1..=1024, --nearest-threads 1..=64, --nearest-k 1..=100");
    }
    if !(2..=100_000).contains(&args.sync_products)
        || !(1..=10).contains(&args.sync_runs)
        || !(1_000..=5_000_000).contains(&args.sync_local_rows)
    {
        bail!("--sync-products 2..=100000, --sync-runs 1..=10, --sync-local-rows 1000..=5000000");
    }
    let mode = match args.rate {
        Some(rate) => Mode::Open {
            rate,
            max_in_flight: args.max_in_flight,
        },
        None => Mode::Closed {
            connections: args.connections,
        },
    };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections.max(args.max_in_flight))
        .timeout(Duration::from_secs(10))
        .build()?;
    let watched = Watched {
        server: args.server_pid,
        postgres: args.postgres_pid,
    };
    let ticks = cpu::clock_ticks();
    let needs_store = args.scenario.iter().any(|s| {
        !matches!(
            s,
            Scenario::Read
                | Scenario::Write
                | Scenario::Locations
                | Scenario::Nearest
                | Scenario::Dispatch
                | Scenario::Sync
                | Scenario::SyncLocal
        )
    });
    let store = if needs_store {
        let t0 = std::time::Instant::now();
        let store = seed::seed(&client, &args.url, args.products, args.flash_stock).await?;
        println!(
            "fleetfront-bench: seeded store {:?} with {} products and a flash variant of {} in {:.1}s",
            store.subdomain,
            store.products.len(),
            store.flash_stock,
            t0.elapsed().as_secs_f64()
        );
        Some(Arc::new(store))
    } else {
        None
    };
    let mode_text = match mode {
        Mode::Closed { connections } => format!("closed loop, {connections} connections"),
        Mode::Open {
            rate,
            max_in_flight,
        } => format!("open loop, {rate:.0} req/s scheduled, at most {max_in_flight} in flight"),
    };
    println!(
        "fleetfront-bench: {mode_text}, {} s per scenario after {} s warm-up, {}; cpu per op from {}",
        args.seconds,
        args.warmup,
        args.url,
        match (args.server_pid, args.postgres_pid) {
            (None, None) => "nowhere (pass --server-pid/--postgres-pid)".to_owned(),
            (s, p) => format!("server pid {s:?}, postgres pid {p:?}"),
        }
    );
    let salt: u64 = rand::random();
    let mut failed = Vec::new();
    for scenario in &args.scenario {
        let op: Op = match scenario {
            Scenario::Sync => {
                let settings = sync::Settings {
                    products: args.sync_products,
                    seed: args.sync_seed,
                    runs: args.sync_runs,
                    watched,
                    ticks,
                };
                if !sync::run(&client, &args.url, &settings).await?.passed {
                    failed.push("sync");
                }
                continue;
            }
            Scenario::SyncLocal => {
                let (rows, seed) = (args.sync_local_rows, args.sync_seed);
                let report =
                    tokio::task::spawn_blocking(move || sync::run_local(rows, seed)).await??;
                if !report.passed {
                    failed.push("sync-local");
                }
                continue;
            }
            Scenario::Dispatch => {
                let settings = dispatch::Settings {
                    orders: args.dispatch_orders.clamp(1, 100_000),
                    drivers: args.dispatch_drivers.clamp(1, 1_000_000),
                    seconds: args.seconds,
                };
                let lines = tokio::task::spawn_blocking(move || dispatch::run(settings)).await?;
                for line in lines {
                    println!("{line}");
                }
                continue;
            }
            Scenario::Nearest => {
                let settings = nearest::Settings {
                    drivers: args.drivers,
                    k: args.nearest_k,
                    radius_m: 10_000.0,
                    threads: args.nearest_threads,
                    seconds: args.seconds,
                    redis_connections: args.nearest_threads,
                };
                let lines = tokio::task::spawn_blocking(move || nearest::run(settings)).await??;
                for line in lines {
                    println!("{line}");
                }
                continue;
            }
            Scenario::Locations => {
                let t0 = std::time::Instant::now();
                let drivers = locations::seed_drivers(
                    &client,
                    &args.url,
                    args.drivers,
                    args.seed_concurrency,
                )
                .await?;
                println!(
                    "locations seeded {} drivers (registered and approved through the API, {} at once) in {:.1}s",
                    drivers.len(),
                    args.seed_concurrency,
                    t0.elapsed().as_secs_f64()
                );
                // A few drivers are the prober's own, so their sequence numbers never race.
                let (load, probers) = drivers.split_at(drivers.len() - 40);
                let load = Arc::new(load.to_vec());
                let op = locations::ingest(&client, &args.url, load, args.batch_size);
                if args.warmup > 0 {
                    load::run(
                        op.clone(),
                        mode,
                        Duration::from_secs(args.warmup),
                        watched,
                        ticks,
                    )
                    .await?;
                }
                let deadline = std::time::Instant::now() + Duration::from_secs(args.seconds);
                let prober = tokio::spawn(locations::probe(
                    client.clone(),
                    args.url.clone(),
                    probers.to_vec(),
                    args.batch_size,
                    4,
                    deadline,
                ));
                let measured =
                    load::run(op, mode, Duration::from_secs(args.seconds), watched, ticks).await?;
                println!("{}", measured.report("locations"));
                println!(
                    "locations fixes ingested={:.0}/s ({} fixes per batch)",
                    (measured.ok() * args.batch_size) as f64 / args.seconds as f64,
                    args.batch_size
                );
                match prober.await? {
                    Ok(v) => println!("{}", v.report()),
                    Err(e) => {
                        println!("visible  failed: {e:#}");
                        failed.push("locations");
                    }
                }
                // 503 is the server's back-pressure (its write queue is full), reported above
                // but not a failure.
                if measured.errors().keys().any(|s| *s >= 500 && *s != 503) {
                    failed.push("locations");
                }
                continue;
            }
            Scenario::Read | Scenario::Write => {
                let token = seed::login(&client, &args.url, &args.email, &args.password).await?;
                scenario::storefront_settings(
                    &client,
                    &args.url,
                    &token,
                    *scenario == Scenario::Write,
                )
            }
            Scenario::Listing => {
                let store = store.as_ref().expect("seeded for this scenario");
                let urls = scenario::listing_urls(&client, &args.url, store).await?;
                println!("listing  {} distinct page URLs", urls.len());
                scenario::listing(&client, urls, salt)
            }
            Scenario::Cart => {
                let store = store.clone().expect("seeded for this scenario");
                let slots = args.connections.max(64);
                scenario::Carts::prepare(&client, &args.url, store, slots, salt)
                    .await?
                    .op()
            }
            Scenario::Order => {
                let store = store.clone().expect("seeded for this scenario");
                scenario::order(&client, &args.url, store, salt)
            }
            Scenario::Flash => {
                let store = store.as_ref().expect("seeded for this scenario");
                let cpu_before = watched.sample(ticks);
                let report =
                    flash::run(&args.url, store, args.flash_buyers, args.flash_retry_share).await?;
                let cpu_after = watched.sample(ticks);
                for line in &report.lines {
                    println!("{line}");
                }
                let per_buyer = |b: Option<f64>, a: Option<f64>| match (b, a) {
                    (Some(b), Some(a)) => {
                        format!("{:.0}us", (a - b) * 1e6 / args.flash_buyers as f64)
                    }
                    _ => "n/a".to_owned(),
                };
                println!(
                    "flash    cpu per buyer: server={} db={}",
                    per_buyer(cpu_before.server, cpu_after.server),
                    per_buyer(cpu_before.postgres, cpu_after.postgres)
                );
                if !report.passed {
                    failed.push("flash");
                }
                continue;
            }
        };
        if args.warmup > 0 {
            load::run(
                op.clone(),
                mode,
                Duration::from_secs(args.warmup),
                watched,
                ticks,
            )
            .await?;
        }
        let measured =
            load::run(op, mode, Duration::from_secs(args.seconds), watched, ticks).await?;
        println!("{}", measured.report(scenario.name()));
        if measured.errors().keys().any(|s| *s >= 500) {
            failed.push(scenario.name());
        }
    }
    if !failed.is_empty() {
        bail!("failed: {} (see above)", failed.join(", "));
    }
    Ok(())
}
