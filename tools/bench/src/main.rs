//! `fleetfront-bench`: a load generator for a running Fleetfront server over loopback.
//!
//! Signs in, then keeps `--connections` requests in flight for `--seconds` against one of the
//! scenarios and prints throughput and latency percentiles. Every run is bounded in time and
//! talks only to the given URL (use a loopback address).

#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};
use serde_json::{json, Value};

/// Load generator for the Fleetfront API.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Server base URL (loopback).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Staff account to sign in with.
    #[arg(long, default_value = "owner@pizzapalace.test")]
    email: String,
    /// Its password.
    #[arg(long, default_value = "fleetfront-demo")]
    password: String,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Measured seconds per scenario (after a 2 s warm-up).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Scenarios to run.
    #[arg(long, value_enum, num_args = 1.., default_values_t = [Scenario::Read, Scenario::Write])]
    scenario: Vec<Scenario>,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum Scenario {
    /// `GET /api/v1/business/storefront`, authenticated.
    Read,
    /// `PATCH /api/v1/business/storefront`, authenticated.
    Write,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !(1..=1024).contains(&args.connections) || !(1..=600).contains(&args.seconds) {
        bail!("--connections must be 1..=1024 and --seconds 1..=600");
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .timeout(Duration::from_secs(10))
        .build()?;
    let login: Value = client
        .post(format!("{}/api/v1/auth/login", args.url))
        .json(&json!({"email": args.email, "password": args.password}))
        .send()
        .await
        .context("cannot reach the server")?
        .error_for_status()
        .context("sign-in failed (is the server running with --demo?)")?
        .json()
        .await?;
    let token = login["access_token"]
        .as_str()
        .context("no access token")?
        .to_owned();
    println!(
        "fleetfront-bench: {} connections, {} s per scenario, {}",
        args.connections, args.seconds, args.url
    );
    for scenario in &args.scenario {
        run(
            &client,
            &args,
            &token,
            *scenario,
            Duration::from_secs(2),
            false,
        )
        .await?;
        let report = run(
            &client,
            &args,
            &token,
            *scenario,
            Duration::from_secs(args.seconds),
            true,
        )
        .await?;
        println!("{report}");
    }
    Ok(())
}

async fn run(
    client: &reqwest::Client,
    args: &Args,
    token: &str,
    scenario: Scenario,
    length: Duration,
    measured: bool,
) -> anyhow::Result<String> {
    let deadline = Instant::now() + length;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(args.connections);
    for worker in 0..args.connections {
        let client = client.clone();
        let url = format!("{}/api/v1/business/storefront", args.url);
        let token = token.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut latencies: Vec<u32> = Vec::with_capacity(100_000);
            let mut errors = 0u64;
            let mut i = 0u64;
            while Instant::now() < deadline {
                let request = match scenario {
                    Scenario::Read => client.get(&url),
                    Scenario::Write => {
                        i += 1;
                        let color = format!("#{:06x}", (worker as u64 * 7919 + i) % 0x1000);
                        client.patch(&url).json(&json!({"theme_colors": {"primary": color, "accent": "#ff7a00", "background": "#ffffff", "text": "#1a1a1a"}}))
                    }
                };
                let t0 = Instant::now();
                let ok = match request.bearer_auth(&token).send().await {
                    Ok(response) => {
                        let ok = response.status().is_success();
                        let _ = response.bytes().await;
                        ok
                    }
                    Err(_) => false,
                };
                let micros = u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX);
                if ok {
                    latencies.push(micros);
                } else {
                    errors += 1;
                }
            }
            (latencies, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (latencies, e) = task.await?;
        all.extend(latencies);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    if !measured {
        return Ok(String::new());
    }
    all.sort_unstable();
    let pct = |p: f64| -> f64 {
        if all.is_empty() {
            return 0.0;
        }
        let index = ((all.len() as f64 - 1.0) * p).round() as usize;
        f64::from(all[index]) / 1000.0
    };
    Ok(format!(
        "{:<5} requests={} errors={} throughput={:.0}/s p50={:.2}ms p90={:.2}ms p99={:.2}ms max={:.2}ms",
        format!("{scenario:?}").to_lowercase(),
        all.len(),
        errors,
        all.len() as f64 / elapsed,
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(1.0),
    ))
}
