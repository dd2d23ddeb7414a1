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
    /// Cannot be completed (`failure_reason` required).
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
    /// The device's time of the report.
    #[serde(default)]
    pub recorded_at: Option<DateTime<Utc>>,
    /// Words: the text of an `other` failure, or why less cash than due was collected.
    #[serde(default)]
    pub note: Option<String>,
    /// Cash collected on delivery, in minor units of the order's currency (cash orders).
    #[serde(default)]
    pub cash_collected_minor: Option<i64>,
    /// For `failed`: `customer_unreachable`, `wrong_address`, `refused`, `damaged` or `other`.
    #[serde(default)]
    pub failure_reason: Option<String>,
    /// For `delivered`: the proof photo's SHA-256 in hex (the upload may follow).
    #[serde(default)]
    pub proof_sha256: Option<String>,
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
    /// Parses every field; `currency` is the order's, for the cash amount.
    ///
    /// # Errors
    /// The field errors.
    pub fn parse(&self, currency: Currency) -> Result<StatusUpdate, FieldErrors> {
        let mut e = FieldErrors::default();
        let position = self
            .position
            .and_then(|p| e.check("position", Coordinates::parse(p.latitude, p.longitude)));
        let evidence = match (position, self.recorded_at) {
            (Some(position), Some(recorded_at)) => Some(Evidence {
                position,
                recorded_at,
            }),
            _ => None,
        };
        let note = match self.note.as_deref().map(Reason::parse).transpose() {
            Ok(note) => note,
            Err(err) => {
                e.push("note", err.code(), err.to_string());
                None
            }
        };
        if self.status != ReportedStatus::Failed && self.failure_reason.is_some() {
            e.push(
                "failure_reason",
                "not_applicable",
                "a failure reason goes with the failed status only",
            );
        }
        if self.status != ReportedStatus::Delivered {
            if self.cash_collected_minor.is_some() {
                e.push(
                    "cash_collected_minor",
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
                let cash = self.cash_collected_minor.map(|minor| CashCollected {
                    amount: Money::new(minor, currency),
                    shortfall_reason: note.clone(),
                });
                Some(DeliveryCommand::Deliver { proof, cash })
            }
            ReportedStatus::Failed => {
                let reason = match self.failure_reason.as_deref() {
                    Some("customer_unreachable") => Some(FailureReason::CustomerUnreachable),
                    Some("wrong_address") => Some(FailureReason::WrongAddress),
                    Some("refused") => Some(FailureReason::Refused),
                    Some("damaged") => Some(FailureReason::Damaged),
                    Some("other") => match &note {
                        Some(text) => Some(FailureReason::Other { text: text.clone() }),
                        None => {
                            e.push("note", "required", "say what happened");
                            None
                        }
                    },
                    Some(_) => {
                        e.push(
                            "failure_reason",
                            "invalid",
                            "use customer_unreachable, wrong_address, refused, damaged or other",
                        );
                        None
                    }
                    None => {
                        e.push("failure_reason", "required", "say why the delivery failed");
                        None
                    }
                };
                reason.map(|reason| DeliveryCommand::Fail { reason })
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn eur() -> Currency {
        Currency::parse("EUR").expect("known")
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
                "recorded_at":"2026-06-01T12:00:00Z","cash_collected_minor":2000,
                "note":"customer had only 20 euros","proof_sha256":"{}"}}"#,
            "AB".repeat(32)
        ))
        .parse(eur())
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
                .parse(eur())
                .expect("parses");
        assert_eq!(update.command, DeliveryCommand::PickUp);
        assert_eq!(update.evidence, None);
    }

    #[test]
    fn failures_need_a_known_reason() {
        let update = request(r#"{"status":"failed","failure_reason":"refused"}"#)
            .parse(eur())
            .expect("parses");
        assert_eq!(
            update.command,
            DeliveryCommand::Fail {
                reason: FailureReason::Refused
            }
        );
        let err = request(r#"{"status":"failed","failure_reason":"other"}"#)
            .parse(eur())
            .expect_err("needs words");
        assert_eq!(codes(&err), vec![("note", "required")]);
        let err = request(r#"{"status":"failed","failure_reason":"bored"}"#)
            .parse(eur())
            .expect_err("unknown");
        assert_eq!(codes(&err), vec![("failure_reason", "invalid")]);
    }

    #[test]
    fn every_misfit_is_reported_at_once() {
        let err = request(
            r#"{"status":"picked_up","position":{"latitude":91,"longitude":0},
                "failure_reason":"refused","cash_collected_minor":5,"proof_sha256":"x"}"#,
        )
        .parse(eur())
        .expect_err("refused");
        let fields: Vec<&str> = codes(&err).into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            fields,
            vec![
                "position",
                "failure_reason",
                "cash_collected_minor",
                "proof_sha256"
            ]
        );
        assert!(serde_json::from_str::<DeliveryStatusUpdateRequest>(
            r#"{"status":"delivered","driver_id":"x"}"#
        )
        .is_err());
        assert!(serde_json::from_str::<OfferAnswerRequest>(r#"{"attempt":1,"x":2}"#).is_err());
    }
}
