//! The catalog's rules: SKUs, product and variant values, availability, the category tree, and
//! the product listing (filters, sort orders and the opaque keyset cursor).
//!
//! Everything here is pure so that the server, the POS and an offline client agree on what a
//! valid product is, whether it can be ordered, and how a category tree is shown.

use std::collections::{BTreeMap, HashMap, HashSet};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::id::{CategoryId, ProductId};
use crate::money::{Money, MoneyError};
use crate::value::{DisplayName, ValueError};

/// The highest price (and cost, and absolute variant adjustment) in minor units: 1,000,000.00
/// in a two-digit currency. Anything above is a typo, and the bound keeps every sum of a
/// realistic order far from `i64` overflow.
pub const MAX_PRICE_MINOR: i64 = 100_000_000;

/// The longest preparation time a product may declare, in minutes.
pub const MAX_PREPARATION_MINUTES: i64 = 600;

/// The most variants one product may have.
pub const MAX_VARIANTS: usize = 50;

/// The most option pairs (`size: large`) one variant may carry.
pub const MAX_VARIANT_OPTIONS: usize = 10;

/// The highest stock quantity a variant may track.
pub const MAX_STOCK: i64 = 1_000_000;

/// The longest product description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 5000;

fn invalid(code: &'static str, message: impl Into<String>) -> ValueError {
    ValueError {
        code,
        message: message.into(),
    }
}

macro_rules! text_value {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The value as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                $name::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

text_value! {
    /// A stock-keeping unit: 1–64 of letters, digits, `.`, `_` and `-`, starting with a letter
    /// or digit. SKUs are case-insensitive: they are stored in upper case, so `pz-1` and `PZ-1`
    /// are the same SKU (a till scanning or typing one finds the other).
    Sku
}

impl Sku {
    /// Parses a SKU, trimming and folding it to upper case.
    ///
    /// # Errors
    /// When a rule is broken.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let sku = raw.trim().to_ascii_uppercase();
        let ok = !sku.is_empty()
            && sku.len() <= 64
            && sku
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            && sku
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric());
        if ok {
            Ok(Self(sku))
        } else {
            Err(invalid(
                "invalid_sku",
                "SKU must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit",
            ))
        }
    }
}

text_value! {
    /// A product description: trimmed, 1–5000 characters, no control characters other than
    /// line breaks and tabs.
    Description
}

impl Description {
    /// Parses a description.
    ///
    /// # Errors
    /// When empty, too long, or containing control characters.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let text = raw.trim();
        if text.is_empty() {
            return Err(invalid(
                "required",
                "description must not be empty; send null to remove it",
            ));
        }
        if text.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(invalid(
                "too_long",
                format!("description must be at most {MAX_DESCRIPTION_CHARS} characters"),
            ));
        }
        if text
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err(invalid(
                "invalid_characters",
                "description must not contain control characters",
            ));
        }
        Ok(Self(text.to_owned()))
    }
}

/// Parses a price or cost in minor units: 0 to [`MAX_PRICE_MINOR`].
///
/// # Errors
/// When negative or above the maximum.
pub fn parse_price(minor: i64) -> Result<i64, ValueError> {
    if (0..=MAX_PRICE_MINOR).contains(&minor) {
        Ok(minor)
    } else {
        Err(invalid(
            "out_of_range",
            format!("must be 0 to {MAX_PRICE_MINOR} minor units"),
        ))
    }
}

/// Parses a variant's price adjustment: at most [`MAX_PRICE_MINOR`] either way.
///
/// # Errors
/// When outside the range.
pub fn parse_adjustment(minor: i64) -> Result<i64, ValueError> {
    if (-MAX_PRICE_MINOR..=MAX_PRICE_MINOR).contains(&minor) {
        Ok(minor)
    } else {
        Err(invalid(
            "out_of_range",
            format!("must be -{MAX_PRICE_MINOR} to {MAX_PRICE_MINOR} minor units"),
        ))
    }
}

/// Parses a preparation time: 0 to [`MAX_PREPARATION_MINUTES`] minutes.
///
/// # Errors
/// When outside the range.
pub fn parse_preparation_minutes(minutes: i64) -> Result<u16, ValueError> {
    if (0..=MAX_PREPARATION_MINUTES).contains(&minutes) {
        Ok(u16::try_from(minutes).expect("range checked"))
    } else {
        Err(invalid(
            "out_of_range",
            format!("preparation time must be 0 to {MAX_PREPARATION_MINUTES} minutes"),
        ))
    }
}

/// Parses a tracked stock quantity: 0 to [`MAX_STOCK`].
///
/// # Errors
/// When outside the range.
pub fn parse_stock(quantity: i64) -> Result<u32, ValueError> {
    if (0..=MAX_STOCK).contains(&quantity) {
        Ok(u32::try_from(quantity).expect("range checked"))
    } else {
        Err(invalid(
            "out_of_range",
            format!("stock must be 0 to {MAX_STOCK}; send null for untracked stock"),
        ))
    }
}

/// Checks a variant's options: at most [`MAX_VARIANT_OPTIONS`] pairs, names of 1–40 and values
/// of 1–100 characters, no control characters.
///
/// # Errors
/// The first rule broken.
pub fn check_options(options: &BTreeMap<String, String>) -> Result<(), ValueError> {
    if options.len() > MAX_VARIANT_OPTIONS {
        return Err(invalid(
            "too_many_options",
            format!("a variant may have at most {MAX_VARIANT_OPTIONS} options"),
        ));
    }
    let fits = |text: &str, max: usize| {
        let len = text.trim().chars().count();
        (1..=max).contains(&len) && !text.chars().any(char::is_control)
    };
    for (name, value) in options {
        if !fits(name, 40) || !fits(value, 100) {
            return Err(invalid(
                "invalid_option",
                "option names must be 1 to 40 and values 1 to 100 characters, without control characters",
            ));
        }
    }
    Ok(())
}

/// One variant as it will be stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VariantDraft {
    /// Name, e.g. "Large".
    pub name: DisplayName,
    /// SKU, unique in the business.
    pub sku: Sku,
    /// Added to the product's price (may be negative).
    pub price_adjustment_minor: i64,
    /// Option pairs, e.g. `size: large`.
    pub options: BTreeMap<String, String>,
    /// Units on hand; `None` means stock is not tracked.
    pub stock_quantity: Option<u32>,
    /// Position in the product's list.
    pub display_order: i32,
}

/// Whether `quantity` units can be taken from this stock: untracked stock always covers it.
pub fn stock_covers(stock_quantity: Option<u32>, quantity: u32) -> bool {
    stock_quantity.is_none_or(|q| q >= quantity)
}

/// Whether a variant with this stock can be ordered: untracked stock, or some on hand.
pub fn variant_available(stock_quantity: Option<u32>) -> bool {
    stock_covers(stock_quantity, 1)
}

/// Whether a product can be ordered: it has no variants (stock is then not tracked), or at
/// least one of its variants is available. A product whose variants all track stock at zero is
/// sold out. The storefront's `available_only` filter applies the same rule in SQL.
pub fn product_available(variant_stock: impl IntoIterator<Item = Option<u32>>) -> bool {
    let mut any = false;
    for stock in variant_stock {
        if variant_available(stock) {
            return true;
        }
        any = true;
    }
    !any
}

/// The price of a variant: the product's price plus the variant's adjustment.
///
/// # Errors
/// On overflow (impossible within [`MAX_PRICE_MINOR`]).
pub fn variant_price(base: Money, adjustment_minor: i64) -> Result<Money, MoneyError> {
    base.checked_add(Money::new(adjustment_minor, base.currency))
}

/// The rule that ties a product's price to its variants: no variant may cost less than zero.
/// Returns the positions of the variants that would.
pub fn negative_variant_prices(price_minor: i64, adjustments: &[i64]) -> Vec<usize> {
    adjustments
        .iter()
        .enumerate()
        .filter(|(_, adjustment)| price_minor.saturating_add(**adjustment) < 0)
        .map(|(i, _)| i)
        .collect()
}

/// Duplicate SKUs or names among a product's variants (and its own SKU): the positions of the
/// variants that repeat an earlier one, with the field that repeats.
pub fn duplicate_variant_fields(
    product_sku: Option<&Sku>,
    variants: &[VariantDraft],
) -> Vec<(usize, &'static str)> {
    let mut skus: HashSet<&str> = product_sku.map(Sku::as_str).into_iter().collect();
    let mut names: HashSet<String> = HashSet::new();
    let mut duplicates = Vec::new();
    for (i, variant) in variants.iter().enumerate() {
        if !skus.insert(variant.sku.as_str()) {
            duplicates.push((i, "sku"));
        }
        if !names.insert(variant.name.as_str().to_lowercase()) {
            duplicates.push((i, "name"));
        }
    }
    duplicates
}

/// A category's place in the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CategoryNode {
    /// The category.
    pub id: CategoryId,
    /// Its parent, if any.
    pub parent: Option<CategoryId>,
    /// Position among its siblings.
    pub display_order: i32,
}

/// Why a category cannot be placed under a parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CategoryTreeError {
    /// The parent is not a category of this business.
    #[error("the parent category does not exist")]
    UnknownParent,
    /// The parent is the category itself or one of its descendants.
    #[error("a category cannot be placed under itself or one of its subcategories")]
    Cycle,
}

/// Checks that `category` (existing or new) may be placed under `parent`, given every category
/// of the business. Walks up from the parent; reaching `category` would close a cycle.
///
/// # Errors
/// [`CategoryTreeError`].
pub fn check_parent(
    nodes: &[CategoryNode],
    category: CategoryId,
    parent: CategoryId,
) -> Result<(), CategoryTreeError> {
    let parents: HashMap<CategoryId, Option<CategoryId>> =
        nodes.iter().map(|n| (n.id, n.parent)).collect();
    if !parents.contains_key(&parent) {
        return Err(CategoryTreeError::UnknownParent);
    }
    let mut seen = HashSet::new();
    let mut at = Some(parent);
    while let Some(id) = at {
        if id == category || !seen.insert(id) {
            return Err(CategoryTreeError::Cycle);
        }
        at = parents.get(&id).copied().flatten();
    }
    Ok(())
}

/// Orders categories as a tree, depth first: roots by `display_order` (then id, for a stable
/// order), each followed by its children in the same order. Returns `(index into nodes,
/// depth)`. A category whose parent is not among `nodes` (hidden, e.g. inactive on a
/// storefront) is left out with its whole subtree.
pub fn tree_order(nodes: &[CategoryNode]) -> Vec<(usize, u32)> {
    let present: HashSet<CategoryId> = nodes.iter().map(|n| n.id).collect();
    let mut children: HashMap<Option<CategoryId>, Vec<usize>> = HashMap::new();
    for (i, node) in nodes.iter().enumerate() {
        let parent = node.parent.filter(|p| present.contains(p));
        if node.parent.is_some() && parent.is_none() {
            continue; // orphaned: its parent is hidden
        }
        children.entry(parent).or_default().push(i);
    }
    for list in children.values_mut() {
        list.sort_by_key(|&i| (nodes[i].display_order, nodes[i].id));
    }
    let mut ordered = Vec::with_capacity(nodes.len());
    let mut stack: Vec<(usize, u32)> = children
        .get(&None)
        .map(|roots| roots.iter().rev().map(|&i| (i, 0)).collect())
        .unwrap_or_default();
    let mut visited = HashSet::new();
    while let Some((i, depth)) = stack.pop() {
        if !visited.insert(i) {
            continue;
        }
        ordered.push((i, depth));
        if let Some(kids) = children.get(&Some(nodes[i].id)) {
            stack.extend(kids.iter().rev().map(|&k| (k, depth + 1)));
        }
    }
    ordered
}

/// The orders a product list can be sorted in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ProductSort {
    /// Best full-text match first (needs `q`).
    Relevance,
    /// Cheapest first.
    PriceAsc,
    /// Most expensive first.
    PriceDesc,
    /// Most recently added first.
    Newest,
    /// Alphabetical, case-insensitive.
    Name,
}

impl ProductSort {
    /// Every sort order.
    pub const ALL: [ProductSort; 5] = [
        ProductSort::Relevance,
        ProductSort::PriceAsc,
        ProductSort::PriceDesc,
        ProductSort::Newest,
        ProductSort::Name,
    ];

    /// The wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Relevance => "relevance",
            Self::PriceAsc => "price_asc",
            Self::PriceDesc => "price_desc",
            Self::Newest => "newest",
            Self::Name => "name",
        }
    }

    /// Parses the wire form.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

/// The sort key of the last product of a page, which the next page starts after.
#[derive(Clone, Debug, PartialEq)]
pub enum SortKey {
    /// Full-text rank (PostgreSQL `ts_rank`, a `real`), kept bit for bit.
    Relevance(f32),
    /// Price in minor units, cheapest first.
    PriceAsc(i64),
    /// Price in minor units, most expensive first.
    PriceDesc(i64),
    /// Creation time in microseconds since the Unix epoch.
    Newest(i64),
    /// Lower-cased name.
    Name(String),
}

impl SortKey {
    /// The order this key belongs to.
    pub fn sort(&self) -> ProductSort {
        match self {
            Self::Relevance(_) => ProductSort::Relevance,
            Self::PriceAsc(_) => ProductSort::PriceAsc,
            Self::PriceDesc(_) => ProductSort::PriceDesc,
            Self::Newest(_) => ProductSort::Newest,
            Self::Name(_) => ProductSort::Name,
        }
    }
}

/// Where a product list page ends: the sort key and id of its last product. Keyset pagination
/// on `(key, id)` is stable while products are added or changed between pages: every product
/// is on exactly one page of those that sort after the cursor, and none is repeated.
#[derive(Clone, Debug, PartialEq)]
pub struct ListingCursor {
    /// The last product's sort key.
    pub key: SortKey,
    /// The last product's id (ties on the key are broken by id).
    pub id: ProductId,
}

impl ListingCursor {
    /// The opaque wire form: URL-safe base64 of a versioned text.
    pub fn encode(&self) -> String {
        let key = match &self.key {
            SortKey::Relevance(rank) => format!("{:08x}", rank.to_bits()),
            SortKey::PriceAsc(p) | SortKey::PriceDesc(p) => p.to_string(),
            SortKey::Newest(micros) => micros.to_string(),
            SortKey::Name(name) => name.clone(),
        };
        URL_SAFE_NO_PAD.encode(format!("1|{}|{}|{key}", self.key.sort().as_str(), self.id))
    }

    /// Parses a cursor this module encoded.
    ///
    /// # Errors
    /// `invalid_cursor` for anything else.
    pub fn decode(raw: &str) -> Result<Self, ValueError> {
        let bad = || {
            invalid(
                "invalid_cursor",
                "the cursor is not one this API returned; start from the first page",
            )
        };
        if raw.len() > 1024 {
            return Err(bad());
        }
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        let mut parts = text.splitn(4, '|');
        let (Some("1"), Some(sort), Some(id), Some(key)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let id = ProductId(Uuid::parse_str(id).map_err(|_| bad())?);
        let int = || key.parse::<i64>().map_err(|_| bad());
        let key = match ProductSort::parse(sort).ok_or_else(bad)? {
            ProductSort::Relevance => {
                let bits = u32::from_str_radix(key, 16).map_err(|_| bad())?;
                let rank = f32::from_bits(bits);
                if !rank.is_finite() || key.len() != 8 {
                    return Err(bad());
                }
                SortKey::Relevance(rank)
            }
            ProductSort::PriceAsc => SortKey::PriceAsc(int()?),
            ProductSort::PriceDesc => SortKey::PriceDesc(int()?),
            ProductSort::Newest => SortKey::Newest(int()?),
            ProductSort::Name => SortKey::Name(key.to_owned()),
        };
        Ok(Self { key, id })
    }
}

/// Which category a list is narrowed to (with its subcategories).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CategoryFilter {
    /// By id.
    Id(CategoryId),
    /// By slug.
    Slug(crate::value::Slug),
}

/// The default page size of product lists.
pub const DEFAULT_PAGE_SIZE: u32 = 24;

/// The largest page size of product lists.
pub const MAX_PAGE_SIZE: u32 = 100;

/// The longest search text, in characters.
pub const MAX_SEARCH_CHARS: usize = 200;

/// A parsed product list request.
#[derive(Clone, Debug, PartialEq)]
pub struct ProductListing {
    /// Only this category and its subcategories.
    pub category: Option<CategoryFilter>,
    /// Only products priced at least this (minor units, the product's own price).
    pub min_price: Option<i64>,
    /// Only products priced at most this.
    pub max_price: Option<i64>,
    /// Only products that can be ordered (see [`product_available`]).
    pub available_only: bool,
    /// Full-text search (web search syntax: words, `"phrases"`, `-exclusions`, `or`).
    pub search: Option<String>,
    /// Order.
    pub sort: ProductSort,
    /// Page size.
    pub limit: u32,
    /// Start after this product.
    pub after: Option<ListingCursor>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stock_covers_quantities() {
        assert!(stock_covers(None, 999), "untracked stock is never short");
        assert!(stock_covers(Some(2), 2));
        assert!(!stock_covers(Some(2), 3));
        assert!(!variant_available(Some(0)));
        assert!(variant_available(Some(1)));
    }
    use crate::money::Currency;
    use proptest::prelude::*;

    fn id(n: u128) -> CategoryId {
        CategoryId(Uuid::from_u128(n))
    }

    fn node(n: u128, parent: Option<u128>, order: i32) -> CategoryNode {
        CategoryNode {
            id: id(n),
            parent: parent.map(id),
            display_order: order,
        }
    }

    #[test]
    fn skus_are_folded_and_checked() {
        assert_eq!(
            Sku::parse(" pz-1.l_x ").expect("valid").as_str(),
            "PZ-1.L_X"
        );
        for bad in ["", "-A", "A B", "ä", &"A".repeat(65)] {
            assert_eq!(Sku::parse(bad).expect_err(bad).code, "invalid_sku");
        }
    }

    #[test]
    fn ranges() {
        assert!(parse_price(0).is_ok());
        assert!(parse_price(MAX_PRICE_MINOR).is_ok());
        assert!(parse_price(-1).is_err());
        assert!(parse_price(MAX_PRICE_MINOR + 1).is_err());
        assert!(parse_adjustment(-MAX_PRICE_MINOR).is_ok());
        assert!(parse_preparation_minutes(600).is_ok());
        assert!(parse_preparation_minutes(601).is_err());
        assert!(parse_preparation_minutes(-1).is_err());
        assert!(parse_stock(-1).is_err());
        assert_eq!(
            Description::parse("  a\nb ").expect("valid").as_str(),
            "a\nb"
        );
        assert_eq!(
            Description::parse("a\u{0}").expect_err("nul").code,
            "invalid_characters"
        );
    }

    #[test]
    fn availability() {
        assert!(product_available([]), "no variants: available");
        assert!(product_available([Some(0), None]), "untracked variant");
        assert!(product_available([Some(0), Some(2)]));
        assert!(!product_available([Some(0), Some(0)]), "sold out");
        assert!(!variant_available(Some(0)));
    }

    #[test]
    fn variant_prices() {
        let eur = Currency::parse("EUR").expect("known");
        assert_eq!(
            variant_price(Money::new(1000, eur), -250).expect("fits"),
            Money::new(750, eur)
        );
        assert_eq!(negative_variant_prices(500, &[0, -500, -501, 10]), vec![2]);
    }

    #[test]
    fn parents_must_exist_and_not_close_a_cycle() {
        let nodes = [node(1, None, 0), node(2, Some(1), 0), node(3, Some(2), 0)];
        assert_eq!(check_parent(&nodes, id(3), id(1)), Ok(()));
        assert_eq!(check_parent(&nodes, id(9), id(3)), Ok(()), "a new category");
        assert_eq!(
            check_parent(&nodes, id(1), id(3)),
            Err(CategoryTreeError::Cycle)
        );
        assert_eq!(
            check_parent(&nodes, id(2), id(2)),
            Err(CategoryTreeError::Cycle)
        );
        assert_eq!(
            check_parent(&nodes, id(2), id(7)),
            Err(CategoryTreeError::UnknownParent)
        );
    }

    #[test]
    fn tree_order_is_depth_first_by_display_order() {
        let nodes = [
            node(1, None, 2),
            node(2, None, 1),
            node(3, Some(1), 5),
            node(4, Some(1), 0),
            node(5, Some(4), 0),
            node(6, Some(99), 0), // parent hidden
            node(7, Some(6), 0),  // grandparent hidden
        ];
        let order: Vec<(u128, u32)> = tree_order(&nodes)
            .into_iter()
            .map(|(i, depth)| (nodes[i].id.0.as_u128(), depth))
            .collect();
        assert_eq!(order, vec![(2, 0), (1, 0), (4, 1), (5, 2), (3, 1)]);
    }

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let id = ProductId(Uuid::from_u128(42));
        for key in [
            SortKey::Relevance(0.060_793_53),
            SortKey::PriceAsc(0),
            SortKey::PriceDesc(99),
            SortKey::Newest(1_700_000_000_123_456),
            SortKey::Name("a|b c".into()),
        ] {
            let cursor = ListingCursor { key, id };
            assert_eq!(ListingCursor::decode(&cursor.encode()), Ok(cursor));
        }
        for bad in ["", "x", "MXxwcmljZV9hc2N8", &"A".repeat(2000)] {
            assert_eq!(
                ListingCursor::decode(bad).expect_err(bad).code,
                "invalid_cursor"
            );
        }
        let nan = URL_SAFE_NO_PAD.encode(format!("1|relevance|{}|7fc00000", Uuid::nil()));
        assert!(ListingCursor::decode(&nan).is_err());
    }

    proptest! {
        #[test]
        fn tree_order_never_repeats_or_invents(parents in proptest::collection::vec(proptest::option::of(0u128..12), 0..12)) {
            let nodes: Vec<CategoryNode> = parents
                .iter()
                .enumerate()
                .map(|(i, p)| node(i as u128, *p, 0))
                .collect();
            let order = tree_order(&nodes);
            let unique: HashSet<usize> = order.iter().map(|(i, _)| *i).collect();
            prop_assert_eq!(unique.len(), order.len());
            prop_assert!(order.iter().all(|(i, _)| *i < nodes.len()));
            // Every root is listed.
            for (i, n) in nodes.iter().enumerate() {
                if n.parent.is_none() {
                    prop_assert!(unique.contains(&i));
                }
            }
        }

        #[test]
        fn name_cursors_round_trip(name in "\\PC{0,60}", n in any::<u128>()) {
            let cursor = ListingCursor { key: SortKey::Name(name), id: ProductId(Uuid::from_u128(n)) };
            prop_assert_eq!(ListingCursor::decode(&cursor.encode()), Ok(cursor));
        }
    }
}
