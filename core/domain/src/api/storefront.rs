//! What a storefront shows to anybody, signed in or not: the store's public face, its
//! published products and its active categories. Nothing private travels in these types (no
//! costs, stock counts, contact details, unpublished or archived products).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::business::ThemeColors;
use super::catalog::CategoryRef;
use crate::hours::OperatingHours;
use crate::id::{CategoryId, ProductId, VariantId};
use crate::money::{Currency, Money};
use crate::review::RatingSummary;

/// A published store (`GET /api/v1/storefronts/{subdomain}`).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublicStorefront {
    /// The store's name.
    pub name: String,
    /// Its subdomain.
    pub subdomain: String,
    /// Colours.
    pub theme_colors: ThemeColors,
    /// Logo.
    pub logo_url: Option<String>,
    /// Banner.
    pub banner_url: Option<String>,
    /// Weekly opening hours, in the store's time zone.
    pub operating_hours: OperatingHours,
    /// The store's IANA time zone.
    pub time_zone: String,
    /// Whether the store is open at the moment of the request.
    pub open_now: bool,
    /// The currency of every price.
    pub currency: Currency,
    /// How far the store delivers, in metres.
    pub delivery_radius_m: i64,
}

/// A variant on the storefront.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublicVariant {
    /// Id.
    pub id: VariantId,
    /// Name.
    pub name: String,
    /// Price (the product's price plus the variant's adjustment).
    pub price: Money,
    /// Option pairs.
    pub options: BTreeMap<String, String>,
    /// Whether it can be ordered.
    pub available: bool,
}

/// A product on the storefront.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublicProduct {
    /// Id.
    pub id: ProductId,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Price.
    pub price: Money,
    /// Category (absent when it has none or its category is hidden).
    pub category: Option<CategoryRef>,
    /// Minutes to prepare.
    pub preparation_time_minutes: u16,
    /// Whether it can be ordered (not every variant sold out).
    pub available: bool,
    /// Variants, in display order.
    pub variants: Vec<PublicVariant>,
    /// Images: the primary image first, then by display order.
    pub images: Vec<super::media::PublicImage>,
    /// Its approved reviews' ratings: count, sum and the average in tenths of a star.
    pub rating: RatingSummary,
}

/// A page of storefront products.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublicProductPage {
    /// The products.
    pub items: Vec<PublicProduct>,
    /// Pass as `cursor` (with the same sort) to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// An active category on the storefront, listed in tree order.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublicCategory {
    /// Id.
    pub id: CategoryId,
    /// Parent.
    pub parent_id: Option<CategoryId>,
    /// Name.
    pub name: String,
    /// Slug (use as `category` in product lists).
    pub slug: String,
    /// Depth in the tree (0 for top-level).
    pub depth: u32,
}
