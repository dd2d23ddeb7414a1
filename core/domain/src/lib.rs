//! Fleetfront's domain core: every business rule and every wire type, with no IO.
//!
//! The server and the offline clients compile the same functions, so a rule decided here is
//! decided identically everywhere. Nothing in this crate reads a clock, makes an id, touches a
//! socket or a file; callers pass time and ids in, and rules fail only with typed errors.

#![forbid(unsafe_code)]

pub mod api;
pub mod auth;
pub mod catalog;
pub mod delivery;
pub mod dispatch;
pub mod distance;
pub mod driver;
pub mod earnings;
pub mod error;
pub mod hours;
pub mod id;
pub mod location;
pub mod media;
pub mod money;
pub mod order;
pub mod payout;
pub mod performance;
pub mod permission;
pub mod plan;
pub mod pricing;
pub mod retry;
pub mod review;
pub mod sync;
pub mod throttle;
pub mod value;

pub use error::ErrorCode;
pub use id::*;
pub use money::{Currency, Money, MoneyError};
