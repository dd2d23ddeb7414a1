//! Distance on the Earth's surface, and the delivery-radius rule.
//!
//! Distances are great-circle (haversine) distances on a sphere of the IUGG mean Earth radius,
//! computed by the `geo` crate and reported in whole metres, rounded to the nearest metre. That
//! is the precision the delivery rules work in (a radius, a fee per started kilometre), and an
//! integer travels unchanged between server, clients and the database.
//!
//! The module is named `distance`, not `geo`, so that `geo::` means the crate everywhere in
//! fleetfront-domain.
//!
//! Floating point is used here and only here: coordinates are floats by nature. Trigonometry can
//! differ in the last bit between platforms, so a distance can, very rarely, round to a metre
//! more on one platform than on another. Pricing therefore takes the distance as an input
//! (see [`crate::pricing::Fulfilment`]) and the quote records it; the server's re-quote at checkout
//! is the one that is charged, and a difference shows up as a price change, never silently.

use geo::{Distance, Haversine, Point};

use crate::value::{Coordinates, DeliveryRadius};

/// The great-circle distance between `a` and `b` in whole metres, rounded to the nearest metre.
///
/// [`Coordinates::parse`] only makes finite, in-range points, but the fields are public; a
/// point built by hand with a non-finite coordinate measures as [`u32::MAX`] metres away, so it
/// is never inside any radius.
pub fn metres_between(a: Coordinates, b: Coordinates) -> u32 {
    // geo points are (x, y) = (longitude, latitude).
    let from = Point::new(a.longitude, a.latitude);
    let to = Point::new(b.longitude, b.latitude);
    let metres = Haversine.distance(from, to).round();
    if metres.is_finite() && metres >= 0.0 {
        // Half the Earth's circumference is about 20 015 km, far below u32::MAX metres; the
        // `min` only makes the cast's range explicit.
        metres.min(f64::from(u32::MAX)) as u32
    } else {
        u32::MAX
    }
}

/// Whether `point` lies within `radius` of `store`. The boundary counts as inside: a point
/// exactly `radius` metres away (after rounding to whole metres) is within the radius.
pub fn within_radius(store: Coordinates, point: Coordinates, radius: DeliveryRadius) -> bool {
    metres_between(store, point) <= radius.metres()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(latitude: f64, longitude: f64) -> Coordinates {
        Coordinates::parse(latitude, longitude).expect("valid coordinates")
    }

    #[test]
    fn known_distances() {
        // Expected values are the haversine distance on a 6 371 008.8 m sphere.
        let cases = [
            // Sofia to Plovdiv (the example in geo's documentation): 132 433.099 m.
            ((42.698334, 23.319941), (42.136097, 24.742168), 132_433),
            // One degree of longitude on the equator: 111 195.08 m.
            ((0.0, 0.0), (0.0, 1.0), 111_195),
            // One degree of latitude along a meridian is the same arc.
            ((0.0, 0.0), (1.0, 0.0), 111_195),
            // The same point.
            ((60.1699, 24.9384), (60.1699, 24.9384), 0),
            // Pole to pole: half the circumference, 20 015 114.4 m.
            ((90.0, 0.0), (-90.0, 0.0), 20_015_114),
            // Across the antimeridian: 0.2 degrees of longitude on the equator, 22 239.0 m.
            ((0.0, 179.9), (0.0, -179.9), 22_239),
        ];
        for ((lat_a, lon_a), (lat_b, lon_b), expected) in cases {
            assert_eq!(
                metres_between(at(lat_a, lon_a), at(lat_b, lon_b)),
                expected,
                "({lat_a}, {lon_a}) to ({lat_b}, {lon_b})"
            );
        }
    }

    #[test]
    fn radius_boundary_is_inside() {
        let store = at(0.0, 0.0);
        // 0.009 degrees of longitude on the equator is 1 000.76 m, which rounds to 1 001 m.
        let point = at(0.0, 0.009);
        assert_eq!(metres_between(store, point), 1_001);
        let radius = |metres| DeliveryRadius::parse(metres).expect("valid radius");
        assert!(within_radius(store, point, radius(1_001)));
        assert!(!within_radius(store, point, radius(1_000)));
        assert!(within_radius(store, store, radius(100)));
    }

    #[test]
    fn realistic_city_delivery() {
        // Helsinki railway station to Kamppi: about 600 m.
        let store = at(60.1710, 24.9414);
        let customer = at(60.1690, 24.9320);
        let metres = metres_between(store, customer);
        assert!((500..700).contains(&metres), "{metres}");
        assert!(within_radius(
            store,
            customer,
            DeliveryRadius::parse(1_000).expect("valid")
        ));
        assert!(!within_radius(
            store,
            customer,
            DeliveryRadius::parse(500).expect("valid")
        ));
    }

    #[test]
    fn hand_built_invalid_point_is_never_inside() {
        let broken = Coordinates {
            latitude: f64::NAN,
            longitude: 0.0,
        };
        assert_eq!(metres_between(broken, at(0.0, 0.0)), u32::MAX);
        assert!(!within_radius(
            at(0.0, 0.0),
            broken,
            DeliveryRadius::parse(100_000).expect("valid")
        ));
    }

    fn coordinates() -> impl Strategy<Value = Coordinates> {
        (-90.0f64..=90.0, -180.0f64..=180.0).prop_map(|(lat, lon)| at(lat, lon))
    }

    proptest! {
        #[test]
        fn distance_is_symmetric_and_bounded(a in coordinates(), b in coordinates()) {
            let there = metres_between(a, b);
            prop_assert_eq!(there, metres_between(b, a));
            prop_assert!(there <= 20_015_115);
            prop_assert_eq!(metres_between(a, a), 0);
        }

        #[test]
        fn triangle_inequality_within_rounding(
            a in coordinates(),
            b in coordinates(),
            c in coordinates(),
        ) {
            let direct = u64::from(metres_between(a, c));
            let via = u64::from(metres_between(a, b)) + u64::from(metres_between(b, c));
            // Each rounding moves a distance by at most half a metre.
            prop_assert!(direct <= via + 2);
        }
    }
}
