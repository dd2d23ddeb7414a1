//! The load drivers and what they measure.
//!
//! - Closed loop: `connections` workers, each sending its next request when the previous one
//!   answers. Latency is measured from the send; throughput is what the server sustains.
//! - Open loop: requests are scheduled at a fixed rate (`--rate`), whether or not earlier ones
//!   have answered, and latency is measured from the *scheduled* time. A stalled server thus
//!   shows up as latency instead of silently lowering the offered load (coordinated omission).
//!   At most `max_in_flight` requests are outstanding; waiting for a slot counts as latency.
//!
//! An operation is a function of its sequence number that sends one request and returns the
//! HTTP status (or `None` for a transport error or timeout).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::cpu::{Sample, Watched};

/// One request's outcome: its HTTP status, or `None` when no answer came.
pub type Status = Option<u16>;

/// A boxed request future.
pub type OpFuture = Pin<Box<dyn Future<Output = Status> + Send>>;

/// An operation: sends request number `n`.
pub type Op = Arc<dyn Fn(u64) -> OpFuture + Send + Sync>;

/// How load is offered.
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    /// This many requests in flight at all times.
    Closed { connections: usize },
    /// This many requests per second on a fixed schedule, with at most `max_in_flight`
    /// outstanding.
    Open { rate: f64, max_in_flight: usize },
}

/// What one measured run saw.
pub struct Measurement {
    /// Latencies of successful (2xx) requests, µs, sorted.
    ok_latencies: Vec<u32>,
    /// Answers that were not 2xx, by status (0: no answer).
    errors: BTreeMap<u16, u64>,
    elapsed: Duration,
    cpu_before: Sample,
    cpu_after: Sample,
    mode: Mode,
}

struct Recorded {
    latencies: Vec<u32>,
    errors: BTreeMap<u16, u64>,
}

impl Recorded {
    fn new() -> Self {
        Self {
            latencies: Vec::with_capacity(100_000),
            errors: BTreeMap::new(),
        }
    }

    fn record(&mut self, status: Status, latency: Duration) {
        match status {
            Some(s) if (200..300).contains(&s) => self
                .latencies
                .push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX)),
            other => *self.errors.entry(other.unwrap_or(0)).or_default() += 1,
        }
    }

    fn merge(&mut self, other: Recorded) {
        self.latencies.extend(other.latencies);
        for (status, count) in other.errors {
            *self.errors.entry(status).or_default() += count;
        }
    }
}

/// Runs `op` for `length` under `mode`; CPU is sampled right before and after.
pub async fn run(
    op: Op,
    mode: Mode,
    length: Duration,
    watched: Watched,
    ticks: f64,
) -> anyhow::Result<Measurement> {
    let cpu_before = watched.sample(ticks);
    let started = Instant::now();
    let deadline = started + length;
    let recorded = match mode {
        Mode::Closed { connections } => closed(op, connections, deadline).await?,
        Mode::Open {
            rate,
            max_in_flight,
        } => open(op, rate, max_in_flight, started, deadline).await?,
    };
    let elapsed = started.elapsed();
    let cpu_after = watched.sample(ticks);
    let mut ok_latencies = recorded.latencies;
    ok_latencies.sort_unstable();
    Ok(Measurement {
        ok_latencies,
        errors: recorded.errors,
        elapsed,
        cpu_before,
        cpu_after,
        mode,
    })
}

async fn closed(op: Op, connections: usize, deadline: Instant) -> anyhow::Result<Recorded> {
    let mut tasks = Vec::with_capacity(connections);
    for worker in 0..connections as u64 {
        let op = op.clone();
        let stride = connections as u64;
        tasks.push(tokio::spawn(async move {
            let mut recorded = Recorded::new();
            let mut n = worker;
            while Instant::now() < deadline {
                let t0 = Instant::now();
                let status = op(n).await;
                recorded.record(status, t0.elapsed());
                n += stride;
            }
            recorded
        }));
    }
    let mut all = Recorded::new();
    for task in tasks {
        all.merge(task.await?);
    }
    Ok(all)
}

async fn open(
    op: Op,
    rate: f64,
    max_in_flight: usize,
    started: Instant,
    deadline: Instant,
) -> anyhow::Result<Recorded> {
    let slots = Arc::new(Semaphore::new(max_in_flight));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Status, Duration)>();
    let collector = tokio::spawn(async move {
        let mut recorded = Recorded::new();
        while let Some((status, latency)) = rx.recv().await {
            recorded.record(status, latency);
        }
        recorded
    });
    let mut sent = 0u64;
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        // Everything due by now is released, each stamped with its own scheduled time, so a
        // late scheduler (or a full in-flight limit) is charged to latency, not hidden.
        let due = (now.duration_since(started).as_secs_f64() * rate) as u64;
        while sent < due {
            let scheduled = started + Duration::from_secs_f64(sent as f64 / rate);
            let permit = slots.clone().acquire_owned().await?;
            let op = op.clone();
            let tx = tx.clone();
            let n = sent;
            tokio::spawn(async move {
                let status = op(n).await;
                drop(permit);
                let _ = tx.send((status, scheduled.elapsed()));
            });
            sent += 1;
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
    // Wait for what was sent to answer (bounded by the client's timeout).
    let _ = slots
        .acquire_many(u32::try_from(max_in_flight).unwrap_or(u32::MAX))
        .await?;
    drop(tx);
    Ok(collector.await?)
}

impl Measurement {
    /// Successful requests.
    pub fn ok(&self) -> usize {
        self.ok_latencies.len()
    }

    /// Requests that failed, by status.
    pub fn errors(&self) -> &BTreeMap<u16, u64> {
        &self.errors
    }

    fn percentile(&self, p: f64) -> f64 {
        let all = &self.ok_latencies;
        if all.is_empty() {
            return 0.0;
        }
        let index = ((all.len() as f64 - 1.0) * p).round() as usize;
        f64::from(all[index]) / 1000.0
    }

    /// One report line.
    pub fn report(&self, name: &str) -> String {
        let operations = self.ok() as u64 + self.errors.values().sum::<u64>();
        let seconds = self.elapsed.as_secs_f64();
        let per_op = |before: Option<f64>, after: Option<f64>| match (before, after) {
            (Some(b), Some(a)) if operations > 0 => {
                format!("{:.0}", (a - b) * 1e6 / operations as f64)
            }
            _ => "n/a".to_owned(),
        };
        let errors = if self.errors.is_empty() {
            "none".to_owned()
        } else {
            self.errors
                .iter()
                .map(|(s, n)| {
                    if *s == 0 {
                        format!("no-answer:{n}")
                    } else {
                        format!("{s}:{n}")
                    }
                })
                .collect::<Vec<_>>()
                .join(",")
        };
        let mode = match self.mode {
            Mode::Closed { connections } => format!("closed/{connections}"),
            Mode::Open { rate, .. } => format!("open@{rate:.0}/s"),
        };
        format!(
            "{name:<8} {mode:<12} ok={} errors={errors} throughput={:.0}/s p50={:.2}ms p99={:.2}ms \
             p999={:.2}ms max={:.2}ms cpu/op: server={}us db={}us",
            self.ok(),
            self.ok() as f64 / seconds,
            self.percentile(0.50),
            self.percentile(0.99),
            self.percentile(0.999),
            self.percentile(1.0),
            per_op(self.cpu_before.server, self.cpu_after.server),
            per_op(self.cpu_before.postgres, self.cpu_after.postgres),
        )
    }
}
