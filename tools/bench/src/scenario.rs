//! The measured operations. Each builds one request from its sequence number (so the open and
//! the closed loop drive the same mix) and returns the answer's status.

use std::sync::Arc;

use fleetfront_domain::api::cart::SetCartItemRequest;
use fleetfront_domain::api::order::{
    CheckoutFulfilment, CheckoutItem, GuestCheckoutRequest, PaymentChoice,
};
use serde_json::{json, Value};
use tokio::sync::Mutex;

use crate::load::{Op, Status};
use crate::seed::{self, BenchStore};

/// Sends a request and returns its status after reading the body.
pub async fn status_of(request: reqwest::RequestBuilder) -> Status {
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let _ = response.bytes().await;
            Some(status)
        }
        Err(_) => None,
    }
}

fn mix(n: u64, salt: u64) -> u64 {
    let mut x = n ^ salt.rotate_left(17);
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// `GET` (read) or `PATCH` (write) `/api/v1/business/storefront` as a signed-in owner.
pub fn storefront_settings(client: &reqwest::Client, url: &str, token: &str, write: bool) -> Op {
    let client = client.clone();
    let url = format!("{url}/api/v1/business/storefront");
    let token = token.to_owned();
    Arc::new(move |n| {
        let request = if write {
            let color = format!("#{:06x}", mix(n, 7) % 0x1000);
            client
                .patch(&url)
                .json(&json!({"theme_colors": {"primary": color,
                "accent": "#ff7a00", "background": "#ffffff", "text": "#1a1a1a"}}))
        } else {
            client.get(&url)
        };
        Box::pin(status_of(request.bearer_auth(&token)))
    })
}

/// The listing URLs the listing scenario picks from: every sort, the first pages of each (by
/// following `next_cursor`), searches and price ranges. Built before measuring.
pub async fn listing_urls(
    client: &reqwest::Client,
    url: &str,
    store: &BenchStore,
) -> anyhow::Result<Vec<String>> {
    let base = format!(
        "{url}/api/v1/storefronts/{}/products?limit=24",
        store.subdomain
    );
    let mut starts: Vec<String> = ["name", "price_asc", "price_desc", "newest"]
        .iter()
        .map(|sort| format!("{base}&sort={sort}"))
        .collect();
    for word in seed::SEARCH_WORDS {
        starts.push(format!("{base}&q={word}"));
        starts.push(format!("{base}&q={word}&sort=price_asc"));
    }
    for (min, max) in [(200, 1000), (1000, 2500), (2500, 5000)] {
        starts.push(format!(
            "{base}&sort=price_asc&min_price={min}&max_price={max}"
        ));
    }
    let mut urls = Vec::new();
    for start in starts {
        let mut next = Some(start.clone());
        // Up to five pages deep per start.
        for _ in 0..5 {
            let Some(page) = next.take() else { break };
            let response = client.get(&page).send().await?;
            let body: Value = seed::checked(response, "listing products").await?;
            if let Some(cursor) = body["next_cursor"].as_str() {
                next = Some(format!("{start}&cursor={cursor}"));
            }
            urls.push(page);
        }
    }
    Ok(urls)
}

/// `GET /api/v1/storefronts/{store}/products?limit=24&…` over the prepared URLs.
pub fn listing(client: &reqwest::Client, urls: Vec<String>, salt: u64) -> Op {
    let client = client.clone();
    let urls = Arc::new(urls);
    Arc::new(move |n| {
        let url = &urls[(mix(n, salt) % urls.len() as u64) as usize];
        Box::pin(status_of(client.get(url)))
    })
}

/// Guest carts: of every eight requests, one creates a cart (replacing a slot's token), four
/// set an item's quantity and three remove an item, on carts taken round-robin from `slots`.
pub struct Carts {
    client: reqwest::Client,
    cart_url: String,
    items_url: String,
    tokens: Vec<Mutex<String>>,
    store: Arc<BenchStore>,
    salt: u64,
}

impl Carts {
    /// Creates `slots` carts to start from.
    pub async fn prepare(
        client: &reqwest::Client,
        url: &str,
        store: Arc<BenchStore>,
        slots: usize,
        salt: u64,
    ) -> anyhow::Result<Arc<Self>> {
        let cart_url = format!("{url}/api/v1/storefronts/{}/cart", store.subdomain);
        let mut tokens = Vec::with_capacity(slots);
        for _ in 0..slots {
            tokens.push(Mutex::new(new_cart(client, &cart_url).await?));
        }
        Ok(Arc::new(Self {
            client: client.clone(),
            items_url: format!("{cart_url}/items"),
            cart_url,
            tokens,
            store,
            salt,
        }))
    }

    /// The operation.
    pub fn op(self: &Arc<Self>) -> Op {
        let carts = self.clone();
        Arc::new(move |n| {
            let carts = carts.clone();
            Box::pin(async move { carts.step(n).await })
        })
    }

    async fn step(&self, n: u64) -> Status {
        let slot = (n / 8) as usize % self.tokens.len();
        let phase = n % 8;
        if phase == 0 {
            let response = self.client.post(&self.cart_url).send().await.ok()?;
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if let Some(token) = body["cart_token"].as_str() {
                *self.tokens[slot].lock().await = token.to_owned();
            }
            return Some(status);
        }
        let token = self.tokens[slot].lock().await.clone();
        // Lines 1 to 4 of a cart: odd phases set, even phases remove the line set just before.
        let line = (n % 8).div_ceil(2);
        let product = self.store.products
            [(mix(n / 8 * 4 + line, self.salt) as usize) % self.store.products.len()];
        let quantity = if phase % 2 == 1 {
            1 + (mix(n, self.salt) % 3) as i64
        } else {
            0
        };
        let request = SetCartItemRequest {
            product_id: product.id,
            variant_id: None,
            quantity,
        };
        status_of(
            self.client
                .put(&self.items_url)
                .header("x-cart-token", token)
                .json(&request),
        )
        .await
    }
}

async fn new_cart(client: &reqwest::Client, cart_url: &str) -> anyhow::Result<String> {
    let response = client.post(cart_url).send().await?;
    let body = seed::checked(response, "creating a cart").await?;
    Ok(body["cart_token"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no cart token in {body}"))?
        .to_owned())
}

/// A guest checkout of one unit of `product`, pickup, cash, at its current price.
pub fn guest_order(store: &str, email: &str, product: seed::Product) -> GuestCheckoutRequest {
    GuestCheckoutRequest {
        store: store.to_owned(),
        email: email.to_owned(),
        phone: "+358401234567".to_owned(),
        items: vec![CheckoutItem {
            product_id: product.id,
            variant_id: None,
            quantity: 1,
            expected_unit_price_minor: Some(product.price_minor),
        }],
        fulfilment: CheckoutFulfilment::Pickup,
        scheduled_for: None,
        tip_minor: 0,
        discount_code: None,
        payment: PaymentChoice::Cash,
        expected_total_minor: product.price_minor,
    }
}

/// Guest checkouts, one item each, each with its own `Idempotency-Key`.
pub fn order(client: &reqwest::Client, url: &str, store: Arc<BenchStore>, salt: u64) -> Op {
    let client = client.clone();
    let url = format!("{url}/api/v1/customers/guest-checkout");
    Arc::new(move |n| {
        let product = store.products[(mix(n, salt) as usize) % store.products.len()];
        let body = guest_order(&store.subdomain, "buyer@bench.test", product);
        let request = client
            .post(&url)
            .header("idempotency-key", format!("bench-{salt:016x}-{n}"))
            .json(&body);
        Box::pin(status_of(request))
    })
}
