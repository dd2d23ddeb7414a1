//! Reviews: who may review an order and when, what a rating is, and how a review must fit the
//! order it is about. Pure rules; the server stores reviews and keeps the products' rating
//! totals, the storefront shows [`RatingSummary`].
//!
//! A customer reviews an order once, after it is complete (delivered, or picked up for a pickup
//! order; a refund afterwards does not take that right away). The review rates the order as a
//! whole (overall, and optionally the food and the delivery — never the delivery of a pickup
//! order) and may rate the products the order contained, each once; those product ratings are
//! verified purchases.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

use crate::order::{FulfilmentKind, OrderState, OrderStatus};

/// Most characters of a review's text, or of a business's reply.
pub const MAX_REVIEW_TEXT_CHARS: usize = 2000;

/// A star rating, 1 to 5.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct Rating(u8);

impl Rating {
    /// The fewest stars.
    pub const MIN: i64 = 1;
    /// The most stars.
    pub const MAX: i64 = 5;

    /// A rating of `stars`.
    ///
    /// # Errors
    /// [`ReviewError::RatingOutOfRange`] outside 1–5.
    pub fn new(stars: i64) -> Result<Self, ReviewError> {
        if (Self::MIN..=Self::MAX).contains(&stars) {
            Ok(Self(
                u8::try_from(stars).map_err(|_| ReviewError::RatingOutOfRange(stars))?,
            ))
        } else {
            Err(ReviewError::RatingOutOfRange(stars))
        }
    }

    /// The stars.
    pub fn stars(self) -> i64 {
        i64::from(self.0)
    }
}

impl TryFrom<i64> for Rating {
    type Error = ReviewError;
    fn try_from(value: i64) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<Rating> for i64 {
    fn from(value: Rating) -> Self {
        value.stars()
    }
}

/// The text of a review or of a reply: trimmed, 1 to [`MAX_REVIEW_TEXT_CHARS`] characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReviewText(String);

impl ReviewText {
    /// Parses optional text: blank is no text.
    ///
    /// # Errors
    /// [`ReviewError::TextTooLong`].
    pub fn parse(raw: &str) -> Result<Option<Self>, ReviewError> {
        let text = raw.trim();
        let chars = text.chars().count();
        if chars > MAX_REVIEW_TEXT_CHARS {
            return Err(ReviewError::TextTooLong { chars });
        }
        Ok((!text.is_empty()).then(|| Self(text.to_owned())))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The order part of a review.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderRatings {
    /// The order as a whole.
    pub overall: Rating,
    /// The food.
    pub food_quality: Option<Rating>,
    /// The delivery (delivery orders only).
    pub delivery: Option<Rating>,
    /// Words.
    pub text: Option<ReviewText>,
}

/// One product of the order, rated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProductRating {
    /// The product.
    pub product: Uuid,
    /// Its rating.
    pub rating: Rating,
    /// Words.
    pub text: Option<ReviewText>,
}

/// A whole review, as parsed from a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReviewDraft {
    /// The order's ratings.
    pub order: OrderRatings,
    /// Ratings of products of the order, each product at most once.
    pub products: Vec<ProductRating>,
}

/// What a review must fit: the order's fulfilment and the products it contained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReviewedOrder {
    /// Pickup or delivery.
    pub fulfilment: FulfilmentKind,
    /// The products of its lines.
    pub products: BTreeSet<Uuid>,
}

/// Why a review is refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ReviewError {
    /// A rating outside 1–5.
    #[error("a rating is 1 to 5 stars, not {0}")]
    RatingOutOfRange(i64),
    /// Text over the limit.
    #[error("the text has {chars} characters; at most {MAX_REVIEW_TEXT_CHARS} are allowed")]
    TextTooLong {
        /// Its length.
        chars: usize,
    },
    /// The order is not complete.
    #[error("an order that is {0} cannot be reviewed yet")]
    NotComplete(OrderStatus),
    /// A delivery rating for an order nobody delivered.
    #[error("a pickup order has no delivery to rate")]
    NoDelivery,
    /// A product the order did not contain.
    #[error("the order did not contain this product")]
    NotInOrder,
    /// The same product rated twice in one review.
    #[error("this product is rated twice")]
    DuplicateProduct,
}

impl ReviewError {
    /// A stable rule code for field errors.
    pub fn code(&self) -> &'static str {
        match self {
            Self::RatingOutOfRange(_) => "out_of_range",
            Self::TextTooLong { .. } => "too_long",
            Self::NotComplete(_) => "order_not_complete",
            Self::NoDelivery => "not_applicable",
            Self::NotInOrder => "not_in_order",
            Self::DuplicateProduct => "duplicate",
        }
    }
}

/// Whether an order may be reviewed now: once it is complete, and still after a refund (which
/// only ever follows completion, and is exactly when a customer has something to say).
///
/// # Errors
/// [`ReviewError::NotComplete`].
pub fn may_review(order: &OrderState) -> Result<(), ReviewError> {
    if order.is_complete() || order.status == OrderStatus::Refunded {
        Ok(())
    } else {
        Err(ReviewError::NotComplete(order.status))
    }
}

/// Checks a draft against the order it reviews; returns every misfit with the index of the
/// product rating it concerns (`None` for the order's own ratings).
///
/// # Errors
/// Every [`ReviewError::NoDelivery`], [`ReviewError::NotInOrder`] and
/// [`ReviewError::DuplicateProduct`], in request order.
pub fn fit(
    draft: &ReviewDraft,
    order: &ReviewedOrder,
) -> Result<(), Vec<(Option<usize>, ReviewError)>> {
    let mut errors = Vec::new();
    if order.fulfilment == FulfilmentKind::Pickup && draft.order.delivery.is_some() {
        errors.push((None, ReviewError::NoDelivery));
    }
    let mut seen = BTreeSet::new();
    for (i, p) in draft.products.iter().enumerate() {
        if !order.products.contains(&p.product) {
            errors.push((Some(i), ReviewError::NotInOrder));
        } else if !seen.insert(p.product) {
            errors.push((Some(i), ReviewError::DuplicateProduct));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// A product's approved ratings, summed: what listings show without aggregating per request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RatingSummary {
    /// How many approved ratings.
    pub count: i64,
    /// Their stars, summed.
    pub sum: i64,
    /// The average in tenths of a star (45 = 4.5 stars), rounded half away from zero; absent
    /// without ratings. Integer, so every client shows the same number.
    pub average_tenths: Option<i64>,
}

impl RatingSummary {
    /// The summary of `count` ratings whose stars add up to `sum`.
    pub fn new(count: i64, sum: i64) -> Self {
        let average_tenths = (count > 0).then(|| {
            // Half away from zero, in integers (every value here is positive).
            let (count, sum) = (i128::from(count), i128::from(sum));
            i64::try_from((sum * 20 + count) / (2 * count)).unwrap_or(i64::MAX)
        });
        Self {
            count,
            sum,
            average_tenths,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::order::PaymentState;

    fn state(status: OrderStatus, fulfilment: FulfilmentKind) -> OrderState {
        OrderState {
            status,
            fulfilment,
            payment: PaymentState::Captured,
            acceptance_deadline: Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap(),
        }
    }

    #[test]
    fn ratings_are_one_to_five_stars() {
        for stars in 1..=5 {
            assert_eq!(Rating::new(stars).map(Rating::stars), Ok(stars));
        }
        for bad in [0, 6, -1, i64::MIN, i64::MAX] {
            assert_eq!(Rating::new(bad), Err(ReviewError::RatingOutOfRange(bad)));
        }
        assert!(serde_json::from_str::<Rating>("6").is_err());
        assert_eq!(serde_json::to_string(&Rating(4)).unwrap(), "4");
    }

    #[test]
    fn text_is_trimmed_blank_is_none_and_long_is_refused() {
        assert_eq!(ReviewText::parse("  ").unwrap(), None);
        assert_eq!(
            ReviewText::parse(" good ").unwrap().unwrap().as_str(),
            "good"
        );
        let max = "é".repeat(MAX_REVIEW_TEXT_CHARS);
        assert!(ReviewText::parse(&max).is_ok(), "characters, not bytes");
        assert_eq!(
            ReviewText::parse(&format!("{max}x")),
            Err(ReviewError::TextTooLong {
                chars: MAX_REVIEW_TEXT_CHARS + 1
            })
        );
    }

    #[test]
    fn only_completed_orders_may_be_reviewed() {
        use FulfilmentKind::{Delivery, Pickup};
        use OrderStatus as S;
        let cases = [
            (S::Pending, Pickup, false),
            (S::Confirmed, Delivery, false),
            (S::Preparing, Pickup, false),
            (S::Ready, Pickup, false),
            (S::PickedUp, Pickup, true),
            (S::PickedUp, Delivery, false),
            (S::Delivered, Delivery, true),
            (S::Rejected, Delivery, false),
            (S::Cancelled, Pickup, false),
            (S::Refunded, Delivery, true),
        ];
        for (status, fulfilment, ok) in cases {
            assert_eq!(
                may_review(&state(status, fulfilment)).is_ok(),
                ok,
                "{status:?} {fulfilment:?}"
            );
        }
        assert_eq!(
            may_review(&state(S::Ready, Pickup)),
            Err(ReviewError::NotComplete(S::Ready))
        );
    }

    #[test]
    fn a_review_fits_its_order() {
        let (a, b, c) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        let five = Rating::new(5).unwrap();
        let product = |id| ProductRating {
            product: id,
            rating: five,
            text: None,
        };
        let draft = ReviewDraft {
            order: OrderRatings {
                overall: five,
                food_quality: Some(five),
                delivery: Some(five),
                text: None,
            },
            products: vec![product(a), product(c), product(a)],
        };
        let order = |fulfilment| ReviewedOrder {
            fulfilment,
            products: BTreeSet::from([a, b]),
        };
        assert_eq!(
            fit(&draft, &order(FulfilmentKind::Pickup)),
            Err(vec![
                (None, ReviewError::NoDelivery),
                (Some(1), ReviewError::NotInOrder),
                (Some(2), ReviewError::DuplicateProduct),
            ])
        );
        let good = ReviewDraft {
            products: vec![product(a), product(b)],
            ..draft
        };
        assert_eq!(fit(&good, &order(FulfilmentKind::Delivery)), Ok(()));
    }

    #[test]
    fn averages_are_integer_tenths_rounded_half_away_from_zero() {
        assert_eq!(RatingSummary::new(0, 0).average_tenths, None);
        assert_eq!(RatingSummary::new(1, 5).average_tenths, Some(50));
        assert_eq!(RatingSummary::new(2, 9).average_tenths, Some(45));
        // 13 / 3 = 4.333… → 43; 14 / 3 = 4.666… → 47; 4.25 → 43 (half away from zero).
        assert_eq!(RatingSummary::new(3, 13).average_tenths, Some(43));
        assert_eq!(RatingSummary::new(3, 14).average_tenths, Some(47));
        assert_eq!(RatingSummary::new(4, 17).average_tenths, Some(43));
        assert_eq!(RatingSummary::new(3, 3).average_tenths, Some(10));
    }

    proptest::proptest! {
        #[test]
        fn an_average_stays_within_the_stars(ratings in proptest::collection::vec(1i64..=5, 1..200)) {
            let count = i64::try_from(ratings.len()).unwrap();
            let sum: i64 = ratings.iter().sum();
            let tenths = RatingSummary::new(count, sum).average_tenths.unwrap();
            proptest::prop_assert!((10..=50).contains(&tenths));
            // Within half a tenth of the exact average.
            proptest::prop_assert!((tenths * count - sum * 10).abs() * 2 <= count);
        }
    }
}
