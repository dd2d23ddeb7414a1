//! Driver performance: when a delivery counts as on time, and the rates the admin's driver
//! report shows (acceptance, on time) in basis points.
//!
//! # The on-time rule
//!
//! A delivery is on time when it was handed over no later than the time the customer could
//! reasonably expect it, computed from what was known when the store accepted the order:
//!
//! ```text
//! promised = accepted_at + prep time + courier ETA of the trip (store → drop-off) + 10 min grace
//! on time  = delivered_at ≤ promised
//! ```
//!
//! The courier ETA is [`crate::location::eta_secs`] of the trip's length at
//! [`crate::location::typical_speed::COURIER_MPS`], the same speed customer tracking uses. The
//! driver is not blamed for waiting on the kitchen (the prep time is in the promise) nor for
//! the first offers being declined by others; the grace absorbs the hand-over itself. Without
//! a prep time the order counts as ready at acceptance; without a trip length the ETA is zero.

use chrono::{DateTime, Duration, Utc};

use crate::location::{eta_secs, typical_speed};

/// The slack added to every promise.
pub const ON_TIME_GRACE: Duration = Duration::minutes(10);

/// What the customer was promised, from the order as accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Promise {
    /// When the store accepted the order.
    pub accepted_at: DateTime<Utc>,
    /// The preparation time the store gave, in minutes.
    pub prep_minutes: Option<u32>,
    /// The trip from the store to the drop-off, in metres.
    pub trip_metres: Option<u32>,
}

impl Promise {
    /// The latest on-time hand-over ([`ON_TIME_GRACE`] included).
    pub fn deadline(&self) -> DateTime<Utc> {
        let prep = Duration::minutes(i64::from(self.prep_minutes.unwrap_or(0)));
        let trip = self
            .trip_metres
            .and_then(|m| eta_secs(m, typical_speed::COURIER_MPS))
            .map_or(Duration::zero(), |s| Duration::seconds(i64::from(s)));
        self.accepted_at + prep + trip + ON_TIME_GRACE
    }
}

/// Whether a delivery handed over at `delivered_at` kept `promise`.
pub fn on_time(delivered_at: DateTime<Utc>, promise: &Promise) -> bool {
    delivered_at <= promise.deadline()
}

/// `part / whole` in basis points (10,000 = 100 %), rounded down; `None` when `whole` is zero
/// (no rate, rather than a misleading 0 % or 100 %).
pub fn rate_bps(part: u32, whole: u32) -> Option<u32> {
    if whole == 0 {
        return None;
    }
    let bps = u64::from(part.min(whole)) * 10_000 / u64::from(whole);
    Some(u32::try_from(bps).expect("at most 10,000"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(raw: &str) -> DateTime<Utc> {
        raw.parse().expect("valid instant")
    }

    #[test]
    fn the_promise_adds_prep_trip_and_grace() {
        let promise = Promise {
            accepted_at: utc("2026-06-01T12:00:00Z"),
            prep_minutes: Some(15),
            // 2,400 m at 4 m/s: 10 minutes.
            trip_metres: Some(2_400),
        };
        assert_eq!(promise.deadline(), utc("2026-06-01T12:35:00Z"));
        assert!(on_time(utc("2026-06-01T12:35:00Z"), &promise));
        assert!(!on_time(utc("2026-06-01T12:35:01Z"), &promise));
        let bare = Promise {
            prep_minutes: None,
            trip_metres: None,
            ..promise
        };
        assert_eq!(bare.deadline(), utc("2026-06-01T12:10:00Z"));
    }

    #[test]
    fn rates_are_basis_points_of_a_known_whole() {
        assert_eq!(rate_bps(3, 4), Some(7_500));
        assert_eq!(rate_bps(1, 3), Some(3_333));
        assert_eq!(rate_bps(0, 5), Some(0));
        assert_eq!(rate_bps(5, 5), Some(10_000));
        assert_eq!(rate_bps(0, 0), None);
        assert_eq!(rate_bps(7, 5), Some(10_000));
    }
}
