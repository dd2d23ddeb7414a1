//! Drivers' locations on the wire: a device's batch of fixes (`POST /api/v1/driver/location`)
//! and the admin's nearest-drivers read (`GET /api/v1/admin/drivers/locations`). The rules are
//! in [`crate::location`]; a batch parses into plausible fixes or every field error at once,
//! named by the fix's index (`fixes[3].latitude`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::FieldErrors;
use crate::location::{parse_batch, Fix, RawFix};

/// Longest device id accepted, in bytes.
pub const MAX_DEVICE_ID: usize = 128;
/// Most drivers one nearest-drivers read returns.
pub const MAX_NEAREST: u32 = 100;
/// Farthest a nearest-drivers read looks, in metres.
pub const MAX_SEARCH_M: u32 = 50_000;
/// How far a nearest-drivers read looks when not told, in metres.
pub const DEFAULT_SEARCH_M: u32 = 10_000;

/// One GPS fix as a device sends it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FixInput {
    /// Degrees north, −90..=90.
    pub latitude: f64,
    /// Degrees east, −180..=180; (0, 0) is refused.
    pub longitude: f64,
    /// Accuracy radius in metres, 0..=10,000.
    pub accuracy_m: f64,
    /// Direction of travel in degrees clockwise from north, 0..360.
    #[serde(default)]
    pub heading_deg: Option<f64>,
    /// Ground speed in m/s, 0..=100.
    #[serde(default)]
    pub speed_mps: Option<f64>,
    /// When the device took the fix: at most 60 s ahead of the server, at most 24 h ago.
    pub recorded_at: DateTime<Utc>,
    /// The device's sequence number, strictly increasing within a batch and over time.
    pub seq: i64,
}

impl From<&FixInput> for RawFix {
    fn from(f: &FixInput) -> RawFix {
        RawFix {
            latitude: f.latitude,
            longitude: f.longitude,
            accuracy_m: f.accuracy_m,
            heading_deg: f.heading_deg,
            speed_mps: f.speed_mps,
            recorded_at: f.recorded_at,
            seq: f.seq,
        }
    }
}

/// `POST /api/v1/driver/location`: fixes a device buffered, oldest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LocationBatchRequest {
    /// The sending device (an install id; 1–128 visible ASCII characters). Sequence numbers are
    /// per device.
    pub device_id: String,
    /// 1–500 fixes, `seq` strictly increasing.
    pub fixes: Vec<FixInput>,
}

/// A checked batch.
#[derive(Clone, Debug, PartialEq)]
pub struct LocationBatch {
    /// The sending device.
    pub device_id: String,
    /// Plausible fixes in `seq` order.
    pub fixes: Vec<Fix>,
}

impl LocationBatchRequest {
    /// Checks the batch against `now` (the server's clock).
    ///
    /// # Errors
    /// Every field error, fixes named by index (`fixes[3].latitude`).
    pub fn parse(&self, now: DateTime<Utc>) -> Result<LocationBatch, FieldErrors> {
        let mut e = FieldErrors::default();
        let id = self.device_id.as_str();
        if id.is_empty() || id.len() > MAX_DEVICE_ID || !id.bytes().all(|b| b.is_ascii_graphic()) {
            e.push(
                "device_id",
                "invalid",
                "device_id must be 1 to 128 visible ASCII characters",
            );
        }
        let raws: Vec<RawFix> = self.fixes.iter().map(RawFix::from).collect();
        let fixes = match parse_batch(&raws, now) {
            Ok(fixes) => Some(fixes),
            Err(errors) => {
                for (index, error) in errors {
                    let field = match index {
                        Some(i) => format!("fixes[{i}].{}", error.field()),
                        None => error.field().to_owned(),
                    };
                    e.push(&field, error.code(), error.to_string());
                }
                None
            }
        };
        e.finish(|| {
            Some(LocationBatch {
                device_id: self.device_id.clone(),
                fixes: fixes?,
            })
        })
    }
}

/// `202 Accepted` for a batch: how many fixes were new and how many had been seen before (by
/// device and `seq`) and were ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LocationAccepted {
    /// New fixes, taken.
    pub accepted: u32,
    /// Fixes already received, ignored.
    pub duplicates: u32,
}

/// `GET /api/v1/admin/drivers/locations?near=lat,lon&k=10&max_distance_m=10000`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct NearbyDriversQuery {
    /// `latitude,longitude` of the point to search around.
    pub near: String,
    /// How many drivers, 1–100 (default 10).
    #[serde(default)]
    pub k: Option<u32>,
    /// How far to look in metres, 1–50,000 (default 10,000).
    #[serde(default)]
    pub max_distance_m: Option<u32>,
}

/// A checked nearest-drivers query.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NearbyDrivers {
    /// Degrees north.
    pub latitude: f64,
    /// Degrees east.
    pub longitude: f64,
    /// How many.
    pub k: usize,
    /// How far, metres.
    pub max_distance_m: u32,
}

impl NearbyDriversQuery {
    /// Parses the query.
    ///
    /// # Errors
    /// Every field error.
    pub fn parse(&self) -> Result<NearbyDrivers, FieldErrors> {
        let mut e = FieldErrors::default();
        let point = self
            .near
            .split_once(',')
            .and_then(|(lat, lon)| {
                Some((lat.trim().parse::<f64>().ok()?, lon.trim().parse().ok()?))
            })
            .and_then(|(lat, lon)| crate::value::Coordinates::parse(lat, lon).ok());
        if point.is_none() {
            e.push(
                "near",
                "invalid",
                "near must be latitude,longitude in degrees",
            );
        }
        let k = self.k.unwrap_or(10);
        if !(1..=MAX_NEAREST).contains(&k) {
            e.push("k", "out_of_range", "k must be between 1 and 100");
        }
        let max = self.max_distance_m.unwrap_or(DEFAULT_SEARCH_M);
        if !(1..=MAX_SEARCH_M).contains(&max) {
            e.push(
                "max_distance_m",
                "out_of_range",
                "max_distance_m must be between 1 and 50000",
            );
        }
        e.finish(|| {
            let point = point?;
            Some(NearbyDrivers {
                latitude: point.latitude,
                longitude: point.longitude,
                k: k as usize,
                max_distance_m: max,
            })
        })
    }
}

/// One driver near the point, by their latest known fix.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NearbyDriver {
    /// The driver's account.
    pub driver_id: Uuid,
    /// Great-circle distance from the point, whole metres.
    pub distance_m: u32,
    /// Latest position, degrees north.
    pub latitude: f64,
    /// Latest position, degrees east.
    pub longitude: f64,
    /// Its accuracy radius, metres.
    pub accuracy_m: f64,
    /// Direction of travel, degrees.
    pub heading_deg: Option<f64>,
    /// Ground speed, m/s.
    pub speed_mps: Option<f64>,
    /// When the device recorded it (last seen).
    pub last_seen_at: DateTime<Utc>,
    /// When the server received it.
    pub received_at: DateTime<Utc>,
    /// Whether the position is recent enough to show as live (see `location::is_live`).
    pub live: bool,
}

/// The nearest drivers, nearest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NearbyDriverList {
    /// Nearest first.
    pub drivers: Vec<NearbyDriver>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
    }

    fn fix(seq: i64, latitude: f64) -> FixInput {
        FixInput {
            latitude,
            longitude: 24.94,
            accuracy_m: 5.0,
            heading_deg: None,
            speed_mps: None,
            recorded_at: now() - chrono::Duration::seconds(30 - seq),
            seq,
        }
    }

    #[test]
    fn field_errors_name_the_fix() {
        let req = LocationBatchRequest {
            device_id: "phone 1".into(),
            fixes: vec![fix(1, 60.17), fix(2, 91.0), fix(3, 60.17), fix(3, 60.17)],
        };
        let errors = req.parse(now()).unwrap_err();
        let fields: Vec<(&str, &str)> = errors
            .0
            .iter()
            .map(|f| (f.field.as_str(), f.code.as_str()))
            .collect();
        assert_eq!(
            fields,
            [
                ("device_id", "invalid"),
                ("fixes[1].latitude", "out_of_range"),
                ("fixes[3].seq", "out_of_order"),
            ]
        );
        let ok = LocationBatchRequest {
            device_id: "phone-1".into(),
            fixes: vec![fix(1, 60.17), fix(2, 60.1701)],
        };
        assert_eq!(ok.parse(now()).unwrap().fixes.len(), 2);
        let empty = LocationBatchRequest {
            device_id: "phone-1".into(),
            fixes: vec![],
        };
        assert_eq!(empty.parse(now()).unwrap_err().0[0].field, "fixes");
    }

    #[test]
    fn nearby_query() {
        let q = |near: &str, k: Option<u32>, max: Option<u32>| NearbyDriversQuery {
            near: near.into(),
            k,
            max_distance_m: max,
        };
        let ok = q("60.17, 24.94", None, None).parse().unwrap();
        assert_eq!((ok.k, ok.max_distance_m), (10, DEFAULT_SEARCH_M));
        assert!(q("60.17", None, None).parse().is_err());
        assert!(q("95,24", None, None).parse().is_err());
        assert!(q("60,24", Some(0), None).parse().is_err());
        assert!(q("60,24", Some(101), None).parse().is_err());
        assert!(q("60,24", None, Some(50_001)).parse().is_err());
    }
}
