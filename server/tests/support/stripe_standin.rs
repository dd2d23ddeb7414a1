//! A local stand-in for Stripe's API, for tests: Stripe cannot be reached from here.
//!
//! It serves, on a loopback port, the endpoints the adapter calls, with the requests and
//! responses Stripe documents (https://docs.stripe.com/api): form-encoded bodies, `Authorization:
//! Bearer sk_…` (401 `authentication_error` otherwise), JSON objects and `{"error": {...}}`
//! errors, and idempotency keys — the same key with the same parameters replays the first
//! response (errors included), the same key with other parameters is a 400
//! `idempotency_error`. Test payment methods behave like Stripe's:
//! `pm_card_visa` authorizes (`requires_capture`), `pm_card_chargeDeclined` is a 402
//! `card_error` with `decline_code=generic_decline`, `pm_card_threeDSecure2Required` needs
//! customer action (`requires_action` with a client secret).
//!
//! [`StandIn::fail_next`] answers the next requests with a 500 `api_error` before any work is
//! done (nothing is stored under the idempotency key, as when Stripe fails before the endpoint
//! starts executing), with `Stripe-Should-Retry: true`; [`StandIn::fail_next_matching`] does
//! the same for the next requests to paths ending in a suffix (e.g. `/capture`).
//! [`StandIn::lose_next_answers`] does the work and stores the result under the idempotency key
//! but answers a 502, as when the connection breaks after Stripe answered: only the
//! idempotency key keeps the retry from doing the work twice.
//!
//! 3-D Secure: `pm_card_threeDSecure2Required` (Stripe's test card 4000 0027 6000 3184)
//! leaves the PaymentIntent `requires_action` with `next_action.type = use_stripe_sdk`;
//! [`StandIn::complete_authentication`] plays the customer passing the challenge in Stripe.js
//! (the intent becomes `requires_capture`), [`StandIn::fail_authentication`] failing it
//! (`requires_payment_method` with `payment_intent_authentication_failure`).
//!
//! Saved cards: `GET /v1/payment_methods/{id}` (the test methods `pm_card_visa`,
//! `pm_card_mastercard`, `pm_card_threeDSecure2Required`, `pm_card_chargeDeclined` with their
//! brand, last four digits and expiry), `POST /v1/customers`, `POST
//! /v1/payment_methods/{id}/attach` (`customer`) and `/detach`; a PaymentIntent with a method
//! attached to a customer must name that `customer`, as Stripe requires.
//!
//! [`StandIn::hold_next`] keeps the next matching request waiting until the test lets it go, so
//! a test can change the world while the server waits for Stripe.
//!
//! Payouts: `POST /v1/transfers` (`amount`, `currency`, `destination` — a connected account
//! `acct_…`; `acct_missing` is unknown, as Stripe answers for an account that does not exist —,
//! `transfer_group`, `metadata[…]`) creates a `tr_…` Transfer, and `GET /v1/transfers/{id}`
//! reads it; [`StandIn::transfers`] lists them. The same Idempotency-Key returns the same
//! transfer, as for every POST.
//!
//! It also signs webhook events as Stripe does ([`signed_event`]) and delivers them to a webhook
//! endpoint over HTTP ([`deliver`]).

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};

/// The secret key tests configure the adapter with.
pub const SECRET_KEY: &str = "sk_test_standin_0123456789";

/// A running stand-in.
#[derive(Clone)]
pub struct StandIn {
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    state: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    intents: HashMap<String, Value>,
    charges: HashMap<String, Value>,
    refunds: HashMap<String, Value>,
    transfers: Vec<Value>,
    /// key → (fingerprint of method, path and parameters, status, body)
    idempotency: HashMap<String, (String, u16, Value)>,
    fail_next: usize,
    /// (path suffix, how many more) answered 500 before any work.
    fail_matching: Option<(String, usize)>,
    /// (path suffix, how many more) done, but answered 502.
    lose_matching: Option<(String, usize)>,
    /// The next request whose path ends with this suffix waits for the test (see
    /// [`StandIn::hold_next`]).
    hold: Option<(String, Held)>,
    customers: HashMap<String, Value>,
    /// payment method → customer it is attached to.
    attached: HashMap<String, String>,
    /// Every request: (method, path).
    log: Vec<(String, String)>,
    counter: u64,
}

impl Inner {
    fn id(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}_standin{:08}", self.counter)
    }
}

/// A request held for the test.
struct Held {
    arrived: tokio::sync::oneshot::Sender<()>,
    release: tokio::sync::oneshot::Receiver<()>,
}

type Reply = (u16, Value);

fn error(status: u16, kind: &str, code: Option<&str>, message: &str) -> Reply {
    let mut e = json!({ "type": kind, "message": message });
    if let Some(code) = code {
        e["code"] = json!(code);
    }
    (status, json!({ "error": e }))
}

impl StandIn {
    /// Starts the stand-in on a loopback port.
    pub async fn start() -> StandIn {
        let state = Arc::new(Mutex::new(Inner::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let router = Router::new().fallback(dispatch).with_state(state.clone());
        tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        StandIn { base_url, state }
    }

    /// Answers the next `n` requests with a 500 before doing anything.
    pub fn fail_next(&self, n: usize) {
        self.state.lock().unwrap().fail_next = n;
    }

    /// Answers the next `n` requests whose path ends with `suffix` with a 500 before doing
    /// anything.
    pub fn fail_next_matching(&self, suffix: &str, n: usize) {
        self.state.lock().unwrap().fail_matching = Some((suffix.to_owned(), n));
    }

    /// Performs the next `n` requests whose path ends with `suffix` (storing the result under
    /// their idempotency key) but answers them with a 502, as a broken connection would.
    pub fn lose_next_answers(&self, suffix: &str, n: usize) {
        self.state.lock().unwrap().lose_matching = Some((suffix.to_owned(), n));
    }

    /// Holds the next request whose path ends with `suffix` before it is handled: the returned
    /// receiver fires when it arrives, and it proceeds when the returned sender is used (or
    /// dropped). Lets a test change the world while the server waits for Stripe.
    pub fn hold_next(
        &self,
        suffix: &str,
    ) -> (
        tokio::sync::oneshot::Receiver<()>,
        tokio::sync::oneshot::Sender<()>,
    ) {
        let (arrived_tx, arrived_rx) = tokio::sync::oneshot::channel();
        let (release_tx, release_rx) = tokio::sync::oneshot::channel();
        self.state.lock().unwrap().hold = Some((
            suffix.to_owned(),
            Held {
                arrived: arrived_tx,
                release: release_rx,
            },
        ));
        (arrived_rx, release_tx)
    }

    /// The customer passes the 3-D Secure challenge (what Stripe.js does on the client): the
    /// PaymentIntent holds the money. Returns the intent.
    pub fn complete_authentication(&self, id: &str) -> Value {
        let mut inner = self.state.lock().unwrap();
        let intent = inner.intents.get_mut(id).unwrap();
        assert_eq!(intent["status"], "requires_action");
        let amount = intent["amount"].clone();
        intent["status"] = json!("requires_capture");
        intent["amount_capturable"] = amount;
        intent["next_action"] = Value::Null;
        intent.clone()
    }

    /// The customer fails the 3-D Secure challenge. Returns the intent.
    pub fn fail_authentication(&self, id: &str) -> Value {
        let mut inner = self.state.lock().unwrap();
        let intent = inner.intents.get_mut(id).unwrap();
        assert_eq!(intent["status"], "requires_action");
        intent["status"] = json!("requires_payment_method");
        intent["next_action"] = Value::Null;
        intent["last_payment_error"] = json!({
            "type": "card_error",
            "code": "payment_intent_authentication_failure",
            "message": "We are unable to authenticate your payment method. Please choose a different payment method and try again.",
        });
        intent.clone()
    }

    /// How many charges were captured (each capture that took effect makes one).
    pub fn charges(&self) -> usize {
        self.state.lock().unwrap().charges.len()
    }

    /// How many customers were created.
    pub fn customers_created(&self) -> usize {
        self.state.lock().unwrap().customers.len()
    }

    /// The customer a payment method is attached to.
    pub fn attached_to(&self, payment_method: &str) -> Option<String> {
        self.state
            .lock()
            .unwrap()
            .attached
            .get(payment_method)
            .cloned()
    }

    /// Every transfer made, oldest first.
    pub fn transfers(&self) -> Vec<Value> {
        self.state.lock().unwrap().transfers.clone()
    }

    /// How many PaymentIntents exist.
    pub fn intents_created(&self) -> usize {
        self.state.lock().unwrap().intents.len()
    }

    /// A PaymentIntent as stored.
    pub fn intent(&self, id: &str) -> Value {
        self.state.lock().unwrap().intents[id].clone()
    }

    /// How many requests were `method path` (path without query).
    pub fn requests(&self, method: &str, path: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .log
            .iter()
            .filter(|(m, p)| m == method && p == path)
            .count()
    }
}

async fn dispatch(
    State(state): State<Arc<Mutex<Inner>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let held = {
        let mut inner = state.lock().unwrap();
        match &inner.hold {
            Some((suffix, _)) if path.ends_with(suffix.as_str()) => inner.hold.take(),
            _ => None,
        }
    };
    if let Some((_, held)) = held {
        let _ = held.arrived.send(());
        let _ = held.release.await;
    }
    let mut inner = state.lock().unwrap();
    inner.log.push((method.to_string(), path.clone()));
    if inner.fail_next > 0 {
        inner.fail_next -= 1;
        let (status, body) = error(500, "api_error", None, "An unknown error occurred");
        let mut response = reply((status, body));
        response
            .headers_mut()
            .insert("stripe-should-retry", "true".parse().unwrap());
        return response;
    }
    if let Some((suffix, left)) = inner.fail_matching.as_mut() {
        if *left > 0 && path.ends_with(suffix.as_str()) {
            *left -= 1;
            let mut response = reply(error(500, "api_error", None, "An unknown error occurred"));
            response
                .headers_mut()
                .insert("stripe-should-retry", "true".parse().unwrap());
            return response;
        }
    }
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {SECRET_KEY}"));
    if !authorized {
        return reply(error(
            401,
            "authentication_error",
            None,
            "Invalid API Key provided",
        ));
    }
    let query: Vec<(String, String)> =
        serde_urlencoded::from_str(uri.query().unwrap_or("")).unwrap_or_default();
    if method == Method::GET {
        return reply(get(&inner, &path, &query));
    }
    if method != Method::POST {
        return reply(error(
            404,
            "invalid_request_error",
            None,
            "Unrecognized request URL",
        ));
    }
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !body.is_empty() && !content_type.starts_with("application/x-www-form-urlencoded") {
        return reply(error(
            400,
            "invalid_request_error",
            None,
            "Invalid request: bodies must be form-encoded",
        ));
    }
    let mut params: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap();
    params.sort();
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let fingerprint = format!("{method} {path} {params:?}");
    if let Some(key) = &key {
        if let Some((seen, status, body)) = inner.idempotency.get(key) {
            if *seen == fingerprint {
                let (status, body) = (*status, body.clone());
                let mut response = reply((status, body));
                response
                    .headers_mut()
                    .insert("idempotent-replayed", "true".parse().unwrap());
                return response;
            }
            return reply(error(
                400,
                "idempotency_error",
                None,
                &format!(
                    "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{key}' if you meant to execute a different request."
                ),
            ));
        }
    }
    let params: HashMap<String, String> = params.into_iter().collect();
    let result = post(&mut inner, &path, &params);
    if let Some(key) = key {
        inner
            .idempotency
            .insert(key, (fingerprint, result.0, result.1.clone()));
    }
    if let Some((suffix, left)) = inner.lose_matching.as_mut() {
        if *left > 0 && path.ends_with(suffix.as_str()) {
            *left -= 1;
            return reply(error(
                502,
                "api_error",
                None,
                "Bad gateway (the answer was lost)",
            ));
        }
    }
    reply(result)
}

fn reply((status, body): Reply) -> Response {
    (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
}

fn segments(path: &str) -> Vec<&str> {
    path.trim_matches('/').split('/').collect()
}

fn get(inner: &Inner, path: &str, query: &[(String, String)]) -> Reply {
    match segments(path).as_slice() {
        ["v1", "payment_intents", id] => match inner.intents.get(*id) {
            Some(intent) => {
                let mut intent = intent.clone();
                let expand = query
                    .iter()
                    .any(|(k, v)| k.starts_with("expand") && v == "latest_charge");
                if expand {
                    if let Some(charge) = intent["latest_charge"].as_str() {
                        intent["latest_charge"] = inner.charges[charge].clone();
                    }
                }
                (200, intent)
            }
            None => missing("payment_intent", id),
        },
        ["v1", "transfers", id] => match inner.transfers.iter().find(|t| t["id"] == *id) {
            Some(transfer) => (200, transfer.clone()),
            None => missing("transfer", id),
        },
        ["v1", "payment_methods", id] => match test_card(id) {
            Some((brand, last4)) => {
                let mut method = payment_method(id, brand, last4);
                method["customer"] = json!(inner.attached.get(*id));
                (200, method)
            }
            None => missing("payment_method", id),
        },
        _ => error(
            404,
            "invalid_request_error",
            None,
            "Unrecognized request URL",
        ),
    }
}

fn missing(kind: &str, id: &str) -> Reply {
    error(
        404,
        "invalid_request_error",
        Some("resource_missing"),
        &format!("No such {kind}: '{id}'"),
    )
}

/// Stripe's test payment methods: brand and last four digits.
fn test_card(id: &str) -> Option<(&'static str, &'static str)> {
    Some(match id {
        "pm_card_visa" => ("visa", "4242"),
        "pm_card_mastercard" => ("mastercard", "4444"),
        "pm_card_threeDSecure2Required" => ("visa", "3184"),
        "pm_card_chargeDeclined" => ("visa", "0002"),
        _ => return None,
    })
}

fn payment_method(id: &str, brand: &str, last4: &str) -> Value {
    json!({
        "id": id,
        "object": "payment_method",
        "type": "card",
        "card": {"brand": brand, "last4": last4, "exp_month": 12, "exp_year": 2034, "funding": "credit", "country": "US"},
        "customer": null,
        "livemode": false,
    })
}

fn post(inner: &mut Inner, path: &str, params: &HashMap<String, String>) -> Reply {
    match segments(path).as_slice() {
        ["v1", "customers"] => {
            let id = inner.id("cus");
            let customer = json!({
                "id": id,
                "object": "customer",
                "email": params.get("email"),
                "metadata": params.iter().filter_map(|(k, v)| k.strip_prefix("metadata[")
                    .and_then(|k| k.strip_suffix(']')).map(|k| (k.to_owned(), json!(v))))
                    .collect::<serde_json::Map<String, Value>>(),
            });
            inner.customers.insert(id, customer.clone());
            (200, customer)
        }
        ["v1", "payment_methods", id, "attach"] => {
            let Some((brand, last4)) = test_card(id) else {
                return missing("payment_method", id);
            };
            let Some(customer) = params.get("customer") else {
                return error(
                    400,
                    "invalid_request_error",
                    Some("parameter_missing"),
                    "Missing required param: customer.",
                );
            };
            if !inner.customers.contains_key(customer) {
                return missing("customer", customer);
            }
            if let Some(other) = inner.attached.get(*id) {
                if other != customer {
                    return error(
                        400,
                        "invalid_request_error",
                        Some("payment_method_unexpected_state"),
                        "The payment method you provided has already been attached to a customer.",
                    );
                }
            }
            inner.attached.insert((*id).to_owned(), customer.clone());
            let mut method = payment_method(id, brand, last4);
            method["customer"] = json!(customer);
            (200, method)
        }
        ["v1", "payment_methods", id, "detach"] => {
            let Some((brand, last4)) = test_card(id) else {
                return missing("payment_method", id);
            };
            if inner.attached.remove(*id).is_none() {
                return error(
                    400,
                    "invalid_request_error",
                    Some("payment_method_unexpected_state"),
                    "The payment method you provided is not attached to a customer so detachment is impossible.",
                );
            }
            (200, payment_method(id, brand, last4))
        }
        ["v1", "payment_intents"] => create_intent(inner, params),
        ["v1", "payment_intents", id, "capture"] => capture(inner, id, params),
        ["v1", "payment_intents", id, "cancel"] => cancel(inner, id),
        ["v1", "refunds"] => refund(inner, params),
        ["v1", "transfers"] => transfer(inner, params),
        _ => error(
            404,
            "invalid_request_error",
            None,
            "Unrecognized request URL",
        ),
    }
}

fn create_intent(inner: &mut Inner, params: &HashMap<String, String>) -> Reply {
    let Some(amount) = params.get("amount").and_then(|a| a.parse::<i64>().ok()) else {
        return error(
            400,
            "invalid_request_error",
            Some("parameter_missing"),
            "Missing required param: amount.",
        );
    };
    let Some(currency) = params.get("currency") else {
        return error(
            400,
            "invalid_request_error",
            Some("parameter_missing"),
            "Missing required param: currency.",
        );
    };
    if currency != &currency.to_lowercase() || currency.len() != 3 {
        return error(
            400,
            "invalid_request_error",
            Some("parameter_invalid_string"),
            "Invalid currency",
        );
    }
    let metadata: serde_json::Map<String, Value> = params
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("metadata[")
                .and_then(|k| k.strip_suffix(']'))
                .map(|k| (k.to_owned(), json!(v)))
        })
        .collect();
    let id = inner.id("pi");
    let manual = params.get("capture_method").map(String::as_str) == Some("manual");
    let mut intent = json!({
        "id": id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_received": 0,
        "currency": currency,
        "capture_method": params.get("capture_method").cloned().unwrap_or_else(|| "automatic".into()),
        "client_secret": format!("{id}_secret_standin"),
        "confirmation_method": "automatic",
        "latest_charge": null,
        "last_payment_error": null,
        "livemode": false,
        "metadata": metadata,
        "next_action": null,
        "payment_method": params.get("payment_method"),
        "receipt_email": params.get("receipt_email"),
        "status": "requires_payment_method",
    });
    if let Some(method) = params.get("payment_method") {
        if let Some(owner) = inner.attached.get(method) {
            if params.get("customer") != Some(owner) {
                return error(
                    400,
                    "invalid_request_error",
                    None,
                    "The provided PaymentMethod belongs to a Customer. Please include the Customer in the `customer` parameter on the PaymentIntent.",
                );
            }
        }
    }
    intent["customer"] = json!(params.get("customer"));
    let confirm = params.get("confirm").map(String::as_str) == Some("true");
    if confirm {
        match params.get("payment_method").map(String::as_str) {
            Some("pm_card_visa" | "pm_card_mastercard") if manual => {
                intent["status"] = json!("requires_capture");
                intent["amount_capturable"] = json!(amount);
            }
            Some("pm_card_visa" | "pm_card_mastercard") => {
                intent["status"] = json!("succeeded");
                intent["amount_received"] = json!(amount);
            }
            Some("pm_card_chargeDeclined") => {
                let e = json!({
                    "type": "card_error",
                    "code": "card_declined",
                    "decline_code": "generic_decline",
                    "message": "Your card was declined.",
                });
                intent["last_payment_error"] = e.clone();
                inner.intents.insert(id.clone(), intent.clone());
                let mut body = json!({ "error": e });
                body["error"]["payment_intent"] = intent;
                return (402, body);
            }
            Some("pm_card_threeDSecure2Required") => {
                intent["status"] = json!("requires_action");
                intent["next_action"] = json!({ "type": "use_stripe_sdk", "use_stripe_sdk": {} });
            }
            Some(other) => {
                return error(
                    400,
                    "invalid_request_error",
                    Some("resource_missing"),
                    &format!("No such PaymentMethod: '{other}'"),
                )
            }
            None => {
                return error(
                    400,
                    "invalid_request_error",
                    Some("payment_intent_unexpected_state"),
                    "You cannot confirm this PaymentIntent because it's missing a payment method.",
                )
            }
        }
    }
    inner.intents.insert(id, intent.clone());
    (200, intent)
}

fn unexpected_state(intent: &Value, action: &str) -> Reply {
    error(
        400,
        "invalid_request_error",
        Some("payment_intent_unexpected_state"),
        &format!(
            "This PaymentIntent could not be {action} because it has a status of {}.",
            intent["status"].as_str().unwrap_or("")
        ),
    )
}

fn capture(inner: &mut Inner, id: &str, params: &HashMap<String, String>) -> Reply {
    let Some(mut intent) = inner.intents.get(id).cloned() else {
        return missing("payment_intent", id);
    };
    if intent["status"] != "requires_capture" {
        return unexpected_state(&intent, "captured");
    }
    let capturable = intent["amount_capturable"].as_i64().unwrap();
    let amount = match params.get("amount_to_capture") {
        Some(a) => a.parse::<i64>().unwrap_or(-1),
        None => capturable,
    };
    if amount <= 0 || amount > capturable {
        return error(
            400,
            "invalid_request_error",
            Some("amount_too_large"),
            "The amount to capture must be positive and at most the amount capturable.",
        );
    }
    let charge_id = inner.id("ch");
    let charge = json!({
        "id": charge_id,
        "object": "charge",
        "amount": intent["amount"],
        "amount_captured": amount,
        "amount_refunded": 0,
        "captured": true,
        "currency": intent["currency"],
        "payment_intent": id,
        "refunded": false,
        "status": "succeeded",
    });
    inner.charges.insert(charge_id.clone(), charge);
    intent["status"] = json!("succeeded");
    intent["amount_capturable"] = json!(0);
    intent["amount_received"] = json!(amount);
    intent["latest_charge"] = json!(charge_id);
    inner.intents.insert(id.to_owned(), intent.clone());
    (200, intent)
}

fn cancel(inner: &mut Inner, id: &str) -> Reply {
    let Some(mut intent) = inner.intents.get(id).cloned() else {
        return missing("payment_intent", id);
    };
    let cancelable = [
        "requires_payment_method",
        "requires_capture",
        "requires_confirmation",
        "requires_action",
        "processing",
    ];
    if !cancelable.contains(&intent["status"].as_str().unwrap_or("")) {
        return unexpected_state(&intent, "canceled");
    }
    intent["status"] = json!("canceled");
    intent["amount_capturable"] = json!(0);
    intent["cancellation_reason"] = json!("requested_by_customer");
    inner.intents.insert(id.to_owned(), intent.clone());
    (200, intent)
}

fn refund(inner: &mut Inner, params: &HashMap<String, String>) -> Reply {
    let Some(id) = params.get("payment_intent") else {
        return error(
            400,
            "invalid_request_error",
            Some("parameter_missing"),
            "One of the following params should be provided for this request: payment_intent or charge.",
        );
    };
    let Some(intent) = inner.intents.get(id).cloned() else {
        return missing("payment_intent", id);
    };
    let Some(charge_id) = intent["latest_charge"].as_str().map(str::to_owned) else {
        return error(
            400,
            "invalid_request_error",
            Some("charge_not_captured"),
            "This PaymentIntent does not have a successful charge to refund.",
        );
    };
    let mut charge = inner.charges[&charge_id].clone();
    let remaining =
        charge["amount_captured"].as_i64().unwrap() - charge["amount_refunded"].as_i64().unwrap();
    let amount = match params.get("amount") {
        Some(a) => a.parse::<i64>().unwrap_or(-1),
        None => remaining,
    };
    if amount <= 0 || amount > remaining {
        return error(
            400,
            "invalid_request_error",
            Some("amount_too_large"),
            &format!("Refund amount ({amount}) is greater than unrefunded amount on charge ({remaining})"),
        );
    }
    let refunded = charge["amount_refunded"].as_i64().unwrap() + amount;
    charge["amount_refunded"] = json!(refunded);
    charge["refunded"] = json!(refunded == charge["amount_captured"].as_i64().unwrap());
    inner.charges.insert(charge_id.clone(), charge);
    let refund_id = inner.id("re");
    let refund = json!({
        "id": refund_id,
        "object": "refund",
        "amount": amount,
        "charge": charge_id,
        "currency": intent["currency"],
        "payment_intent": id,
        "status": "succeeded",
    });
    inner.refunds.insert(refund_id, refund.clone());
    (200, refund)
}

/// A Stripe event object about `object` (a PaymentIntent or a charge).
pub fn event(id: &str, kind: &str, created: i64, object: Value) -> Value {
    json!({
        "id": id,
        "object": "event",
        "api_version": "2024-06-20",
        "created": created,
        "livemode": false,
        "pending_webhooks": 1,
        "type": kind,
        "data": { "object": object },
    })
}

/// The body and `Stripe-Signature` header Stripe would send for `event`, signed at `timestamp`.
pub fn signed_event(secret: &str, timestamp: i64, event: &Value) -> (String, String) {
    use hmac::{Hmac, Mac};
    // Signed here independently of the server's code, as Stripe documents it.
    let body = event.to_string();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.{body}").as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    (body, format!("t={timestamp},v1={signature}"))
}

/// Delivers `event` to a webhook endpoint over HTTP, signed now (Unix seconds `timestamp`), with
/// the headers Stripe sends; returns the status and the JSON body.
pub async fn deliver(
    url: &str,
    secret: &str,
    timestamp: i64,
    event: &Value,
) -> (reqwest::StatusCode, Value) {
    let (body, signature) = signed_event(secret, timestamp, event);
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json; charset=utf-8")
        .header(
            "user-agent",
            "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        )
        .header("stripe-signature", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// `POST /v1/transfers` (Stripe Connect): money from the platform's balance to a connected
/// account.
fn transfer(inner: &mut Inner, params: &HashMap<String, String>) -> Reply {
    let amount = params.get("amount").and_then(|a| a.parse::<i64>().ok());
    let Some(amount) = amount.filter(|a| *a > 0) else {
        return error(
            400,
            "invalid_request_error",
            Some("parameter_missing"),
            "Missing required param: amount.",
        );
    };
    let Some(currency) = params
        .get("currency")
        .filter(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_lowercase()))
    else {
        return error(
            400,
            "invalid_request_error",
            Some("parameter_invalid_empty"),
            "Invalid currency.",
        );
    };
    let Some(destination) = params.get("destination") else {
        return error(
            400,
            "invalid_request_error",
            Some("parameter_missing"),
            "Missing required param: destination.",
        );
    };
    if !destination.starts_with("acct_") || destination == "acct_missing" {
        return error(
            400,
            "invalid_request_error",
            Some("resource_missing"),
            &format!("No such destination: '{destination}'"),
        );
    }
    let id = inner.id("tr");
    let metadata: serde_json::Map<String, Value> = params
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("metadata[")
                .and_then(|k| k.strip_suffix(']'))
                .map(|k| (k.to_owned(), json!(v)))
        })
        .collect();
    let transfer = json!({
        "id": id,
        "object": "transfer",
        "amount": amount,
        "amount_reversed": 0,
        "currency": currency,
        "destination": destination,
        "transfer_group": params.get("transfer_group"),
        "metadata": metadata,
        "reversed": false,
        "livemode": false,
    });
    inner.transfers.push(transfer.clone());
    (200, transfer)
}
