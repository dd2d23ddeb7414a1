//! A deterministic simulation of a working day: a till, two drivers and the customers of the
//! web shop against the real server on real PostgreSQL, over real HTTP. Each device has its own
//! network that is cut and restored at random, pushes are duplicated and sent out of order, the
//! server restarts, offers time out. The steps come from a seeded generator, so a failing seed
//! replays the same day.
//!
//! Afterwards every device converges to the server's state (its rows equal the server's rows of
//! its buckets, nothing pending), every order exists once, every payment once, stock never went
//! negative, every delivered delivery has exactly one earnings row, and every mutation a device
//! made was decided exactly once.
//!
//! The suite runs 2 seeds of 150 steps. A longer run:
//! `FLEETFRONT_SIM_SEEDS=20 FLEETFRONT_SIM_STEPS=600 scripts/test.sh -p fleetfront-server --test simulation`
//! (`FLEETFRONT_SIM_SEED=<n>` replays one seed).

#![allow(clippy::unwrap_used)] // A failed unwrap in a test is a failed test.

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::http::{Method, StatusCode};
use common::fleet::{self, driver, Shop};
use common::net::Served;
use common::{TestApp, PASSWORD};
use fleetfront_core::{ApiClient, Client, ClientError};
use fleetfront_domain::api::delivery::{
    CashCollectedInput, DeliveryStatusUpdateRequest, ReportedStatus,
};
use fleetfront_domain::api::mutations::{OrderPlaceArgs, SaleItem, SalePayment};
use fleetfront_server::dispatch::run_due_offers;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use uuid::Uuid;

/// Units of the shop's one product: few enough that the day sells out.
const STOCK: i32 = 40;

struct Device {
    name: String,
    client: Client,
    /// A second session of the same account, for duplicated and reordered pushes.
    raw: ApiClient,
    net: Served,
    /// Mutations this device queued.
    made: u64,
    /// The last GPS fix's sequence number (drivers).
    fixes: u64,
}

struct World {
    t: Option<TestApp>,
    shop: Shop,
    devices: Vec<Device>,
    rng: StdRng,
    orders: Vec<Uuid>,
    refused_checkouts: usize,
    log: String,
    dir: std::path::PathBuf,
}

impl World {
    fn t(&self) -> &TestApp {
        self.t.as_ref().unwrap()
    }

    fn note(&mut self, line: impl AsRef<str>) {
        let _ = writeln!(self.log, "{}", line.as_ref());
    }
}

fn seeds() -> Vec<u64> {
    if let Ok(one) = std::env::var("FLEETFRONT_SIM_SEED") {
        return vec![one.parse().unwrap()];
    }
    let count: u64 = std::env::var("FLEETFRONT_SIM_SEEDS")
        .ok()
        .map_or(2, |n| n.parse().unwrap());
    (1..=count).collect()
}

fn steps() -> usize {
    std::env::var("FLEETFRONT_SIM_STEPS")
        .ok()
        .map_or(150, |n| n.parse().unwrap())
}

#[tokio::test]
async fn devices_converge_through_cuts_restarts_and_replays() {
    for seed in seeds() {
        run(seed, steps()).await;
    }
}

/// A device signed in as `email`; a customer's at `store`.
async fn device(
    t: &TestApp,
    dir: &std::path::Path,
    name: &str,
    email: &str,
    store: Option<&str>,
) -> Device {
    let net = Served::start(t.router.clone()).await;
    let client = Client::open(dir.join(format!("{name}.sqlite")), &net.url).unwrap();
    let mut raw = ApiClient::new(net.url.clone());
    match store {
        Some(store) => {
            client.login_customer(store, email, PASSWORD).await.unwrap();
            raw.login_customer(store, email, PASSWORD).await.unwrap();
        }
        None => {
            client.login(email, PASSWORD).await.unwrap();
            raw.login(email, PASSWORD).await.unwrap();
        }
    }
    Device {
        name: name.to_owned(),
        client,
        raw,
        net,
        made: 0,
        fixes: 0,
    }
}

async fn run(seed: u64, steps: usize) {
    let t = TestApp::new().await;
    let shop = fleet::shop(&t, &format!("sim{seed}")).await;
    sqlx::query("UPDATE product_variants SET stock_quantity = $1 WHERE business_id = $2")
        .bind(STOCK)
        .bind(shop.business)
        .execute(&t.db.pools.owner)
        .await
        .unwrap();
    let (ann, _) = driver(&t, "Ann", (60.171, 24.94), Some((shop.business, 1))).await;
    let (ben, _) = driver(&t, "Ben", (60.176, 24.94), Some((shop.business, 1))).await;
    let dir = std::env::temp_dir().join(format!("fleetfront-sim-{}", Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut devices = vec![
        device(
            &t,
            &dir,
            "till",
            &format!("owner@{}.test", shop.subdomain),
            None,
        )
        .await,
    ];
    for (name, id) in [("ann", ann), ("ben", ben)] {
        let email: String = sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
            .bind(id)
            .fetch_one(&t.db.pools.owner)
            .await
            .unwrap();
        devices.push(device(&t, &dir, name, &email, None).await);
    }
    // A customer of the shop with the shop's app.
    t.send(
        Method::POST,
        "/api/v1/auth/customer/register",
        None,
        Some(
            json!({"store": shop.subdomain, "email": "aino@example.test", "password": PASSWORD,
                    "full_name": "Aino Asiakas"}),
        ),
    )
    .await
    .expect(StatusCode::CREATED);
    devices.push(device(&t, &dir, "aino", "aino@example.test", Some(&shop.subdomain)).await);
    let mut world = World {
        t: Some(t),
        shop,
        devices,
        rng: StdRng::seed_from_u64(seed),
        orders: Vec::new(),
        refused_checkouts: 0,
        log: String::new(),
        dir,
    };
    for step in 0..steps {
        let roll = world.rng.gen_range(0..100);
        world.note(format!("step {step}: roll {roll}"));
        match roll {
            0..=9 => checkout(&mut world).await,
            10..=27 => till(&mut world).await,
            28..=59 => {
                let d = world.rng.gen_range(1..=2);
                courier(&mut world, d).await;
            }
            60..=67 => toggle_network(&mut world).await,
            68..=69 => restart(&mut world).await,
            70..=74 => time_passes(&mut world).await,
            75..=82 => replay(&mut world).await,
            83..=90 => shopper(&mut world).await,
            _ => {
                let d = world.rng.gen_range(0..world.devices.len());
                let outcome = world.devices[d].client.sync_now().await;
                let line = format!(
                    "  {} syncs: {:?}",
                    world.devices[d].name,
                    outcome.map(|r| (r.applied, r.rejected))
                );
                world.note(line);
            }
        }
    }
    converge(&mut world, seed).await;
    let _ = std::fs::remove_dir_all(&world.dir);
}

/// A customer of the web shop checks out (a cash delivery order); refused once sold out.
async fn checkout(w: &mut World) {
    let body = json!({
        "store": w.shop.subdomain,
        "email": "guest@example.test",
        "phone": "+358401234567",
        "items": [{"product_id": w.shop.product, "variant_id": w.shop.variant, "quantity": 1}],
        "fulfilment": {"kind": "delivery", "address": {"address_line1": "Main Street 1",
            "city": "Helsinki", "country": "FI", "latitude": 60.175, "longitude": 24.94}},
        "payment": {"method": "cash"},
        "expected_total_minor": 1300,
    });
    let reply = w
        .t()
        .send_with(
            Method::POST,
            "/api/v1/customers/guest-checkout",
            None,
            Some(body),
            &[("Idempotency-Key", &Uuid::new_v4().to_string())],
        )
        .await;
    if reply.status == StatusCode::CREATED {
        let id: Uuid = reply.body["id"].as_str().unwrap().parse().unwrap();
        w.orders.push(id);
        w.note(format!("  checkout: order {id}"));
    } else {
        assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.body);
        w.refused_checkouts += 1;
        w.note(format!("  checkout refused: {}", reply.code()));
    }
}

fn pick<'a>(rng: &mut StdRng, rows: &'a [(Uuid, Value)]) -> Option<&'a (Uuid, Value)> {
    (!rows.is_empty()).then(|| &rows[rng.gen_range(0..rows.len())])
}

/// The till works its board: accepts what is pending, marks ready what is accepted, now and
/// then cancels an order.
async fn till(w: &mut World) {
    if w.rng.gen_bool(0.5) {
        let _ = w.devices[0].client.sync_now().await;
    }
    let orders = w.devices[0].client.orders().unwrap();
    let with = |status: &[&str]| -> Vec<(Uuid, Value)> {
        orders
            .iter()
            .filter(|(_, o)| status.contains(&o["status"].as_str().unwrap_or("")))
            .cloned()
            .collect()
    };
    let roll = w.rng.gen_range(0..12);
    if roll >= 10 {
        // A walk-in customer buys at the counter, cash or card on the terminal; the till may be
        // offline, so it cannot know whether the web shop sold the last bowls meanwhile.
        let quantity = w.rng.gen_range(1..=3);
        let payment = if w.rng.gen_bool(0.5) {
            SalePayment::Cash
        } else {
            SalePayment::CardPresent
        };
        let item = SaleItem {
            product_id: w.shop.product,
            variant_id: Some(w.shop.variant),
            quantity,
        };
        let outcome = w.devices[0].client.sell(vec![item], payment).await;
        if outcome.is_ok() {
            w.devices[0].made += 1;
        }
        let line = format!(
            "  till sells {quantity}: {:?}",
            outcome.map(|(o, m)| (o, m.seq))
        );
        w.note(line);
        return;
    }
    let (name, order) = if roll < 5 {
        ("accept", pick(&mut w.rng, &with(&["pending"])).map(|o| o.0))
    } else if roll < 9 {
        (
            "ready",
            pick(&mut w.rng, &with(&["confirmed", "preparing"])).map(|o| o.0),
        )
    } else {
        (
            "cancel",
            pick(&mut w.rng, &with(&["confirmed", "preparing", "ready"])).map(|o| o.0),
        )
    };
    let Some(order) = order else { return };
    let client = &w.devices[0].client;
    let outcome = match name {
        "accept" => client.accept_order(order, 10).await,
        "ready" => client.mark_ready(order).await,
        _ => client.cancel_order(order, "The kitchen is closing").await,
    };
    if outcome.is_ok() {
        w.devices[0].made += 1;
    }
    let line = format!("  till {name} {order}: {:?}", outcome.map(|m| m.seq));
    w.note(line);
}

/// The customer's app: fills the cart (offline too), or places an order of what is in it
/// (cash on delivery) and empties the cart.
async fn shopper(w: &mut World) {
    const CUSTOMER: usize = 3;
    if w.rng.gen_bool(0.3) {
        let _ = w.devices[CUSTOMER].client.sync_now().await;
    }
    let client = &w.devices[CUSTOMER].client;
    let cart = client.rows("cart").unwrap();
    let lines: Vec<Value> = cart
        .first()
        .and_then(|(_, c)| c["items"].as_array().cloned())
        .unwrap_or_default();
    let mut made = 0;
    let outcome = if lines.is_empty() || w.rng.gen_bool(0.5) {
        let quantity = w.rng.gen_range(1..=2);
        let added = client
            .add_to_cart(w.shop.product, Some(w.shop.variant), quantity)
            .await;
        made += u64::from(added.is_ok());
        format!("cart {quantity}: {:?}", added.map(|m| m.seq))
    } else {
        let quantity: i64 = lines.iter().filter_map(|l| l["quantity"].as_i64()).sum();
        let order: OrderPlaceArgs = serde_json::from_value(json!({
            "order_id": Uuid::now_v7(),
            "items": [{"product_id": w.shop.product, "variant_id": w.shop.variant,
                       "quantity": quantity}],
            "fulfilment": {"kind": "delivery", "address": {"address_line1": "Main Street 1",
                "city": "Helsinki", "country": "FI", "latitude": 60.175, "longitude": 24.94}},
            "payment": {"method": "cash"},
            "expected_total_minor": 1000 * quantity + 300,
        }))
        .unwrap();
        let placed = client.place_order(&order).await;
        made += u64::from(placed.is_ok());
        let emptied = client
            .add_to_cart(w.shop.product, Some(w.shop.variant), 0)
            .await;
        made += u64::from(emptied.is_ok());
        format!("place {quantity}: {:?}", placed.map(|m| m.seq))
    };
    w.devices[CUSTOMER].made += made;
    w.note(format!("  aino: {outcome}"));
}

/// A driver's phone reports where it is (its own channel, straight to the server: dispatch
/// only offers to drivers with a recent position, and a restarted server knows none).
async fn gps(w: &mut World, d: usize) {
    w.devices[d].fixes += 1;
    let t = w.t();
    let device = &w.devices[d];
    let at = t.app.clock.now() - chrono::Duration::seconds(1);
    let reply = t
        .send(
            Method::POST,
            "/api/v1/driver/location",
            device.raw.access_token.as_deref(),
            Some(
                json!({"device_id": format!("{}-phone", device.name), "fixes": [{
                    "latitude": 60.171 + 0.001 * d as f64, "longitude": 24.94, "accuracy_m": 8.0,
                    "heading_deg": 0.0, "speed_mps": 0.0, "recorded_at": at, "seq": device.fixes,
                }]}),
            ),
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
}

/// A driver syncs now and then, answers an offer or takes the next step of its delivery.
async fn courier(w: &mut World, d: usize) {
    gps(w, d).await;
    if w.rng.gen_bool(0.6) {
        let _ = w.devices[d].client.sync_now().await;
    }
    let client = &w.devices[d].client;
    let offers = client.offers().unwrap();
    let held: Vec<(Uuid, Value)> = client
        .deliveries()
        .unwrap()
        .into_iter()
        .filter(|(_, r)| {
            !matches!(
                r["status"].as_str(),
                Some("delivered" | "failed" | "cancelled")
            )
        })
        .collect();
    let busy = !held.is_empty() && w.rng.gen_bool(0.7);
    let outcome: Result<String, ClientError> =
        if let Some((offer, _)) = offers.first().filter(|_| !busy) {
            if w.rng.gen_bool(0.8) {
                client
                    .accept_offer(*offer)
                    .await
                    .map(|_| format!("accept offer {offer}"))
            } else {
                client
                    .decline_offer(*offer)
                    .await
                    .map(|_| format!("decline offer {offer}"))
            }
        } else if let Some((delivery, row)) = held.first() {
            let next = match row["status"].as_str() {
                Some("assigned") => ReportedStatus::ArrivedAtStore,
                Some("arrived_at_store") => ReportedStatus::PickedUp,
                Some("picked_up") => ReportedStatus::ArrivedAtCustomer,
                _ => ReportedStatus::Delivered,
            };
            let cash = (next == ReportedStatus::Delivered).then(|| CashCollectedInput {
                amount_minor: row["order"]["total_minor"].as_i64().unwrap_or(0),
                shortfall_reason: None,
            });
            let step = DeliveryStatusUpdateRequest {
                status: next,
                position: None,
                recorded_at: None,
                proof_sha256: None,
                cash_collected: cash,
                failure: None,
            };
            client
                .delivery_step(*delivery, &step, None)
                .await
                .map(|_| format!("{next:?} {delivery}"))
        } else {
            return;
        };
    if outcome.is_ok() {
        w.devices[d].made += 1;
    }
    let line = format!("  {}: {outcome:?}", w.devices[d].name);
    w.note(line);
}

/// A device loses its network, or one that lost it gets it back (cuts are short more often
/// than not, as in a city).
async fn toggle_network(w: &mut World) {
    let down: Vec<usize> = (0..w.devices.len())
        .filter(|&d| !w.devices[d].net.is_up())
        .collect();
    let router = w.t().router.clone();
    let d = if !down.is_empty() && w.rng.gen_bool(0.6) {
        down[w.rng.gen_range(0..down.len())]
    } else {
        w.rng.gen_range(0..w.devices.len())
    };
    let device = &mut w.devices[d];
    if device.net.is_up() {
        device.net.cut().await;
    } else {
        device.net.resume(router).await;
    }
    let line = format!("  network of {}: up {}", device.name, device.net.is_up());
    w.note(line);
}

async fn restart(w: &mut World) {
    let t = w.t.take().unwrap().restart().await;
    for device in &mut w.devices {
        device.net.replace(t.router.clone()).await;
    }
    w.t = Some(t);
    w.note("  server restarted");
    // The phones keep reporting their positions to the new process.
    gps(w, 1).await;
    gps(w, 2).await;
}

/// Half a minute passes on the server: open offers time out and go to the next driver.
async fn time_passes(w: &mut World) {
    w.t().app.clock.advance(31);
    gps(w, 1).await;
    gps(w, 2).await;
    let t = w.t();
    let handled = run_due_offers(&t.app, t.app.clock.now()).await.unwrap();
    w.note(format!("  31 s pass: {handled} offers timed out"));
}

/// A device's queue is pushed again by a flaky network: twice at once, and its tail before
/// its head (the server answers the gap without applying anything after it).
async fn replay(w: &mut World) {
    let d = w.rng.gen_range(0..w.devices.len());
    let device = &w.devices[d];
    if !device.net.is_up() {
        return;
    }
    let pending = device.client.store().pending(50).unwrap();
    if pending.is_empty() {
        return;
    }
    let client_id = device.client.store().client_id().unwrap();
    let tail = pending[pending.len() / 2..].to_vec();
    let reordered = device.raw.push(client_id, tail).await;
    let (a, b) = tokio::join!(
        device.raw.push(client_id, pending.clone()),
        device.raw.push(client_id, pending.clone())
    );
    let line = format!(
        "  {} replays {} mutations: tail first {:?}, twice {:?} / {:?}",
        device.name,
        pending.len(),
        reordered.map(|r| r.results.len()),
        a.map(|r| r.results.len()),
        b.map(|r| r.results.len()),
    );
    w.note(line);
}

async fn server_rows(t: &TestApp, buckets: &[String], kind: &str) -> Vec<(Uuid, Value)> {
    sqlx::query_as(
        "SELECT DISTINCT ON (id) id, data FROM sync_rows \
          WHERE bucket = ANY($1) AND kind = $2 AND data IS NOT NULL ORDER BY id",
    )
    .bind(buckets)
    .bind(kind)
    .fetch_all(&t.db.pools.owner)
    .await
    .unwrap()
}

async fn scalar(t: &TestApp, sql: &str, business: Uuid) -> i64 {
    sqlx::query_scalar(sql)
        .bind(business)
        .fetch_one(&t.db.pools.owner)
        .await
        .unwrap()
}

async fn converge(w: &mut World, seed: u64) {
    let router = w.t().router.clone();
    for device in &mut w.devices {
        if !device.net.is_up() {
            device.net.resume(router.clone()).await;
        }
    }
    // Everybody syncs until a whole round changes nothing (a driver's delivery finishing can
    // change the till's board, and the other way round).
    let mut quiet = false;
    for _ in 0..6 {
        let mut changed = 0;
        for device in &w.devices {
            let report = device.client.sync_now().await;
            let report = report.unwrap_or_else(|e| {
                panic!("seed {seed}: {} cannot sync: {e}\n{}", device.name, w.log)
            });
            changed += report.applied + report.rejected + report.rows_changed;
        }
        if changed == 0 {
            quiet = true;
            break;
        }
    }
    let t = w.t();
    let fail = |what: String| -> ! { panic!("seed {seed}: {what}\n--- the day ---\n{}", w.log) };
    if !quiet {
        fail("the devices did not settle in 6 rounds".to_owned());
    }
    for device in &w.devices {
        let store = device.client.store();
        if store.pending_count().unwrap() != 0 {
            fail(format!("{} still has pending mutations", device.name));
        }
        let buckets: Vec<String> = store
            .buckets()
            .unwrap()
            .keys()
            .map(ToString::to_string)
            .collect();
        for kind in [
            "order", "delivery", "offer", "product", "variant", "category", "cart", "driver",
            "settings",
        ] {
            let mine: BTreeMap<Uuid, Value> =
                device.client.rows(kind).unwrap().into_iter().collect();
            let theirs: BTreeMap<Uuid, Value> =
                server_rows(t, &buckets, kind).await.into_iter().collect();
            if mine != theirs {
                fail(format!(
                    "{}'s {kind} rows differ from the server's: {} local, {} on the server",
                    device.name,
                    mine.len(),
                    theirs.len()
                ));
            }
        }
        // Every mutation the device made was decided exactly once, as the device recorded it.
        let client_id = store.client_id().unwrap();
        let (decided, rejected): (i64, i64) = sqlx::query_as(
            "SELECT count(*), count(*) FILTER (WHERE status = 'rejected') FROM sync_mutations WHERE client_id = $1",
        )
        .bind(client_id)
        .fetch_one(&t.db.pools.owner)
        .await
        .unwrap();
        if u64::try_from(decided).unwrap() != device.made {
            fail(format!(
                "{} made {} mutations, the server decided {decided}",
                device.name, device.made
            ));
        }
        let local_rejections = store.rejections().unwrap().len();
        if i64::try_from(local_rejections).unwrap() != rejected {
            fail(format!(
                "{} shows {local_rejections} rejections, the server stored {rejected}",
                device.name
            ));
        }
        if store
            .rejections()
            .unwrap()
            .iter()
            .any(|r| r.message.is_empty())
        {
            fail(format!("{} has a rejection without words", device.name));
        }
    }
    let business = w.shop.business;
    // Each sale the server applied made its order, once, under the id the till gave it.
    let till_client = w.devices[0].client.store().client_id().unwrap();
    let (sales, sales_found, sold_out): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE m.status = 'applied'), \
                count(o.id) FILTER (WHERE m.status = 'applied'), \
                count(*) FILTER (WHERE m.code = 'out_of_stock') \
           FROM sync_mutations m \
           LEFT JOIN orders o ON o.id = (m.output->>'id')::uuid \
          WHERE m.client_id = $1 AND m.name = 'order.create@1'",
    )
    .bind(till_client)
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap();
    if sales != sales_found {
        fail(format!(
            "{sales} sales applied, {sales_found} of their orders found"
        ));
    }
    // Each order the customer's app placed exists once, whatever the replays.
    let aino = w.devices[3].client.store().client_id().unwrap();
    let placed: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT (m.output->>'id')) FROM sync_mutations m \
          WHERE m.client_id = $1 AND m.name = 'order.place@1' AND m.status = 'applied'",
    )
    .bind(aino)
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap();
    let orders = scalar(
        t,
        "SELECT count(*) FROM orders WHERE business_id = $1",
        business,
    )
    .await;
    if orders != i64::try_from(w.orders.len()).unwrap() + sales + placed {
        fail(format!(
            "{} checkouts, {sales} sales and {placed} app orders made {orders} orders",
            w.orders.len()
        ));
    }
    let twice_paid = scalar(
        t,
        "SELECT count(*) FROM (SELECT order_id FROM payment_transactions WHERE business_id = $1 \
           AND status = 'completed' GROUP BY order_id HAVING count(*) > 1) x",
        business,
    )
    .await;
    if twice_paid != 0 {
        fail(format!("{twice_paid} orders paid more than once"));
    }
    let lowest = scalar(
        t,
        "SELECT coalesce(min(stock_quantity), 0)::bigint FROM product_variants WHERE business_id = $1",
        business,
    )
    .await;
    if lowest < 0 {
        fail(format!("stock went to {lowest}"));
    }
    let earnings_twice = scalar(
        t,
        "SELECT count(*) FROM (SELECT delivery_id FROM driver_earnings WHERE business_id = $1 \
           GROUP BY delivery_id HAVING count(*) > 1) x",
        business,
    )
    .await;
    let unpaid = scalar(
        t,
        "SELECT count(*) FROM deliveries d WHERE d.business_id = $1 AND d.status = 'delivered' \
           AND NOT EXISTS (SELECT 1 FROM driver_earnings e WHERE e.delivery_id = d.id)",
        business,
    )
    .await;
    if earnings_twice + unpaid != 0 {
        fail(format!(
            "{earnings_twice} deliveries paid twice, {unpaid} delivered unpaid"
        ));
    }
    let mismatched = scalar(
        t,
        "SELECT count(*) FROM deliveries d JOIN orders o ON o.business_id = d.business_id AND o.id = d.order_id \
          WHERE d.business_id = $1 AND d.status = 'delivered' AND o.status <> 'delivered'",
        business,
    )
    .await;
    if mismatched != 0 {
        fail(format!(
            "{mismatched} delivered deliveries of orders not delivered"
        ));
    }
    let delivered = scalar(
        t,
        "SELECT count(*) FROM orders WHERE business_id = $1 AND status = 'delivered'",
        business,
    )
    .await;
    let board: Vec<(String, i64)> = sqlx::query_as(
        "SELECT status, count(*) FROM deliveries WHERE business_id = $1 GROUP BY 1 ORDER BY 1",
    )
    .bind(business)
    .fetch_all(&t.db.pools.owner)
    .await
    .unwrap();
    eprintln!("seed {seed}: deliveries {board:?}");
    if std::env::var_os("FLEETFRONT_SIM_LOG").is_some() {
        eprintln!("--- the day ---\n{}", w.log);
    }
    let rejected: usize = w
        .devices
        .iter()
        .map(|d| d.client.store().rejections().unwrap().len())
        .sum();
    eprintln!(
        "seed {seed}: {} orders ({sales} till sales, {placed} from the app; sold out: \
         {sold_out} sales and {} checkouts refused), {delivered} delivered, mutations {:?}, \
         {rejected} rejected",
        orders,
        w.refused_checkouts,
        w.devices
            .iter()
            .map(|d| (d.name.as_str(), d.made))
            .collect::<Vec<_>>(),
    );
}
