//! When to try a failed delivery again (outbox messages: email, SMS, push; later webhooks).
//!
//! Exponential backoff from 30 s, doubling per failure, capped at one hour; after
//! [`MAX_ATTEMPTS`] failures the message is given up (kept, marked failed, for an operator).
//! Deterministic — no jitter here; shells that need spreading add it themselves.

use chrono::Duration;

/// Attempts before a message is given up.
pub const MAX_ATTEMPTS: u32 = 8;

/// What to do after the `attempts`-th failed attempt (1-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterFailure {
    /// Try again after this long.
    RetryIn(Duration),
    /// Stop trying.
    GiveUp,
}

/// The rule.
pub fn after_failure(attempts: u32) -> AfterFailure {
    if attempts >= MAX_ATTEMPTS {
        return AfterFailure::GiveUp;
    }
    let exponent = attempts.saturating_sub(1).min(16);
    let secs = (30i64 << exponent).min(3600);
    AfterFailure::RetryIn(Duration::seconds(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_then_gives_up() {
        assert_eq!(
            after_failure(1),
            AfterFailure::RetryIn(Duration::seconds(30))
        );
        assert_eq!(
            after_failure(2),
            AfterFailure::RetryIn(Duration::seconds(60))
        );
        assert_eq!(
            after_failure(3),
            AfterFailure::RetryIn(Duration::seconds(120))
        );
        assert_eq!(
            after_failure(7),
            AfterFailure::RetryIn(Duration::seconds(1920))
        );
        assert_eq!(after_failure(8), AfterFailure::GiveUp);
        assert_eq!(after_failure(100), AfterFailure::GiveUp);
        // Never shorter than the previous wait, never above the cap.
        let mut previous = Duration::zero();
        for n in 1..MAX_ATTEMPTS {
            let AfterFailure::RetryIn(wait) = after_failure(n) else {
                panic!("retries before the maximum")
            };
            assert!(wait >= previous && wait <= Duration::hours(1));
            previous = wait;
        }
    }
}
