//! The order state machine: which event may move an order from which status, who may send it,
//! what the log records and which side effects the shell must perform.
//!
//! Order status is a log. An order moves forward along
//! `pending → confirmed → preparing → ready → picked_up → delivered`, or leaves it for one of
//! the terminal statuses `rejected`, `cancelled` and `refunded`; it never moves back and never
//! leaves a terminal status. The server orders events by commit and calls [`apply`]; an offline
//! client calls the same function on its local copy, so what it shows is what the server will
//! decide.
//!
//! - **A physical event with evidence wins.** A driver who reports a delivery with GPS and a
//!   proof photo moves a confirmed, preparing or ready order straight to delivered; the skipped
//!   statuses are filled in the recorded history, marked as filled in. The goods leaving the
//!   store is physical too: a pickup (by the courier, or staff handing a collection order
//!   over) moves a confirmed or preparing order that nobody marked ready to picked up, the
//!   same way.
//! - **A late event is superseded, not an error.** An event whose status the order has already
//!   passed (the business marks ready after the driver delivered, a second accept, a reject
//!   after a cancel) is recorded with [`Outcome::Superseded`] and changes nothing.
//! - **Cancelling after pickup is a request.** Once the food has left the store, and for a
//!   customer once the business has accepted, a cancellation opens a request for a person to
//!   decide; it is not a transition.
//!
//! Who may send an event is decided by role here ([`Party`]); whether this particular staff
//! member, driver or customer belongs to the order is the shell's check, made before calling
//! [`apply`]. Side effects come back as data ([`Effect`]); this module performs none of them.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::value::Coordinates;

/// Where an order is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Placed, but the card's authorization waits for the customer (3-D Secure). The business
    /// does not see the order yet; its deadline is the customer's time to authenticate.
    AwaitingPayment,
    /// Placed, awaiting the business.
    Pending,
    /// Accepted by the business, with a preparation time.
    Confirmed,
    /// Being prepared.
    Preparing,
    /// Ready for pickup by the customer or for dispatch.
    Ready,
    /// Picked up by a driver, or collected by the customer (which completes a pickup order).
    PickedUp,
    /// Delivered to the customer (completes a delivery order).
    Delivered,
    /// Refused by the business, or not accepted within the acceptance window. Terminal.
    Rejected,
    /// Cancelled before pickup. Terminal.
    Cancelled,
    /// Refunded after completion. Terminal.
    Refunded,
}

impl OrderStatus {
    /// Every status, forward statuses first.
    pub const ALL: [OrderStatus; 10] = [
        OrderStatus::AwaitingPayment,
        OrderStatus::Pending,
        OrderStatus::Confirmed,
        OrderStatus::Preparing,
        OrderStatus::Ready,
        OrderStatus::PickedUp,
        OrderStatus::Delivered,
        OrderStatus::Rejected,
        OrderStatus::Cancelled,
        OrderStatus::Refunded,
    ];

    /// The forward path, in order.
    const PATH: [OrderStatus; 6] = [
        OrderStatus::Pending,
        OrderStatus::Confirmed,
        OrderStatus::Preparing,
        OrderStatus::Ready,
        OrderStatus::PickedUp,
        OrderStatus::Delivered,
    ];

    /// Wire and stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AwaitingPayment => "awaiting_payment",
            Self::Pending => "pending",
            Self::Confirmed => "confirmed",
            Self::Preparing => "preparing",
            Self::Ready => "ready",
            Self::PickedUp => "picked_up",
            Self::Delivered => "delivered",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
            Self::Refunded => "refunded",
        }
    }

    /// Parses the wire and stored form.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// Whether no event can move the order any more.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Rejected | Self::Cancelled | Self::Refunded)
    }

    /// Position in the order's life: the forward path counts up from 0, and every terminal
    /// status comes after all of it. A transition always increases the rank.
    fn rank(self) -> u8 {
        match self {
            Self::AwaitingPayment => 0,
            Self::Pending => 1,
            Self::Confirmed => 2,
            Self::Preparing => 3,
            Self::Ready => 4,
            Self::PickedUp => 5,
            Self::Delivered => 6,
            Self::Rejected | Self::Cancelled | Self::Refunded => 7,
        }
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who sends an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Party {
    /// The customer who placed the order.
    Customer,
    /// A staff member of the business the order was placed with.
    Staff,
    /// The driver assigned to the order.
    Driver,
    /// The platform itself (timeouts).
    System,
    /// A platform administrator.
    Admin,
}

impl Party {
    /// Every party.
    pub const ALL: [Party; 5] = [
        Party::Customer,
        Party::Staff,
        Party::Driver,
        Party::System,
        Party::Admin,
    ];

    /// Wire and stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Staff => "staff",
            Self::Driver => "driver",
            Self::System => "system",
            Self::Admin => "admin",
        }
    }

    /// Parses the wire and stored form.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == raw)
    }
}

impl fmt::Display for Party {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the customer receives the order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FulfilmentKind {
    /// The customer collects it; the order is complete once picked up.
    Pickup,
    /// A driver delivers it; the order is complete once delivered.
    Delivery,
}

impl FulfilmentKind {
    /// Wire and stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pickup => "pickup",
            Self::Delivery => "delivery",
        }
    }
}

impl fmt::Display for FulfilmentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How far the order's payment has gone, as the payment records say. Payments are never
/// optimistic: this changes only when the gateway (or the cash till) has confirmed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PaymentState {
    /// Nothing taken yet (cash on delivery before collection).
    Unpaid,
    /// The card's authorization waits for the customer to authenticate (3-D Secure): nothing
    /// is held yet, but the provider's payment exists and is released if the order ends.
    RequiresAction,
    /// A card authorization holds the amount; nothing is captured.
    Authorized,
    /// The money has been taken (card captured, or cash collected).
    Captured,
}

impl PaymentState {
    /// The state of an order's stored `payment_status` (`unpaid`, `requires_action`,
    /// `authorized`, `captured`; `released` and `refunded` hold nothing, as `unpaid`), as the
    /// server keeps it and the sync rows carry it.
    pub fn of_payment_status(raw: &str) -> Self {
        match raw {
            "requires_action" => Self::RequiresAction,
            "authorized" => Self::Authorized,
            "captured" => Self::Captured,
            _ => Self::Unpaid,
        }
    }
}

/// What [`apply`] needs to know about an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderState {
    /// The current status.
    pub status: OrderStatus,
    /// Pickup or delivery.
    pub fulfilment: FulfilmentKind,
    /// The payment's progress.
    pub payment: PaymentState,
    /// When a pending order may be rejected automatically (see [`acceptance_deadline`]); for
    /// an order awaiting payment, when its authentication is abandoned (see
    /// [`payment_deadline`]).
    pub acceptance_deadline: DateTime<Utc>,
}

impl OrderState {
    /// Whether the order reached its end on the forward path: delivered, or picked up by the
    /// customer for a pickup order.
    pub fn is_complete(&self) -> bool {
        // A pickup order never reaches delivered; should a corrupt record claim it, it is
        // complete all the same.
        self.status == OrderStatus::Delivered
            || (self.fulfilment == FulfilmentKind::Pickup && self.status == OrderStatus::PickedUp)
    }
}

/// How long a business has to accept a pending order: 30 seconds to 1 hour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = i64, example = 180))]
#[serde(try_from = "i64", into = "i64")]
pub struct AcceptanceWindow(i64);

impl AcceptanceWindow {
    /// Three minutes.
    pub const DEFAULT: AcceptanceWindow = AcceptanceWindow(180);

    /// Parses a window in seconds.
    ///
    /// # Errors
    /// [`OrderError::InvalidAcceptanceWindow`] outside 30..=3600 seconds.
    pub fn from_secs(seconds: i64) -> Result<Self, OrderError> {
        if (30..=3_600).contains(&seconds) {
            Ok(Self(seconds))
        } else {
            Err(OrderError::InvalidAcceptanceWindow { seconds })
        }
    }

    /// The window in seconds.
    pub fn secs(self) -> i64 {
        self.0
    }

    /// The window as a duration.
    pub fn duration(self) -> Duration {
        Duration::seconds(self.0)
    }
}

impl Default for AcceptanceWindow {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl TryFrom<i64> for AcceptanceWindow {
    type Error = OrderError;
    fn try_from(value: i64) -> Result<Self, Self::Error> {
        Self::from_secs(value)
    }
}

impl From<AcceptanceWindow> for i64 {
    fn from(value: AcceptanceWindow) -> Self {
        value.0
    }
}

/// The instant after which the system may reject a pending order placed at `placed_at`.
pub fn acceptance_deadline(placed_at: DateTime<Utc>, window: AcceptanceWindow) -> DateTime<Utc> {
    placed_at
        .checked_add_signed(window.duration())
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// How long a customer has to complete a card's authentication (3-D Secure) before the order
/// is cancelled and its stock released: 15 minutes.
pub const PAYMENT_WINDOW_SECS: i64 = 15 * 60;

/// The instant after which the system cancels an order placed at `placed_at` whose payment
/// still waits for the customer.
pub fn payment_deadline(placed_at: DateTime<Utc>) -> DateTime<Utc> {
    placed_at
        .checked_add_signed(Duration::seconds(PAYMENT_WINDOW_SECS))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The reason recorded when an order's payment was not completed in time.
pub const PAYMENT_TIMEOUT_REASON: &str = "the payment was not completed in time";

/// The preparation time a business promises when it accepts: 1 to 240 minutes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = i64, example = 15))]
#[serde(try_from = "i64", into = "i64")]
pub struct PrepTime(i64);

impl PrepTime {
    /// Parses a preparation time in minutes.
    ///
    /// # Errors
    /// [`OrderError::InvalidPrepTime`] outside 1..=240 minutes.
    pub fn from_minutes(minutes: i64) -> Result<Self, OrderError> {
        if (1..=240).contains(&minutes) {
            Ok(Self(minutes))
        } else {
            Err(OrderError::InvalidPrepTime { minutes })
        }
    }

    /// The time in minutes.
    pub fn minutes(self) -> i64 {
        self.0
    }

    /// When an order accepted at `accepted_at` should be ready.
    pub fn ready_at(self, accepted_at: DateTime<Utc>) -> DateTime<Utc> {
        accepted_at
            .checked_add_signed(Duration::minutes(self.0))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

impl TryFrom<i64> for PrepTime {
    type Error = OrderError;
    fn try_from(value: i64) -> Result<Self, Self::Error> {
        Self::from_minutes(value)
    }
}

impl From<PrepTime> for i64 {
    fn from(value: PrepTime) -> Self {
        value.0
    }
}

/// The longest reason, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// Why an order was rejected, cancelled or refunded: trimmed, 1 to 500 characters, no control
/// characters other than line breaks.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String, example = "Out of fresh basil"))]
#[serde(try_from = "String", into = "String")]
pub struct Reason(String);

impl Reason {
    /// Parses a reason.
    ///
    /// # Errors
    /// [`OrderError::ReasonRequired`] when blank, [`OrderError::ReasonTooLong`] over 500
    /// characters, [`OrderError::ReasonInvalidCharacters`] with control characters.
    pub fn parse(raw: &str) -> Result<Self, OrderError> {
        let text = raw.trim();
        if text.is_empty() {
            return Err(OrderError::ReasonRequired);
        }
        let length = text.chars().count();
        if length > MAX_REASON_CHARS {
            return Err(OrderError::ReasonTooLong { length });
        }
        if text.chars().any(|c| c.is_control() && c != '\n') {
            return Err(OrderError::ReasonInvalidCharacters);
        }
        Ok(Self(text.to_owned()))
    }

    /// The reason as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Reason {
    type Error = OrderError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Reason> for String {
    fn from(value: Reason) -> Self {
        value.0
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The reason recorded when the system rejects an order nobody accepted in time.
pub const ACCEPTANCE_TIMEOUT_REASON: &str = "not accepted within the acceptance window";

/// The SHA-256 digest of a proof photo, as 64 lowercase hex digits: the attachment's address.
/// The photo may still be uploading when the delivery is reported; the digest is what counts.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String))]
#[serde(try_from = "String", into = "String")]
pub struct PhotoDigest(String);

impl PhotoDigest {
    /// Parses a hex SHA-256 digest (uppercase is folded).
    ///
    /// # Errors
    /// [`OrderError::InvalidPhotoDigest`] unless 64 hex digits.
    pub fn parse(raw: &str) -> Result<Self, OrderError> {
        if raw.len() == 64 && raw.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Self(raw.to_ascii_lowercase()))
        } else {
            Err(OrderError::InvalidPhotoDigest)
        }
    }

    /// The digest as hex.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PhotoDigest {
    type Error = OrderError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<PhotoDigest> for String {
    fn from(value: PhotoDigest) -> Self {
        value.0
    }
}

/// What a driver presents to report a delivery the order's status has not caught up with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DeliveryEvidence {
    /// Where the driver's device was when the delivery was reported.
    pub location: Coordinates,
    /// The proof photo.
    pub photo: PhotoDigest,
}

/// Something that happened to an order, as sent by a [`Party`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum OrderEvent {
    /// The business accepts a pending order (staff).
    Accept {
        /// The promised preparation time.
        prep_time: PrepTime,
    },
    /// The business refuses a pending order (staff).
    Reject {
        /// Why, shown to the customer.
        reason: Reason,
    },
    /// The acceptance window of a pending order has passed, or the customer did not complete
    /// the payment of an order awaiting it in time (system).
    Expire,
    /// The payment provider holds the money of an order awaiting payment: the order goes to
    /// the business (system, on the provider's word).
    ConfirmPayment,
    /// The business starts preparing (staff).
    StartPreparing,
    /// The order is ready for pickup or dispatch (staff).
    MarkReady,
    /// The order leaves the store: with the driver (driver or staff), or with the customer
    /// (staff).
    PickUp,
    /// The driver hands the order over (driver, delivery orders).
    Deliver {
        /// Required when the order has not been picked up yet as far as its status knows.
        #[serde(default)]
        evidence: Option<DeliveryEvidence>,
    },
    /// Cancel the order (customer while pending; staff after accepting; admin), or ask for
    /// it to be cancelled once it can no longer simply be.
    Cancel {
        /// Why.
        reason: Reason,
    },
    /// Give the money back for a completed, paid order (staff or admin).
    Refund {
        /// Why.
        reason: Reason,
    },
}

impl OrderEvent {
    /// The event without its data.
    pub fn kind(&self) -> EventKind {
        match self {
            Self::Accept { .. } => EventKind::Accept,
            Self::Reject { .. } => EventKind::Reject,
            Self::Expire => EventKind::Expire,
            Self::ConfirmPayment => EventKind::ConfirmPayment,
            Self::StartPreparing => EventKind::StartPreparing,
            Self::MarkReady => EventKind::MarkReady,
            Self::PickUp => EventKind::PickUp,
            Self::Deliver { .. } => EventKind::Deliver,
            Self::Cancel { .. } => EventKind::Cancel,
            Self::Refund { .. } => EventKind::Refund,
        }
    }
}

/// The kinds of [`OrderEvent`], for logs and errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// [`OrderEvent::Accept`].
    Accept,
    /// [`OrderEvent::Reject`].
    Reject,
    /// [`OrderEvent::Expire`].
    Expire,
    /// [`OrderEvent::ConfirmPayment`].
    ConfirmPayment,
    /// [`OrderEvent::StartPreparing`].
    StartPreparing,
    /// [`OrderEvent::MarkReady`].
    MarkReady,
    /// [`OrderEvent::PickUp`].
    PickUp,
    /// [`OrderEvent::Deliver`].
    Deliver,
    /// [`OrderEvent::Cancel`].
    Cancel,
    /// [`OrderEvent::Refund`].
    Refund,
}

impl EventKind {
    /// Every kind.
    pub const ALL: [EventKind; 10] = [
        EventKind::Accept,
        EventKind::Reject,
        EventKind::Expire,
        EventKind::ConfirmPayment,
        EventKind::StartPreparing,
        EventKind::MarkReady,
        EventKind::PickUp,
        EventKind::Deliver,
        EventKind::Cancel,
        EventKind::Refund,
    ];

    /// Wire and stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accept => "accept",
            Self::Reject => "reject",
            Self::Expire => "expire",
            Self::ConfirmPayment => "confirm_payment",
            Self::StartPreparing => "start_preparing",
            Self::MarkReady => "mark_ready",
            Self::PickUp => "pick_up",
            Self::Deliver => "deliver",
            Self::Cancel => "cancel",
            Self::Refund => "refund",
        }
    }

    /// Parses the wire and stored form.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What became of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The status moved; [`Transition::changes`] says how.
    Applied,
    /// The order had already passed the status this event leads to; recorded, not applied.
    Superseded,
    /// A cancellation that can no longer simply happen became a request for a person to
    /// decide; recorded, status unchanged.
    CancellationRequested,
}

impl Outcome {
    /// Wire and stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Superseded => "superseded",
            Self::CancellationRequested => "cancellation_requested",
        }
    }
}

/// One step of the status history, as the log records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusChange {
    /// The status before.
    pub from: OrderStatus,
    /// The status after.
    pub to: OrderStatus,
    /// Who caused it.
    pub by: Party,
    /// When (the instant passed to [`apply`]).
    pub at: DateTime<Utc>,
    /// Why, for rejections, cancellations and refunds.
    pub reason: Option<Reason>,
    /// Whether this step was not reported itself but implied by a later one (a delivery with
    /// evidence fills in ready and picked up; marking ready fills in preparing).
    pub filled_in: bool,
}

/// Work the shell must do because of a transition. The shell performs it after the transition
/// is stored (through an outbox), never instead of storing it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Capture the authorized card payment (the order is complete).
    CapturePayment,
    /// Release the card authorization without taking the money.
    ReleasePayment,
    /// Give back money already taken.
    RefundPayment,
    /// Start offering the order to drivers.
    StartDispatch,
    /// Withdraw open offers and release the assigned driver, if any, telling them.
    CancelDispatch,
    /// Tell the customer about the new status.
    NotifyCustomer,
    /// Tell the business about the new status (one it did not cause itself).
    NotifyBusiness,
    /// Tell the assigned driver, if any, that the order is ready.
    NotifyDriver,
    /// Open a cancellation request for the business or support to decide.
    OpenCancellationRequest,
}

/// The result of applying an event: what to record, the status afterwards, and the work to do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Transition {
    /// What became of the event.
    pub outcome: Outcome,
    /// The status after the event (unchanged unless applied).
    pub status: OrderStatus,
    /// The status changes to append to the history, oldest first; empty unless applied.
    pub changes: Vec<StatusChange>,
    /// Side effects for the shell, in the order to perform them; empty when superseded.
    pub effects: Vec<Effect>,
    /// The event, to record in the event log whatever the outcome.
    pub event: OrderEvent,
    /// Who sent it.
    pub by: Party,
    /// When it was applied.
    pub at: DateTime<Utc>,
}

/// Why an event was refused. A refused event is not recorded as applied or superseded: it is
/// a mistake (wrong party, too early, missing evidence), answered to the sender in words.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum OrderError {
    /// This party may not send this event to an order in this status.
    #[error("the {party} may not {event} an order that is {status}")]
    Forbidden {
        /// Who sent it.
        party: Party,
        /// The event.
        event: EventKind,
        /// The order's status.
        status: OrderStatus,
    },
    /// The event does not apply to this kind of order.
    #[error("{event} does not apply to a {fulfilment} order")]
    WrongFulfilment {
        /// The event.
        event: EventKind,
        /// The order's fulfilment.
        fulfilment: FulfilmentKind,
    },
    /// The order has not reached a status this event can follow yet.
    #[error("cannot {event} an order that is {status}")]
    TooEarly {
        /// The event.
        event: EventKind,
        /// The order's status.
        status: OrderStatus,
    },
    /// A delivery was reported for an order not yet picked up, without evidence.
    #[error("reporting delivery of an order that is {status} needs GPS and a proof photo")]
    EvidenceRequired {
        /// The order's status.
        status: OrderStatus,
    },
    /// The system tried to expire an order whose acceptance window is still open.
    #[error("the acceptance window is open until {deadline}")]
    AcceptanceWindowOpen {
        /// When it closes.
        deadline: DateTime<Utc>,
    },
    /// A refund was asked for an order whose payment was not captured.
    #[error("nothing to refund: the payment is not captured")]
    PaymentNotCaptured,
    /// A reason is required and was blank.
    #[error("a reason is required")]
    ReasonRequired,
    /// The reason is longer than 500 characters.
    #[error("the reason must be at most 500 characters, not {length}")]
    ReasonTooLong {
        /// Its length in characters.
        length: usize,
    },
    /// The reason contains control characters.
    #[error("the reason must not contain control characters")]
    ReasonInvalidCharacters,
    /// A preparation time outside 1..=240 minutes.
    #[error("preparation time must be 1 to 240 minutes, not {minutes}")]
    InvalidPrepTime {
        /// The minutes given.
        minutes: i64,
    },
    /// An acceptance window outside 30..=3600 seconds.
    #[error("the acceptance window must be 30 to 3600 seconds, not {seconds}")]
    InvalidAcceptanceWindow {
        /// The seconds given.
        seconds: i64,
    },
    /// A proof photo digest that is not 64 hex digits.
    #[error("a proof photo must be named by its SHA-256 digest in hex")]
    InvalidPhotoDigest,
}

impl OrderError {
    /// A stable machine-readable code for the error, for clients to branch on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Forbidden { .. } => "order_forbidden",
            Self::WrongFulfilment { .. } => "wrong_fulfilment",
            Self::TooEarly { .. } => "order_not_ready_for_event",
            Self::EvidenceRequired { .. } => "delivery_evidence_required",
            Self::AcceptanceWindowOpen { .. } => "acceptance_window_open",
            Self::PaymentNotCaptured => "payment_not_captured",
            Self::ReasonRequired => "reason_required",
            Self::ReasonTooLong { .. } => "reason_too_long",
            Self::ReasonInvalidCharacters => "reason_invalid_characters",
            Self::InvalidPrepTime { .. } => "invalid_prep_time",
            Self::InvalidAcceptanceWindow { .. } => "invalid_acceptance_window",
            Self::InvalidPhotoDigest => "invalid_photo_digest",
        }
    }
}

/// Whether `party` may ever send `event` to an order fulfilled as `fulfilment`, whatever its
/// status.
fn may_send(party: Party, event: EventKind, fulfilment: FulfilmentKind) -> bool {
    use EventKind as E;
    use Party as P;
    match event {
        E::Accept | E::Reject | E::StartPreparing | E::MarkReady => party == P::Staff,
        E::Expire | E::ConfirmPayment => party == P::System,
        E::PickUp => {
            party == P::Staff || (party == P::Driver && fulfilment == FulfilmentKind::Delivery)
        }
        E::Deliver => party == P::Driver,
        E::Cancel => matches!(party, P::Customer | P::Staff | P::Admin),
        E::Refund => matches!(party, P::Staff | P::Admin),
    }
}

/// Applies `event`, sent by `by` and ordered at `at`, to an order in state `current`.
///
/// `at` is the instant the shell orders events by (the server's commit order), not a device
/// clock; it is compared with the acceptance deadline and stamped on the records.
///
/// # Errors
/// [`OrderError::WrongFulfilment`] and [`OrderError::Forbidden`] when the party may not send
/// the event (checked first, whatever the status); [`OrderError::TooEarly`],
/// [`OrderError::EvidenceRequired`], [`OrderError::AcceptanceWindowOpen`] and
/// [`OrderError::PaymentNotCaptured`] when the order is not yet where the event can apply.
/// An event that comes too late is not an error: it is [`Outcome::Superseded`].
pub fn apply(
    current: &OrderState,
    event: OrderEvent,
    by: Party,
    at: DateTime<Utc>,
) -> Result<Transition, OrderError> {
    use OrderStatus as S;
    let kind = event.kind();
    let status = current.status;
    let delivery = current.fulfilment == FulfilmentKind::Delivery;
    if kind == EventKind::Deliver && !delivery {
        return Err(OrderError::WrongFulfilment {
            event: kind,
            fulfilment: current.fulfilment,
        });
    }
    let forbidden = OrderError::Forbidden {
        party: by,
        event: kind,
        status,
    };
    if !may_send(by, kind, current.fulfilment) {
        return Err(forbidden);
    }
    let too_early = OrderError::TooEarly {
        event: kind,
        status,
    };
    let unchanged = |outcome, effects| Transition {
        outcome,
        status,
        changes: Vec::new(),
        effects,
        event: event.clone(),
        by,
        at,
    };
    if status.is_terminal() {
        return Ok(unchanged(Outcome::Superseded, Vec::new()));
    }

    let (to, reason) = match &event {
        OrderEvent::Accept { .. } => match status {
            S::AwaitingPayment => return Err(too_early),
            S::Pending => (S::Confirmed, None),
            _ => return Ok(unchanged(Outcome::Superseded, Vec::new())),
        },
        OrderEvent::Reject { reason } => match status {
            S::AwaitingPayment => return Err(too_early),
            S::Pending => (S::Rejected, Some(reason.clone())),
            _ => return Ok(unchanged(Outcome::Superseded, Vec::new())),
        },
        OrderEvent::Expire => match status {
            S::AwaitingPayment if at >= current.acceptance_deadline => (
                S::Cancelled,
                Some(Reason(PAYMENT_TIMEOUT_REASON.to_owned())),
            ),
            S::Pending if at >= current.acceptance_deadline => (
                S::Rejected,
                Some(Reason(ACCEPTANCE_TIMEOUT_REASON.to_owned())),
            ),
            S::AwaitingPayment | S::Pending => {
                return Err(OrderError::AcceptanceWindowOpen {
                    deadline: current.acceptance_deadline,
                })
            }
            _ => return Ok(unchanged(Outcome::Superseded, Vec::new())),
        },
        OrderEvent::ConfirmPayment => match status {
            S::AwaitingPayment => (S::Pending, None),
            _ => return Ok(unchanged(Outcome::Superseded, Vec::new())),
        },
        OrderEvent::StartPreparing => match status {
            S::AwaitingPayment | S::Pending => return Err(too_early),
            S::Confirmed => (S::Preparing, None),
            _ => return Ok(unchanged(Outcome::Superseded, Vec::new())),
        },
        OrderEvent::MarkReady => match status {
            S::AwaitingPayment | S::Pending => return Err(too_early),
            S::Confirmed | S::Preparing => (S::Ready, None),
            _ => return Ok(unchanged(Outcome::Superseded, Vec::new())),
        },
        // The goods leaving the store is a physical event: a courier (or a collecting
        // customer) holding the bag wins over a till nobody marked ready, whose skipped
        // statuses are filled in.
        OrderEvent::PickUp => match status {
            S::AwaitingPayment | S::Pending => return Err(too_early),
            S::Confirmed | S::Preparing | S::Ready => (S::PickedUp, None),
            _ => return Ok(unchanged(Outcome::Superseded, Vec::new())),
        },
        OrderEvent::Deliver { evidence } => match status {
            S::AwaitingPayment | S::Pending => return Err(too_early),
            S::Confirmed | S::Preparing | S::Ready if evidence.is_none() => {
                return Err(OrderError::EvidenceRequired { status })
            }
            S::Confirmed | S::Preparing | S::Ready | S::PickedUp => (S::Delivered, None),
            _ => return Ok(unchanged(Outcome::Superseded, Vec::new())),
        },
        OrderEvent::Cancel { reason } => {
            if current.is_complete() {
                return Ok(unchanged(Outcome::Superseded, Vec::new()));
            }
            let requested = || {
                Ok(unchanged(
                    Outcome::CancellationRequested,
                    vec![Effect::OpenCancellationRequest],
                ))
            };
            match (by, status) {
                (_, S::PickedUp) => return requested(),
                (Party::Customer, S::AwaitingPayment | S::Pending) => {
                    (S::Cancelled, Some(reason.clone()))
                }
                (Party::Customer, _) => return requested(),
                (Party::Staff, S::AwaitingPayment | S::Pending) => return Err(forbidden),
                _ => (S::Cancelled, Some(reason.clone())),
            }
        }
        OrderEvent::Refund { reason } => {
            if !current.is_complete() {
                return Err(too_early);
            }
            if current.payment != PaymentState::Captured {
                return Err(OrderError::PaymentNotCaptured);
            }
            (S::Refunded, Some(reason.clone()))
        }
    };

    let changes = steps(status, to)
        .into_iter()
        .map(|(from, step_to)| StatusChange {
            from,
            to: step_to,
            by,
            at,
            reason: if step_to == to { reason.clone() } else { None },
            filled_in: step_to != to,
        })
        .collect();
    debug_assert!(
        to.rank() > status.rank(),
        "{status} -> {to} moves backwards"
    );
    Ok(Transition {
        outcome: Outcome::Applied,
        status: to,
        changes,
        effects: effects(current, to, by),
        event,
        by,
        at,
    })
}

/// The steps from `from` to `to`: every status of the forward path in between when `to` is on
/// it, otherwise the single step.
fn steps(from: OrderStatus, to: OrderStatus) -> Vec<(OrderStatus, OrderStatus)> {
    let path = &OrderStatus::PATH;
    let position = |status| path.iter().position(|s| *s == status);
    match position(from).zip(position(to)) {
        Some((start, end)) => path[start..=end].windows(2).map(|w| (w[0], w[1])).collect(),
        None => vec![(from, to)],
    }
}

/// The side effects of moving `current` to `to`, payment first, then dispatch, then people.
fn effects(current: &OrderState, to: OrderStatus, by: Party) -> Vec<Effect> {
    use OrderStatus as S;
    let delivery = current.fulfilment == FulfilmentKind::Delivery;
    let give_back = match current.payment {
        PaymentState::Unpaid => None,
        PaymentState::RequiresAction | PaymentState::Authorized => Some(Effect::ReleasePayment),
        PaymentState::Captured => Some(Effect::RefundPayment),
    };
    let capture = (current.payment == PaymentState::Authorized).then_some(Effect::CapturePayment);
    let mut effects: Vec<Effect> = Vec::new();
    if current.status == S::AwaitingPayment {
        // The business never saw the order: only the payment and the customer are concerned.
        if to == S::Cancelled {
            effects.extend(give_back);
            effects.push(Effect::NotifyCustomer);
        } else {
            effects.push(Effect::NotifyBusiness);
        }
        return effects;
    }
    match to {
        S::Confirmed => {
            if delivery {
                effects.push(Effect::StartDispatch);
            }
            effects.push(Effect::NotifyCustomer);
        }
        S::Preparing => effects.push(Effect::NotifyCustomer),
        S::Ready => {
            effects.push(Effect::NotifyCustomer);
            if delivery {
                effects.push(Effect::NotifyDriver);
            }
        }
        S::PickedUp => {
            if !delivery {
                effects.extend(capture);
            }
            effects.push(Effect::NotifyCustomer);
        }
        S::Delivered => {
            effects.extend(capture);
            effects.push(Effect::NotifyCustomer);
            effects.push(Effect::NotifyBusiness);
        }
        S::Rejected => {
            effects.extend(give_back);
            effects.push(Effect::NotifyCustomer);
            if by == Party::System {
                effects.push(Effect::NotifyBusiness);
            }
        }
        S::Cancelled => {
            effects.extend(give_back);
            if delivery && current.status != S::Pending {
                effects.push(Effect::CancelDispatch);
            }
            effects.push(Effect::NotifyCustomer);
            if by != Party::Staff {
                effects.push(Effect::NotifyBusiness);
            }
        }
        S::Refunded => {
            effects.push(Effect::RefundPayment);
            effects.push(Effect::NotifyCustomer);
        }
        S::AwaitingPayment | S::Pending => {}
    }
    effects
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use EventKind as E;
    use FulfilmentKind::{Delivery, Pickup};
    use OrderStatus as S;
    use Party::{Admin, Customer, Driver, Staff, System};

    fn instant(raw: &str) -> DateTime<Utc> {
        raw.parse().expect("valid instant")
    }

    fn placed() -> DateTime<Utc> {
        instant("2026-06-01T12:00:00Z")
    }

    fn after_deadline() -> DateTime<Utc> {
        instant("2026-06-01T12:05:00Z")
    }

    fn state(status: OrderStatus, fulfilment: FulfilmentKind) -> OrderState {
        OrderState {
            status,
            fulfilment,
            payment: PaymentState::Captured,
            acceptance_deadline: acceptance_deadline(placed(), AcceptanceWindow::DEFAULT),
        }
    }

    fn reason() -> Reason {
        Reason::parse("customer asked").expect("valid reason")
    }

    fn evidence() -> DeliveryEvidence {
        DeliveryEvidence {
            location: Coordinates::parse(60.17, 24.94).expect("valid"),
            photo: PhotoDigest::parse(&"ab".repeat(32)).expect("valid digest"),
        }
    }

    /// An event of each kind, with delivery both without and with evidence.
    fn sample_events() -> Vec<OrderEvent> {
        vec![
            OrderEvent::Accept {
                prep_time: PrepTime::from_minutes(15).expect("valid"),
            },
            OrderEvent::Reject { reason: reason() },
            OrderEvent::Expire,
            OrderEvent::ConfirmPayment,
            OrderEvent::StartPreparing,
            OrderEvent::MarkReady,
            OrderEvent::PickUp,
            OrderEvent::Deliver { evidence: None },
            OrderEvent::Deliver {
                evidence: Some(evidence()),
            },
            OrderEvent::Cancel { reason: reason() },
            OrderEvent::Refund { reason: reason() },
        ]
    }

    fn event_of(kind: EventKind, with_evidence: bool) -> OrderEvent {
        sample_events()
            .into_iter()
            .find(|e| {
                e.kind() == kind
                    && !matches!(e, OrderEvent::Deliver { evidence } if evidence.is_some() != with_evidence)
            })
            .expect("every kind is sampled")
    }

    /// Every edge that applies, for an order whose payment is captured and whose acceptance
    /// window has passed: (fulfilments, from, event, with evidence, parties, to).
    #[allow(clippy::type_complexity)]
    #[rustfmt::skip]
    fn allowed_edges() -> Vec<(
        &'static [FulfilmentKind],
        OrderStatus,
        EventKind,
        bool,
        &'static [Party],
        OrderStatus,
    )> {
        const BOTH: &[FulfilmentKind] = &[Pickup, Delivery];
        const DELIVERY: &[FulfilmentKind] = &[Delivery];
        const PICKUP: &[FulfilmentKind] = &[Pickup];
        vec![
            (BOTH,     S::AwaitingPayment, E::ConfirmPayment, false, &[System],     S::Pending),
            (BOTH,     S::AwaitingPayment, E::Expire,   false, &[System],           S::Cancelled),
            (BOTH,     S::AwaitingPayment, E::Cancel,   false, &[Customer, Admin],  S::Cancelled),
            (BOTH,     S::Pending,   E::Accept,         false, &[Staff],            S::Confirmed),
            (BOTH,     S::Pending,   E::Reject,         false, &[Staff],            S::Rejected),
            (BOTH,     S::Pending,   E::Expire,         false, &[System],           S::Rejected),
            (BOTH,     S::Confirmed, E::StartPreparing, false, &[Staff],            S::Preparing),
            (BOTH,     S::Confirmed, E::MarkReady,      false, &[Staff],            S::Ready),
            (BOTH,     S::Preparing, E::MarkReady,      false, &[Staff],            S::Ready),
            (PICKUP,   S::Confirmed, E::PickUp,         false, &[Staff],            S::PickedUp),
            (PICKUP,   S::Preparing, E::PickUp,         false, &[Staff],            S::PickedUp),
            (PICKUP,   S::Ready,     E::PickUp,         false, &[Staff],            S::PickedUp),
            (DELIVERY, S::Confirmed, E::PickUp,         false, &[Staff, Driver],    S::PickedUp),
            (DELIVERY, S::Preparing, E::PickUp,         false, &[Staff, Driver],    S::PickedUp),
            (DELIVERY, S::Ready,     E::PickUp,         false, &[Staff, Driver],    S::PickedUp),
            (DELIVERY, S::PickedUp,  E::Deliver,        false, &[Driver],           S::Delivered),
            (DELIVERY, S::PickedUp,  E::Deliver,        true,  &[Driver],           S::Delivered),
            (DELIVERY, S::Confirmed, E::Deliver,        true,  &[Driver],           S::Delivered),
            (DELIVERY, S::Preparing, E::Deliver,        true,  &[Driver],           S::Delivered),
            (DELIVERY, S::Ready,     E::Deliver,        true,  &[Driver],           S::Delivered),
            (BOTH,     S::Pending,   E::Cancel,         false, &[Customer, Admin],  S::Cancelled),
            (BOTH,     S::Confirmed, E::Cancel,         false, &[Staff, Admin],     S::Cancelled),
            (BOTH,     S::Preparing, E::Cancel,         false, &[Staff, Admin],     S::Cancelled),
            (BOTH,     S::Ready,     E::Cancel,         false, &[Staff, Admin],     S::Cancelled),
            (PICKUP,   S::PickedUp,  E::Refund,         false, &[Staff, Admin],     S::Refunded),
            // A pickup order never reaches delivered; this row also covers that corrupt state.
            (BOTH,     S::Delivered, E::Refund,         false, &[Staff, Admin],     S::Refunded),
        ]
    }

    /// The rank from which an order has passed an event, making it late.
    fn passed_at(kind: EventKind, fulfilment: FulfilmentKind) -> u8 {
        match kind {
            E::ConfirmPayment => S::Pending.rank(),
            E::Accept | E::Reject | E::Expire => S::Confirmed.rank(),
            E::StartPreparing => S::Preparing.rank(),
            E::MarkReady => S::Ready.rank(),
            E::PickUp => S::PickedUp.rank(),
            E::Deliver => S::Delivered.rank(),
            E::Cancel if fulfilment == Pickup => S::PickedUp.rank(),
            E::Cancel => S::Delivered.rank(),
            E::Refund => S::Refunded.rank(),
        }
    }

    /// Cancellations that become requests: (fulfilments, from, parties).
    fn requested_edges() -> Vec<(&'static [FulfilmentKind], OrderStatus, &'static [Party])> {
        const BOTH: &[FulfilmentKind] = &[Pickup, Delivery];
        vec![
            (BOTH, S::Confirmed, &[Customer]),
            (BOTH, S::Preparing, &[Customer]),
            (BOTH, S::Ready, &[Customer]),
            (&[Delivery], S::PickedUp, &[Customer, Staff, Admin]),
        ]
    }

    #[test]
    fn every_edge_for_every_party() {
        let allowed = allowed_edges();
        let requested = requested_edges();
        let mut applied = 0;
        for fulfilment in [Pickup, Delivery] {
            for from in OrderStatus::ALL {
                for event in sample_events() {
                    let kind = event.kind();
                    let with_evidence = matches!(&event, OrderEvent::Deliver { evidence: Some(_) });
                    for party in Party::ALL {
                        let result = apply(
                            &state(from, fulfilment),
                            event.clone(),
                            party,
                            after_deadline(),
                        );
                        let case = format!(
                            "{fulfilment} {from} {kind} evidence={with_evidence} by {party}: {result:?}"
                        );
                        // A party that may never send the event is refused in every status,
                        // terminal ones included.
                        let permitted = may_send(party, kind, fulfilment)
                            && !(kind == E::Deliver && fulfilment == Pickup);
                        if !permitted {
                            assert!(
                                matches!(
                                    result,
                                    Err(OrderError::Forbidden { .. }
                                        | OrderError::WrongFulfilment { .. })
                                ),
                                "{case}"
                            );
                            continue;
                        }
                        let expected_to = allowed.iter().find(|(f, s, k, ev, parties, _)| {
                            f.contains(&fulfilment)
                                && *s == from
                                && *k == kind
                                && *ev == with_evidence
                                && parties.contains(&party)
                        });
                        let is_request = kind == E::Cancel
                            && requested.iter().any(|(f, s, parties)| {
                                f.contains(&fulfilment) && *s == from && parties.contains(&party)
                            });
                        match (expected_to, result) {
                            (Some((.., to)), Ok(t)) => {
                                assert_eq!(t.outcome, Outcome::Applied, "{case}");
                                assert_eq!(t.status, *to, "{case}");
                                applied += 1;
                            }
                            (Some(_), Err(_)) => panic!("should apply: {case}"),
                            (None, Ok(t)) if is_request => {
                                assert_eq!(t.outcome, Outcome::CancellationRequested, "{case}");
                                assert_eq!(t.status, from, "{case}");
                                assert_eq!(t.effects, vec![Effect::OpenCancellationRequest]);
                            }
                            (None, Ok(t)) => {
                                assert_eq!(t.outcome, Outcome::Superseded, "{case}");
                                assert_eq!(t.status, from, "{case}");
                                assert!(t.changes.is_empty() && t.effects.is_empty(), "{case}");
                                assert!(from.rank() >= passed_at(kind, fulfilment), "{case}");
                            }
                            (None, Err(_)) => {
                                // Refused only before the order has passed the event; a late
                                // event (a terminal order included) is superseded instead.
                                assert!(from.rank() < passed_at(kind, fulfilment), "{case}");
                            }
                        }
                    }
                }
            }
        }
        let listed: usize = allowed
            .iter()
            .map(|(f, _, _, _, parties, _)| f.len() * parties.len())
            .sum();
        assert_eq!(applied, listed, "every listed edge was exercised");
    }

    #[test]
    #[rustfmt::skip]
    fn refusals() {
        use PaymentState::{Authorized, Captured, Unpaid};
        // (fulfilment, status, payment, event, with evidence, party, error code)
        let cases = [
            // Only the business accepts, rejects, prepares and marks ready.
            (Delivery, S::Pending,   Captured,   E::Accept,         false, Customer, "order_forbidden"),
            (Delivery, S::Pending,   Captured,   E::Accept,         false, Admin,    "order_forbidden"),
            (Delivery, S::Pending,   Captured,   E::Reject,         false, Driver,   "order_forbidden"),
            (Pickup,   S::Pending,   Captured,   E::Reject,         false, Admin,    "order_forbidden"),
            (Pickup,   S::Confirmed, Captured,   E::StartPreparing, false, System,   "order_forbidden"),
            (Delivery, S::Preparing, Captured,   E::MarkReady,      false, Driver,   "order_forbidden"),
            // Only the system expires.
            (Delivery, S::Pending,   Captured,   E::Expire,         false, Staff,    "order_forbidden"),
            (Delivery, S::Pending,   Captured,   E::Expire,         false, Admin,    "order_forbidden"),
            // The business rejects a pending order rather than cancelling it.
            (Pickup,   S::Pending,   Captured,   E::Cancel,         false, Staff,    "order_forbidden"),
            // Drivers and the system never cancel.
            (Delivery, S::Ready,     Captured,   E::Cancel,         false, Driver,   "order_forbidden"),
            (Delivery, S::Pending,   Captured,   E::Cancel,         false, System,   "order_forbidden"),
            // No driver on a pickup order, and no delivery of one.
            (Pickup,   S::Ready,     Captured,   E::PickUp,         false, Driver,   "order_forbidden"),
            (Pickup,   S::Ready,     Captured,   E::Deliver,        true,  Driver,   "wrong_fulfilment"),
            // Only the driver reports a delivery.
            (Delivery, S::PickedUp,  Captured,   E::Deliver,        false, Staff,    "order_forbidden"),
            (Delivery, S::PickedUp,  Captured,   E::Deliver,        false, Customer, "order_forbidden"),
            // The customer moves nothing forward and refunds nothing.
            (Pickup,   S::Ready,     Captured,   E::PickUp,         false, Customer, "order_forbidden"),
            (Delivery, S::Delivered, Captured,   E::Refund,         false, Customer, "order_forbidden"),
            (Delivery, S::Delivered, Captured,   E::Refund,         false, Driver,   "order_forbidden"),
            // Too early.
            (Delivery, S::Pending,   Captured,   E::StartPreparing, false, Staff,    "order_not_ready_for_event"),
            (Delivery, S::Pending,   Captured,   E::MarkReady,      false, Staff,    "order_not_ready_for_event"),
            (Delivery, S::Pending,   Captured,   E::Deliver,        true,  Driver,   "order_not_ready_for_event"),
            (Delivery, S::Ready,     Captured,   E::Refund,         false, Admin,    "order_not_ready_for_event"),
            (Delivery, S::PickedUp,  Captured,   E::Refund,         false, Staff,    "order_not_ready_for_event"),
            // Skipping pickup needs evidence.
            (Delivery, S::Ready,     Captured,   E::Deliver,        false, Driver,   "delivery_evidence_required"),
            (Delivery, S::Confirmed, Captured,   E::Deliver,        false, Driver,   "delivery_evidence_required"),
            // Nothing to refund.
            (Delivery, S::Delivered, Authorized, E::Refund,         false, Admin,    "payment_not_captured"),
            (Pickup,   S::PickedUp,  Unpaid,     E::Refund,         false, Staff,    "payment_not_captured"),
        ];
        for (fulfilment, status, payment, kind, with_evidence, party, code) in cases {
            let current = OrderState { payment, ..state(status, fulfilment) };
            let case = format!("{fulfilment} {status} {kind} by {party}");
            let error = apply(&current, event_of(kind, with_evidence), party, after_deadline())
                .expect_err(&case);
            assert_eq!(error.code(), code, "{case}: {error}");
        }
    }

    #[test]
    fn system_rejects_only_after_the_deadline() {
        let current = state(S::Pending, Delivery);
        assert_eq!(current.acceptance_deadline, instant("2026-06-01T12:03:00Z"));
        assert_eq!(
            apply(
                &current,
                OrderEvent::Expire,
                System,
                instant("2026-06-01T12:02:59Z")
            ),
            Err(OrderError::AcceptanceWindowOpen {
                deadline: current.acceptance_deadline
            })
        );
        let t = apply(
            &current,
            OrderEvent::Expire,
            System,
            instant("2026-06-01T12:03:00Z"),
        )
        .expect("expires at the deadline");
        assert_eq!(t.status, S::Rejected);
        assert_eq!(
            t.changes[0].reason.as_ref().map(Reason::as_str),
            Some(ACCEPTANCE_TIMEOUT_REASON)
        );
        assert_eq!(
            t.effects,
            vec![
                Effect::RefundPayment,
                Effect::NotifyCustomer,
                Effect::NotifyBusiness
            ]
        );
        // The business accepted first: the timeout is late.
        let t = apply(
            &state(S::Confirmed, Delivery),
            OrderEvent::Expire,
            System,
            after_deadline(),
        )
        .expect("recorded");
        assert_eq!(t.outcome, Outcome::Superseded);
    }

    #[test]
    fn acceptance_window() {
        assert_eq!(AcceptanceWindow::default().secs(), 180);
        assert_eq!(
            acceptance_deadline(placed(), AcceptanceWindow::from_secs(60).expect("valid")),
            instant("2026-06-01T12:01:00Z")
        );
        assert!(AcceptanceWindow::from_secs(29).is_err());
        assert!(AcceptanceWindow::from_secs(3_601).is_err());
        assert_eq!(
            acceptance_deadline(DateTime::<Utc>::MAX_UTC, AcceptanceWindow::DEFAULT),
            DateTime::<Utc>::MAX_UTC
        );
        let prep = PrepTime::from_minutes(20).expect("valid");
        assert_eq!(prep.ready_at(placed()), instant("2026-06-01T12:20:00Z"));
        assert!(PrepTime::from_minutes(0).is_err());
        assert!(PrepTime::from_minutes(241).is_err());
    }

    #[test]
    fn delivery_with_evidence_fills_in_skipped_statuses() {
        let at = after_deadline();
        let t = apply(
            &OrderState {
                payment: PaymentState::Authorized,
                ..state(S::Preparing, Delivery)
            },
            event_of(E::Deliver, true),
            Driver,
            at,
        )
        .expect("physical event wins");
        assert_eq!(t.status, S::Delivered);
        let steps: Vec<(OrderStatus, OrderStatus, bool)> = t
            .changes
            .iter()
            .map(|c| (c.from, c.to, c.filled_in))
            .collect();
        assert_eq!(
            steps,
            vec![
                (S::Preparing, S::Ready, true),
                (S::Ready, S::PickedUp, true),
                (S::PickedUp, S::Delivered, false),
            ]
        );
        assert!(t
            .changes
            .iter()
            .all(|c| c.by == Driver && c.at == at && c.reason.is_none()));
        assert_eq!(
            t.effects,
            vec![
                Effect::CapturePayment,
                Effect::NotifyCustomer,
                Effect::NotifyBusiness
            ]
        );
        assert_eq!(
            t.event,
            event_of(E::Deliver, true),
            "the evidence is kept for the log"
        );
    }

    #[test]
    fn marking_ready_fills_in_preparing() {
        let t = apply(
            &state(S::Confirmed, Pickup),
            OrderEvent::MarkReady,
            Staff,
            placed(),
        )
        .expect("applies");
        let steps: Vec<(OrderStatus, OrderStatus, bool)> = t
            .changes
            .iter()
            .map(|c| (c.from, c.to, c.filled_in))
            .collect();
        assert_eq!(
            steps,
            vec![
                (S::Confirmed, S::Preparing, true),
                (S::Preparing, S::Ready, false)
            ]
        );
    }

    #[test]
    fn late_events_are_superseded() {
        let cases = [
            (state(S::Delivered, Delivery), OrderEvent::PickUp, Driver),
            (state(S::PickedUp, Delivery), OrderEvent::MarkReady, Staff),
            (state(S::Ready, Delivery), OrderEvent::StartPreparing, Staff),
            (
                state(S::Confirmed, Delivery),
                event_of(E::Accept, false),
                Staff,
            ),
            (
                state(S::Confirmed, Pickup),
                event_of(E::Reject, false),
                Staff,
            ),
            (
                state(S::Delivered, Delivery),
                event_of(E::Deliver, true),
                Driver,
            ),
            (
                state(S::Delivered, Delivery),
                event_of(E::Cancel, false),
                Customer,
            ),
            (
                state(S::PickedUp, Pickup),
                event_of(E::Cancel, false),
                Customer,
            ),
            (
                state(S::Cancelled, Delivery),
                event_of(E::Accept, false),
                Staff,
            ),
            (
                state(S::Cancelled, Delivery),
                event_of(E::Deliver, true),
                Driver,
            ),
            (
                state(S::Rejected, Pickup),
                event_of(E::Cancel, false),
                Customer,
            ),
            (
                state(S::Refunded, Delivery),
                event_of(E::Refund, false),
                Admin,
            ),
        ];
        for (current, event, party) in cases {
            let case = format!("{} {} by {party}", current.status, event.kind());
            let t = apply(&current, event.clone(), party, after_deadline()).expect(&case);
            assert_eq!(t.outcome, Outcome::Superseded, "{case}");
            assert_eq!(t.status, current.status, "{case}");
            assert!(t.changes.is_empty() && t.effects.is_empty(), "{case}");
            assert_eq!(t.event, event, "{case}: recorded as sent");
        }
    }

    #[test]
    fn cancellation_after_pickup_is_a_request() {
        for party in [Customer, Staff, Admin] {
            let t = apply(
                &state(S::PickedUp, Delivery),
                event_of(E::Cancel, false),
                party,
                after_deadline(),
            )
            .expect("recorded");
            assert_eq!(t.outcome, Outcome::CancellationRequested, "{party}");
            assert_eq!(t.status, S::PickedUp);
            assert!(t.changes.is_empty());
        }
    }

    #[test]
    fn cancellation_effects_follow_the_payment() {
        let cases = [
            (
                S::Pending,
                Customer,
                PaymentState::Authorized,
                vec![
                    Effect::ReleasePayment,
                    Effect::NotifyCustomer,
                    Effect::NotifyBusiness,
                ],
            ),
            (
                S::Preparing,
                Staff,
                PaymentState::Captured,
                vec![
                    Effect::RefundPayment,
                    Effect::CancelDispatch,
                    Effect::NotifyCustomer,
                ],
            ),
            (
                S::Ready,
                Admin,
                PaymentState::Unpaid,
                vec![
                    Effect::CancelDispatch,
                    Effect::NotifyCustomer,
                    Effect::NotifyBusiness,
                ],
            ),
        ];
        for (from, party, payment, expected) in cases {
            let current = OrderState {
                payment,
                ..state(from, Delivery)
            };
            let t = apply(
                &current,
                event_of(E::Cancel, false),
                party,
                after_deadline(),
            )
            .expect("cancels");
            assert_eq!(t.status, S::Cancelled);
            assert_eq!(t.effects, expected, "{from} by {party}");
            assert_eq!(t.changes[0].reason, Some(reason()));
        }
    }

    #[test]
    fn forward_effects() {
        let accepted = apply(
            &state(S::Pending, Delivery),
            event_of(E::Accept, false),
            Staff,
            placed(),
        )
        .expect("accepts");
        assert_eq!(
            accepted.effects,
            vec![Effect::StartDispatch, Effect::NotifyCustomer]
        );
        let ready = apply(
            &state(S::Preparing, Delivery),
            OrderEvent::MarkReady,
            Staff,
            placed(),
        )
        .expect("ready");
        assert_eq!(
            ready.effects,
            vec![Effect::NotifyCustomer, Effect::NotifyDriver]
        );
        let collected = apply(
            &OrderState {
                payment: PaymentState::Authorized,
                ..state(S::Ready, Pickup)
            },
            OrderEvent::PickUp,
            Staff,
            placed(),
        )
        .expect("collected");
        assert_eq!(
            collected.effects,
            vec![Effect::CapturePayment, Effect::NotifyCustomer]
        );
        let refunded = apply(
            &state(S::Delivered, Delivery),
            event_of(E::Refund, false),
            Admin,
            placed(),
        )
        .expect("refunds");
        assert_eq!(
            refunded.effects,
            vec![Effect::RefundPayment, Effect::NotifyCustomer]
        );
    }

    #[test]
    fn reasons_are_parsed() {
        assert_eq!(
            Reason::parse("  out of basil \n").expect("valid").as_str(),
            "out of basil"
        );
        assert_eq!(Reason::parse("   "), Err(OrderError::ReasonRequired));
        assert!(Reason::parse(&"x".repeat(500)).is_ok());
        assert_eq!(
            Reason::parse(&"é".repeat(501)),
            Err(OrderError::ReasonTooLong { length: 501 })
        );
        assert_eq!(
            Reason::parse("a\u{0}b"),
            Err(OrderError::ReasonInvalidCharacters)
        );
        assert!(Reason::parse("line one\nline two").is_ok());
        // The wire form refuses a missing or blank reason.
        assert!(serde_json::from_str::<OrderEvent>(r#"{"type":"cancel","reason":" "}"#).is_err());
        assert!(serde_json::from_str::<OrderEvent>(r#"{"type":"reject"}"#).is_err());
    }

    #[test]
    fn wire_forms() {
        for status in OrderStatus::ALL {
            let json = serde_json::to_string(&status).expect("serializes");
            assert_eq!(json, format!("\"{}\"", status.as_str()));
            assert_eq!(OrderStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(OrderStatus::parse("PickedUp"), None);
        for party in Party::ALL {
            assert_eq!(Party::parse(party.as_str()), Some(party));
            let json = serde_json::to_string(&party).expect("serializes");
            assert_eq!(json, format!("\"{}\"", party.as_str()));
        }
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
            let json = serde_json::to_string(&kind).expect("serializes");
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
        let event: OrderEvent =
            serde_json::from_str(r#"{"type":"accept","prep_time":15}"#).expect("parses");
        assert_eq!(event, event_of(E::Accept, false));
        let event: OrderEvent = serde_json::from_str(&format!(
            r#"{{"type":"deliver","evidence":{{"location":{{"latitude":60.17,"longitude":24.94}},"photo":"{}"}}}}"#,
            "AB".repeat(32)
        ))
        .expect("parses");
        assert_eq!(event, event_of(E::Deliver, true));
        assert!(PhotoDigest::parse("abc").is_err());
        let t = apply(
            &state(S::Pending, Pickup),
            event_of(E::Accept, false),
            Staff,
            placed(),
        )
        .expect("accepts");
        let json = serde_json::to_string(&t).expect("serializes");
        assert_eq!(
            serde_json::from_str::<Transition>(&json).expect("parses"),
            t
        );
    }

    #[test]
    fn an_order_awaiting_payment_waits_for_the_provider_or_its_deadline() {
        let awaiting = OrderState {
            status: S::AwaitingPayment,
            fulfilment: Pickup,
            payment: PaymentState::RequiresAction,
            acceptance_deadline: payment_deadline(placed()),
        };
        assert_eq!(
            awaiting.acceptance_deadline - placed(),
            Duration::minutes(15)
        );
        // The business cannot act on it yet.
        for event in [
            event_of(E::Accept, false),
            event_of(E::Reject, false),
            event_of(E::StartPreparing, false),
        ] {
            let err = apply(&awaiting, event, Staff, placed()).expect_err("too early");
            assert_eq!(err.code(), "order_not_ready_for_event");
        }
        // Confirmed by the provider: pending, with no email or money effect of its own.
        let t = apply(&awaiting, OrderEvent::ConfirmPayment, System, placed()).expect("applies");
        assert_eq!(t.status, S::Pending);
        assert_eq!(t.effects, vec![Effect::NotifyBusiness]);
        assert_eq!(t.changes.len(), 1);
        assert!(!t.changes[0].filled_in);
        // A second confirmation (webhook and client racing) changes nothing.
        let pending = OrderState {
            status: S::Pending,
            payment: PaymentState::Authorized,
            ..awaiting
        };
        let again = apply(&pending, OrderEvent::ConfirmPayment, System, placed()).expect("late");
        assert_eq!(again.outcome, Outcome::Superseded);
        // Only the system confirms a payment.
        for party in [Customer, Staff, Driver, Admin] {
            assert!(apply(&awaiting, OrderEvent::ConfirmPayment, party, placed()).is_err());
        }
        // Abandoned: not before the deadline, then cancelled with the payment released.
        let err = apply(&awaiting, OrderEvent::Expire, System, placed()).expect_err("open");
        assert_eq!(err.code(), "acceptance_window_open");
        let t = apply(
            &awaiting,
            OrderEvent::Expire,
            System,
            awaiting.acceptance_deadline,
        )
        .expect("expires");
        assert_eq!(t.status, S::Cancelled);
        assert_eq!(
            t.effects,
            vec![Effect::ReleasePayment, Effect::NotifyCustomer]
        );
        assert_eq!(
            t.changes[0].reason.as_ref().map(Reason::as_str),
            Some(PAYMENT_TIMEOUT_REASON)
        );
        // The customer may give up at once; the business may not cancel what it cannot see.
        let t = apply(&awaiting, event_of(E::Cancel, false), Customer, placed()).expect("ok");
        assert_eq!(t.status, S::Cancelled);
        assert!(t.effects.contains(&Effect::ReleasePayment));
        assert!(apply(&awaiting, event_of(E::Cancel, false), Staff, placed()).is_err());
    }

    fn arb_event() -> impl Strategy<Value = OrderEvent> {
        prop::sample::select(sample_events())
    }

    fn arb_party() -> impl Strategy<Value = Party> {
        prop::sample::select(Party::ALL.to_vec())
    }

    proptest! {
        #[test]
        fn status_never_moves_back_nor_leaves_a_terminal_status(
            fulfilment in prop_oneof![Just(Pickup), Just(Delivery)],
            payment in prop_oneof![
                Just(PaymentState::Unpaid),
                Just(PaymentState::RequiresAction),
                Just(PaymentState::Authorized),
                Just(PaymentState::Captured),
            ],
            events in prop::collection::vec((arb_event(), arb_party(), 0i64..600), 0..40),
        ) {
            let mut current = OrderState { payment, ..state(S::Pending, fulfilment) };
            for (event, party, offset) in events {
                let at = placed() + Duration::seconds(offset);
                let before = current.status;
                let Ok(t) = apply(&current, event, party, at) else {
                    continue;
                };
                if before.is_terminal() {
                    prop_assert_eq!(t.status, before);
                }
                match t.outcome {
                    Outcome::Applied => {
                        prop_assert!(t.status.rank() > before.rank(), "{before} -> {}", t.status);
                        // The recorded history is a chain from the old status to the new one,
                        // each step forward, only the last one reported.
                        prop_assert_eq!(t.changes.first().map(|c| c.from), Some(before));
                        prop_assert_eq!(t.changes.last().map(|c| c.to), Some(t.status));
                        for pair in t.changes.windows(2) {
                            prop_assert_eq!(pair[0].to, pair[1].from);
                        }
                        for (i, change) in t.changes.iter().enumerate() {
                            prop_assert!(change.to.rank() > change.from.rank());
                            prop_assert_eq!(change.filled_in, i + 1 < t.changes.len());
                        }
                    }
                    Outcome::Superseded | Outcome::CancellationRequested => {
                        prop_assert_eq!(t.status, before);
                        prop_assert!(t.changes.is_empty());
                    }
                }
                current.status = t.status;
                if t.effects.contains(&Effect::CapturePayment) {
                    current.payment = PaymentState::Captured;
                }
            }
        }
    }
}
