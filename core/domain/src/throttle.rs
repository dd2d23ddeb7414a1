//! Failed-attempt throttling for logins (per account and per client address) and PIN lockout.
//!
//! The state lives in the database (so limits hold across restarts and server instances); the
//! rule is here: a fixed window that opens at the first failure, and a lock once the window has
//! seen too many failures.

use chrono::{DateTime, Duration, Utc};

/// How many failures a window tolerates and how long it lasts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Failures allowed inside one window before further attempts are refused.
    pub max_failures: u32,
    /// Length of the window, and of the lock once it is full.
    pub window: Duration,
}

/// Per-account login policy: 5 failures in 15 minutes.
pub const ACCOUNT_LOGIN: ThrottlePolicy = ThrottlePolicy {
    max_failures: 5,
    window: Duration::minutes(15),
};

/// Per-address login policy: 30 failures in 15 minutes (shared offices and NAT need headroom).
pub const ADDRESS_LOGIN: ThrottlePolicy = ThrottlePolicy {
    max_failures: 30,
    window: Duration::minutes(15),
};

/// Wrong PINs before the PIN locks until it is reset (no time-based unlock).
pub const PIN_MAX_FAILURES: u32 = 5;

/// Stored throttle state of one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThrottleState {
    /// Failures in the current window.
    pub failures: u32,
    /// When the current window opened.
    pub window_started_at: DateTime<Utc>,
}

/// The decision before an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    /// Go ahead.
    Allow,
    /// Refuse; the caller may retry after this many seconds.
    Refuse {
        /// Seconds until the window ends.
        retry_after_secs: i64,
    },
}

impl ThrottlePolicy {
    /// Whether an attempt may proceed now.
    pub fn gate(&self, state: Option<ThrottleState>, now: DateTime<Utc>) -> Gate {
        match state {
            Some(s) if s.failures >= self.max_failures => {
                let ends = s.window_started_at + self.window;
                if now < ends {
                    Gate::Refuse {
                        retry_after_secs: (ends - now).num_seconds().max(1),
                    }
                } else {
                    Gate::Allow
                }
            }
            _ => Gate::Allow,
        }
    }

    /// The state after one more failure at `now`.
    pub fn record_failure(
        &self,
        state: Option<ThrottleState>,
        now: DateTime<Utc>,
    ) -> ThrottleState {
        match state {
            Some(s) if now < s.window_started_at + self.window => ThrottleState {
                failures: s.failures.saturating_add(1),
                ..s
            },
            _ => ThrottleState {
                failures: 1,
                window_started_at: now,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).expect("valid")
    }

    #[test]
    fn locks_after_max_failures_then_reopens() {
        let policy = ACCOUNT_LOGIN;
        let mut state = None;
        for i in 0..5 {
            assert_eq!(policy.gate(state, t(i)), Gate::Allow);
            state = Some(policy.record_failure(state, t(i)));
        }
        assert_eq!(
            policy.gate(state, t(10)),
            Gate::Refuse {
                retry_after_secs: 890
            }
        );
        assert_eq!(policy.gate(state, t(900)), Gate::Allow);
        let fresh = policy.record_failure(state, t(901));
        assert_eq!(
            fresh.failures, 1,
            "a new window starts after the old one ends"
        );
    }
}
