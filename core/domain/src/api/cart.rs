//! Shopping carts on the wire. A cart holds product references and quantities only; prices,
//! names and availability are read fresh every time it is shown, so a cart is never stale.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::money::Money;

use super::FieldErrors;

/// Most distinct lines a cart may hold.
pub const MAX_LINES: usize = 100;
/// Most units of one line.
pub const MAX_QUANTITY: u32 = 999;

/// `PUT /api/v1/storefronts/{subdomain}/cart/items`: set a line's quantity (0 removes it).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SetCartItemRequest {
    /// The product.
    pub product_id: Uuid,
    /// The variant, required when the product has variants.
    #[serde(default)]
    pub variant_id: Option<Uuid>,
    /// New quantity, 0–999; 0 removes the line.
    pub quantity: i64,
}

/// A parsed line change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CartItemChange {
    /// Product.
    pub product_id: Uuid,
    /// Variant.
    pub variant_id: Option<Uuid>,
    /// Quantity; 0 removes.
    pub quantity: u32,
}

impl SetCartItemRequest {
    /// Parses the change.
    ///
    /// # Errors
    /// A quantity outside 0..=999.
    pub fn parse(&self) -> Result<CartItemChange, FieldErrors> {
        let mut e = FieldErrors::default();
        let quantity = u32::try_from(self.quantity)
            .ok()
            .filter(|q| *q <= MAX_QUANTITY);
        if quantity.is_none() {
            e.push(
                "quantity",
                "out_of_range",
                format!("quantity must be 0 to {MAX_QUANTITY}"),
            );
        }
        e.finish(|| {
            Some(CartItemChange {
                product_id: self.product_id,
                variant_id: self.variant_id,
                quantity: quantity?,
            })
        })
    }
}

/// Adds two quantities of the same line when carts merge, capped at [`MAX_QUANTITY`].
pub fn merged_quantity(a: u32, b: u32) -> u32 {
    a.saturating_add(b).min(MAX_QUANTITY)
}

/// One line as shown.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CartLineView {
    /// Product.
    pub product_id: Uuid,
    /// Variant.
    pub variant_id: Option<Uuid>,
    /// Product name, now.
    pub name: String,
    /// Variant name, now.
    pub variant_name: Option<String>,
    /// Price of one unit (with the variant's adjustment), now.
    pub unit_price: Money,
    /// Quantity.
    pub quantity: u32,
    /// `unit_price × quantity`.
    pub line_total: Money,
    /// Whether the quantity can be bought now (published, in stock).
    pub available: bool,
    /// Units in stock when stock is tracked.
    pub in_stock: Option<u32>,
}

/// A cart as shown (`GET /api/v1/storefronts/{subdomain}/cart`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CartView {
    /// Cart id.
    pub id: Uuid,
    /// Lines, oldest first.
    pub lines: Vec<CartLineView>,
    /// Units in the cart.
    pub item_count: u32,
    /// Sum of line totals (before discounts, tax and delivery, which checkout adds).
    pub subtotal: Money,
    /// Whether every line can be bought now.
    pub all_available: bool,
}

/// A new guest cart: keep `cart_token` and send it as `X-Cart-Token`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewCart {
    /// The guest's secret for this cart; absent for a signed-in customer's cart.
    pub cart_token: Option<String>,
    /// The cart.
    pub cart: CartView,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_are_bounded() {
        let req = |q| SetCartItemRequest {
            product_id: Uuid::nil(),
            variant_id: None,
            quantity: q,
        };
        assert_eq!(req(0).parse().expect("removal").quantity, 0);
        assert_eq!(req(999).parse().expect("max").quantity, 999);
        assert!(req(1000).parse().is_err());
        assert!(req(-1).parse().is_err());
        assert_eq!(merged_quantity(600, 600), 999);
        assert_eq!(merged_quantity(2, 3), 5);
    }
}
