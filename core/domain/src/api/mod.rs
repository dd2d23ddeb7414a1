//! Wire types of the HTTP API: what clients send and receive. Requests refuse unknown fields,
//! and each request parses into a typed command (or a list of field errors) here, so the server
//! and the clients apply the same input rules.

pub mod admin;
pub mod auth;
pub mod business;
pub mod cart;
pub mod catalog;
pub mod commerce;
pub mod customer;
pub mod delivery;
pub mod driver;
pub mod location;
pub mod media;
pub mod mutations;
pub mod order;
pub mod payment;
pub mod payout;
pub mod problem;
pub mod review;
pub mod storefront;
pub mod sync;

use serde::{Deserialize, Deserializer};

pub use problem::{FieldError, FieldErrors, Problem};

/// Deserializes a field that may be absent (leave unchanged), `null` (clear) or a value (set).
/// Use with `#[serde(default, deserialize_with = "patch")]` on an `Option<Option<T>>`.
///
/// # Errors
/// When the value does not deserialize as `T`.
pub fn patch<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}
