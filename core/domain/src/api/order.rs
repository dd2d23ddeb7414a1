//! Orders on the wire: checkout requests (account and guest), the order as the business and the
//! customer see it, pages of orders, and the tracking view.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::customer::AddressInput;
use crate::money::Money;
use crate::order::{FulfilmentKind, OrderStatus, Outcome, Party};
use crate::pricing::TaxMode;

/// Most lines one order may hold.
pub const MAX_ORDER_LINES: usize = 100;

/// One line of a checkout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CheckoutItem {
    /// The product.
    pub product_id: Uuid,
    /// The variant; required when the product has variants.
    #[serde(default)]
    pub variant_id: Option<Uuid>,
    /// How many, 1–999.
    pub quantity: i64,
    /// The unit price (variant adjustment included) the customer was shown, in minor units;
    /// when given, a changed price is reported line by line.
    #[serde(default)]
    pub expected_unit_price_minor: Option<i64>,
}

/// How the customer receives the order.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CheckoutFulfilment {
    /// Collected at the store.
    Pickup,
    /// Delivered to a saved address (`address_id`, customers only) or to an inline address.
    Delivery {
        /// One of the customer's saved addresses.
        #[serde(default)]
        address_id: Option<Uuid>,
        /// An address given with the order, with coordinates.
        #[serde(default)]
        address: Option<Box<AddressInput>>,
    },
}

/// How the customer pays.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub enum PaymentChoice {
    /// Cash on delivery or at pickup.
    Cash,
    /// A card, as the payment provider's token (card data never reaches the server).
    Card {
        /// The provider's payment method token, e.g. Stripe `pm_…`.
        token: String,
    },
    /// One of the signed-in customer's saved cards (`GET /api/v1/customers/me/payment-methods`).
    SavedCard {
        /// The saved card's id.
        payment_method_id: Uuid,
    },
}

impl PaymentChoice {
    /// Stored form.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Cash => "cash",
            Self::Card { .. } | Self::SavedCard { .. } => "card",
        }
    }
}

/// `POST /api/v1/orders`: checkout for the signed-in customer (the store comes from the token).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    /// The lines, 1–100.
    pub items: Vec<CheckoutItem>,
    /// Pickup or delivery.
    pub fulfilment: CheckoutFulfilment,
    /// A later time (inside the store's opening hours); absent for as soon as possible, which
    /// needs the store open now.
    #[serde(default)]
    pub scheduled_for: Option<DateTime<Utc>>,
    /// Tip in minor units, at most the subtotal.
    #[serde(default)]
    pub tip_minor: i64,
    /// A discount code.
    #[serde(default)]
    pub discount_code: Option<String>,
    /// How the customer pays.
    pub payment: PaymentChoice,
    /// The total the customer was shown, in minor units; a different current total answers
    /// 409 `price_changed` and places nothing.
    pub expected_total_minor: i64,
}

/// `POST /api/v1/customers/guest-checkout`: checkout without an account.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct GuestCheckoutRequest {
    /// The store's subdomain.
    pub store: String,
    /// Where the confirmation goes.
    pub email: String,
    /// How the store reaches the guest (E.164).
    pub phone: String,
    /// The lines, 1–100.
    pub items: Vec<CheckoutItem>,
    /// Pickup or delivery (an inline address; guests have no saved addresses).
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
    /// How the guest pays.
    pub payment: PaymentChoice,
    /// The total the guest was shown, in minor units.
    pub expected_total_minor: i64,
}

impl GuestCheckoutRequest {
    /// The order part of the request.
    pub fn checkout(&self) -> CheckoutRequest {
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

/// One line of a placed order: a snapshot of what was sold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderItemView {
    /// The product.
    pub product_id: Uuid,
    /// The variant.
    pub variant_id: Option<Uuid>,
    /// Product name when sold.
    pub product_name: String,
    /// Variant name when sold.
    pub variant_name: Option<String>,
    /// Price of one, variant adjustment included.
    pub unit_price: Money,
    /// How many.
    pub quantity: i64,
    /// `unit_price × quantity`.
    pub line_total: Money,
}

/// A placed order.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderView {
    /// Id.
    pub id: Uuid,
    /// The store.
    pub business_id: Uuid,
    /// The customer; absent for a guest.
    pub customer_id: Option<Uuid>,
    /// A guest's email.
    pub guest_email: Option<String>,
    /// A guest's phone.
    pub guest_phone: Option<String>,
    /// Where the order is.
    pub status: OrderStatus,
    /// Pickup or delivery.
    pub fulfilment: FulfilmentKind,
    /// The drop-off snapshot (delivery).
    pub delivery_address: Option<serde_json::Value>,
    /// When it was wanted; absent for as soon as possible.
    pub scheduled_for: Option<DateTime<Utc>>,
    /// Lines.
    pub items: Vec<OrderItemView>,
    /// Sum of lines.
    pub subtotal: Money,
    /// Discount taken off.
    pub discount: Money,
    /// The discount code.
    pub discount_code: Option<String>,
    /// Tax (contained in the prices or added, per `tax_mode`).
    pub tax: Money,
    /// Whether the prices contain the tax.
    pub tax_mode: TaxMode,
    /// Delivery fee.
    pub delivery_fee: Money,
    /// Tip.
    pub tip: Money,
    /// What the customer pays.
    pub total: Money,
    /// `cash` or `card`.
    pub payment_method: String,
    /// `unpaid`, `requires_action`, `authorized`, `captured`, `released` or `refunded`.
    pub payment_status: String,
    /// When it was placed.
    pub placed_at: DateTime<Utc>,
    /// The business must accept before this, or the order is rejected automatically.
    pub acceptance_deadline: DateTime<Utc>,
    /// When the business accepted it.
    pub accepted_at: Option<DateTime<Utc>>,
    /// Preparation time promised on acceptance.
    pub prep_time_minutes: Option<i64>,
    /// Why it was rejected or cancelled.
    pub cancellation_reason: Option<String>,
    /// The private tracking token; only in the checkout response (and its replays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_token: Option<String>,
    /// What the customer must do to complete the payment (3-D Secure); only in the checkout
    /// response (and its replays) of an order that is `awaiting_payment`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_action: Option<PaymentAction>,
    /// A sale at the till: how it was paid there and what the till took down; absent for an
    /// order placed online.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub till: Option<TillSaleView>,
}

/// What the till recorded of a sale (`order.create@1`). The store holds the money either way,
/// so the order's `payment_method` is `cash`; `tender` says how it was paid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TillSaleView {
    /// `cash`, or `card_present` (a card on the store's terminal).
    pub tender: String,
    /// The customer's name as the till took it.
    pub customer_name: Option<String>,
    /// The note for the kitchen.
    pub note: Option<String>,
}

/// A step the customer completes in the payment provider's own UI (3-D Secure), as the
/// provider documents it: the client hands `client_secret` to the provider's SDK (Stripe.js
/// `handleNextAction`), then calls `POST /api/v1/orders/{id}/payment/confirm`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PaymentAction {
    /// The provider's payment id (Stripe `pi_…`).
    pub payment_intent: String,
    /// The secret for the provider's client SDK.
    pub client_secret: String,
    /// The provider's kind of next action, e.g. `use_stripe_sdk`.
    pub next_action: String,
    /// The order is cancelled, and its stock released, unless the payment is completed before
    /// this instant.
    pub expires_at: DateTime<Utc>,
}

/// `POST /api/v1/orders/{id}/payment/confirm` answer: the order's state after the payment
/// provider was asked.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PaymentConfirmation {
    /// The order.
    pub order_id: Uuid,
    /// `pending` once the payment holds (the business sees the order now); a terminal status
    /// when the order ended before.
    pub status: OrderStatus,
    /// `authorized` once the payment holds.
    pub payment_status: String,
    /// The business must accept before this.
    pub acceptance_deadline: DateTime<Utc>,
}

/// A page of orders.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderPage {
    /// The orders.
    pub items: Vec<OrderView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// `GET /api/v1/business/orders` filters.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct BusinessOrderQuery {
    /// Only orders in this status.
    #[serde(default)]
    pub status: Option<String>,
    /// Only orders placed at or after this instant.
    #[serde(default)]
    pub since: Option<DateTime<Utc>>,
    /// Page size, 1–100 (default 50).
    #[serde(default)]
    pub limit: Option<i64>,
    /// From the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// `GET /api/v1/customers/me/orders` paging.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Page size, 1–100 (default 20).
    #[serde(default)]
    pub limit: Option<i64>,
    /// From the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// `GET /api/v1/orders/{id}/tracking` query.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct TrackingQuery {
    /// The private tracking token from the confirmation (not needed with the customer's own
    /// bearer token).
    #[serde(default)]
    pub token: Option<String>,
}

/// One entry of an order's status log.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusEntry {
    /// Previous status; absent for the placement.
    pub from: Option<OrderStatus>,
    /// New status.
    pub to: OrderStatus,
    /// Applied, superseded or a cancellation request.
    pub outcome: Outcome,
    /// Who.
    pub by: Party,
    /// When.
    pub at: DateTime<Utc>,
    /// Why (rejections, cancellations).
    pub reason: Option<String>,
    /// Filled in by a later event that skipped it.
    pub filled_in: bool,
}

/// What the customer sees of an order in progress.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TrackingView {
    /// The order.
    pub order_id: Uuid,
    /// Where it is.
    pub status: OrderStatus,
    /// Pickup or delivery.
    pub fulfilment: FulfilmentKind,
    /// When it was placed.
    pub placed_at: DateTime<Utc>,
    /// Estimated ready time (acceptance + preparation time) until dispatch gives a real ETA.
    pub estimated_ready_at: Option<DateTime<Utc>>,
    /// Why it was rejected or cancelled.
    pub cancellation_reason: Option<String>,
    /// The status log, oldest first.
    pub history: Vec<StatusEntry>,
    /// Lines.
    pub items: Vec<OrderItemView>,
    /// What the customer pays.
    pub total: Money,
    /// The assigned courier's latest known position, once a driver holds the delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub courier: Option<CourierView>,
    /// The delivery's steps as they happened (courier assigned, at the store, picked up, at
    /// the door, delivered …), oldest first; positions only while a driver holds the delivery.
    #[serde(default)]
    pub delivery_events: Vec<TrackingEventView>,
}

/// One step of an order's delivery on its tracking page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TrackingEventView {
    /// What happened ([`crate::delivery::TrackingKind`]'s stored form, e.g. `picked_up`).
    pub kind: String,
    /// When the server recorded it.
    pub at: DateTime<Utc>,
    /// Where the courier's device was, while the courier holds the delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<crate::value::Coordinates>,
}

/// Where the courier of an order was last seen. A position older than
/// [`crate::location::LIVE_FOR`] is shown with `live: false`, as last seen, never as live.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CourierView {
    /// The latest position, if the courier has sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<crate::value::Coordinates>,
    /// When the device recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_at: Option<DateTime<Utc>>,
    /// Whether the position is recent enough to show as where the courier is now.
    pub live: bool,
    /// Estimated seconds until the courier reaches the drop-off (through the store when not
    /// yet picked up), at a typical city speed; only while the position is live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_seconds: Option<u32>,
}

/// `POST /api/v1/business/orders/{id}/refund`: give the money of a completed, paid order back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    /// How much to give back, in minor units, 1 up to the order's total; absent: all of it.
    #[serde(default)]
    pub amount_minor: Option<i64>,
    /// Why, recorded in the status log and shown to the customer.
    pub reason: String,
}

/// A parsed [`RefundRequest`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refund {
    /// The amount in the order's currency; `None` is the whole captured amount.
    pub amount_minor: Option<i64>,
    /// Why.
    pub reason: crate::order::Reason,
}

impl RefundRequest {
    /// Parses every field (the amount is compared with the order's total by the caller).
    ///
    /// # Errors
    /// The field errors.
    pub fn parse(&self) -> Result<Refund, super::FieldErrors> {
        let mut e = super::FieldErrors::default();
        if self.amount_minor.is_some_and(|a| a < 1) {
            e.push(
                "amount_minor",
                "invalid",
                "a refund is at least 1 minor unit",
            );
        }
        let reason = match crate::order::Reason::parse(&self.reason) {
            Ok(r) => Some(r),
            Err(err) => {
                e.push("reason", err.code(), err.to_string());
                None
            }
        };
        let amount_minor = self.amount_minor;
        e.finish(|| {
            Some(Refund {
                amount_minor,
                reason: reason?,
            })
        })
    }
}

#[cfg(test)]
mod refund_tests {
    use super::*;

    #[test]
    fn refund_requests_are_parsed() {
        let ok = RefundRequest {
            amount_minor: None,
            reason: " wrong pizza ".into(),
        }
        .parse()
        .expect("valid");
        assert_eq!(ok.reason.as_str(), "wrong pizza");
        assert_eq!(ok.amount_minor, None);
        let bad = RefundRequest {
            amount_minor: Some(0),
            reason: "  ".into(),
        }
        .parse()
        .expect_err("invalid");
        let fields: Vec<&str> = bad.0.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["amount_minor", "reason"]);
        assert!(
            serde_json::from_str::<RefundRequest>(r#"{"reason": "x", "status": "refunded"}"#)
                .is_err()
        );
    }
}

/// `POST /api/v1/orders/{id}/cancel`: the customer cancels their order (while it is pending),
/// or asks the store to (afterwards).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CancelOrderRequest {
    /// Why, shown to the store.
    pub reason: String,
}

impl CancelOrderRequest {
    /// Parses the reason.
    ///
    /// # Errors
    /// The field errors.
    pub fn parse(&self) -> Result<crate::order::Reason, super::FieldErrors> {
        let mut e = super::FieldErrors::default();
        match crate::order::Reason::parse(&self.reason) {
            Ok(reason) => Ok(reason),
            Err(err) => {
                e.push("reason", err.code(), err.to_string());
                Err(e)
            }
        }
    }
}
