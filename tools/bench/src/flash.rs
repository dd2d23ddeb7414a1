//! The flash sale: `buyers` guests try to buy one unit each of a variant with `stock` units, all
//! at once. A random subset retries with the same `Idempotency-Key` after its answer, and
//! another subset sends its request twice at the same moment (a client that timed out and
//! retried while the first attempt was still running). The sale passes when exactly `stock`
//! orders succeed, every other answer is a 409 `out_of_stock`, nothing answers 5xx, every
//! retry of a success returns the same order id, and the business's order list holds exactly
//! `stock` orders of the product.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use fleetfront_domain::api::order::GuestCheckoutRequest;
use serde_json::Value;
use tokio::sync::Barrier;

use crate::scenario::guest_order;
use crate::seed::{self, BenchStore};

/// One answer: status, problem code or order id.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Answer {
    Placed(String),
    Refused(u16, String),
    Unanswered(String),
}

async fn checkout(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    body: &GuestCheckoutRequest,
) -> Answer {
    let response = match client
        .post(url)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => return Answer::Unanswered(e.to_string()),
    };
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    match (status, body["id"].as_str()) {
        (200..=299, Some(id)) => Answer::Placed(id.to_owned()),
        _ => Answer::Refused(
            status,
            body["code"].as_str().unwrap_or("(no code)").to_owned(),
        ),
    }
}

/// The sale's outcome.
pub struct FlashReport {
    pub lines: Vec<String>,
    pub passed: bool,
}

/// Runs the sale.
pub async fn run(
    url: &str,
    store: &BenchStore,
    buyers: usize,
    retry_share: f64,
) -> anyhow::Result<FlashReport> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(buyers * 2)
        .timeout(Duration::from_secs(60))
        .build()?;
    let endpoint = format!("{url}/api/v1/customers/guest-checkout");
    let product = seed::Product {
        id: store.flash_product.id,
        price_minor: store.flash_product.price_minor,
    };
    let salt: u64 = rand::random();
    let since = chrono::DateTime::from_timestamp(
        i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs(),
        )? - 1,
        0,
    )
    .context("clock out of range")?;
    let barrier = Arc::new(Barrier::new(buyers));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(buyers);
    for buyer in 0..buyers {
        let client = client.clone();
        let endpoint = endpoint.clone();
        let barrier = barrier.clone();
        let mut body = guest_order(
            &store.subdomain,
            &format!("buyer{buyer}@bench.test"),
            product,
        );
        body.items[0].variant_id = Some(store.flash_variant);
        let key = format!("flash-{salt:016x}-{buyer}");
        let roll: f64 = rand::random();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let concurrent_twin = roll < retry_share / 2.0;
            let retry_after = roll < retry_share;
            let (first, twin) = if concurrent_twin {
                let (a, b) = tokio::join!(
                    checkout(&client, &endpoint, &key, &body),
                    checkout(&client, &endpoint, &key, &body)
                );
                (a, Some(b))
            } else {
                (checkout(&client, &endpoint, &key, &body).await, None)
            };
            let retry = if retry_after {
                Some(checkout(&client, &endpoint, &key, &body).await)
            } else {
                None
            };
            (buyer, first, twin, retry)
        }));
    }
    let mut placed: BTreeMap<usize, String> = BTreeMap::new();
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    let mut server_errors = 0u64;
    let mut unclean = 0u64;
    let mut retries = 0u64;
    let mut retry_mismatches = Vec::new();
    for task in tasks {
        let (buyer, first, twin, retry) = task.await?;
        let mut answers = vec![first];
        answers.extend(twin);
        answers.extend(retry);
        retries += (answers.len() - 1) as u64;
        for answer in &answers {
            let label = match answer {
                Answer::Placed(_) => "201 placed".to_owned(),
                Answer::Refused(status, code) => {
                    if *status >= 500 {
                        server_errors += 1;
                    }
                    if *status != 409 || code != "out_of_stock" {
                        unclean += 1;
                    }
                    format!("{status} {code}")
                }
                Answer::Unanswered(_) => {
                    unclean += 1;
                    "no answer".to_owned()
                }
            };
            *by_status.entry(label).or_default() += 1;
        }
        // Every success of one buyer (first try, twin, retry) must name one order.
        let ids: BTreeSet<String> = answers
            .iter()
            .filter_map(|a| match a {
                Answer::Placed(id) => Some(id.clone()),
                _ => None,
            })
            .collect();
        if ids.len() > 1 {
            retry_mismatches.push(format!("buyer {buyer} got orders {ids:?}"));
        }
        if let Some(id) = ids.into_iter().next() {
            placed.insert(buyer, id);
            // A success that a later retry of the same key does not replay is a mismatch too.
            if answers.len() > 1
                && answers
                    .iter()
                    .any(|a| matches!(a, Answer::Refused(..) | Answer::Unanswered(_)))
            {
                retry_mismatches.push(format!(
                    "buyer {buyer}: a retry of a placed order was not replayed: {answers:?}"
                ));
            }
        }
    }
    let elapsed = started.elapsed();

    // What the business sees: its orders of the flash product placed since the sale began.
    let server_orders = orders_of_product(&client, url, store, since).await?;
    let distinct: BTreeSet<&String> = placed.values().collect();
    let client_ids: BTreeSet<String> = distinct.iter().map(|s| (*s).clone()).collect();
    let stock = u64::from(store.flash_stock);
    let passed = placed.len() as u64 == stock
        && distinct.len() as u64 == stock
        && server_errors == 0
        && unclean == 0
        && retry_mismatches.is_empty()
        && server_orders == client_ids;
    let mut lines = vec![
        format!(
            "flash    {buyers} buyers, {stock} in stock, {retries} retries (same Idempotency-Key), {:.2}s",
            elapsed.as_secs_f64()
        ),
        format!(
            "flash    answers: {}",
            by_status
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        format!(
            "flash    buyers with an order: {} (expected {stock}); distinct orders: {}; orders the business lists: {}; 5xx: {server_errors}; answers other than 201 or 409 out_of_stock: {unclean}; retry mismatches: {}",
            placed.len(),
            distinct.len(),
            server_orders.len(),
            retry_mismatches.len()
        ),
    ];
    lines.extend(
        retry_mismatches
            .iter()
            .take(10)
            .map(|m| format!("flash    {m}")),
    );
    if server_orders != client_ids {
        lines.push(format!(
            "flash    orders listed but never answered to a buyer: {:?}",
            server_orders.difference(&client_ids).collect::<Vec<_>>()
        ));
    }
    lines.push(format!("flash    {}", if passed { "PASS" } else { "FAIL" }));
    Ok(FlashReport { lines, passed })
}

/// Ids of the business's orders containing the flash product, placed since `since`.
async fn orders_of_product(
    client: &reqwest::Client,
    url: &str,
    store: &BenchStore,
    since: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<BTreeSet<String>> {
    let product = store.flash_product.id.to_string();
    let mut found = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut request = client
            .get(format!("{url}/api/v1/business/orders"))
            .bearer_auth(&store.owner_token)
            .query(&[("limit", "100"), ("since", &since.to_rfc3339())]);
        if let Some(c) = &cursor {
            request = request.query(&[("cursor", c)]);
        }
        let page = seed::checked(request.send().await?, "listing the business's orders").await?;
        for order in page["items"].as_array().into_iter().flatten() {
            let has = order["items"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|i| i["product_id"].as_str() == Some(product.as_str()));
            if has {
                if let Some(id) = order["id"].as_str() {
                    found.insert(id.to_owned());
                }
            }
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return Ok(found),
        }
    }
}
