//! Fleetfront's server: the HTTP API over PostgreSQL with row level security.
//!
//! `main.rs` is a thin CLI; everything testable is here. [`app::app`] builds the router from an
//! [`app::App`] state, so tests drive the real router with `oneshot` or over a real socket.

#![forbid(unsafe_code)]

pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod catalog;
pub mod config;
pub mod context;
pub mod crypto;
pub mod db;
pub mod delivery;
pub mod demo;
pub mod dispatch;
pub mod drivers;
pub mod error;
pub mod extract;
pub mod images;
pub mod locations;
pub mod notify;
pub mod orders;
pub mod pay_rates;
pub mod payments;
pub mod payouts;
pub mod pg;
pub mod serve;
pub mod session;
pub mod sessions;
pub mod storage;
pub mod sync;
pub mod tenancy;
pub mod uploads;

pub use app::{app, App};
pub use error::{Error, Result};
