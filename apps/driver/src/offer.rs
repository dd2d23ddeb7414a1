//! The offer screen: what a courier decides on in 30 seconds, from the `offer` rows of the
//! driver's bucket (which carry the offer's terms, fixed when it was made).

use chrono::{DateTime, Utc};
use fleetfront_domain::money::{Currency, Money};
use serde_json::Value;
use uuid::Uuid;

use crate::distance;

/// One open offer as the offer screen shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfferCard {
    /// The offer (what accept and decline answer).
    pub offer_id: Uuid,
    /// The delivery it offers.
    pub delivery_id: Option<Uuid>,
    /// The store's name.
    pub store: String,
    /// "1.2 km to the store" (from where the driver was when offered).
    pub to_store: String,
    /// "3.4 km to the customer".
    pub to_customer: String,
    /// "4.50 EUR", net of the platform's commission, tip included; empty when unknown.
    pub earnings: String,
    /// "3 items".
    pub items: String,
    /// "Collect 23.00 EUR in cash" for a cash order.
    pub cash: Option<String>,
    /// Whole seconds left to accept (0 once expired).
    pub seconds_left: i64,
    /// Whether it can no longer be accepted (the screen shows it as gone, the buttons off).
    pub expired: bool,
}

fn time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn money(minor: Option<i64>, currency: Option<&str>) -> Option<Money> {
    Some(Money::new(minor?, Currency::parse(currency?).ok()?))
}

/// "1 item", "3 items".
pub fn items(count: i64) -> String {
    if count == 1 {
        "1 item".to_owned()
    } else {
        format!("{count} items")
    }
}

impl OfferCard {
    /// The card of one `offer` row at `now` (the device's clock); `None` for a row that is
    /// not an open offer.
    pub fn of(offer_id: Uuid, row: &Value, now: DateTime<Utc>) -> Option<Self> {
        let expires_at = time(&row["expires_at"])?;
        let order = &row["order"];
        let currency = order["currency"].as_str();
        let count: i64 = order["items"]
            .as_array()
            .map(|lines| lines.iter().filter_map(|l| l["quantity"].as_i64()).sum())
            .unwrap_or(0);
        let cash = (order["payment_method"].as_str() == Some("cash"))
            .then(|| money(order["total_minor"].as_i64(), currency))
            .flatten()
            .map(|m| format!("Collect {m} in cash"));
        let metres = |field: &str| row[field].as_u64().map(distance);
        // Milliseconds, rounded up: the screen says "1 s" until the very end.
        let left_ms = (expires_at - now).num_milliseconds();
        let seconds_left = if left_ms > 0 {
            (left_ms + 999) / 1_000
        } else {
            0
        };
        Some(Self {
            offer_id,
            delivery_id: row["delivery_id"].as_str().and_then(|d| d.parse().ok()),
            store: order["store"]["name"]
                .as_str()
                .unwrap_or("A store")
                .to_owned(),
            to_store: metres("pickup_metres")
                .map_or_else(String::new, |d| format!("{d} to the store")),
            to_customer: metres("dropoff_metres")
                .map_or_else(String::new, |d| format!("{d} to the customer")),
            earnings: money(row["estimated_earnings_minor"].as_i64(), currency)
                .map_or_else(String::new, |m| m.to_string()),
            items: items(count),
            cash,
            seconds_left,
            expired: now >= expires_at,
        })
    }
}

/// The offer screen's cards, soonest expiry first; expired offers stay (shown as gone) until
/// the next sync takes them away.
pub fn cards(rows: &[(Uuid, Value)], now: DateTime<Utc>) -> Vec<OfferCard> {
    let mut cards: Vec<(DateTime<Utc>, OfferCard)> = rows
        .iter()
        .filter_map(|(id, row)| Some((time(&row["expires_at"])?, OfferCard::of(*id, row, now)?)))
        .collect();
    cards.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.offer_id.cmp(&b.1.offer_id)));
    cards.into_iter().map(|(_, card)| card).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::at;
    use chrono::Duration;
    use serde_json::json;

    fn row(expires: &str, method: &str) -> Value {
        json!({
            "delivery_id": "01a21415-7740-74d0-8cac-5cdfc2a6bbf1", "expires_at": expires,
            "pickup_metres": 1249, "dropoff_metres": 3400, "estimated_earnings_minor": 450,
            "order": {"currency": "EUR", "payment_method": method, "total_minor": 2300,
                      "store": {"name": "Pizza Palace"},
                      "items": [{"quantity": 2}, {"quantity": 1}]},
        })
    }

    #[test]
    fn an_offer_card_says_what_a_courier_decides_on() {
        let now = at("2026-11-25T12:00:00Z");
        let card = OfferCard::of(Uuid::nil(), &row("2026-11-25T12:00:30Z", "cash"), now).unwrap();
        assert_eq!(card.store, "Pizza Palace");
        assert_eq!(card.to_store, "1.2 km to the store");
        assert_eq!(card.to_customer, "3.4 km to the customer");
        assert_eq!(card.earnings, "4.50 EUR");
        assert_eq!(card.items, "3 items");
        assert_eq!(card.cash.as_deref(), Some("Collect 23.00 EUR in cash"));
        assert_eq!((card.seconds_left, card.expired), (30, false));
        let card = OfferCard::of(Uuid::nil(), &row("2026-11-25T12:00:30Z", "card"), now).unwrap();
        assert_eq!(card.cash, None);
    }

    #[test]
    fn the_countdown_runs_out_at_the_expiry_and_not_before() {
        let expires = at("2026-11-25T12:00:30Z");
        let row = row("2026-11-25T12:00:30Z", "cash");
        let left = |ms: i64| {
            let card =
                OfferCard::of(Uuid::nil(), &row, expires - Duration::milliseconds(ms)).unwrap();
            (card.seconds_left, card.expired)
        };
        assert_eq!(left(29_001), (30, false));
        assert_eq!(left(1), (1, false));
        assert_eq!(left(0), (0, true));
        assert_eq!(left(-5_000), (0, true));
    }

    #[test]
    fn cards_come_soonest_expiry_first_and_rows_without_terms_still_show() {
        let now = at("2026-11-25T12:00:00Z");
        let later = Uuid::from_u128(1);
        let sooner = Uuid::from_u128(2);
        let bare = json!({"expires_at": "2026-11-25T12:00:20Z", "order": {}});
        let cards = cards(
            &[
                (later, row("2026-11-25T12:00:30Z", "cash")),
                (sooner, bare),
                (Uuid::from_u128(3), json!({})),
            ],
            now,
        );
        assert_eq!(cards.len(), 2);
        assert_eq!(cards[0].offer_id, sooner);
        assert_eq!(cards[0].store, "A store");
        assert_eq!(cards[0].earnings, "");
        assert_eq!(cards[0].items, "0 items");
        assert_eq!(cards[1].offer_id, later);
    }
}
