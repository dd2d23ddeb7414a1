//! The delivery state machine: one driver's work on one order, from assignment to hand-over.
//!
//! A delivery moves forward along
//! `assigned → arrived_at_store → picked_up → arrived_at_customer → delivered`, or ends as
//! `failed` (with a [`FailureReason`]), `reassigned` (taken off its driver before pickup) or
//! `cancelled` (the order was cancelled). It never moves back and never leaves an end status.
//! A new driver gets a new delivery; the order keeps its own status log ([`crate::order`]).
//!
//! The rules follow the order module's and defer to it where both speak:
//!
//! - **Who moves which edge.** The forward steps are the assigned driver's alone. The driver
//!   may also fail a delivery; reasons about the customer (unreachable, wrong address,
//!   refused) need the goods picked up first. Staff may fail or reassign a delivery before
//!   pickup; an admin may fail it at any time and reassign it before pickup; the system
//!   reassigns (timeouts) and cancels (the order's [`crate::order::Effect::CancelDispatch`])
//!   before pickup.
//! - **A physical event with evidence wins.** A step may skip the ones before it; the skipped
//!   steps are filled in, marked so. Skipping the pickup itself needs evidence: the device's
//!   GPS position and time, and for a delivery also the proof photo, which is what the order
//!   module needs to fill in the order's own skipped statuses.
//! - **A late event is superseded, not an error.** A step the delivery has already passed, or
//!   any report on a delivery that has ended, is recorded and changes nothing. In particular a
//!   driver's offline "delivered" that reaches the server after the store cancelled the order
//!   finds a cancelled delivery and is superseded, as [`crate::order::apply`] decides for the
//!   order (tested below against it).
//! - **Proof and cash.** When the business requires a proof photo, delivering needs its digest
//!   (the upload may still be on its way; the digest is what counts). A cash order's delivery
//!   records the cash collected: it must not exceed the amount due (no cash tips through the
//!   ledger), and less than due is accepted only with a stated shortfall reason, recorded as a
//!   [`CashRecord`] with the shortfall, which the driver's payout nets like any cash.
//!
//! Each applied step yields the tracking event kinds to record and, where the order follows,
//! the [`OrderEvent`] to apply to it ([`DeliveryTransition::order_event`],
//! [`order_transition`]).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::error::ErrorCode;
use crate::id::UserId;
use crate::money::Money;
use crate::order::{
    self, DeliveryEvidence, OrderError, OrderEvent, OrderState, Party, PhotoDigest, Reason,
    Transition,
};
use crate::value::Coordinates;

/// Where a delivery is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// A driver accepted the order.
    Assigned,
    /// The driver is at the store.
    ArrivedAtStore,
    /// The driver has the goods.
    PickedUp,
    /// The driver is at the customer's address.
    ArrivedAtCustomer,
    /// Handed over. Terminal.
    Delivered,
    /// Could not be completed. Terminal.
    Failed,
    /// Taken off this driver before pickup; the order is dispatched again. Terminal.
    Reassigned,
    /// The order was cancelled. Terminal.
    Cancelled,
}

impl DeliveryStatus {
    /// Every status, the forward path first.
    pub const ALL: [DeliveryStatus; 8] = [
        DeliveryStatus::Assigned,
        DeliveryStatus::ArrivedAtStore,
        DeliveryStatus::PickedUp,
        DeliveryStatus::ArrivedAtCustomer,
        DeliveryStatus::Delivered,
        DeliveryStatus::Failed,
        DeliveryStatus::Reassigned,
        DeliveryStatus::Cancelled,
    ];

    /// The forward path, in order.
    const PATH: [DeliveryStatus; 5] = [
        DeliveryStatus::Assigned,
        DeliveryStatus::ArrivedAtStore,
        DeliveryStatus::PickedUp,
        DeliveryStatus::ArrivedAtCustomer,
        DeliveryStatus::Delivered,
    ];

    /// Wire and stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Assigned => "assigned",
            Self::ArrivedAtStore => "arrived_at_store",
            Self::PickedUp => "picked_up",
            Self::ArrivedAtCustomer => "arrived_at_customer",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Reassigned => "reassigned",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses the wire and stored form.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// Whether the delivery has ended.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Delivered | Self::Failed | Self::Reassigned | Self::Cancelled
        )
    }

    /// Whether the driver has (or had) the goods.
    pub fn is_picked_up(self) -> bool {
        matches!(
            self,
            Self::PickedUp | Self::ArrivedAtCustomer | Self::Delivered
        )
    }

    /// Position on the forward path (0 for assigned, 4 for delivered); `None` for the other
    /// end statuses.
    pub fn position(self) -> Option<usize> {
        Self::PATH.iter().position(|s| *s == self)
    }

    /// The next status on the forward path, the step a driver reports next; `None` once
    /// delivered or ended otherwise.
    pub fn next_step(self) -> Option<Self> {
        Self::PATH.get(self.position()? + 1).copied()
    }

    /// The tracking event recorded when a delivery reaches this status.
    pub fn tracking_kind(self) -> TrackingKind {
        match self {
            Self::Assigned => TrackingKind::DriverAssigned,
            Self::ArrivedAtStore => TrackingKind::DriverAtStore,
            Self::PickedUp => TrackingKind::PickedUp,
            Self::ArrivedAtCustomer => TrackingKind::DriverArrived,
            Self::Delivered => TrackingKind::Delivered,
            Self::Failed => TrackingKind::DeliveryFailed,
            Self::Reassigned => TrackingKind::DriverReassigned,
            Self::Cancelled => TrackingKind::DeliveryCancelled,
        }
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kinds of tracking events a delivery records (`order_tracking_events.kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TrackingKind {
    /// A driver accepted the order.
    DriverAssigned,
    /// The driver reached the store.
    DriverAtStore,
    /// The driver picked the order up.
    PickedUp,
    /// The driver reached the customer.
    DriverArrived,
    /// The order was handed over.
    Delivered,
    /// The delivery failed.
    DeliveryFailed,
    /// The driver was taken off the order; another one will be found.
    DriverReassigned,
    /// The delivery was cancelled with its order.
    DeliveryCancelled,
}

impl TrackingKind {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DriverAssigned => "driver_assigned",
            Self::DriverAtStore => "driver_at_store",
            Self::PickedUp => "picked_up",
            Self::DriverArrived => "driver_arrived",
            Self::Delivered => "delivered",
            Self::DeliveryFailed => "delivery_failed",
            Self::DriverReassigned => "driver_reassigned",
            Self::DeliveryCancelled => "delivery_cancelled",
        }
    }
}

/// Why a delivery failed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "code", rename_all = "snake_case", deny_unknown_fields)]
pub enum FailureReason {
    /// Nobody answered at the address or on the phone.
    CustomerUnreachable,
    /// The address does not exist or cannot be reached.
    WrongAddress,
    /// The customer refused the order.
    Refused,
    /// The goods were damaged.
    Damaged,
    /// Something else, in words.
    Other {
        /// What happened.
        text: Reason,
    },
}

impl FailureReason {
    /// Stored form of the reason's code.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::CustomerUnreachable => "customer_unreachable",
            Self::WrongAddress => "wrong_address",
            Self::Refused => "refused",
            Self::Damaged => "damaged",
            Self::Other { .. } => "other",
        }
    }

    /// Whether the reason is about the customer, which a driver can only know after pickup.
    pub fn concerns_customer(&self) -> bool {
        matches!(
            self,
            Self::CustomerUnreachable | Self::WrongAddress | Self::Refused
        )
    }
}

/// Who sends a delivery command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DeliveryActor {
    /// A driver (the rules check that it is the delivery's driver).
    Driver(UserId),
    /// A staff member of the order's business.
    Staff,
    /// A platform administrator.
    Admin,
    /// The platform itself (timeouts, the order's cancellation).
    System,
}

impl DeliveryActor {
    /// The order module's party for this actor.
    pub fn party(self) -> Party {
        match self {
            Self::Driver(_) => Party::Driver,
            Self::Staff => Party::Staff,
            Self::Admin => Party::Admin,
            Self::System => Party::System,
        }
    }
}

/// Where and when the driver's device was when it reported a step: the physical evidence that
/// lets a step skip the pickup.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    /// The GPS position.
    pub position: Coordinates,
    /// The device's time of the report (kept for display and reports; the server orders
    /// events by commit).
    pub recorded_at: DateTime<Utc>,
}

/// Cash a driver reports collecting on delivery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CashCollected {
    /// The amount taken.
    pub amount: Money,
    /// Why less than the amount due was taken; required then.
    pub shortfall_reason: Option<Reason>,
}

/// What happened to a delivery, as sent by a [`DeliveryActor`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum DeliveryCommand {
    /// The driver is at the store.
    ArriveAtStore,
    /// The driver has the goods.
    PickUp,
    /// The driver is at the customer.
    ArriveAtCustomer,
    /// The driver handed the goods over.
    Deliver {
        /// The proof photo's digest.
        proof: Option<PhotoDigest>,
        /// Cash collected, for a cash order.
        cash: Option<CashCollected>,
    },
    /// The delivery cannot be completed.
    Fail {
        /// Why.
        reason: FailureReason,
    },
    /// Take the delivery off its driver (before pickup); the order is dispatched again.
    Reassign,
    /// The order was cancelled (before pickup).
    Cancel,
}

impl DeliveryCommand {
    /// The command's name, for errors and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::ArriveAtStore => "arrive_at_store",
            Self::PickUp => "pick_up",
            Self::ArriveAtCustomer => "arrive_at_customer",
            Self::Deliver { .. } => "deliver",
            Self::Fail { .. } => "fail",
            Self::Reassign => "reassign",
            Self::Cancel => "cancel",
        }
    }

    fn target(&self) -> DeliveryStatus {
        match self {
            Self::ArriveAtStore => DeliveryStatus::ArrivedAtStore,
            Self::PickUp => DeliveryStatus::PickedUp,
            Self::ArriveAtCustomer => DeliveryStatus::ArrivedAtCustomer,
            Self::Deliver { .. } => DeliveryStatus::Delivered,
            Self::Fail { .. } => DeliveryStatus::Failed,
            Self::Reassign => DeliveryStatus::Reassigned,
            Self::Cancel => DeliveryStatus::Cancelled,
        }
    }
}

/// What [`apply`] needs to know about a delivery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryState {
    /// The assigned driver.
    pub driver: UserId,
    /// The current status.
    pub status: DeliveryStatus,
    /// The business requires a proof photo to deliver.
    pub proof_required: bool,
    /// For a cash order, the amount the driver collects (the order's total).
    pub cash_due: Option<Money>,
}

/// The cash side of a delivered cash order, for the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CashRecord {
    /// What the customer owed.
    pub due: Money,
    /// What the driver took (and now holds).
    pub collected: Money,
    /// `due − collected`, zero when paid in full.
    pub shortfall: Money,
    /// Why, when short.
    pub shortfall_reason: Option<Reason>,
}

/// One step of the delivery's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryChange {
    /// The status before.
    pub from: DeliveryStatus,
    /// The status after.
    pub to: DeliveryStatus,
    /// Not reported itself, but implied by a later step.
    pub filled_in: bool,
    /// The tracking event to record for it.
    pub tracking: TrackingKind,
}

/// What became of a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryOutcome {
    /// The status moved.
    Applied,
    /// The delivery had already passed this step or ended; recorded, not applied.
    Superseded,
}

/// Work the shell does because of a delivery step, after storing it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryEffect {
    /// Compute and write the driver's earnings ([`crate::earnings`]).
    RecordEarnings,
    /// Record the cash the driver now holds ([`DeliveryTransition::cash`]).
    RecordCash,
    /// Dispatch the order again (offers to other drivers).
    Redispatch,
    /// Tell the business.
    NotifyBusiness,
    /// Tell the driver (a change they did not make).
    NotifyDriver,
}

/// The result of [`apply`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeliveryTransition {
    /// What became of the command.
    pub outcome: DeliveryOutcome,
    /// The status afterwards.
    pub status: DeliveryStatus,
    /// The steps to append, oldest first (empty unless applied).
    pub changes: Vec<DeliveryChange>,
    /// The event to apply to the order, by [`DeliveryTransition::order_party`], if the order
    /// follows this step.
    pub order_event: Option<OrderEvent>,
    /// Who sends [`DeliveryTransition::order_event`].
    pub order_party: Party,
    /// The cash collected, for a delivered cash order.
    pub cash: Option<CashRecord>,
    /// Side effects for the shell.
    pub effects: Vec<DeliveryEffect>,
    /// The command's evidence, kept for the log.
    pub evidence: Option<Evidence>,
    /// When it was applied (the server's order of events).
    pub at: DateTime<Utc>,
}

/// Why a delivery command was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DeliveryError {
    /// A driver other than the delivery's.
    #[error("this delivery is assigned to another driver")]
    NotAssignedDriver,
    /// This actor may not send this command to a delivery in this status.
    #[error("{actor} may not {command} a delivery that is {status}")]
    Forbidden {
        /// Who sent it.
        actor: Party,
        /// The command.
        command: &'static str,
        /// The delivery's status.
        status: DeliveryStatus,
    },
    /// A step skipping the pickup without GPS evidence (and, to deliver, a proof photo).
    #[error("reporting {command} before the pickup needs the device's position and time{}", if *.photo { " and a proof photo" } else { "" })]
    EvidenceRequired {
        /// The command.
        command: &'static str,
        /// A photo is needed as well.
        photo: bool,
    },
    /// The business requires a proof photo to deliver.
    #[error("this business requires a proof photo before delivery")]
    ProofRequired,
    /// A cash order delivered without the amount collected.
    #[error("a cash order needs the amount collected")]
    CashAmountRequired,
    /// Cash reported for an order that is not paid in cash.
    #[error("this order is not paid in cash")]
    CashNotDue,
    /// Cash in another currency than the order's, or a negative amount.
    #[error("the cash collected must be a non-negative amount in {due}'s currency")]
    InvalidCashAmount {
        /// The amount due.
        due: Money,
    },
    /// More cash than the order's total.
    #[error("collected {collected}, more than the {due} due")]
    CashOverDue {
        /// The amount due.
        due: Money,
        /// The amount reported.
        collected: Money,
    },
    /// Less cash than due, without a reason.
    #[error("collected {collected} of {due}: say why the rest is missing")]
    ShortfallReasonRequired {
        /// The amount due.
        due: Money,
        /// The amount reported.
        collected: Money,
    },
    /// A failure reason about the customer before the driver had the goods.
    #[error("a delivery can fail for {reason} only after pickup")]
    ReasonNeedsPickup {
        /// The reason's code.
        reason: &'static str,
    },
}

impl DeliveryError {
    /// A stable machine-readable code for the error, for clients to branch on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotAssignedDriver => "not_assigned_driver",
            Self::Forbidden { .. } => "delivery_forbidden",
            Self::EvidenceRequired { .. } => "delivery_evidence_required",
            Self::ProofRequired => "proof_required",
            Self::CashAmountRequired => "cash_amount_required",
            Self::CashNotDue => "cash_not_due",
            Self::InvalidCashAmount { .. } => "invalid_cash_amount",
            Self::CashOverDue { .. } => "cash_over_due",
            Self::ShortfallReasonRequired { .. } => "shortfall_reason_required",
            Self::ReasonNeedsPickup { .. } => "reason_needs_pickup",
        }
    }

    /// The API error code the server answers with.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            Self::NotAssignedDriver => ErrorCode::NotFound,
            Self::Forbidden { .. }
            | Self::EvidenceRequired { .. }
            | Self::ProofRequired
            | Self::ReasonNeedsPickup { .. } => ErrorCode::InvalidTransition,
            Self::CashAmountRequired
            | Self::CashNotDue
            | Self::InvalidCashAmount { .. }
            | Self::CashOverDue { .. }
            | Self::ShortfallReasonRequired { .. } => ErrorCode::ValidationFailed,
        }
    }
}

/// Whether `actor` may send `command` to a delivery in `status` (the driver's identity and the
/// statuses that have ended are checked before).
fn allowed(actor: DeliveryActor, command: &DeliveryCommand, status: DeliveryStatus) -> bool {
    use DeliveryActor as A;
    use DeliveryCommand as C;
    let before_pickup = !status.is_picked_up();
    match command {
        C::ArriveAtStore | C::PickUp | C::ArriveAtCustomer | C::Deliver { .. } => {
            matches!(actor, A::Driver(_))
        }
        C::Fail { .. } => match actor {
            A::Driver(_) | A::Admin => true,
            A::Staff => before_pickup,
            A::System => false,
        },
        C::Reassign => matches!(actor, A::Staff | A::Admin | A::System) && before_pickup,
        C::Cancel => matches!(actor, A::System | A::Admin) && before_pickup,
    }
}

/// Applies `command`, sent by `by` with the device's `evidence`, to `current` at `at` (the
/// server's commit order).
///
/// # Errors
/// [`DeliveryError::NotAssignedDriver`] for another driver (checked first, whatever the
/// status); [`DeliveryError::Forbidden`], [`DeliveryError::ReasonNeedsPickup`],
/// [`DeliveryError::EvidenceRequired`], [`DeliveryError::ProofRequired`] and the cash errors
/// when the step cannot apply. A late step is not an error: it is
/// [`DeliveryOutcome::Superseded`].
pub fn apply(
    current: &DeliveryState,
    command: DeliveryCommand,
    evidence: Option<Evidence>,
    by: DeliveryActor,
    at: DateTime<Utc>,
) -> Result<DeliveryTransition, DeliveryError> {
    if let DeliveryActor::Driver(driver) = by {
        if driver != current.driver {
            return Err(DeliveryError::NotAssignedDriver);
        }
    }
    let status = current.status;
    let target = command.target();
    let unchanged = || DeliveryTransition {
        outcome: DeliveryOutcome::Superseded,
        status,
        changes: Vec::new(),
        order_event: None,
        order_party: by.party(),
        cash: None,
        effects: Vec::new(),
        evidence,
        at,
    };
    if status.is_terminal() {
        return Ok(unchanged());
    }
    if !allowed(by, &command, status) {
        return Err(DeliveryError::Forbidden {
            actor: by.party(),
            command: command.name(),
            status,
        });
    }
    // A forward step the delivery has already reached is late.
    if let (Some(now), Some(to)) = (status.position(), target.position()) {
        if to <= now {
            return Ok(unchanged());
        }
    }
    let mut effects = Vec::new();
    let mut cash = None;
    let mut order_event = None;
    match &command {
        DeliveryCommand::Fail { reason } => {
            if by.party() == Party::Driver && reason.concerns_customer() && !status.is_picked_up() {
                return Err(DeliveryError::ReasonNeedsPickup {
                    reason: reason.as_str(),
                });
            }
            if !status.is_picked_up() {
                effects.push(DeliveryEffect::Redispatch);
            }
            effects.push(DeliveryEffect::NotifyBusiness);
        }
        DeliveryCommand::Reassign | DeliveryCommand::Cancel => {
            if target == DeliveryStatus::Reassigned {
                effects.push(DeliveryEffect::Redispatch);
            }
            effects.push(DeliveryEffect::NotifyDriver);
        }
        DeliveryCommand::ArriveAtStore
        | DeliveryCommand::PickUp
        | DeliveryCommand::ArriveAtCustomer
        | DeliveryCommand::Deliver { .. } => {
            let skips_pickup = !status.is_picked_up()
                && target != DeliveryStatus::ArrivedAtStore
                && target != DeliveryStatus::PickedUp;
            let (proof, collected) = match &command {
                DeliveryCommand::Deliver { proof, cash } => (proof.as_ref(), cash.as_ref()),
                _ => (None, None),
            };
            let delivering = target == DeliveryStatus::Delivered;
            if skips_pickup && (evidence.is_none() || (delivering && proof.is_none())) {
                return Err(DeliveryError::EvidenceRequired {
                    command: command.name(),
                    photo: delivering,
                });
            }
            if delivering {
                if current.proof_required && proof.is_none() {
                    return Err(DeliveryError::ProofRequired);
                }
                cash = check_cash(current.cash_due, collected)?;
                order_event = Some(OrderEvent::Deliver {
                    evidence: evidence.zip(proof).map(|(e, photo)| DeliveryEvidence {
                        location: e.position,
                        photo: photo.clone(),
                    }),
                });
                effects.push(DeliveryEffect::RecordEarnings);
                if cash.is_some() {
                    effects.push(DeliveryEffect::RecordCash);
                }
            } else if target.is_picked_up() && !status.is_picked_up() {
                order_event = Some(OrderEvent::PickUp);
            }
        }
    }
    Ok(DeliveryTransition {
        outcome: DeliveryOutcome::Applied,
        status: target,
        changes: steps(status, target),
        order_event,
        order_party: by.party(),
        cash,
        effects,
        evidence,
        at,
    })
}

/// The cash record of a delivery, or why the reported cash is refused.
fn check_cash(
    due: Option<Money>,
    collected: Option<&CashCollected>,
) -> Result<Option<CashRecord>, DeliveryError> {
    let (due, collected) = match (due, collected) {
        (None, None) => return Ok(None),
        (None, Some(_)) => return Err(DeliveryError::CashNotDue),
        (Some(_), None) => return Err(DeliveryError::CashAmountRequired),
        (Some(due), Some(collected)) => (due, collected),
    };
    let amount = collected.amount;
    if amount.currency != due.currency || amount.minor < 0 {
        return Err(DeliveryError::InvalidCashAmount { due });
    }
    if amount.minor > due.minor {
        return Err(DeliveryError::CashOverDue {
            due,
            collected: amount,
        });
    }
    if amount.minor < due.minor && collected.shortfall_reason.is_none() {
        return Err(DeliveryError::ShortfallReasonRequired {
            due,
            collected: amount,
        });
    }
    Ok(Some(CashRecord {
        due,
        collected: amount,
        shortfall: Money::new(due.minor - amount.minor, due.currency),
        shortfall_reason: if amount.minor < due.minor {
            collected.shortfall_reason.clone()
        } else {
            None
        },
    }))
}

/// The steps from `from` to `to`: every forward status in between (filled in) when `to` is on
/// the forward path, otherwise the single step.
fn steps(from: DeliveryStatus, to: DeliveryStatus) -> Vec<DeliveryChange> {
    let path = &DeliveryStatus::PATH;
    let pairs: Vec<(DeliveryStatus, DeliveryStatus)> = match from.position().zip(to.position()) {
        Some((start, end)) => path[start..=end].windows(2).map(|w| (w[0], w[1])).collect(),
        None => vec![(from, to)],
    };
    pairs
        .into_iter()
        .map(|(a, b)| DeliveryChange {
            from: a,
            to: b,
            filled_in: b != to,
            tracking: b.tracking_kind(),
        })
        .collect()
}

/// Applies the delivery step's order event, if any, to the order through
/// [`crate::order::apply`] (never a second copy of its rules): `None` when the order does not
/// follow this step.
///
/// # Errors
/// The order module's [`OrderError`] (for instance the order is not ready yet for a pickup).
pub fn order_transition(
    order: &OrderState,
    step: &DeliveryTransition,
    at: DateTime<Utc>,
) -> Option<Result<Transition, OrderError>> {
    step.order_event
        .clone()
        .map(|event| order::apply(order, event, step.order_party, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_step_follows_the_forward_path() {
        use DeliveryStatus as S;
        assert_eq!(S::Assigned.next_step(), Some(S::ArrivedAtStore));
        assert_eq!(S::ArrivedAtCustomer.next_step(), Some(S::Delivered));
        assert_eq!(S::Delivered.next_step(), None);
        assert_eq!(S::Failed.next_step(), None);
        assert_eq!(S::PickedUp.position(), Some(2));
    }
    use crate::money::Currency;
    use crate::order::{
        acceptance_deadline, AcceptanceWindow, FulfilmentKind, OrderStatus, Outcome, PaymentState,
    };
    use uuid::Uuid;
    use DeliveryStatus as S;

    fn at() -> DateTime<Utc> {
        "2026-06-01T12:30:00Z".parse().expect("valid instant")
    }

    fn driver() -> UserId {
        UserId(Uuid::from_u128(7))
    }

    fn eur(minor: i64) -> Money {
        Money::new(minor, Currency::parse("EUR").expect("known"))
    }

    fn state(status: DeliveryStatus) -> DeliveryState {
        DeliveryState {
            driver: driver(),
            status,
            proof_required: false,
            cash_due: None,
        }
    }

    fn evidence() -> Evidence {
        Evidence {
            position: Coordinates::parse(60.17, 24.94).expect("valid"),
            recorded_at: at(),
        }
    }

    fn photo() -> PhotoDigest {
        PhotoDigest::parse(&"ab".repeat(32)).expect("valid")
    }

    fn deliver(proof: Option<PhotoDigest>, cash: Option<CashCollected>) -> DeliveryCommand {
        DeliveryCommand::Deliver { proof, cash }
    }

    fn me() -> DeliveryActor {
        DeliveryActor::Driver(driver())
    }

    fn reason(text: &str) -> Reason {
        Reason::parse(text).expect("valid")
    }

    #[test]
    fn the_driver_walks_the_path_and_the_order_follows() {
        let cases = [
            (
                S::Assigned,
                DeliveryCommand::ArriveAtStore,
                S::ArrivedAtStore,
                None,
            ),
            (
                S::ArrivedAtStore,
                DeliveryCommand::PickUp,
                S::PickedUp,
                Some(OrderEvent::PickUp),
            ),
            (
                S::PickedUp,
                DeliveryCommand::ArriveAtCustomer,
                S::ArrivedAtCustomer,
                None,
            ),
            (
                S::ArrivedAtCustomer,
                deliver(None, None),
                S::Delivered,
                Some(OrderEvent::Deliver { evidence: None }),
            ),
        ];
        for (from, command, to, event) in cases {
            let t = apply(&state(from), command, None, me(), at()).expect("applies");
            assert_eq!(t.outcome, DeliveryOutcome::Applied);
            assert_eq!(t.status, to);
            assert_eq!(t.changes.len(), 1);
            assert_eq!(t.changes[0].tracking, to.tracking_kind());
            assert!(!t.changes[0].filled_in);
            assert_eq!(t.order_event, event, "{from} -> {to}");
            assert_eq!(t.order_party, Party::Driver);
        }
    }

    #[test]
    fn only_the_assigned_driver_moves_it() {
        let other = DeliveryActor::Driver(UserId(Uuid::from_u128(8)));
        for status in DeliveryStatus::ALL {
            assert_eq!(
                apply(&state(status), DeliveryCommand::PickUp, None, other, at()),
                Err(DeliveryError::NotAssignedDriver)
            );
        }
        for actor in [
            DeliveryActor::Staff,
            DeliveryActor::Admin,
            DeliveryActor::System,
        ] {
            let err = apply(
                &state(S::Assigned),
                DeliveryCommand::ArriveAtStore,
                None,
                actor,
                at(),
            )
            .expect_err("drivers only");
            assert_eq!(err.code(), "delivery_forbidden");
        }
    }

    #[test]
    fn who_may_fail_reassign_and_cancel() {
        use DeliveryActor::{Admin, Staff, System};
        let fail = || DeliveryCommand::Fail {
            reason: FailureReason::Damaged,
        };
        // (status, command, actor, allowed)
        let cases = [
            (S::Assigned, fail(), Staff, true),
            (S::ArrivedAtStore, fail(), Staff, true),
            (S::PickedUp, fail(), Staff, false),
            (S::ArrivedAtCustomer, fail(), Admin, true),
            (S::Assigned, fail(), System, false),
            (S::PickedUp, fail(), me(), true),
            (S::Assigned, DeliveryCommand::Reassign, Staff, true),
            (S::ArrivedAtStore, DeliveryCommand::Reassign, System, true),
            (S::ArrivedAtStore, DeliveryCommand::Reassign, Admin, true),
            (S::PickedUp, DeliveryCommand::Reassign, Staff, false),
            (S::PickedUp, DeliveryCommand::Reassign, Admin, false),
            (S::Assigned, DeliveryCommand::Reassign, me(), false),
            (S::Assigned, DeliveryCommand::Cancel, System, true),
            (S::Assigned, DeliveryCommand::Cancel, Staff, false),
            (S::PickedUp, DeliveryCommand::Cancel, System, false),
        ];
        for (status, command, actor, ok) in cases {
            let case = format!("{status} {} by {actor:?}", command.name());
            let result = apply(&state(status), command, None, actor, at());
            assert_eq!(result.is_ok(), ok, "{case}: {result:?}");
        }
        let t = apply(
            &state(S::Assigned),
            DeliveryCommand::Reassign,
            None,
            Staff,
            at(),
        )
        .expect("reassigns");
        assert_eq!(t.status, S::Reassigned);
        assert_eq!(
            t.effects,
            vec![DeliveryEffect::Redispatch, DeliveryEffect::NotifyDriver]
        );
        assert_eq!(t.order_event, None);
        assert_eq!(t.changes[0].tracking, TrackingKind::DriverReassigned);
    }

    #[test]
    fn customer_reasons_need_the_goods() {
        let unreachable = || DeliveryCommand::Fail {
            reason: FailureReason::CustomerUnreachable,
        };
        assert_eq!(
            apply(&state(S::ArrivedAtStore), unreachable(), None, me(), at()),
            Err(DeliveryError::ReasonNeedsPickup {
                reason: "customer_unreachable"
            })
        );
        let t = apply(
            &state(S::ArrivedAtCustomer),
            unreachable(),
            None,
            me(),
            at(),
        )
        .expect("fails");
        assert_eq!(t.status, S::Failed);
        assert_eq!(t.effects, vec![DeliveryEffect::NotifyBusiness]);
        let other = DeliveryCommand::Fail {
            reason: FailureReason::Other {
                text: reason("flat tyre"),
            },
        };
        let t = apply(&state(S::Assigned), other, None, me(), at()).expect("fails");
        assert_eq!(
            t.effects,
            vec![DeliveryEffect::Redispatch, DeliveryEffect::NotifyBusiness]
        );
        let json = serde_json::to_string(&FailureReason::Other {
            text: reason("flat tyre"),
        })
        .expect("serializes");
        assert_eq!(json, r#"{"code":"other","text":"flat tyre"}"#);
        assert!(serde_json::from_str::<FailureReason>(r#"{"code":"refused"}"#).is_ok());
    }

    #[test]
    fn skipped_steps_are_filled_in_and_skipping_pickup_needs_evidence() {
        // Picked up straight from assigned: arrival at the store is filled in.
        let t = apply(
            &state(S::Assigned),
            DeliveryCommand::PickUp,
            None,
            me(),
            at(),
        )
        .expect("applies");
        let steps: Vec<(S, S, bool)> = t
            .changes
            .iter()
            .map(|c| (c.from, c.to, c.filled_in))
            .collect();
        assert_eq!(
            steps,
            vec![
                (S::Assigned, S::ArrivedAtStore, true),
                (S::ArrivedAtStore, S::PickedUp, false)
            ]
        );
        // Delivered straight from assigned, with nothing to show for it.
        assert_eq!(
            apply(
                &state(S::Assigned),
                deliver(Some(photo()), None),
                None,
                me(),
                at()
            ),
            Err(DeliveryError::EvidenceRequired {
                command: "deliver",
                photo: true
            })
        );
        assert!(apply(
            &state(S::Assigned),
            deliver(None, None),
            Some(evidence()),
            me(),
            at()
        )
        .is_err());
        assert!(apply(
            &state(S::ArrivedAtStore),
            DeliveryCommand::ArriveAtCustomer,
            None,
            me(),
            at()
        )
        .is_err());
        // With GPS, time and photo, every step is filled in and the order gets the evidence.
        let t = apply(
            &state(S::Assigned),
            deliver(Some(photo()), None),
            Some(evidence()),
            me(),
            at(),
        )
        .expect("applies");
        let steps: Vec<(S, bool)> = t.changes.iter().map(|c| (c.to, c.filled_in)).collect();
        assert_eq!(
            steps,
            vec![
                (S::ArrivedAtStore, true),
                (S::PickedUp, true),
                (S::ArrivedAtCustomer, true),
                (S::Delivered, false)
            ]
        );
        assert_eq!(
            t.order_event,
            Some(OrderEvent::Deliver {
                evidence: Some(DeliveryEvidence {
                    location: evidence().position,
                    photo: photo()
                })
            })
        );
        // After pickup, arriving at the customer may be skipped without evidence.
        let t = apply(&state(S::PickedUp), deliver(None, None), None, me(), at()).expect("applies");
        assert_eq!(t.changes.len(), 2);
        assert!(t.changes[0].filled_in);
    }

    #[test]
    fn late_and_ended_reports_are_superseded() {
        let cases = [
            (S::PickedUp, DeliveryCommand::ArriveAtStore),
            (S::PickedUp, DeliveryCommand::PickUp),
            (S::ArrivedAtCustomer, DeliveryCommand::PickUp),
            (S::Delivered, deliver(None, None)),
            (S::Cancelled, deliver(Some(photo()), None)),
            (S::Failed, DeliveryCommand::ArriveAtCustomer),
            (S::Reassigned, DeliveryCommand::PickUp),
        ];
        for (status, command) in cases {
            let name = command.name();
            let t = apply(&state(status), command, Some(evidence()), me(), at()).expect(name);
            assert_eq!(t.outcome, DeliveryOutcome::Superseded, "{status} {name}");
            assert_eq!(t.status, status);
            assert!(t.changes.is_empty() && t.effects.is_empty() && t.order_event.is_none());
            assert_eq!(t.evidence, Some(evidence()), "kept for the log");
        }
    }

    fn order(status: OrderStatus, payment: PaymentState) -> OrderState {
        OrderState {
            status,
            fulfilment: FulfilmentKind::Delivery,
            payment,
            acceptance_deadline: acceptance_deadline(at(), AcceptanceWindow::DEFAULT),
        }
    }

    #[test]
    fn offline_delivery_after_an_online_cancellation_is_recorded_not_applied() {
        // The store cancelled online: the order is cancelled and, through CancelDispatch, the
        // delivery too. The driver's offline "delivered" with GPS, time and photo arrives later.
        let report = || deliver(Some(photo()), None);
        let delivery =
            apply(&state(S::Cancelled), report(), Some(evidence()), me(), at()).expect("recorded");
        assert_eq!(delivery.outcome, DeliveryOutcome::Superseded);
        // The order module decides the same for the order.
        let o = order::apply(
            &order(OrderStatus::Cancelled, PaymentState::Unpaid),
            OrderEvent::Deliver {
                evidence: Some(DeliveryEvidence {
                    location: evidence().position,
                    photo: photo(),
                }),
            },
            Party::Driver,
            at(),
        )
        .expect("recorded");
        assert_eq!(o.outcome, Outcome::Superseded);
        assert_eq!(o.status, OrderStatus::Cancelled);
    }

    #[test]
    fn a_delivery_with_evidence_fills_in_the_order_through_the_order_module() {
        let step = apply(
            &state(S::Assigned),
            deliver(Some(photo()), None),
            Some(evidence()),
            me(),
            at(),
        )
        .expect("applies");
        let t = order_transition(
            &order(OrderStatus::Ready, PaymentState::Authorized),
            &step,
            at(),
        )
        .expect("the order follows")
        .expect("applies");
        assert_eq!(t.status, OrderStatus::Delivered);
        assert!(t.changes.iter().rev().skip(1).all(|c| c.filled_in));
        // A pickup reported before the store marked the order ready wins: the courier has the
        // bag, and the order's preparing and ready are filled in.
        let pickup = apply(
            &state(S::ArrivedAtStore),
            DeliveryCommand::PickUp,
            None,
            me(),
            at(),
        )
        .expect("applies");
        let picked = order_transition(
            &order(OrderStatus::Preparing, PaymentState::Unpaid),
            &pickup,
            at(),
        )
        .expect("the order follows")
        .expect("applies");
        assert_eq!(picked.status, OrderStatus::PickedUp);
        assert!(picked.changes[0].filled_in && !picked.changes[1].filled_in);
        let arrive = apply(
            &state(S::Assigned),
            DeliveryCommand::ArriveAtStore,
            None,
            me(),
            at(),
        )
        .expect("applies");
        assert!(order_transition(
            &order(OrderStatus::Ready, PaymentState::Unpaid),
            &arrive,
            at()
        )
        .is_none());
    }

    #[test]
    fn proof_is_required_when_the_business_says_so() {
        let strict = DeliveryState {
            proof_required: true,
            ..state(S::ArrivedAtCustomer)
        };
        assert_eq!(
            apply(&strict, deliver(None, None), None, me(), at()),
            Err(DeliveryError::ProofRequired)
        );
        assert!(apply(&strict, deliver(Some(photo()), None), None, me(), at()).is_ok());
    }

    #[test]
    fn cash_must_match_or_the_shortfall_be_explained() {
        let cash_order = DeliveryState {
            cash_due: Some(eur(2_450)),
            ..state(S::ArrivedAtCustomer)
        };
        let collected = |minor: i64, why: Option<&str>| {
            Some(CashCollected {
                amount: eur(minor),
                shortfall_reason: why.map(reason),
            })
        };
        assert_eq!(
            apply(&cash_order, deliver(None, None), None, me(), at()),
            Err(DeliveryError::CashAmountRequired)
        );
        let full = apply(
            &cash_order,
            deliver(None, collected(2_450, None)),
            None,
            me(),
            at(),
        )
        .expect("paid in full");
        let record = full.cash.expect("recorded");
        assert_eq!(record.shortfall, eur(0));
        assert_eq!(
            full.effects,
            vec![DeliveryEffect::RecordEarnings, DeliveryEffect::RecordCash]
        );
        assert_eq!(
            apply(
                &cash_order,
                deliver(None, collected(2_500, None)),
                None,
                me(),
                at()
            ),
            Err(DeliveryError::CashOverDue {
                due: eur(2_450),
                collected: eur(2_500)
            })
        );
        assert!(matches!(
            apply(
                &cash_order,
                deliver(None, collected(2_000, None)),
                None,
                me(),
                at()
            ),
            Err(DeliveryError::ShortfallReasonRequired { .. })
        ));
        let short = apply(
            &cash_order,
            deliver(None, collected(2_000, Some("customer had only 20 euros"))),
            None,
            me(),
            at(),
        )
        .expect("short but explained");
        let record = short.cash.expect("recorded");
        assert_eq!((record.collected, record.shortfall), (eur(2_000), eur(450)));
        assert!(matches!(
            apply(
                &cash_order,
                deliver(None, collected(-1, Some("x"))),
                None,
                me(),
                at()
            ),
            Err(DeliveryError::InvalidCashAmount { .. })
        ));
        let usd = Some(CashCollected {
            amount: Money::new(2_450, Currency::parse("USD").expect("known")),
            shortfall_reason: None,
        });
        assert!(apply(&cash_order, deliver(None, usd), None, me(), at()).is_err());
        assert_eq!(
            apply(
                &state(S::ArrivedAtCustomer),
                deliver(None, collected(100, None)),
                None,
                me(),
                at()
            ),
            Err(DeliveryError::CashNotDue)
        );
    }

    #[test]
    fn wire_forms() {
        for status in DeliveryStatus::ALL {
            assert_eq!(DeliveryStatus::parse(status.as_str()), Some(status));
            let json = serde_json::to_string(&status).expect("serializes");
            assert_eq!(json, format!("\"{}\"", status.as_str()));
            let kind = serde_json::to_string(&status.tracking_kind()).expect("serializes");
            assert_eq!(kind, format!("\"{}\"", status.tracking_kind().as_str()));
        }
    }
}
