//! The catalog's wire types: products with their variants, categories, and the product list
//! query shared by the business API and the public storefront.
//!
//! Requests refuse unknown fields and parse into the typed drafts of [`crate::catalog`],
//! reporting every field error at once.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::catalog::{
    self, CategoryFilter, Description, ListingCursor, ProductListing, ProductSort, Sku,
    VariantDraft, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, MAX_SEARCH_CHARS, MAX_VARIANTS,
};
use crate::id::{CategoryId, ProductId, VariantId};
use crate::money::Money;
use crate::value::{DisplayName, Slug};

use super::{patch, FieldErrors};

/// One variant of a product, as sent when creating a product or replacing its variants.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VariantInput {
    /// Name, e.g. "Large".
    pub name: String,
    /// SKU, unique in the business (case-insensitive, stored in upper case). On a
    /// replacement, a variant whose SKU the product already has keeps its id.
    pub sku: String,
    /// Added to the product's price, in minor units; may be negative, but the variant's price
    /// may not fall below zero.
    #[serde(default)]
    pub price_adjustment_minor: i64,
    /// Option pairs, e.g. `{"size": "large"}`.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Units on hand; absent or `null` means stock is not tracked.
    #[serde(default)]
    pub stock_quantity: Option<i64>,
    /// Position in the list (defaults to the position sent).
    #[serde(default)]
    pub display_order: Option<i32>,
}

fn parse_variants(e: &mut FieldErrors, inputs: &[VariantInput]) -> Option<Vec<VariantDraft>> {
    if inputs.len() > MAX_VARIANTS {
        e.push(
            "variants",
            "too_many",
            format!("a product may have at most {MAX_VARIANTS} variants"),
        );
        return None;
    }
    let mut drafts = Vec::with_capacity(inputs.len());
    let mut complete = true;
    for (i, input) in inputs.iter().enumerate() {
        let field = |name: &str| format!("variants[{i}].{name}");
        let name = e.check(&field("name"), DisplayName::parse(&input.name));
        let sku = e.check(&field("sku"), Sku::parse(&input.sku));
        let adjustment = e.check(
            &field("price_adjustment_minor"),
            catalog::parse_adjustment(input.price_adjustment_minor),
        );
        let options = e
            .check(&field("options"), catalog::check_options(&input.options))
            .map(|()| {
                input
                    .options
                    .iter()
                    .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                    .collect()
            });
        let stock = match input.stock_quantity {
            None => Some(None),
            Some(q) => e
                .check(&field("stock_quantity"), catalog::parse_stock(q))
                .map(Some),
        };
        match (name, sku, adjustment, options, stock) {
            (Some(name), Some(sku), Some(adjustment), Some(options), Some(stock)) => {
                drafts.push(VariantDraft {
                    name,
                    sku,
                    price_adjustment_minor: adjustment,
                    options,
                    stock_quantity: stock,
                    display_order: input
                        .display_order
                        .unwrap_or_else(|| i32::try_from(i).unwrap_or(i32::MAX)),
                });
            }
            _ => complete = false,
        }
    }
    complete.then_some(drafts)
}

fn check_variant_rules(
    e: &mut FieldErrors,
    product_sku: Option<&Sku>,
    price_minor: Option<i64>,
    variants: &[VariantDraft],
) {
    for (i, what) in catalog::duplicate_variant_fields(product_sku, variants) {
        let message = if what == "sku" {
            "this SKU is used twice in the request"
        } else {
            "two variants have this name"
        };
        e.push(&format!("variants[{i}].{what}"), "duplicate", message);
    }
    if let Some(price) = price_minor {
        let adjustments: Vec<i64> = variants.iter().map(|v| v.price_adjustment_minor).collect();
        for i in catalog::negative_variant_prices(price, &adjustments) {
            e.push(
                &format!("variants[{i}].price_adjustment_minor"),
                "negative_price",
                "the variant's price (product price plus adjustment) would be below zero",
            );
        }
    }
}

/// `POST /api/v1/business/products`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateProductRequest {
    /// SKU, unique in the business.
    pub sku: String,
    /// Name.
    pub name: String,
    /// Description (searchable).
    #[serde(default)]
    pub description: Option<String>,
    /// Price in minor units of the business's currency, 0 to 100,000,000.
    pub price_minor: i64,
    /// What the product costs the business (private; never shown on the storefront).
    #[serde(default)]
    pub cost_minor: Option<i64>,
    /// Category.
    #[serde(default)]
    pub category_id: Option<CategoryId>,
    /// Shown on the storefront (default false: a new product is a draft).
    #[serde(default)]
    pub is_published: Option<bool>,
    /// Minutes to prepare, 0–600 (default 0).
    #[serde(default)]
    pub preparation_time_minutes: Option<i64>,
    /// Variants (sizes, flavours…); at most 50.
    #[serde(default)]
    pub variants: Vec<VariantInput>,
}

/// A product as it will be stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProductDraft {
    /// SKU.
    pub sku: Sku,
    /// Name.
    pub name: DisplayName,
    /// Description.
    pub description: Option<Description>,
    /// Price in minor units.
    pub price_minor: i64,
    /// Cost in minor units.
    pub cost_minor: Option<i64>,
    /// Category.
    pub category: Option<CategoryId>,
    /// Published.
    pub is_published: bool,
    /// Preparation time.
    pub preparation_time_minutes: u16,
    /// Variants.
    pub variants: Vec<VariantDraft>,
}

impl CreateProductRequest {
    /// Parses every field and the rules between them (no duplicate SKUs or variant names, no
    /// variant priced below zero).
    ///
    /// # Errors
    /// The field errors, all at once.
    pub fn parse(&self) -> Result<ProductDraft, FieldErrors> {
        let mut e = FieldErrors::default();
        let sku = e.check("sku", Sku::parse(&self.sku));
        let name = e.check("name", DisplayName::parse(&self.name));
        let description = match &self.description {
            None => Some(None),
            Some(raw) => e.check("description", Description::parse(raw)).map(Some),
        };
        let price = e.check("price_minor", catalog::parse_price(self.price_minor));
        let cost = match self.cost_minor {
            None => Some(None),
            Some(c) => e.check("cost_minor", catalog::parse_price(c)).map(Some),
        };
        let preparation = e.check(
            "preparation_time_minutes",
            catalog::parse_preparation_minutes(self.preparation_time_minutes.unwrap_or(0)),
        );
        let variants = parse_variants(&mut e, &self.variants);
        if let Some(variants) = &variants {
            check_variant_rules(&mut e, sku.as_ref(), price, variants);
        }
        e.finish(|| {
            Some(ProductDraft {
                sku: sku?,
                name: name?,
                description: description?,
                price_minor: price?,
                cost_minor: cost?,
                category: self.category_id,
                is_published: self.is_published.unwrap_or(false),
                preparation_time_minutes: preparation?,
                variants: variants?,
            })
        })
    }
}

/// `PATCH /api/v1/business/products/{id}`. Absent fields stay; `null` clears optional ones;
/// `variants`, when present, replaces the whole list.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateProductRequest {
    /// New SKU.
    #[serde(default)]
    pub sku: Option<String>,
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New description; `null` removes it.
    #[serde(default, deserialize_with = "patch")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub description: Option<Option<String>>,
    /// New price in minor units.
    #[serde(default)]
    pub price_minor: Option<i64>,
    /// New cost; `null` removes it.
    #[serde(default, deserialize_with = "patch")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>))]
    pub cost_minor: Option<Option<i64>>,
    /// New category; `null` removes it.
    #[serde(default, deserialize_with = "patch")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<CategoryId>))]
    pub category_id: Option<Option<CategoryId>>,
    /// Publish or hide.
    #[serde(default)]
    pub is_published: Option<bool>,
    /// New preparation time in minutes.
    #[serde(default)]
    pub preparation_time_minutes: Option<i64>,
    /// The new variant list (replaces the current one; `[]` removes every variant).
    #[serde(default)]
    pub variants: Option<Vec<VariantInput>>,
}

/// A parsed product change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProductChange {
    /// SKU.
    pub sku: Option<Sku>,
    /// Name.
    pub name: Option<DisplayName>,
    /// Description (outer: change?, inner: value).
    pub description: Option<Option<Description>>,
    /// Price.
    pub price_minor: Option<i64>,
    /// Cost (outer: change?, inner: value).
    pub cost_minor: Option<Option<i64>>,
    /// Category (outer: change?, inner: value).
    pub category: Option<Option<CategoryId>>,
    /// Published.
    pub is_published: Option<bool>,
    /// Preparation time.
    pub preparation_time_minutes: Option<u16>,
    /// Replacement variants.
    pub variants: Option<Vec<VariantDraft>>,
}

impl UpdateProductRequest {
    /// Parses every present field.
    ///
    /// # Errors
    /// The field errors, all at once.
    pub fn parse(&self) -> Result<ProductChange, FieldErrors> {
        let mut e = FieldErrors::default();
        let change = ProductChange {
            sku: self
                .sku
                .as_deref()
                .and_then(|v| e.check("sku", Sku::parse(v))),
            name: self
                .name
                .as_deref()
                .and_then(|v| e.check("name", DisplayName::parse(v))),
            description: match &self.description {
                None => None,
                Some(None) => Some(None),
                Some(Some(raw)) => e.check("description", Description::parse(raw)).map(Some),
            },
            price_minor: self
                .price_minor
                .and_then(|p| e.check("price_minor", catalog::parse_price(p))),
            cost_minor: match self.cost_minor {
                None => None,
                Some(None) => Some(None),
                Some(Some(c)) => e.check("cost_minor", catalog::parse_price(c)).map(Some),
            },
            category: self.category_id,
            is_published: self.is_published,
            preparation_time_minutes: self.preparation_time_minutes.and_then(|m| {
                e.check(
                    "preparation_time_minutes",
                    catalog::parse_preparation_minutes(m),
                )
            }),
            variants: self
                .variants
                .as_ref()
                .and_then(|v| parse_variants(&mut e, v)),
        };
        if let Some(variants) = &change.variants {
            check_variant_rules(&mut e, change.sku.as_ref(), None, variants);
        }
        e.finish(|| Some(change))
    }
}

impl ProductChange {
    /// Checks the change against the product it applies to: with the resulting price, no
    /// variant (the new list, or the current one) may cost less than zero.
    ///
    /// # Errors
    /// The field errors.
    pub fn check_against(
        &self,
        current_price_minor: i64,
        current_adjustments: &[i64],
    ) -> Result<(), FieldErrors> {
        let mut e = FieldErrors::default();
        let price = self.price_minor.unwrap_or(current_price_minor);
        match &self.variants {
            Some(variants) => {
                let adjustments: Vec<i64> =
                    variants.iter().map(|v| v.price_adjustment_minor).collect();
                for i in catalog::negative_variant_prices(price, &adjustments) {
                    e.push(
                        &format!("variants[{i}].price_adjustment_minor"),
                        "negative_price",
                        "the variant's price (product price plus adjustment) would be below zero",
                    );
                }
            }
            None => {
                if !catalog::negative_variant_prices(price, current_adjustments).is_empty() {
                    e.push(
                        "price_minor",
                        "negative_price",
                        "at this price a variant (price plus its adjustment) would cost below zero",
                    );
                }
            }
        }
        e.finish(|| Some(()))
    }
}

/// A category as a product shows it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CategoryRef {
    /// Id.
    pub id: CategoryId,
    /// Name.
    pub name: String,
    /// Slug.
    pub slug: String,
}

/// A variant, as the business sees it.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VariantView {
    /// Id (kept across replacements while the SKU stays).
    pub id: VariantId,
    /// Name.
    pub name: String,
    /// SKU.
    pub sku: String,
    /// Adjustment to the product's price.
    pub price_adjustment: Money,
    /// The variant's price: the product's price plus the adjustment.
    pub price: Money,
    /// Option pairs.
    pub options: BTreeMap<String, String>,
    /// Units on hand; `null` when stock is not tracked.
    pub stock_quantity: Option<u32>,
    /// Whether it can be ordered (untracked stock, or some on hand).
    pub available: bool,
    /// Position.
    pub display_order: i32,
}

/// A product, as the business sees it.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProductView {
    /// Id.
    pub id: ProductId,
    /// SKU.
    pub sku: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Price, in the business's currency.
    pub price: Money,
    /// Cost to the business.
    pub cost: Option<Money>,
    /// Category.
    pub category: Option<CategoryRef>,
    /// Shown on the storefront.
    pub is_published: bool,
    /// Minutes to prepare.
    pub preparation_time_minutes: u16,
    /// Whether it can be ordered (see the variants' stock).
    pub available: bool,
    /// Variants, in display order.
    pub variants: Vec<VariantView>,
    /// Images: the primary image first, then by display order.
    pub images: Vec<super::media::ProductImageView>,
    /// When it was archived (deleted); archived products are not listed and cannot be edited.
    pub archived_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// A page of products.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProductPage {
    /// The products.
    pub items: Vec<ProductView>,
    /// Pass as `cursor` (with the same sort) to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// The query of a product list (`GET /api/v1/business/products`,
/// `GET /api/v1/storefronts/{subdomain}/products`). Values are taken as text and parsed here,
/// so every bad parameter is reported at once.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct ProductListQuery {
    /// Only this category (by slug) and its subcategories.
    pub category: Option<String>,
    /// Only this category (by id) and its subcategories.
    #[cfg_attr(feature = "openapi", param(value_type = Option<String>, format = Uuid))]
    pub category_id: Option<String>,
    /// Only products priced at least this (minor units; the product's own price).
    #[cfg_attr(feature = "openapi", param(value_type = Option<i64>))]
    pub min_price: Option<String>,
    /// Only products priced at most this (minor units).
    #[cfg_attr(feature = "openapi", param(value_type = Option<i64>))]
    pub max_price: Option<String>,
    /// Only products that can be ordered now (not every variant sold out).
    #[cfg_attr(feature = "openapi", param(value_type = Option<bool>))]
    pub available_only: Option<String>,
    /// Full-text search in names and descriptions, web-search syntax: words, `"a phrase"`,
    /// `-excluded`, `or`.
    pub q: Option<String>,
    /// `relevance` (needs `q`; the default when `q` is given), `price_asc`, `price_desc`,
    /// `newest`, or `name` (the default without `q`).
    #[cfg_attr(feature = "openapi", param(value_type = Option<ProductSort>, inline))]
    pub sort: Option<String>,
    /// Page size, 1–100 (default 24).
    #[cfg_attr(feature = "openapi", param(value_type = Option<u32>))]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page (same sort).
    pub cursor: Option<String>,
}

impl ProductListQuery {
    /// Parses every parameter.
    ///
    /// # Errors
    /// The field errors, all at once.
    pub fn parse(&self) -> Result<ProductListing, FieldErrors> {
        let mut e = FieldErrors::default();
        let mut int = |field: &str, raw: &Option<String>| -> Option<Option<i64>> {
            match raw.as_deref().map(str::trim) {
                None | Some("") => Some(None),
                Some(text) => match text.parse::<i64>() {
                    Ok(v) => e.check(field, catalog::parse_price(v)).map(Some),
                    Err(_) => {
                        e.push(field, "invalid", "must be a whole number of minor units");
                        None
                    }
                },
            }
        };
        let min_price = int("min_price", &self.min_price);
        let max_price = int("max_price", &self.max_price);
        if let (Some(Some(min)), Some(Some(max))) = (min_price, max_price) {
            if min > max {
                e.push(
                    "max_price",
                    "out_of_range",
                    "max_price must not be below min_price",
                );
            }
        }
        let category = match (self.category.as_deref(), self.category_id.as_deref()) {
            (Some(_), Some(_)) => {
                e.push(
                    "category_id",
                    "conflict",
                    "give either category (a slug) or category_id, not both",
                );
                None
            }
            (Some(slug), None) => e
                .check("category", Slug::parse(slug))
                .map(|s| Some(CategoryFilter::Slug(s))),
            (None, Some(id)) => match Uuid::parse_str(id) {
                Ok(id) => Some(Some(CategoryFilter::Id(CategoryId(id)))),
                Err(_) => {
                    e.push("category_id", "invalid", "category_id must be a UUID");
                    None
                }
            },
            (None, None) => Some(None),
        };
        let available_only = match self.available_only.as_deref() {
            None | Some("false") | Some("0") => Some(false),
            Some("true") | Some("1") => Some(true),
            Some(_) => {
                e.push("available_only", "invalid", "must be true or false");
                None
            }
        };
        let search = match self.q.as_deref().map(str::trim) {
            None | Some("") => Some(None),
            Some(q) if q.chars().count() > MAX_SEARCH_CHARS => {
                e.push(
                    "q",
                    "too_long",
                    format!("search text must be at most {MAX_SEARCH_CHARS} characters"),
                );
                None
            }
            Some(q) if q.chars().any(char::is_control) => {
                e.push(
                    "q",
                    "invalid_characters",
                    "search text must not contain control characters",
                );
                None
            }
            Some(q) => Some(Some(q.to_owned())),
        };
        let has_search = matches!(search, Some(Some(_)));
        let sort = match self.sort.as_deref() {
            None => Some(if has_search {
                ProductSort::Relevance
            } else {
                ProductSort::Name
            }),
            Some(raw) => match ProductSort::parse(raw) {
                Some(ProductSort::Relevance) if !has_search && search.is_some() => {
                    e.push(
                        "sort",
                        "needs_search",
                        "sort=relevance needs a search text q",
                    );
                    None
                }
                Some(sort) => Some(sort),
                None => {
                    e.push(
                        "sort",
                        "invalid",
                        "sort must be relevance, price_asc, price_desc, newest or name",
                    );
                    None
                }
            },
        };
        let limit = match self.limit.as_deref() {
            None => Some(DEFAULT_PAGE_SIZE),
            Some(raw) => match raw.trim().parse::<u32>() {
                Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => Some(n),
                _ => {
                    e.push(
                        "limit",
                        "out_of_range",
                        format!("limit must be 1 to {MAX_PAGE_SIZE}"),
                    );
                    None
                }
            },
        };
        let after = match self.cursor.as_deref() {
            None | Some("") => Some(None),
            Some(raw) => e.check("cursor", ListingCursor::decode(raw)).map(Some),
        };
        if let (Some(Some(cursor)), Some(sort)) = (&after, sort) {
            if cursor.key.sort() != sort {
                e.push(
                    "cursor",
                    "sort_mismatch",
                    "this cursor belongs to another sort order; start from the first page",
                );
            }
        }
        e.finish(|| {
            Some(ProductListing {
                category: category?,
                min_price: min_price?,
                max_price: max_price?,
                available_only: available_only?,
                search: search?,
                sort: sort?,
                limit: limit?,
                after: after?,
            })
        })
    }
}

/// A category, as the business sees it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CategoryView {
    /// Id.
    pub id: CategoryId,
    /// Parent category.
    pub parent_id: Option<CategoryId>,
    /// Name.
    pub name: String,
    /// Slug, unique in the business.
    pub slug: String,
    /// Position among its siblings.
    pub display_order: i32,
    /// Shown on the storefront (an inactive category hides its subcategories there too).
    pub is_active: bool,
    /// Depth in the tree (0 for a top-level category).
    pub depth: u32,
    /// Products (not archived) directly in this category.
    pub product_count: i64,
}

/// `POST /api/v1/business/categories`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateCategoryRequest {
    /// Name.
    pub name: String,
    /// Slug, unique in the business (default: derived from the name).
    #[serde(default)]
    pub slug: Option<String>,
    /// Parent category, in the same business.
    #[serde(default)]
    pub parent_id: Option<CategoryId>,
    /// Position among its siblings (default 0).
    #[serde(default)]
    pub display_order: Option<i32>,
    /// Shown on the storefront (default true).
    #[serde(default)]
    pub is_active: Option<bool>,
}

/// A parsed new category.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCategory {
    /// Name.
    pub name: DisplayName,
    /// Slug.
    pub slug: Slug,
    /// Parent.
    pub parent: Option<CategoryId>,
    /// Position.
    pub display_order: i32,
    /// Active.
    pub is_active: bool,
}

/// The range of a category's `display_order`.
pub const DISPLAY_ORDER_RANGE: std::ops::RangeInclusive<i32> = -1_000_000..=1_000_000;

fn check_display_order(e: &mut FieldErrors, value: Option<i32>) -> Option<i32> {
    match value {
        Some(v) if !DISPLAY_ORDER_RANGE.contains(&v) => {
            e.push(
                "display_order",
                "out_of_range",
                "display_order must be -1000000 to 1000000",
            );
            None
        }
        v => Some(v.unwrap_or(0)),
    }
}

impl CreateCategoryRequest {
    /// Parses every field.
    ///
    /// # Errors
    /// The field errors, all at once.
    pub fn parse(&self) -> Result<NewCategory, FieldErrors> {
        let mut e = FieldErrors::default();
        let name = e.check("name", DisplayName::parse(&self.name));
        let slug = match (&self.slug, &name) {
            (Some(raw), _) => e.check("slug", Slug::parse(raw)),
            (None, Some(name)) => e.check("slug", Slug::from_name(name.as_str())),
            (None, None) => None,
        };
        let display_order = check_display_order(&mut e, self.display_order);
        e.finish(|| {
            Some(NewCategory {
                name: name?,
                slug: slug?,
                parent: self.parent_id,
                display_order: display_order?,
                is_active: self.is_active.unwrap_or(true),
            })
        })
    }
}

/// `PATCH /api/v1/business/categories/{id}`. Absent fields stay; `parent_id: null` makes the
/// category top-level.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateCategoryRequest {
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New slug.
    #[serde(default)]
    pub slug: Option<String>,
    /// New parent; `null` makes it top-level.
    #[serde(default, deserialize_with = "patch")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<CategoryId>))]
    pub parent_id: Option<Option<CategoryId>>,
    /// New position among its siblings.
    #[serde(default)]
    pub display_order: Option<i32>,
    /// Show or hide on the storefront.
    #[serde(default)]
    pub is_active: Option<bool>,
}

/// A parsed category change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CategoryChange {
    /// Name.
    pub name: Option<DisplayName>,
    /// Slug.
    pub slug: Option<Slug>,
    /// Parent (outer: change?, inner: value).
    pub parent: Option<Option<CategoryId>>,
    /// Position.
    pub display_order: Option<i32>,
    /// Active.
    pub is_active: Option<bool>,
}

impl UpdateCategoryRequest {
    /// Parses every present field.
    ///
    /// # Errors
    /// The field errors, all at once.
    pub fn parse(&self) -> Result<CategoryChange, FieldErrors> {
        let mut e = FieldErrors::default();
        let display_order = match self.display_order {
            None => None,
            Some(v) => check_display_order(&mut e, Some(v)),
        };
        let change = CategoryChange {
            name: self
                .name
                .as_deref()
                .and_then(|v| e.check("name", DisplayName::parse(v))),
            slug: self
                .slug
                .as_deref()
                .and_then(|v| e.check("slug", Slug::parse(v))),
            parent: self.parent_id,
            display_order,
            is_active: self.is_active,
        };
        e.finish(|| Some(change))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::SortKey;

    fn fields(errors: &FieldErrors) -> Vec<(&str, &str)> {
        errors
            .0
            .iter()
            .map(|e| (e.field.as_str(), e.code.as_str()))
            .collect()
    }

    fn variant(name: &str, sku: &str, adjustment: i64) -> VariantInput {
        VariantInput {
            name: name.into(),
            sku: sku.into(),
            price_adjustment_minor: adjustment,
            options: BTreeMap::new(),
            stock_quantity: None,
            display_order: None,
        }
    }

    fn product() -> CreateProductRequest {
        CreateProductRequest {
            sku: "pz-1".into(),
            name: "Margherita".into(),
            description: Some("Tomato, mozzarella, basil".into()),
            price_minor: 1000,
            cost_minor: Some(300),
            category_id: None,
            is_published: Some(true),
            preparation_time_minutes: Some(12),
            variants: vec![
                variant("Small", "pz-1-s", -200),
                variant("Large", "pz-1-l", 300),
            ],
        }
    }

    #[test]
    fn a_valid_product_parses() {
        let draft = product().parse().expect("valid");
        assert_eq!(draft.sku.as_str(), "PZ-1");
        assert_eq!(draft.variants.len(), 2);
        assert_eq!(draft.variants[1].display_order, 1);
        assert_eq!(draft.preparation_time_minutes, 12);
    }

    #[test]
    fn every_field_error_is_reported_at_once() {
        let mut options = BTreeMap::new();
        options.insert("size".to_owned(), String::new());
        let req = CreateProductRequest {
            sku: "no spaces".into(),
            name: " ".into(),
            description: Some("".into()),
            price_minor: -1,
            cost_minor: Some(catalog::MAX_PRICE_MINOR + 1),
            preparation_time_minutes: Some(601),
            variants: vec![
                VariantInput {
                    stock_quantity: Some(-3),
                    options,
                    ..variant("", "bad sku", 0)
                },
                variant("A", "V-1", 0),
                variant("a", "v-1", 0),
            ],
            ..product()
        };
        let errors = req.parse().expect_err("invalid");
        assert_eq!(
            fields(&errors),
            vec![
                ("sku", "invalid_sku"),
                ("name", "required"),
                ("description", "required"),
                ("price_minor", "out_of_range"),
                ("cost_minor", "out_of_range"),
                ("preparation_time_minutes", "out_of_range"),
                ("variants[0].name", "required"),
                ("variants[0].sku", "invalid_sku"),
                ("variants[0].options", "invalid_option"),
                ("variants[0].stock_quantity", "out_of_range"),
            ]
        );
        let duplicates = CreateProductRequest {
            variants: vec![
                variant("A", "V-1", 0),
                variant("a", "v-1", 0),
                variant("B", "pz-1", -1001),
            ],
            ..product()
        };
        assert_eq!(
            fields(&duplicates.parse().expect_err("invalid")),
            vec![
                ("variants[1].sku", "duplicate"),
                ("variants[1].name", "duplicate"),
                ("variants[2].sku", "duplicate"),
                ("variants[2].price_adjustment_minor", "negative_price"),
            ]
        );
    }

    #[test]
    fn a_price_change_is_checked_against_current_variants() {
        let change = UpdateProductRequest {
            price_minor: Some(100),
            ..UpdateProductRequest::default()
        }
        .parse()
        .expect("valid");
        assert!(change.check_against(1000, &[-50]).is_ok());
        assert_eq!(
            fields(&change.check_against(1000, &[-150]).expect_err("negative")),
            vec![("price_minor", "negative_price")]
        );
        let replace: UpdateProductRequest = serde_json::from_value(serde_json::json!({
            "variants": [{"name": "Half", "sku": "h", "price_adjustment_minor": -600}]
        }))
        .expect("valid");
        let change = replace.parse().expect("valid");
        assert_eq!(
            fields(&change.check_against(500, &[]).expect_err("negative")),
            vec![("variants[0].price_adjustment_minor", "negative_price")]
        );
    }

    #[test]
    fn patch_fields_distinguish_absent_and_null() {
        let req: UpdateProductRequest =
            serde_json::from_str(r#"{"description": null, "category_id": null}"#).expect("valid");
        let change = req.parse().expect("valid");
        assert_eq!(change.description, Some(None));
        assert_eq!(change.category, Some(None));
        assert_eq!(change.cost_minor, None);
        assert!(serde_json::from_str::<UpdateProductRequest>(r#"{"business_id": "x"}"#).is_err());
        assert!(serde_json::from_str::<CreateProductRequest>(
            r#"{"sku": "a", "name": "b", "price_minor": 1, "archived_at": null}"#
        )
        .is_err());
    }

    #[test]
    fn list_queries_parse_with_defaults_and_all_errors() {
        let listing = ProductListQuery::default().parse().expect("valid");
        assert_eq!(listing.sort, ProductSort::Name);
        assert_eq!(listing.limit, DEFAULT_PAGE_SIZE);
        let searched = ProductListQuery {
            q: Some(" pizza ".into()),
            ..ProductListQuery::default()
        }
        .parse()
        .expect("valid");
        assert_eq!(searched.sort, ProductSort::Relevance);
        assert_eq!(searched.search.as_deref(), Some("pizza"));

        let bad = ProductListQuery {
            category: Some("Not A Slug".into()),
            min_price: Some("abc".into()),
            max_price: Some("-5".into()),
            available_only: Some("maybe".into()),
            sort: Some("relevance".into()),
            limit: Some("101".into()),
            cursor: Some("garbage".into()),
            ..ProductListQuery::default()
        };
        assert_eq!(
            fields(&bad.parse().expect_err("invalid")),
            vec![
                ("min_price", "invalid"),
                ("max_price", "out_of_range"),
                ("category", "invalid_slug"),
                ("available_only", "invalid"),
                ("sort", "needs_search"),
                ("limit", "out_of_range"),
                ("cursor", "invalid_cursor"),
            ]
        );
        let both = ProductListQuery {
            category: Some("a".into()),
            category_id: Some(Uuid::nil().to_string()),
            min_price: Some("10".into()),
            max_price: Some("5".into()),
            ..ProductListQuery::default()
        };
        assert_eq!(
            fields(&both.parse().expect_err("invalid")),
            vec![("max_price", "out_of_range"), ("category_id", "conflict")]
        );
    }

    #[test]
    fn a_cursor_must_match_the_sort() {
        let cursor = ListingCursor {
            key: SortKey::PriceAsc(100),
            id: ProductId(Uuid::nil()),
        }
        .encode();
        let ok = ProductListQuery {
            sort: Some("price_asc".into()),
            cursor: Some(cursor.clone()),
            ..ProductListQuery::default()
        };
        assert!(ok.parse().expect("valid").after.is_some());
        let other = ProductListQuery {
            sort: Some("newest".into()),
            cursor: Some(cursor),
            ..ProductListQuery::default()
        };
        assert_eq!(
            fields(&other.parse().expect_err("mismatch")),
            vec![("cursor", "sort_mismatch")]
        );
    }

    #[test]
    fn categories_parse() {
        let new = CreateCategoryRequest {
            name: "Hot Drinks".into(),
            slug: None,
            parent_id: None,
            display_order: None,
            is_active: None,
        }
        .parse()
        .expect("valid");
        assert_eq!(new.slug.as_str(), "hot-drinks");
        assert!(new.is_active);
        let bad = CreateCategoryRequest {
            name: "".into(),
            slug: Some("Bad Slug".into()),
            parent_id: None,
            display_order: Some(2_000_000),
            is_active: None,
        };
        assert_eq!(
            fields(&bad.parse().expect_err("invalid")),
            vec![
                ("name", "required"),
                ("slug", "invalid_slug"),
                ("display_order", "out_of_range")
            ]
        );
        let to_top: UpdateCategoryRequest =
            serde_json::from_str(r#"{"parent_id": null}"#).expect("valid");
        assert_eq!(to_top.parse().expect("valid").parent, Some(None));
    }
}
