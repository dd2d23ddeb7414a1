//! Reviews on the wire: a customer's review of their order (`POST /api/v1/orders/{id}/review`),
//! the storefront's approved product reviews, and the business's review inbox with replies and
//! moderation. Requests parse into [`crate::review`] types or every field error at once.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{patch, FieldErrors};
use crate::review::{
    OrderRatings, ProductRating, Rating, RatingSummary, ReviewDraft, ReviewError, ReviewText,
};

/// Most products one review may rate (an order has at most this many lines).
pub const MAX_RATED_PRODUCTS: usize = super::order::MAX_ORDER_LINES;

/// One product of the order, rated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ProductRatingInput {
    /// A product of the order.
    pub product_id: Uuid,
    /// 1–5 stars.
    pub rating: i64,
    /// Words (at most 2,000 characters; blank is none).
    #[serde(default)]
    pub review_text: Option<String>,
}

/// `POST /api/v1/orders/{id}/review`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateReviewRequest {
    /// The order as a whole, 1–5 stars.
    pub overall_rating: i64,
    /// The food, 1–5 stars.
    #[serde(default)]
    pub food_quality_rating: Option<i64>,
    /// The delivery, 1–5 stars (delivery orders only).
    #[serde(default)]
    pub delivery_rating: Option<i64>,
    /// Words (at most 2,000 characters; blank is none).
    #[serde(default)]
    pub review_text: Option<String>,
    /// Ratings of products the order contained, each at most once.
    #[serde(default)]
    pub products: Vec<ProductRatingInput>,
}

fn rating(e: &mut FieldErrors, field: &str, stars: i64) -> Option<Rating> {
    match Rating::new(stars) {
        Ok(r) => Some(r),
        Err(err) => {
            e.push(field, err.code(), err.to_string());
            None
        }
    }
}

fn text(e: &mut FieldErrors, field: &str, raw: Option<&str>) -> Option<Option<ReviewText>> {
    match raw.map(ReviewText::parse).transpose() {
        Ok(t) => Some(t.flatten()),
        Err(err) => {
            e.push(field, err.code(), err.to_string());
            None
        }
    }
}

impl CreateReviewRequest {
    /// Parses every field. Whether the review fits its order is [`crate::review::fit`]'s
    /// question, asked once the order is read.
    ///
    /// # Errors
    /// The field errors.
    pub fn parse(&self) -> Result<ReviewDraft, FieldErrors> {
        let mut e = FieldErrors::default();
        let overall = rating(&mut e, "overall_rating", self.overall_rating);
        let food_quality = self
            .food_quality_rating
            .map(|v| rating(&mut e, "food_quality_rating", v));
        let delivery = self
            .delivery_rating
            .map(|v| rating(&mut e, "delivery_rating", v));
        let order_text = text(&mut e, "review_text", self.review_text.as_deref());
        if self.products.len() > MAX_RATED_PRODUCTS {
            e.push(
                "products",
                "too_many",
                format!("at most {MAX_RATED_PRODUCTS} products can be rated"),
            );
        }
        let mut products = Vec::new();
        for (i, p) in self.products.iter().enumerate() {
            let stars = rating(&mut e, &format!("products[{i}].rating"), p.rating);
            let words = text(
                &mut e,
                &format!("products[{i}].review_text"),
                p.review_text.as_deref(),
            );
            if let (Some(rating), Some(text)) = (stars, words) {
                products.push(ProductRating {
                    product: p.product_id,
                    rating,
                    text,
                });
            }
        }
        e.finish(|| {
            Some(ReviewDraft {
                order: OrderRatings {
                    overall: overall?,
                    food_quality: food_quality.map(|r| r.ok_or(())).transpose().ok()?,
                    delivery: delivery.map(|r| r.ok_or(())).transpose().ok()?,
                    text: order_text?,
                },
                products,
            })
        })
    }
}

/// The field errors of a review that does not fit its order ([`crate::review::fit`]).
pub fn misfit_errors(errors: &[(Option<usize>, ReviewError)]) -> FieldErrors {
    let mut e = FieldErrors::default();
    for (index, err) in errors {
        let field = match (index, err) {
            (None, _) => "delivery_rating".to_owned(),
            (Some(i), _) => format!("products[{i}].product_id"),
        };
        e.push(&field, err.code(), err.to_string());
    }
    e
}

/// One product rating inside a review.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProductReviewView {
    /// Id.
    pub id: Uuid,
    /// The product.
    pub product_id: Uuid,
    /// 1–5 stars.
    pub rating: i64,
    /// Words.
    pub review_text: Option<String>,
    /// Rated from an order that contained the product.
    pub verified_purchase: bool,
    /// Shown on the storefront (the business approves product reviews).
    pub is_approved: bool,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A review of an order, as its customer and the business see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReviewView {
    /// Id.
    pub id: Uuid,
    /// The order.
    pub order_id: Uuid,
    /// The customer who wrote it.
    pub customer_id: Uuid,
    /// 1–5 stars.
    pub overall_rating: i64,
    /// 1–5 stars.
    pub food_quality_rating: Option<i64>,
    /// 1–5 stars; absent for pickup orders.
    pub delivery_rating: Option<i64>,
    /// Words.
    pub review_text: Option<String>,
    /// The business's answer.
    pub business_reply: Option<String>,
    /// When the business answered.
    pub replied_at: Option<DateTime<Utc>>,
    /// When.
    pub created_at: DateTime<Utc>,
    /// The products rated with it.
    pub products: Vec<ProductReviewView>,
}

/// A page of reviews, newest first.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReviewPage {
    /// The reviews.
    pub items: Vec<ReviewView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// An approved product review on the storefront (no customer details).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublicReview {
    /// Id.
    pub id: Uuid,
    /// 1–5 stars.
    pub rating: i64,
    /// Words.
    pub review_text: Option<String>,
    /// Rated from an order that contained the product.
    pub verified_purchase: bool,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A page of a product's approved reviews, newest first.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublicReviewPage {
    /// The reviews.
    pub items: Vec<PublicReview>,
    /// The product's rating.
    pub rating: RatingSummary,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// `GET /api/v1/storefronts/{subdomain}/products/{id}/reviews` query.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct ReviewPageQuery {
    /// Page size, 1–100 (default 20).
    #[serde(default)]
    pub limit: Option<i64>,
    /// From the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// `GET /api/v1/business/reviews` query.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct BusinessReviewQuery {
    /// Only reviews with this overall rating (1–5).
    #[serde(default)]
    pub rating: Option<i64>,
    /// Only reviews the business has not answered yet.
    #[serde(default)]
    pub unreplied: Option<bool>,
    /// Page size, 1–100 (default 50).
    #[serde(default)]
    pub limit: Option<i64>,
    /// From the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}

impl BusinessReviewQuery {
    /// The rating filter.
    ///
    /// # Errors
    /// A rating outside 1–5.
    pub fn rating(&self) -> Result<Option<Rating>, FieldErrors> {
        let mut e = FieldErrors::default();
        let r = self.rating.and_then(|v| rating(&mut e, "rating", v));
        e.finish(|| Some(r))
    }
}

/// Approves or hides one product review of the review.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ProductReviewModeration {
    /// A product review of this review.
    pub id: Uuid,
    /// Show it on the storefront (true) or hide it (false).
    pub is_approved: bool,
}

/// `PATCH /api/v1/business/reviews/{id}`: reply (`null` withdraws the reply) and moderate the
/// product reviews that came with it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateReviewRequest {
    /// The business's public answer (at most 2,000 characters); `null` removes it.
    #[serde(default, deserialize_with = "patch")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub reply: Option<Option<String>>,
    /// Product reviews to approve or hide.
    #[serde(default)]
    pub products: Vec<ProductReviewModeration>,
}

/// A parsed review update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReviewUpdate {
    /// `Some(None)`: remove the reply; `Some(Some(text))`: set it; `None`: leave it.
    pub reply: Option<Option<ReviewText>>,
    /// (product review, approved).
    pub products: Vec<(Uuid, bool)>,
}

impl UpdateReviewRequest {
    /// Parses every field.
    ///
    /// # Errors
    /// The field errors.
    pub fn parse(&self) -> Result<ReviewUpdate, FieldErrors> {
        let mut e = FieldErrors::default();
        let reply = match &self.reply {
            None => Some(None),
            Some(None) => Some(Some(None)),
            Some(Some(raw)) => match ReviewText::parse(raw) {
                Ok(Some(t)) => Some(Some(Some(t))),
                Ok(None) => {
                    e.push(
                        "reply",
                        "blank",
                        "a reply needs words; send null to remove it",
                    );
                    None
                }
                Err(err) => {
                    e.push("reply", err.code(), err.to_string());
                    None
                }
            },
        };
        if self.products.len() > MAX_RATED_PRODUCTS {
            e.push(
                "products",
                "too_many",
                format!("at most {MAX_RATED_PRODUCTS} product reviews at once"),
            );
        }
        if self.reply.is_none() && self.products.is_empty() {
            e.push(
                "reply",
                "required",
                "send a reply or product reviews to moderate",
            );
        }
        e.finish(|| {
            Some(ReviewUpdate {
                reply: reply?,
                products: self
                    .products
                    .iter()
                    .map(|p| (p.id, p.is_approved))
                    .collect(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(e: &FieldErrors) -> Vec<(&str, &str)> {
        e.0.iter()
            .map(|f| (f.field.as_str(), f.code.as_str()))
            .collect()
    }

    #[test]
    fn a_review_reports_every_bad_field_at_once() {
        let req: CreateReviewRequest = serde_json::from_value(serde_json::json!({
            "overall_rating": 0, "food_quality_rating": 6, "delivery_rating": 3,
            "review_text": "x".repeat(2001),
            "products": [{"product_id": Uuid::nil(), "rating": 9}, {"product_id": Uuid::nil(), "rating": 4, "review_text": " "}],
        }))
        .unwrap();
        let e = req.parse().unwrap_err();
        assert_eq!(
            fields(&e),
            [
                ("overall_rating", "out_of_range"),
                ("food_quality_rating", "out_of_range"),
                ("review_text", "too_long"),
                ("products[0].rating", "out_of_range"),
            ]
        );
    }

    #[test]
    fn a_good_review_parses() {
        let req: CreateReviewRequest = serde_json::from_value(serde_json::json!({
            "overall_rating": 5, "review_text": "  lovely ",
            "products": [{"product_id": Uuid::nil(), "rating": 4, "review_text": ""}],
        }))
        .unwrap();
        let draft = req.parse().unwrap();
        assert_eq!(draft.order.overall.stars(), 5);
        assert_eq!(draft.order.food_quality, None);
        assert_eq!(draft.order.text.unwrap().as_str(), "lovely");
        assert_eq!(draft.products.len(), 1);
        assert_eq!(draft.products[0].text, None);
        assert!(serde_json::from_value::<CreateReviewRequest>(
            serde_json::json!({"overall_rating": 5, "is_approved": true})
        )
        .is_err());
    }

    #[test]
    fn an_update_replies_withdraws_or_moderates() {
        let parse = |v: serde_json::Value| {
            serde_json::from_value::<UpdateReviewRequest>(v)
                .unwrap()
                .parse()
        };
        let set = parse(serde_json::json!({"reply": " Thanks! "})).unwrap();
        assert_eq!(set.reply.unwrap().unwrap().as_str(), "Thanks!");
        assert_eq!(
            parse(serde_json::json!({"reply": null})).unwrap().reply,
            Some(None)
        );
        let e = parse(serde_json::json!({"reply": "  "})).unwrap_err();
        assert_eq!(fields(&e), [("reply", "blank")]);
        let e = parse(serde_json::json!({})).unwrap_err();
        assert_eq!(fields(&e), [("reply", "required")]);
        let moderate =
            parse(serde_json::json!({"products": [{"id": Uuid::nil(), "is_approved": true}]}))
                .unwrap();
        assert_eq!(moderate.reply, None);
        assert_eq!(moderate.products, [(Uuid::nil(), true)]);
    }
}
