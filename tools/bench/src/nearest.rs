//! The `nearest` scenario, in process (no server needed): the server's `LocationStore` holds
//! `drivers` drivers spread over the synthetic 30×30 km city, and threads ask it for the k
//! nearest drivers within 10 km of random points, for `seconds`. Reports queries per second and
//! latency percentiles; a share of updates (drivers moving) runs alongside when asked.
//!
//! When `redis-server` is installed, the same points go into a private Redis (loopback, no
//! persistence) and the same queries are asked with `GEOSEARCH … BYRADIUS … ASC COUNT k` over
//! `connections` connections, for comparison; that figure includes the loopback round trip,
//! which is the point of an in-memory index inside the server.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::Utc;
use fleetfront_domain::location::{Fix, RawFix};
use fleetfront_domain::UserId;
use fleetfront_server::locations::LocationStore;

use crate::locations::city_point;

/// Settings of the run.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Drivers in the store.
    pub drivers: usize,
    /// Drivers per answer.
    pub k: usize,
    /// Search radius, metres.
    pub radius_m: f64,
    /// Query threads.
    pub threads: usize,
    /// Measured seconds.
    pub seconds: u64,
    /// Redis connections (threads) for the comparison.
    pub redis_connections: usize,
}

fn fix(lat: f64, lon: f64, seq: i64) -> anyhow::Result<Fix> {
    let now = Utc::now();
    Fix::parse(
        RawFix {
            latitude: lat,
            longitude: lon,
            accuracy_m: 5.0,
            heading_deg: None,
            speed_mps: None,
            recorded_at: now,
            seq,
        },
        now,
    )
    .map_err(|e| anyhow::anyhow!("bench fix refused: {e:?}"))
}

fn percentile(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    f64::from(sorted[((sorted.len() - 1) as f64 * q).round() as usize])
}

fn report(name: &str, latencies_ns: &mut [u32], elapsed: Duration, extra: &str) -> String {
    latencies_ns.sort_unstable();
    format!(
        "{name:<8} queries={} throughput={:.0}/s p50={:.1}us p99={:.1}us p999={:.1}us max={:.1}us{extra}",
        latencies_ns.len(),
        latencies_ns.len() as f64 / elapsed.as_secs_f64(),
        percentile(latencies_ns, 0.5) / 1000.0,
        percentile(latencies_ns, 0.99) / 1000.0,
        percentile(latencies_ns, 0.999) / 1000.0,
        percentile(latencies_ns, 1.0) / 1000.0,
    )
}

/// Query point number `i` (a different stream than the drivers' homes).
fn query_point(i: u64) -> (f64, f64) {
    city_point(i ^ 0x5eed_0000_0000_0000)
}

/// Runs the in-process benchmark (and Redis when installed); returns report lines.
///
/// # Errors
/// A refused bench fix, or Redis failing once started.
pub fn run(s: Settings) -> anyhow::Result<Vec<String>> {
    let mut lines = Vec::new();
    let store = Arc::new(LocationStore::default());
    let t0 = Instant::now();
    for i in 0..s.drivers {
        let (lat, lon) = city_point(i as u64);
        store.update(
            UserId(uuid::Uuid::from_u128(i as u128 + 1)),
            fix(lat, lon, 1)?,
            Utc::now(),
        );
    }
    lines.push(format!(
        "nearest  {} drivers on a 30x30 km city indexed in {:.0} ms (H3 res 9); k={} within {} m, {} thread(s)",
        s.drivers,
        t0.elapsed().as_secs_f64() * 1000.0,
        s.k,
        s.radius_m,
        s.threads
    ));
    // Queries only, then queries while a writer moves drivers (1 update per 10 queries).
    for with_updates in [false, true] {
        let deadline = Instant::now() + Duration::from_secs(s.seconds);
        let stop = Arc::new(AtomicBool::new(false));
        let writer = with_updates.then(|| {
            let store = store.clone();
            let stop = stop.clone();
            let drivers = s.drivers;
            std::thread::spawn(move || {
                let mut n = 0u64;
                let mut updates = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let d = (n % drivers as u64) as usize;
                    let (lat, lon) = city_point(n.wrapping_mul(7919) ^ 0xabcdef);
                    if let Ok(f) = fix(lat, lon, 2 + n as i64) {
                        store.update(UserId(uuid::Uuid::from_u128(d as u128 + 1)), f, Utc::now());
                        updates += 1;
                    }
                    n += 1;
                    if n % 64 == 0 {
                        // About 20,000 updates per second, like the ingestion target.
                        std::thread::sleep(Duration::from_millis(3));
                    }
                }
                updates
            })
        });
        let started = Instant::now();
        let handles: Vec<_> = (0..s.threads)
            .map(|t| {
                let store = store.clone();
                let (k, radius) = (s.k, s.radius_m);
                std::thread::spawn(move || {
                    let mut lat_ns = Vec::with_capacity(1 << 20);
                    let mut found = 0usize;
                    let mut i = t as u64;
                    while Instant::now() < deadline {
                        let (lat, lon) = query_point(i);
                        let q0 = Instant::now();
                        let answer = store.nearest(lat, lon, k, radius, |_| true);
                        lat_ns.push(u32::try_from(q0.elapsed().as_nanos()).unwrap_or(u32::MAX));
                        found += answer.len();
                        i += 1_000_003;
                    }
                    (lat_ns, found)
                })
            })
            .collect();
        let mut all = Vec::new();
        let mut found = 0usize;
        for h in handles {
            let (l, f) = h
                .join()
                .map_err(|_| anyhow::anyhow!("query thread panicked"))?;
            all.extend(l);
            found += f;
        }
        let elapsed = started.elapsed();
        stop.store(true, Ordering::Relaxed);
        let updates = match writer {
            Some(w) => w.join().map_err(|_| anyhow::anyhow!("writer panicked"))?,
            None => 0,
        };
        let avg = found as f64 / all.len().max(1) as f64;
        let extra = if with_updates {
            format!(
                " avg-found={avg:.1} with {:.0} updates/s alongside",
                updates as f64 / elapsed.as_secs_f64()
            )
        } else {
            format!(" avg-found={avg:.1}")
        };
        lines.push(report("nearest", &mut all, elapsed, &extra));
    }
    // GEOSEARCH gathers every member within the radius before sorting, so its cost follows
    // the radius; a second run with 1 km (about 35 drivers inside) shows its best case here.
    match redis(s, &[s.radius_m, 1_000.0]) {
        Ok(Some(found)) => lines.extend(found),
        Ok(None) => lines.push(
            "redis    not installed (apt-get install redis-server); comparison skipped".into(),
        ),
        Err(e) => lines.push(format!("redis    comparison failed: {e:#}")),
    }
    Ok(lines)
}

/// A Redis started for the run; stopped when dropped.
struct RedisServer(Child);

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn command(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

/// Reads one RESP reply, returning the number of top-level array elements (or 1).
fn read_reply(r: &mut BufReader<TcpStream>) -> anyhow::Result<usize> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    let (kind, rest) = line.split_at(1);
    let rest = rest.trim_end();
    match kind {
        "+" | ":" => Ok(1),
        "-" => bail!("redis error: {rest}"),
        "$" => {
            let n: i64 = rest.parse()?;
            if n >= 0 {
                let mut buf = vec![0u8; n as usize + 2];
                std::io::Read::read_exact(r, &mut buf)?;
            }
            Ok(1)
        }
        "*" => {
            let n: i64 = rest.parse()?;
            for _ in 0..n.max(0) {
                read_reply(r)?;
            }
            Ok(n.max(0) as usize)
        }
        other => bail!("unexpected redis reply {other:?}"),
    }
}

fn redis(s: Settings, radii: &[f64]) -> anyhow::Result<Option<Vec<String>>> {
    let Ok(_) = Command::new("redis-server").arg("--version").output() else {
        return Ok(None);
    };
    let port = 26_379 + (std::process::id() % 1000) as u16;
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start redis-server")?;
    let _server = RedisServer(child);
    let connect = || -> anyhow::Result<TcpStream> {
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(c) => {
                    c.set_nodelay(true)?;
                    return Ok(c);
                }
                Err(e) if Instant::now() > until => return Err(e.into()),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    };
    // Load the same drivers, pipelined.
    let mut conn = connect()?;
    let mut reader = BufReader::new(conn.try_clone()?);
    for chunk in (0..s.drivers).collect::<Vec<_>>().chunks(1000) {
        let mut out = Vec::new();
        for i in chunk {
            let (lat, lon) = city_point(*i as u64);
            out.extend(command(&[
                "GEOADD",
                "drivers",
                &format!("{lon}"),
                &format!("{lat}"),
                &format!("d{i}"),
            ]));
        }
        conn.write_all(&out)?;
        for _ in chunk {
            read_reply(&mut reader)?;
        }
    }
    let mut lines = Vec::new();
    for radius in radii {
        let deadline = Instant::now() + Duration::from_secs(s.seconds);
        let started = Instant::now();
        let handles: Vec<_> = (0..s.redis_connections)
            .map(|t| {
                let (k, radius) = (s.k, *radius);
                let conn = connect();
                std::thread::spawn(move || -> anyhow::Result<(Vec<u32>, usize)> {
                    let mut conn = conn?;
                    let mut reader = BufReader::new(conn.try_clone()?);
                    let mut lat_ns = Vec::with_capacity(1 << 18);
                    let mut found = 0;
                    let mut i = t as u64;
                    let (k, radius) = (k.to_string(), format!("{radius}"));
                    while Instant::now() < deadline {
                        let (lat, lon) = query_point(i);
                        let cmd = command(&[
                            "GEOSEARCH",
                            "drivers",
                            "FROMLONLAT",
                            &format!("{lon}"),
                            &format!("{lat}"),
                            "BYRADIUS",
                            &radius,
                            "m",
                            "ASC",
                            "COUNT",
                            &k,
                            "WITHDIST",
                        ]);
                        let q0 = Instant::now();
                        conn.write_all(&cmd)?;
                        found += read_reply(&mut reader)?;
                        lat_ns.push(u32::try_from(q0.elapsed().as_nanos()).unwrap_or(u32::MAX));
                        i += 1_000_003;
                    }
                    Ok((lat_ns, found))
                })
            })
            .collect();
        let mut all = Vec::new();
        let mut found = 0;
        for h in handles {
            let (l, f) = h
                .join()
                .map_err(|_| anyhow::anyhow!("redis thread panicked"))??;
            all.extend(l);
            found += f;
        }
        let elapsed = started.elapsed();
        let avg = found as f64 / all.len().max(1) as f64;
        lines.push(report(
        "redis",
        &mut all,
        elapsed,
        &format!(
            " avg-found={avg:.1} (GEOSEARCH within {radius} m over loopback, {} connection(s), same points and queries)",
            s.redis_connections
        ),
    ));
    }
    Ok(Some(lines))
}
