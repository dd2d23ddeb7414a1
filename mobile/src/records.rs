//! Thin mirrors of the facade's results and inputs as UniFFI records: ids are UUID strings,
//! times unix milliseconds, rows JSON text (the rows' shapes are the server's wire views, which
//! the apps decode with their own JSON libraries). Conversions only; no rules.

use chrono::{DateTime, Utc};
use fleetfront_core::SyncStatus as CoreSyncStatus;
use fleetfront_core::{Rejection as CoreRejection, SyncReport as CoreSyncReport};
use fleetfront_domain::api::auth::{MembershipView, PrincipalView};
use fleetfront_domain::api::delivery::{
    CashCollectedInput, DeliveryStatusUpdateRequest, PositionInput, ReportedStatus,
};
use fleetfront_domain::api::sync::Mutation;
use fleetfront_domain::delivery::FailureReason;
use fleetfront_domain::order::Reason;
use serde_json::Value;

use crate::error::FleetfrontError;

/// The signed-in account.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Principal {
    /// The account id.
    pub id: String,
    /// `admin`, `staff`, `driver` or `customer`.
    pub kind: String,
    /// Email.
    pub email: String,
    /// Display name.
    pub full_name: String,
    /// The business the session acts in, if any.
    pub business_id: Option<String>,
    /// The role key in that business (staff).
    pub role: Option<String>,
    /// The permissions of that role (staff), as their wire names.
    pub permissions: Vec<String>,
    /// Every business the user belongs to (staff).
    pub memberships: Vec<Membership>,
}

/// One of a staff member's businesses.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Membership {
    /// The business.
    pub business_id: String,
    /// Its name.
    pub business_name: String,
    /// The role's key there.
    pub role: String,
}

/// The wire name of a serializable value (an enum's `snake_case` name, an id's text).
fn wire_name(value: &impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(name)) => name,
        Ok(other) => other.to_string(),
        Err(e) => format!("<{e}>"),
    }
}

impl From<PrincipalView> for Principal {
    fn from(p: PrincipalView) -> Self {
        Self {
            id: p.id.to_string(),
            kind: wire_name(&p.kind),
            email: p.email,
            full_name: p.full_name,
            business_id: p.business_id.as_ref().map(wire_name),
            role: p.role,
            permissions: p.permissions.iter().map(wire_name).collect(),
            memberships: p.memberships.into_iter().map(Membership::from).collect(),
        }
    }
}

impl From<MembershipView> for Membership {
    fn from(m: MembershipView) -> Self {
        Self {
            business_id: wire_name(&m.business_id),
            business_name: m.business_name,
            role: m.role,
        }
    }
}

/// What the apps show about sync.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct SyncStatus {
    /// Whether the last round reached the server.
    pub online: bool,
    /// Changes waiting for the server.
    pub pending: u64,
    /// When a round last finished, in unix milliseconds.
    pub last_synced_at_ms: Option<i64>,
    /// The last round's error in words, if it failed.
    pub last_error: Option<String>,
}

impl From<CoreSyncStatus> for SyncStatus {
    fn from(s: CoreSyncStatus) -> Self {
        Self {
            online: s.online,
            pending: s.pending,
            last_synced_at_ms: s.last_synced_at.map(|t| t.timestamp_millis()),
            last_error: s.last_error,
        }
    }
}

/// What one sync round did.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct SyncReport {
    /// Changes the server applied.
    pub applied: u64,
    /// Changes the server refused (see `rejections()`).
    pub rejected: u64,
    /// Pull requests made.
    pub pulls: u64,
    /// Rows changed on the device.
    pub rows_changed: u64,
    /// Buckets fetched again after a checksum mismatch.
    pub refetched: u64,
}

impl From<CoreSyncReport> for SyncReport {
    fn from(r: CoreSyncReport) -> Self {
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        Self {
            applied: count(r.applied),
            rejected: count(r.rejected),
            pulls: count(r.pulls),
            rows_changed: count(r.rows_changed),
            refetched: count(r.refetched),
        }
    }
}

/// One row as the user sees it.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Row {
    /// Its id.
    pub id: String,
    /// The row, as JSON text.
    pub json: String,
}

/// A change the server refused, rolled back on the device.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Rejection {
    /// Its sequence number.
    pub seq: u64,
    /// Its id.
    pub id: String,
    /// `name@version`.
    pub name: String,
    /// The stable error code, if the server gave one.
    pub code: Option<String>,
    /// Why, in words.
    pub message: String,
    /// When the device recorded the decision, in unix milliseconds.
    pub decided_at_ms: i64,
}

impl From<CoreRejection> for Rejection {
    fn from(r: CoreRejection) -> Self {
        Self {
            seq: r.seq,
            id: r.id.to_string(),
            name: r.name,
            code: r.code,
            message: r.message,
            decided_at_ms: r.decided_at.timestamp_millis(),
        }
    }
}

/// A change applied on the device and queued for the server.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct MutationInfo {
    /// Its place in the device's queue (dense, from 1).
    pub seq: u64,
    /// Its id, the idempotency key of what it creates.
    pub id: String,
    /// `name@version`.
    pub name: String,
    /// When the user did it, in unix milliseconds.
    pub action_time_ms: i64,
}

impl From<Mutation> for MutationInfo {
    fn from(m: Mutation) -> Self {
        Self {
            seq: m.seq,
            id: m.id.to_string(),
            name: m.name,
            action_time_ms: m.action_time.timestamp_millis(),
        }
    }
}

/// A delivery status a driver reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum DeliveryStepStatus {
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

impl From<DeliveryStepStatus> for ReportedStatus {
    fn from(s: DeliveryStepStatus) -> Self {
        match s {
            DeliveryStepStatus::ArrivedAtStore => Self::ArrivedAtStore,
            DeliveryStepStatus::PickedUp => Self::PickedUp,
            DeliveryStepStatus::ArrivedAtCustomer => Self::ArrivedAtCustomer,
            DeliveryStepStatus::Delivered => Self::Delivered,
            DeliveryStepStatus::Failed => Self::Failed,
        }
    }
}

/// Why a delivery failed.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum DeliveryFailure {
    /// Nobody answered at the address or on the phone.
    CustomerUnreachable,
    /// The address does not exist or cannot be reached.
    WrongAddress,
    /// The customer refused the order.
    Refused,
    /// The goods were damaged.
    Damaged,
    /// Something else, in words (1 to 500 characters).
    Other {
        /// What happened.
        text: String,
    },
}

impl TryFrom<DeliveryFailure> for FailureReason {
    type Error = FleetfrontError;

    fn try_from(f: DeliveryFailure) -> Result<Self, FleetfrontError> {
        Ok(match f {
            DeliveryFailure::CustomerUnreachable => Self::CustomerUnreachable,
            DeliveryFailure::WrongAddress => Self::WrongAddress,
            DeliveryFailure::Refused => Self::Refused,
            DeliveryFailure::Damaged => Self::Damaged,
            DeliveryFailure::Other { text } => Self::Other {
                text: Reason::parse(&text)
                    .map_err(|e| FleetfrontError::invalid(format!("failure text: {e}")))?,
            },
        })
    }
}

/// Where the device was.
#[derive(Clone, Copy, Debug, PartialEq, uniffi::Record)]
pub struct Position {
    /// Latitude, −90..=90.
    pub latitude: f64,
    /// Longitude, −180..=180.
    pub longitude: f64,
}

/// A delivery step a driver reports; only `status` is required.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct DeliveryStep {
    /// The new status.
    pub status: DeliveryStepStatus,
    /// Where the device was; with `recorded_at_ms`, the evidence that lets a report skip the
    /// pickup.
    #[uniffi(default = None)]
    pub position: Option<Position>,
    /// The device's time of the position, in unix milliseconds.
    #[uniffi(default = None)]
    pub recorded_at_ms: Option<i64>,
    /// For `Delivered`: the proof photo's SHA-256 in hex.
    #[uniffi(default = None)]
    pub proof_sha256: Option<String>,
    /// For `Delivered` of a cash order: the cash collected, in minor units.
    #[uniffi(default = None)]
    pub cash_collected_minor: Option<i64>,
    /// Why less cash than due was collected (required then).
    #[uniffi(default = None)]
    pub shortfall_reason: Option<String>,
    /// For `Failed`: why.
    #[uniffi(default = None)]
    pub failure: Option<DeliveryFailure>,
}

impl TryFrom<DeliveryStep> for DeliveryStatusUpdateRequest {
    type Error = FleetfrontError;

    fn try_from(step: DeliveryStep) -> Result<Self, FleetfrontError> {
        Ok(Self {
            status: step.status.into(),
            position: step.position.map(|p| PositionInput {
                latitude: p.latitude,
                longitude: p.longitude,
            }),
            recorded_at: step
                .recorded_at_ms
                .map(|ms| time("recorded_at_ms", ms))
                .transpose()?,
            proof_sha256: step.proof_sha256,
            cash_collected: step
                .cash_collected_minor
                .map(|amount_minor| CashCollectedInput {
                    amount_minor,
                    shortfall_reason: step.shortfall_reason,
                }),
            failure: step.failure.map(FailureReason::try_from).transpose()?,
        })
    }
}

/// Unix milliseconds as a time.
///
/// # Errors
/// [`FleetfrontError::InvalidArgument`] out of chrono's range.
pub(crate) fn time(what: &str, ms: i64) -> Result<DateTime<Utc>, FleetfrontError> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| FleetfrontError::invalid(format!("{what}: {ms} ms is out of range")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(status: DeliveryStepStatus) -> DeliveryStep {
        DeliveryStep {
            status,
            position: None,
            recorded_at_ms: None,
            proof_sha256: None,
            cash_collected_minor: None,
            shortfall_reason: None,
            failure: None,
        }
    }

    #[test]
    fn a_delivery_step_becomes_the_status_update_request() {
        let mut delivered = step(DeliveryStepStatus::Delivered);
        delivered.cash_collected_minor = Some(1_250);
        delivered.position = Some(Position {
            latitude: 60.17,
            longitude: 24.94,
        });
        delivered.recorded_at_ms = Some(1_700_000_000_123);
        let request = DeliveryStatusUpdateRequest::try_from(delivered).unwrap();
        assert_eq!(request.status, ReportedStatus::Delivered);
        assert_eq!(
            request.cash_collected,
            Some(CashCollectedInput {
                amount_minor: 1_250,
                shortfall_reason: None
            })
        );
        assert_eq!(
            request.recorded_at.unwrap().timestamp_millis(),
            1_700_000_000_123
        );
        assert_eq!(request.position.unwrap().latitude, 60.17);

        let mut failed = step(DeliveryStepStatus::Failed);
        failed.failure = Some(DeliveryFailure::Other {
            text: " Gate locked ".to_owned(),
        });
        let request = DeliveryStatusUpdateRequest::try_from(failed).unwrap();
        let FailureReason::Other { text } = request.failure.unwrap() else {
            panic!("not Other");
        };
        assert_eq!(text, Reason::parse("Gate locked").unwrap());
    }

    #[test]
    fn bad_step_arguments_are_invalid_arguments() {
        let mut blank = step(DeliveryStepStatus::Failed);
        blank.failure = Some(DeliveryFailure::Other {
            text: "   ".to_owned(),
        });
        let mut far = step(DeliveryStepStatus::PickedUp);
        far.recorded_at_ms = Some(i64::MAX);
        for bad in [blank, far] {
            let e = DeliveryStatusUpdateRequest::try_from(bad).unwrap_err();
            assert!(
                matches!(&e, FleetfrontError::InvalidArgument { code, .. } if code == "invalid_argument"),
                "{e:?}"
            );
        }
    }
}
