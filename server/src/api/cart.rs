//! Carts at a store: `/api/v1/storefronts/{subdomain}/cart*`. A guest's cart is found by the
//! secret token it was created with (sent back as `X-Cart-Token`; only its SHA-256 is stored,
//! and row level security shows a guest only the cart whose token it holds). A signed-in
//! customer of the store has one cart, which a guest cart merges into on sign-in. Carts hold
//! references and quantities; names, prices and stock are read fresh on every view.

use std::sync::Arc;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use fleetfront_domain::api::cart::{
    merged_quantity, CartItemChange, CartLineView, CartView, NewCart, SetCartItemRequest, MAX_LINES,
};
use fleetfront_domain::api::Problem;
use fleetfront_domain::auth::Claims;
use fleetfront_domain::permission::{AccountKind, Actor};
use fleetfront_domain::{BusinessId, CustomerId, ErrorCode, Money};
use sqlx::FromRow;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::App;
use crate::audit::{self, Event, Who};
use crate::auth::{random_secret, secret_hash};
use crate::catalog;
use crate::context::Ctx;
use crate::db::{new_id, set_principal, Tx};
use crate::error::{Error, Result};
use crate::extract::{ApiJson, ApiPath};
use crate::tenancy;

/// The header that carries a guest cart's token.
pub const CART_TOKEN_HEADER: &str = "x-cart-token";

/// How long an untouched guest cart is kept.
pub const GUEST_CART_DAYS: i64 = 30;

pub(crate) fn routes(router: OpenApiRouter<App>) -> OpenApiRouter<App> {
    router
        .routes(routes!(get_cart, create_cart, delete_cart))
        .routes(routes!(set_item))
        .routes(routes!(merge_cart))
}

/// The caller's verified token, if any (carts work with and without one).
pub struct MaybeAuth(Option<Arc<Claims>>);

impl<S: Send + Sync> FromRequestParts<S> for MaybeAuth {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(MaybeAuth(parts.extensions.get::<Arc<Claims>>().cloned()))
    }
}

/// Whose cart a request works on.
enum Holder {
    Customer(CustomerId),
    /// A guest, by the SHA-256 of their token (absent: a guest without a cart yet).
    Guest(Option<Vec<u8>>),
}

fn guest_token_hash(headers: &HeaderMap) -> Result<Option<Vec<u8>>> {
    match headers.get(CART_TOKEN_HEADER) {
        None => Ok(None),
        Some(value) => {
            let token = value
                .to_str()
                .ok()
                .filter(|t| (20..=100).contains(&t.len()))
                .ok_or_else(|| {
                    Error::new(
                        ErrorCode::MalformedRequest,
                        "X-Cart-Token is not a cart token",
                    )
                })?;
            Ok(Some(secret_hash(token)))
        }
    }
}

async fn set_cart_token(tx: &mut Tx, hash: &[u8]) -> Result<()> {
    sqlx::query("SELECT set_config('app.cart_token_hash', $1, true)")
        .bind(hex::encode(hash))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Opens the request's transaction: as the store's signed-in customer, or as a guest of the
/// store holding (maybe) a cart token.
async fn open(
    app: &App,
    subdomain: &str,
    auth: &MaybeAuth,
    headers: &HeaderMap,
) -> Result<(Tx, BusinessId, Holder, Who)> {
    let business = tenancy::published_store(&app.db.pool, subdomain)
        .await?
        .ok_or_else(|| Error::not_found("store"))?;
    match &auth.0 {
        Some(claims)
            if claims.kind == AccountKind::Customer && claims.business_id == Some(business) =>
        {
            let (mut tx, actor) = app.db.begin_as(claims).await?;
            let Actor::Customer { customer, .. } = actor else {
                return Err(Error::forbidden("sign in as a customer of this store"));
            };
            if let Some(hash) = guest_token_hash(headers)? {
                set_cart_token(&mut tx, &hash).await?;
            }
            Ok((
                tx,
                business,
                Holder::Customer(customer),
                Who::customer(Some(customer.0)),
            ))
        }
        Some(_) => Err(Error::forbidden(
            "carts belong to this store's customers; sign in at this store",
        )),
        None => {
            let mut tx = app.db.pool.begin().await?;
            set_principal(&mut tx, "public", None, None, Some(business.0)).await?;
            let hash = guest_token_hash(headers)?;
            if let Some(hash) = &hash {
                set_cart_token(&mut tx, hash).await?;
            }
            Ok((
                tx,
                business,
                Holder::Guest(hash),
                Who {
                    kind: "guest",
                    id: None,
                },
            ))
        }
    }
}

async fn find_cart(
    tx: &mut Tx,
    app: &App,
    business: BusinessId,
    holder: &Holder,
) -> Result<Option<Uuid>> {
    Ok(match holder {
        Holder::Customer(customer) => {
            sqlx::query_scalar("SELECT id FROM carts WHERE business_id = $1 AND customer_id = $2")
                .bind(business.0)
                .bind(customer.0)
                .fetch_optional(&mut **tx)
                .await?
        }
        Holder::Guest(Some(hash)) => sqlx::query_scalar(
            "SELECT id FROM carts WHERE business_id = $1 AND token_hash = $2 AND expires_at > $3",
        )
        .bind(business.0)
        .bind(hash)
        .bind(app.clock.now())
        .fetch_optional(&mut **tx)
        .await?,
        Holder::Guest(None) => None,
    })
}

/// The customer's cart, created when missing. Guests create carts only with `POST .../cart`.
async fn customer_cart(tx: &mut Tx, business: BusinessId, customer: CustomerId) -> Result<Uuid> {
    let id = new_id();
    sqlx::query(
        "INSERT INTO carts (business_id, id, customer_id, expires_at) VALUES ($1, $2, $3, 'infinity') \
         ON CONFLICT (business_id, customer_id) WHERE customer_id IS NOT NULL DO NOTHING",
    )
    .bind(business.0)
    .bind(id)
    .bind(customer.0)
    .execute(&mut **tx)
    .await?;
    sqlx::query_scalar("SELECT id FROM carts WHERE business_id = $1 AND customer_id = $2")
        .bind(business.0)
        .bind(customer.0)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| Error::not_found("cart"))
}

fn no_cart() -> Error {
    Error::new(
        ErrorCode::NotFound,
        "no cart: create one with POST /api/v1/storefronts/{subdomain}/cart",
    )
}

#[derive(FromRow)]
struct LineRow {
    product_id: Uuid,
    variant_id: Option<Uuid>,
    quantity: i32,
    name: Option<String>,
    price_minor: Option<i64>,
    variant_name: Option<String>,
    price_adjustment_minor: Option<i64>,
    stock_quantity: Option<i32>,
}

async fn view(tx: &mut Tx, business: BusinessId, cart: Uuid) -> Result<CartView> {
    let currency = catalog::currency(tx, business).await?;
    // Products the caller can no longer see (unpublished, archived) come back without a name:
    // such lines stay in the cart, shown as unavailable, until removed.
    let rows: Vec<LineRow> = sqlx::query_as(
        "SELECT ci.product_id, ci.variant_id, ci.quantity, p.name, p.price_minor, v.name AS variant_name, \
                v.price_adjustment_minor, v.stock_quantity \
         FROM cart_items ci \
         LEFT JOIN products p ON p.business_id = ci.business_id AND p.id = ci.product_id \
         LEFT JOIN product_variants v ON v.business_id = ci.business_id AND v.id = ci.variant_id \
         WHERE ci.business_id = $1 AND ci.cart_id = $2 ORDER BY ci.added_at, ci.id",
    )
    .bind(business.0)
    .bind(cart)
    .fetch_all(&mut **tx)
    .await?;
    let mut lines = Vec::with_capacity(rows.len());
    let mut subtotal = Money::zero(currency);
    let mut item_count = 0u32;
    for row in rows {
        let quantity = u32::try_from(row.quantity).unwrap_or(0);
        let visible =
            row.name.is_some() && (row.variant_id.is_none() || row.variant_name.is_some());
        let unit_price = match (visible, row.price_minor) {
            (true, Some(base)) => fleetfront_domain::catalog::variant_price(
                Money::new(base, currency),
                row.price_adjustment_minor.unwrap_or(0),
            )
            .map_err(Error::unexpected)?,
            _ => Money::zero(currency),
        };
        let in_stock = row.stock_quantity.and_then(|s| u32::try_from(s).ok());
        let available = visible && fleetfront_domain::catalog::stock_covers(in_stock, quantity);
        let line_total = unit_price
            .checked_mul(i64::from(quantity))
            .map_err(Error::unexpected)?;
        subtotal = subtotal
            .checked_add(line_total)
            .map_err(Error::unexpected)?;
        item_count += quantity;
        lines.push(CartLineView {
            product_id: row.product_id,
            variant_id: row.variant_id,
            name: row.name.unwrap_or_else(|| "No longer available".to_owned()),
            variant_name: row.variant_name,
            unit_price,
            quantity,
            line_total,
            available,
            in_stock,
        });
    }
    let all_available = lines.iter().all(|l| l.available);
    Ok(CartView {
        id: cart,
        lines,
        item_count,
        subtotal,
        all_available,
    })
}

async fn touch(
    tx: &mut Tx,
    now: DateTime<Utc>,
    business: BusinessId,
    cart: Uuid,
    guest: bool,
) -> Result<()> {
    sqlx::query(
        "UPDATE carts SET updated_at = $3, expires_at = CASE WHEN $4 THEN $5 ELSE expires_at END WHERE business_id = $1 AND id = $2",
    )
    .bind(business.0)
    .bind(cart)
    .bind(now)
    .bind(guest)
    .bind(now + Duration::days(GUEST_CART_DAYS))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The cart: the signed-in customer's, or the guest cart named by `X-Cart-Token`.
#[utoipa::path(get, path = "/api/v1/storefronts/{subdomain}/cart", tag = "cart",
    params(("subdomain" = String, Path, description = "The store's subdomain"),
           ("x-cart-token" = Option<String>, Header, description = "A guest cart's token")),
    responses((status = 200, body = CartView), (status = 404, body = Problem)))]
async fn get_cart(
    State(app): State<App>,
    auth: MaybeAuth,
    headers: HeaderMap,
    ApiPath(subdomain): ApiPath<String>,
) -> Result<Json<CartView>> {
    let (mut tx, business, holder, _) = open(&app, &subdomain, &auth, &headers).await?;
    let cart = find_cart(&mut tx, &app, business, &holder)
        .await?
        .ok_or_else(no_cart)?;
    let view = view(&mut tx, business, cart).await?;
    tx.commit().await?;
    Ok(Json(view))
}

/// Starts a cart. A guest gets a new cart and its token (keep it; send it as `X-Cart-Token`); a
/// signed-in customer gets their one cart.
#[utoipa::path(post, path = "/api/v1/storefronts/{subdomain}/cart", tag = "cart",
    params(("subdomain" = String, Path, description = "The store's subdomain")),
    responses((status = 201, body = NewCart), (status = 404, body = Problem)))]
async fn create_cart(
    State(app): State<App>,
    ctx: Ctx,
    auth: MaybeAuth,
    headers: HeaderMap,
    ApiPath(subdomain): ApiPath<String>,
) -> Result<(StatusCode, Json<NewCart>)> {
    let (mut tx, business, holder, who) = open(&app, &subdomain, &auth, &headers).await?;
    let (cart, token) = match holder {
        Holder::Customer(customer) => (customer_cart(&mut tx, business, customer).await?, None),
        Holder::Guest(_) => {
            let token = random_secret();
            let hash = secret_hash(&token);
            set_cart_token(&mut tx, &hash).await?;
            let id = new_id();
            sqlx::query("INSERT INTO carts (business_id, id, token_hash, expires_at) VALUES ($1, $2, $3, $4)")
                .bind(business.0)
                .bind(id)
                .bind(&hash)
                .bind(app.clock.now() + Duration::days(GUEST_CART_DAYS))
                .execute(&mut *tx)
                .await?;
            (id, Some(token))
        }
    };
    audit::record(
        &mut tx,
        &ctx,
        who,
        Some(business),
        Event::ok("cart.create", "cart", cart),
    )
    .await?;
    let cart = view(&mut tx, business, cart).await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(NewCart {
            cart_token: token,
            cart,
        }),
    ))
}

/// Sets how many of a product (and variant) the cart holds; 0 removes the line.
#[utoipa::path(put, path = "/api/v1/storefronts/{subdomain}/cart/items", tag = "cart",
    params(("subdomain" = String, Path, description = "The store's subdomain"),
           ("x-cart-token" = Option<String>, Header, description = "A guest cart's token")),
    request_body = SetCartItemRequest,
    responses((status = 200, body = CartView), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn set_item(
    State(app): State<App>,
    ctx: Ctx,
    auth: MaybeAuth,
    headers: HeaderMap,
    ApiPath(subdomain): ApiPath<String>,
    ApiJson(req): ApiJson<SetCartItemRequest>,
) -> Result<Json<CartView>> {
    let change = req.parse()?;
    let (mut tx, business, holder, who) = open(&app, &subdomain, &auth, &headers).await?;
    let cart = match &holder {
        Holder::Customer(customer) => customer_cart(&mut tx, business, *customer).await?,
        Holder::Guest(_) => find_cart(&mut tx, &app, business, &holder)
            .await?
            .ok_or_else(no_cart)?,
    };
    set_line(&mut tx, business, cart, &change).await?;
    touch(
        &mut tx,
        app.clock.now(),
        business,
        cart,
        matches!(holder, Holder::Guest(_)),
    )
    .await?;
    let event = Event::ok("cart.set_item", "cart", cart)
        .with_details(serde_json::json!({"product_id": change.product_id, "variant_id": change.variant_id, "quantity": change.quantity}));
    audit::record(&mut tx, &ctx, who, Some(business), event).await?;
    let view = view(&mut tx, business, cart).await?;
    tx.commit().await?;
    Ok(Json(view))
}

/// Sets one line of `cart` to `change.quantity` (0 removes it): the product must be on sale
/// here, a product with variants needs one of its own, the stock must cover the quantity,
/// and a cart holds at most [`MAX_LINES`] lines.
async fn set_line(
    tx: &mut Tx,
    business: BusinessId,
    cart: Uuid,
    change: &CartItemChange,
) -> Result<()> {
    if change.quantity == 0 {
        sqlx::query(
            "DELETE FROM cart_items WHERE business_id = $1 AND cart_id = $2 AND product_id = $3 AND variant_id IS NOT DISTINCT FROM $4",
        )
        .bind(business.0)
        .bind(cart)
        .bind(change.product_id)
        .bind(change.variant_id)
        .execute(&mut **tx)
        .await?;
    } else {
        // The product must be on sale here; a product with variants needs one of its own.
        let product: Option<(bool,)> = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM product_variants v WHERE v.business_id = p.business_id AND v.product_id = p.id) \
             FROM products p WHERE p.business_id = $1 AND p.id = $2",
        )
        .bind(business.0)
        .bind(change.product_id)
        .fetch_optional(&mut **tx)
        .await?;
        let Some((has_variants,)) = product else {
            return Err(Error::field(
                "product_id",
                "unavailable",
                "this product is not on sale at this store",
            ));
        };
        let stock: Option<i32> = match (has_variants, change.variant_id) {
            (true, None) => {
                return Err(Error::field(
                    "variant_id",
                    "required",
                    "choose one of the product's variants",
                ))
            }
            (false, Some(_)) => {
                return Err(Error::field(
                    "variant_id",
                    "unknown_variant",
                    "this product has no variants",
                ))
            }
            (false, None) => None,
            (true, Some(variant)) => {
                let row: Option<(Option<i32>,)> = sqlx::query_as(
                    "SELECT stock_quantity FROM product_variants WHERE business_id = $1 AND id = $2 AND product_id = $3",
                )
                .bind(business.0)
                .bind(variant)
                .bind(change.product_id)
                .fetch_optional(&mut **tx)
                .await?;
                row.ok_or_else(|| {
                    Error::field(
                        "variant_id",
                        "unknown_variant",
                        "this variant does not belong to the product",
                    )
                })?
                .0
            }
        };
        let stock = stock.map(|s| u32::try_from(s).unwrap_or(0));
        if !fleetfront_domain::catalog::stock_covers(stock, change.quantity) {
            let on_hand = stock.unwrap_or(0);
            return Err(Error::field(
                "quantity",
                "out_of_stock",
                format!("only {on_hand} in stock"),
            )
            .with_code(ErrorCode::Conflict));
        }
        let updated = sqlx::query(
            "UPDATE cart_items SET quantity = $5 WHERE business_id = $1 AND cart_id = $2 AND product_id = $3 \
             AND variant_id IS NOT DISTINCT FROM $4",
        )
        .bind(business.0)
        .bind(cart)
        .bind(change.product_id)
        .bind(change.variant_id)
        .bind(i32::try_from(change.quantity).expect("quantity ≤ 999"))
        .execute(&mut **tx)
        .await?;
        if updated.rows_affected() == 0 {
            let lines: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM cart_items WHERE business_id = $1 AND cart_id = $2",
            )
            .bind(business.0)
            .bind(cart)
            .fetch_one(&mut **tx)
            .await?;
            if lines >= i64::try_from(MAX_LINES).expect("small") {
                return Err(Error::new(
                    ErrorCode::Conflict,
                    format!("a cart holds at most {MAX_LINES} different items"),
                ));
            }
            sqlx::query(
                "INSERT INTO cart_items (business_id, cart_id, id, product_id, variant_id, quantity) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(business.0)
            .bind(cart)
            .bind(new_id())
            .bind(change.product_id)
            .bind(change.variant_id)
            .bind(i32::try_from(change.quantity).expect("quantity ≤ 999"))
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

/// `cart.add@1` of `POST /api/v1/sync/push`: sets a line of the signed-in customer `actor`'s
/// cart at their store in `tx` (the mutation's transaction, as the customer), as
/// `PUT /api/v1/storefronts/{subdomain}/cart/items` does, and answers the cart.
///
/// # Errors
/// `forbidden` for an actor that is not a customer; as the endpoint: `validation_failed` (the
/// product, variant or quantity), `conflict` (out of stock, too many lines), database errors.
pub(crate) async fn set_customer_item(
    tx: &mut Tx,
    ctx: &Ctx,
    actor: &Actor,
    req: &SetCartItemRequest,
    now: DateTime<Utc>,
) -> Result<CartView> {
    let Actor::Customer { customer, business } = *actor else {
        return Err(Error::forbidden("carts belong to a store's customers"));
    };
    let change = req.parse()?;
    let cart = customer_cart(tx, business, customer).await?;
    set_line(tx, business, cart, &change).await?;
    touch(tx, now, business, cart, false).await?;
    let event = Event::ok("cart.set_item", "cart", cart).with_details(serde_json::json!({
        "product_id": change.product_id, "variant_id": change.variant_id,
        "quantity": change.quantity, "via": "sync",
    }));
    audit::record(
        tx,
        ctx,
        Who::customer(Some(customer.0)),
        Some(business),
        event,
    )
    .await?;
    view(tx, business, cart).await
}

/// Empties and forgets the cart.
#[utoipa::path(delete, path = "/api/v1/storefronts/{subdomain}/cart", tag = "cart",
    params(("subdomain" = String, Path, description = "The store's subdomain"),
           ("x-cart-token" = Option<String>, Header, description = "A guest cart's token")),
    responses((status = 204, description = "Deleted"), (status = 404, body = Problem)))]
async fn delete_cart(
    State(app): State<App>,
    ctx: Ctx,
    auth: MaybeAuth,
    headers: HeaderMap,
    ApiPath(subdomain): ApiPath<String>,
) -> Result<StatusCode> {
    let (mut tx, business, holder, who) = open(&app, &subdomain, &auth, &headers).await?;
    let cart = find_cart(&mut tx, &app, business, &holder)
        .await?
        .ok_or_else(no_cart)?;
    sqlx::query("DELETE FROM carts WHERE business_id = $1 AND id = $2")
        .bind(business.0)
        .bind(cart)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut tx,
        &ctx,
        who,
        Some(business),
        Event::ok("cart.delete", "cart", cart),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Moves a guest cart (`X-Cart-Token`) into the signed-in customer's cart: quantities of the
/// same item add up (at most 999), and the guest cart is gone afterwards.
#[utoipa::path(post, path = "/api/v1/storefronts/{subdomain}/cart/merge", tag = "cart", security(("bearer" = [])),
    params(("subdomain" = String, Path, description = "The store's subdomain"),
           ("x-cart-token" = String, Header, description = "The guest cart's token")),
    responses((status = 200, body = CartView), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn merge_cart(
    State(app): State<App>,
    ctx: Ctx,
    auth: MaybeAuth,
    headers: HeaderMap,
    ApiPath(subdomain): ApiPath<String>,
) -> Result<Json<CartView>> {
    let (mut tx, business, holder, who) = open(&app, &subdomain, &auth, &headers).await?;
    let Holder::Customer(customer) = holder else {
        return Err(Error::unauthenticated(
            "sign in as a customer of this store to keep your cart",
        ));
    };
    let hash = guest_token_hash(&headers)?.ok_or_else(no_cart)?;
    let guest = find_cart(&mut tx, &app, business, &Holder::Guest(Some(hash)))
        .await?
        .ok_or_else(no_cart)?;
    let mine = customer_cart(&mut tx, business, customer).await?;
    let lines: Vec<(Uuid, Option<Uuid>, i32)> = sqlx::query_as(
        "SELECT product_id, variant_id, quantity FROM cart_items WHERE business_id = $1 AND cart_id = $2 ORDER BY added_at, id",
    )
    .bind(business.0)
    .bind(guest)
    .fetch_all(&mut *tx)
    .await?;
    for (product, variant, quantity) in lines {
        let existing: Option<i32> = sqlx::query_scalar(
            "SELECT quantity FROM cart_items WHERE business_id = $1 AND cart_id = $2 AND product_id = $3 AND variant_id IS NOT DISTINCT FROM $4",
        )
        .bind(business.0)
        .bind(mine)
        .bind(product)
        .bind(variant)
        .fetch_optional(&mut *tx)
        .await?;
        let add = u32::try_from(quantity).unwrap_or(0);
        match existing {
            Some(have) => {
                let total = merged_quantity(u32::try_from(have).unwrap_or(0), add);
                sqlx::query(
                    "UPDATE cart_items SET quantity = $5 WHERE business_id = $1 AND cart_id = $2 AND product_id = $3 AND variant_id IS NOT DISTINCT FROM $4",
                )
                .bind(business.0)
                .bind(mine)
                .bind(product)
                .bind(variant)
                .bind(i32::try_from(total).expect("≤ 999"))
                .execute(&mut *tx)
                .await?;
            }
            None => {
                sqlx::query(
                    "INSERT INTO cart_items (business_id, cart_id, id, product_id, variant_id, quantity) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(business.0)
                .bind(mine)
                .bind(new_id())
                .bind(product)
                .bind(variant)
                .bind(quantity)
                .execute(&mut *tx)
                .await?;
            }
        }
    }
    sqlx::query("DELETE FROM carts WHERE business_id = $1 AND id = $2")
        .bind(business.0)
        .bind(guest)
        .execute(&mut *tx)
        .await?;
    touch(&mut tx, app.clock.now(), business, mine, false).await?;
    audit::record(
        &mut tx,
        &ctx,
        who,
        Some(business),
        Event::ok("cart.merge", "cart", mine).with_details(serde_json::json!({"from": guest})),
    )
    .await?;
    let view = view(&mut tx, business, mine).await?;
    tx.commit().await?;
    Ok(Json(view))
}
