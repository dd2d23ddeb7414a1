//! The offline mutations a client queues and `POST /api/v1/sync/push` applies: their names
//! (`name@version`) and the typed `args` of each. A client applies the same mutation to its local
//! copy with these types, so the server and every client read one shape.
//!
//! Every args type refuses unknown fields. A mutation's JSON shape, once shipped, keeps its
//! meaning: a change of meaning is a new version (`order.create@2`), served beside the old one
//! for the old apps' window.
//!
//! The shapes follow the matching HTTP endpoint's request with the resource's id added: the
//! order transitions take `{order_id, …the OrderEvent's fields without "type"}`,
//! `delivery.step@1` takes `{delivery_id, …DeliveryStatusUpdateRequest}`, the offer answers
//! take `{offer_id}`. Ids a client makes for a new resource (`order_id` of `order.create@1`
//! and `order.place@1`, `product_id` of `product.create@1`) are UUIDs and double as the
//! mutation's idempotency key on the server.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::cart::SetCartItemRequest;
use super::catalog::{CreateProductRequest, UpdateProductRequest, VariantInput};
use super::delivery::{
    CashCollectedInput, DeliveryStatusUpdateRequest, PositionInput, ReportedStatus,
};
use super::order::{
    CheckoutFulfilment, CheckoutItem, CheckoutRequest, PaymentChoice, MAX_ORDER_LINES,
};
use super::{patch, FieldErrors};
use crate::delivery::FailureReason;
use crate::id::{CategoryId, ProductId};
use crate::order::{OrderEvent, PrepTime, Reason};
use crate::pricing::Quantity;
use crate::value::TextLine;

/// Staff accept a pending order: [`OrderAcceptArgs`].
pub const ORDER_ACCEPT: &str = "order.accept@1";
/// Staff mark an order ready: [`OrderMarkReadyArgs`].
pub const ORDER_MARK_READY: &str = "order.mark_ready@1";
/// Staff cancel an order (or ask for it once it can no longer simply be): [`OrderCancelArgs`].
pub const ORDER_CANCEL: &str = "order.cancel@1";
/// A driver reports a delivery's status: [`DeliveryStepArgs`].
pub const DELIVERY_STEP: &str = "delivery.step@1";
/// A driver accepts a delivery offer: [`OfferArgs`].
pub const OFFER_ACCEPT: &str = "offer.accept@1";
/// A driver declines a delivery offer: [`OfferArgs`].
pub const OFFER_DECLINE: &str = "offer.decline@1";
/// Staff sell at the till (point of sale): [`OrderCreateArgs`].
pub const ORDER_CREATE: &str = "order.create@1";
/// A customer sets a line of their cart: [`CartAddArgs`].
pub const CART_ADD: &str = "cart.add@1";
/// A customer places an order: [`OrderPlaceArgs`].
pub const ORDER_PLACE: &str = "order.place@1";
/// Staff add a product to the catalog: [`ProductCreateArgs`].
pub const PRODUCT_CREATE: &str = "product.create@1";
/// Staff change a product: [`ProductUpdateArgs`].
pub const PRODUCT_UPDATE: &str = "product.update@1";

/// Every mutation defined here, as `name@version`.
pub const KNOWN: [&str; 11] = [
    ORDER_ACCEPT,
    ORDER_MARK_READY,
    ORDER_CANCEL,
    DELIVERY_STEP,
    OFFER_ACCEPT,
    OFFER_DECLINE,
    ORDER_CREATE,
    CART_ADD,
    ORDER_PLACE,
    PRODUCT_CREATE,
    PRODUCT_UPDATE,
];

/// `order.accept@1`: `{"order_id", "prep_time"}`. Output [`OrderStepOutput`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderAcceptArgs {
    /// The order.
    pub order_id: Uuid,
    /// The promised preparation time in minutes, 1–240.
    pub prep_time: PrepTime,
}

impl OrderAcceptArgs {
    /// The order event.
    pub fn event(&self) -> OrderEvent {
        OrderEvent::Accept {
            prep_time: self.prep_time,
        }
    }
}

/// `order.mark_ready@1`: `{"order_id"}`. Output [`OrderStepOutput`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderMarkReadyArgs {
    /// The order.
    pub order_id: Uuid,
}

impl OrderMarkReadyArgs {
    /// The order event.
    pub fn event(&self) -> OrderEvent {
        OrderEvent::MarkReady
    }
}

/// `order.cancel@1`: `{"order_id", "reason"}`. Output [`OrderStepOutput`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderCancelArgs {
    /// The order.
    pub order_id: Uuid,
    /// Why, 1–500 characters.
    pub reason: Reason,
}

impl OrderCancelArgs {
    /// The order event.
    pub fn event(&self) -> OrderEvent {
        OrderEvent::Cancel {
            reason: self.reason.clone(),
        }
    }
}

/// The output of the order transitions (`order.accept@1`, `order.mark_ready@1`,
/// `order.cancel@1`): the order's status afterwards and what the event did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderStepOutput {
    /// The order's status after the event (`confirmed`, `cancelled`…).
    pub status: String,
    /// `applied`, `superseded` (a late event, recorded, changing nothing) or `requested`
    /// (a cancellation that became a request for a person to decide).
    pub outcome: String,
}

/// `delivery.step@1`: `{"delivery_id", …DeliveryStatusUpdateRequest}`. Output the delivery
/// as `PATCH /api/v1/driver/deliveries/{id}/status` answers it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryStepArgs {
    /// The delivery.
    pub delivery_id: Uuid,
    /// The new status.
    pub status: ReportedStatus,
    /// Where the device was; with `recorded_at`, the evidence that lets a report skip the
    /// pickup.
    #[serde(default)]
    pub position: Option<PositionInput>,
    /// The device's time of the report.
    #[serde(default)]
    pub recorded_at: Option<DateTime<Utc>>,
    /// For `delivered`: the proof photo's SHA-256 in hex.
    #[serde(default)]
    pub proof_sha256: Option<String>,
    /// For `delivered` of a cash order: the cash collected.
    #[serde(default)]
    pub cash_collected: Option<CashCollectedInput>,
    /// For `failed`: why.
    #[serde(default)]
    pub failure: Option<FailureReason>,
}

impl DeliveryStepArgs {
    /// The endpoint's request.
    pub fn request(&self) -> DeliveryStatusUpdateRequest {
        DeliveryStatusUpdateRequest {
            status: self.status,
            position: self.position,
            recorded_at: self.recorded_at,
            proof_sha256: self.proof_sha256.clone(),
            cash_collected: self.cash_collected.clone(),
            failure: self.failure.clone(),
        }
    }
}

/// `offer.accept@1` and `offer.decline@1`: `{"offer_id"}`. Output [`OfferOutput`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfferArgs {
    /// The offer.
    pub offer_id: Uuid,
}

/// The output of `offer.accept@1` and `offer.decline@1`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferOutput {
    /// The offered delivery.
    pub delivery_id: Uuid,
    /// `accepted` or `declined`.
    pub status: String,
}

/// One line of a sale at the till.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaleItem {
    /// The product.
    pub product_id: Uuid,
    /// The variant; required when the product has variants.
    #[serde(default)]
    pub variant_id: Option<Uuid>,
    /// How many, 1–999.
    pub quantity: i64,
}

/// How a sale at the till is paid: the money is taken there and then.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SalePayment {
    /// Cash taken at the till.
    Cash,
    /// A card presented to the store's terminal.
    CardPresent,
}

impl SalePayment {
    /// The wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cash => "cash",
            Self::CardPresent => "card_present",
        }
    }
}

/// How a sale at the till leaves the store.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SaleFulfilment {
    /// The customer takes it at the counter (the default).
    #[default]
    Pickup,
}

/// `order.create@1`, a sale at the till (staff with the orders permission):
/// `{"order_id", "items": [{"product_id", "variant_id"?, "quantity"}], "payment": "cash" |
/// "card_present", "fulfilment"?: {"kind": "pickup"}, "customer_name"?, "note"?}`.
///
/// Prices come from the server's catalog, never from the till. `order_id` is the new order's
/// id and the sale's idempotency key: a second mutation with the same id creates nothing more
/// and answers the order as it is. Output: the order (`OrderView`), created confirmed with
/// its payment captured.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderCreateArgs {
    /// The new order's id, made by the till (a UUID).
    pub order_id: Uuid,
    /// The lines, 1–100.
    pub items: Vec<SaleItem>,
    /// How it was paid.
    pub payment: SalePayment,
    /// How it leaves the store (default pickup).
    #[serde(default)]
    pub fulfilment: SaleFulfilment,
    /// The customer's name, as the till took it (1–100 characters).
    #[serde(default)]
    pub customer_name: Option<String>,
    /// A note for the kitchen (1–500 characters).
    #[serde(default)]
    pub note: Option<String>,
}

/// A parsed sale at the till.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sale {
    /// The new order's id.
    pub order_id: Uuid,
    /// Product, variant and quantity per line.
    pub lines: Vec<(Uuid, Option<Uuid>, Quantity)>,
    /// How it was paid.
    pub payment: SalePayment,
    /// How it leaves the store.
    pub fulfilment: SaleFulfilment,
    /// The customer's name.
    pub customer_name: Option<TextLine>,
    /// A note for the kitchen.
    pub note: Option<TextLine>,
}

impl OrderCreateArgs {
    /// Parses the sale.
    ///
    /// # Errors
    /// The field errors: no lines or too many, a quantity outside 1–999, a blank, too long
    /// or control-character name or note.
    pub fn parse(&self) -> Result<Sale, FieldErrors> {
        let mut e = FieldErrors::default();
        if self.items.is_empty() || self.items.len() > MAX_ORDER_LINES {
            e.push(
                "items",
                "invalid",
                format!("a sale has 1 to {MAX_ORDER_LINES} lines"),
            );
        }
        let mut lines = Vec::with_capacity(self.items.len());
        for (i, item) in self.items.iter().enumerate() {
            match Quantity::new(item.quantity) {
                Ok(q) => lines.push((item.product_id, item.variant_id, q)),
                Err(err) => e.push(&format!("items[{i}].quantity"), "invalid", err.to_string()),
            }
        }
        let customer_name = self
            .customer_name
            .as_deref()
            .and_then(|n| e.check("customer_name", TextLine::parse_max(n, 100)));
        let note = self
            .note
            .as_deref()
            .and_then(|n| e.check("note", TextLine::parse(n)));
        e.finish(|| {
            Some(Sale {
                order_id: self.order_id,
                lines,
                payment: self.payment,
                fulfilment: self.fulfilment.clone(),
                customer_name,
                note,
            })
        })
    }
}

/// `cart.add@1`, a signed-in customer sets a line of their cart at their store:
/// `{"product_id", "variant_id"?, "quantity"}`; quantity 0 removes the line. Output the cart
/// (`CartView`) as `PUT /api/v1/storefronts/{subdomain}/cart/items` answers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CartAddArgs {
    /// The product.
    pub product_id: Uuid,
    /// The variant, required when the product has variants.
    #[serde(default)]
    pub variant_id: Option<Uuid>,
    /// New quantity, 0–999; 0 removes the line.
    pub quantity: i64,
}

impl CartAddArgs {
    /// The endpoint's request.
    pub fn request(&self) -> SetCartItemRequest {
        SetCartItemRequest {
            product_id: self.product_id,
            variant_id: self.variant_id,
            quantity: self.quantity,
        }
    }
}

/// `order.place@1`, a signed-in customer's checkout:
/// `{"order_id", …CheckoutRequest}` (`items`, `fulfilment`, `scheduled_for`?, `tip_minor`?,
/// `discount_code`?, `payment`, `expected_total_minor`).
///
/// `order_id`, made by the app, is the checkout's idempotency key: a replay answers the first
/// checkout's order. The payment is never optimistic: the output is the order (`OrderView`) as
/// `POST /api/v1/orders` answers it; a card that needs the customer's step comes back
/// `awaiting_payment` with `payment_action.client_secret` for the app to finish online.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderPlaceArgs {
    /// The app's id for this order attempt (a UUID): the idempotency key.
    pub order_id: Uuid,
    /// The lines, 1–100.
    pub items: Vec<CheckoutItem>,
    /// Pickup or delivery.
    pub fulfilment: CheckoutFulfilment,
    /// A later time, or absent for as soon as possible.
    #[serde(default)]
    pub scheduled_for: Option<DateTime<Utc>>,
    /// Tip in minor units.
    #[serde(default)]
    pub tip_minor: i64,
    /// A discount code.
    #[serde(default)]
    pub discount_code: Option<String>,
    /// How the customer pays.
    pub payment: PaymentChoice,
    /// The total the customer was shown, in minor units.
    pub expected_total_minor: i64,
}

impl OrderPlaceArgs {
    /// The checkout request.
    pub fn request(&self) -> CheckoutRequest {
        CheckoutRequest {
            items: self.items.clone(),
            fulfilment: self.fulfilment.clone(),
            scheduled_for: self.scheduled_for,
            tip_minor: self.tip_minor,
            discount_code: self.discount_code.clone(),
            payment: self.payment.clone(),
            expected_total_minor: self.expected_total_minor,
        }
    }
}

/// `product.create@1` (staff with the catalog permission): `{"product_id", …CreateProductRequest}`.
/// `product_id` is the new product's id, made by the client, and the creation's idempotency
/// key: a second creation with the same id changes nothing and answers the product as it is.
/// Output the product (`ProductView`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductCreateArgs {
    /// The new product's id (a UUID).
    pub product_id: ProductId,
    /// SKU, unique in the business.
    pub sku: String,
    /// Name.
    pub name: String,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Price in minor units.
    pub price_minor: i64,
    /// What the product costs the business.
    #[serde(default)]
    pub cost_minor: Option<i64>,
    /// Category.
    #[serde(default)]
    pub category_id: Option<CategoryId>,
    /// Shown on the storefront (default false).
    #[serde(default)]
    pub is_published: Option<bool>,
    /// Minutes to prepare, 0–600.
    #[serde(default)]
    pub preparation_time_minutes: Option<i64>,
    /// Variants; at most 50.
    #[serde(default)]
    pub variants: Vec<VariantInput>,
}

impl ProductCreateArgs {
    /// The endpoint's request.
    pub fn request(&self) -> CreateProductRequest {
        CreateProductRequest {
            sku: self.sku.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            price_minor: self.price_minor,
            cost_minor: self.cost_minor,
            category_id: self.category_id,
            is_published: self.is_published,
            preparation_time_minutes: self.preparation_time_minutes,
            variants: self.variants.clone(),
        }
    }
}

/// `product.update@1` (staff with the catalog permission): `{"product_id",
/// …UpdateProductRequest}`; absent fields stay, `null` clears the clearable ones. Output the
/// product (`ProductView`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductUpdateArgs {
    /// The product.
    pub product_id: ProductId,
    /// New SKU.
    #[serde(default)]
    pub sku: Option<String>,
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New description; `null` removes it.
    #[serde(
        default,
        deserialize_with = "patch",
        skip_serializing_if = "Option::is_none"
    )]
    pub description: Option<Option<String>>,
    /// New price in minor units.
    #[serde(default)]
    pub price_minor: Option<i64>,
    /// New cost; `null` removes it.
    #[serde(
        default,
        deserialize_with = "patch",
        skip_serializing_if = "Option::is_none"
    )]
    pub cost_minor: Option<Option<i64>>,
    /// New category; `null` removes it.
    #[serde(
        default,
        deserialize_with = "patch",
        skip_serializing_if = "Option::is_none"
    )]
    pub category_id: Option<Option<CategoryId>>,
    /// Publish or hide.
    #[serde(default)]
    pub is_published: Option<bool>,
    /// New preparation time in minutes.
    #[serde(default)]
    pub preparation_time_minutes: Option<i64>,
    /// The new variant list (replaces the current one).
    #[serde(default)]
    pub variants: Option<Vec<VariantInput>>,
}

impl ProductUpdateArgs {
    /// The endpoint's request.
    pub fn request(&self) -> UpdateProductRequest {
        UpdateProductRequest {
            sku: self.sku.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            price_minor: self.price_minor,
            cost_minor: self.cost_minor,
            category_id: self.category_id,
            is_published: self.is_published,
            preparation_time_minutes: self.preparation_time_minutes,
            variants: self.variants.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn id() -> Uuid {
        Uuid::from_u128(7)
    }

    #[test]
    fn existing_shapes_parse() {
        let accept: OrderAcceptArgs =
            serde_json::from_value(json!({"order_id": id(), "prep_time": 15})).expect("accept");
        assert_eq!(accept.prep_time.minutes(), 15);
        assert_eq!(accept.event().kind(), crate::order::EventKind::Accept);
        let ready: OrderMarkReadyArgs =
            serde_json::from_value(json!({"order_id": id()})).expect("ready");
        assert_eq!(ready.event(), OrderEvent::MarkReady);
        let cancel: OrderCancelArgs =
            serde_json::from_value(json!({"order_id": id(), "reason": "Out of basil"}))
                .expect("cancel");
        assert_eq!(cancel.reason.as_str(), "Out of basil");
        let step: DeliveryStepArgs = serde_json::from_value(json!({
            "delivery_id": id(), "status": "delivered",
            "position": {"latitude": 60.17, "longitude": 24.94},
            "recorded_at": "2026-06-01T12:00:00Z",
        }))
        .expect("step");
        assert_eq!(step.request().status, ReportedStatus::Delivered);
        let offer: OfferArgs = serde_json::from_value(json!({"offer_id": id()})).expect("offer");
        assert_eq!(offer.offer_id, id());
    }

    #[test]
    fn new_shapes_parse() {
        let sale: OrderCreateArgs = serde_json::from_value(json!({
            "order_id": id(),
            "items": [{"product_id": id(), "variant_id": id(), "quantity": 2}],
            "payment": "card_present",
            "customer_name": "Aino",
        }))
        .expect("sale");
        assert_eq!(sale.fulfilment, SaleFulfilment::Pickup);
        let parsed = sale.parse().expect("valid sale");
        assert_eq!(parsed.payment, SalePayment::CardPresent);
        assert_eq!(parsed.lines[0].2.get(), 2);
        let cart: CartAddArgs =
            serde_json::from_value(json!({"product_id": id(), "quantity": 0})).expect("cart");
        assert_eq!(cart.request().quantity, 0);
        let place: OrderPlaceArgs = serde_json::from_value(json!({
            "order_id": id(), "items": [{"product_id": id(), "quantity": 1}],
            "fulfilment": {"kind": "pickup"}, "payment": {"method": "cash"},
            "expected_total_minor": 1200,
        }))
        .expect("place");
        assert_eq!(place.request().expected_total_minor, 1200);
        let create: ProductCreateArgs = serde_json::from_value(json!({
            "product_id": id(), "sku": "PIZ-1", "name": "Margherita", "price_minor": 1200,
        }))
        .expect("create");
        assert_eq!(create.request().name, "Margherita");
        let update: ProductUpdateArgs = serde_json::from_value(
            json!({"product_id": id(), "price_minor": 1300, "description": null}),
        )
        .expect("update");
        let request = update.request();
        assert_eq!(request.price_minor, Some(1300));
        assert_eq!(request.description, Some(None));
        assert_eq!(request.cost_minor, None);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let cases = [
            json!({"order_id": id(), "prep_time": 15, "extra": 1}),
            json!({"order_id": id(), "type": "accept", "prep_time": 15}),
        ];
        for case in cases {
            assert!(serde_json::from_value::<OrderAcceptArgs>(case).is_err());
        }
        assert!(serde_json::from_value::<OfferArgs>(json!({"offer_id": id(), "x": 1})).is_err());
        assert!(serde_json::from_value::<OrderCreateArgs>(json!({
            "order_id": id(), "items": [{"product_id": id(), "quantity": 1, "price_minor": 1}],
            "payment": "cash",
        }))
        .is_err());
        assert!(serde_json::from_value::<OrderCreateArgs>(json!({
            "order_id": id(), "items": [], "payment": "cash", "total_minor": 5,
        }))
        .is_err());
        assert!(serde_json::from_value::<CartAddArgs>(
            json!({"product_id": id(), "quantity": 1, "cart_id": id()})
        )
        .is_err());
        assert!(serde_json::from_value::<ProductUpdateArgs>(
            json!({"product_id": id(), "stock": 3})
        )
        .is_err());
        assert!(serde_json::from_value::<DeliveryStepArgs>(
            json!({"delivery_id": id(), "status": "delivered", "photo": "x"})
        )
        .is_err());
        assert!(serde_json::from_value::<OrderPlaceArgs>(json!({
            "order_id": id(), "items": [], "fulfilment": {"kind": "pickup"},
            "payment": {"method": "cash"}, "expected_total_minor": 0, "customer_id": id(),
        }))
        .is_err());
        assert!(serde_json::from_value::<ProductCreateArgs>(json!({
            "product_id": id(), "sku": "A", "name": "B", "price_minor": 1, "business_id": id(),
        }))
        .is_err());
    }

    #[test]
    fn sales_are_parsed() {
        let sale = |items: Vec<SaleItem>, name: Option<&str>| OrderCreateArgs {
            order_id: id(),
            items,
            payment: SalePayment::Cash,
            fulfilment: SaleFulfilment::Pickup,
            customer_name: name.map(str::to_owned),
            note: None,
        };
        let line = |quantity| SaleItem {
            product_id: id(),
            variant_id: None,
            quantity,
        };
        assert!(sale(vec![line(1)], None).parse().is_ok());
        let fields = |r: Result<Sale, FieldErrors>| -> Vec<String> {
            r.err()
                .map(|e| e.0.into_iter().map(|f| f.field).collect())
                .unwrap_or_default()
        };
        assert_eq!(fields(sale(vec![], None).parse()), ["items"]);
        assert_eq!(
            fields(sale(vec![line(0)], None).parse()),
            ["items[0].quantity"]
        );
        assert_eq!(
            fields(sale(vec![line(1000)], None).parse()),
            ["items[0].quantity"]
        );
        assert_eq!(
            fields(sale(vec![line(1)], Some("  ")).parse()),
            ["customer_name"]
        );
        assert_eq!(
            serde_json::to_value(SalePayment::CardPresent).expect("serializes"),
            json!("card_present")
        );
        assert_eq!(
            serde_json::to_value(SaleFulfilment::Pickup).expect("serializes"),
            json!({"kind": "pickup"})
        );
        assert!(KNOWN.contains(&ORDER_CREATE));
    }
}
