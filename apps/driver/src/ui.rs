//! The driver app's components: thin Dioxus views over the view-models, built for a courier —
//! big touch targets, one obvious next action, plain high-contrast text. They render on any
//! Dioxus renderer (the desktop window, a phone, or `dioxus-ssr` in tests); the app wires their
//! events to fleetfront-core's facade.

#![allow(non_snake_case)] // components are named like types

use dioxus::prelude::*;
use uuid::Uuid;

use crate::delivery::DeliveryScreen;
use crate::offer::OfferCard;
use crate::status::{Explained, SyncBadge, Tone};

/// One open offer: what the courier decides on, the countdown, accept and decline.
#[component]
pub fn OfferCardView(
    card: OfferCard,
    on_accept: EventHandler<Uuid>,
    on_decline: EventHandler<Uuid>,
) -> Element {
    let id = card.offer_id;
    let expired = card.expired;
    rsx! {
        section { class: "offer", "aria-label": "New order offer",
            h2 { "{card.store}" }
            p { class: "earnings", "{card.earnings}" }
            ul { class: "facts",
                li { "{card.to_store}" }
                li { "{card.to_customer}" }
                li { "{card.items}" }
                if let Some(cash) = &card.cash {
                    li { class: "cash", "{cash}" }
                }
            }
            if expired {
                p { class: "countdown expired", role: "timer", "Offer expired" }
            } else {
                p { class: "countdown", role: "timer", "aria-live": "off",
                    "{card.seconds_left} s to accept"
                }
            }
            div { class: "actions",
                button { class: "accept", disabled: expired,
                    onclick: move |_| on_accept.call(id),
                    "Accept"
                }
                button { class: "decline", disabled: expired,
                    onclick: move |_| on_decline.call(id),
                    "Decline"
                }
            }
        }
    }
}

/// The active delivery: progress, the big next-step button, where to go and what to carry.
#[component]
pub fn DeliveryView(screen: DeliveryScreen, on_next: EventHandler<Uuid>) -> Element {
    let id = screen.delivery_id;
    rsx! {
        section { class: "delivery", "aria-label": "Current delivery",
            ol { class: "steps",
                for step in screen.steps.iter() {
                    li {
                        class: if step.done { "done" } else if step.next { "next" } else { "todo" },
                        "aria-current": if step.next { "step" } else { "false" },
                        "{step.label}"
                    }
                }
            }
            if let Some(next) = &screen.next {
                button { class: "next", onclick: move |_| on_next.call(id), "{next.label}" }
            } else {
                p { class: "finished", "Done" }
            }
            div { class: "stop pickup",
                h3 { "Pick up" }
                p { "{screen.store}" }
                if let Some(phone) = &screen.store_phone {
                    a { href: "tel:{phone}", "Call the store" }
                }
            }
            div { class: "stop dropoff",
                h3 { "Deliver to" }
                if let Some(customer) = &screen.customer {
                    p { class: "customer", "{customer}" }
                }
                p { "{screen.address}" }
                if let Some(instructions) = &screen.instructions {
                    p { class: "instructions", "{instructions}" }
                }
                if let Some(phone) = &screen.phone {
                    a { href: "tel:{phone}", "Call the customer" }
                }
            }
            ul { class: "items",
                for item in screen.items.iter() {
                    li { "{item}" }
                }
            }
            p { class: "payment", "{screen.payment}" }
        }
    }
}

/// The sync indicator, always visible: announced politely to screen readers when it changes.
#[component]
pub fn SyncIndicator(badge: SyncBadge) -> Element {
    let tone = match badge.tone {
        Tone::Good => "good",
        Tone::Busy => "busy",
        Tone::Offline => "offline",
    };
    rsx! {
        div { class: "sync {tone}", role: "status", "aria-live": "polite",
            strong { "{badge.title}" }
            span { " · {badge.detail}" }
            span { class: "when", " · {badge.last_synced}" }
        }
    }
}

/// A refused action, in words, with what to do.
#[component]
pub fn RejectionNotice(explained: Explained) -> Element {
    rsx! {
        div { class: "rejection", role: "alert",
            p { "{explained.what}" }
            p { class: "todo", "{explained.todo}" }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::DeliveryScreen;
    use crate::tests::now;
    use serde_json::json;

    /// Renders `root` with `props` in a virtual DOM (event handlers need its runtime).
    fn render<P: Clone + 'static>(root: fn(P) -> Element, props: P) -> String {
        let mut dom = VirtualDom::new_with_props(root, props);
        dom.rebuild_in_place();
        dioxus_ssr::render(&dom)
    }

    #[component]
    fn Offer(card: OfferCard) -> Element {
        rsx! { OfferCardView { card, on_accept: |_| {}, on_decline: |_| {} } }
    }

    #[component]
    fn Delivery(screen: DeliveryScreen) -> Element {
        rsx! { DeliveryView { screen, on_next: |_| {} } }
    }

    fn card(expires: &str) -> OfferCard {
        let row = json!({
            "expires_at": expires, "pickup_metres": 800, "dropoff_metres": 2100,
            "estimated_earnings_minor": 520,
            "order": {"currency": "EUR", "payment_method": "cash", "total_minor": 1800,
                      "store": {"name": "Pizza <Palace>"}, "items": [{"quantity": 2}]},
        });
        OfferCard::of(Uuid::nil(), &row, now()).unwrap()
    }

    #[test]
    fn an_open_offer_renders_its_terms_the_countdown_and_live_buttons() {
        let html = render(
            Offer,
            OfferProps {
                card: card("2026-11-25T12:00:30Z"),
            },
        );
        for text in [
            "5.20 EUR",
            "800 m to the store",
            "2.1 km to the customer",
            "2 items",
            "Collect 18.00 EUR in cash",
            "30 s to accept",
            ">Accept<",
            ">Decline<",
        ] {
            assert!(html.contains(text), "{text} missing in {html}");
        }
        // Business-provided text is escaped, never markup.
        assert!(html.contains("Pizza &#60;Palace&#62;"), "{html}");
        assert!(!html.contains("disabled"), "{html}");
    }

    #[test]
    fn an_expired_offer_says_so_and_cannot_be_accepted() {
        let html = render(
            Offer,
            OfferProps {
                card: card("2026-11-25T11:59:59Z"),
            },
        );
        assert!(html.contains("Offer expired"), "{html}");
        assert_eq!(html.matches("disabled").count(), 2, "{html}");
    }

    #[test]
    fn the_delivery_screen_shows_progress_and_one_next_action() {
        let row = json!({
            "status": "arrived_at_store",
            "order": {"payment_method": "cash", "currency": "EUR", "total_minor": 1800,
                      "store": {"name": "Pizza Palace", "phone": "+35891234"},
                      "guest_phone": "+358401234567",
                      "delivery_address": {"address_line1": "Main Street 1", "city": "Helsinki"},
                      "items": [{"product_name": "Margherita", "quantity": 2}]},
        });
        let screen = DeliveryScreen::of(Uuid::nil(), &row).unwrap();
        let html = render(Delivery, DeliveryProps { screen });
        assert_eq!(html.matches("class=\"next\"").count(), 2, "{html}"); // the step and the button
        assert!(html.contains(">Picked up</button>"), "{html}");
        assert!(html.contains("aria-current=\"step\""), "{html}");
        assert!(html.contains("Main Street 1, Helsinki"), "{html}");
        assert!(html.contains("tel:+358401234567"), "{html}");
        assert!(html.contains("2 × Margherita"), "{html}");
        assert!(html.contains("Cash: collect 18.00 EUR"), "{html}");
    }

    #[test]
    fn the_sync_indicator_is_a_polite_status_and_refusals_an_alert() {
        let badge = SyncBadge {
            tone: Tone::Offline,
            title: "Offline",
            detail: "2 changes waiting".to_owned(),
            last_synced: "Synced 5 min ago".to_owned(),
        };
        let html = dioxus_ssr::render_element(rsx! { SyncIndicator { badge } });
        assert!(html.contains("role=\"status\""), "{html}");
        assert!(html.contains("sync offline"), "{html}");
        assert!(html.contains("2 changes waiting"), "{html}");
        let explained = Explained {
            what: "this offer expired before it was accepted".to_owned(),
            todo: "Nothing to do.",
        };
        let html = dioxus_ssr::render_element(rsx! { RejectionNotice { explained } });
        assert!(html.contains("role=\"alert\""), "{html}");
        assert!(html.contains("Nothing to do."), "{html}");
    }
}
