//! Deliveries on the wire: offers and assignments as a driver sees them, the driver's status
//! updates, earnings summaries and payouts. The status update parses into a
//! [`crate::delivery::DeliveryCommand`] with its evidence, or every field error at once.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::FieldErrors;
use crate::delivery::{CashCollected, DeliveryCommand, DeliveryStatus, Evidence, FailureReason};
use crate::money::{Currency, Money};
use crate::order::{PhotoDigest, Reason};
use crate::payout::{BusinessPayout, DriverPayout, Grouping, PayoutPeriod, PeriodTotals};
use crate::value::Coordinates;

/// An offer of an order to the signed-in driver (`GET /api/v1/driver/assignments`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OfferView {
    /// The order offered.
    pub order_id: Uuid,
    /// The offer's number within its order; send it back to accept or decline.
    pub attempt: u32,
    /// The store's name.
    pub store_name: String,
    /// Where to collect the order.
    pub pickup: Coordinates,
    /// From the driver's last position to the store, in metres.
    pub pickup_metres: u32,
    /// From the store to the customer, in metres.
    pub dropoff_metres: u32,
    /// What the driver would earn, net of the platform's commission, tip included.
    pub estimated_earnings: Money,
    /// How many items the order holds.
    pub items_count: u32,
    /// Cash to collect on delivery, for a cash order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cash_to_collect: Option<Money>,
    /// When the offer was made.
    pub offered_at: DateTime<Utc>,
    /// The first instant at which it can no longer be accepted.
    pub expires_at: DateTime<Utc>,
}

/// `POST /api/v1/driver/assignments/{order_id}/accept` and `…/decline`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct OfferAnswerRequest {
    /// The offer's number, from [`OfferView::attempt`]: answering an older offer is refused.
    pub attempt: u32,
}

/// A delivery assigned to a driver, as the driver and the business's dispatch board see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AssignmentView {
    /// The delivery.
    pub delivery_id: Uuid,
    /// Its order.
    pub order_id: Uuid,
    /// The driver.
    pub driver_id: Uuid,
    /// Where the delivery is.
    pub status: DeliveryStatus,
    /// The store's name.
    pub store_name: String,
    /// Where to collect the order.
    pub pickup: Coordinates,
    /// Where to deliver it.
    pub dropoff: Coordinates,
    /// How many items the order holds.
    pub items_count: u32,
    /// Cash to collect on delivery, for a cash order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cash_to_collect: Option<Money>,
    /// The business requires a proof photo before delivery.
    pub proof_required: bool,
    /// Why this driver was chosen ([`crate::dispatch::Ranked::reason`]), for the board.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When the driver accepted.
    pub assigned_at: DateTime<Utc>,
}

/// An open offer addressed to the signed-in driver, with the id to answer it by
/// (`POST /api/v1/driver/assignments/{offer_id}/accept` or `…/decline`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OpenOfferView {
    /// The offer.
    pub offer_id: Uuid,
    /// The delivery offered.
    pub delivery_id: Uuid,
    /// What the driver is offered.
    #[serde(flatten)]
    pub offer: OfferView,
}

/// `GET /api/v1/driver/assignments`: the driver's open offers and the deliveries it holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DriverAssignmentsView {
    /// Offers waiting for an answer, soonest expiry first.
    pub offers: Vec<OpenOfferView>,
    /// Deliveries the driver accepted (or was assigned by hand), newest first.
    pub assignments: Vec<AssignmentView>,
}

/// `POST /api/v1/business/orders/{id}/assign`: give the order's delivery to a driver by hand.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ManualAssignRequest {
    /// A driver dedicated to the business, or from the shared pool if the business opted in;
    /// online and approved.
    pub driver_id: Uuid,
}

/// Where dispatch stands for a delivery, on the business's board.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DispatchStatus {
    /// Looking for the next driver.
    Pending,
    /// Offered to a driver, waiting for the answer.
    Offered,
    /// Nobody was left to offer it to: assign it by hand.
    Unassigned,
    /// A driver holds it.
    Assigned,
    /// The driver is at the store.
    ArrivedAtStore,
    /// The driver has the goods.
    PickedUp,
    /// The driver is at the customer's address.
    ArrivedAtCustomer,
    /// Handed over.
    Delivered,
    /// Failed after pickup (a failure before pickup sends it back to `pending`).
    Failed,
    /// The order was cancelled.
    Cancelled,
}

impl DispatchStatus {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Offered => "offered",
            Self::Unassigned => "unassigned",
            Self::Assigned => "assigned",
            Self::ArrivedAtStore => "arrived_at_store",
            Self::PickedUp => "picked_up",
            Self::ArrivedAtCustomer => "arrived_at_customer",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses the stored form.
    pub fn parse(raw: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Offered,
            Self::Unassigned,
            Self::Assigned,
            Self::ArrivedAtStore,
            Self::PickedUp,
            Self::ArrivedAtCustomer,
            Self::Delivered,
            Self::Failed,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
    }
}

/// The open offer of a delivery, on the board.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BoardOfferView {
    /// The offer.
    pub offer_id: Uuid,
    /// To whom.
    pub driver_id: Uuid,
    /// Its number within the delivery.
    pub attempt: u32,
    /// When it was made.
    pub offered_at: DateTime<Utc>,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
    /// Why this driver.
    pub reason: String,
}

/// One delivery on the business's dispatch board (`GET /api/v1/business/dispatch`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DispatchBoardEntry {
    /// The delivery.
    pub delivery_id: Uuid,
    /// Its order.
    pub order_id: Uuid,
    /// Where dispatch stands.
    pub status: DispatchStatus,
    /// The open offer, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_offer: Option<BoardOfferView>,
    /// The driver holding it, once assigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_id: Option<Uuid>,
    /// When it was assigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_at: Option<DateTime<Utc>>,
    /// Why the assigned driver was chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How many offers were made.
    pub attempts: u32,
    /// When the delivery was created.
    pub created_at: DateTime<Utc>,
}

/// The statuses a driver may report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReportedStatus {
    /// At the store.
    ArrivedAtStore,
    /// Goods collected.
    PickedUp,
    /// At the customer.
    ArrivedAtCustomer,
    /// Handed over.
    Delivered,
    /// Cannot be completed (`failure` required).
    Failed,
}

/// A GPS position reported with a status.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PositionInput {
    /// Latitude, −90..=90.
    pub latitude: f64,
    /// Longitude, −180..=180.
    pub longitude: f64,
}

/// Cash collected on a cash order's delivery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CashCollectedInput {
    /// What the driver took, in minor units of the order's currency; at most the amount due.
    pub amount_minor: i64,
    /// Why less than the amount due was collected (required then).
    #[serde(default)]
    pub shortfall_reason: Option<String>,
}

/// How far ahead of the server's clock a device's `recorded_at` may be (clock drift).
pub const MAX_DEVICE_CLOCK_AHEAD_SECS: i64 = 5 * 60;

/// `PATCH /api/v1/driver/deliveries/{id}/status`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DeliveryStatusUpdateRequest {
    /// The new status.
    pub status: ReportedStatus,
    /// Where the device was; with `recorded_at`, the evidence that lets a report skip the
    /// pickup.
    #[serde(default)]
    pub position: Option<PositionInput>,
    /// The device's time of the report (at most 5 minutes ahead of the server's clock).
    #[serde(default)]
    pub recorded_at: Option<DateTime<Utc>>,
    /// For `delivered`: the proof photo's SHA-256 in hex. A photo not uploaded yet does not hold
    /// the report back: the delivery records it with its proof `pending`, attached when its
    /// upload completes. Without it the latest photo uploaded for the delivery is used.
    #[serde(default)]
    pub proof_sha256: Option<String>,
    /// For `delivered` of a cash order: the cash collected.
    #[serde(default)]
    pub cash_collected: Option<CashCollectedInput>,
    /// For `failed`: why.
    #[serde(default)]
    pub failure: Option<FailureReason>,
}

/// A parsed status update: the command and its evidence, for [`crate::delivery::apply`].
#[derive(Clone, Debug, PartialEq)]
pub struct StatusUpdate {
    /// The command.
    pub command: DeliveryCommand,
    /// The device's position and time, when both were sent.
    pub evidence: Option<Evidence>,
}

impl DeliveryStatusUpdateRequest {
    /// Parses every field; `currency` is the order's, for the cash amount, and `now` the
    /// server's clock, which a device's `recorded_at` may not be ahead of by more than
    /// [`MAX_DEVICE_CLOCK_AHEAD_SECS`].
    ///
    /// # Errors
    /// The field errors.
    pub fn parse(
        &self,
        currency: Currency,
        now: DateTime<Utc>,
    ) -> Result<StatusUpdate, FieldErrors> {
        let mut e = FieldErrors::default();
        let position = self
            .position
            .and_then(|p| e.check("position", Coordinates::parse(p.latitude, p.longitude)));
        if let Some(recorded_at) = self.recorded_at {
            if recorded_at > now + chrono::Duration::seconds(MAX_DEVICE_CLOCK_AHEAD_SECS) {
                e.push(
                    "recorded_at",
                    "in_future",
                    "the device's time is more than 5 minutes ahead of the server's",
                );
            }
        }
        let evidence = match (position, self.recorded_at) {
            (Some(position), Some(recorded_at)) => Some(Evidence {
                position,
                recorded_at,
            }),
            _ => None,
        };
        if self.status != ReportedStatus::Failed && self.failure.is_some() {
            e.push(
                "failure",
                "not_applicable",
                "a failure reason goes with the failed status only",
            );
        }
        if self.status != ReportedStatus::Delivered {
            if self.cash_collected.is_some() {
                e.push(
                    "cash_collected",
                    "not_applicable",
                    "cash is reported with the delivered status",
                );
            }
            if self.proof_sha256.is_some() {
                e.push(
                    "proof_sha256",
                    "not_applicable",
                    "a proof photo goes with the delivered status",
                );
            }
        }
        let command = match self.status {
            ReportedStatus::ArrivedAtStore => Some(DeliveryCommand::ArriveAtStore),
            ReportedStatus::PickedUp => Some(DeliveryCommand::PickUp),
            ReportedStatus::ArrivedAtCustomer => Some(DeliveryCommand::ArriveAtCustomer),
            ReportedStatus::Delivered => {
                let proof = match self.proof_sha256.as_deref().map(PhotoDigest::parse) {
                    Some(Ok(digest)) => Some(digest),
                    Some(Err(err)) => {
                        e.push("proof_sha256", err.code(), err.to_string());
                        None
                    }
                    None => None,
                };
                let cash = match &self.cash_collected {
                    Some(cash) => {
                        let reason = match cash.shortfall_reason.as_deref().map(Reason::parse) {
                            Some(Ok(reason)) => Some(reason),
                            Some(Err(err)) => {
                                e.push(
                                    "cash_collected.shortfall_reason",
                                    err.code(),
                                    err.to_string(),
                                );
                                None
                            }
                            None => None,
                        };
                        Some(CashCollected {
                            amount: Money::new(cash.amount_minor, currency),
                            shortfall_reason: reason,
                        })
                    }
                    None => None,
                };
                Some(DeliveryCommand::Deliver { proof, cash })
            }
            ReportedStatus::Failed => match &self.failure {
                Some(reason) => Some(DeliveryCommand::Fail {
                    reason: reason.clone(),
                }),
                None => {
                    e.push("failure", "required", "say why the delivery failed");
                    None
                }
            },
        };
        e.finish(|| {
            Some(StatusUpdate {
                command: command?,
                evidence,
            })
        })
    }
}

/// `GET /api/v1/driver/earnings` query.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[serde(deny_unknown_fields)]
pub struct EarningsQuery {
    /// By local day or week (the driver's time zone).
    #[serde(default = "default_grouping")]
    pub group: Grouping,
    /// From this instant (inclusive).
    #[serde(default)]
    pub from: Option<DateTime<Utc>>,
    /// Until this instant (exclusive).
    #[serde(default)]
    pub to: Option<DateTime<Utc>>,
}

fn default_grouping() -> Grouping {
    Grouping::Day
}

/// A driver's earnings, by period, with what is still to be paid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EarningsSummary {
    /// How the periods are cut.
    pub group: Grouping,
    /// The periods, oldest first ([`crate::payout::summarize_earnings`]).
    pub periods: Vec<PeriodTotals>,
    /// Net earnings over all periods.
    pub total_net: Money,
    /// Net earnings not yet paid out.
    pub pending: Money,
    /// Net earnings paid out.
    pub paid: Money,
    /// Cash the driver holds now (owed to the platform).
    pub cash_held: Money,
}

/// Where a payout is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PayoutStatus {
    /// Computed, not yet paid.
    Pending,
    /// Paid (or, for a negative balance, carried over).
    Processed,
}

/// A driver's payout (`GET /api/v1/admin/payouts`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DriverPayoutView {
    /// The payout.
    pub id: Uuid,
    /// The driver.
    pub driver_id: Uuid,
    /// The period.
    pub period: PayoutPeriod,
    /// The statement.
    pub statement: DriverPayout,
    /// Where it is.
    pub status: PayoutStatus,
    /// When it was processed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processed_at: Option<DateTime<Utc>>,
}

/// A business's payout (`GET /api/v1/admin/payouts`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BusinessPayoutView {
    /// The payout.
    pub id: Uuid,
    /// The business.
    pub business_id: Uuid,
    /// The period.
    pub period: PayoutPeriod,
    /// The statement.
    pub statement: BusinessPayout,
    /// Where it is.
    pub status: PayoutStatus,
    /// When it was processed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processed_at: Option<DateTime<Utc>>,
}

/// One payout in the admin's list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "party", rename_all = "snake_case")]
pub enum PayoutView {
    /// A business's payout.
    Business(BusinessPayoutView),
    /// A driver's payout.
    Driver(DriverPayoutView),
}

/// Whether a reported step changed the delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    /// The step moved the delivery (and the order, where it follows).
    Applied,
    /// The delivery was already past it or had ended: recorded, nothing changed.
    Superseded,
}

impl StepOutcome {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Superseded => "superseded",
        }
    }

    /// Parses the stored form.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "applied" => Some(Self::Applied),
            "superseded" => Some(Self::Superseded),
            _ => None,
        }
    }
}

/// When a delivery reached each step (server times); `None` for steps not reached.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliverySteps {
    /// A driver took it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_at: Option<DateTime<Utc>>,
    /// The driver reached the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrived_at_store_at: Option<DateTime<Utc>>,
    /// The goods left the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picked_up_at: Option<DateTime<Utc>>,
    /// The driver reached the customer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrived_at_customer_at: Option<DateTime<Utc>>,
    /// Delivered or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// The device's time of the hand-over (or failure), when it sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_recorded_at: Option<DateTime<Utc>>,
}

/// A proof photo of a delivery (`POST /api/v1/driver/deliveries/{id}/proof`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryProofView {
    /// The photo's SHA-256 in hex: send it as `proof_sha256` with `delivered`.
    pub sha256: String,
    /// `image/jpeg`, `image/png` or `image/webp`, judged from the bytes.
    pub content_type: String,
    /// Its size in bytes.
    pub byte_size: u32,
    /// When it was uploaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploaded_at: Option<DateTime<Utc>>,
}

/// `POST /api/v1/driver/deliveries/{id}/proof` (`multipart/form-data`).
#[derive(Clone, Debug)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadProofForm {
    /// The photo: JPEG, PNG or WebP (judged from its bytes), at most 10 MiB.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Binary))]
    pub photo: Vec<u8>,
}

/// The cash a driver collected on a delivery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryCashView {
    /// What was due (the order's total).
    pub due: Money,
    /// What the driver took.
    pub collected: Money,
    /// `due − collected`.
    pub shortfall: Money,
    /// Why the rest is missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shortfall_reason: Option<String>,
}

/// One entry of a delivery's log: a step, a failure, a reassignment or a cancellation, applied
/// or superseded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryEventView {
    /// `arrive_at_store`, `pick_up`, `arrive_at_customer`, `deliver`, `fail`, `reassign` or
    /// `cancel`.
    pub command: String,
    /// The status before.
    pub from_status: String,
    /// The status the step reached (`failed`, `reassigned`, `cancelled` for those commands).
    pub to_status: String,
    /// Applied or superseded.
    pub outcome: StepOutcome,
    /// A skipped step filled in by a later one.
    pub filled_in: bool,
    /// `driver`, `staff`, `system` or `admin`.
    pub by: String,
    /// The driver holding the delivery then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_id: Option<Uuid>,
    /// Server time.
    pub at: DateTime<Utc>,
    /// The device's time, when sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_at: Option<DateTime<Utc>>,
    /// The device's position, when sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<Coordinates>,
}

/// Whether the proof photo a delivery was completed with has been received.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ProofStatus {
    /// Named by the `delivered` report, still uploading (or never sent): missing so far.
    Pending,
    /// Uploaded, verified and attached to the delivery.
    Attached,
}

/// A delivery as its driver (`GET /api/v1/driver/deliveries/{id}`, the status update's answer)
/// and the business's staff (`GET /api/v1/business/deliveries/{id}`) see it. A driver sees only
/// its own part of the log, proofs, cash and earnings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryView {
    /// The delivery.
    pub delivery_id: Uuid,
    /// Its order.
    pub order_id: Uuid,
    /// Where it is. A delivery that failed before pickup or was reassigned is `pending` again,
    /// looking for another driver.
    pub status: DispatchStatus,
    /// The driver holding it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_id: Option<Uuid>,
    /// When each step was reached.
    pub steps: DeliverySteps,
    /// Why it failed (after pickup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureReason>,
    /// The proof photo the delivery was completed with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof_sha256: Option<String>,
    /// Whether that photo has arrived: `pending` while a `delivered` report sent before its
    /// photo's upload finished waits for it (flagged, not lost), `attached` once it is here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<ProofStatus>,
    /// The photos uploaded for it, oldest first.
    pub proofs: Vec<DeliveryProofView>,
    /// From the store to the drop-off, in metres, as paid (once delivered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trip_metres: Option<u32>,
    /// The cash collected (cash orders, once delivered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cash: Option<DeliveryCashView>,
    /// What the driver earned (once delivered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub earnings: Option<crate::earnings::DriverEarnings>,
    /// The log, oldest first.
    pub events: Vec<DeliveryEventView>,
    /// For a status update: whether it changed anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<StepOutcome>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur() -> Currency {
        Currency::parse("EUR").expect("known")
    }

    fn now() -> DateTime<Utc> {
        "2026-06-01T12:00:00Z".parse().expect("valid instant")
    }

    fn request(json: &str) -> DeliveryStatusUpdateRequest {
        serde_json::from_str(json).expect("well-formed")
    }

    fn codes(errors: &FieldErrors) -> Vec<(&str, &str)> {
        errors
            .0
            .iter()
            .map(|f| (f.field.as_str(), f.code.as_str()))
            .collect()
    }

    #[test]
    fn a_delivery_with_cash_proof_and_evidence_parses() {
        let update = request(&format!(
            r#"{{"status":"delivered","position":{{"latitude":60.17,"longitude":24.94}},
                "recorded_at":"2026-06-01T12:00:00Z",
                "cash_collected":{{"amount_minor":2000,"shortfall_reason":"customer had only 20 euros"}},
                "proof_sha256":"{}"}}"#,
            "AB".repeat(32)
        ))
        .parse(eur(), now())
        .expect("parses");
        let DeliveryCommand::Deliver { proof, cash } = update.command else {
            panic!("a delivery");
        };
        assert_eq!(proof.map(|p| p.as_str().to_owned()), Some("ab".repeat(32)));
        let cash = cash.expect("cash");
        assert_eq!(cash.amount, Money::new(2_000, eur()));
        assert!(cash.shortfall_reason.is_some());
        assert!(update.evidence.is_some());
        // A position without a time is not evidence.
        let update =
            request(r#"{"status":"picked_up","position":{"latitude":60.17,"longitude":24.94}}"#)
                .parse(eur(), now())
                .expect("parses");
        assert_eq!(update.command, DeliveryCommand::PickUp);
        assert_eq!(update.evidence, None);
    }

    #[test]
    fn device_times_may_run_a_little_ahead_but_not_more() {
        let at = |t: &str| {
            request(&format!(
                r#"{{"status":"arrived_at_store","recorded_at":"{t}",
                    "position":{{"latitude":60.17,"longitude":24.94}}}}"#
            ))
            .parse(eur(), now())
        };
        assert!(at("2026-06-01T12:05:00Z").is_ok());
        let err = at("2026-06-01T12:05:01Z").expect_err("too far ahead");
        assert_eq!(codes(&err), vec![("recorded_at", "in_future")]);
    }

    #[test]
    fn failures_need_a_known_reason() {
        let update = request(r#"{"status":"failed","failure":{"code":"refused"}}"#)
            .parse(eur(), now())
            .expect("parses");
        assert_eq!(
            update.command,
            DeliveryCommand::Fail {
                reason: FailureReason::Refused
            }
        );
        let update =
            request(r#"{"status":"failed","failure":{"code":"other","text":"flat tyre"}}"#)
                .parse(eur(), now())
                .expect("parses");
        assert!(matches!(
            update.command,
            DeliveryCommand::Fail {
                reason: FailureReason::Other { .. }
            }
        ));
        let err = request(r#"{"status":"failed"}"#)
            .parse(eur(), now())
            .expect_err("needs a reason");
        assert_eq!(codes(&err), vec![("failure", "required")]);
        assert!(serde_json::from_str::<DeliveryStatusUpdateRequest>(
            r#"{"status":"failed","failure":{"code":"other"}}"#
        )
        .is_err());
        assert!(serde_json::from_str::<DeliveryStatusUpdateRequest>(
            r#"{"status":"failed","failure":{"code":"bored"}}"#
        )
        .is_err());
    }

    #[test]
    fn every_misfit_is_reported_at_once() {
        let err = request(
            r#"{"status":"picked_up","position":{"latitude":91,"longitude":0},
                "failure":{"code":"refused"},"cash_collected":{"amount_minor":5},"proof_sha256":"x"}"#,
        )
        .parse(eur(), now())
        .expect_err("refused");
        let fields: Vec<&str> = codes(&err).into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            fields,
            vec!["position", "failure", "cash_collected", "proof_sha256"]
        );
        assert!(serde_json::from_str::<DeliveryStatusUpdateRequest>(
            r#"{"status":"delivered","driver_id":"x"}"#
        )
        .is_err());
        assert!(serde_json::from_str::<DeliveryStatusUpdateRequest>(
            r#"{"status":"delivered","cash_collected":{"amount_minor":1,"tip":2}}"#
        )
        .is_err());
        assert!(serde_json::from_str::<OfferAnswerRequest>(r#"{"attempt":1,"x":2}"#).is_err());
    }
}
