//! What a mutation changes on this device before the server decides: the optimistic half of
//! `../shared/design.md` section 4.
//!
//! [`apply`] reads the rows the user sees (pulled rows with earlier pending mutations on top)
//! and returns the rows the mutation changes, using the same rules as the server where the
//! device holds what they need: `fleetfront_domain::order::apply` for order transitions and
//! `fleetfront_domain::delivery::apply` for delivery steps. A mutation those rules refuse here
//! is refused at once, in words, and never queued. What only the server can know (stock,
//! another till's sale, the store cancelling meanwhile) it decides when the mutation arrives;
//! a rejection there removes the mutation's local effect at the next rebase.
//!
//! A mutation this build does not model (or whose rows are not on the device) changes nothing
//! locally and is still queued: the server is the judge.

use chrono::{DateTime, Utc};
use fleetfront_domain::api::delivery::DeliveryStatusUpdateRequest;
use fleetfront_domain::api::mutations::{CartAddArgs, OrderCreateArgs};
use fleetfront_domain::api::problem::FieldErrors;
use fleetfront_domain::api::sync::Mutation;
use fleetfront_domain::delivery::{self, DeliveryActor, DeliveryOutcome, DeliveryState};
use fleetfront_domain::money::{Currency, Money};
use fleetfront_domain::order::{
    self, OrderEvent, OrderState, OrderStatus, Outcome, Party, PaymentState,
};
use fleetfront_domain::UserId;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::store::StoreError;

/// One row a mutation writes locally: its new data, or `None` to hide it.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// The row's kind (`order`, `delivery`, `offer`, `product` …).
    pub kind: String,
    /// The row's id.
    pub id: Uuid,
    /// The new data; `None` removes the row from what the user sees.
    pub data: Option<Value>,
}

/// Why a mutation cannot apply on this device, for the user.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    /// The stable code (the domain's, as the server would answer).
    pub code: String,
    /// Why, in words.
    pub message: String,
}

impl Refusal {
    fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

/// Reads the rows the user sees.
pub trait Rows {
    /// One row by kind and id, as the user sees it.
    ///
    /// # Errors
    /// The store's.
    fn get(&self, kind: &str, id: Uuid) -> Result<Option<Value>, StoreError>;

    /// Every row of a kind, as the user sees it, by id.
    ///
    /// # Errors
    /// The store's.
    fn all(&self, kind: &str) -> Result<Vec<(Uuid, Value)>, StoreError>;
}

/// Who is signed in on the device, as far as the local rules need it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Me {
    /// The account's id (the driver's user id for delivery steps).
    pub id: Uuid,
}

/// The outcome of [`apply`]: the changes, or why the mutation cannot apply here.
pub type LocalOutcome = Result<Vec<Change>, Refusal>;

/// The rows `m` changes over `rows`.
///
/// # Errors
/// The store's errors while reading; a refusal is the inner `Err`.
pub fn apply(rows: &dyn Rows, me: Option<Me>, m: &Mutation) -> Result<LocalOutcome, StoreError> {
    let at = m.action_time;
    match m.name.as_str() {
        "order.accept@1" => order_event(rows, &m.args, "accept", at),
        "order.mark_ready@1" => order_event(rows, &m.args, "mark_ready", at),
        "order.cancel@1" => order_event(rows, &m.args, "cancel", at),
        "delivery.step@1" => delivery_step(rows, me, &m.args, at),
        "offer.accept@1" => offer_answer(rows, &m.args, true, at),
        "offer.decline@1" => offer_answer(rows, &m.args, false, at),
        "order.create@1" => pos_order(rows, &m.args, at),
        "product.update@1" => product_update(rows, &m.args),
        "cart.add@1" => cart_add(rows, m),
        _ => Ok(Ok(Vec::new())),
    }
}

fn bad_args(message: impl Into<String>) -> Refusal {
    Refusal::new("validation_failed", message)
}

/// Splits `{"<field>": uuid, …rest}`.
fn take_id(args: &Value, field: &str) -> Result<(Uuid, Map<String, Value>), Refusal> {
    let mut rest = args
        .as_object()
        .cloned()
        .ok_or_else(|| bad_args("the arguments are an object"))?;
    let id = rest
        .remove(field)
        .and_then(|v| v.as_str().and_then(|s| Uuid::parse_str(s).ok()))
        .ok_or_else(|| bad_args(format!("{field} is required")))?;
    Ok((id, rest))
}

fn text<'a>(data: &'a Value, field: &str) -> Option<&'a str> {
    data.get(field).and_then(Value::as_str)
}

fn time(data: &Value, field: &str) -> Option<DateTime<Utc>> {
    text(data, field)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// The order's state for the domain rules, from its pulled row.
fn order_state(data: &Value) -> Option<OrderState> {
    Some(OrderState {
        status: OrderStatus::parse(text(data, "status")?)?,
        fulfilment: serde_json::from_value(data.get("fulfilment")?.clone()).ok()?,
        payment: PaymentState::of_payment_status(text(data, "payment_status")?),
        // An order pulled without a deadline (never on this server) is treated as past it.
        acceptance_deadline: time(data, "acceptance_deadline").unwrap_or(DateTime::UNIX_EPOCH),
    })
}

fn order_event(
    rows: &dyn Rows,
    args: &Value,
    kind: &str,
    at: DateTime<Utc>,
) -> Result<LocalOutcome, StoreError> {
    let (id, mut rest) = match take_id(args, "order_id") {
        Ok(split) => split,
        Err(refusal) => return Ok(Err(refusal)),
    };
    rest.insert("type".to_owned(), Value::String(kind.to_owned()));
    let event: OrderEvent = match serde_json::from_value(Value::Object(rest)) {
        Ok(event) => event,
        Err(e) => return Ok(Err(bad_args(e.to_string()))),
    };
    let Some(mut data) = rows.get("order", id)? else {
        return Ok(Err(Refusal::new(
            "not_found",
            "this order is not on this device; sync and try again",
        )));
    };
    let Some(state) = order_state(&data) else {
        // A row this build cannot read: the server decides.
        return Ok(Ok(Vec::new()));
    };
    let transition = match order::apply(&state, event.clone(), Party::Staff, at) {
        Ok(t) => t,
        Err(e) => return Ok(Err(Refusal::new(e.code(), e.to_string()))),
    };
    if transition.outcome != Outcome::Applied {
        return Ok(Ok(Vec::new()));
    }
    // A row this build cannot read (not an object): the server decides.
    let Some(object) = data.as_object_mut() else {
        return Ok(Ok(Vec::new()));
    };
    object.insert("status".to_owned(), json!(transition.status.as_str()));
    object.insert("updated_at".to_owned(), json!(at));
    match event {
        OrderEvent::Accept { prep_time } => {
            object.insert("accepted_at".to_owned(), json!(at));
            object.insert("prep_time_minutes".to_owned(), json!(prep_time.minutes()));
        }
        OrderEvent::Cancel { reason } => {
            object.insert("cancellation_reason".to_owned(), json!(reason.as_str()));
        }
        _ => {}
    }
    Ok(Ok(vec![Change {
        kind: "order".to_owned(),
        id,
        data: Some(data),
    }]))
}

fn delivery_step(
    rows: &dyn Rows,
    me: Option<Me>,
    args: &Value,
    at: DateTime<Utc>,
) -> Result<LocalOutcome, StoreError> {
    let (id, rest) = match take_id(args, "delivery_id") {
        Ok(split) => split,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let req: DeliveryStatusUpdateRequest = match serde_json::from_value(Value::Object(rest)) {
        Ok(req) => req,
        Err(e) => return Ok(Err(bad_args(e.to_string()))),
    };
    let Some(mut data) = rows.get("delivery", id)? else {
        return Ok(Err(Refusal::new(
            "not_found",
            "this delivery is not on this device any more; it may have been reassigned",
        )));
    };
    let (Some(me), Some(status)) = (
        me,
        text(&data, "status").and_then(delivery::DeliveryStatus::parse),
    ) else {
        return Ok(Ok(Vec::new()));
    };
    let currency = data
        .pointer("/order/currency")
        .and_then(Value::as_str)
        .and_then(|c| Currency::parse(c).ok());
    let Some(currency) = currency else {
        return Ok(Ok(Vec::new()));
    };
    let cash_due = (data
        .pointer("/order/payment_method")
        .and_then(Value::as_str)
        == Some("cash"))
    .then(|| data.pointer("/order/total_minor").and_then(Value::as_i64))
    .flatten()
    .map(|minor| Money::new(minor, currency));
    // The device cannot know the business's photo rule; the server checks it.
    let state = DeliveryState {
        driver: UserId(me.id),
        status,
        proof_required: false,
        cash_due,
    };
    let update = match req.parse(currency, at) {
        Ok(update) => update,
        Err(errors) => return Ok(Err(field_errors(&errors))),
    };
    let transition = match delivery::apply(
        &state,
        update.command,
        update.evidence,
        DeliveryActor::Driver(UserId(me.id)),
        at,
    ) {
        Ok(t) => t,
        Err(e) => return Ok(Err(Refusal::new(e.code(), e.to_string()))),
    };
    if transition.outcome != DeliveryOutcome::Applied {
        return Ok(Ok(Vec::new()));
    }
    // A row this build cannot read (not an object): the server decides.
    let Some(object) = data.as_object_mut() else {
        return Ok(Ok(Vec::new()));
    };
    object.insert("status".to_owned(), json!(transition.status.as_str()));
    for change in &transition.changes {
        object.insert(format!("{}_at", change.to.as_str()), json!(at));
    }
    Ok(Ok(vec![Change {
        kind: "delivery".to_owned(),
        id,
        data: Some(data),
    }]))
}

fn offer_answer(
    rows: &dyn Rows,
    args: &Value,
    accept: bool,
    at: DateTime<Utc>,
) -> Result<LocalOutcome, StoreError> {
    let (id, rest) = match take_id(args, "offer_id") {
        Ok(split) => split,
        Err(refusal) => return Ok(Err(refusal)),
    };
    if !rest.is_empty() {
        return Ok(Err(bad_args("only offer_id is expected")));
    }
    let Some(offer) = rows.get("offer", id)? else {
        return Ok(Err(Refusal::new(
            "offer_expired",
            "this offer is no longer open",
        )));
    };
    let mut changes = vec![Change {
        kind: "offer".to_owned(),
        id,
        data: None,
    }];
    if !accept {
        return Ok(Ok(changes));
    }
    // The same rule as the server's: an offer is taken strictly before its expiry (the
    // server judges by its own clock when the accept arrives).
    if time(&offer, "expires_at").is_some_and(|expires| at >= expires) {
        return Ok(Err(Refusal::new(
            "offer_expired",
            "this offer expired before it was accepted",
        )));
    }
    let delivery = offer
        .get("delivery_id")
        .and_then(Value::as_str)
        .and_then(|d| Uuid::parse_str(d).ok());
    if let Some(delivery) = delivery {
        let order = offer.get("order").cloned().unwrap_or(Value::Null);
        changes.push(Change {
            kind: "delivery".to_owned(),
            id: delivery,
            data: Some(json!({
                "business_id": offer.get("business_id"),
                "order_id": order.get("id"),
                "status": "assigned",
                "assigned_at": at,
                "order": order,
            })),
        });
    }
    Ok(Ok(changes))
}

/// A till's sale (`order.create@1`): the order as the till sees it, priced from the local
/// catalog, with the server's own argument rules. Stock is not on the device: the server
/// decides whether the last unit is still there, and a sale it refuses rolls back here.
fn pos_order(rows: &dyn Rows, args: &Value, at: DateTime<Utc>) -> Result<LocalOutcome, StoreError> {
    let parsed: OrderCreateArgs = match serde_json::from_value(args.clone()) {
        Ok(parsed) => parsed,
        Err(e) => return Ok(Err(bad_args(e.to_string()))),
    };
    let sale = match parsed.parse() {
        Ok(sale) => sale,
        Err(errors) => return Ok(Err(field_errors(&errors))),
    };
    if rows.get("order", sale.order_id)?.is_some() {
        // The same sale again (its id is its idempotency key): nothing more.
        return Ok(Ok(Vec::new()));
    }
    let mut lines = Vec::with_capacity(sale.lines.len());
    let mut subtotal: i64 = 0;
    for (n, (product_id, variant_id, quantity)) in sale.lines.iter().enumerate() {
        let quantity = i64::from(quantity.get());
        let Some(product) = rows.get("product", *product_id)? else {
            return Ok(Err(Refusal::new(
                "product_unavailable",
                "a product of this sale is not in the catalog any more",
            )));
        };
        let mut unit = product
            .get("price_minor")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let mut variant_name = Value::Null;
        if let Some(variant_id) = variant_id {
            let Some(variant) = rows.get("variant", *variant_id)? else {
                return Ok(Err(Refusal::new(
                    "product_unavailable",
                    "a variant of this sale is not in the catalog any more",
                )));
            };
            unit = unit.saturating_add(
                variant
                    .get("price_adjustment_minor")
                    .and_then(Value::as_i64)
                    .unwrap_or(0),
            );
            variant_name = variant.get("name").cloned().unwrap_or(Value::Null);
        }
        let line_total = unit.saturating_mul(quantity);
        subtotal = subtotal.saturating_add(line_total);
        lines.push(json!({
            "line_no": n + 1,
            "product_id": product_id,
            "variant_id": variant_id,
            "product_name": product.get("name"),
            "variant_name": variant_name,
            "unit_price_minor": unit,
            "quantity": quantity,
            "line_total_minor": line_total,
        }));
    }
    Ok(Ok(vec![Change {
        kind: "order".to_owned(),
        id: sale.order_id,
        data: Some(json!({
            "status": "confirmed",
            "fulfilment": "pickup",
            // The store holds the money either way; `till.tender` says how it was paid.
            "payment_method": "cash",
            "payment_status": "captured",
            "subtotal_minor": subtotal,
            "total_minor": subtotal,
            "placed_at": at,
            "accepted_at": at,
            "updated_at": at,
            "items": lines,
            "till": {
                "tender": sale.payment.as_str(),
                "customer_name": sale.customer_name.as_ref().map(|n| n.as_str()),
                "note": sale.note.as_ref().map(|n| n.as_str()),
            },
        })),
    }]))
}

/// Field errors in words, for the user.
fn field_errors(errors: &FieldErrors) -> Refusal {
    let message = errors
        .0
        .iter()
        .map(|e| e.message.clone())
        .collect::<Vec<_>>()
        .join("; ");
    bad_args(message)
}

/// A customer sets a line of the cart (`cart.add@1`; quantity 0 removes it). Without a cart
/// on the device yet, one is shown under the mutation's id until the server's arrives.
fn cart_add(rows: &dyn Rows, m: &Mutation) -> Result<LocalOutcome, StoreError> {
    let args: CartAddArgs = match serde_json::from_value(m.args.clone()) {
        Ok(args) => args,
        Err(e) => return Ok(Err(bad_args(e.to_string()))),
    };
    if !(0..=999).contains(&args.quantity) {
        return Ok(Err(bad_args("a quantity is 0 to 999")));
    }
    if args.quantity > 0 && rows.get("product", args.product_id)?.is_none() {
        return Ok(Err(Refusal::new(
            "product_unavailable",
            "this product is not in the catalog any more",
        )));
    }
    let (id, mut cart) = rows
        .all("cart")?
        .into_iter()
        .next()
        .unwrap_or_else(|| (m.id, json!({"items": []})));
    let mut items: Vec<Value> = cart
        .get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let same = |item: &Value| {
        item.get("product_id").and_then(Value::as_str) == Some(&args.product_id.to_string())
            && item
                .get("variant_id")
                .and_then(Value::as_str)
                .map(str::to_owned)
                == args.variant_id.map(|v| v.to_string())
    };
    match items.iter_mut().find(|item| same(item)) {
        Some(item) => item["quantity"] = json!(args.quantity),
        None if args.quantity > 0 => items.push(json!({
            "id": m.id, "product_id": args.product_id, "variant_id": args.variant_id,
            "quantity": args.quantity, "added_at": m.action_time,
        })),
        None => {}
    }
    items.retain(|item| item.get("quantity").and_then(Value::as_i64) != Some(0));
    cart["items"] = Value::Array(items);
    Ok(Ok(vec![Change {
        kind: "cart".to_owned(),
        id,
        data: Some(cart),
    }]))
}

/// A catalog edit: the fields sent replace the product's.
fn product_update(rows: &dyn Rows, args: &Value) -> Result<LocalOutcome, StoreError> {
    let (id, rest) = match take_id(args, "product_id") {
        Ok(split) => split,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let Some(mut data) = rows.get("product", id)? else {
        // Not public on this device (or not pulled yet): the server decides.
        return Ok(Ok(Vec::new()));
    };
    if let Some(object) = data.as_object_mut() {
        for (field, value) in rest {
            if object.contains_key(&field) {
                object.insert(field, value);
            }
        }
    }
    Ok(Ok(vec![Change {
        kind: "product".to_owned(),
        id,
        data: Some(data),
    }]))
}
