//! The active delivery: its ordered steps, the one obvious next action, where to go, whom to
//! meet, what to carry and the cash to collect — from a `delivery` row of the driver's bucket.

use fleetfront_domain::api::delivery::{
    CashCollectedInput, DeliveryStatusUpdateRequest, ReportedStatus,
};
use fleetfront_domain::delivery::DeliveryStatus;
use fleetfront_domain::money::{Currency, Money};
use serde_json::Value;
use uuid::Uuid;

/// One step of the delivery's progress bar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// "At the store", "Picked up", "At the customer", "Delivered".
    pub label: &'static str,
    /// Done already.
    pub done: bool,
    /// The step the big button completes.
    pub next: bool,
}

/// The big button: what the courier does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NextAction {
    /// "I'm at the store", "Picked up", "I'm at the customer", "Delivered".
    pub label: &'static str,
    /// The step it reports.
    pub status: ReportedStatus,
    /// For the hand-over of a cash order: the amount to collect, in minor units.
    pub collect_minor: Option<i64>,
}

/// The active delivery screen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryScreen {
    /// The delivery.
    pub delivery_id: Uuid,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// The next action; `None` once delivered or failed.
    pub next: Option<NextAction>,
    /// The store's name.
    pub store: String,
    /// The store's phone, to call when the order is late.
    pub store_phone: Option<String>,
    /// The drop-off address on one line ("Main Street 1, Helsinki").
    pub address: String,
    /// The customer's delivery instructions.
    pub instructions: Option<String>,
    /// The customer's name, when the order has one.
    pub customer: Option<String>,
    /// The customer's phone.
    pub phone: Option<String>,
    /// "2 × Margherita (Large)", one per line.
    pub items: Vec<String>,
    /// "Cash: collect 23.00 EUR" or "Paid by card".
    pub payment: String,
}

/// The progress bar's labels, for the forward path after `assigned`
/// (`DeliveryStatus::position` 1–4).
const STEPS: [&str; 4] = ["At the store", "Picked up", "At the customer", "Delivered"];

/// The big button's label for reporting `step`, and what it reports.
fn action(step: DeliveryStatus) -> (&'static str, ReportedStatus) {
    match step {
        DeliveryStatus::ArrivedAtStore => ("I'm at the store", ReportedStatus::ArrivedAtStore),
        DeliveryStatus::PickedUp => ("Picked up", ReportedStatus::PickedUp),
        DeliveryStatus::ArrivedAtCustomer => {
            ("I'm at the customer", ReportedStatus::ArrivedAtCustomer)
        }
        _ => ("Delivered", ReportedStatus::Delivered),
    }
}

fn text(v: &Value) -> Option<String> {
    v.as_str()
        .filter(|s| !s.trim().is_empty())
        .map(str::to_owned)
}

impl DeliveryScreen {
    /// The screen of one `delivery` row; `None` for a row that is not a delivery.
    pub fn of(delivery_id: Uuid, row: &Value) -> Option<Self> {
        let status = DeliveryStatus::parse(row["status"].as_str()?)?;
        let order = &row["order"];
        let done = status.position().unwrap_or(0);
        let next_step = status.next_step();
        let steps = STEPS
            .iter()
            .enumerate()
            .map(|(i, label)| Step {
                label,
                done: i < done,
                next: next_step.is_some() && i == done,
            })
            .collect();
        let cash = (order["payment_method"].as_str() == Some("cash"))
            .then(|| order["total_minor"].as_i64())
            .flatten();
        let currency = order["currency"]
            .as_str()
            .and_then(|c| Currency::parse(c).ok());
        let next = next_step.map(|step| {
            let (label, status) = action(step);
            NextAction {
                label,
                status,
                collect_minor: (status == ReportedStatus::Delivered)
                    .then_some(cash)
                    .flatten(),
            }
        });
        let address = &order["delivery_address"];
        let line = [
            &address["address_line1"],
            &address["address_line2"],
            &address["city"],
        ]
        .into_iter()
        .filter_map(text)
        .collect::<Vec<_>>()
        .join(", ");
        let items = order["items"]
            .as_array()
            .map(|lines| {
                lines
                    .iter()
                    .map(|l| {
                        let name = l["product_name"].as_str().unwrap_or("Item");
                        let quantity = l["quantity"].as_i64().unwrap_or(1);
                        match text(&l["variant_name"]) {
                            Some(variant) => format!("{quantity} × {name} ({variant})"),
                            None => format!("{quantity} × {name}"),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let payment = match (cash, currency) {
            (Some(minor), Some(currency)) => {
                format!("Cash: collect {}", Money::new(minor, currency))
            }
            (Some(_), None) => "Cash on delivery".to_owned(),
            (None, _) => "Paid by card".to_owned(),
        };
        Some(Self {
            delivery_id,
            steps,
            next,
            store: text(&order["store"]["name"]).unwrap_or_else(|| "The store".to_owned()),
            store_phone: text(&order["store"]["phone"]),
            address: if line.is_empty() {
                "Pickup at the store".to_owned()
            } else {
                line
            },
            instructions: text(&address["delivery_instructions"]),
            customer: text(&order["customer_name"]),
            phone: text(&order["guest_phone"]),
            items,
            payment,
        })
    }

    /// The report of the next action, with the cash collected in full for a cash order (a
    /// shortfall is the courier's to enter, with its reason); `None` once finished.
    pub fn next_report(&self) -> Option<DeliveryStatusUpdateRequest> {
        let next = self.next.as_ref()?;
        Some(DeliveryStatusUpdateRequest {
            status: next.status,
            position: None,
            recorded_at: None,
            proof_sha256: None,
            cash_collected: next.collect_minor.map(|amount_minor| CashCollectedInput {
                amount_minor,
                shortfall_reason: None,
            }),
            failure: None,
        })
    }
}

/// The delivery the courier is on: the one furthest along (a courier finishes what is in the
/// bag first), then the earliest assigned; finished ones are left out.
pub fn current(rows: &[(Uuid, Value)]) -> Option<DeliveryScreen> {
    rows.iter()
        .filter_map(|(id, row)| {
            let screen = DeliveryScreen::of(*id, row)?;
            let status = DeliveryStatus::parse(row["status"].as_str()?)?;
            (!status.is_terminal()).then(|| {
                let assigned = row["assigned_at"].as_str().unwrap_or("").to_owned();
                (std::cmp::Reverse(status.position()), assigned, screen)
            })
        })
        .min_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)))
        .map(|(_, _, screen)| screen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(status: &str, method: &str) -> Value {
        json!({
            "status": status, "assigned_at": "2026-11-25T12:00:00Z",
            "order": {
                "payment_method": method, "currency": "EUR", "total_minor": 2300,
                "store": {"name": "Pizza Palace", "phone": "+358 9 123"},
                "customer_name": "Aino", "guest_phone": "+358401234567",
                "delivery_address": {"address_line1": "Main Street 1", "city": "Helsinki",
                                     "delivery_instructions": "Door code 1234"},
                "items": [{"product_name": "Margherita", "variant_name": "Large", "quantity": 2},
                          {"product_name": "Cola", "variant_name": null, "quantity": 1}],
            },
        })
    }

    #[test]
    fn one_obvious_next_action_at_every_step() {
        let expect = [
            (
                "assigned",
                Some(("I'm at the store", ReportedStatus::ArrivedAtStore)),
                0,
            ),
            (
                "arrived_at_store",
                Some(("Picked up", ReportedStatus::PickedUp)),
                1,
            ),
            (
                "picked_up",
                Some(("I'm at the customer", ReportedStatus::ArrivedAtCustomer)),
                2,
            ),
            (
                "arrived_at_customer",
                Some(("Delivered", ReportedStatus::Delivered)),
                3,
            ),
            ("delivered", None, 4),
            ("failed", None, 0),
        ];
        for (status, next, done) in expect {
            let screen = DeliveryScreen::of(Uuid::nil(), &row(status, "card")).unwrap();
            assert_eq!(
                screen.next.as_ref().map(|n| (n.label, n.status)),
                next,
                "{status}"
            );
            assert_eq!(
                screen.steps.iter().filter(|s| s.done).count(),
                done,
                "{status}"
            );
            assert_eq!(
                screen.steps.iter().filter(|s| s.next).count(),
                usize::from(next.is_some()),
                "{status}"
            );
        }
    }

    #[test]
    fn the_screen_says_where_whom_what_and_how_much() {
        let screen = DeliveryScreen::of(Uuid::nil(), &row("picked_up", "cash")).unwrap();
        assert_eq!(screen.store, "Pizza Palace");
        assert_eq!(screen.address, "Main Street 1, Helsinki");
        assert_eq!(screen.instructions.as_deref(), Some("Door code 1234"));
        assert_eq!(screen.customer.as_deref(), Some("Aino"));
        assert_eq!(screen.items, ["2 × Margherita (Large)", "1 × Cola"]);
        assert_eq!(screen.payment, "Cash: collect 23.00 EUR");
        // Only the hand-over collects the cash.
        assert_eq!(screen.next_report().unwrap().cash_collected, None);
        let at_door = DeliveryScreen::of(Uuid::nil(), &row("arrived_at_customer", "cash")).unwrap();
        let report = at_door.next_report().unwrap();
        assert_eq!(report.status, ReportedStatus::Delivered);
        assert_eq!(report.cash_collected.map(|c| c.amount_minor), Some(2300));
        let card = DeliveryScreen::of(Uuid::nil(), &row("arrived_at_customer", "card")).unwrap();
        assert_eq!(card.payment, "Paid by card");
        assert_eq!(card.next_report().unwrap().cash_collected, None);
    }

    #[test]
    fn the_current_delivery_is_the_one_furthest_along() {
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(2);
        let c = Uuid::from_u128(3);
        let rows = [
            (a, row("assigned", "card")),
            (b, row("picked_up", "card")),
            (c, row("delivered", "card")),
        ];
        assert_eq!(current(&rows).unwrap().delivery_id, b);
        assert!(current(&rows[2..]).is_none());
    }
}
