//! SQL for the catalog: products with their variants and categories, the product list (filters,
//! full-text search, keyset pagination), and the mapping of rows to the domain's views. Shared
//! by the business API (`api::catalog`) and the public storefront (`api::storefront`); every
//! query names the business explicitly, and row level security applies underneath.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use fleetfront_domain::api::catalog::{CategoryRef, ProductView, VariantView};
use fleetfront_domain::api::storefront::{PublicProduct, PublicVariant};
use fleetfront_domain::api::FieldErrors;
use fleetfront_domain::catalog::{
    self, CategoryFilter, CategoryNode, ListingCursor, ProductListing, ProductSort, Sku, SortKey,
    VariantDraft,
};
use fleetfront_domain::money::{Currency, Money};
use fleetfront_domain::review::RatingSummary;
use fleetfront_domain::{BusinessId, CategoryId, ErrorCode, ProductId, VariantId};
use sqlx::types::Json;
use sqlx::{FromRow, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::db::{new_id, Tx};
use crate::error::{Error, Result};

/// Who a product list or look-up is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    /// The business's team: drafts included.
    Staff,
    /// Anybody on the storefront: published products only.
    Public,
}

/// A product row, with its category and its sort keys.
#[derive(Debug, FromRow)]
pub struct ProductRow {
    id: Uuid,
    sku: String,
    name: String,
    description: Option<String>,
    price_minor: i64,
    cost_minor: Option<i64>,
    category_id: Option<Uuid>,
    category_name: Option<String>,
    category_slug: Option<String>,
    is_published: bool,
    preparation_time_minutes: i32,
    archived_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    sort_name: String,
    rank: f32,
    rating_count: i32,
    rating_sum: i64,
}

impl ProductRow {
    fn sort_key(&self, sort: ProductSort) -> SortKey {
        match sort {
            ProductSort::Relevance => SortKey::Relevance(self.rank),
            ProductSort::PriceAsc => SortKey::PriceAsc(self.price_minor),
            ProductSort::PriceDesc => SortKey::PriceDesc(self.price_minor),
            ProductSort::Newest => SortKey::Newest(self.created_at.timestamp_micros()),
            ProductSort::Name => SortKey::Name(self.sort_name.clone()),
        }
    }

    fn category(&self) -> Option<CategoryRef> {
        match (self.category_id, &self.category_name, &self.category_slug) {
            (Some(id), Some(name), Some(slug)) => Some(CategoryRef {
                id: CategoryId(id),
                name: name.clone(),
                slug: slug.clone(),
            }),
            _ => None,
        }
    }
}

/// A variant row.
#[derive(Debug, FromRow)]
pub struct VariantRow {
    id: Uuid,
    product_id: Uuid,
    name: String,
    sku: String,
    price_adjustment_minor: i64,
    options: Json<BTreeMap<String, String>>,
    stock_quantity: Option<i32>,
    display_order: i32,
}

impl VariantRow {
    fn stock(&self) -> Option<u32> {
        self.stock_quantity.map(|q| u32::try_from(q).unwrap_or(0))
    }
}

const PRODUCT_COLUMNS: &str = "p.id, p.sku, p.name, p.description, p.price_minor, p.cost_minor, p.category_id, \
    c.name AS category_name, c.slug AS category_slug, p.is_published, p.preparation_time_minutes, p.archived_at, \
    p.created_at, p.updated_at, lower(p.name) AS sort_name, p.rating_count, p.rating_sum";

const PRODUCT_FROM: &str = " FROM products p LEFT JOIN product_categories c \
    ON c.business_id = p.business_id AND c.id = p.category_id";

/// The business's currency (every catalog price is in it).
///
/// # Errors
/// Database errors; `not_found` when the business is not visible.
pub async fn currency(tx: &mut Tx, business: BusinessId) -> Result<Currency> {
    let code: String = sqlx::query_scalar("SELECT currency FROM businesses WHERE id = $1")
        .bind(business.0)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| Error::not_found("business"))?;
    Currency::parse(code.trim()).map_err(Error::unexpected)
}

/// The search text as a `tsquery`. A scalar subquery, so PostgreSQL evaluates it once per
/// execution also in a generic plan (storefront reads force generic plans, migration 0014; a
/// bare function call would parse the text again for every row).
fn push_tsquery(qb: &mut QueryBuilder<'_, Postgres>, q: &str) {
    qb.push("(SELECT websearch_to_tsquery('english', ");
    qb.push_bind(q.to_owned());
    qb.push("))");
}

fn push_rank(qb: &mut QueryBuilder<'_, Postgres>, search: Option<&str>) {
    match search {
        Some(q) => {
            qb.push("ts_rank(p.search, ");
            push_tsquery(qb, q);
            qb.push(")");
        }
        None => {
            qb.push("0::real");
        }
    }
}

/// One page of products for `listing`, and the cursor of the next page.
///
/// Keyset pagination: rows are ordered by `(sort key, id)` and a page starts strictly after the
/// cursor's pair, so products added or changed between two page fetches never shift the pages
/// (no product repeats, none that existed is skipped).
///
/// # Errors
/// Database errors.
pub async fn list(
    tx: &mut Tx,
    business: BusinessId,
    listing: &ProductListing,
    audience: Audience,
) -> Result<(Vec<ProductRow>, Option<String>)> {
    let search = listing.search.as_deref();
    let mut qb = QueryBuilder::<Postgres>::new(format!("SELECT {PRODUCT_COLUMNS}, "));
    push_rank(&mut qb, search);
    qb.push(" AS rank");
    qb.push(PRODUCT_FROM);
    qb.push(" WHERE p.business_id = ");
    qb.push_bind(business.0);
    qb.push(" AND p.archived_at IS NULL");
    if audience == Audience::Public {
        qb.push(" AND p.is_published");
    }
    if let Some(filter) = &listing.category {
        // The category and its subcategories (UNION, not UNION ALL: terminates even on a cycle,
        // which the API never creates). On the storefront, RLS hides inactive categories, which
        // also cuts their subtrees off.
        qb.push(" AND p.category_id IN (WITH RECURSIVE sub(id) AS (SELECT id FROM product_categories WHERE business_id = ");
        qb.push_bind(business.0);
        match filter {
            CategoryFilter::Id(id) => {
                qb.push(" AND id = ");
                qb.push_bind(id.0);
            }
            CategoryFilter::Slug(slug) => {
                qb.push(" AND slug = ");
                qb.push_bind(slug.as_str().to_owned());
            }
        }
        qb.push(" UNION SELECT k.id FROM product_categories k JOIN sub ON k.parent_id = sub.id WHERE k.business_id = ");
        qb.push_bind(business.0);
        qb.push(") SELECT id FROM sub)");
    }
    if let Some(min) = listing.min_price {
        qb.push(" AND p.price_minor >= ");
        qb.push_bind(min);
    }
    if let Some(max) = listing.max_price {
        qb.push(" AND p.price_minor <= ");
        qb.push_bind(max);
    }
    if let Some(q) = search {
        // `@@` is not leakproof, so under row level security it filters the business's rows
        // rather than driving an index; fine for catalogs of thousands of products.
        qb.push(" AND p.search @@ ");
        push_tsquery(&mut qb, q);
    }
    if listing.available_only {
        // fleetfront_domain::catalog::product_available, in SQL.
        qb.push(
            " AND (NOT EXISTS (SELECT 1 FROM product_variants v WHERE v.business_id = p.business_id AND v.product_id = p.id) \
             OR EXISTS (SELECT 1 FROM product_variants v WHERE v.business_id = p.business_id AND v.product_id = p.id \
                        AND (v.stock_quantity IS NULL OR v.stock_quantity > 0)))",
        );
    }
    if let Some(after) = &listing.after {
        let id = after.id.0;
        match &after.key {
            SortKey::Relevance(rank) => {
                qb.push(" AND (");
                push_rank(&mut qb, search);
                qb.push(", p.id) < (");
                qb.push_bind(*rank);
                qb.push("::real, ");
            }
            SortKey::PriceAsc(price) => {
                qb.push(" AND (p.price_minor, p.id) > (");
                qb.push_bind(*price);
                qb.push(", ");
            }
            SortKey::PriceDesc(price) => {
                qb.push(" AND (p.price_minor, p.id) < (");
                qb.push_bind(*price);
                qb.push(", ");
            }
            SortKey::Newest(micros) => {
                let at = DateTime::from_timestamp_micros(*micros).ok_or_else(|| {
                    Error::field("cursor", "invalid_cursor", "the cursor is not valid")
                })?;
                qb.push(" AND (p.created_at, p.id) < (");
                qb.push_bind(at);
                qb.push(", ");
            }
            SortKey::Name(name) => {
                qb.push(" AND (lower(p.name), p.id) > (");
                qb.push_bind(name.clone());
                qb.push(", ");
            }
        }
        qb.push_bind(id);
        qb.push(")");
    }
    qb.push(match listing.sort {
        ProductSort::Relevance => " ORDER BY rank DESC, p.id DESC",
        ProductSort::PriceAsc => " ORDER BY p.price_minor, p.id",
        ProductSort::PriceDesc => " ORDER BY p.price_minor DESC, p.id DESC",
        ProductSort::Newest => " ORDER BY p.created_at DESC, p.id DESC",
        ProductSort::Name => " ORDER BY lower(p.name), p.id",
    });
    qb.push(" LIMIT ");
    qb.push_bind(i64::from(listing.limit) + 1);
    let mut rows: Vec<ProductRow> = qb.build_query_as().fetch_all(&mut **tx).await?;
    let limit = usize::try_from(listing.limit).expect("a page size fits usize");
    let next = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|row| {
            ListingCursor {
                key: row.sort_key(listing.sort),
                id: ProductId(row.id),
            }
            .encode()
        })
    } else {
        None
    };
    Ok((rows, next))
}

/// One product (archived ones too for the staff; the storefront sees published ones only).
///
/// # Errors
/// Database errors.
pub async fn product(
    tx: &mut Tx,
    business: BusinessId,
    id: Uuid,
    audience: Audience,
) -> Result<Option<ProductRow>> {
    let public = match audience {
        Audience::Staff => "",
        Audience::Public => " AND p.is_published AND p.archived_at IS NULL",
    };
    Ok(sqlx::query_as(&format!(
        "SELECT {PRODUCT_COLUMNS}, 0::real AS rank{PRODUCT_FROM} WHERE p.business_id = $1 AND p.id = $2{public}"
    ))
    .bind(business.0)
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?)
}

/// The variants of `products`, by product, in display order.
///
/// # Errors
/// Database errors.
pub async fn variants_of(
    tx: &mut Tx,
    business: BusinessId,
    products: &[Uuid],
) -> Result<HashMap<Uuid, Vec<VariantRow>>> {
    let rows: Vec<VariantRow> = sqlx::query_as(
        "SELECT id, product_id, name, sku, price_adjustment_minor, options, stock_quantity, display_order \
         FROM product_variants WHERE business_id = $1 AND product_id = ANY($2) ORDER BY product_id, display_order, id",
    )
    .bind(business.0)
    .bind(products)
    .fetch_all(&mut **tx)
    .await?;
    let mut by_product: HashMap<Uuid, Vec<VariantRow>> = HashMap::new();
    for row in rows {
        by_product.entry(row.product_id).or_default().push(row);
    }
    Ok(by_product)
}

fn price(minor: i64, adjustment: i64, currency: Currency) -> Result<Money> {
    catalog::variant_price(Money::new(minor, currency), adjustment).map_err(Error::unexpected)
}

/// The business's view of a product.
///
/// # Errors
/// Stored values out of range (unexpected).
pub fn product_view(
    row: ProductRow,
    variants: Vec<VariantRow>,
    currency: Currency,
) -> Result<ProductView> {
    let available = catalog::product_available(variants.iter().map(VariantRow::stock));
    let variants = variants
        .into_iter()
        .map(|v| {
            Ok(VariantView {
                id: VariantId(v.id),
                price: price(row.price_minor, v.price_adjustment_minor, currency)?,
                price_adjustment: Money::new(v.price_adjustment_minor, currency),
                available: catalog::variant_available(v.stock()),
                stock_quantity: v.stock(),
                name: v.name,
                sku: v.sku,
                options: v.options.0,
                display_order: v.display_order,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(ProductView {
        id: ProductId(row.id),
        category: row.category(),
        sku: row.sku,
        name: row.name,
        description: row.description,
        price: Money::new(row.price_minor, currency),
        cost: row.cost_minor.map(|c| Money::new(c, currency)),
        is_published: row.is_published,
        preparation_time_minutes: u16::try_from(row.preparation_time_minutes).unwrap_or(0),
        available,
        variants,
        images: Vec::new(),
        archived_at: row.archived_at,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// The storefront's view of a product: nothing private (no cost, SKU or stock counts).
///
/// # Errors
/// Stored values out of range (unexpected).
pub fn public_product(
    row: ProductRow,
    variants: Vec<VariantRow>,
    currency: Currency,
) -> Result<PublicProduct> {
    let available = catalog::product_available(variants.iter().map(VariantRow::stock));
    let variants = variants
        .into_iter()
        .map(|v| {
            Ok(PublicVariant {
                id: VariantId(v.id),
                price: price(row.price_minor, v.price_adjustment_minor, currency)?,
                available: catalog::variant_available(v.stock()),
                name: v.name,
                options: v.options.0,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(PublicProduct {
        id: ProductId(row.id),
        category: row.category(),
        name: row.name,
        description: row.description,
        price: Money::new(row.price_minor, currency),
        preparation_time_minutes: u16::try_from(row.preparation_time_minutes).unwrap_or(0),
        available,
        variants,
        images: Vec::new(),
        rating: RatingSummary::new(i64::from(row.rating_count), row.rating_sum),
    })
}

/// Rows with their variants, mapped by `view`, in the rows' order.
///
/// # Errors
/// Database errors.
pub async fn with_variants<T>(
    tx: &mut Tx,
    business: BusinessId,
    rows: Vec<ProductRow>,
    currency: Currency,
    view: fn(ProductRow, Vec<VariantRow>, Currency) -> Result<T>,
) -> Result<Vec<T>> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let mut variants = variants_of(tx, business, &ids).await?;
    rows.into_iter()
        .map(|row| {
            let own = variants.remove(&row.id).unwrap_or_default();
            view(row, own, currency)
        })
        .collect()
}

/// Field errors for SKUs already used by other products or other products' variants, so a
/// clash is reported on the exact field (the unique constraints remain the final word under
/// concurrency; see `error.rs`).
///
/// # Errors
/// Database errors.
pub async fn sku_clashes(
    tx: &mut Tx,
    business: BusinessId,
    product: Uuid,
    product_sku: Option<&Sku>,
    variants: Option<&[VariantDraft]>,
) -> Result<FieldErrors> {
    let mut errors = FieldErrors::default();
    if let Some(sku) = product_sku {
        let taken: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM products WHERE business_id = $1 AND sku = $2 AND id <> $3)",
        )
        .bind(business.0)
        .bind(sku.as_str())
        .bind(product)
        .fetch_one(&mut **tx)
        .await?;
        if taken {
            errors.push("sku", "taken", "another product has this SKU");
        }
    }
    if let Some(variants) = variants {
        let skus: Vec<&str> = variants.iter().map(|v| v.sku.as_str()).collect();
        let taken: Vec<String> = sqlx::query_scalar(
            "SELECT sku FROM product_variants WHERE business_id = $1 AND sku = ANY($2) AND product_id <> $3",
        )
        .bind(business.0)
        .bind(&skus)
        .bind(product)
        .fetch_all(&mut **tx)
        .await?;
        for (i, variant) in variants.iter().enumerate() {
            if taken.iter().any(|t| t == variant.sku.as_str()) {
                errors.push(
                    &format!("variants[{i}].sku"),
                    "taken",
                    "another product's variant has this SKU",
                );
            }
        }
    }
    Ok(errors)
}

/// Refuses with 409 and the field errors, if any.
///
/// # Errors
/// `conflict` with the field errors.
pub fn refuse_clashes(errors: FieldErrors) -> Result<()> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::validation(errors).with_code(ErrorCode::Conflict))
    }
}

/// Replaces a product's variants with `variants`. A variant whose SKU the product already has
/// keeps its id (so references to it, such as carts, survive an edit); the others are new, and
/// variants no longer listed are deleted.
///
/// # Errors
/// Database errors; `conflict` when a SKU belongs to another product's variant.
pub async fn replace_variants(
    tx: &mut Tx,
    business: BusinessId,
    product: Uuid,
    variants: &[VariantDraft],
) -> Result<()> {
    let skus: Vec<&str> = variants.iter().map(|v| v.sku.as_str()).collect();
    sqlx::query(
        "DELETE FROM product_variants WHERE business_id = $1 AND product_id = $2 AND NOT (sku = ANY($3))",
    )
    .bind(business.0)
    .bind(product)
    .bind(&skus)
    .execute(&mut **tx)
    .await?;
    for variant in variants {
        let written = sqlx::query(
            "INSERT INTO product_variants (business_id, id, product_id, name, sku, price_adjustment_minor, options, stock_quantity, display_order) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT ON CONSTRAINT product_variants_sku_key DO UPDATE SET name = EXCLUDED.name, \
               price_adjustment_minor = EXCLUDED.price_adjustment_minor, options = EXCLUDED.options, \
               stock_quantity = EXCLUDED.stock_quantity, display_order = EXCLUDED.display_order \
             WHERE product_variants.product_id = EXCLUDED.product_id",
        )
        .bind(business.0)
        .bind(new_id())
        .bind(product)
        .bind(variant.name.as_str())
        .bind(variant.sku.as_str())
        .bind(variant.price_adjustment_minor)
        .bind(Json(&variant.options))
        .bind(variant.stock_quantity.map(|q| i32::try_from(q).unwrap_or(i32::MAX)))
        .bind(variant.display_order)
        .execute(&mut **tx)
        .await?;
        if written.rows_affected() == 0 {
            // The SKU belongs to another product's variant (a concurrent write got there first).
            return Err(Error::field(
                "variants",
                "taken",
                format!(
                    "SKU {} is used by another product's variant",
                    variant.sku.as_str()
                ),
            )
            .with_code(ErrorCode::Conflict));
        }
    }
    Ok(())
}

/// Every category of the business as tree nodes.
///
/// # Errors
/// Database errors.
pub async fn category_nodes(tx: &mut Tx, business: BusinessId) -> Result<Vec<CategoryNode>> {
    let rows: Vec<(Uuid, Option<Uuid>, i32)> = sqlx::query_as(
        "SELECT id, parent_id, display_order FROM product_categories WHERE business_id = $1",
    )
    .bind(business.0)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, parent, display_order)| CategoryNode {
            id: CategoryId(id),
            parent: parent.map(CategoryId),
            display_order,
        })
        .collect())
}

/// Whether a category exists in the business.
///
/// # Errors
/// Database errors.
pub async fn category_exists(tx: &mut Tx, business: BusinessId, id: CategoryId) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM product_categories WHERE business_id = $1 AND id = $2)",
    )
    .bind(business.0)
    .bind(id.0)
    .fetch_one(&mut **tx)
    .await?)
}
