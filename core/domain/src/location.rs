//! Drivers' GPS fixes: what a plausible fix is, how a batch from one device must be ordered,
//! when a position is still live, and a simple ETA.
//!
//! Phones buffer fixes while offline and send them in batches, each fix numbered by a
//! per-device sequence (`seq`) so a re-sent batch is recognised. A batch is judged as a whole:
//! one impossible fix refuses it, with every problem reported against its index.
//!
//! Impossible means: coordinates out of range or exactly (0, 0) (the "null island" a broken GPS
//! stack reports), an accuracy outside 0..=10,000 m, a heading outside 0..360°, a speed outside
//! 0..=100 m/s, a time more than 60 s ahead of the server's clock or more than 24 h behind it,
//! and, between consecutive fixes of one batch, a jump implying more than 100 m/s. That last
//! check subtracts both fixes' accuracy radii from the distance first: a GPS glitch of a few
//! hundred metres comes with a poor accuracy and passes, while a courier teleported across town
//! in a second does not. Such a batch is refused, not repaired: a refused batch (422) is final
//! for the client, which drops it, and a jump across batches (or devices) is not judged here at
//! all, because the gap between them is unknown.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use geo::{Distance, Haversine, Point};

/// Most fixes one batch may carry.
pub const MAX_BATCH: usize = 500;
/// Worst accuracy radius accepted, in metres.
pub const MAX_ACCURACY_M: f64 = 10_000.0;
/// Fastest speed accepted, reported or implied, in metres per second (360 km/h).
pub const MAX_SPEED_MPS: f64 = 100.0;
/// How far ahead of the server's clock a fix's time may be (phone clocks drift).
pub const MAX_FUTURE: Duration = Duration::seconds(60);
/// How old a fix may be when it arrives (a phone offline for most of a day).
pub const MAX_AGE: Duration = Duration::hours(24);
/// A position older than this (by the time it was recorded) is not shown as live.
pub const LIVE_FOR: Duration = Duration::seconds(60);

/// A fix as sent by a device, not yet checked.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RawFix {
    /// Degrees north, −90..=90.
    pub latitude: f64,
    /// Degrees east, −180..=180.
    pub longitude: f64,
    /// Radius of the 68% confidence circle, metres.
    pub accuracy_m: f64,
    /// Direction of travel, degrees clockwise from true north, 0..360.
    pub heading_deg: Option<f64>,
    /// Ground speed, metres per second.
    pub speed_mps: Option<f64>,
    /// When the device took the fix.
    pub recorded_at: DateTime<Utc>,
    /// The device's sequence number of this fix.
    pub seq: i64,
}

/// A plausible fix. Only [`Fix::parse`] and [`parse_batch`] make one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fix {
    raw: RawFix,
}

/// Why a fix (or a batch) was refused. Each names the field it is about.
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
pub enum FixError {
    /// The latitude is not a number in −90..=90.
    #[error("latitude must be between -90 and 90")]
    Latitude,
    /// The longitude is not a number in −180..=180.
    #[error("longitude must be between -180 and 180")]
    Longitude,
    /// Exactly (0, 0): a GPS stack's placeholder, not a place a courier is.
    #[error("0,0 is not a real position")]
    NullIsland,
    /// The accuracy is not in 0..=10,000 m.
    #[error("accuracy must be between 0 and 10000 metres")]
    Accuracy,
    /// The heading is not in 0..360.
    #[error("heading must be at least 0 and below 360 degrees")]
    Heading,
    /// The speed is not in 0..=100 m/s.
    #[error("speed must be between 0 and 100 m/s")]
    Speed,
    /// Recorded more than [`MAX_FUTURE`] ahead of now.
    #[error("recorded_at is in the future")]
    Future,
    /// Recorded more than [`MAX_AGE`] ago.
    #[error("recorded_at is more than 24 hours ago")]
    TooOld,
    /// The sequence number is negative.
    #[error("seq must not be negative")]
    NegativeSeq,
    /// The sequence number is not above the previous fix's in the batch.
    #[error("seq must increase within a batch")]
    SeqNotIncreasing,
    /// Recorded before the previous fix of the batch.
    #[error("recorded_at must not go back within a batch")]
    TimeGoesBack,
    /// Reaching this fix from the previous one needs more than [`MAX_SPEED_MPS`].
    #[error("this fix is implausibly far from the previous one")]
    Jump,
    /// The batch has no fixes.
    #[error("a batch needs at least one fix")]
    EmptyBatch,
    /// The batch has more than [`MAX_BATCH`] fixes.
    #[error("a batch holds at most 500 fixes")]
    BatchTooLarge,
}

impl FixError {
    /// The field the error is about (within a fix, or `fixes` for the batch).
    pub fn field(self) -> &'static str {
        match self {
            Self::Latitude | Self::NullIsland => "latitude",
            Self::Longitude => "longitude",
            Self::Accuracy => "accuracy_m",
            Self::Heading => "heading_deg",
            Self::Speed => "speed_mps",
            Self::Future | Self::TooOld | Self::TimeGoesBack => "recorded_at",
            Self::NegativeSeq | Self::SeqNotIncreasing => "seq",
            Self::Jump => "latitude",
            Self::EmptyBatch | Self::BatchTooLarge => "fixes",
        }
    }

    /// A stable code for the rule broken.
    pub fn code(self) -> &'static str {
        match self {
            Self::Latitude
            | Self::Longitude
            | Self::Accuracy
            | Self::Heading
            | Self::Speed
            | Self::NegativeSeq => "out_of_range",
            Self::NullIsland => "null_island",
            Self::Future => "in_future",
            Self::TooOld => "too_old",
            Self::SeqNotIncreasing | Self::TimeGoesBack => "out_of_order",
            Self::Jump => "implausible_jump",
            Self::EmptyBatch => "required",
            Self::BatchTooLarge => "too_many",
        }
    }
}

fn in_range(value: f64, min: f64, max: f64) -> bool {
    value.is_finite() && value >= min && value <= max
}

impl Fix {
    /// Checks one fix on its own against `now` (the server's clock).
    ///
    /// # Errors
    /// Every rule the fix breaks, in field order.
    pub fn parse(raw: RawFix, now: DateTime<Utc>) -> Result<Fix, Vec<FixError>> {
        let mut errors = Vec::new();
        let lat_ok = in_range(raw.latitude, -90.0, 90.0);
        let lon_ok = in_range(raw.longitude, -180.0, 180.0);
        if !lat_ok {
            errors.push(FixError::Latitude);
        }
        if !lon_ok {
            errors.push(FixError::Longitude);
        }
        if lat_ok && lon_ok && raw.latitude == 0.0 && raw.longitude == 0.0 {
            errors.push(FixError::NullIsland);
        }
        if !in_range(raw.accuracy_m, 0.0, MAX_ACCURACY_M) {
            errors.push(FixError::Accuracy);
        }
        if raw
            .heading_deg
            .is_some_and(|h| !(h.is_finite() && (0.0..360.0).contains(&h)))
        {
            errors.push(FixError::Heading);
        }
        if raw
            .speed_mps
            .is_some_and(|s| !in_range(s, 0.0, MAX_SPEED_MPS))
        {
            errors.push(FixError::Speed);
        }
        if raw.recorded_at > now + MAX_FUTURE {
            errors.push(FixError::Future);
        } else if raw.recorded_at < now - MAX_AGE {
            errors.push(FixError::TooOld);
        }
        if raw.seq < 0 {
            errors.push(FixError::NegativeSeq);
        }
        if errors.is_empty() {
            // Kept to the microsecond, the precision it is stored with, so a fix read back
            // from the database equals the one accepted.
            let raw = RawFix {
                recorded_at: raw.recorded_at.trunc_subsecs(6),
                ..raw
            };
            Ok(Fix { raw })
        } else {
            Err(errors)
        }
    }

    /// Degrees north.
    pub fn latitude(&self) -> f64 {
        self.raw.latitude
    }
    /// Degrees east.
    pub fn longitude(&self) -> f64 {
        self.raw.longitude
    }
    /// Accuracy radius, metres.
    pub fn accuracy_m(&self) -> f64 {
        self.raw.accuracy_m
    }
    /// Direction of travel, degrees.
    pub fn heading_deg(&self) -> Option<f64> {
        self.raw.heading_deg
    }
    /// Ground speed, m/s.
    pub fn speed_mps(&self) -> Option<f64> {
        self.raw.speed_mps
    }
    /// When the device took it.
    pub fn recorded_at(&self) -> DateTime<Utc> {
        self.raw.recorded_at
    }
    /// The device's sequence number.
    pub fn seq(&self) -> i64 {
        self.raw.seq
    }
    /// The fix as sent.
    pub fn raw(&self) -> RawFix {
        self.raw
    }

    /// Great-circle distance to a point, in metres (not rounded).
    pub fn metres_to(&self, latitude: f64, longitude: f64) -> f64 {
        haversine_m(self.raw.latitude, self.raw.longitude, latitude, longitude)
    }
}

/// Great-circle (haversine) distance between two points in degrees, in metres.
pub fn haversine_m(lat_a: f64, lon_a: f64, lat_b: f64, lon_b: f64) -> f64 {
    // geo points are (x, y) = (longitude, latitude).
    Haversine.distance(Point::new(lon_a, lat_a), Point::new(lon_b, lat_b))
}

/// The speed that reaching `next` from `prev` implies, in m/s, after giving both fixes the
/// benefit of their accuracy radii. Simultaneous fixes farther apart than that are infinitely
/// fast.
pub fn implied_speed_mps(prev: &Fix, next: &Fix) -> f64 {
    let metres = prev.metres_to(next.latitude(), next.longitude());
    let slack = prev.accuracy_m() + next.accuracy_m();
    let beyond = (metres - slack).max(0.0);
    let secs = (next.recorded_at() - prev.recorded_at()).num_milliseconds() as f64 / 1000.0;
    if beyond == 0.0 {
        0.0
    } else if secs <= 0.0 {
        f64::INFINITY
    } else {
        beyond / secs
    }
}

/// Checks a device's batch against `now`: its size, each fix, and that consecutive fixes
/// increase in `seq`, do not go back in time and imply no more than [`MAX_SPEED_MPS`].
///
/// # Errors
/// Every problem as `(index, error)`; `None` as the index for the batch itself.
pub fn parse_batch(
    raws: &[RawFix],
    now: DateTime<Utc>,
) -> Result<Vec<Fix>, Vec<(Option<usize>, FixError)>> {
    if raws.is_empty() {
        return Err(vec![(None, FixError::EmptyBatch)]);
    }
    if raws.len() > MAX_BATCH {
        return Err(vec![(None, FixError::BatchTooLarge)]);
    }
    let mut errors = Vec::new();
    let mut fixes = Vec::with_capacity(raws.len());
    let mut prev: Option<Fix> = None;
    for (i, raw) in raws.iter().enumerate() {
        match Fix::parse(*raw, now) {
            Ok(fix) => {
                if let Some(prev) = prev {
                    if fix.seq() <= prev.seq() {
                        errors.push((Some(i), FixError::SeqNotIncreasing));
                    }
                    if fix.recorded_at() < prev.recorded_at() {
                        errors.push((Some(i), FixError::TimeGoesBack));
                    } else if implied_speed_mps(&prev, &fix) > MAX_SPEED_MPS {
                        errors.push((Some(i), FixError::Jump));
                    }
                }
                prev = Some(fix);
                fixes.push(fix);
            }
            Err(fix_errors) => {
                errors.extend(fix_errors.into_iter().map(|e| (Some(i), e)));
                // The order rules compare neighbours that are both plausible; an invalid fix
                // breaks the chain rather than reporting its neighbour too.
                prev = None;
            }
        }
    }
    if errors.is_empty() {
        Ok(fixes)
    } else {
        Err(errors)
    }
}

/// Whether a position recorded at `last_seen` may be shown as live at `now`: it is at most
/// [`LIVE_FOR`] old. A stale position is shown as last seen, never as where the courier is.
pub fn is_live(last_seen: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now - last_seen <= LIVE_FOR
}

/// Typical door-to-door speeds in a city, for ETAs (the reported instantaneous speed of a
/// courier waiting at a light says little about the next kilometres).
///
/// These are averages over a whole urban trip, stops, lights and parking included, not
/// cruising speeds: a city bicycle courier averages about 14 km/h; a moped, scooter or
/// motorcycle about 25 km/h (it filters through traffic and parks at the door); a car about
/// 22 km/h once the search for a place to stop is counted, and a van about 18 km/h (slower
/// through narrow streets, longer to park and unload). They are planning figures, not
/// measurements of this platform's couriers; observed trip times should replace them once
/// deliveries record enough of them.
pub mod typical_speed {
    use crate::driver::VehicleType;

    /// On foot, m/s.
    pub const WALKING_MPS: f64 = 1.4;
    /// Bicycle, m/s (about 14 km/h).
    pub const BICYCLE_MPS: f64 = 4.0;
    /// Scooter, moped or motorcycle, m/s (about 25 km/h).
    pub const MOTORBIKE_MPS: f64 = 7.0;
    /// Car, m/s (about 22 km/h with parking).
    pub const CAR_MPS: f64 = 6.0;
    /// Van, m/s (about 18 km/h with parking and unloading).
    pub const VAN_MPS: f64 = 5.0;
    /// A courier whose vehicle the estimate does not know: the bicycle's speed, so an ETA
    /// errs towards arriving early rather than late.
    pub const COURIER_MPS: f64 = BICYCLE_MPS;

    /// The typical speed of a courier on `vehicle`; [`COURIER_MPS`] when it is not known.
    pub fn of(vehicle: Option<VehicleType>) -> f64 {
        match vehicle {
            Some(VehicleType::Bicycle) => BICYCLE_MPS,
            Some(VehicleType::Scooter | VehicleType::Motorcycle) => MOTORBIKE_MPS,
            Some(VehicleType::Car) => CAR_MPS,
            Some(VehicleType::Van) => VAN_MPS,
            None => COURIER_MPS,
        }
    }
}

/// Estimated seconds to cover `distance_m` at `speed_mps` (a vehicle's typical speed, see
/// [`typical_speed`]), rounded up; `None` for a speed that is not positive and finite.
pub fn eta_secs(distance_m: u32, speed_mps: f64) -> Option<u32> {
    if !(speed_mps.is_finite() && speed_mps > 0.0) {
        return None;
    }
    let secs = (f64::from(distance_m) / speed_mps).ceil();
    // At 0.01 m/s the farthest point on Earth is ~2e9 s, still below u32::MAX.
    Some(secs.min(f64::from(u32::MAX)) as u32)
}

/// Estimated seconds for a courier at `from` to pass through `stops` in order (the store, then
/// the drop-off; or only the drop-off once picked up) at `speed_mps`, along great circles.
pub fn route_eta_secs(
    from: crate::value::Coordinates,
    stops: &[crate::value::Coordinates],
    speed_mps: f64,
) -> Option<u32> {
    let mut metres: u64 = 0;
    let mut at = from;
    for &stop in stops {
        metres += u64::from(crate::distance::metres_between(at, stop));
        at = stop;
    }
    eta_secs(u32::try_from(metres).unwrap_or(u32::MAX), speed_mps)
}

/// A courier on a delivery, as a customer's tracking sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CourierTrip {
    /// The courier's latest position.
    pub from: crate::value::Coordinates,
    /// Whether that position is live ([`is_live`]).
    pub live: bool,
    /// The store, where the order is picked up.
    pub store: crate::value::Coordinates,
    /// Where it is delivered.
    pub drop_off: crate::value::Coordinates,
    /// Whether the order was picked up already (the store is behind the courier).
    pub picked_up: bool,
    /// The courier's vehicle, when the profile names one.
    pub vehicle: Option<crate::driver::VehicleType>,
}

/// The ETA a customer sees: from the courier's position through the store (until the order is
/// picked up) to the drop-off, at the typical city speed of the courier's vehicle
/// ([`typical_speed::of`]; [`typical_speed::COURIER_MPS`] for an unknown one); `None` from a
/// position that is not live (see [`is_live`]: a stale position says where the courier was,
/// not where it is).
pub fn courier_eta_secs(trip: &CourierTrip) -> Option<u32> {
    if !trip.live {
        return None;
    }
    let stops: &[crate::value::Coordinates] = if trip.picked_up {
        &[trip.drop_off]
    } else {
        &[trip.store, trip.drop_off]
    };
    route_eta_secs(trip.from, stops, typical_speed::of(trip.vehicle))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
    }

    #[test]
    fn a_route_eta_adds_its_legs() {
        use crate::value::Coordinates;
        let at = |latitude, longitude| Coordinates {
            latitude,
            longitude,
        };
        let (courier, store, home) = (at(60.17, 24.94), at(60.18, 24.94), at(60.19, 24.94));
        let legs = crate::distance::metres_between(courier, store)
            + crate::distance::metres_between(store, home);
        assert_eq!(
            route_eta_secs(courier, &[store, home], 4.0),
            eta_secs(legs, 4.0)
        );
        assert!(route_eta_secs(courier, &[store, home], 4.0) > route_eta_secs(store, &[home], 4.0));
        assert_eq!(route_eta_secs(courier, &[], 4.0), Some(0));
        let trip = CourierTrip {
            from: courier,
            live: true,
            store,
            drop_off: home,
            picked_up: false,
            vehicle: None,
        };
        let speed = typical_speed::COURIER_MPS;
        assert_eq!(
            courier_eta_secs(&trip),
            route_eta_secs(courier, &[store, home], speed)
        );
        let picked_up = CourierTrip {
            picked_up: true,
            ..trip
        };
        assert_eq!(
            courier_eta_secs(&picked_up),
            route_eta_secs(courier, &[home], speed)
        );
        let stale = CourierTrip {
            live: false,
            ..trip
        };
        assert_eq!(courier_eta_secs(&stale), None);
        assert_eq!(route_eta_secs(courier, &[home], 0.0), None);
    }

    #[test]
    fn the_eta_goes_at_the_couriers_vehicle_speed() {
        use crate::driver::VehicleType;
        use crate::value::Coordinates;
        let at = |latitude, longitude| Coordinates {
            latitude,
            longitude,
        };
        let trip = |vehicle| CourierTrip {
            from: at(60.17, 24.94),
            live: true,
            store: at(60.18, 24.94),
            drop_off: at(60.19, 24.94),
            picked_up: false,
            vehicle,
        };
        let cases = [
            (Some(VehicleType::Bicycle), typical_speed::BICYCLE_MPS),
            (Some(VehicleType::Scooter), typical_speed::MOTORBIKE_MPS),
            (Some(VehicleType::Motorcycle), typical_speed::MOTORBIKE_MPS),
            (Some(VehicleType::Car), typical_speed::CAR_MPS),
            (Some(VehicleType::Van), typical_speed::VAN_MPS),
            (None, typical_speed::COURIER_MPS),
        ];
        for (vehicle, speed) in cases {
            assert_eq!(typical_speed::of(vehicle), speed, "{vehicle:?}");
            assert_eq!(
                courier_eta_secs(&trip(vehicle)),
                route_eta_secs(
                    at(60.17, 24.94),
                    &[at(60.18, 24.94), at(60.19, 24.94)],
                    speed
                ),
                "{vehicle:?}"
            );
        }
        // Every vehicle has a plausible city speed, none slower than walking, and an unknown
        // vehicle never promises an earlier arrival than a known one would.
        for vehicle in VehicleType::ALL {
            let speed = typical_speed::of(Some(vehicle));
            assert!(
                speed > typical_speed::WALKING_MPS && speed < 15.0,
                "{vehicle:?}"
            );
            assert!(typical_speed::of(None) <= speed, "{vehicle:?}");
        }
        // A scooter is there sooner than a bicycle over the same route.
        assert!(
            courier_eta_secs(&trip(Some(VehicleType::Scooter)))
                < courier_eta_secs(&trip(Some(VehicleType::Bicycle)))
        );
    }

    fn raw(seq: i64, secs: i64, latitude: f64, longitude: f64) -> RawFix {
        RawFix {
            latitude,
            longitude,
            accuracy_m: 5.0,
            heading_deg: Some(90.0),
            speed_mps: Some(8.0),
            recorded_at: now() - Duration::hours(1) + Duration::seconds(secs),
            seq,
        }
    }

    #[test]
    fn single_fix_rules() {
        let ok = raw(1, 0, 60.17, 24.94);
        assert!(Fix::parse(ok, now()).is_ok());
        let cases: Vec<(RawFix, FixError)> = vec![
            (
                RawFix {
                    latitude: 90.5,
                    ..ok
                },
                FixError::Latitude,
            ),
            (
                RawFix {
                    latitude: f64::NAN,
                    ..ok
                },
                FixError::Latitude,
            ),
            (
                RawFix {
                    longitude: -180.1,
                    ..ok
                },
                FixError::Longitude,
            ),
            (
                RawFix {
                    latitude: 0.0,
                    longitude: 0.0,
                    ..ok
                },
                FixError::NullIsland,
            ),
            (
                RawFix {
                    accuracy_m: -1.0,
                    ..ok
                },
                FixError::Accuracy,
            ),
            (
                RawFix {
                    accuracy_m: 10_000.5,
                    ..ok
                },
                FixError::Accuracy,
            ),
            (
                RawFix {
                    heading_deg: Some(360.0),
                    ..ok
                },
                FixError::Heading,
            ),
            (
                RawFix {
                    heading_deg: Some(-0.5),
                    ..ok
                },
                FixError::Heading,
            ),
            (
                RawFix {
                    speed_mps: Some(100.5),
                    ..ok
                },
                FixError::Speed,
            ),
            (
                RawFix {
                    speed_mps: Some(f64::INFINITY),
                    ..ok
                },
                FixError::Speed,
            ),
            (
                RawFix {
                    recorded_at: now() + Duration::seconds(61),
                    ..ok
                },
                FixError::Future,
            ),
            (
                RawFix {
                    recorded_at: now() - Duration::hours(25),
                    ..ok
                },
                FixError::TooOld,
            ),
            (RawFix { seq: -1, ..ok }, FixError::NegativeSeq),
        ];
        for (fix, expected) in cases {
            assert_eq!(Fix::parse(fix, now()), Err(vec![expected]), "{fix:?}");
        }
        // Edges are inside.
        let edges = [
            RawFix {
                latitude: 90.0,
                longitude: 180.0,
                ..ok
            },
            RawFix {
                latitude: 0.0,
                longitude: 0.5,
                ..ok
            },
            RawFix {
                accuracy_m: 10_000.0,
                heading_deg: Some(0.0),
                speed_mps: Some(100.0),
                ..ok
            },
            RawFix {
                heading_deg: None,
                speed_mps: None,
                ..ok
            },
            RawFix {
                recorded_at: now() + Duration::seconds(60),
                ..ok
            },
            RawFix {
                recorded_at: now() - Duration::hours(24),
                ..ok
            },
        ];
        for fix in edges {
            assert!(Fix::parse(fix, now()).is_ok(), "{fix:?}");
        }
    }

    #[test]
    fn batch_rules() {
        assert_eq!(
            parse_batch(&[], now()),
            Err(vec![(None, FixError::EmptyBatch)])
        );
        let many: Vec<RawFix> = (0..=500).map(|i| raw(i, i, 60.17, 24.94)).collect();
        assert_eq!(
            parse_batch(&many, now()),
            Err(vec![(None, FixError::BatchTooLarge)])
        );
        assert_eq!(parse_batch(&many[..500], now()).map(|f| f.len()), Ok(500));

        let batch = [raw(5, 0, 60.17, 24.94), raw(5, 1, 60.17, 24.94)];
        assert_eq!(
            parse_batch(&batch, now()),
            Err(vec![(Some(1), FixError::SeqNotIncreasing)])
        );
        let batch = [raw(5, 10, 60.17, 24.94), raw(6, 9, 60.17, 24.94)];
        assert_eq!(
            parse_batch(&batch, now()),
            Err(vec![(Some(1), FixError::TimeGoesBack)])
        );
        // Every invalid fix is reported with its index.
        let batch = [
            raw(1, 0, 95.0, 24.94),
            raw(2, 1, 60.17, 24.94),
            raw(3, 2, 0.0, 0.0),
        ];
        assert_eq!(
            parse_batch(&batch, now()),
            Err(vec![
                (Some(0), FixError::Latitude),
                (Some(2), FixError::NullIsland)
            ])
        );
    }

    #[test]
    fn jumps_beyond_accuracy_are_refused() {
        // ~1.1 km north in 10 s: 111 m/s.
        let batch = [raw(1, 0, 60.17, 24.94), raw(2, 10, 60.18, 24.94)];
        assert_eq!(
            parse_batch(&batch, now()),
            Err(vec![(Some(1), FixError::Jump)])
        );
        // The same distance in 20 s is a fast scooter.
        let batch = [raw(1, 0, 60.17, 24.94), raw(2, 20, 60.18, 24.94)];
        assert!(parse_batch(&batch, now()).is_ok());
        // A glitch within the fixes' accuracy is not a jump, even at the same instant.
        let mut glitch = raw(2, 0, 60.171, 24.94);
        glitch.accuracy_m = 150.0;
        assert!(parse_batch(&[raw(1, 0, 60.17, 24.94), glitch], now()).is_ok());
        glitch.accuracy_m = 50.0;
        assert_eq!(
            parse_batch(&[raw(1, 0, 60.17, 24.94), glitch], now()),
            Err(vec![(Some(1), FixError::Jump)])
        );
    }

    #[test]
    fn liveness_and_eta() {
        assert!(is_live(now() - Duration::seconds(60), now()));
        assert!(!is_live(now() - Duration::seconds(61), now()));
        assert!(is_live(now() + Duration::seconds(30), now()));
        assert_eq!(eta_secs(1_000, typical_speed::BICYCLE_MPS), Some(250));
        assert_eq!(eta_secs(1_001, 4.0), Some(251));
        assert_eq!(eta_secs(0, 4.0), Some(0));
        assert_eq!(eta_secs(1_000, 0.0), None);
        assert_eq!(eta_secs(1_000, f64::NAN), None);
    }

    #[test]
    fn field_names_and_codes() {
        assert_eq!(FixError::NullIsland.field(), "latitude");
        assert_eq!(FixError::Jump.code(), "implausible_jump");
        assert_eq!(FixError::BatchTooLarge.field(), "fixes");
    }

    proptest! {
        #[test]
        fn in_range_fixes_parse(
            lat in -90.0f64..=90.0,
            lon in 0.001f64..=180.0,
            acc in 0.0f64..=10_000.0,
            heading in proptest::option::of(0.0f64..359.999),
            speed in proptest::option::of(0.0f64..=100.0),
            age in -60i64..=86_400,
            seq in 0i64..i64::MAX,
        ) {
            let fix = RawFix {
                latitude: lat, longitude: lon, accuracy_m: acc, heading_deg: heading,
                speed_mps: speed, recorded_at: now() - Duration::seconds(age), seq,
            };
            let parsed = Fix::parse(fix, now()).expect("in range");
            prop_assert_eq!(parsed.raw(), fix);
        }

        #[test]
        fn accepted_batches_are_ordered_and_plausible(
            steps in proptest::collection::vec((1i64..5, 0i64..30, -0.01f64..0.01, -0.01f64..0.01), 1..40),
        ) {
            let mut raws = Vec::new();
            let (mut seq, mut secs, mut lat, mut lon) = (0, 0, 60.0, 25.0);
            for (dseq, dsecs, dlat, dlon) in steps {
                seq += dseq;
                secs += dsecs;
                lat += dlat;
                lon += dlon;
                raws.push(raw(seq, secs, lat, lon));
            }
            if let Ok(fixes) = parse_batch(&raws, now()) {
                for pair in fixes.windows(2) {
                    prop_assert!(pair[0].seq() < pair[1].seq());
                    prop_assert!(implied_speed_mps(&pair[0], &pair[1]) <= MAX_SPEED_MPS);
                }
            } else {
                // Refused only for a jump: everything else in these batches is in range.
                let errors = parse_batch(&raws, now()).unwrap_err();
                prop_assert!(errors.iter().all(|(_, e)| *e == FixError::Jump));
            }
        }
    }
}
