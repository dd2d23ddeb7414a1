//! CPU time of the server and of PostgreSQL, read from `/proc/<pid>/stat` around a scenario so
//! the report can say how many microseconds of each one operation costs.
//!
//! PostgreSQL's CPU is the postmaster's plus that of every process whose parent it is (the
//! backends and the background workers). A backend that exits inside the window takes its time
//! with it, which the pooled, long-lived connections of the server make rare.

use std::fs;

/// The processes to watch; either may be absent.
#[derive(Clone, Copy, Debug, Default)]
pub struct Watched {
    /// The `fleetfront` server.
    pub server: Option<u32>,
    /// The PostgreSQL postmaster.
    pub postgres: Option<u32>,
}

/// CPU seconds used so far.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    /// By the server (`None` when not watched or gone).
    pub server: Option<f64>,
    /// By the postmaster and its children.
    pub postgres: Option<f64>,
}

/// Clock ticks per second for `/proc` times: `getconf CLK_TCK`, else the usual 100.
pub fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// `(ppid, utime + stime)` of a process, in ticks.
fn stat(pid: u32) -> Option<(u32, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields after the name: state(3) ppid(4) … utime(14) stime(15), numbered from 1.
    let ppid = fields.get(1)?.parse().ok()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((ppid, utime + stime))
}

fn tree_ticks(root: u32) -> Option<u64> {
    let (_, mut total) = stat(root)?;
    for entry in fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some((ppid, ticks)) = stat(pid) {
            if ppid == root {
                total += ticks;
            }
        }
    }
    Some(total)
}

impl Watched {
    /// Reads the current CPU times.
    pub fn sample(&self, ticks_per_second: f64) -> Sample {
        let seconds = |ticks: u64| ticks as f64 / ticks_per_second;
        Sample {
            server: self.server.and_then(stat).map(|(_, t)| seconds(t)),
            postgres: self.postgres.and_then(tree_ticks).map(seconds),
        }
    }
}
