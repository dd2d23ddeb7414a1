//! The driver app's state and logic as plain Rust view-models over fleetfront-core's facade
//! (issue 6): what each screen shows and which action comes next, computed from the rows the
//! device holds (offline or not), so tests drive them without a window and the Dioxus
//! components stay thin.
//!
//! - [`offer`]: the offer screen — store, both trips, estimated earnings, items, cash to
//!   collect and the countdown to the offer's expiry.
//! - [`delivery`]: the active delivery — its ordered steps, the one obvious next action, the
//!   addresses, the customer and the cash to collect.
//! - [`status`]: the sync indicator and rejected actions explained in words with what to do.
//!
//! - [`ui`]: the Dioxus components over them (offer card, delivery, sync indicator, refusal
//!   notice), renderer-independent and tested through `dioxus-ssr`.
//!
//! Every text a screen shows comes from here, in one place, ready for a message catalog.

#![forbid(unsafe_code)]

pub mod delivery;
pub mod offer;
pub mod status;
pub mod ui;

/// A distance for a courier: metres below a kilometre, then kilometres with one decimal.
pub fn distance(metres: u64) -> String {
    if metres < 1_000 {
        format!("{metres} m")
    } else {
        let tenths = (metres + 50) / 100;
        format!("{}.{} km", tenths / 10, tenths % 10)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    /// An instant written as RFC 3339.
    pub(crate) fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// The tests' "now".
    pub(crate) fn now() -> DateTime<Utc> {
        at("2026-11-25T12:00:00Z")
    }

    #[test]
    fn distances_read_at_a_glance() {
        assert_eq!(distance(0), "0 m");
        assert_eq!(distance(999), "999 m");
        assert_eq!(distance(1_000), "1.0 km");
        assert_eq!(distance(1_249), "1.2 km");
        assert_eq!(distance(1_250), "1.3 km");
        assert_eq!(distance(12_960), "13.0 km");
    }
}
