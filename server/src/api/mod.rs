//! HTTP handlers, one module per area. Handlers are thin: extract, parse, authorize with the
//! one `can()` decision, apply the domain rule, persist, map.

pub mod admin;
pub mod auth;
pub mod business;
pub mod cart;
pub mod catalog;
pub mod commerce;
pub mod customers;
pub mod delivery;
pub mod dispatch;
pub mod docs;
pub mod drivers;
pub mod fleet;
pub mod health;
pub mod images;
pub mod locations;
pub mod orders;
pub mod pay_rates;
pub mod payment_methods;
pub mod payouts;
pub mod reviews;
pub mod storefront;
pub mod sync;
pub mod uploads;
pub mod webhooks;

use fleetfront_domain::permission::{can, Actor, Ask, Resource};

use crate::error::{Error, Result};

/// Authorizes `actor` for `ask` on `resource`, or answers `forbidden`.
///
/// # Errors
/// `forbidden` when [`can`] says no.
pub fn authorize(actor: &Actor, ask: impl Into<Ask>, resource: Resource) -> Result<()> {
    let ask = ask.into();
    if can(actor, ask, resource) {
        Ok(())
    } else {
        Err(Error::forbidden("your role does not allow this"))
    }
}

/// The business a staff actor acts in, or `forbidden` for other kinds.
///
/// # Errors
/// `forbidden` for principals that are not staff of a business.
pub fn staff_business(actor: &Actor) -> Result<fleetfront_domain::BusinessId> {
    match actor {
        Actor::Staff { business, .. } => Ok(*business),
        _ => Err(Error::forbidden("this endpoint is for a business's team")),
    }
}
