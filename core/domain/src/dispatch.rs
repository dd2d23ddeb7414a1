//! Dispatch: which driver is offered an order, how offers move from one driver to the next, and
//! how a batch of ready orders is matched to free drivers in one round.
//!
//! Three rules live here, all pure (the shell passes `now`, the candidates and their distances):
//!
//! - **Scoring** ([`score`], [`rank`]). Dedicated drivers come before the shared pool, by their
//!   priority with the business (1 first); within a tier, the higher [`Score`] wins; equal
//!   scores go to the lower driver id, so a ranking never depends on the order candidates were
//!   read in. A score is an integer in "metre-equivalent" points: the pickup distance in metres
//!   counts against, recent work and current load count against (fairness), time waiting since
//!   the last offer and a good rating count for. No floating point takes part in the decision.
//!   Every score carries a sentence saying why, which the server stores with the choice.
//! - **Offers** ([`OfferState`]). One driver at a time; an offer expires after the business's
//!   [`OfferTimeout`] (30 s unless set, 10 to 300 s); a decline or a timeout moves to the next
//!   candidate, and a driver who declined or let an offer expire is never offered the same order
//!   again; a cash order skips drivers over the cash cap; with nobody left the order is
//!   unassigned and the business is told. An offer is accepted only by its driver, only while it
//!   is the current offer, and only strictly before it expires.
//! - **Batch rounds** ([`plan_round`]). When many orders are ready at once, matching them one by
//!   one to the nearest driver (the [`greedy_round`] baseline) strands later orders with far
//!   drivers. A round instead assigns as many orders as possible (each driver at most once) and,
//!   among those assignments, minimizes the total pickup distance (so the mean, for the same
//!   orders): a minimum-cost bipartite matching on a sparse graph that joins each order to its
//!   nearest drivers ([`RoundParams::neighbours`], found through a uniform grid), solved exactly
//!   on that graph by successive shortest augmenting paths (Dijkstra with node potentials,
//!   stopped at the first free driver); an order's list is widened and the round solved again
//!   while the potentials show that a driver left out could still improve it, so the result is
//!   the exact optimum over every driver in reach. Orders with the same pickup and collection
//!   (a busy store's) are one node that needs several drivers, which keeps the graph small. The
//!   round's input is already filtered: a [`FreeDriver`] is online, approved, under the load
//!   limit and in a pool the business may use, so only the cash cap and the reach are checked
//!   here, and distance is the whole cost. How much the optimum gains over greedy depends on the
//!   city, not on the solver: where drivers are plentiful greedy is rarely stranded (about 5 %
//!   on [`synthetic_city`] with two drivers per order). Distances are whole metres
//!   ([`crate::distance::metres_between`]); the grid uses a local flat projection only to find
//!   neighbours, never to decide.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

use crate::distance::metres_between;
use crate::driver::{Priority, OFFER_TIMEOUT_SECS};
use crate::error::ErrorCode;
use crate::id::UserId;
use crate::value::Coordinates;

// Scoring -----------------------------------------------------------------------------------

/// Which fleet a candidate belongs to, for this business.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pool {
    /// Assigned to this business, with a priority.
    Dedicated {
        /// 1 is offered first.
        priority: Priority,
    },
    /// The platform's shared pool (only for businesses that opted in; the caller decides).
    Shared,
}

impl Pool {
    /// The tier a ranking sorts by first: dedicated priorities 1..=10, then the shared pool.
    fn tier(self) -> u8 {
        match self {
            Self::Dedicated { priority } => priority.get(),
            Self::Shared => 11,
        }
    }
}

/// Whether a driver may work right now; the caller filters by these already (online, approved
/// by an admin, inside an availability window), and [`rank`] checks them again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Availability {
    /// The driver's app says online.
    pub online: bool,
    /// A platform admin approved the driver.
    pub approved: bool,
    /// Now is inside one of the driver's availability windows.
    pub within_schedule: bool,
}

impl Availability {
    /// Online, approved and within schedule.
    pub const READY: Availability = Availability {
        online: true,
        approved: true,
        within_schedule: true,
    };

    /// Whether the driver may be offered work.
    pub fn is_available(self) -> bool {
        self.online && self.approved && self.within_schedule
    }
}

/// A driver who might be offered one order, as the shell found them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The driver's account.
    pub driver: UserId,
    /// Distance from the driver's last position to the pickup, in metres.
    pub pickup_metres: u32,
    /// Dedicated to this business, or the shared pool.
    pub pool: Pool,
    /// Deliveries completed in the fairness window ([`Weights::recent_window_minutes`]).
    pub recent_deliveries: u32,
    /// Minutes since the driver's last offer or assignment (the caller caps it as it likes).
    pub idle_minutes: u32,
    /// Average rating in tenths of a star (10..=50), when the driver has been rated.
    pub rating_tenths: Option<u8>,
    /// Deliveries the driver is carrying now.
    pub active_deliveries: u32,
    /// The driver holds more cash than the business's cash cap ([`crate::payout::cash_cap_reached`]).
    pub over_cash_cap: bool,
    /// Online, approved, within schedule.
    pub availability: Availability,
}

/// How much each factor weighs, in metre-equivalent points: a weight of 300 per recent delivery
/// means one more recent delivery counts like being 300 m further away.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Weights {
    /// Points per recent delivery (fairness: spread the work).
    pub per_recent_delivery: i64,
    /// Points per active delivery (load).
    pub per_active_delivery: i64,
    /// Bonus points per idle minute, up to [`Weights::max_idle_minutes`].
    pub per_idle_minute: i64,
    /// The idle time beyond which waiting longer earns nothing more.
    pub max_idle_minutes: u32,
    /// Bonus points per tenth of a star above 4.0 (a malus below); unrated drivers count as 4.0.
    pub per_rating_tenth: i64,
    /// Drivers carrying this many deliveries or more are not candidates.
    pub max_active_deliveries: u32,
    /// The fairness window the shell counts recent deliveries in, for the reason text.
    pub recent_window_minutes: u32,
}

impl Default for Weights {
    fn default() -> Self {
        Self {
            per_recent_delivery: 300,
            per_active_delivery: 800,
            per_idle_minute: 20,
            max_idle_minutes: 30,
            per_rating_tenth: 50,
            max_active_deliveries: 2,
            recent_window_minutes: 60,
        }
    }
}

/// A candidate's score: higher is better. Only comparable within one order's candidates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Score(pub i64);

/// The rating an unrated driver counts as, in tenths of a star.
const NEUTRAL_RATING_TENTHS: i64 = 40;

/// A candidate's score under `weights`, and the sentence that explains it.
pub fn score(candidate: &Candidate, weights: &Weights) -> (Score, String) {
    let c = candidate;
    let idle = i64::from(c.idle_minutes.min(weights.max_idle_minutes));
    let rating = c
        .rating_tenths
        .map_or(NEUTRAL_RATING_TENTHS, |r| i64::from(r.clamp(10, 50)));
    let points = -i64::from(c.pickup_metres)
        - weights.per_recent_delivery * i64::from(c.recent_deliveries)
        - weights.per_active_delivery * i64::from(c.active_deliveries)
        + weights.per_idle_minute * idle
        + weights.per_rating_tenth * (rating - NEUTRAL_RATING_TENTHS);
    (Score(points), reason(c, weights))
}

/// "dedicated #1, 850 m to pickup, 2 deliveries in the last hour, rated 4.8, idle 12 min".
fn reason(c: &Candidate, weights: &Weights) -> String {
    let pool = match c.pool {
        Pool::Dedicated { priority } => format!("dedicated #{}", priority.get()),
        Pool::Shared => "shared pool".to_owned(),
    };
    let distance = if c.pickup_metres >= 10_000 {
        format!("{:.1} km to pickup", f64::from(c.pickup_metres) / 1000.0)
    } else {
        format!("{} m to pickup", c.pickup_metres)
    };
    let window = match weights.recent_window_minutes {
        60 => "the last hour".to_owned(),
        m if m % 60 == 0 => format!("the last {} hours", m / 60),
        m => format!("the last {m} min"),
    };
    let recent = match c.recent_deliveries {
        1 => "1 delivery".to_owned(),
        n => format!("{n} deliveries"),
    };
    let mut parts = vec![pool, distance, format!("{recent} in {window}")];
    if c.active_deliveries > 0 {
        parts.push(format!("carrying {}", c.active_deliveries));
    }
    match c.rating_tenths {
        Some(r) => parts.push(format!("rated {}.{}", r / 10, r % 10)),
        None => parts.push("not rated yet".to_owned()),
    }
    parts.push(format!("idle {} min", c.idle_minutes));
    parts.join(", ")
}

/// A candidate in a ranking, with what the offer rules need to know about them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ranked {
    /// The driver's account.
    pub driver: UserId,
    /// Their fleet.
    pub pool: Pool,
    /// Their score.
    pub score: Score,
    /// Why, in words (stored with the offer).
    pub reason: String,
    /// Over the cash cap: skipped for cash orders.
    pub over_cash_cap: bool,
}

/// Ranks the candidates who may be offered work (available, under the load limit): dedicated
/// before shared by priority, then by score (higher first), then by driver id.
pub fn rank(candidates: &[Candidate], weights: &Weights) -> Vec<Ranked> {
    let mut ranked: Vec<Ranked> = candidates
        .iter()
        .filter(|c| {
            c.availability.is_available() && c.active_deliveries < weights.max_active_deliveries
        })
        .map(|c| {
            let (score, reason) = score(c, weights);
            Ranked {
                driver: c.driver,
                pool: c.pool,
                score,
                reason,
                over_cash_cap: c.over_cash_cap,
            }
        })
        .collect();
    ranked.sort_by(compare_ranked);
    // A driver listed twice (dedicated and shared) keeps their better entry only.
    let mut seen = BTreeSet::new();
    ranked.retain(|r| seen.insert(r.driver));
    ranked
}

fn compare_ranked(a: &Ranked, b: &Ranked) -> Ordering {
    a.pool
        .tier()
        .cmp(&b.pool.tier())
        .then(b.score.cmp(&a.score))
        .then(a.driver.cmp(&b.driver))
}

// Offers ------------------------------------------------------------------------------------

/// How long a driver has to answer an offer: 10 to 300 seconds, 30 unless the business says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = i64, example = 30))]
#[serde(try_from = "i64", into = "i64")]
pub struct OfferTimeout(i64);

impl OfferTimeout {
    /// Thirty seconds.
    pub const DEFAULT: OfferTimeout = OfferTimeout(30);

    /// Parses a timeout in seconds.
    ///
    /// # Errors
    /// [`DispatchError::InvalidOfferTimeout`] outside 10..=300 ([`OFFER_TIMEOUT_SECS`]).
    pub fn from_secs(seconds: i64) -> Result<Self, DispatchError> {
        if OFFER_TIMEOUT_SECS.contains(&seconds) {
            Ok(Self(seconds))
        } else {
            Err(DispatchError::InvalidOfferTimeout { seconds })
        }
    }

    /// The timeout in seconds.
    pub fn secs(self) -> i64 {
        self.0
    }
}

impl Default for OfferTimeout {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl TryFrom<i64> for OfferTimeout {
    type Error = DispatchError;
    fn try_from(value: i64) -> Result<Self, Self::Error> {
        Self::from_secs(value)
    }
}

impl From<OfferTimeout> for i64 {
    fn from(value: OfferTimeout) -> Self {
        value.0
    }
}

/// How the customer pays, as far as dispatch cares: a driver collects cash on delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Collection {
    /// Paid already (card): nothing to collect.
    Prepaid,
    /// Cash on delivery: the driver collects the total.
    Cash,
}

/// One offer of an order to one driver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    /// 1 for the order's first offer, then 2, 3, … (the offer's number within its order).
    pub attempt: u32,
    /// Who it is offered to.
    pub driver: UserId,
    /// When it was made.
    pub offered_at: DateTime<Utc>,
    /// The first instant at which it can no longer be accepted.
    pub expires_at: DateTime<Utc>,
    /// Why this driver ([`Ranked::reason`]).
    pub reason: String,
}

/// How an offer ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OfferOutcome {
    /// The driver said no.
    Declined,
    /// Nobody answered before it expired.
    TimedOut,
    /// The driver took it.
    Accepted,
    /// Withdrawn (the order was cancelled or assigned by hand).
    Withdrawn,
}

impl OfferOutcome {
    /// Wire and stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Declined => "declined",
            Self::TimedOut => "timed_out",
            Self::Accepted => "accepted",
            Self::Withdrawn => "withdrawn",
        }
    }
}

/// An offer that has ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PastOffer {
    /// The offer.
    pub offer: Offer,
    /// How it ended.
    pub outcome: OfferOutcome,
    /// When.
    pub at: DateTime<Utc>,
}

/// What [`OfferState::next`] decided.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NextStep {
    /// Offer the order to this driver now (it is the state's current offer).
    Offer(Offer),
    /// Nobody is left to offer it to: the order is unassigned and the business must be told.
    Unassigned,
}

/// The driver who accepted, and the offer they accepted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    /// The driver.
    pub driver: UserId,
    /// The accepted offer.
    pub offer: Offer,
    /// When it was accepted.
    pub accepted_at: DateTime<Utc>,
}

/// The offers of one order: the open one, the history, and the assignment once accepted. The
/// server rebuilds it from its offer rows (one per attempt), applies one method under the
/// order's row lock, and writes back what changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferState {
    /// Whether the driver will collect cash.
    pub collection: Collection,
    /// The business's offer timeout.
    pub timeout: OfferTimeout,
    /// The open offer, if any.
    pub current: Option<Offer>,
    /// Ended offers, oldest first.
    pub history: Vec<PastOffer>,
    /// The assignment, once an offer was accepted.
    pub assigned: Option<Assignment>,
}

impl OfferState {
    /// A fresh state: no offer made yet.
    pub fn new(collection: Collection, timeout: OfferTimeout) -> Self {
        Self {
            collection,
            timeout,
            current: None,
            history: Vec::new(),
            assigned: None,
        }
    }

    /// Whether `driver` declined or let an offer of this order expire (never offered again).
    pub fn refused_by(&self, driver: UserId) -> bool {
        self.history.iter().any(|p| {
            p.offer.driver == driver
                && matches!(p.outcome, OfferOutcome::Declined | OfferOutcome::TimedOut)
        })
    }

    /// Whether the order may be offered to `candidate` at all: not refused before, and not over
    /// the cash cap for a cash order.
    pub fn may_offer_to(&self, candidate: &Ranked) -> bool {
        let capped = self.collection == Collection::Cash && candidate.over_cash_cap;
        !capped && !self.refused_by(candidate.driver)
    }

    /// Decides the next step from a fresh ranking ([`rank`]) at `now`: the best candidate who
    /// may still be offered the order becomes the current offer, or nobody is left.
    ///
    /// # Errors
    /// [`DispatchError::AlreadyAssigned`]; [`DispatchError::OfferOpen`] while an offer is open
    /// (call [`OfferState::expire`] once it has expired).
    pub fn next(
        &mut self,
        ranked: &[Ranked],
        now: DateTime<Utc>,
    ) -> Result<NextStep, DispatchError> {
        if self.assigned.is_some() {
            return Err(DispatchError::AlreadyAssigned);
        }
        if let Some(open) = &self.current {
            return Err(DispatchError::OfferOpen {
                expires_at: open.expires_at,
            });
        }
        let Some(best) = ranked.iter().find(|r| self.may_offer_to(r)) else {
            return Ok(NextStep::Unassigned);
        };
        let attempt = u32::try_from(self.history.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1);
        let offer = Offer {
            attempt,
            driver: best.driver,
            offered_at: now,
            expires_at: now
                .checked_add_signed(Duration::seconds(self.timeout.secs()))
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
            reason: best.reason.clone(),
        };
        self.current = Some(offer.clone());
        Ok(NextStep::Offer(offer))
    }

    /// The current offer, checked to be `attempt` for `driver`.
    fn current_for(&self, driver: UserId, attempt: u32) -> Result<&Offer, DispatchError> {
        if self.assigned.is_some() {
            return Err(DispatchError::AlreadyAssigned);
        }
        match &self.current {
            Some(offer) if offer.driver == driver && offer.attempt == attempt => Ok(offer),
            _ => Err(DispatchError::NotCurrentOffer),
        }
    }

    /// `driver` accepts offer `attempt` at `now`.
    ///
    /// # Errors
    /// [`DispatchError::NotCurrentOffer`] unless it is the open offer and theirs;
    /// [`DispatchError::OfferExpired`] at or after its expiry; [`DispatchError::AlreadyAssigned`].
    pub fn accept(
        &mut self,
        driver: UserId,
        attempt: u32,
        now: DateTime<Utc>,
    ) -> Result<Assignment, DispatchError> {
        let offer = self.current_for(driver, attempt)?;
        if now >= offer.expires_at {
            return Err(DispatchError::OfferExpired {
                expires_at: offer.expires_at,
            });
        }
        let offer = offer.clone();
        let assignment = Assignment {
            driver,
            offer: offer.clone(),
            accepted_at: now,
        };
        self.close(OfferOutcome::Accepted, now);
        self.assigned = Some(assignment.clone());
        Ok(assignment)
    }

    /// `driver` declines offer `attempt` at `now`. A decline after the expiry is recorded as a
    /// timeout (which has the same consequence). The caller then calls [`OfferState::next`].
    ///
    /// # Errors
    /// [`DispatchError::NotCurrentOffer`], [`DispatchError::AlreadyAssigned`].
    pub fn decline(
        &mut self,
        driver: UserId,
        attempt: u32,
        now: DateTime<Utc>,
    ) -> Result<OfferOutcome, DispatchError> {
        let offer = self.current_for(driver, attempt)?;
        let outcome = if now >= offer.expires_at {
            OfferOutcome::TimedOut
        } else {
            OfferOutcome::Declined
        };
        self.close(outcome, now);
        Ok(outcome)
    }

    /// Closes the current offer as timed out (the system's deadline task, at or after expiry).
    /// Returns the driver whose offer expired. The caller then calls [`OfferState::next`].
    ///
    /// # Errors
    /// [`DispatchError::NoOpenOffer`]; [`DispatchError::OfferStillOpen`] before the expiry.
    pub fn expire(&mut self, now: DateTime<Utc>) -> Result<UserId, DispatchError> {
        let offer = self.current.as_ref().ok_or(DispatchError::NoOpenOffer)?;
        if now < offer.expires_at {
            return Err(DispatchError::OfferStillOpen {
                expires_at: offer.expires_at,
            });
        }
        let driver = offer.driver;
        self.close(OfferOutcome::TimedOut, now);
        Ok(driver)
    }

    /// Withdraws the open offer, if any (the order was cancelled or assigned by hand). A
    /// withdrawn offer does not bar its driver from a later offer.
    pub fn withdraw(&mut self, now: DateTime<Utc>) -> Option<Offer> {
        let offer = self.current.clone()?;
        self.close(OfferOutcome::Withdrawn, now);
        Some(offer)
    }

    fn close(&mut self, outcome: OfferOutcome, at: DateTime<Utc>) {
        if let Some(offer) = self.current.take() {
            self.history.push(PastOffer { offer, outcome, at });
        }
    }
}

/// Why a dispatch rule refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DispatchError {
    /// An offer timeout outside 10..=300 seconds.
    #[error("the offer timeout must be 10 to 300 seconds, not {seconds}")]
    InvalidOfferTimeout {
        /// The value given.
        seconds: i64,
    },
    /// The order already has a driver.
    #[error("the order is already assigned")]
    AlreadyAssigned,
    /// An offer is open; the next one waits for its answer or expiry.
    #[error("an offer is open until {expires_at}")]
    OfferOpen {
        /// When it expires.
        expires_at: DateTime<Utc>,
    },
    /// The offer answered is not the order's open offer to this driver.
    #[error("this offer is no longer open to you")]
    NotCurrentOffer,
    /// The offer expired before it was accepted.
    #[error("the offer expired at {expires_at}")]
    OfferExpired {
        /// When it expired.
        expires_at: DateTime<Utc>,
    },
    /// The system tried to time out an offer that is still open.
    #[error("the offer is open until {expires_at}")]
    OfferStillOpen {
        /// When it expires.
        expires_at: DateTime<Utc>,
    },
    /// There is no open offer to time out.
    #[error("there is no open offer")]
    NoOpenOffer,
}

impl DispatchError {
    /// A stable machine-readable code for the error, for clients to branch on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidOfferTimeout { .. } => "invalid_offer_timeout",
            Self::AlreadyAssigned => "already_assigned",
            Self::OfferOpen { .. } => "offer_open",
            Self::NotCurrentOffer => "offer_not_current",
            Self::OfferExpired { .. } => "offer_expired",
            Self::OfferStillOpen { .. } => "offer_still_open",
            Self::NoOpenOffer => "no_open_offer",
        }
    }

    /// The API error code the server answers with (the rule code goes in the detail).
    pub fn error_code(&self) -> ErrorCode {
        match self {
            Self::InvalidOfferTimeout { .. } => ErrorCode::ValidationFailed,
            Self::AlreadyAssigned
            | Self::OfferOpen { .. }
            | Self::NotCurrentOffer
            | Self::OfferExpired { .. }
            | Self::OfferStillOpen { .. }
            | Self::NoOpenOffer => ErrorCode::Conflict,
        }
    }
}

// Batch rounds ------------------------------------------------------------------------------

/// An order ready to be assigned in a round.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReadyOrder {
    /// The order.
    pub order: Uuid,
    /// Where the driver collects it.
    pub pickup: Coordinates,
    /// Whether the driver collects cash.
    pub collection: Collection,
}

/// A driver free to take one order in a round. The caller passes only drivers who may work
/// for the round's orders (available, under [`Weights::max_active_deliveries`], in a pool the
/// business uses); the round checks the cash cap and the reach.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FreeDriver {
    /// The driver's account.
    pub driver: UserId,
    /// Their latest position.
    pub position: Coordinates,
    /// Over the cash cap: not given cash orders.
    pub over_cash_cap: bool,
}

/// How a round searches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundParams {
    /// No order is assigned a driver further than this from its pickup, in metres.
    pub max_pickup_metres: u32,
    /// How many nearest drivers each order is joined to at first in the matching graph (8 to
    /// 16 is a good start; lists widen where the solution needs it, so this trades time, never
    /// quality).
    pub neighbours: usize,
}

impl Default for RoundParams {
    fn default() -> Self {
        Self {
            max_pickup_metres: 5_000,
            neighbours: 12,
        }
    }
}

/// One order matched to one driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundAssignment {
    /// The order.
    pub order: Uuid,
    /// The driver.
    pub driver: UserId,
    /// The driver's distance to the pickup, in metres.
    pub pickup_metres: u32,
}

/// The outcome of a round: assignments in the orders' input order, and the orders left over.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundPlan {
    /// Matched orders, in the order they were given.
    pub assignments: Vec<RoundAssignment>,
    /// Orders no driver could take (none near enough, or too few drivers).
    pub unassigned: Vec<Uuid>,
}

impl RoundPlan {
    /// The sum of the pickup distances, in metres.
    pub fn total_pickup_metres(&self) -> u64 {
        self.assignments
            .iter()
            .map(|a| u64::from(a.pickup_metres))
            .sum()
    }

    /// The mean pickup distance of the assigned orders, in metres (0 when none).
    pub fn mean_pickup_metres(&self) -> f64 {
        if self.assignments.is_empty() {
            0.0
        } else {
            self.total_pickup_metres() as f64 / self.assignments.len() as f64
        }
    }
}

/// Whether `driver` may take `order` at all (the cash cap).
fn compatible(order: &ReadyOrder, driver: &FreeDriver) -> bool {
    !(order.collection == Collection::Cash && driver.over_cash_cap)
}

/// The baseline: each order in turn (input order) takes the nearest free driver within reach;
/// ties go to the earlier driver in the input.
pub fn greedy_round(
    orders: &[ReadyOrder],
    drivers: &[FreeDriver],
    params: &RoundParams,
) -> RoundPlan {
    let mut taken = vec![false; drivers.len()];
    let mut plan = RoundPlan::default();
    for order in orders {
        let mut best: Option<(u32, usize)> = None;
        for (j, driver) in drivers.iter().enumerate() {
            if taken[j] || !compatible(order, driver) {
                continue;
            }
            let metres = metres_between(order.pickup, driver.position);
            if metres <= params.max_pickup_metres && best.is_none_or(|(b, _)| metres < b) {
                best = Some((metres, j));
            }
        }
        match best {
            Some((metres, j)) => {
                taken[j] = true;
                plan.assignments.push(RoundAssignment {
                    order: order.order,
                    driver: drivers[j].driver,
                    pickup_metres: metres,
                });
            }
            None => plan.unassigned.push(order.order),
        }
    }
    plan
}

/// A flat local projection of the points (metres east and north of a reference), used only to
/// find neighbours quickly.
struct Projection {
    lat0: f64,
    lon0: f64,
    metres_per_degree_lon: f64,
}

/// Metres per degree of latitude on the mean Earth sphere.
const METRES_PER_DEGREE: f64 = 6_371_008.8 * std::f64::consts::PI / 180.0;

impl Projection {
    fn around(points: &[Coordinates]) -> Self {
        let n = points.len().max(1) as f64;
        let lat0 = points.iter().map(|p| p.latitude).sum::<f64>() / n;
        let lon0 = points.iter().map(|p| p.longitude).sum::<f64>() / n;
        Self {
            lat0,
            lon0,
            metres_per_degree_lon: METRES_PER_DEGREE * lat0.to_radians().cos().max(0.01),
        }
    }

    fn project(&self, p: Coordinates) -> (f64, f64) {
        let mut dlon = p.longitude - self.lon0;
        if dlon > 180.0 {
            dlon -= 360.0;
        } else if dlon < -180.0 {
            dlon += 360.0;
        }
        (
            dlon * self.metres_per_degree_lon,
            (p.latitude - self.lat0) * METRES_PER_DEGREE,
        )
    }
}

/// A uniform grid over the drivers' projected positions, for nearest-neighbour queries.
struct Grid {
    projection: Projection,
    min_x: f64,
    min_y: f64,
    cell: f64,
    cols: i64,
    rows: i64,
    /// Driver indices per cell (row-major), each cell in input order.
    cells: Vec<Vec<usize>>,
    points: Vec<(f64, f64)>,
}

impl Grid {
    fn build(drivers: &[FreeDriver]) -> Self {
        let positions: Vec<Coordinates> = drivers.iter().map(|d| d.position).collect();
        let projection = Projection::around(&positions);
        let points: Vec<(f64, f64)> = positions.iter().map(|p| projection.project(*p)).collect();
        let (mut min_x, mut min_y, mut max_x, mut max_y) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
        for (i, &(x, y)) in points.iter().enumerate() {
            if i == 0 {
                (min_x, min_y, max_x, max_y) = (x, y, x, y);
            }
            min_x = min_x.min(x);
            min_y = min_y.min(y);
            max_x = max_x.max(x);
            max_y = max_y.max(y);
        }
        let width = (max_x - min_x).max(1.0);
        let height = (max_y - min_y).max(1.0);
        // About two drivers per cell, and never cells under 50 m.
        let per_cell = 2.0;
        let cell = ((width * height * per_cell / drivers.len().max(1) as f64).sqrt()).max(50.0);
        let cols = ((width / cell).floor() as i64 + 1).clamp(1, 4_096);
        let rows = ((height / cell).floor() as i64 + 1).clamp(1, 4_096);
        let cell = cell.max(width / cols as f64).max(height / rows as f64);
        let mut cells = vec![Vec::new(); (cols * rows) as usize];
        let mut grid = Self {
            projection,
            min_x,
            min_y,
            cell,
            cols,
            rows,
            cells: Vec::new(),
            points,
        };
        for (i, &(x, y)) in grid.points.iter().enumerate() {
            let (c, r) = grid.cell_of(x, y);
            let (c, r) = (c.clamp(0, cols - 1), r.clamp(0, rows - 1));
            cells[(r * cols + c) as usize].push(i);
        }
        grid.cells = cells;
        grid
    }

    fn cell_of(&self, x: f64, y: f64) -> (i64, i64) {
        (
            ((x - self.min_x) / self.cell).floor() as i64,
            ((y - self.min_y) / self.cell).floor() as i64,
        )
    }

    /// Up to `k` drivers nearest to `at` (by the flat projection) that `accept` admits, within
    /// `reach` projected metres, as driver indices.
    fn nearest(
        &self,
        at: Coordinates,
        k: usize,
        reach: f64,
        accept: impl Fn(usize) -> bool,
    ) -> Vec<usize> {
        let (x, y) = self.projection.project(at);
        let (c0, r0) = self.cell_of(x, y);
        // The largest ring that can still hold a driver within reach or inside the grid.
        let to_grid = c0
            .abs()
            .max(r0.abs())
            .max((self.cols - 1 - c0).abs())
            .max((self.rows - 1 - r0).abs());
        let max_ring = ((reach / self.cell).ceil() as i64 + 1).min(to_grid.max(0));
        // Max-heap of the best k so far: (squared distance bits, index). Squared distances are
        // non-negative, so their bit patterns order like the numbers, which keeps ties exact.
        let mut best: BinaryHeap<(u64, usize)> = BinaryHeap::new();
        let reach_sq = reach * reach;
        for ring in 0..=max_ring {
            for (c, r) in ring_cells(c0, r0, ring) {
                if c < 0 || r < 0 || c >= self.cols || r >= self.rows {
                    continue;
                }
                for &i in &self.cells[(r * self.cols + c) as usize] {
                    let (px, py) = self.points[i];
                    let d = (px - x) * (px - x) + (py - y) * (py - y);
                    if d > reach_sq || !accept(i) {
                        continue;
                    }
                    let key = (d.to_bits(), i);
                    if best.len() < k {
                        best.push(key);
                    } else if best.peek().is_some_and(|top| key < *top) {
                        best.pop();
                        best.push(key);
                    }
                }
            }
            // Every cell outside this ring is at least `ring × cell` away from the query.
            let bound = ring as f64 * self.cell;
            if best.len() >= k
                && best
                    .peek()
                    .is_some_and(|&(d, _)| f64::from_bits(d) <= bound * bound)
            {
                break;
            }
        }
        let mut found: Vec<(u64, usize)> = best.into_vec();
        found.sort_unstable();
        found.into_iter().map(|(_, i)| i).collect()
    }
}

/// The cells at Chebyshev distance `ring` from `(c, r)`.
fn ring_cells(c: i64, r: i64, ring: i64) -> impl Iterator<Item = (i64, i64)> {
    let side = 2 * ring + 1;
    let count = if ring == 0 { 1 } else { 4 * (side - 1) };
    (0..count).map(move |i| {
        if ring == 0 {
            return (c, r);
        }
        let edge = side - 1;
        let (dx, dy) = match i / edge {
            0 => (-ring + i % edge, -ring),
            1 => (ring, -ring + i % edge),
            2 => (ring - i % edge, ring),
            _ => (-ring, ring - i % edge),
        };
        (c + dx, r + dy)
    })
}

/// The orders of a round grouped by pickup: orders with the same pickup point and the same
/// collection have the same distance to every driver and the same admissible drivers, so the
/// matching treats each group as one node that needs as many drivers as it has orders (a
/// transportation problem). A popular store's twenty orders then share one list of drivers
/// instead of holding twenty copies of it, which is what keeps a busy round small.
struct Pickups {
    /// Each group's orders (indices into the round's orders), in input order; groups are
    /// numbered by their first order.
    members: Vec<Vec<usize>>,
}

impl Pickups {
    fn of(orders: &[ReadyOrder]) -> Self {
        let mut index: BTreeMap<(u64, u64, bool), usize> = BTreeMap::new();
        let mut members: Vec<Vec<usize>> = Vec::new();
        for (i, order) in orders.iter().enumerate() {
            let key = (
                order.pickup.latitude.to_bits(),
                order.pickup.longitude.to_bits(),
                order.collection == Collection::Cash,
            );
            let g = *index.entry(key).or_insert_with(|| {
                members.push(Vec::new());
                members.len() - 1
            });
            members[g].push(i);
        }
        Self { members }
    }

    /// The first order of group `g`, which stands for all of them (same pickup, same collection).
    fn order<'o>(&self, orders: &'o [ReadyOrder], g: usize) -> &'o ReadyOrder {
        &orders[self.members[g][0]]
    }

    /// How many drivers group `g` needs.
    fn demand(&self, g: usize) -> usize {
        self.members[g].len()
    }
}

/// The sparse candidate graph: for each pickup group, its admissible drivers with exact
/// distances, nearest first.
struct CandidateGraph {
    /// `start[g]..start[g + 1]` indexes group `g`'s edges.
    start: Vec<usize>,
    driver: Vec<usize>,
    cost: Vec<i64>,
}

/// The most times [`plan_round`] solves a round while widening groups' driver lists.
const MAX_PASSES: usize = 8;

/// What a round's passes share: its input, the pickup groups and the drivers' grid.
struct Round<'a> {
    orders: &'a [ReadyOrder],
    drivers: &'a [FreeDriver],
    params: &'a RoundParams,
    pickups: Pickups,
    grid: Grid,
}

/// Joins each pickup group `g` to its `limits[g]` nearest admissible drivers within reach.
/// Also says which groups' lists were cut at their limit (more drivers may be within reach).
fn candidate_graph(round: &Round<'_>, limits: &[usize]) -> (CandidateGraph, Vec<bool>) {
    let Round {
        orders,
        drivers,
        params,
        pickups,
        grid,
    } = round;
    let groups = pickups.members.len();
    let mut graph = CandidateGraph {
        start: Vec::with_capacity(groups + 1),
        driver: Vec::new(),
        cost: Vec::new(),
    };
    graph.start.push(0);
    let mut cut = vec![false; groups];
    // The flat projection is within a fraction of a percent of the great circle over a city;
    // the margin keeps a driver near the limit in the search, and the exact distance decides.
    let reach = f64::from(params.max_pickup_metres) * 1.01 + 100.0;
    let mut edges: Vec<(u32, usize)> = Vec::new();
    for (g, limit) in limits.iter().copied().enumerate() {
        let order = pickups.order(orders, g);
        edges.clear();
        let near = grid.nearest(order.pickup, limit, reach, |j| {
            compatible(order, &drivers[j])
        });
        cut[g] = near.len() >= limit;
        for j in near {
            let metres = metres_between(order.pickup, drivers[j].position);
            if metres <= params.max_pickup_metres {
                edges.push((metres, j));
            }
        }
        edges.sort_unstable();
        for &(metres, j) in &edges {
            graph.driver.push(j);
            graph.cost.push(i64::from(metres));
        }
        graph.start.push(graph.driver.len());
    }
    (graph, cut)
}

/// Assigns ready orders to free drivers for one round: as many orders as possible, each driver
/// at most once, and among those the least total pickup distance.
///
/// Orders with the same pickup and collection are matched as one group ([`Pickups`]). Each
/// group is first joined to its [`RoundParams::neighbours`] nearest admissible drivers, plus one
/// per other order waiting in its grid cell or the eight around it (a popular store's orders
/// compete for the same few drivers), and the matching is solved exactly on that graph. Then
/// every group whose list may be too short (see the comment in the body) gets twice as many
/// drivers and the round is solved again, at most eight times; in practice the result is the
/// exact optimum over all drivers in reach (the tests check it against brute force and against
/// a dense Hungarian method). Within a group, the earlier order (input order) gets the nearer
/// driver, ties going to the lower driver id, and orders a group cannot fill are its latest.
/// Deterministic for a given input.
pub fn plan_round(
    orders: &[ReadyOrder],
    drivers: &[FreeDriver],
    params: &RoundParams,
) -> RoundPlan {
    let mut plan = RoundPlan::default();
    if drivers.is_empty() || params.neighbours == 0 {
        plan.unassigned = orders.iter().map(|o| o.order).collect();
        return plan;
    }
    let round = Round {
        orders,
        drivers,
        params,
        pickups: Pickups::of(orders),
        grid: Grid::build(drivers),
    };
    let (grid, pickups) = (&round.grid, &round.pickups);
    let groups = pickups.members.len();
    let cells: Vec<(i64, i64)> = orders
        .iter()
        .map(|o| {
            let (x, y) = grid.projection.project(o.pickup);
            grid.cell_of(x, y)
        })
        .collect();
    let mut waiting: BTreeMap<(i64, i64), usize> = BTreeMap::new();
    for cell in &cells {
        *waiting.entry(*cell).or_default() += 1;
    }
    let mut limits: Vec<usize> = pickups
        .members
        .iter()
        .map(|members| {
            // Orders waiting in this cell and the eight around it (the group's own among them)
            // compete for the same drivers.
            let (c, r) = cells[members[0]];
            let mut nearby = 0;
            for dc in -1..=1 {
                for dr in -1..=1 {
                    nearby += waiting.get(&(c + dc, r + dr)).copied().unwrap_or(0);
                }
            }
            (params.neighbours + nearby - 1).min(drivers.len())
        })
        .collect();
    // Each pass solves the round exactly on the current graph, then checks the solution
    // against the drivers left out: a left-out driver `j` could improve it only if its edge
    // had a negative reduced cost, `metres(g, j) + potential[g] − potential[j] < 0`. Driver
    // potentials never exceed zero, and a left-out driver is at least as far as the group's
    // farthest listed one (up to the flat projection's error, hence the margin), so a group
    // whose farthest listed driver is no nearer than `−potential[g]` is complete. When orders
    // are left unmatched, a left-out driver could also add one through an alternating path,
    // which must leave the set of groups reachable from them; those groups count as incomplete
    // too. Incomplete groups get twice the drivers and the round is solved again.
    let mut passes = 0;
    let solved = loop {
        let (graph, cut) = candidate_graph(&round, &limits);
        let mut matching = min_cost_matching(pickups, drivers.len(), &graph);
        passes += 1;
        let short = |matching: &Matching, g: usize, limit: usize| {
            cut[g] && limit < drivers.len() && matching.unmatched[g] > 0
        };
        if !matching.exact && !(0..groups).any(|g| short(&matching, g, limits[g])) {
            matching = min_cost_matching_all_at_once(pickups, drivers.len(), &graph);
        }
        let mut grew = false;
        for (g, limit) in limits.iter_mut().enumerate() {
            if !cut[g] || *limit >= drivers.len() {
                continue;
            }
            let farthest = graph.cost[graph.start[g]..graph.start[g + 1]]
                .last()
                .copied()
                .unwrap_or(0);
            let left_out_at_least = farthest - farthest / 200 - 2;
            if short(&matching, g, *limit)
                || matching.reachable.get(g) == Some(&true)
                || left_out_at_least + matching.potential[g] < 0
            {
                *limit = (*limit * 2).min(drivers.len());
                grew = true;
            }
        }
        if !grew || passes >= MAX_PASSES {
            break matching;
        }
    };
    // Hand each group's drivers to its orders: nearest driver to the earliest order.
    let mut of_group: Vec<Vec<(i64, UserId, usize)>> = vec![Vec::new(); groups];
    for (j, owner) in solved.owner.iter().enumerate() {
        if let Some((g, cost)) = *owner {
            of_group[g].push((cost, drivers[j].driver, j));
        }
    }
    let mut matched: Vec<Option<(usize, i64)>> = vec![None; orders.len()];
    for (members, mut taken) in pickups.members.iter().zip(of_group) {
        taken.sort_unstable();
        for (&i, (cost, _, j)) in members.iter().zip(taken) {
            matched[i] = Some((j, cost));
        }
    }
    for (i, order) in orders.iter().enumerate() {
        match matched[i] {
            Some((j, cost)) => plan.assignments.push(RoundAssignment {
                order: order.order,
                driver: drivers[j].driver,
                pickup_metres: u32::try_from(cost).unwrap_or(u32::MAX),
            }),
            None => plan.unassigned.push(order.order),
        }
    }
    plan
}

/// Successive shortest augmenting paths with potentials, on the flow network source → pickup
/// groups → drivers (a group takes as many drivers as it has orders, a driver one group). Each
/// step augments along the cheapest alternating path from a group still short of drivers to a
/// free driver (Dijkstra on reduced costs, which stay non-negative, stopped at the first free
/// driver). Returns each driver's group and edge cost, and the groups' potentials.
///
/// This is the fast path: it fills the groups one order at a time (the Hungarian method's
/// order), so each search is small, and when every order finds a driver the result is the least
/// total cost of all matchings of every order (the flag says so). When some order finds none,
/// which orders to leave out is itself a choice, and [`min_cost_matching_all_at_once`] solves
/// the round again with every group still short as a source at once: after `k` such steps the
/// matching has the least total cost of all matchings of `k` orders, and the last step leaves
/// a maximum matching of least cost.
fn min_cost_matching(pickups: &Pickups, m: usize, graph: &CandidateGraph) -> Matching {
    let mut matcher = Matcher::new(pickups, m, graph);
    let mut complete = true;
    for g in 0..pickups.members.len() {
        if graph.start[g] == graph.start[g + 1] {
            continue;
        }
        for _ in 0..pickups.demand(g) {
            if !matcher.augment(&[g]) {
                // The group's whole reachable side is taken; more tries find nothing either.
                complete = false;
                break;
            }
        }
    }
    matcher.finish(complete)
}

/// The exact fallback of [`min_cost_matching`]: every group still short is a source at once.
fn min_cost_matching_all_at_once(pickups: &Pickups, m: usize, graph: &CandidateGraph) -> Matching {
    let groups = pickups.members.len();
    let mut open: Vec<usize> = (0..groups)
        .filter(|&g| graph.start[g] < graph.start[g + 1])
        .collect();
    let mut matcher = Matcher::new(pickups, m, graph);
    while !open.is_empty() {
        if !matcher.augment(&open) {
            // The last search ran to exhaustion: it settled every group a short group can
            // reach. Only a driver left out of one of their lists could still add an order.
            let reachable = matcher.settled[..groups].to_vec();
            let mut matching = matcher.finish(true);
            matching.reachable = reachable;
            return matching;
        }
        open.retain(|&g| matcher.unmatched[g] > 0);
    }
    matcher.finish(true)
}

/// What [`min_cost_matching`] found.
struct Matching {
    /// Each driver's group and edge cost, if matched.
    owner: Vec<Option<(usize, i64)>>,
    /// How many of each group's orders have no driver.
    unmatched: Vec<usize>,
    /// The groups' potentials (the certificate [`plan_round`] checks left-out drivers with).
    potential: Vec<i64>,
    /// Whether the matching is a maximum matching of least cost on its graph.
    exact: bool,
    /// Groups reachable by alternating paths from the groups left short (empty when every
    /// order that has a driver got one, or when not computed).
    reachable: Vec<bool>,
}

/// The state of [`min_cost_matching`]: matching, potentials, and Dijkstra's scratch. Nodes:
/// groups `0..n`, drivers `n..n + m`, the source `n + m`.
struct Matcher<'g> {
    n: usize,
    graph: &'g CandidateGraph,
    potential: Vec<i64>,
    /// Each driver's group and the cost of that edge.
    owner: Vec<Option<(usize, i64)>>,
    /// Orders of each group still without a driver.
    unmatched: Vec<usize>,
    dist: Vec<i64>,
    parent: Vec<usize>,
    /// For a driver node: the cost of the edge it was reached by.
    parent_cost: Vec<i64>,
    settled: Vec<bool>,
    touched: Vec<usize>,
    done: Vec<usize>,
    heap: BinaryHeap<Reverse<(i64, usize)>>,
}

impl<'g> Matcher<'g> {
    const INF: i64 = i64::MAX / 4;

    fn new(pickups: &Pickups, m: usize, graph: &'g CandidateGraph) -> Self {
        let n = pickups.members.len();
        Self {
            n,
            graph,
            potential: vec![0; n + m + 1],
            owner: vec![None; m],
            unmatched: (0..n).map(|g| pickups.demand(g)).collect(),
            dist: vec![Self::INF; n + m + 1],
            parent: vec![usize::MAX; n + m + 1],
            parent_cost: vec![0; n + m + 1],
            settled: vec![false; n + m + 1],
            touched: Vec::new(),
            done: Vec::new(),
            heap: BinaryHeap::new(),
        }
    }

    /// The matching, the groups' potentials, and whether `exact` (see [`min_cost_matching`]).
    fn finish(self, exact: bool) -> Matching {
        let mut potential = self.potential;
        potential.truncate(self.n);
        Matching {
            owner: self.owner,
            unmatched: self.unmatched,
            potential,
            exact,
            reachable: Vec::new(),
        }
    }

    fn reach(&mut self, node: usize, candidate: i64, (from, cost): (usize, i64)) {
        if candidate < self.dist[node] {
            if self.dist[node] == Self::INF {
                self.touched.push(node);
            }
            self.dist[node] = candidate;
            self.parent[node] = from;
            self.parent_cost[node] = cost;
            self.heap.push(Reverse((candidate, node)));
        }
    }

    /// Augments along the cheapest path from one of `sources` (groups short of drivers) to a
    /// free driver; false when there is none (nothing changes then).
    fn augment(&mut self, sources: &[usize]) -> bool {
        let n = self.n;
        let graph = self.graph;
        let source = self.potential.len() - 1;
        for &v in &self.touched {
            self.dist[v] = Self::INF;
            self.parent[v] = usize::MAX;
            self.settled[v] = false;
        }
        self.touched.clear();
        self.done.clear();
        self.heap.clear();
        self.dist[source] = 0;
        self.settled[source] = true;
        self.touched.push(source);
        self.done.push(source);
        for &g in sources {
            let d = self.potential[source] - self.potential[g];
            self.reach(g, d, (source, 0));
        }
        let mut target = None;
        while let Some(Reverse((d, v))) = self.heap.pop() {
            if self.settled[v] || d > self.dist[v] {
                continue;
            }
            self.settled[v] = true;
            self.done.push(v);
            if v < n {
                // A group: on to drivers it does not hold yet (each edge carries one order).
                for e in graph.start[v]..graph.start[v + 1] {
                    let j = graph.driver[e];
                    if self.owner[j].is_some_and(|(g, _)| g == v) {
                        continue;
                    }
                    let node = n + j;
                    let reduced = graph.cost[e] + self.potential[v] - self.potential[node];
                    self.reach(node, d + reduced, (v, graph.cost[e]));
                }
            } else {
                match self.owner[v - n] {
                    None => {
                        target = Some((v, d));
                        break;
                    }
                    Some((g, cost)) => {
                        // Back along the matched edge (reduced cost zero or less).
                        let reduced = -cost + self.potential[v] - self.potential[g];
                        self.reach(g, d + reduced, (v, -cost));
                    }
                }
            }
        }
        let Some((mut node, reach)) = target else {
            return false;
        };
        // Settled nodes move by their distance minus the path's; the others (at least `reach`
        // away) keep theirs. Every reduced cost stays non-negative, the path's become zero, and
        // driver potentials never rise above zero (a free driver is never settled).
        for &v in &self.done {
            self.potential[v] += self.dist[v] - reach;
        }
        // Flip the path: free driver ← group ← a driver it held ← … ← a group short of one.
        // Each driver on it moves to the group that reached it; the first group gains one.
        loop {
            let g = self.parent[node];
            self.owner[node - n] = Some((g, self.parent_cost[node]));
            let previous = self.parent[g];
            if previous == source {
                self.unmatched[g] -= 1;
                return true;
            }
            node = previous;
        }
    }
}

// Synthetic city ----------------------------------------------------------------------------

/// A small deterministic generator (xorshift64*), so tests and benchmarks need no `rand`.
#[derive(Clone, Debug)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator from `seed` (any value; zero is replaced).
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A uniform float in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A uniform integer in `0..bound` (`bound` > 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound.max(1)
    }
}

/// A generated city: ready orders at a few dozen stores, and free drivers around them.
#[derive(Clone, Debug)]
pub struct SyntheticCity {
    /// The ready orders.
    pub orders: Vec<ReadyOrder>,
    /// The free drivers.
    pub drivers: Vec<FreeDriver>,
}

/// Generates a city of about 12 × 12 km around Helsinki's centre: 60 stores clustered towards
/// the centre (popular ones get more orders), drivers mostly near the centre and the rest
/// spread out; one order in five is cash, one driver in twenty is over the cash cap. The same
/// `seed` always gives the same city.
pub fn synthetic_city(seed: u64, orders: usize, drivers: usize) -> SyntheticCity {
    city_with(seed, orders, drivers, &CityShape::DEFAULT)
}

/// The knobs of [`synthetic_city`].
struct CityShape {
    stores: usize,
    store_sigma: f64,
    drivers_central_per_10: u64,
    driver_sigma: f64,
    span: f64,
}

impl CityShape {
    const DEFAULT: CityShape = CityShape {
        stores: 60,
        store_sigma: 2_000.0,
        drivers_central_per_10: 6,
        driver_sigma: 2_500.0,
        span: 12_000.0,
    };
}

fn city_with(seed: u64, orders: usize, drivers: usize, shape: &CityShape) -> SyntheticCity {
    let mut rng = XorShift::new(seed);
    let (lat0, lon0): (f64, f64) = (60.1699, 24.9384);
    let metres_per_degree_lon = METRES_PER_DEGREE * lat0.to_radians().cos();
    let at = |x: f64, y: f64| Coordinates {
        latitude: lat0 + y / METRES_PER_DEGREE,
        longitude: lon0 + x / metres_per_degree_lon,
    };
    // Roughly normal offsets (sum of uniforms), sigma in metres.
    let normal = |rng: &mut XorShift, sigma: f64| {
        let s: f64 = (0..4).map(|_| rng.unit()).sum::<f64>() - 2.0;
        s * sigma * 1.732
    };
    let stores: Vec<Coordinates> = (0..shape.stores.max(1))
        .map(|_| {
            let (x, y) = (
                normal(&mut rng, shape.store_sigma),
                normal(&mut rng, shape.store_sigma),
            );
            at(x, y)
        })
        .collect();
    let id = |rng: &mut XorShift| Uuid::from_u64_pair(rng.next_u64(), rng.next_u64());
    let ready = (0..orders)
        .map(|_| {
            // Popularity: the product of two uniforms favours low store numbers.
            let store = ((rng.unit() * rng.unit()) * stores.len() as f64) as usize;
            ReadyOrder {
                order: id(&mut rng),
                pickup: stores[store.min(stores.len() - 1)],
                collection: if rng.below(5) == 0 {
                    Collection::Cash
                } else {
                    Collection::Prepaid
                },
            }
        })
        .collect();
    let free = (0..drivers)
        .map(|_| {
            let (x, y) = if rng.below(10) < shape.drivers_central_per_10 {
                (
                    normal(&mut rng, shape.driver_sigma),
                    normal(&mut rng, shape.driver_sigma),
                )
            } else {
                (
                    (rng.unit() - 0.5) * shape.span,
                    (rng.unit() - 0.5) * shape.span,
                )
            };
            FreeDriver {
                driver: UserId(id(&mut rng)),
                position: at(x, y),
                over_cash_cap: rng.below(20) == 0,
            }
        })
        .collect();
    SyntheticCity {
        orders: ready,
        drivers: free,
    }
}

/// What one benchmark round measured: both plans over the same city.
#[derive(Clone, Debug)]
pub struct RoundComparison {
    /// [`plan_round`]'s plan.
    pub plan: RoundPlan,
    /// [`greedy_round`]'s plan.
    pub greedy: RoundPlan,
}

impl RoundComparison {
    /// How much shorter the mean pickup distance of the round is than greedy's, in basis
    /// points of greedy's (1 500 = 15 % better; negative when worse).
    pub fn improvement_bps(&self) -> i64 {
        let greedy = self.greedy.mean_pickup_metres();
        if greedy <= 0.0 {
            return 0;
        }
        ((greedy - self.plan.mean_pickup_metres()) / greedy * 10_000.0).round() as i64
    }
}

/// The benchmark entry point for `tools/bench`: plans one round and the greedy baseline over
/// `city`. The caller times it (this crate reads no clock); [`plan_round`] alone is what a
/// round costs the server.
pub fn bench_round(city: &SyntheticCity, params: &RoundParams) -> RoundComparison {
    RoundComparison {
        plan: plan_round(&city.orders, &city.drivers, params),
        greedy: greedy_round(&city.orders, &city.drivers, params),
    }
}

impl fmt::Display for RoundComparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "round: {} assigned, mean pickup {:.0} m; greedy: {} assigned, mean pickup {:.0} m; \
             improvement {:.1} %",
            self.plan.assignments.len(),
            self.plan.mean_pickup_metres(),
            self.greedy.assignments.len(),
            self.greedy.mean_pickup_metres(),
            self.improvement_bps() as f64 / 100.0
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn driver(n: u128) -> UserId {
        UserId(Uuid::from_u128(n))
    }

    fn now() -> DateTime<Utc> {
        "2026-06-01T12:00:00Z".parse().expect("valid instant")
    }

    fn candidate(n: u128, metres: u32, pool: Pool) -> Candidate {
        Candidate {
            driver: driver(n),
            pickup_metres: metres,
            pool,
            recent_deliveries: 0,
            idle_minutes: 0,
            rating_tenths: None,
            active_deliveries: 0,
            over_cash_cap: false,
            availability: Availability::READY,
        }
    }

    fn dedicated(priority: i64) -> Pool {
        Pool::Dedicated {
            priority: Priority::new(priority).expect("valid"),
        }
    }

    #[test]
    fn offer_timeouts_are_parsed() {
        assert_eq!(OfferTimeout::default().secs(), 30);
        assert!(OfferTimeout::from_secs(9).is_err());
        assert!(OfferTimeout::from_secs(301).is_err());
        assert!(OfferTimeout::from_secs(10).is_ok() && OfferTimeout::from_secs(300).is_ok());
        assert!(serde_json::from_str::<OfferTimeout>("5").is_err());
        assert_eq!(
            OfferTimeout::from_secs(5).expect_err("short").code(),
            "invalid_offer_timeout"
        );
    }

    #[test]
    fn scores_add_up_and_explain_themselves() {
        let weights = Weights::default();
        let mut c = candidate(1, 850, dedicated(1));
        c.recent_deliveries = 2;
        c.rating_tenths = Some(48);
        c.idle_minutes = 12;
        let (s, why) = score(&c, &weights);
        assert_eq!(s, Score(-850 - 600 + 240 + 8 * 50));
        assert_eq!(
            why,
            "dedicated #1, 850 m to pickup, 2 deliveries in the last hour, rated 4.8, idle 12 min"
        );
        c.recent_deliveries = 1;
        c.active_deliveries = 1;
        c.rating_tenths = None;
        c.pool = Pool::Shared;
        c.pickup_metres = 12_345;
        let (_, why) = score(&c, &weights);
        assert_eq!(
            why,
            "shared pool, 12.3 km to pickup, 1 delivery in the last hour, carrying 1, \
             not rated yet, idle 12 min"
        );
        // Idle time stops counting at the cap.
        c.idle_minutes = 500;
        let (capped, _) = score(&c, &weights);
        c.idle_minutes = weights.max_idle_minutes;
        assert_eq!(score(&c, &weights).0, capped);
    }

    #[test]
    fn dedicated_before_shared_then_score_then_id() {
        let candidates = vec![
            candidate(1, 100, Pool::Shared),
            candidate(2, 5_000, dedicated(2)),
            candidate(3, 9_000, dedicated(1)),
            candidate(5, 700, dedicated(2)),
            candidate(4, 700, dedicated(2)),
        ];
        let order: Vec<UserId> = rank(&candidates, &Weights::default())
            .iter()
            .map(|r| r.driver)
            .collect();
        assert_eq!(
            order,
            vec![driver(3), driver(4), driver(5), driver(2), driver(1)]
        );
    }

    #[test]
    fn unavailable_and_full_drivers_are_not_ranked() {
        let mut offline = candidate(1, 10, Pool::Shared);
        offline.availability.online = false;
        let mut unapproved = candidate(2, 10, Pool::Shared);
        unapproved.availability.approved = false;
        let mut off_schedule = candidate(3, 10, Pool::Shared);
        off_schedule.availability.within_schedule = false;
        let mut full = candidate(4, 10, Pool::Shared);
        full.active_deliveries = 2;
        let fine = candidate(5, 10, Pool::Shared);
        let ranked = rank(
            &[offline, unapproved, off_schedule, full, fine],
            &Weights::default(),
        );
        assert_eq!(ranked.len(), 1);
        assert_eq!(ranked[0].driver, driver(5));
    }

    #[test]
    fn a_driver_in_both_fleets_is_ranked_once_by_the_better_entry() {
        let ranked = rank(
            &[
                candidate(1, 10, Pool::Shared),
                candidate(1, 10, dedicated(3)),
            ],
            &Weights::default(),
        );
        assert_eq!(ranked.len(), 1);
        assert_eq!(ranked[0].pool, dedicated(3));
    }

    fn ranked(ids: &[u128]) -> Vec<Ranked> {
        let candidates: Vec<Candidate> = ids
            .iter()
            .enumerate()
            .map(|(i, &id)| candidate(id, 100 * (i as u32 + 1), Pool::Shared))
            .collect();
        rank(&candidates, &Weights::default())
    }

    #[test]
    fn offers_go_one_at_a_time_and_move_on() {
        let list = ranked(&[1, 2, 3]);
        let mut state = OfferState::new(Collection::Prepaid, OfferTimeout::default());
        let NextStep::Offer(first) = state.next(&list, now()).expect("offers") else {
            panic!("expected an offer");
        };
        assert_eq!((first.driver, first.attempt), (driver(1), 1));
        assert_eq!(first.expires_at, now() + Duration::seconds(30));
        // Only one open offer at a time.
        assert!(matches!(
            state.next(&list, now()),
            Err(DispatchError::OfferOpen { .. })
        ));
        // Not yet expired.
        assert!(matches!(
            state.expire(now() + Duration::seconds(29)),
            Err(DispatchError::OfferStillOpen { .. })
        ));
        assert_eq!(state.expire(first.expires_at), Ok(driver(1)));
        let NextStep::Offer(second) = state.next(&list, first.expires_at).expect("offers") else {
            panic!("expected an offer");
        };
        assert_eq!((second.driver, second.attempt), (driver(2), 2));
        assert_eq!(
            state.decline(driver(2), 2, second.offered_at),
            Ok(OfferOutcome::Declined)
        );
        let NextStep::Offer(third) = state.next(&list, now()).expect("offers") else {
            panic!("expected an offer");
        };
        assert_eq!(third.driver, driver(3));
        state.decline(driver(3), 3, now()).expect("declines");
        // Everybody refused: unassigned, even with the same drivers ranked again.
        assert_eq!(state.next(&list, now()), Ok(NextStep::Unassigned));
        // A new driver coming online later gets it.
        let later = ranked(&[2, 9, 1]);
        let NextStep::Offer(fourth) = state.next(&later, now()).expect("offers") else {
            panic!("expected an offer");
        };
        assert_eq!((fourth.driver, fourth.attempt), (driver(9), 4));
    }

    #[test]
    fn accepting_needs_the_current_unexpired_offer() {
        let list = ranked(&[1, 2]);
        let timeout = OfferTimeout::from_secs(10).expect("valid");
        let mut state = OfferState::new(Collection::Prepaid, timeout);
        let NextStep::Offer(offer) = state.next(&list, now()).expect("offers") else {
            panic!("expected an offer");
        };
        assert_eq!(
            state.accept(driver(2), 1, now()),
            Err(DispatchError::NotCurrentOffer),
            "not theirs"
        );
        assert_eq!(
            state.accept(driver(1), 2, now()),
            Err(DispatchError::NotCurrentOffer),
            "not this attempt"
        );
        assert_eq!(
            state.accept(driver(1), 1, offer.expires_at),
            Err(DispatchError::OfferExpired {
                expires_at: offer.expires_at
            }),
            "at the expiry"
        );
        let just_before = offer.expires_at - Duration::milliseconds(1);
        let assignment = state.accept(driver(1), 1, just_before).expect("accepts");
        assert_eq!(assignment.driver, driver(1));
        assert_eq!(state.assigned.as_ref(), Some(&assignment));
        // A second accept, or another driver's, fails; so does dispatching again.
        assert_eq!(
            state.accept(driver(1), 1, just_before),
            Err(DispatchError::AlreadyAssigned)
        );
        assert_eq!(
            state.next(&list, now()),
            Err(DispatchError::AlreadyAssigned)
        );
        assert_eq!(
            state.history.last().map(|p| p.outcome),
            Some(OfferOutcome::Accepted)
        );
    }

    #[test]
    fn an_expired_offer_that_is_declined_counts_as_timed_out() {
        let list = ranked(&[1]);
        let mut state = OfferState::new(Collection::Prepaid, OfferTimeout::default());
        state.next(&list, now()).expect("offers");
        assert_eq!(
            state.decline(driver(1), 1, now() + Duration::seconds(31)),
            Ok(OfferOutcome::TimedOut)
        );
        assert!(state.refused_by(driver(1)));
        assert_eq!(state.expire(now()), Err(DispatchError::NoOpenOffer));
    }

    #[test]
    fn withdrawn_offers_do_not_bar_the_driver() {
        let list = ranked(&[1]);
        let mut state = OfferState::new(Collection::Prepaid, OfferTimeout::default());
        state.next(&list, now()).expect("offers");
        assert!(state.withdraw(now()).is_some());
        assert!(state.withdraw(now()).is_none());
        let NextStep::Offer(again) = state.next(&list, now()).expect("offers") else {
            panic!("expected an offer");
        };
        assert_eq!((again.driver, again.attempt), (driver(1), 2));
    }

    #[test]
    fn cash_orders_skip_drivers_over_the_cap() {
        let mut candidates = vec![
            candidate(1, 100, Pool::Shared),
            candidate(2, 900, Pool::Shared),
        ];
        candidates[0].over_cash_cap = true;
        let list = rank(&candidates, &Weights::default());
        let mut cash = OfferState::new(Collection::Cash, OfferTimeout::default());
        let NextStep::Offer(offer) = cash.next(&list, now()).expect("offers") else {
            panic!("expected an offer");
        };
        assert_eq!(offer.driver, driver(2));
        let mut card = OfferState::new(Collection::Prepaid, OfferTimeout::default());
        let NextStep::Offer(offer) = card.next(&list, now()).expect("offers") else {
            panic!("expected an offer");
        };
        assert_eq!(offer.driver, driver(1));
        let mut only_capped = OfferState::new(Collection::Cash, OfferTimeout::default());
        assert_eq!(
            only_capped.next(&list[..1], now()),
            Ok(NextStep::Unassigned)
        );
    }

    #[test]
    fn ring_cells_cover_each_ring_once() {
        for ring in 0..5 {
            let cells: BTreeSet<(i64, i64)> = ring_cells(0, 0, ring).collect();
            let expected = if ring == 0 { 1 } else { 8 * ring as usize };
            assert_eq!(cells.len(), expected);
            assert!(cells.iter().all(|&(x, y)| x.abs().max(y.abs()) == ring));
        }
    }

    fn point(x: f64, y: f64) -> Coordinates {
        // Metres east and north of a point near Helsinki.
        let lat0: f64 = 60.17;
        Coordinates {
            latitude: lat0 + y / METRES_PER_DEGREE,
            longitude: 24.94 + x / (METRES_PER_DEGREE * lat0.to_radians().cos()),
        }
    }

    fn order_at(n: u128, x: f64, y: f64) -> ReadyOrder {
        ReadyOrder {
            order: Uuid::from_u128(n),
            pickup: point(x, y),
            collection: Collection::Prepaid,
        }
    }

    fn driver_at(n: u128, x: f64, y: f64) -> FreeDriver {
        FreeDriver {
            driver: driver(n),
            position: point(x, y),
            over_cash_cap: false,
        }
    }

    #[test]
    fn the_round_beats_greedy_where_greedy_strands_an_order() {
        // Order A sits between two drivers; greedy gives A the driver order B needed.
        let orders = [order_at(1, 0.0, 0.0), order_at(2, 1_000.0, 0.0)];
        let drivers = [driver_at(10, 900.0, 0.0), driver_at(11, -1_200.0, 0.0)];
        let params = RoundParams::default();
        let greedy = greedy_round(&orders, &drivers, &params);
        let plan = plan_round(&orders, &drivers, &params);
        assert_eq!(greedy.assignments.len(), 2);
        assert_eq!(plan.assignments.len(), 2);
        assert!(greedy.total_pickup_metres() > 3_000);
        assert!(plan.total_pickup_metres() < 1_400);
        assert_eq!(plan.assignments[0].driver, driver(11));
        assert_eq!(plan.assignments[1].driver, driver(10));
    }

    #[test]
    fn the_round_respects_reach_and_the_cash_cap() {
        let mut cash = order_at(1, 0.0, 0.0);
        cash.collection = Collection::Cash;
        let far = order_at(2, 20_000.0, 0.0);
        let mut capped = driver_at(10, 10.0, 0.0);
        capped.over_cash_cap = true;
        let drivers = [capped, driver_at(11, 3_000.0, 0.0)];
        let params = RoundParams::default();
        for plan in [
            plan_round(&[cash, far], &drivers, &params),
            greedy_round(&[cash, far], &drivers, &params),
        ] {
            assert_eq!(plan.assignments.len(), 1);
            assert_eq!(plan.assignments[0].driver, driver(11));
            assert_eq!(plan.unassigned, vec![Uuid::from_u128(2)]);
        }
        assert_eq!(
            plan_round(&[cash], &[], &params).unassigned,
            vec![Uuid::from_u128(1)]
        );
    }

    /// The best (most orders, then least total metres) over every partial assignment.
    fn brute_force(
        orders: &[ReadyOrder],
        drivers: &[FreeDriver],
        params: &RoundParams,
    ) -> (usize, u64) {
        fn go(
            i: usize,
            costs: &[Vec<Option<u32>>],
            used: &mut Vec<bool>,
            best: &mut (usize, u64),
            count: usize,
            total: u64,
        ) {
            if i == costs.len() {
                if count > best.0 || (count == best.0 && total < best.1) {
                    *best = (count, total);
                }
                return;
            }
            go(i + 1, costs, used, best, count, total);
            for j in 0..used.len() {
                if let (false, Some(c)) = (used[j], costs[i][j]) {
                    used[j] = true;
                    go(i + 1, costs, used, best, count + 1, total + u64::from(c));
                    used[j] = false;
                }
            }
        }
        let costs: Vec<Vec<Option<u32>>> = orders
            .iter()
            .map(|o| {
                drivers
                    .iter()
                    .map(|d| {
                        let m = metres_between(o.pickup, d.position);
                        (compatible(o, d) && m <= params.max_pickup_metres).then_some(m)
                    })
                    .collect()
            })
            .collect();
        let mut best = (0, u64::MAX);
        go(0, &costs, &mut vec![false; drivers.len()], &mut best, 0, 0);
        if best.0 == 0 {
            best.1 = 0;
        }
        best
    }

    fn arb_points(max: usize) -> impl Strategy<Value = Vec<(f64, f64, bool)>> {
        prop::collection::vec(
            (-4_000.0f64..4_000.0, -4_000.0f64..4_000.0, any::<bool>()),
            0..=max,
        )
    }

    fn well_formed(
        plan: &RoundPlan,
        orders: &[ReadyOrder],
        drivers: &[FreeDriver],
        params: &RoundParams,
    ) -> Result<(), TestCaseError> {
        let mut seen = BTreeSet::new();
        for a in &plan.assignments {
            prop_assert!(seen.insert(a.driver), "driver assigned twice");
            prop_assert!(a.pickup_metres <= params.max_pickup_metres);
            let o = orders
                .iter()
                .find(|o| o.order == a.order)
                .expect("known order");
            let d = drivers
                .iter()
                .find(|d| d.driver == a.driver)
                .expect("known driver");
            prop_assert_eq!(a.pickup_metres, metres_between(o.pickup, d.position));
            prop_assert!(compatible(o, d));
        }
        prop_assert_eq!(plan.assignments.len() + plan.unassigned.len(), orders.len());
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn the_round_is_optimal_on_small_cities(
            order_points in arb_points(7),
            driver_points in arb_points(7),
            reach in 1_000u32..8_000,
            neighbours in 1usize..=8,
        ) {
            let orders: Vec<ReadyOrder> = order_points
                .iter()
                .enumerate()
                .map(|(i, &(x, y, cash))| ReadyOrder {
                    collection: if cash { Collection::Cash } else { Collection::Prepaid },
                    ..order_at(i as u128, x, y)
                })
                .collect();
            let drivers: Vec<FreeDriver> = driver_points
                .iter()
                .enumerate()
                .map(|(i, &(x, y, capped))| FreeDriver {
                    // Capped drivers are rare, as in life.
                    over_cash_cap: capped && i % 3 == 0,
                    ..driver_at(100 + i as u128, x, y)
                })
                .collect();
            // Short neighbour lists exercise the widening; 7 or more cover every driver.
            let params = RoundParams { max_pickup_metres: reach, neighbours };
            let plan = plan_round(&orders, &drivers, &params);
            well_formed(&plan, &orders, &drivers, &params)?;
            let (count, total) = brute_force(&orders, &drivers, &params);
            prop_assert_eq!(plan.assignments.len(), count);
            prop_assert_eq!(plan.total_pickup_metres(), total);
            let greedy = greedy_round(&orders, &drivers, &params);
            well_formed(&greedy, &orders, &drivers, &params)?;
            prop_assert!(
                greedy.assignments.len() < count || greedy.total_pickup_metres() >= total
            );
            // Deterministic.
            prop_assert_eq!(plan_round(&orders, &drivers, &params), plan);
        }

        #[test]
        fn the_round_never_double_assigns_on_sparse_graphs(
            seed in any::<u64>(),
            orders in 0usize..120,
            drivers in 0usize..150,
            neighbours in 1usize..6,
        ) {
            let city = synthetic_city(seed, orders, drivers);
            let params = RoundParams { max_pickup_metres: 3_000, neighbours };
            let plan = plan_round(&city.orders, &city.drivers, &params);
            well_formed(&plan, &city.orders, &city.drivers, &params)?;
        }
    }

    #[test]
    fn synthetic_cities_are_deterministic() {
        let a = synthetic_city(7, 20, 30);
        let b = synthetic_city(7, 20, 30);
        assert_eq!(a.orders, b.orders);
        assert_eq!(a.drivers, b.drivers);
        assert_ne!(a.orders, synthetic_city(8, 20, 30).orders);
    }

    #[test]
    fn round_versus_greedy_on_a_city_of_500_orders_and_1000_drivers() {
        // Prints the figures of the benchmark (`cargo test --release -p
        // fleetfront-domain round_versus_greedy -- --nocapture`); asserts no timing.
        let params = RoundParams::default();
        let mut improvements = Vec::new();
        let mut millis = Vec::new();
        for seed in 1..=5 {
            let city = synthetic_city(seed, 500, 1_000);
            let started = std::time::Instant::now();
            let plan = plan_round(&city.orders, &city.drivers, &params);
            millis.push(started.elapsed().as_secs_f64() * 1e3);
            let result = bench_round(&city, &params);
            assert_eq!(result.plan, plan, "deterministic");
            println!("seed {seed}: {result}");
            assert!(result.plan.assignments.len() >= result.greedy.assignments.len());
            if result.plan.assignments.len() == result.greedy.assignments.len() {
                assert!(result.plan.total_pickup_metres() <= result.greedy.total_pickup_metres());
            }
            improvements.push(result.improvement_bps());
        }
        println!("improvement (bps of greedy's mean): {improvements:?}");
        println!("plan_round time (ms, this build's profile): {millis:.1?}");
    }

    #[test]
    fn orders_at_one_store_share_its_drivers_optimally() {
        // Two orders wait at a store at 0 m, one at another store at 1,000 m. Greedy gives the
        // store's second order the driver at 800 m, which strands the other store's order with
        // the far driver; the round sends the two near-side drivers to the store instead, the
        // nearer one to the earlier order.
        let orders = [
            order_at(1, 0.0, 0.0),
            order_at(2, 0.0, 0.0),
            order_at(3, 1_000.0, 0.0),
        ];
        let drivers = [
            driver_at(10, 800.0, 0.0),
            driver_at(11, -400.0, 0.0),
            driver_at(12, -1_000.0, 0.0),
        ];
        let params = RoundParams::default();
        let greedy = greedy_round(&orders, &drivers, &params);
        let plan = plan_round(&orders, &drivers, &params);
        let drivers_of = |plan: &RoundPlan| -> Vec<UserId> {
            plan.assignments.iter().map(|a| a.driver).collect()
        };
        assert_eq!(
            drivers_of(&greedy),
            vec![driver(11), driver(10), driver(12)]
        );
        assert!((3_150..=3_250).contains(&greedy.total_pickup_metres()));
        assert_eq!(drivers_of(&plan), vec![driver(11), driver(12), driver(10)]);
        assert!((1_550..=1_650).contains(&plan.total_pickup_metres()));
        assert_eq!(
            plan_round(&orders, &drivers, &params),
            plan,
            "deterministic"
        );
    }

    #[test]
    fn a_cash_order_at_a_shared_store_skips_drivers_over_the_cap() {
        // Same store, one cash order and one prepaid: they are matched as two groups, and the
        // capped driver, though nearest, can only take the prepaid one.
        let mut cash = order_at(1, 0.0, 0.0);
        cash.collection = Collection::Cash;
        let orders = [cash, order_at(2, 0.0, 0.0)];
        let mut capped = driver_at(10, 100.0, 0.0);
        capped.over_cash_cap = true;
        let drivers = [capped, driver_at(11, 300.0, 0.0)];
        let plan = plan_round(&orders, &drivers, &RoundParams::default());
        assert_eq!(plan.assignments.len(), 2);
        assert_eq!(plan.assignments[0].driver, driver(11));
        assert_eq!(plan.assignments[1].driver, driver(10));
        // With the uncapped driver gone, the cash order waits.
        let plan = plan_round(&orders, &drivers[..1], &RoundParams::default());
        assert_eq!(plan.assignments.len(), 1);
        assert_eq!(plan.assignments[0].order, Uuid::from_u128(2));
        assert_eq!(plan.unassigned, vec![Uuid::from_u128(1)]);
    }

    /// The most orders, then the least total metres, over every matching of the whole cost
    /// matrix: the Hungarian method with potentials, O(n² m), on a dense matrix in which a pair
    /// out of reach or against the cash cap costs more than every allowed pair together.
    fn dense_optimum(
        orders: &[ReadyOrder],
        drivers: &[FreeDriver],
        params: &RoundParams,
    ) -> (usize, u64) {
        const BARRED: i64 = 1 << 40;
        let n = orders.len();
        if n == 0 {
            return (0, 0);
        }
        // Padding columns (also barred) let every order take a column.
        let m = drivers.len().max(n);
        let cost = |i: usize, j: usize| -> i64 {
            match drivers.get(j) {
                Some(d) => {
                    let metres = metres_between(orders[i].pickup, d.position);
                    if compatible(&orders[i], d) && metres <= params.max_pickup_metres {
                        i64::from(metres)
                    } else {
                        BARRED
                    }
                }
                None => BARRED,
            }
        };
        let matrix: Vec<Vec<i64>> = (0..n)
            .map(|i| (0..m).map(|j| cost(i, j)).collect())
            .collect();
        let inf = i64::MAX / 4;
        let (mut u, mut v) = (vec![0i64; n + 1], vec![0i64; m + 1]);
        let (mut row_of, mut way) = (vec![0usize; m + 1], vec![0usize; m + 1]);
        for i in 1..=n {
            row_of[0] = i;
            let mut j0 = 0;
            let mut min_to = vec![inf; m + 1];
            let mut used = vec![false; m + 1];
            loop {
                used[j0] = true;
                let i0 = row_of[j0];
                let (mut delta, mut j1) = (inf, 0);
                for j in 1..=m {
                    if !used[j] {
                        let reduced = matrix[i0 - 1][j - 1] - u[i0] - v[j];
                        if reduced < min_to[j] {
                            min_to[j] = reduced;
                            way[j] = j0;
                        }
                        if min_to[j] < delta {
                            delta = min_to[j];
                            j1 = j;
                        }
                    }
                }
                for j in 0..=m {
                    if used[j] {
                        u[row_of[j]] += delta;
                        v[j] -= delta;
                    } else {
                        min_to[j] -= delta;
                    }
                }
                j0 = j1;
                if row_of[j0] == 0 {
                    break;
                }
            }
            while j0 != 0 {
                let j1 = way[j0];
                row_of[j0] = row_of[j1];
                j0 = j1;
            }
        }
        let (mut count, mut total) = (0, 0u64);
        for j in 1..=m {
            let i = row_of[j];
            if i != 0 && matrix[i - 1][j - 1] < BARRED {
                count += 1;
                total += u64::try_from(matrix[i - 1][j - 1]).expect("metres are positive");
            }
        }
        (count, total)
    }

    #[test]
    fn the_round_is_the_optimum_over_every_pair_on_synthetic_cities() {
        // Plenty of drivers, scarce drivers with a short reach (orders left over), and short
        // neighbour lists that must widen: always the optimum of the dense problem.
        let cases = [
            (1, 150, 300, RoundParams::default()),
            (2, 150, 300, RoundParams::default()),
            (
                3,
                150,
                140,
                RoundParams {
                    max_pickup_metres: 1_500,
                    neighbours: 4,
                },
            ),
            (
                4,
                200,
                220,
                RoundParams {
                    max_pickup_metres: 2_500,
                    neighbours: 2,
                },
            ),
        ];
        for (seed, orders, drivers, params) in cases {
            let city = synthetic_city(seed, orders, drivers);
            let plan = plan_round(&city.orders, &city.drivers, &params);
            let (count, total) = dense_optimum(&city.orders, &city.drivers, &params);
            assert_eq!(plan.assignments.len(), count, "seed {seed}");
            assert_eq!(plan.total_pickup_metres(), total, "seed {seed}");
            let greedy = greedy_round(&city.orders, &city.drivers, &params);
            assert!(greedy.assignments.len() <= count);
            let mut seen = BTreeSet::new();
            assert!(plan.assignments.iter().all(|a| seen.insert(a.driver)));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(192))]
        #[test]
        fn the_round_is_optimal_when_orders_share_pickups(
            stores in prop::collection::vec((-3_000.0f64..3_000.0, -3_000.0f64..3_000.0), 1..=3),
            picks in prop::collection::vec((0usize..3, any::<bool>()), 0..=7),
            driver_points in arb_points(7),
            reach in 1_000u32..8_000,
            neighbours in 1usize..=4,
        ) {
            let orders: Vec<ReadyOrder> = picks
                .iter()
                .enumerate()
                .map(|(i, &(store, cash))| {
                    let (x, y) = stores[store % stores.len()];
                    ReadyOrder {
                        collection: if cash { Collection::Cash } else { Collection::Prepaid },
                        ..order_at(i as u128, x, y)
                    }
                })
                .collect();
            let drivers: Vec<FreeDriver> = driver_points
                .iter()
                .enumerate()
                .map(|(i, &(x, y, capped))| FreeDriver {
                    over_cash_cap: capped && i % 3 == 0,
                    ..driver_at(100 + i as u128, x, y)
                })
                .collect();
            let params = RoundParams { max_pickup_metres: reach, neighbours };
            let plan = plan_round(&orders, &drivers, &params);
            well_formed(&plan, &orders, &drivers, &params)?;
            let (count, total) = brute_force(&orders, &drivers, &params);
            prop_assert_eq!(plan.assignments.len(), count);
            prop_assert_eq!(plan.total_pickup_metres(), total);
            prop_assert_eq!(dense_optimum(&orders, &drivers, &params), (count, total));
            // Within a store, the earlier order never has the farther driver.
            for (a, b) in plan.assignments.iter().zip(plan.assignments.iter().skip(1)) {
                let at = |id: Uuid| orders.iter().find(|o| o.order == id).expect("known order");
                let (oa, ob) = (at(a.order), at(b.order));
                if oa.pickup == ob.pickup && oa.collection == ob.collection {
                    prop_assert!(a.pickup_metres <= b.pickup_metres);
                }
            }
            prop_assert_eq!(plan_round(&orders, &drivers, &params), plan);
        }
    }
}
