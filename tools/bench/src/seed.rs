//! Prepares the bench store through the public API, as a real operator would: the demo admin
//! onboards a business on the `enterprise` plan (no product limit), open around the clock; its
//! owner publishes the storefront and creates the products, plus one flash-sale product whose
//! only variant has a small stock. The subdomain is new on every run, so a run never depends on
//! what an earlier one left behind. Commerce settings stay at their defaults (no tax, pickup
//! offered, no minimum), so one item's price is an order's total.

use std::sync::Arc;

use anyhow::{bail, Context};
use fleetfront_domain::api::admin::{CreateBusinessRequest, LocationInput, OwnerInput};
use fleetfront_domain::api::catalog::{CreateProductRequest, VariantInput};
use fleetfront_domain::hours::{Interval, OperatingHours};
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use uuid::Uuid;

/// The demo platform admin (`fleetfront serve --demo`).
pub const ADMIN_EMAIL: &str = "admin@fleetfront.test";
/// The demo password, also given to the bench store's owner.
pub const PASSWORD: &str = "fleetfront-demo";

const ADJECTIVES: [&str; 10] = [
    "Smoked", "Spicy", "Crispy", "Fresh", "Roasted", "Sweet", "Grilled", "Classic", "Vegan",
    "Golden",
];
const NOUNS: [&str; 10] = [
    "Salmon",
    "Burger",
    "Noodles",
    "Salad",
    "Pizza",
    "Curry",
    "Taco",
    "Dumplings",
    "Wrap",
    "Pancakes",
];
/// Words the listing scenario searches for (they occur in names and descriptions).
pub const SEARCH_WORDS: [&str; 8] = [
    "salmon", "spicy", "curry", "vegan", "crispy", "noodles", "golden", "taco",
];

/// A product on sale: id and price in minor units.
#[derive(Clone, Copy, Debug)]
pub struct Product {
    pub id: Uuid,
    pub price_minor: i64,
}

/// The seeded store.
pub struct BenchStore {
    pub subdomain: String,
    /// The owner's bearer token (lists orders for the flash sale's check).
    pub owner_token: String,
    pub products: Vec<Product>,
    /// The flash-sale product and its one variant.
    pub flash_product: Product,
    pub flash_variant: Uuid,
    pub flash_stock: u32,
}

/// Signs in and returns the access token.
pub async fn login(
    client: &reqwest::Client,
    url: &str,
    email: &str,
    password: &str,
) -> anyhow::Result<String> {
    let response = client
        .post(format!("{url}/api/v1/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .context("cannot reach the server")?;
    let body = checked(response, "sign-in (is the server running with --demo?)").await?;
    Ok(body["access_token"]
        .as_str()
        .context("no access token in the sign-in response")?
        .to_owned())
}

/// The JSON body of a successful answer, or an error naming `what` with the problem text.
pub async fn checked(response: reqwest::Response, what: &str) -> anyhow::Result<Value> {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("{what} failed: {status} {body}");
    }
    Ok(body)
}

/// Open all day, every day: two intervals, the second ending at midnight.
fn all_day() -> OperatingHours {
    let day = vec![
        Interval {
            open: "00:00".to_owned(),
            close: "12:00".to_owned(),
        },
        Interval {
            open: "12:00".to_owned(),
            close: "00:00".to_owned(),
        },
    ];
    OperatingHours {
        monday: day.clone(),
        tuesday: day.clone(),
        wednesday: day.clone(),
        thursday: day.clone(),
        friday: day.clone(),
        saturday: day.clone(),
        sunday: day,
    }
}

pub(crate) fn mix(mut x: u64) -> u64 {
    // splitmix64: a cheap, well-spread hash for picking names and prices deterministically.
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Creates the bench store with `products` products and a flash product of `flash_stock`.
pub async fn seed(
    client: &reqwest::Client,
    url: &str,
    products: usize,
    flash_stock: u32,
) -> anyhow::Result<BenchStore> {
    let run: u32 = rand::random();
    let subdomain = format!("bench-{run:08x}");
    let owner_email = format!("owner@{subdomain}.test");
    let admin = login(client, url, ADMIN_EMAIL, PASSWORD).await?;
    let onboarding = CreateBusinessRequest {
        name: format!("Bench {run:08x}"),
        contact_email: format!("hello@{subdomain}.test"),
        contact_phone: Some("+358401234567".to_owned()),
        currency: "EUR".to_owned(),
        time_zone: "Europe/Helsinki".to_owned(),
        delivery_radius_m: 10_000,
        location: LocationInput {
            latitude: 60.1699,
            longitude: 24.9384,
        },
        operating_hours: Some(all_day()),
        plan: "enterprise".to_owned(),
        billing_interval: None,
        owner: OwnerInput {
            email: owner_email.clone(),
            full_name: "Bench Owner".to_owned(),
            password: Some(PASSWORD.to_owned()),
        },
        categories: vec!["Mains".to_owned(), "Sides".to_owned()],
        subdomain: subdomain.clone(),
    };
    let response = client
        .post(format!("{url}/api/v1/admin/businesses"))
        .bearer_auth(&admin)
        .json(&onboarding)
        .send()
        .await?;
    checked(response, "onboarding the bench business").await?;
    let owner = login(client, url, &owner_email, PASSWORD).await?;
    let response = client
        .patch(format!("{url}/api/v1/business/storefront"))
        .bearer_auth(&owner)
        .json(&json!({"is_published": true}))
        .send()
        .await?;
    checked(response, "publishing the bench storefront").await?;

    // Products, 16 requests at a time.
    let slots = Arc::new(Semaphore::new(16));
    let mut tasks = Vec::with_capacity(products);
    for i in 0..products {
        let h = mix(u64::from(run) << 20 | i as u64);
        let adjective = ADJECTIVES[(h % 10) as usize];
        let noun = NOUNS[(h / 10 % 10) as usize];
        let extra = NOUNS[(h / 100 % 10) as usize].to_lowercase();
        let request = CreateProductRequest {
            sku: format!("B-{i:05}"),
            name: format!("{adjective} {noun} {i:04}"),
            description: Some(format!(
                "{adjective} {} with {extra}, made to order",
                noun.to_lowercase()
            )),
            price_minor: 200 + (h / 1000 % 4800) as i64,
            cost_minor: None,
            category_id: None,
            is_published: Some(true),
            preparation_time_minutes: Some(10),
            variants: Vec::new(),
        };
        let permit = slots.clone().acquire_owned().await?;
        let client = client.clone();
        let endpoint = format!("{url}/api/v1/business/products");
        let owner = owner.clone();
        tasks.push(tokio::spawn(async move {
            let response = client
                .post(endpoint)
                .bearer_auth(owner)
                .json(&request)
                .send()
                .await?;
            let body = checked(response, "creating a product").await?;
            drop(permit);
            product_of(&body)
        }));
    }
    let mut created = Vec::with_capacity(products);
    for task in tasks {
        created.push(task.await??);
    }

    let request = CreateProductRequest {
        sku: "FLASH-1".to_owned(),
        name: "Flash Sale Sneakers".to_owned(),
        description: Some("Limited edition, ten pairs only".to_owned()),
        price_minor: 4999,
        cost_minor: None,
        category_id: None,
        is_published: Some(true),
        preparation_time_minutes: Some(0),
        variants: vec![VariantInput {
            name: "One size".to_owned(),
            sku: "FLASH-1-OS".to_owned(),
            price_adjustment_minor: 0,
            options: [("size".to_owned(), "one".to_owned())].into(),
            stock_quantity: Some(i64::from(flash_stock)),
            display_order: None,
        }],
    };
    let response = client
        .post(format!("{url}/api/v1/business/products"))
        .bearer_auth(&owner)
        .json(&request)
        .send()
        .await?;
    let body = checked(response, "creating the flash product").await?;
    let flash_product = product_of(&body)?;
    let flash_variant = body["variants"][0]["id"]
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
        .context("the flash product has no variant id")?;
    Ok(BenchStore {
        subdomain,
        owner_token: owner,
        products: created,
        flash_product,
        flash_variant,
        flash_stock,
    })
}

fn product_of(body: &Value) -> anyhow::Result<Product> {
    Ok(Product {
        id: body["id"]
            .as_str()
            .and_then(|s| Uuid::parse_str(s).ok())
            .context("no product id in the answer")?,
        price_minor: body["price"]["minor"]
            .as_i64()
            .context("no price in the answer")?,
    })
}
