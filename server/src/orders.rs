//! Orders: checkout (price, stock, discount, payment authorization, confirmation email, all or
//! nothing), sales at the till ([`sell`]), reading orders back, status transitions through the
//! domain's `order::apply`, and the acceptance-timeout task. SQL for orders and their children
//! lives here.
//!
//! # Checkout ordering
//!
//! Two database round trips, each one statement running as the shopper's principal in its own
//! implicit transaction (PL/pgSQL functions of migration 0015, so row level security applies to
//! every read and write inside them):
//!
//! 1. The request is parsed; nothing is read yet.
//! 2. `checkout_context()` reads what the checkout is priced from: the store and its commerce
//!    settings, the lines' products and variants, the discount code, a saved address or card,
//!    and any stored response to the `Idempotency-Key` (replayed when the fingerprint matches,
//!    refused as `idempotency_key_reused` otherwise). A customer's session is re-verified in the
//!    same statement unless it was verified moments ago. The server then validates and prices
//!    the checkout with fleetfront-domain; every refusal happens here, before any payment.
//! 3. The payment is authorized **before** the order is written, so no row lock is held while a
//!    payment provider answers. The amount is the total the customer saw, which step 2 checked
//!    against the current total, so the authorized amount is the charged amount. The provider's
//!    idempotency key is derived from this attempt's order id. A retry after a success never
//!    gets here (step 2 replays it); an authorization whose attempt does not place its own
//!    order (refused in step 4, or a concurrent duplicate that won) is released.
//! 4. `place_order()` writes the order in one statement: the idempotency row first (a
//!    concurrent duplicate waits on its unique key, then replays the stored response), a check
//!    that every line's product is still for sale at the price step 2 priced it at (otherwise
//!    the checkout is priced again from a fresh context, which reports what changed, and placed
//!    once more), stock taken with a conditional `UPDATE` (sorted by variant, so two carts never
//!    deadlock), the discount use counted, then the order, its lines, the ledger's
//!    authorization row, its first status entry, a tracking event, the confirmation email, the
//!    audit row and the stored response. Any failure rolls the whole statement back.
//!
//! A card that needs the customer's step (3-D Secure) does not refuse the checkout: the order
//! is placed as `awaiting_payment` with the provider's client secret in the answer, and becomes
//! pending once the provider holds the money ([`confirm_awaiting`], from the client's
//! [`confirm_payment`] or Stripe's webhook), or is cancelled when the step is abandoned.
//!
//! Status transitions commit first, together with payment jobs for the money they move
//! ([`enqueue_payment_effects`]); the jobs run after the commit ([`settle`], then the payment
//! job task for retries), for the same reason: no lock is held across a provider call.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use fleetfront_domain::api::mutations::Sale;
use fleetfront_domain::api::order::{
    CheckoutFulfilment, CheckoutRequest, OrderItemView, OrderView, PaymentAction, PaymentChoice,
    StatusEntry, TillSaleView, TrackingView, MAX_ORDER_LINES,
};
use fleetfront_domain::api::FieldErrors;
use fleetfront_domain::auth::Claims;
use fleetfront_domain::distance::metres_between;
use fleetfront_domain::hours::OperatingHours;
use fleetfront_domain::money::Currency;
use fleetfront_domain::order::{
    self, AcceptanceWindow, Effect, FulfilmentKind, OrderEvent, OrderState, OrderStatus, Outcome,
    Party, PaymentState, Transition,
};
use fleetfront_domain::permission::AccountKind;
use fleetfront_domain::pricing::{
    self, BasisPoints, Cart, CartLine, DeliveryFeeRule, Discount, DiscountValue, Fulfilment,
    PricingError, PricingRules, Quantity, Quote, TaxBase, TaxMode, TaxRule, VariantChoice,
};
use fleetfront_domain::value::TextLine;
use fleetfront_domain::value::{Coordinates, Email, Phone, TimeZoneName};
use fleetfront_domain::{BusinessId, ErrorCode, Money};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::FromRow;
use uuid::Uuid;

use crate::app::App;
use crate::audit::{self, Event, Who};
use crate::auth::{random_secret, secret_hash};
use crate::context::Ctx;
use crate::db::{new_id, set_principal, SessionRow, Tx};
use crate::error::{Error, Result};
use crate::payments::jobs::{self, JobEffect, NewJob};
use crate::payments::ledger;
use crate::payments::{
    Authorization, AuthorizeRequest, GatewayKind, PaymentGateway, PaymentRef, TransactionStatus,
};

/// Who checks out.
#[derive(Clone, Debug)]
pub enum Shopper {
    /// A signed-in customer; the store comes from the token.
    Customer(Arc<Claims>),
    /// A guest of the store named by subdomain.
    Guest {
        /// The store's subdomain.
        store: String,
        /// Where the confirmation goes.
        email: Email,
        /// How the store reaches the guest.
        phone: Phone,
    },
}

/// The longest `Idempotency-Key` accepted.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;

/// Parses an `Idempotency-Key` header value.
///
/// # Errors
/// `validation_failed` when missing, empty, too long or not printable ASCII.
pub fn parse_idempotency_key(raw: Option<&str>) -> Result<String> {
    let key = raw.map(str::trim).unwrap_or_default();
    if key.is_empty() {
        return Err(Error::field(
            "Idempotency-Key",
            "required",
            "send an Idempotency-Key header (a random UUID per order attempt)",
        ));
    }
    if key.len() > MAX_IDEMPOTENCY_KEY || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::field(
            "Idempotency-Key",
            "invalid",
            "the Idempotency-Key must be 1 to 255 printable ASCII characters",
        ));
    }
    Ok(key.to_owned())
}

/// The fingerprint of a request: SHA-256 of method, path and the (re-serialized) body.
pub fn fingerprint(method: &str, path: &str, body: &impl serde::Serialize) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update(b" ");
    hasher.update(path.as_bytes());
    hasher.update(b"\n");
    hasher.update(serde_json::to_vec(body).unwrap_or_default());
    hasher.finalize().to_vec()
}

/// A checkout request after parsing.
struct Parsed {
    lines: Vec<(Uuid, Option<Uuid>, Quantity, Option<i64>)>,
    tip: i64,
    discount_code: Option<String>,
    address: Option<AddressChoice>,
    scheduled_for: Option<DateTime<Utc>>,
    expected_total: i64,
}

enum AddressChoice {
    Saved(Uuid),
    Inline(Box<fleetfront_domain::api::customer::Address>),
}

fn parse(req: &CheckoutRequest, guest: bool) -> Result<Parsed> {
    let mut errors = FieldErrors::default();
    if req.items.is_empty() || req.items.len() > MAX_ORDER_LINES {
        errors.push(
            "items",
            "invalid",
            format!("an order has 1 to {MAX_ORDER_LINES} lines"),
        );
    }
    let mut lines = Vec::with_capacity(req.items.len());
    for (i, item) in req.items.iter().enumerate() {
        match Quantity::new(item.quantity) {
            Ok(q) => lines.push((
                item.product_id,
                item.variant_id,
                q,
                item.expected_unit_price_minor,
            )),
            Err(e) => errors.push(&format!("items[{i}].quantity"), "invalid", e.to_string()),
        }
        if item.expected_unit_price_minor.is_some_and(|p| p < 0) {
            errors.push(
                &format!("items[{i}].expected_unit_price_minor"),
                "invalid",
                "a price is never negative",
            );
        }
    }
    if req.tip_minor < 0 {
        errors.push("tip_minor", "invalid", "the tip must not be negative");
    }
    if req.expected_total_minor < 0 {
        errors.push(
            "expected_total_minor",
            "invalid",
            "a total is never negative",
        );
    }
    let discount_code = match req.discount_code.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(code)
            if code.len() <= 32
                && code
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Some(code.to_owned())
        }
        Some(_) => {
            errors.push("discount_code", "invalid", "not a discount code");
            None
        }
    };
    if let PaymentChoice::Card { token } = &req.payment {
        if token.trim().is_empty() || token.len() > 255 {
            errors.push(
                "payment.token",
                "invalid",
                "send the payment provider's token",
            );
        }
    }
    if guest && matches!(req.payment, PaymentChoice::SavedCard { .. }) {
        errors.push(
            "payment.payment_method_id",
            "not_allowed",
            "guests have no saved cards; send the payment provider's token",
        );
    }
    let address = match &req.fulfilment {
        CheckoutFulfilment::Pickup => None,
        CheckoutFulfilment::Delivery {
            address_id: Some(id),
            address: None,
        } if !guest => Some(AddressChoice::Saved(*id)),
        CheckoutFulfilment::Delivery {
            address_id: None,
            address: Some(input),
        } => match input.parse() {
            Ok(a) => Some(AddressChoice::Inline(Box::new(a))),
            Err(e) => {
                for f in e.0 {
                    errors.push(
                        &format!("fulfilment.address.{}", f.field),
                        &f.code,
                        f.message,
                    );
                }
                None
            }
        },
        CheckoutFulfilment::Delivery { .. } => {
            let message = if guest {
                "a guest delivery needs an inline address with coordinates"
            } else {
                "give either address_id or address"
            };
            errors.push("fulfilment", "invalid", message);
            None
        }
    };
    if errors.is_empty() {
        Ok(Parsed {
            lines,
            tip: req.tip_minor,
            discount_code,
            address,
            scheduled_for: req.scheduled_for,
            expected_total: req.expected_total_minor,
        })
    } else {
        Err(Error::validation(errors))
    }
}

/// The store's side of a checkout.
#[derive(Clone, serde::Deserialize)]
struct StoreRow {
    name: String,
    subdomain: String,
    currency: String,
    time_zone: String,
    latitude: f64,
    longitude: f64,
    delivery_radius_m: i32,
    operating_hours: Value,
    is_published: bool,
    tax_rate_bps: i32,
    prices_include_tax: bool,
    tax_includes_delivery: bool,
    offers_delivery: bool,
    offers_pickup: bool,
    delivery_base_fee_minor: i64,
    delivery_fee_per_km_minor: i64,
    delivery_included_m: i32,
    delivery_max_distance_m: Option<i32>,
    minimum_order_minor: i64,
    acceptance_window_secs: i32,
}

fn currency_of(raw: &str) -> Result<Currency> {
    Currency::parse(raw.trim()).map_err(Error::unexpected)
}

/// Lets this transaction's `public` principal see the one order with this tracking hash.
///
/// # Errors
/// Database errors.
pub async fn set_tracking_hash(tx: &mut Tx, hash: &[u8]) -> Result<()> {
    sqlx::query("SELECT set_config('app.tracking_hash', $1, true)")
        .bind(hex::encode(hash))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn pricing_error(e: PricingError) -> Error {
    let code = match &e {
        PricingError::BelowMinimumOrder { .. } => ErrorCode::BelowMinimumOrder,
        PricingError::DiscountNotYetValid { .. }
        | PricingError::DiscountExpired { .. }
        | PricingError::DiscountExhausted { .. }
        | PricingError::DiscountBelowMinimum { .. } => {
            return Error::field("discount_code", e.code(), e.to_string())
                .with_code(ErrorCode::DiscountInvalid)
        }
        PricingError::BeyondDeliveryDistance { .. } => ErrorCode::OutsideDeliveryArea,
        PricingError::TipTooLarge { .. } => {
            return Error::field("tip_minor", e.code(), e.to_string())
        }
        PricingError::DeliveryNotOffered => {
            return Error::field("fulfilment", e.code(), e.to_string())
        }
        _ => return Error::field("items", e.code(), e.to_string()),
    };
    Error::new(code, e.to_string())
}

#[derive(serde::Deserialize, FromRow)]
struct ProductRow {
    id: Uuid,
    name: String,
    price_minor: i64,
}

#[derive(serde::Deserialize, FromRow)]
struct VariantRow {
    id: Uuid,
    product_id: Uuid,
    name: String,
    price_adjustment_minor: i64,
    stock_quantity: Option<i32>,
}

#[derive(serde::Deserialize)]
struct DiscountRow {
    id: Uuid,
    code: String,
    percent_bps: Option<i32>,
    amount_minor: Option<i64>,
    valid_from: Option<DateTime<Utc>>,
    valid_until: Option<DateTime<Utc>>,
    minimum_subtotal_minor: i64,
    usage_limit: Option<i32>,
    times_used: i32,
}

/// A saved address, as snapshotted into the order.
#[derive(serde::Deserialize, serde::Serialize)]
struct AddressRow {
    address_line1: String,
    address_line2: Option<String>,
    city: String,
    postal_code: Option<String>,
    country: String,
    latitude: f64,
    longitude: f64,
    delivery_instructions: Option<String>,
}

#[derive(serde::Deserialize)]
struct SavedCard {
    token: String,
    gateway_customer: Option<String>,
}

#[derive(serde::Deserialize)]
struct StoredResponse {
    fingerprint: String,
    status: i32,
    body: Value,
}

/// Everything a checkout is priced from, read in one statement (`checkout_context()`,
/// migration 0015) as the shopper's principal.
#[derive(serde::Deserialize)]
struct Context {
    business_id: Option<Uuid>,
    /// What `app_begin()` said about a customer's session, when it had to be verified.
    #[serde(default)]
    session: Option<SessionRow>,
    #[serde(default)]
    stored: Option<StoredResponse>,
    #[serde(default)]
    store: Option<StoreRow>,
    #[serde(default)]
    products: Vec<ProductRow>,
    #[serde(default)]
    variants: Vec<VariantRow>,
    #[serde(default)]
    discount: Option<DiscountRow>,
    #[serde(default)]
    address: Option<AddressRow>,
    #[serde(default)]
    saved_card: Option<SavedCard>,
    #[serde(default)]
    customer_email: Option<String>,
}

/// The priced cart and what the order needs beyond the quote.
struct Priced {
    quote: Quote,
    /// Per line, the product's price and the variant's adjustment it was priced at.
    catalog: Vec<(i64, i64)>,
    variant_names: Vec<Option<String>>,
    discount_id: Option<Uuid>,
    address: Option<(Value, u32)>,
    store: StoreRow,
    currency: Currency,
}

/// Validates and prices the checkout from its context (no IO).
fn price(ctx: &Context, parsed: &Parsed, now: DateTime<Utc>) -> Result<Priced> {
    let store = ctx
        .store
        .clone()
        .filter(|s| s.is_published)
        .ok_or_else(|| Error::not_found("store"))?;
    let currency = currency_of(&store.currency)?;
    let tz = TimeZoneName::parse(&store.time_zone)
        .map_err(|e| Error::unexpected(anyhow::anyhow!("stored time zone: {}", e.message)))?
        .tz();
    let hours: OperatingHours =
        serde_json::from_value(store.operating_hours.clone()).unwrap_or_default();
    match parsed.scheduled_for {
        Some(at) if at < now => {
            return Err(Error::field(
                "scheduled_for",
                "in_the_past",
                "the scheduled time has passed",
            ))
        }
        Some(at) if !hours.is_open_at(at, tz) => {
            return Err(Error::field(
                "scheduled_for",
                "store_closed",
                "the store is closed at the scheduled time",
            )
            .with_code(ErrorCode::StoreClosed))
        }
        None if !hours.is_open_at(now, tz) => {
            return Err(Error::new(
                ErrorCode::StoreClosed,
                "the store is closed now; schedule the order for its opening hours",
            ))
        }
        _ => {}
    }

    // Fulfilment and the drop-off.
    let store_location = Coordinates {
        latitude: store.latitude,
        longitude: store.longitude,
    };
    let address = match &parsed.address {
        None => {
            if !store.offers_pickup {
                return Err(Error::field(
                    "fulfilment",
                    "pickup_not_offered",
                    "this store does not offer pickup",
                ));
            }
            None
        }
        Some(choice) => {
            let (snapshot, location) = match choice {
                AddressChoice::Saved(_) => {
                    let Some(r) = &ctx.address else {
                        return Err(Error::field(
                            "fulfilment.address_id",
                            "unknown_address",
                            "no such saved address",
                        ));
                    };
                    (
                        serde_json::to_value(r).map_err(Error::unexpected)?,
                        Coordinates {
                            latitude: r.latitude,
                            longitude: r.longitude,
                        },
                    )
                }
                AddressChoice::Inline(a) => (
                    json!({"address_line1": a.address_line1.as_str(),
                           "address_line2": a.address_line2.as_ref().map(|v| v.as_str()),
                           "city": a.city.as_str(), "postal_code": a.postal_code.as_ref().map(|v| v.as_str()),
                           "country": a.country.as_str(), "latitude": a.location.latitude, "longitude": a.location.longitude,
                           "delivery_instructions": a.delivery_instructions.as_ref().map(|v| v.as_str())}),
                    a.location,
                ),
            };
            if !store.offers_delivery {
                return Err(Error::field(
                    "fulfilment",
                    "delivery_not_offered",
                    "this store does not deliver",
                ));
            }
            let distance = metres_between(store_location, location);
            let radius = u32::try_from(store.delivery_radius_m).unwrap_or(0);
            if distance > radius {
                return Err(Error::new(
                    ErrorCode::OutsideDeliveryArea,
                    format!(
                        "the address is {distance} m away; this store delivers up to {radius} m"
                    ),
                ));
            }
            Some((snapshot, distance))
        }
    };

    // Current catalog rows (row level security shows only published, unarchived products).
    let lines: Vec<_> = parsed
        .lines
        .iter()
        .map(|(p, v, q, _)| (*p, *v, *q))
        .collect();
    let CatalogLines {
        cart: cart_lines,
        catalog,
        variant_names,
    } = catalog_lines(&ctx.products, &ctx.variants, &lines, currency)?;

    // The discount, as stored now.
    let (discount, discount_id) = match (&parsed.discount_code, &ctx.discount) {
        (None, _) => (None, None),
        (Some(_), None) => {
            return Err(
                Error::field("discount_code", "unknown_code", "no such discount code")
                    .with_code(ErrorCode::DiscountInvalid),
            );
        }
        (Some(_), Some(r)) => {
            let value = match (r.percent_bps, r.amount_minor) {
                (Some(bps), _) => DiscountValue::Percent {
                    rate: BasisPoints::new(i64::from(bps)).map_err(Error::unexpected)?,
                },
                (None, Some(amount)) => DiscountValue::Fixed {
                    amount: Money::new(amount, currency),
                },
                (None, None) => {
                    return Err(Error::unexpected(anyhow::anyhow!("discount without value")))
                }
            };
            (
                Some(Discount {
                    code: r.code.clone(),
                    value,
                    valid_from: r.valid_from,
                    valid_until: r.valid_until,
                    minimum_subtotal: Money::new(r.minimum_subtotal_minor, currency),
                    usage_limit: r.usage_limit.map(|l| u32::try_from(l).unwrap_or(0)),
                    times_used: u32::try_from(r.times_used).unwrap_or(0),
                }),
                Some(r.id),
            )
        }
    };

    let rules = PricingRules {
        currency,
        tax: tax_rule(
            store.tax_rate_bps,
            store.prices_include_tax,
            store.tax_includes_delivery,
        )?,
        delivery: store.offers_delivery.then(|| DeliveryFeeRule {
            base_fee: Money::new(store.delivery_base_fee_minor, currency),
            fee_per_km: Money::new(store.delivery_fee_per_km_minor, currency),
            included_m: u32::try_from(store.delivery_included_m).unwrap_or(0),
            max_distance_m: u32::try_from(
                store
                    .delivery_max_distance_m
                    .unwrap_or(store.delivery_radius_m),
            )
            .unwrap_or(0),
        }),
        minimum_order: Money::new(store.minimum_order_minor, currency),
    };
    let cart = Cart {
        lines: cart_lines,
        fulfilment: match &address {
            None => Fulfilment::Pickup,
            Some((_, distance_m)) => Fulfilment::Delivery {
                distance_m: *distance_m,
            },
        },
        tip: Money::new(parsed.tip, currency),
    };
    let quote = pricing::quote(&cart, &rules, discount.as_ref(), now).map_err(pricing_error)?;

    // What the customer saw against what the prices are now.
    let mut seen = quote.clone();
    for (line, (_, _, _, expected)) in seen.lines.iter_mut().zip(&parsed.lines) {
        if let Some(minor) = expected {
            line.unit_price = Money::new(*minor, currency);
        }
    }
    seen.total = Money::new(parsed.expected_total, currency);
    let check = pricing::check_prices(&seen, &quote);
    if !check.is_unchanged() {
        let mut errors = FieldErrors::default();
        for change in &check.changed_lines {
            let index = quote
                .lines
                .iter()
                .position(|l| {
                    l.product_id == change.product_id && l.variant_id == change.variant_id
                })
                .unwrap_or(0);
            errors.push(
                &format!("items[{index}]"),
                "price_changed",
                format!("{}: {}", change.name, change.change),
            );
        }
        errors.push(
            "expected_total_minor",
            "price_changed",
            format!(
                "the total is now {} (you saw {})",
                check.current_total, check.seen_total
            ),
        );
        let detail = format!(
            "prices changed since your quote: the total is now {}; nothing was ordered",
            check.current_total
        );
        return Err(Error::validation(errors)
            .with_code(ErrorCode::PriceChanged)
            .with_detail(detail));
    }
    Ok(Priced {
        quote,
        catalog,
        variant_names,
        discount_id,
        address,
        store,
        currency,
    })
}

/// The store's tax rule from its commerce settings.
fn tax_rule(rate_bps: i32, prices_include_tax: bool, includes_delivery: bool) -> Result<TaxRule> {
    Ok(TaxRule {
        rate: BasisPoints::new(i64::from(rate_bps)).map_err(Error::unexpected)?,
        mode: if prices_include_tax {
            TaxMode::Inclusive
        } else {
            TaxMode::Exclusive
        },
        base: if includes_delivery {
            TaxBase::GoodsAndDelivery
        } else {
            TaxBase::Goods
        },
    })
}

/// The lines of a checkout or a sale, matched to the catalog rows read for them.
struct CatalogLines {
    cart: Vec<CartLine>,
    /// Per line, the product's price and the variant's adjustment it was priced at.
    catalog: Vec<(i64, i64)>,
    variant_names: Vec<Option<String>>,
}

/// Why a line cannot be had, in words that name the product.
fn sold_out_words(name: &str, stock: i32, wanted: u16) -> String {
    if stock <= 0 {
        format!("{name} is sold out: none left, {wanted} wanted")
    } else {
        format!("{name} is sold out: only {stock} left, {wanted} wanted")
    }
}

/// Matches each line (product, variant, quantity) to its product and variant in `products`
/// and `variants` (the rows read for it) and checks the stock they show: the prices and names
/// the order is made of. Shared by checkout and the till's sales.
///
/// # Errors
/// `validation_failed` for a missing variant choice, `item_unavailable` for a product or
/// variant not in the rows, `out_of_stock` (naming the products) for a line the stock does
/// not cover.
fn catalog_lines(
    products: &[ProductRow],
    variants: &[VariantRow],
    lines: &[(Uuid, Option<Uuid>, Quantity)],
    currency: Currency,
) -> Result<CatalogLines> {
    let products: HashMap<Uuid, &ProductRow> = products.iter().map(|p| (p.id, p)).collect();
    let mut unavailable = FieldErrors::default();
    let mut missing_variant = FieldErrors::default();
    let mut short = FieldErrors::default();
    let mut sold_out = Vec::new();
    let mut cart_lines = Vec::with_capacity(lines.len());
    let mut catalog = Vec::with_capacity(lines.len());
    let mut variant_names = Vec::with_capacity(lines.len());
    for (i, (product_id, variant_id, quantity)) in lines.iter().enumerate() {
        let Some(product) = products.get(product_id) else {
            unavailable.push(
                &format!("items[{i}]"),
                "unavailable",
                "this product is not for sale",
            );
            continue;
        };
        let own: Vec<&VariantRow> = variants
            .iter()
            .filter(|v| v.product_id == *product_id)
            .collect();
        let variant = match variant_id {
            Some(v) => match own.iter().find(|r| r.id == *v) {
                Some(r) => Some(*r),
                None => {
                    unavailable.push(
                        &format!("items[{i}].variant_id"),
                        "unavailable",
                        "this variant is not for sale",
                    );
                    continue;
                }
            },
            None if !own.is_empty() => {
                missing_variant.push(
                    &format!("items[{i}].variant_id"),
                    "required",
                    "choose a variant of this product",
                );
                continue;
            }
            None => None,
        };
        if let Some(stock) = variant.and_then(|v| v.stock_quantity) {
            if i64::from(stock) < i64::from(quantity.get()) {
                short.push(
                    &format!("items[{i}]"),
                    "out_of_stock",
                    format!("only {stock} left of {}", product.name),
                );
                sold_out.push(sold_out_words(&product.name, stock, quantity.get()));
            }
        }
        variant_names.push(variant.map(|v| v.name.clone()));
        catalog.push((
            product.price_minor,
            variant.map_or(0, |v| v.price_adjustment_minor),
        ));
        cart_lines.push(CartLine {
            product_id: *product_id,
            name: product.name.clone(),
            unit_price: Money::new(product.price_minor, currency),
            variant: variant.map(|v| VariantChoice {
                variant_id: v.id,
                price_adjustment: Money::new(v.price_adjustment_minor, currency),
            }),
            quantity: *quantity,
        });
    }
    if !missing_variant.is_empty() {
        return Err(Error::validation(missing_variant));
    }
    if !unavailable.is_empty() {
        return Err(Error::validation(unavailable).with_code(ErrorCode::ItemUnavailable));
    }
    if !short.is_empty() {
        let detail = format!("{}; nothing was ordered", sold_out.join("; "));
        return Err(Error::validation(short)
            .with_code(ErrorCode::OutOfStock)
            .with_detail(detail));
    }
    Ok(CatalogLines {
        cart: cart_lines,
        catalog,
        variant_names,
    })
}

fn gateway_key(order_id: Uuid) -> String {
    format!("order:{order_id}:authorize")
}

/// Who checks out, as the checkout functions and the idempotency namespace see them.
struct Buyer<'a> {
    /// Principal kind: `customer` or `public` (a guest).
    kind: &'static str,
    customer: Option<Uuid>,
    /// The idempotency namespace: `customer:<id>` or `guest:<email>`.
    principal: String,
    who: Who,
    /// A customer's claims when the session must be verified against the database.
    verify: Option<&'a Claims>,
}

fn buyer<'a>(app: &App, shopper: &'a Shopper) -> Result<Buyer<'a>> {
    match shopper {
        Shopper::Customer(claims) => {
            let not_customer = || Error::forbidden("this endpoint is for a store's customers");
            if claims.kind != AccountKind::Customer || claims.business_id.is_none() {
                return Err(not_customer());
            }
            let verify = match app.db.cached_actor(claims) {
                Some(actor) => {
                    actor?;
                    None
                }
                None => Some(claims.as_ref()),
            };
            Ok(Buyer {
                kind: "customer",
                customer: Some(claims.sub),
                principal: format!("customer:{}", claims.sub),
                who: Who::customer(Some(claims.sub)),
                verify,
            })
        }
        Shopper::Guest { email, .. } => Ok(Buyer {
            kind: "public",
            customer: None,
            principal: format!("guest:{}", email.as_str()),
            who: Who {
                kind: "guest",
                id: None,
            },
            verify: None,
        }),
    }
}

/// Reads the checkout's context (one round trip) and checks the session and the store.
async fn load_context(
    app: &App,
    shopper: &Shopper,
    buyer: &Buyer<'_>,
    key: &str,
    parsed: &Parsed,
    req: &CheckoutRequest,
) -> Result<(BusinessId, Context)> {
    let product_ids: Vec<Uuid> = parsed.lines.iter().map(|l| l.0).collect();
    let (subdomain, business) = match shopper {
        Shopper::Guest { store, .. } => (Some(store.as_str()), None),
        Shopper::Customer(claims) => (None, claims.business_id.map(|b| b.0)),
    };
    let input = json!({
        "kind": buyer.kind,
        "subdomain": subdomain,
        "business_id": business,
        "customer_id": buyer.customer,
        "validate_session": buyer.verify.is_some(),
        "principal": buyer.principal,
        "key": key,
        "product_ids": product_ids,
        "discount_code": parsed.discount_code,
        "address_id": match &parsed.address {
            Some(AddressChoice::Saved(id)) => Some(*id),
            _ => None,
        },
        "payment_method_id": match &req.payment {
            PaymentChoice::SavedCard { payment_method_id } => Some(*payment_method_id),
            _ => None,
        },
    });
    let sqlx::types::Json(mut context): sqlx::types::Json<Context> =
        sqlx::query_scalar("SELECT checkout_context($1)")
            .bind(input)
            .fetch_one(&app.db.pool)
            .await?;
    if let Some(claims) = buyer.verify {
        app.db.verify_session(claims, context.session.take())?;
    }
    let Some(business) = context.business_id else {
        return Err(Error::field(
            "store",
            "unknown_store",
            "there is no such store",
        ));
    };
    Ok((BusinessId(business), context))
}

/// A stored response for this key: replayed when the request is the same, refused otherwise.
fn replay(stored: &StoredResponse, fingerprint: &[u8]) -> Result<(StatusCode, Value)> {
    if stored.fingerprint != hex::encode(fingerprint) {
        return Err(Error::new(
            ErrorCode::IdempotencyKeyReused,
            "this Idempotency-Key was used for a different request; use a new key",
        ));
    }
    let status = StatusCode::from_u16(u16::try_from(stored.status).unwrap_or(500))
        .map_err(Error::unexpected)?;
    Ok((status, stored.body.clone()))
}

/// Places an order (see the module documentation for the ordering). Returns the response to
/// send: 201 with the order, or a replay of the first response to the same key.
///
/// # Errors
/// Validation, availability, price, stock, payment and database errors; nothing is written.
pub async fn checkout(
    app: &App,
    ctx: &Ctx,
    shopper: &Shopper,
    key: &str,
    fingerprint: &[u8],
    req: &CheckoutRequest,
) -> Result<(StatusCode, Value)> {
    let parsed = parse(req, matches!(shopper, Shopper::Guest { .. }))?;
    let buyer = buyer(app, shopper)?;
    let now = app.clock.now();

    // 2. The context, and a replay?
    let (business, context) = load_context(app, shopper, &buyer, key, &parsed, req).await?;
    if let Some(stored) = &context.stored {
        return replay(stored, fingerprint);
    }
    let priced = price(&context, &parsed, now)?;
    if matches!(req.payment, PaymentChoice::SavedCard { .. }) && context.saved_card.is_none() {
        return Err(Error::field(
            "payment.payment_method_id",
            "unknown_payment_method",
            "no such saved card",
        ));
    }

    // 3. Authorize outside any transaction.
    let gateway: Arc<dyn PaymentGateway> = match &req.payment {
        PaymentChoice::Cash => app.payments.cash(),
        PaymentChoice::Card { .. } | PaymentChoice::SavedCard { .. } => {
            app.payments.card().ok_or_else(|| {
                Error::field(
                    "payment.method",
                    "unavailable",
                    "card payments are not available at this store",
                )
                .with_code(ErrorCode::PaymentMethodUnavailable)
            })?
        }
    };
    let order_id = new_id();
    let token = random_secret();
    let token_hash = secret_hash(&token);
    let email = match shopper {
        Shopper::Guest { email, .. } => Some(email.as_str().to_owned()),
        Shopper::Customer(_) => None,
    };
    let authorization = gateway
        .authorize(AuthorizeRequest {
            idempotency_key: gateway_key(order_id),
            business_id: business.0,
            order_id,
            amount: Money::new(parsed.expected_total, priced.currency),
            payment_method: match (&req.payment, &context.saved_card) {
                (PaymentChoice::Card { token }, _) => Some(token.clone()),
                (PaymentChoice::SavedCard { .. }, Some(card)) => Some(card.token.clone()),
                _ => None,
            },
            receipt_email: email,
            customer: context
                .saved_card
                .as_ref()
                .and_then(|card| card.gateway_customer.clone()),
        })
        .await
        .map_err(|e| match e {
            crate::payments::PaymentError::Declined(m) => Error::new(
                ErrorCode::PaymentDeclined,
                format!("the payment was declined: {m}"),
            ),
            crate::payments::PaymentError::Invalid(m) => Error::field("payment", "invalid", m),
            crate::payments::PaymentError::Unavailable(_) => Error::new(
                ErrorCode::Unavailable,
                "the payment provider is unavailable; retry with the same Idempotency-Key",
            ),
        })?;
    // A card that needs the customer's step (3-D Secure) places the order as awaiting payment:
    // the business sees it once the provider holds the money (`confirm_payment`).
    let (payment_reference, action) = match authorization {
        Authorization::Authorized { gateway_payment_id } => (gateway_payment_id, None),
        Authorization::RequiresAction {
            gateway_payment_id,
            client_secret,
            next_action,
        } => (
            gateway_payment_id,
            Some(PendingAction {
                client_secret,
                next_action,
            }),
        ),
    };

    // 4. The order, in one statement. When the catalog changed since step 2, the checkout is
    // priced again from a fresh context (which reports what changed) and placed once more.
    let attempt = Attempt {
        business,
        buyer: &buyer,
        key,
        fingerprint,
        order_id,
        token: &token,
        token_hash: &token_hash,
        payment_reference: &payment_reference,
        gateway: gateway.kind(),
        action: action.as_ref(),
        now,
    };
    let mut result = place(app, ctx, shopper, req, &parsed, &context, &priced, &attempt).await;
    if matches!(result, Err(PlaceError::CatalogChanged)) {
        result = match load_context(app, shopper, &buyer, key, &parsed, req).await {
            Ok((_, fresh)) => match &fresh.stored {
                Some(stored) => replay(stored, fingerprint)
                    .map(|(status, body)| (status, body, Placed::Replayed))
                    .map_err(PlaceError::Refused),
                None => match price(&fresh, &parsed, now) {
                    Ok(repriced) => {
                        place(app, ctx, shopper, req, &parsed, &fresh, &repriced, &attempt).await
                    }
                    Err(e) => Err(PlaceError::Refused(e)),
                },
            },
            Err(e) => Err(PlaceError::Refused(e)),
        };
    }
    let card = !matches!(req.payment, PaymentChoice::Cash);
    match result {
        Ok((status, body, Placed::New)) => Ok((status, body)),
        Ok((status, body, Placed::Replayed)) => {
            // A concurrent duplicate placed the order: this attempt's authorization is unused.
            if card {
                release_quietly(gateway.as_ref(), &payment_reference, order_id).await;
            }
            Ok((status, body))
        }
        Err(e) => {
            if card {
                release_quietly(gateway.as_ref(), &payment_reference, order_id).await;
            }
            Err(match e {
                PlaceError::Refused(e) => e,
                PlaceError::CatalogChanged => Error::new(
                    ErrorCode::Conflict,
                    "the store changed its catalog while the order was placed; nothing was ordered, retry",
                ),
            })
        }
    }
}

/// Whether a checkout attempt placed its own order or replayed a concurrent duplicate's.
enum Placed {
    New,
    Replayed,
}

/// Why [`place`] placed nothing.
enum PlaceError {
    /// A line's product or price changed after the checkout was priced.
    CatalogChanged,
    /// Any other refusal or failure, as answered.
    Refused(Error),
}

impl From<Error> for PlaceError {
    fn from(e: Error) -> Self {
        PlaceError::Refused(e)
    }
}

impl From<sqlx::Error> for PlaceError {
    fn from(e: sqlx::Error) -> Self {
        PlaceError::Refused(e.into())
    }
}

/// The request's idempotency identity, and what this attempt made before placing the order.
struct Attempt<'a> {
    business: BusinessId,
    buyer: &'a Buyer<'a>,
    key: &'a str,
    fingerprint: &'a [u8],
    order_id: Uuid,
    token: &'a str,
    token_hash: &'a [u8],
    payment_reference: &'a str,
    gateway: GatewayKind,
    /// The customer's step in the provider's UI, when the authorization waits for it.
    action: Option<&'a PendingAction>,
    now: DateTime<Utc>,
}

/// What the provider asks the customer to do before the authorization holds (3-D Secure).
struct PendingAction {
    client_secret: String,
    next_action: String,
}

async fn release_quietly(gateway: &dyn PaymentGateway, reference: &str, order_id: Uuid) {
    let release = gateway
        .cancel(PaymentRef {
            idempotency_key: format!("order:{order_id}:release"),
            gateway_payment_id: reference.to_owned(),
            amount: None,
        })
        .await;
    if let Err(e) = release {
        tracing::warn!(order = %order_id, error = %e, "could not release an unused authorization");
    }
}

/// Writes the order with `place_order()` (migration 0015): the idempotency claim, the catalog
/// check, stock, the discount use, the order, its lines, the ledger's authorization row, the
/// first status entry, a tracking event, the confirmation email and the audit row, all in one
/// statement, so all or nothing.
#[allow(clippy::too_many_arguments)] // the checkout's parts, each named
async fn place(
    app: &App,
    ctx: &Ctx,
    shopper: &Shopper,
    req: &CheckoutRequest,
    parsed: &Parsed,
    context: &Context,
    priced: &Priced,
    attempt: &Attempt<'_>,
) -> std::result::Result<(StatusCode, Value, Placed), PlaceError> {
    let Attempt {
        business,
        buyer,
        order_id,
        now,
        action,
        ..
    } = *attempt;
    let quote = &priced.quote;
    let (guest_email, guest_phone, notify_email) = match shopper {
        Shopper::Guest { email, phone, .. } => (
            Some(email.as_str().to_owned()),
            Some(phone.as_str().to_owned()),
            email.as_str().to_owned(),
        ),
        Shopper::Customer(_) => {
            let email = context.customer_email.clone().ok_or_else(|| {
                Error::new(
                    ErrorCode::SessionRevoked,
                    "this session is no longer valid; sign in again",
                )
            })?;
            (None, None, email)
        }
    };
    let window = AcceptanceWindow::from_secs(i64::from(priced.store.acceptance_window_secs))
        .unwrap_or_default();
    // An order awaiting payment: the deadline is the customer's, the acceptance window starts
    // when the payment holds.
    let (status, payment_status, deadline) = match action {
        None => (
            OrderStatus::Pending,
            "authorized",
            order::acceptance_deadline(now, window),
        ),
        Some(_) => (
            OrderStatus::AwaitingPayment,
            "requires_action",
            order::payment_deadline(now),
        ),
    };
    let fulfilment = if priced.address.is_some() {
        FulfilmentKind::Delivery
    } else {
        FulfilmentKind::Pickup
    };
    let items: Vec<OrderItemView> = quote
        .lines
        .iter()
        .enumerate()
        .map(|(i, l)| OrderItemView {
            product_id: l.product_id,
            variant_id: l.variant_id,
            product_name: l.name.clone(),
            variant_name: priced.variant_names.get(i).cloned().flatten(),
            unit_price: l.unit_price,
            quantity: i64::from(l.quantity.get()),
            line_total: l.line_total,
        })
        .collect();
    let tracking_url = format!(
        "{}api/v1/orders/{order_id}/tracking?token={}",
        app.storefront_url(&priced.store.subdomain),
        attempt.token
    );
    let email = json!({
        "template": "order_confirmation",
        "to": notify_email,
        "order_id": order_id,
        "store_name": priced.store.name,
        "items": items.iter().map(|i| json!({
            "name": i.product_name, "variant": i.variant_name, "quantity": i.quantity,
            "line_total": i.line_total.to_string(),
        })).collect::<Vec<_>>(),
        "total": quote.total.to_string(),
        "fulfilment": fulfilment.as_str(),
        "tracking_url": tracking_url,
    });
    let view = OrderView {
        id: order_id,
        business_id: business.0,
        customer_id: buyer.customer,
        guest_email: guest_email.clone(),
        guest_phone: guest_phone.clone(),
        status,
        fulfilment,
        delivery_address: priced.address.as_ref().map(|a| a.0.clone()),
        scheduled_for: parsed.scheduled_for,
        items,
        subtotal: quote.subtotal,
        discount: quote.discount,
        discount_code: quote.discount_code.clone(),
        tax: quote.tax,
        tax_mode: quote.tax_mode,
        delivery_fee: quote.delivery_fee,
        tip: quote.tip,
        total: quote.total,
        payment_method: req.payment.as_str().to_owned(),
        payment_status: payment_status.to_owned(),
        placed_at: now,
        acceptance_deadline: deadline,
        accepted_at: None,
        prep_time_minutes: None,
        cancellation_reason: None,
        tracking_token: Some(attempt.token.to_owned()),
        payment_action: action.map(|a| PaymentAction {
            payment_intent: attempt.payment_reference.to_owned(),
            client_secret: a.client_secret.clone(),
            next_action: a.next_action.clone(),
            expires_at: deadline,
        }),
        till: None,
    };
    let body = serde_json::to_value(&view).map_err(Error::unexpected)?;

    // Stock, in variant order so that concurrent carts lock rows in one order.
    let mut takes: Vec<(Uuid, i32, usize)> = quote
        .lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| l.variant_id.map(|v| (v, i32::from(l.quantity.get()), i)))
        .collect();
    takes.sort();
    let event = Event::ok("order.place", "order", order_id).with_details(json!({
        "total_minor": quote.total.minor, "payment_method": req.payment.as_str(),
    }));
    let input = json!({
        "kind": buyer.kind,
        "business_id": business.0,
        "customer_id": buyer.customer,
        "tracking_hash": hex::encode(attempt.token_hash),
        "principal": buyer.principal,
        "key": attempt.key,
        "fingerprint": hex::encode(attempt.fingerprint),
        "response": body,
        "lines": quote.lines.iter().zip(&priced.catalog).enumerate().map(|(i, (l, (price, adjustment)))| json!({
            "line": i, "product_id": l.product_id, "variant_id": l.variant_id,
            "price_minor": price, "adjustment_minor": adjustment,
        })).collect::<Vec<_>>(),
        "stock": takes.iter().map(|(variant, quantity, line)| json!({
            "variant_id": variant, "quantity": quantity, "line": line,
        })).collect::<Vec<_>>(),
        "discount_id": priced.discount_id,
        "order": {
            "business_id": business.0, "id": order_id, "customer_id": buyer.customer,
            "guest_email": guest_email, "guest_phone": guest_phone, "notify_email": notify_email,
            "status": status.as_str(), "fulfilment": fulfilment.as_str(),
            "delivery_address": priced.address.as_ref().map(|a| a.0.clone()),
            "delivery_distance_m": priced.address.as_ref().map(|a| i32::try_from(a.1).unwrap_or(i32::MAX)),
            "scheduled_for": parsed.scheduled_for, "currency": priced.currency.code(),
            "subtotal_minor": quote.subtotal.minor, "discount_minor": quote.discount.minor,
            "tax_minor": quote.tax.minor, "tax_included": quote.tax_mode == TaxMode::Inclusive,
            "delivery_fee_minor": quote.delivery_fee.minor, "tip_minor": quote.tip.minor,
            "total_minor": quote.total.minor, "discount_code": quote.discount_code,
            "discount_code_id": priced.discount_id, "payment_method": req.payment.as_str(),
            "payment_status": payment_status, "payment_reference": attempt.payment_reference,
            "placed_at": now, "acceptance_deadline": deadline,
        },
        "items": quote.lines.iter().enumerate().map(|(i, l)| json!({
            "business_id": business.0, "order_id": order_id, "line_no": i,
            "product_id": l.product_id, "variant_id": l.variant_id, "product_name": l.name,
            "variant_name": priced.variant_names.get(i).cloned().flatten(),
            "unit_price_minor": l.unit_price.minor, "quantity": l.quantity.get(),
            "line_total_minor": l.line_total.minor,
        })).collect::<Vec<_>>(),
        // The ledger's row of the authorization.
        "payment": {
            "business_id": business.0, "id": new_id(), "order_id": order_id,
            "customer_id": buyer.customer, "amount_minor": quote.total.minor,
            "currency": priced.currency.code(), "payment_method": req.payment.as_str(),
            "payment_gateway": attempt.gateway.as_str(),
            "gateway_transaction_id": attempt.payment_reference,
            "status": if action.is_some() { TransactionStatus::Pending } else { TransactionStatus::Authorized }.as_str(),
        },
        "history": {
            "business_id": business.0, "id": new_id(), "order_id": order_id,
            "from_status": null, "to_status": status.as_str(), "event": "place",
            "outcome": "applied", "by_party": Party::Customer.as_str(),
            "actor_id": buyer.customer, "at": now,
        },
        "tracking": {
            "business_id": business.0, "id": new_id(), "order_id": order_id,
            "kind": "placed", "at": now,
        },
        // An order awaiting payment holds its confirmation until the payment holds (or drops
        // it when it never does).
        "outbox": {
            "business_id": business.0, "id": new_id(), "topic": "email", "payload": email,
            "next_attempt_at": if action.is_some() { Some("infinity") } else { None },
        },
        "audit": audit::row(ctx, buyer.who, business, &event),
    });
    let outcome = sqlx::query_scalar::<_, Value>("SELECT place_order($1)")
        .bind(input)
        .fetch_one(&app.db.pool)
        .await;
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(sqlx::Error::Database(e)) => {
            let line = e
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .and_then(|pg| pg.detail())
                .and_then(|d| d.parse::<usize>().ok())
                .unwrap_or(0);
            return Err(match e.code().as_deref() {
                Some("FFC01") => PlaceError::CatalogChanged,
                Some("FFC02") => PlaceError::Refused(
                    Error::field(
                        &format!("items[{line}]"),
                        "out_of_stock",
                        format!(
                            "{} is out of stock",
                            quote.lines.get(line).map_or("an item", |l| l.name.as_str())
                        ),
                    )
                    .with_code(ErrorCode::OutOfStock),
                ),
                Some("FFC03") => PlaceError::Refused(
                    Error::field(
                        "discount_code",
                        "discount_exhausted",
                        "this discount code has been used up",
                    )
                    .with_code(ErrorCode::DiscountInvalid),
                ),
                _ => PlaceError::Refused(sqlx::Error::Database(e).into()),
            });
        }
        Err(e) => return Err(e.into()),
    };
    match outcome["outcome"].as_str() {
        Some("placed") => Ok((StatusCode::CREATED, body, Placed::New)),
        Some("replay") => {
            let stored: StoredResponse =
                serde_json::from_value(outcome).map_err(Error::unexpected)?;
            let (status, body) = replay(&stored, attempt.fingerprint)?;
            Ok((status, body, Placed::Replayed))
        }
        _ => Err(PlaceError::Refused(Error::new(
            ErrorCode::Unavailable,
            "the request conflicted with another; retry it",
        ))),
    }
}

/// Sends the held emails of an order now.
async fn release_held_email(tx: &mut Tx, business: BusinessId, order_id: Uuid) -> Result<()> {
    sqlx::query(
        "UPDATE outbox_messages SET next_attempt_at = now() WHERE business_id = $1 \
         AND next_attempt_at = 'infinity' AND processed_at IS NULL AND failed_at IS NULL \
         AND payload->>'order_id' = $2::text",
    )
    .bind(business.0)
    .bind(order_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Drops the held emails of an order that ended unpaid (kept, marked failed, for the record).
async fn drop_held_email(tx: &mut Tx, business: BusinessId, order_id: Uuid) -> Result<()> {
    sqlx::query(
        "UPDATE outbox_messages SET failed_at = now(), last_error = 'the order was never paid' \
         WHERE business_id = $1 AND next_attempt_at = 'infinity' AND processed_at IS NULL \
         AND failed_at IS NULL AND payload->>'order_id' = $2::text",
    )
    .bind(business.0)
    .bind(order_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

// Sales at the till -------------------------------------------------------------------------------

/// What [`sell`] did.
#[derive(Clone, Debug)]
pub struct Sold {
    /// The order: as created, or as it is when this order id was sold before.
    pub view: OrderView,
    /// Whether this call created the order (false: the order id was sold before).
    pub created: bool,
}

/// Records a sale at the till (point of sale) in `tx`, as the staff member `staff` of
/// `business`: the order `sale.order_id`, priced from the catalog as the staff see it (every
/// product not archived, published or not; prices never come from the till) with the store's
/// tax and no minimum, delivery fee, tip or discount, its tracked stock taken with the same
/// conditional update as checkout's (stock never goes negative: a line the stock does not
/// cover refuses the whole sale), accepted at once (`pending → confirmed` through the order
/// state machine, the preparation time being the longest of its products'), and its payment
/// captured: one completed payment in the ledger and the platform's commission, as when an
/// order's payment is captured.
///
/// The money is taken at the store, cash or the store's own card terminal, so the order is
/// stored with `payment_method = 'cash'` (the business holds the money, which is what the
/// payouts read from it) and the tender in the order's `tender` (and the payment's
/// `metadata`); it has no gateway reference, so no payment job ever runs for it. It is of the
/// `till` channel: no guest email and no notify address (nobody to email), with the customer's
/// name and the kitchen's note as the till took them.
///
/// `sale.order_id` is the sale's idempotency key: a transaction-scoped advisory lock orders
/// two sales of one id, and the second finds the order and answers it as it is
/// (`created: false`), creating nothing.
///
/// # Errors
/// `item_unavailable`, `validation_failed` (a missing variant), `out_of_stock` naming the
/// product, database errors.
pub async fn sell(
    tx: &mut Tx,
    business: BusinessId,
    staff: Uuid,
    sale: &Sale,
    sold_at: DateTime<Utc>,
) -> Result<Sold> {
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtextextended('sale:' || $1::text || ':' || $2::text, 0))",
    )
    .bind(business.0)
    .bind(sale.order_id)
    .execute(&mut **tx)
    .await?;
    if let Some(row) = find(tx, business, sale.order_id).await? {
        let view = views(tx, vec![row])
            .await?
            .pop()
            .ok_or_else(|| Error::not_found("order"))?;
        return Ok(Sold {
            view,
            created: false,
        });
    }
    let store: Option<(String, i32, bool, bool)> = sqlx::query_as(
        "SELECT b.currency::text, coalesce(c.tax_rate_bps, 0), \
                coalesce(c.prices_include_tax, true), coalesce(c.tax_includes_delivery, false) \
           FROM businesses b LEFT JOIN business_commerce_settings c ON c.business_id = b.id \
          WHERE b.id = $1",
    )
    .bind(business.0)
    .fetch_optional(&mut **tx)
    .await?;
    let (currency, tax_bps, tax_included, tax_on_delivery) =
        store.ok_or_else(|| Error::not_found("business"))?;
    let currency = currency_of(&currency)?;
    let ids: Vec<Uuid> = sale.lines.iter().map(|l| l.0).collect();
    let products: Vec<ProductRow> = sqlx::query_as(
        "SELECT id, name, price_minor FROM products \
          WHERE business_id = $1 AND id = ANY ($2) AND archived_at IS NULL",
    )
    .bind(business.0)
    .bind(&ids)
    .fetch_all(&mut **tx)
    .await?;
    let variants: Vec<VariantRow> = sqlx::query_as(
        "SELECT id, product_id, name, price_adjustment_minor, stock_quantity FROM product_variants \
          WHERE business_id = $1 AND product_id = ANY ($2)",
    )
    .bind(business.0)
    .bind(&ids)
    .fetch_all(&mut **tx)
    .await?;
    let CatalogLines {
        cart: lines,
        variant_names,
        ..
    } = catalog_lines(&products, &variants, &sale.lines, currency)?;
    let rules = PricingRules {
        currency,
        tax: tax_rule(tax_bps, tax_included, tax_on_delivery)?,
        delivery: None,
        minimum_order: Money::zero(currency),
    };
    let cart = Cart {
        lines,
        fulfilment: Fulfilment::Pickup,
        tip: Money::zero(currency),
    };
    let quote = pricing::quote(&cart, &rules, None, sold_at).map_err(pricing_error)?;

    // Stock, in variant order (as checkout takes it), never below zero.
    let mut takes: Vec<(Uuid, i32, usize)> = quote
        .lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| l.variant_id.map(|v| (v, i32::from(l.quantity.get()), i)))
        .collect();
    takes.sort();
    for (variant, quantity, line) in takes {
        let taken = sqlx::query(
            "UPDATE product_variants SET stock_quantity = stock_quantity - $3 \
              WHERE business_id = $1 AND id = $2 AND stock_quantity >= $3",
        )
        .bind(business.0)
        .bind(variant)
        .bind(quantity)
        .execute(&mut **tx)
        .await?;
        if taken.rows_affected() == 1 {
            continue;
        }
        let left: Option<Option<i32>> = sqlx::query_scalar(
            "SELECT stock_quantity FROM product_variants WHERE business_id = $1 AND id = $2",
        )
        .bind(business.0)
        .bind(variant)
        .fetch_optional(&mut **tx)
        .await?;
        let name = quote.lines.get(line).map_or("an item", |l| l.name.as_str());
        match left {
            // Stock is not tracked for this variant.
            Some(None) => {}
            Some(Some(left)) => {
                let words = sold_out_words(name, left, u16::try_from(quantity).unwrap_or(0));
                return Err(
                    Error::field(&format!("items[{line}]"), "out_of_stock", words.clone())
                        .with_code(ErrorCode::OutOfStock)
                        .with_detail(format!("{words}; nothing was sold")),
                );
            }
            None => {
                return Err(Error::field(
                    &format!("items[{line}].variant_id"),
                    "unavailable",
                    format!("{name}: this variant is not for sale"),
                )
                .with_code(ErrorCode::ItemUnavailable))
            }
        }
    }

    // Accepted at the till: the state machine's own step from pending.
    let prep: i32 = sqlx::query_scalar(
        "SELECT coalesce(max(preparation_time_minutes), 0) FROM products \
          WHERE business_id = $1 AND id = ANY ($2)",
    )
    .bind(business.0)
    .bind(&ids)
    .fetch_one(&mut **tx)
    .await?;
    let prep_time =
        order::PrepTime::from_minutes(i64::from(prep).clamp(1, 240)).map_err(Error::unexpected)?;
    let placed = OrderState {
        status: OrderStatus::Pending,
        fulfilment: FulfilmentKind::Pickup,
        payment: PaymentState::Captured,
        acceptance_deadline: order::acceptance_deadline(sold_at, AcceptanceWindow::default()),
    };
    let t = order::apply(
        &placed,
        OrderEvent::Accept { prep_time },
        Party::Staff,
        sold_at,
    )
    .map_err(order_error)?;
    if t.outcome != Outcome::Applied {
        return Err(Error::unexpected(anyhow::anyhow!(
            "a new order's acceptance was {}",
            t.outcome.as_str()
        )));
    }

    let order_id = sale.order_id;
    let token = random_secret();
    sqlx::query(
        "INSERT INTO orders (business_id, id, channel, tender, customer_name, note, status, fulfilment, currency, \
           subtotal_minor, discount_minor, tax_minor, tax_included, delivery_fee_minor, tip_minor, total_minor, \
           payment_method, payment_status, placed_at, accepted_at, acceptance_deadline, prep_time_minutes, \
           tracking_token_hash) \
         VALUES ($1, $2, 'till', $3, $16, $17, $4, 'pickup', $5, $6, $7, $8, $9, $10, 0, $11, 'cash', 'captured', $12, $12, $13, $14, $15)",
    )
    .bind(business.0)
    .bind(order_id)
    .bind(sale.payment.as_str())
    .bind(t.status.as_str())
    .bind(currency.code())
    .bind(quote.subtotal.minor)
    .bind(quote.discount.minor)
    .bind(quote.tax.minor)
    .bind(quote.tax_mode == TaxMode::Inclusive)
    .bind(quote.delivery_fee.minor)
    .bind(quote.total.minor)
    .bind(sold_at)
    .bind(placed.acceptance_deadline)
    .bind(i32::try_from(prep_time.minutes()).unwrap_or(1))
    .bind(secret_hash(&token))
    .bind(sale.customer_name.as_ref().map(TextLine::as_str))
    .bind(sale.note.as_ref().map(TextLine::as_str))
    .execute(&mut **tx)
    .await?;
    for (i, l) in quote.lines.iter().enumerate() {
        sqlx::query(
            "INSERT INTO order_items (business_id, order_id, line_no, product_id, variant_id, product_name, \
               variant_name, unit_price_minor, quantity, line_total_minor) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(business.0)
        .bind(order_id)
        .bind(i32::try_from(i).unwrap_or(i32::MAX))
        .bind(l.product_id)
        .bind(l.variant_id)
        .bind(&l.name)
        .bind(variant_names.get(i).cloned().flatten())
        .bind(l.unit_price.minor)
        .bind(i32::from(l.quantity.get()))
        .bind(l.line_total.minor)
        .execute(&mut **tx)
        .await?;
    }
    // The log: placed, then the acceptance's own steps.
    let accept = t.event.kind().as_str();
    let steps = std::iter::once((None, OrderStatus::Pending, "place", false)).chain(
        t.changes
            .iter()
            .map(|c| (Some(c.from), c.to, accept, c.filled_in)),
    );
    for (from, to, event, filled_in) in steps {
        sqlx::query(
            "INSERT INTO order_status_history (business_id, id, order_id, from_status, to_status, event, outcome, \
               by_party, actor_id, at, filled_in) \
             VALUES ($1, $2, $3, $4, $5, $6, 'applied', $7, $8, $9, $10)",
        )
        .bind(business.0)
        .bind(new_id())
        .bind(order_id)
        .bind(from.map(OrderStatus::as_str))
        .bind(to.as_str())
        .bind(event)
        .bind(Party::Staff.as_str())
        .bind(staff)
        .bind(sold_at)
        .bind(filled_in)
        .execute(&mut **tx)
        .await?;
    }
    sqlx::query(
        "INSERT INTO order_tracking_events (business_id, id, order_id, kind, at) VALUES ($1, $2, $3, 'placed', $4)",
    )
    .bind(business.0)
    .bind(new_id())
    .bind(order_id)
    .bind(sold_at)
    .execute(&mut **tx)
    .await?;
    let payment = ledger::record_payment(
        tx,
        &ledger::NewPayment {
            business_id: business.0,
            order_id,
            customer_id: None,
            amount: quote.total,
            payment_method: "cash",
            gateway: GatewayKind::Cash,
            gateway_transaction_id: None,
            status: TransactionStatus::Completed,
        },
    )
    .await?;
    sqlx::query(
        "UPDATE payment_transactions SET metadata = metadata || jsonb_build_object('channel', 'pos', 'tender', $3::text) \
          WHERE business_id = $1 AND id = $2",
    )
    .bind(business.0)
    .bind(payment)
    .bind(sale.payment.as_str())
    .execute(&mut **tx)
    .await?;
    ledger::record_order_commission(tx, business.0, order_id, quote.total).await?;
    let row = find(tx, business, order_id)
        .await?
        .ok_or_else(|| Error::not_found("order"))?;
    let mut view = views(tx, vec![row])
        .await?
        .pop()
        .ok_or_else(|| Error::not_found("order"))?;
    view.tracking_token = Some(token);
    Ok(Sold {
        view,
        created: true,
    })
}

// Reading orders ---------------------------------------------------------------------------------

/// An order row as stored.
#[derive(Clone, Debug, FromRow)]
pub struct OrderRow {
    business_id: Uuid,
    id: Uuid,
    customer_id: Option<Uuid>,
    guest_email: Option<String>,
    guest_phone: Option<String>,
    notify_email: Option<String>,
    status: String,
    fulfilment: String,
    delivery_address: Option<Value>,
    scheduled_for: Option<DateTime<Utc>>,
    currency: String,
    subtotal_minor: i64,
    discount_minor: i64,
    tax_minor: i64,
    tax_included: bool,
    delivery_fee_minor: i64,
    tip_minor: i64,
    total_minor: i64,
    discount_code: Option<String>,
    payment_method: String,
    payment_status: String,
    payment_reference: Option<String>,
    placed_at: DateTime<Utc>,
    accepted_at: Option<DateTime<Utc>>,
    acceptance_deadline: DateTime<Utc>,
    prep_time_minutes: Option<i32>,
    cancellation_reason: Option<String>,
    channel: String,
    tender: Option<String>,
    customer_name: Option<String>,
    note: Option<String>,
}

/// The columns of [`OrderRow`].
pub const ORDER_COLUMNS: &str = "business_id, id, customer_id, guest_email, guest_phone, notify_email, status, fulfilment, \
    delivery_address, scheduled_for, currency, subtotal_minor, discount_minor, tax_minor, tax_included, \
    delivery_fee_minor, tip_minor, total_minor, discount_code, payment_method, payment_status, payment_reference, \
    placed_at, accepted_at, acceptance_deadline, prep_time_minutes, cancellation_reason, channel, tender, \
    customer_name, note";

impl OrderRow {
    /// The order's id.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// The customer who placed it; `None` for a guest.
    pub fn customer_id(&self) -> Option<Uuid> {
        self.customer_id
    }

    /// The store.
    pub fn business_id(&self) -> BusinessId {
        BusinessId(self.business_id)
    }

    /// Whether the order waits for the customer's payment step; the business does not see it.
    pub fn is_awaiting_payment(&self) -> bool {
        self.status == OrderStatus::AwaitingPayment.as_str()
    }

    fn status(&self) -> Result<OrderStatus> {
        OrderStatus::parse(&self.status)
            .ok_or_else(|| Error::unexpected(anyhow::anyhow!("stored status {}", self.status)))
    }

    fn fulfilment(&self) -> FulfilmentKind {
        if self.fulfilment == "pickup" {
            FulfilmentKind::Pickup
        } else {
            FulfilmentKind::Delivery
        }
    }

    /// What the order state machine (and the review rules) need to know of the order.
    ///
    /// # Errors
    /// An unknown stored status (never, by the table's constraint).
    pub fn state(&self) -> Result<OrderState> {
        Ok(OrderState {
            status: self.status()?,
            fulfilment: self.fulfilment(),
            payment: PaymentState::of_payment_status(&self.payment_status),
            acceptance_deadline: self.acceptance_deadline,
        })
    }

    /// What the order costs in all.
    ///
    /// # Errors
    /// An unknown stored currency (never, by the table's constraint).
    pub fn total(&self) -> Result<Money> {
        self.money(self.total_minor)
    }

    fn money(&self, minor: i64) -> Result<Money> {
        Ok(Money::new(minor, currency_of(&self.currency)?))
    }

    fn view(&self, items: Vec<OrderItemView>) -> Result<OrderView> {
        Ok(OrderView {
            id: self.id,
            business_id: self.business_id,
            customer_id: self.customer_id,
            guest_email: self.guest_email.clone(),
            guest_phone: self.guest_phone.clone(),
            status: self.status()?,
            fulfilment: self.fulfilment(),
            delivery_address: self.delivery_address.clone(),
            scheduled_for: self.scheduled_for,
            items,
            subtotal: self.money(self.subtotal_minor)?,
            discount: self.money(self.discount_minor)?,
            discount_code: self.discount_code.clone(),
            tax: self.money(self.tax_minor)?,
            tax_mode: if self.tax_included {
                TaxMode::Inclusive
            } else {
                TaxMode::Exclusive
            },
            delivery_fee: self.money(self.delivery_fee_minor)?,
            tip: self.money(self.tip_minor)?,
            total: self.money(self.total_minor)?,
            payment_method: self.payment_method.clone(),
            payment_status: self.payment_status.clone(),
            placed_at: self.placed_at,
            acceptance_deadline: self.acceptance_deadline,
            accepted_at: self.accepted_at,
            prep_time_minutes: self.prep_time_minutes.map(i64::from),
            cancellation_reason: self.cancellation_reason.clone(),
            tracking_token: None,
            payment_action: None,
            till: (self.channel == "till").then(|| TillSaleView {
                tender: self.tender.clone().unwrap_or_else(|| "cash".to_owned()),
                customer_name: self.customer_name.clone(),
                note: self.note.clone(),
            }),
        })
    }
}

/// The lines of some orders of one business, by order.
///
/// # Errors
/// Database errors.
pub async fn items_of(
    tx: &mut Tx,
    business: Uuid,
    orders: &[Uuid],
) -> Result<HashMap<Uuid, Vec<OrderItemView>>> {
    #[allow(clippy::type_complexity)] // one row shape, read right here
let rows: Vec<(Uuid, Uuid, Option<Uuid>, String, Option<String>, i64, i32, i64, String)> = sqlx::query_as(
        "SELECT i.order_id, i.product_id, i.variant_id, i.product_name, i.variant_name, i.unit_price_minor, i.quantity, \
           i.line_total_minor, o.currency::text FROM order_items i JOIN orders o ON o.business_id = i.business_id AND o.id = i.order_id \
         WHERE i.business_id = $1 AND i.order_id = ANY($2) ORDER BY i.order_id, i.line_no",
    )
    .bind(business)
    .bind(orders)
    .fetch_all(&mut **tx)
    .await?;
    let mut map: HashMap<Uuid, Vec<OrderItemView>> = HashMap::new();
    for r in rows {
        let currency = currency_of(&r.8)?;
        map.entry(r.0).or_default().push(OrderItemView {
            product_id: r.1,
            variant_id: r.2,
            product_name: r.3,
            variant_name: r.4,
            unit_price: Money::new(r.5, currency),
            quantity: i64::from(r.6),
            line_total: Money::new(r.7, currency),
        });
    }
    Ok(map)
}

/// Views of order rows (with their lines).
///
/// # Errors
/// Database errors.
pub async fn views(tx: &mut Tx, rows: Vec<OrderRow>) -> Result<Vec<OrderView>> {
    let Some(first) = rows.first() else {
        return Ok(Vec::new());
    };
    let business = first.business_id;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let mut items = items_of(tx, business, &ids).await?;
    rows.iter()
        .map(|r| r.view(items.remove(&r.id).unwrap_or_default()))
        .collect()
}

/// One order of a business, as the caller's principal may see it.
///
/// # Errors
/// Database errors.
pub async fn find(tx: &mut Tx, business: BusinessId, id: Uuid) -> Result<Option<OrderRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE business_id = $1 AND id = $2"
    ))
    .bind(business.0)
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?)
}

/// The tracking view of an order visible to the caller's principal.
///
/// # Errors
/// Database errors.
pub async fn tracking(
    tx: &mut Tx,
    row: &OrderRow,
    locations: &crate::locations::LocationStore,
    now: DateTime<Utc>,
) -> Result<TrackingView> {
    #[allow(clippy::type_complexity)] // one row shape, read right here
let history: Vec<(Option<String>, String, String, String, DateTime<Utc>, Option<String>, bool)> = sqlx::query_as(
        "SELECT from_status, to_status, outcome, by_party, at, reason, filled_in FROM order_status_history \
         WHERE business_id = $1 AND order_id = $2 ORDER BY at, id",
    )
    .bind(row.business_id)
    .bind(row.id)
    .fetch_all(&mut **tx)
    .await?;
    let history = history
        .into_iter()
        .filter_map(|h| {
            Some(StatusEntry {
                from: h.0.as_deref().and_then(OrderStatus::parse),
                to: OrderStatus::parse(&h.1)?,
                outcome: match h.2.as_str() {
                    "superseded" => Outcome::Superseded,
                    "cancellation_requested" => Outcome::CancellationRequested,
                    _ => Outcome::Applied,
                },
                by: Party::parse(&h.3)?,
                at: h.4,
                reason: h.5,
                filled_in: h.6,
            })
        })
        .collect();
    let mut items = items_of(tx, row.business_id, &[row.id]).await?;
    let courier = courier(tx, row, locations, now).await?;
    Ok(TrackingView {
        order_id: row.id,
        status: row.status()?,
        fulfilment: row.fulfilment(),
        placed_at: row.placed_at,
        estimated_ready_at: match (row.accepted_at, row.prep_time_minutes) {
            (Some(at), Some(minutes)) => Some(at + chrono::Duration::minutes(i64::from(minutes))),
            _ => None,
        },
        cancellation_reason: row.cancellation_reason.clone(),
        history,
        items: items.remove(&row.id).unwrap_or_default(),
        total: row.money(row.total_minor)?,
        delivery_events: crate::delivery::tracking_events(
            tx,
            row.business_id(),
            row.id,
            courier.is_some(),
        )
        .await?,
        courier,
    })
}

/// The assigned courier's latest position for the order's tracking. Row level security shows
/// the caller the delivery of an order it may see, and nothing else.
async fn courier(
    tx: &mut Tx,
    row: &OrderRow,
    locations: &crate::locations::LocationStore,
    now: DateTime<Utc>,
) -> Result<Option<fleetfront_domain::api::order::CourierView>> {
    use fleetfront_domain::location::{courier_eta_secs, CourierTrip};

    // The caller may not read driver profiles; `courier_vehicle()` (migration 0020) tells it
    // the vehicle type of a driver on a delivery, and nothing else, for the ETA.
    let held: Option<(Option<Uuid>, f64, f64, Option<String>)> = sqlx::query_as(
        "SELECT d.driver_id, b.latitude, b.longitude, courier_vehicle(d.driver_id) \
           FROM deliveries d JOIN businesses b ON b.id = d.business_id \
         WHERE d.business_id = $1 AND d.order_id = $2 \
           AND d.status IN ('assigned', 'arrived_at_store', 'picked_up', 'arrived_at_customer')",
    )
    .bind(row.business_id)
    .bind(row.id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((Some(driver), store_latitude, store_longitude, vehicle)) = held else {
        return Ok(None);
    };
    let Some((fix, _)) = locations.latest(fleetfront_domain::UserId(driver)) else {
        return Ok(Some(fleetfront_domain::api::order::CourierView {
            position: None,
            last_seen_at: None,
            live: false,
            eta_seconds: None,
        }));
    };
    let live = fleetfront_domain::location::is_live(fix.recorded_at(), now);
    let position = Coordinates::parse(fix.latitude(), fix.longitude()).ok();
    let drop_off = row
        .delivery_address
        .as_ref()
        .and_then(|a| Coordinates::parse(a["latitude"].as_f64()?, a["longitude"].as_f64()?).ok());
    let store = Coordinates {
        latitude: store_latitude,
        longitude: store_longitude,
    };
    let picked_up = row.status()? == OrderStatus::PickedUp;
    let vehicle = vehicle
        .as_deref()
        .and_then(fleetfront_domain::driver::VehicleType::parse);
    let eta_seconds = match (position, drop_off) {
        (Some(from), Some(drop_off)) => courier_eta_secs(&CourierTrip {
            from,
            live,
            store,
            drop_off,
            picked_up,
            vehicle,
        }),
        _ => None,
    };
    Ok(Some(fleetfront_domain::api::order::CourierView {
        position,
        last_seen_at: Some(fix.recorded_at()),
        live,
        eta_seconds,
    }))
}

// Transitions ------------------------------------------------------------------------------------

/// Maps a refused transition to a problem.
pub fn order_error(e: order::OrderError) -> Error {
    Error::new(ErrorCode::InvalidTransition, e.to_string())
}

/// Applies `event` to a locked order through [`order::apply`] and records it: the new status,
/// every step in the status log, the customer's status email. Returns the transition and the
/// row as it was; the caller commits and then runs [`settle`] for the payment effects.
///
/// # Errors
/// `not_found`, `invalid_transition`, database errors.
pub async fn transition(
    tx: &mut Tx,
    business: BusinessId,
    id: Uuid,
    event: OrderEvent,
    by: Party,
    actor: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<(Transition, OrderRow)> {
    let row: OrderRow = sqlx::query_as(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE business_id = $1 AND id = $2 FOR UPDATE"
    ))
    .bind(business.0)
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| Error::not_found("order"))?;
    // Events are ordered by commit (the row lock above serializes them), so an event never
    // takes a time before the last one recorded: a clock read before waiting for the lock
    // would list it before the event that committed first.
    let last: Option<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT max(at) FROM order_status_history WHERE business_id = $1 AND order_id = $2",
    )
    .bind(business.0)
    .bind(id)
    .fetch_one(&mut **tx)
    .await?;
    let now = last.map_or(now, |last| now.max(last));
    let t = order::apply(&row.state()?, event.clone(), by, now).map_err(order_error)?;
    match t.outcome {
        Outcome::Applied => {
            let reason = t
                .changes
                .last()
                .and_then(|c| c.reason.as_ref())
                .map(|r| r.as_str().to_owned());
            let prep = match &event {
                OrderEvent::Accept { prep_time } => {
                    Some(i32::try_from(prep_time.minutes()).unwrap_or(0))
                }
                _ => None,
            };
            sqlx::query(
                "UPDATE orders SET status = $3, updated_at = $4, \
                   accepted_at = CASE WHEN $5::int IS NOT NULL THEN $4 ELSE accepted_at END, \
                   prep_time_minutes = coalesce($5, prep_time_minutes), \
                   cancellation_reason = coalesce($6, cancellation_reason) \
                 WHERE business_id = $1 AND id = $2",
            )
            .bind(business.0)
            .bind(id)
            .bind(t.status.as_str())
            .bind(now)
            .bind(prep)
            .bind(
                matches!(t.status, OrderStatus::Rejected | OrderStatus::Cancelled)
                    .then_some(reason)
                    .flatten(),
            )
            .execute(&mut **tx)
            .await?;
            for change in &t.changes {
                sqlx::query(
                    "INSERT INTO order_status_history (business_id, id, order_id, from_status, to_status, event, outcome, by_party, actor_id, at, reason, filled_in) \
                     VALUES ($1, $2, $3, $4, $5, $6, 'applied', $7, $8, $9, $10, $11)",
                )
                .bind(business.0)
                .bind(new_id())
                .bind(id)
                .bind(change.from.as_str())
                .bind(change.to.as_str())
                .bind(event.kind().as_str())
                .bind(change.by.as_str())
                .bind(actor)
                .bind(change.at)
                .bind(change.reason.as_ref().map(|r| r.as_str()))
                .bind(change.filled_in)
                .execute(&mut **tx)
                .await?;
            }
        }
        Outcome::Superseded | Outcome::CancellationRequested => {
            // A late event is recorded, not applied.
            let status = row.status.clone();
            sqlx::query(
                "INSERT INTO order_status_history (business_id, id, order_id, from_status, to_status, event, outcome, by_party, actor_id, at) \
                 VALUES ($1, $2, $3, $4, $4, $5, $6, $7, $8, $9)",
            )
            .bind(business.0)
            .bind(new_id())
            .bind(id)
            .bind(&status)
            .bind(event.kind().as_str())
            .bind(t.outcome.as_str())
            .bind(by.as_str())
            .bind(actor)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        }
    }
    if t.outcome == Outcome::Applied
        && matches!(t.status, OrderStatus::Rejected | OrderStatus::Cancelled)
    {
        // The goods were never handed over: their stock is for sale again, and the discount
        // code's use is given back.
        sqlx::query("SELECT return_order_stock($1, $2), return_discount_use($1, $2)")
            .bind(business.0)
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    if t.outcome == Outcome::Applied {
        count_for_customer(tx, &row, t.status).await?;
    }
    if t.outcome == Outcome::Applied && t.effects.contains(&Effect::StartDispatch) {
        // The delivery commits with the acceptance; its offers follow (`dispatch::start`).
        crate::dispatch::create_delivery(tx, business, id, now).await?;
    }
    if t.outcome == Outcome::Applied && t.effects.contains(&Effect::CancelDispatch) {
        crate::dispatch::cancel(tx, business, id, now).await?;
    }
    if t.effects.contains(&Effect::OpenCancellationRequest) && by != Party::Staff {
        notify_cancellation_request(tx, &row, by, &event).await?;
    }
    if t.outcome == Outcome::Applied && row.is_awaiting_payment() {
        // The confirmation email waited for the payment.
        if t.status == OrderStatus::Pending {
            release_held_email(tx, business, id).await?;
        } else {
            drop_held_email(tx, business, id).await?;
        }
    }
    // A sale at the till has nobody to email.
    if let (true, Some(to)) = (
        t.effects.contains(&Effect::NotifyCustomer),
        row.notify_email.as_deref(),
    ) {
        let reason = t
            .changes
            .last()
            .and_then(|c| c.reason.as_ref())
            .map(|r| r.as_str().to_owned());
        crate::notify::enqueue_email(
            tx,
            business,
            json!({
                "template": "order_status",
                "to": to,
                "order_id": id,
                "status": t.status.as_str(),
                "reason": reason,
                "prep_time_minutes": match &event { OrderEvent::Accept { prep_time } => Some(prep_time.minutes()), _ => None },
            }),
        )
        .await?;
    }
    Ok((t, row))
}

/// Keeps the customer's totals (`total_orders`, `total_spent_minor`) in the transition's
/// transaction: an order that becomes complete counts with its total, a refund of a completed
/// order takes it back (the domain refunds whole orders). Guest orders count for nobody.
/// Completing and refunding are staff transitions, and staff may update their customers.
async fn count_for_customer(tx: &mut Tx, row: &OrderRow, to: OrderStatus) -> Result<()> {
    let Some(customer) = row.customer_id else {
        return Ok(());
    };
    let before = row.state()?;
    let after = OrderState {
        status: to,
        ..before
    };
    let sign: i64 = if after.is_complete() && !before.is_complete() {
        1
    } else if to == OrderStatus::Refunded && before.is_complete() {
        -1
    } else {
        return Ok(());
    };
    let counted = sqlx::query(
        "UPDATE customers SET total_orders = greatest(total_orders + $3, 0), \
           total_spent_minor = greatest(total_spent_minor + $4, 0) WHERE business_id = $1 AND id = $2",
    )
    .bind(row.business_id)
    .bind(customer)
    .bind(sign)
    .bind(sign * row.total_minor)
    .execute(&mut **tx)
    .await?;
    if counted.rows_affected() == 0 {
        // Row level security hid the customer from this principal: say so rather than lose
        // the count silently (a principal that completes orders must be allowed to count them).
        tracing::warn!(order = %row.id, customer = %customer, "customer totals not updated");
    }
    Ok(())
}

/// Tells the business, by email to its contact address through the outbox, that somebody
/// other than its staff asked to cancel an order it must decide on (a cancellation request).
async fn notify_cancellation_request(
    tx: &mut Tx,
    row: &OrderRow,
    by: Party,
    event: &OrderEvent,
) -> Result<()> {
    let to: Option<String> =
        sqlx::query_scalar("SELECT contact_email FROM businesses WHERE id = $1")
            .bind(row.business_id)
            .fetch_optional(&mut **tx)
            .await?;
    let Some(to) = to else {
        tracing::warn!(order = %row.id, "no business contact for a cancellation request");
        return Ok(());
    };
    let reason = match event {
        OrderEvent::Cancel { reason } => Some(reason.as_str()),
        _ => None,
    };
    crate::notify::enqueue_email(
        tx,
        BusinessId(row.business_id),
        json!({
            "template": "cancellation_request",
            "to": to,
            "order_id": row.id,
            "status": row.status,
            "by": by.as_str(),
            "reason": reason,
        }),
    )
    .await
}

/// Writes the payment effects of a transition (capture, release, refund) as payment jobs in
/// `tx`, the transition's own transaction, so the status change and the money it moves commit
/// together (see [`crate::payments::jobs`]). `refund` is the amount to give back for
/// [`Effect::RefundPayment`]; `None` is all of it. An order without a gateway payment (none
/// was ever authorized) has nothing to move. Answers whether any job was queued (then
/// [`settle`] has work to do).
///
/// # Errors
/// Database errors.
pub async fn enqueue_payment_effects(
    tx: &mut Tx,
    row: &OrderRow,
    effects: &[Effect],
    refund: Option<Money>,
) -> Result<bool> {
    let Some(reference) = row.payment_reference.as_deref() else {
        return Ok(false);
    };
    let total = row.total()?;
    let mut queued = false;
    for effect in effects {
        let (effect, amount) = match effect {
            Effect::CapturePayment => (JobEffect::Capture, Some(total)),
            Effect::ReleasePayment => (JobEffect::Release, None),
            Effect::RefundPayment => (JobEffect::Refund, Some(refund.unwrap_or(total))),
            _ => continue,
        };
        jobs::enqueue(
            tx,
            &NewJob {
                business_id: row.business_id,
                order_id: row.id,
                effect,
                payment_method: &row.payment_method,
                gateway_payment_id: reference,
                amount,
                currency: total.currency,
            },
        )
        .await?;
        queued = true;
    }
    Ok(queued)
}

/// Moves the money of an order's committed transition now: performs its due payment jobs
/// (no lock is held while the gateway answers). A failure is logged and left to the payment
/// job task, which retries with the same idempotency key; the answer shows the order as it is.
pub async fn settle(app: &App, business: BusinessId, id: Uuid) {
    if let Err(e) = jobs::run_for_order(app, business, id, app.clock.now()).await {
        tracing::warn!(order = %id, error = %e, "payment effects left to the payment job task");
    }
}

/// The fee type of the platform's commission on an order.
pub use crate::payments::ledger::ORDER_COMMISSION;

// Customer cancellation --------------------------------------------------------------------------

/// A customer cancels their own order through [`order::apply`] with [`Party::Customer`]: a
/// pending order is cancelled (stock and the discount use given back, the authorization
/// released); later, the domain turns it into a cancellation request for the store.
///
/// Customers never UPDATE orders (row level security), so the order is first looked up as the
/// customer — another customer's or store's order is a 404 — and the transition is then applied
/// by the order system principal (`order_worker`, as the acceptance timeout), scoped by hand to
/// this business, order and customer.
///
/// # Errors
/// `forbidden` for other principals, `not_found`, `invalid_transition`, database errors.
pub async fn cancel_by_customer(
    app: &App,
    ctx: &Ctx,
    claims: &Claims,
    id: Uuid,
    reason: order::Reason,
) -> Result<TrackingView> {
    let (mut tx, actor) = app.db.begin_as(claims).await?;
    let fleetfront_domain::permission::Actor::Customer { customer, business } = actor else {
        return Err(Error::forbidden("this endpoint is for a store's customers"));
    };
    // Row level security shows a customer their own orders only.
    let visible = find(&mut tx, business, id)
        .await?
        .is_some_and(|row| row.customer_id == Some(customer.0));
    tx.rollback().await?;
    if !visible {
        return Err(Error::not_found("order"));
    }

    let now = app.clock.now();
    let mut tx = begin_order_system(app, business).await?;
    let (t, row) = transition(
        &mut tx,
        business,
        id,
        OrderEvent::Cancel {
            reason: reason.clone(),
        },
        Party::Customer,
        Some(customer.0),
        now,
    )
    .await?;
    if row.customer_id != Some(customer.0) {
        return Err(Error::not_found("order"));
    }
    audit::record(
        &mut tx,
        ctx,
        Who {
            kind: "customer",
            id: Some(customer.0),
        },
        Some(business),
        Event::ok("order.cancel", "order", id).with_details(json!({
            "outcome": t.outcome.as_str(), "status": t.status.as_str(), "reason": reason.as_str(),
        })),
    )
    .await?;
    enqueue_payment_effects(&mut tx, &row, &t.effects, None).await?;
    tx.commit().await?;
    // Money moves after the status change is committed.
    settle(app, business, id).await;
    // The answer is read as the customer: what they may see of their order.
    let (mut tx, _) = app.db.begin_as(claims).await?;
    let row = find(&mut tx, business, id)
        .await?
        .ok_or_else(|| Error::not_found("order"))?;
    let view = tracking(&mut tx, &row, &app.locations.store, app.clock.now()).await?;
    tx.commit().await?;
    Ok(view)
}

/// A transaction as the order system (`order_worker`) with its audit rows scoped to `business`.
async fn begin_order_system(app: &App, business: BusinessId) -> Result<Tx> {
    let mut tx = app.db.pool.begin().await?;
    set_principal(&mut tx, "order_worker", None, None, None).await?;
    sqlx::query("SELECT set_config('app.business_id', $1, true)")
        .bind(business.0.to_string())
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

// Payments awaiting the customer (3-D Secure) ---------------------------------------------------

/// Moves an order awaiting payment to pending once its payment holds, in `tx` (the order system
/// principal, scoped to `business`): the status through [`order::apply`] with
/// [`OrderEvent::ConfirmPayment`], the payment status and ledger row to authorized, the
/// acceptance window started at `now`, the held confirmation email released. Returns false,
/// changing nothing, when the order is not awaiting payment (already confirmed by the other
/// path — webhook or client —, expired or cancelled).
///
/// # Errors
/// Database errors.
pub async fn confirm_awaiting(
    tx: &mut Tx,
    business: BusinessId,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool> {
    let status: Option<String> = sqlx::query_scalar(
        "SELECT status FROM orders WHERE business_id = $1 AND id = $2 FOR UPDATE",
    )
    .bind(business.0)
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    if status.as_deref() != Some(OrderStatus::AwaitingPayment.as_str()) {
        return Ok(false);
    }
    let window: Option<i32> = sqlx::query_scalar(
        "SELECT acceptance_window_secs FROM business_commerce_settings WHERE business_id = $1",
    )
    .bind(business.0)
    .fetch_optional(&mut **tx)
    .await?;
    let window = AcceptanceWindow::from_secs(i64::from(window.unwrap_or(180))).unwrap_or_default();
    let (t, _) = transition(
        tx,
        business,
        id,
        OrderEvent::ConfirmPayment,
        Party::System,
        None,
        now,
    )
    .await?;
    if t.outcome != Outcome::Applied {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE orders SET payment_status = 'authorized', acceptance_deadline = $3, updated_at = $4 \
         WHERE business_id = $1 AND id = $2",
    )
    .bind(business.0)
    .bind(id)
    .bind(order::acceptance_deadline(now, window))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    ledger::set_order_payment_status(tx, business.0, id, TransactionStatus::Authorized).await?;
    Ok(true)
}

/// The customer's confirmation after their step in the provider's UI (3-D Secure), for an order
/// the caller could see (`row`, read as the customer or with the tracking token): the payment
/// is re-read from the provider — never taken from the client — and, once it holds, the order
/// goes to the business ([`confirm_awaiting`], as the order system, audited as `who`). An order
/// that no longer awaits payment answers as it is, so a repeated call is harmless.
///
/// # Errors
/// `payment_action_required` (409) while the provider still waits for the customer,
/// `payment_declined` (402) when the authentication failed (the customer may try again with
/// another card until the deadline), `unavailable` (503) when the provider cannot be reached.
pub async fn confirm_payment(
    app: &App,
    ctx: &Ctx,
    row: &OrderRow,
    who: Who,
) -> Result<fleetfront_domain::api::order::PaymentConfirmation> {
    let business = row.business_id();
    if row.is_awaiting_payment() {
        let reference = row
            .payment_reference
            .clone()
            .ok_or_else(|| Error::unexpected(anyhow::anyhow!("awaiting payment without one")))?;
        let gateway = app
            .payments
            .for_method(&row.payment_method)
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::Unavailable,
                    "card payments are not available right now; retry later",
                )
            })?;
        match gateway.authorization(reference).await {
            Ok(Authorization::Authorized { .. }) => {}
            Ok(Authorization::RequiresAction { .. }) => {
                return Err(Error::new(
                    ErrorCode::PaymentActionRequired,
                    "the card's authentication is not complete; finish it with the client secret, then confirm again",
                ))
            }
            Err(crate::payments::PaymentError::Declined(m)) => {
                return Err(Error::new(
                    ErrorCode::PaymentDeclined,
                    format!(
                        "the payment was not authorized ({m}); try again with another card before {}",
                        row.acceptance_deadline
                    ),
                ))
            }
            Err(crate::payments::PaymentError::Unavailable(_)) => {
                return Err(Error::new(
                    ErrorCode::Unavailable,
                    "the payment provider is unavailable; confirm again later",
                ))
            }
            Err(crate::payments::PaymentError::Invalid(m)) => {
                tracing::warn!(order = %row.id, error = %m, "payment could not be confirmed");
                return Err(Error::new(
                    ErrorCode::Conflict,
                    "the payment of this order cannot be confirmed",
                ));
            }
        }
        let now = app.clock.now();
        let mut tx = begin_order_system(app, business).await?;
        if confirm_awaiting(&mut tx, business, row.id, now).await? {
            audit::record(
                &mut tx,
                ctx,
                who,
                Some(business),
                Event::ok("order.payment_confirm", "order", row.id),
            )
            .await?;
        }
        tx.commit().await?;
    }
    let mut tx = begin_order_system(app, business).await?;
    let now = find(&mut tx, business, row.id)
        .await?
        .ok_or_else(|| Error::not_found("order"))?;
    tx.commit().await?;
    Ok(fleetfront_domain::api::order::PaymentConfirmation {
        order_id: now.id,
        status: now.status()?,
        payment_status: now.payment_status.clone(),
        acceptance_deadline: now.acceptance_deadline,
    })
}

// Acceptance timeout ------------------------------------------------------------------------------

/// Rejects every pending order whose acceptance deadline has passed at `now`, and cancels every
/// order awaiting payment whose customer did not authenticate in time (its stock is given back
/// and its payment released), through [`order::apply`] with [`Party::System`]; returns how many. Runs as the `order_worker`
/// principal, one order per transaction, claimed with `FOR UPDATE SKIP LOCKED` so several
/// instances share the work. The state lives in the database, so a restart loses nothing.
///
/// # Errors
/// Database errors.
pub async fn run_due(app: &App, now: DateTime<Utc>) -> Result<usize> {
    let mut handled = 0;
    loop {
        let mut tx = app.db.pool.begin().await?;
        set_principal(&mut tx, "order_worker", None, None, None).await?;
        let due: Option<(Uuid, Uuid)> = sqlx::query_as(
            "SELECT business_id, id FROM orders WHERE status IN ('pending', 'awaiting_payment') \
             AND acceptance_deadline <= $1 \
             ORDER BY acceptance_deadline, id LIMIT 1 FOR UPDATE SKIP LOCKED",
        )
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((business, id)) = due else {
            tx.rollback().await?;
            return Ok(handled);
        };
        let business = BusinessId(business);
        // Scope the audit row (and nothing else: the worker's policies are its own) to the order's business.
        sqlx::query("SELECT set_config('app.business_id', $1, true)")
            .bind(business.0.to_string())
            .execute(&mut *tx)
            .await?;
        let (t, row) = transition(
            &mut tx,
            business,
            id,
            OrderEvent::Expire,
            Party::System,
            None,
            now,
        )
        .await?;
        audit::record(
            &mut tx,
            &Ctx {
                request_id: "acceptance-timeout".into(),
                client_address: "system".into(),
            },
            Who {
                kind: "system",
                id: None,
            },
            Some(business),
            Event::ok("order.expire", "order", id),
        )
        .await?;
        enqueue_payment_effects(&mut tx, &row, &t.effects, None).await?;
        tx.commit().await?;
        settle(app, business, id).await;
        handled += 1;
    }
}

/// Runs [`run_due`] every `poll` until the task is aborted.
pub fn spawn_timeouts(app: App, poll: std::time::Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(e) = run_due(&app, app.clock.now()).await {
                tracing::warn!(error = %e, "acceptance timeout pass failed");
            }
            tokio::time::sleep(poll).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_are_parsed() {
        assert_eq!(
            parse_idempotency_key(Some(" abc-123 ")).expect("valid"),
            "abc-123"
        );
        for bad in [None, Some(""), Some("   "), Some("a b"), Some("ä")] {
            assert!(parse_idempotency_key(bad).is_err(), "{bad:?}");
        }
        assert!(parse_idempotency_key(Some(&"k".repeat(256))).is_err());
        assert!(parse_idempotency_key(Some(&"k".repeat(255))).is_ok());
    }

    #[test]
    fn fingerprints_cover_method_path_and_body() {
        let body = json!({"a": 1});
        let base = fingerprint("POST", "/api/v1/orders", &body);
        assert_eq!(
            base,
            fingerprint("POST", "/api/v1/orders", &json!({"a": 1}))
        );
        assert_ne!(
            base,
            fingerprint("POST", "/api/v1/orders", &json!({"a": 2}))
        );
        assert_ne!(
            base,
            fingerprint("POST", "/api/v1/customers/guest-checkout", &body)
        );
        assert_ne!(base, fingerprint("PUT", "/api/v1/orders", &body));
    }

    #[test]
    fn pricing_errors_map_to_stable_codes() {
        let eur = Currency::parse("EUR").expect("known");
        let cases = [
            (
                PricingError::BelowMinimumOrder {
                    minimum: Money::new(1000, eur),
                    subtotal: Money::new(500, eur),
                },
                ErrorCode::BelowMinimumOrder,
            ),
            (
                PricingError::DiscountExhausted { usage_limit: 1 },
                ErrorCode::DiscountInvalid,
            ),
            (
                PricingError::BeyondDeliveryDistance {
                    distance_m: 5_000,
                    max_distance_m: 4_000,
                },
                ErrorCode::OutsideDeliveryArea,
            ),
            (
                PricingError::TipTooLarge {
                    tip: Money::new(2, eur),
                    max: Money::new(1, eur),
                },
                ErrorCode::ValidationFailed,
            ),
        ];
        for (error, code) in cases {
            assert_eq!(pricing_error(error).code(), code);
        }
    }
}
