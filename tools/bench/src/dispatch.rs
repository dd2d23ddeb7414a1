//! The `dispatch` scenario, in process (no server needed): batch dispatch rounds of `orders`
//! ready orders over `drivers` free drivers on fleetfront-domain's synthetic city, a new city
//! (seed) per round, for `seconds`. Reports the round time of `plan_round` (p50, p99, max) and
//! its mean pickup distance against the greedy nearest-driver baseline on the same cities.

use std::time::{Duration, Instant};

use fleetfront_domain::dispatch::{greedy_round, plan_round, synthetic_city, RoundParams};

/// Settings of the run.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Ready orders per round.
    pub orders: usize,
    /// Free drivers per round.
    pub drivers: usize,
    /// Measured seconds (at least 5 rounds run whatever it says).
    pub seconds: u64,
}

/// Runs the rounds and returns the report's lines.
pub fn run(settings: Settings) -> Vec<String> {
    let params = RoundParams::default();
    let deadline = Instant::now() + Duration::from_secs(settings.seconds);
    let mut times: Vec<Duration> = Vec::new();
    let mut greedy_times: Vec<Duration> = Vec::new();
    let (mut round_metres, mut greedy_metres) = (0u64, 0u64);
    let (mut round_assigned, mut greedy_assigned) = (0usize, 0usize);
    let mut worst_bps = i64::MAX;
    let mut seed = 1u64;
    while times.len() < 5 || (Instant::now() < deadline && times.len() < 10_000) {
        let city = synthetic_city(seed, settings.orders, settings.drivers);
        seed += 1;
        let t0 = Instant::now();
        let plan = plan_round(&city.orders, &city.drivers, &params);
        times.push(t0.elapsed());
        let t0 = Instant::now();
        let greedy = greedy_round(&city.orders, &city.drivers, &params);
        greedy_times.push(t0.elapsed());
        round_metres += plan.total_pickup_metres();
        greedy_metres += greedy.total_pickup_metres();
        round_assigned += plan.assignments.len();
        greedy_assigned += greedy.assignments.len();
        let mean = |metres: u64, n: usize| metres as f64 / n.max(1) as f64;
        let (r, g) = (
            mean(plan.total_pickup_metres(), plan.assignments.len()),
            mean(greedy.total_pickup_metres(), greedy.assignments.len()),
        );
        if g > 0.0 {
            worst_bps = worst_bps.min(((g - r) / g * 10_000.0).round() as i64);
        }
    }
    times.sort_unstable();
    greedy_times.sort_unstable();
    let pct = |v: &[Duration], p: f64| {
        let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
        v[i].as_secs_f64() * 1e3
    };
    let round_mean = round_metres as f64 / round_assigned.max(1) as f64;
    let greedy_mean = greedy_metres as f64 / greedy_assigned.max(1) as f64;
    vec![
        format!(
            "dispatch {} rounds of {} orders over {} drivers (a new synthetic city each)",
            times.len(),
            settings.orders,
            settings.drivers
        ),
        format!(
            "dispatch round time p50={:.1}ms p99={:.1}ms max={:.1}ms (greedy p50={:.1}ms)",
            pct(&times, 0.50),
            pct(&times, 0.99),
            pct(&times, 1.0),
            pct(&greedy_times, 0.50)
        ),
        format!(
            "dispatch mean pickup: round {round_mean:.0} m ({round_assigned} assigned), greedy \
             {greedy_mean:.0} m ({greedy_assigned} assigned); improvement {:.1} % (worst round \
             {:.1} %)",
            (greedy_mean - round_mean) / greedy_mean.max(1.0) * 100.0,
            worst_bps as f64 / 100.0
        ),
    ]
}
