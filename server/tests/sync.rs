//! Offline-first sync on real PostgreSQL through the HTTP router: a fresh staff client pulls its
//! catalog and orders, incremental pulls carry only what changed (one row however often it
//! changed, tombstones for what left), checksums agree with the rows, a customer reads only its
//! own orders and the public catalog, other businesses' buckets are never read, paging reaches
//! the same state, and concurrent writers never make a puller skip a row. Push: replays answer
//! the stored result without applying twice, gaps stop the push, rejections do not block the
//! queue, a concurrent double push applies once, and the action time is kept.

#![allow(clippy::unwrap_used)] // A failed unwrap in a test is a failed test.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::http::{Method, StatusCode};
use common::fleet::{self, accepted_order, answer, driver, shop, Shop};
use common::{TestApp, PASSWORD};
use fleetfront_domain::sync::{checksum_add, row_checksum};
use serde_json::{json, Value};
use uuid::Uuid;

/// A client's local copy of its buckets: cursors, rows and checksums, applied page by page the
/// way a client does.
/// A bucket's rows: (kind, id) → (version, data).
type Rows = HashMap<(String, Uuid), (u64, Value)>;

#[derive(Debug, Default)]
struct Replica {
    cursors: BTreeMap<String, u64>,
    rows: BTreeMap<String, Rows>,
}

impl Replica {
    fn cursor_query(&self) -> String {
        self.cursors
            .iter()
            .map(|(b, v)| format!("{b}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    #[track_caller]
    fn apply(&mut self, answer: &Value) {
        for removed in answer["removed"].as_array().into_iter().flatten() {
            let b = removed.as_str().unwrap();
            self.cursors.remove(b);
            self.rows.remove(b);
        }
        for page in answer["buckets"].as_array().unwrap() {
            let bucket = page["bucket"].as_str().unwrap().to_owned();
            let rows = self.rows.entry(bucket.clone()).or_default();
            if page["reset"].as_bool().unwrap() {
                rows.clear();
            }
            let mut last = 0;
            for row in page["rows"].as_array().unwrap() {
                let version = row["version"].as_u64().unwrap();
                assert!(version > last, "rows in version order: {page}");
                last = version;
                let key = (
                    row["kind"].as_str().unwrap().to_owned(),
                    row["id"].as_str().unwrap().parse().unwrap(),
                );
                match row.get("data") {
                    Some(data) => {
                        rows.insert(key, (version, data.clone()));
                    }
                    None => {
                        rows.remove(&key);
                    }
                }
            }
            self.cursors
                .insert(bucket.clone(), page["version"].as_u64().unwrap());
            if page["complete"].as_bool().unwrap() {
                let expected = page["checksum"].as_u64().unwrap();
                assert_eq!(
                    u64::from(self.checksum(&bucket)),
                    expected,
                    "checksum of {bucket}"
                );
            } else {
                assert!(page.get("checksum").is_none());
            }
        }
    }

    fn checksum(&self, bucket: &str) -> u32 {
        self.rows.get(bucket).map_or(0, |rows| {
            rows.iter().fold(0, |sum, ((kind, id), (version, _))| {
                checksum_add(sum, row_checksum(kind, *id, *version))
            })
        })
    }

    /// The live rows of a bucket as (kind, id) → data.
    fn live(&self, bucket: &str) -> HashMap<(String, Uuid), Value> {
        self.rows
            .get(bucket)
            .map(|rows| {
                rows.iter()
                    .map(|(k, (_, d))| (k.clone(), d.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

async fn pull_raw(t: &TestApp, token: &str, cursors: &str, limit: Option<u32>) -> common::Reply {
    let mut path = format!("/api/v1/sync/pull?cursors={}", urlencode(cursors));
    if let Some(limit) = limit {
        path.push_str(&format!("&limit={limit}"));
    }
    t.send(Method::GET, &path, Some(token), None).await
}

fn urlencode(raw: &str) -> String {
    raw.replace(':', "%3A")
        .replace('=', "%3D")
        .replace(',', "%2C")
}

async fn pull(t: &TestApp, token: &str, replica: &Replica, limit: Option<u32>) -> Value {
    pull_raw(t, token, &replica.cursor_query(), limit)
        .await
        .expect(StatusCode::OK)
}

/// Pulls until nothing more; returns the number of pulls.
async fn sync_all(t: &TestApp, token: &str, replica: &mut Replica, limit: Option<u32>) -> usize {
    let mut pulls = 0;
    loop {
        let answer = pull(t, token, replica, limit).await;
        replica.apply(&answer);
        pulls += 1;
        if !answer["more"].as_bool().unwrap() {
            return pulls;
        }
        assert!(pulls < 10_000, "a pull that never ends");
    }
}

/// The server's live rows of a bucket.
async fn server_live(t: &TestApp, bucket: &str) -> HashMap<(String, Uuid), Value> {
    let rows: Vec<(String, Uuid, Value)> = sqlx::query_as(
        "SELECT kind, id, data FROM sync_rows WHERE bucket = $1 AND data IS NOT NULL",
    )
    .bind(bucket)
    .fetch_all(&t.db.pools.owner)
    .await
    .unwrap();
    rows.into_iter().map(|(k, i, d)| ((k, i), d)).collect()
}

async fn server_checksum(t: &TestApp, bucket: &str) -> (i64, i64) {
    sqlx::query_as("SELECT version, checksum FROM sync_buckets WHERE bucket = $1")
        .bind(bucket)
        .fetch_optional(&t.db.pools.owner)
        .await
        .unwrap()
        .unwrap_or((0, 0))
}

fn cat(business: Uuid) -> String {
    format!("cat:{business}")
}

fn biz(business: Uuid) -> String {
    format!("biz:{business}")
}

async fn patch_product(t: &TestApp, owner: &str, id: Uuid, body: Value) {
    t.send(
        Method::PATCH,
        &format!("/api/v1/business/products/{id}"),
        Some(owner),
        Some(body),
    )
    .await
    .expect(StatusCode::OK);
}

async fn new_product(t: &TestApp, owner: &str, sku: &str) -> Uuid {
    t.product_with_variant(
        owner,
        json!({
            "sku": sku, "name": format!("Product {sku}"), "price_minor": 500, "is_published": true,
            "variants": [{"name": "One", "sku": format!("{sku}-1"), "price_adjustment_minor": 0, "stock_quantity": 1000}]
        }),
    )
    .await
    .0
}

/// A guest's cash pickup order, left pending.
async fn pending_order(t: &TestApp, shop: &Shop) -> Uuid {
    let order = fleet::guest_order(t, shop, json!({"kind": "pickup"}), 1000).await;
    order["id"].as_str().unwrap().parse().unwrap()
}

async fn customer(t: &TestApp, shop: &Shop, email: &str) -> (Uuid, String) {
    let body = t
        .send(
            Method::POST,
            "/api/v1/auth/customer/register",
            None,
            Some(json!({"store": shop.subdomain, "email": email, "password": PASSWORD, "full_name": "Ann Customer"})),
        )
        .await
        .expect(StatusCode::CREATED);
    (
        body["principal"]["id"].as_str().unwrap().parse().unwrap(),
        body["access_token"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn staff_pull_carries_catalog_orders_and_only_what_changed() {
    let t = TestApp::new().await;
    let shop = shop(&t, "syncstaff").await;
    let order = accepted_order(&t, &shop).await;
    let mut replica = Replica::default();
    sync_all(&t, &shop.owner, &mut replica, None).await;
    let catalog = replica.live(&cat(shop.business));
    assert_eq!(
        catalog[&("product".to_owned(), shop.product)]["name"],
        json!("Soup")
    );
    assert!(catalog.contains_key(&("variant".to_owned(), shop.variant)));
    // Private fields stay home.
    let product = &catalog[&("product".to_owned(), shop.product)];
    assert!(product.get("cost_minor").is_none(), "{product}");
    let orders = replica.live(&biz(shop.business));
    let view = &orders[&("order".to_owned(), order)];
    assert_eq!(view["status"], json!("confirmed"), "{view}");
    assert_eq!(view["items"].as_array().unwrap().len(), 1, "{view}");
    assert!(view.get("tracking_token_hash").is_none());
    assert_eq!(
        replica.live(&cat(shop.business)),
        server_live(&t, &cat(shop.business)).await
    );

    // Nothing changed: a tiny answer.
    let empty = pull_raw(&t, &shop.owner, &replica.cursor_query(), None).await;
    let empty = empty.expect(StatusCode::OK);
    assert_eq!(empty, json!({"buckets": [], "more": false}));
    assert!(empty.to_string().len() <= 200);

    // One product edited three times is one row.
    for name in ["Soup 2", "Soup 3", "Soup 4"] {
        patch_product(&t, &shop.owner, shop.product, json!({"name": name})).await;
    }
    let answer = pull(&t, &shop.owner, &replica, None).await;
    let pages = answer["buckets"].as_array().unwrap();
    assert_eq!(pages.len(), 1, "{answer}");
    let rows = pages[0]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{answer}");
    assert_eq!(rows[0]["data"]["name"], json!("Soup 4"));
    assert!(answer.to_string().len() <= 1024, "{answer}");
    replica.apply(&answer);

    // Saving the same values again changes nothing.
    patch_product(&t, &shop.owner, shop.product, json!({"name": "Soup 4"})).await;
    let answer = pull(&t, &shop.owner, &replica, None).await;
    assert_eq!(answer["buckets"], json!([]), "{answer}");

    // Unpublishing leaves tombstones for the product and its variant.
    patch_product(
        &t,
        &shop.owner,
        shop.product,
        json!({"is_published": false}),
    )
    .await;
    let answer = pull(&t, &shop.owner, &replica, None).await;
    let rows = answer["buckets"][0]["rows"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 2, "{answer}");
    assert!(rows.iter().all(|r| r.get("data").is_none()), "{answer}");
    replica.apply(&answer);
    // Onboarding's categories stay; the product and its variant are gone.
    assert!(
        replica
            .live(&cat(shop.business))
            .keys()
            .all(|(kind, _)| kind == "category"),
        "{:?} after {answer}",
        replica.live(&cat(shop.business))
    );
    assert_eq!(
        i64::from(replica.checksum(&cat(shop.business))),
        server_checksum(&t, &cat(shop.business)).await.1
    );
    assert_eq!(
        i64::from(replica.checksum(&biz(shop.business))),
        server_checksum(&t, &biz(shop.business)).await.1
    );

    // A fresh client is not sent tombstones.
    let mut fresh = Replica::default();
    let answer = pull(&t, &shop.owner, &fresh, None).await;
    assert!(answer["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .all(|b| b["rows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r.get("data").is_some())));
    fresh.apply(&answer);

    // A cursor from the future restarts the bucket.
    let mut future = Replica::default();
    future.cursors.insert(biz(shop.business), 1_000_000);
    let answer = pull(&t, &shop.owner, &future, None).await;
    let page = answer["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["bucket"] == json!(biz(shop.business)))
        .unwrap()
        .clone();
    assert_eq!(page["reset"], json!(true));
    future.apply(&answer);
    assert_eq!(
        future.live(&biz(shop.business)),
        replica.live(&biz(shop.business))
    );
}

#[tokio::test]
async fn customers_read_their_orders_and_the_catalog_and_nobody_reads_other_businesses() {
    let t = TestApp::new().await;
    let a = shop(&t, "synca").await;
    let b = shop(&t, "syncb").await;
    accepted_order(&t, &a).await; // a guest's order
    accepted_order(&t, &b).await;
    let (ann, ann_token) = customer(&t, &a, "ann@example.test").await;
    let placed = t
        .send_with(
            Method::POST,
            "/api/v1/orders",
            Some(&ann_token),
            Some(json!({
                "items": [{"product_id": a.product, "variant_id": a.variant, "quantity": 2}],
                "fulfilment": {"kind": "pickup"}, "payment": {"method": "cash"},
                "expected_total_minor": 2000,
            })),
            &[("Idempotency-Key", &Uuid::new_v4().to_string())],
        )
        .await
        .expect(StatusCode::CREATED);
    let mine: Uuid = placed["id"].as_str().unwrap().parse().unwrap();

    let mut replica = Replica::default();
    sync_all(&t, &ann_token, &mut replica, None).await;
    let names: Vec<&String> = replica.rows.keys().collect();
    assert_eq!(
        names,
        vec![&format!("cat:{}", a.business), &format!("cust:{ann}")]
    );
    let orders = replica.live(&format!("cust:{ann}"));
    assert_eq!(orders.len(), 1);
    assert_eq!(
        orders[&("order".to_owned(), mine)]["items"][0]["quantity"],
        json!(2)
    );
    assert!(replica
        .live(&cat(a.business))
        .contains_key(&("product".to_owned(), a.product)));

    // Cursors for buckets the principal may not read are answered with `removed`, never data.
    let foreign = format!(
        "{}=0,{}=0,{}=0",
        cat(b.business),
        biz(b.business),
        biz(a.business)
    );
    let answer = pull_raw(&t, &ann_token, &foreign, None)
        .await
        .expect(StatusCode::OK);
    let removed: Vec<&str> = answer["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(removed.len(), 3, "{answer}");
    let text = answer.to_string();
    assert!(!text.contains(&b.product.to_string()), "{answer}");
    let staff = pull_raw(
        &t,
        &a.owner,
        &format!("{}=0,cust:{ann}=0", biz(b.business)),
        None,
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(staff["removed"].as_array().unwrap().len(), 2, "{staff}");
    for page in staff["buckets"].as_array().unwrap() {
        let name = page["bucket"].as_str().unwrap();
        assert!(name.ends_with(&a.business.to_string()), "{staff}");
    }
    assert!(!staff.to_string().contains(&b.product.to_string()));

    // The runtime role sees only its principal's buckets even without the server's filter.
    let mut tx = t.db.pools.app.begin().await.unwrap();
    sqlx::query(
        "SELECT set_config('app.kind', 'staff', true), set_config('app.business_id', $1, true)",
    )
    .bind(a.business.to_string())
    .execute(&mut *tx)
    .await
    .unwrap();
    let visible: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT bucket FROM sync_rows ORDER BY 1")
            .fetch_all(&mut *tx)
            .await
            .unwrap();
    let mut expected = vec![biz(a.business), cat(a.business)];
    expected.sort();
    assert_eq!(visible, expected);
    let write = sqlx::query("UPDATE sync_buckets SET version = 0")
        .execute(&mut *tx)
        .await;
    assert!(
        write.is_err(),
        "the runtime role must not write sync tables"
    );
    tx.rollback().await.unwrap();

    // Platform admins read the platform's overview, no store's catalog or operations.
    let admin = t.admin_token().await;
    let answer = pull_raw(&t, &admin, &format!("{}=3", cat(a.business)), None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(answer["removed"], json!([cat(a.business)]), "{answer}");
    let pages: Vec<&str> = answer["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["bucket"].as_str().unwrap())
        .collect();
    assert_eq!(
        pages,
        ["adm:00000000-0000-0000-0000-000000000000"],
        "{answer}"
    );

    // Bad input is a problem, not a 500.
    for bad in ["cat:nope=0", "cat:1=0", &format!("{}=-1", cat(a.business))] {
        pull_raw(&t, &a.owner, bad, None)
            .await
            .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    }
    pull_raw(&t, &a.owner, "", Some(0))
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    pull_raw(&t, &a.owner, "", Some(5001))
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
}

#[tokio::test]
async fn small_pages_reach_the_same_state() {
    let t = TestApp::new().await;
    let shop = shop(&t, "syncpages").await;
    for i in 0..6 {
        new_product(&t, &shop.owner, &format!("P{i}")).await;
    }
    accepted_order(&t, &shop).await;
    accepted_order(&t, &shop).await;
    let mut whole = Replica::default();
    assert_eq!(sync_all(&t, &shop.owner, &mut whole, None).await, 1);
    let mut paged = Replica::default();
    let pulls = sync_all(&t, &shop.owner, &mut paged, Some(2)).await;
    assert!(pulls >= 5, "{pulls} pulls");
    assert_eq!(whole.rows, paged.rows);
    assert_eq!(whole.cursors, paged.cursors);
}

#[tokio::test]
async fn concurrent_writers_never_make_a_puller_skip_a_row() {
    let t = Arc::new(TestApp::new().await);
    let shop = Arc::new(shop(&t, "syncrace").await);
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..3 {
        let (t, shop) = (t.clone(), shop.clone());
        writers.push(tokio::spawn(async move {
            let product = new_product(&t, &shop.owner, &format!("W{w}")).await;
            for i in 0..6 {
                patch_product(&t, &shop.owner, product, json!({"price_minor": 600 + i})).await;
                if i % 2 == 0 {
                    accepted_order(&t, &shop).await;
                }
            }
        }));
    }
    let mut pullers = Vec::new();
    for p in 0..3u32 {
        let (t, shop, done) = (t.clone(), shop.clone(), done.clone());
        pullers.push(tokio::spawn(async move {
            let mut replica = Replica::default();
            let mut pulls = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let answer = pull(&t, &shop.owner, &replica, Some(2 + p)).await;
                replica.apply(&answer);
                pulls += 1;
            }
            sync_all(&t, &shop.owner, &mut replica, Some(2 + p)).await;
            (replica, pulls)
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let catalog = server_live(&t, &cat(shop.business)).await;
    let orders = server_live(&t, &biz(shop.business)).await;
    assert_eq!(orders.keys().filter(|(k, _)| k == "order").count(), 9);
    assert_eq!(catalog.keys().filter(|(k, _)| k == "product").count(), 4);
    for p in pullers {
        let (replica, pulls) = p.await.unwrap();
        assert!(pulls > 1);
        assert_eq!(replica.live(&cat(shop.business)), catalog);
        assert_eq!(replica.live(&biz(shop.business)), orders);
        assert_eq!(
            i64::from(replica.checksum(&biz(shop.business))),
            server_checksum(&t, &biz(shop.business)).await.1
        );
    }
    // The buckets hold what the tables hold.
    let published: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM products WHERE business_id = $1 AND is_published AND archived_at IS NULL",
    )
    .bind(shop.business)
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(published, 4);
    let prices: Vec<(Uuid, i64)> =
        sqlx::query_as("SELECT id, price_minor FROM products WHERE business_id = $1")
            .bind(shop.business)
            .fetch_all(&t.db.pools.owner)
            .await
            .unwrap();
    for (id, price) in prices {
        assert_eq!(
            catalog[&("product".to_owned(), id)]["price_minor"],
            json!(price)
        );
    }
}

/// The mechanism behind "no skipped row": a writer of a bucket waits for the one before it to
/// commit, so the version it gets is later than every version committed or pending before it.
#[tokio::test]
async fn a_later_writer_waits_for_the_bucket_and_gets_the_later_version() {
    let t = TestApp::new().await;
    let shop = shop(&t, "syncorder").await;
    let second = new_product(&t, &shop.owner, "SECOND").await;
    let mut replica = Replica::default();
    sync_all(&t, &shop.owner, &mut replica, None).await;
    // The writers run as the business's staff on the runtime role's pool; the owner's pool
    // watches them.
    let owner = t.db.pools.owner.clone();
    let staff = t.db.pools.app.clone();
    let business = shop.business.to_string();
    let as_staff =
        "SELECT set_config('app.kind', 'staff', true), set_config('app.business_id', $1, true)";
    let mut first = staff.begin().await.unwrap();
    sqlx::query(as_staff)
        .bind(&business)
        .execute(&mut *first)
        .await
        .unwrap();
    sqlx::query("UPDATE products SET name = 'First' WHERE id = $1")
        .bind(shop.product)
        .execute(&mut *first)
        .await
        .unwrap();
    let later = {
        let staff = staff.clone();
        tokio::spawn(async move {
            let mut tx = staff.begin().await.unwrap();
            sqlx::query(as_staff)
                .bind(&business)
                .execute(&mut *tx)
                .await
                .unwrap();
            sqlx::query("UPDATE products SET name = 'Second' WHERE id = $1")
                .bind(second)
                .execute(&mut *tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
        })
    };
    // Poll until the later writer waits on the catalog bucket's lock.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let waiting: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_locks WHERE NOT granted")
            .fetch_one(&owner)
            .await
            .unwrap();
        if waiting == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the later writer never waited"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // A pull now sees neither change.
    let answer = pull(&t, &shop.owner, &replica, None).await;
    assert_eq!(answer["buckets"], json!([]), "{answer}");
    first.commit().await.unwrap();
    later.await.unwrap();
    let answer = pull(&t, &shop.owner, &replica, None).await;
    let rows = answer["buckets"][0]["rows"].as_array().unwrap();
    let names: Vec<&Value> = rows.iter().map(|r| &r["data"]["name"]).collect();
    assert_eq!(names, vec![&json!("First"), &json!("Second")], "{answer}");
    assert_eq!(
        rows[1]["version"].as_u64().unwrap(),
        rows[0]["version"].as_u64().unwrap() + 1
    );
    replica.apply(&answer);
}

#[tokio::test]
async fn a_driver_reads_its_offers_and_deliveries_only_while_they_are_its() {
    let t = TestApp::new().await;
    let shop = shop(&t, "syncdriver").await;
    let (ann, ann_token) = driver(&t, "Ann", (60.171, 24.94), Some((shop.business, 1))).await;
    let (ben, ben_token) = driver(&t, "Ben", (60.175, 24.94), Some((shop.business, 1))).await;
    let order = accepted_order(&t, &shop).await;
    let anns = format!("drv:{ann}");
    let mut replica = Replica::default();
    sync_all(&t, &ann_token, &mut replica, None).await;
    let live = replica.live(&anns);
    assert_eq!(live.len(), 1, "{live:?}");
    let ((kind, offer), data) = live.iter().next().unwrap();
    assert_eq!(kind, "offer");
    assert_eq!(data["order"]["id"], json!(order), "{data}");
    assert!(data["order"].get("guest_phone").is_none(), "{data}");
    let offer = *offer;
    // The offer's terms travel with it, as the assignments endpoint shows them, so the offer
    // screen works offline: the store, both trips and the estimated earnings.
    let online = fleet::assignments(&t, &ann_token).await;
    let shown = &online["offers"][0];
    assert_eq!(
        data["order"]["store"]["name"], shown["store_name"],
        "{data}"
    );
    assert_eq!(data["dropoff_metres"], shown["dropoff_metres"], "{data}");
    assert_eq!(data["pickup_metres"], shown["pickup_metres"], "{data}");
    assert_eq!(
        data["estimated_earnings_minor"], shown["estimated_earnings"]["minor"],
        "{data} {shown}"
    );
    assert!(
        data["estimated_earnings_minor"].as_i64().unwrap() > 0,
        "{data}"
    );

    let taken = answer(&t, &ann_token, &offer.to_string(), "accept")
        .await
        .expect(StatusCode::OK);
    let delivery: Uuid = taken["delivery_id"].as_str().unwrap().parse().unwrap();
    sync_all(&t, &ann_token, &mut replica, None).await;
    let live = replica.live(&anns);
    assert_eq!(live.len(), 1, "{live:?}");
    let held = &live[&("delivery".to_owned(), delivery)];
    assert_eq!(held["status"], json!("assigned"), "{held}");
    assert!(held["order"]["store"]["latitude"].is_f64(), "{held}");
    // A guest's order has no customer name to show.
    assert_eq!(held["order"]["customer_name"], json!(null), "{held}");
    assert_eq!(
        held["order"]["guest_phone"],
        json!("+358401234567"),
        "{held}"
    );

    // A step pushed from the outbox goes through the delivery rules; a staff member may not.
    let client = Uuid::now_v7();
    let step = |seq| {
        mutation(
            seq,
            "delivery.step@1",
            json!({"delivery_id": delivery, "status": "arrived_at_store"}),
        )
    };
    let pushed = push(&t, &ann_token, client, &[step(1)])
        .await
        .expect(StatusCode::OK);
    assert_eq!(pushed["results"][0]["status"], json!("applied"), "{pushed}");
    assert_eq!(
        pushed["results"][0]["output"]["status"],
        json!("arrived_at_store"),
        "{pushed}"
    );
    let refused = push(&t, &shop.owner, Uuid::now_v7(), &[step(1)])
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        refused["results"][0]["code"],
        json!("forbidden"),
        "{refused}"
    );
    let bad = push(
        &t,
        &ann_token,
        client,
        &[mutation(
            2,
            "delivery.step@1",
            json!({"delivery_id": delivery, "status": "teleported"}),
        )],
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(bad["results"][0]["status"], json!("rejected"), "{bad}");
    assert_eq!(bad["last_seq"], json!(2));
    sync_all(&t, &ann_token, &mut replica, None).await;
    assert_eq!(
        replica.live(&anns)[&("delivery".to_owned(), delivery)]["status"],
        json!("arrived_at_store")
    );

    // Nobody else reads Ann's bucket: Ben and the staff are told to drop it.
    for token in [&ben_token, &shop.owner] {
        let answer = pull_raw(&t, token, &format!("{anns}=0"), None)
            .await
            .expect(StatusCode::OK);
        assert_eq!(answer["removed"], json!([anns]), "{answer}");
        // No page of Ann's bucket; the staff's own board (`biz:`) does show the delivery.
        let pages = answer["buckets"].as_array().unwrap();
        assert!(pages.iter().all(|b| b["bucket"] != json!(anns)), "{answer}");
        if token == &ben_token {
            assert!(
                !answer.to_string().contains(&delivery.to_string()),
                "{answer}"
            );
        }
    }

    // Unassigning removes the delivery (and its order) from Ann's bucket.
    t.send(
        Method::POST,
        &format!("/api/v1/business/deliveries/{delivery}/reassign"),
        Some(&shop.owner),
        None,
    )
    .await
    .expect(StatusCode::OK);
    let answer = pull(&t, &ann_token, &replica, None).await;
    let rows = answer["buckets"][0]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{answer}");
    assert!(rows[0].get("data").is_none(), "{answer}");
    replica.apply(&answer);
    assert!(replica.live(&anns).is_empty());
    assert!(!answer.to_string().contains(&order.to_string()), "{answer}");
    // Ben is offered it now.
    let mut bens = Replica::default();
    sync_all(&t, &ben_token, &mut bens, None).await;
    let live = bens.live(&format!("drv:{ben}"));
    assert_eq!(live.len(), 1, "{live:?}");
    assert!(live.keys().all(|(kind, _)| kind == "offer"));
}

// Push -------------------------------------------------------------------------------------------

fn mutation(seq: u64, name: &str, args: Value) -> Value {
    json!({"seq": seq, "id": Uuid::now_v7(), "name": name, "args": args,
           "action_time": "2026-01-02T03:04:05Z"})
}

async fn push(t: &TestApp, token: &str, client: Uuid, mutations: &[Value]) -> common::Reply {
    t.send(
        Method::POST,
        "/api/v1/sync/push",
        Some(token),
        Some(json!({"client_id": client, "mutations": mutations})),
    )
    .await
}

async fn history(t: &TestApp, order: Uuid, event: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM order_status_history WHERE order_id = $1 AND event = $2",
    )
    .bind(order)
    .bind(event)
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap()
}

#[tokio::test]
async fn pushed_mutations_apply_once_and_rejections_do_not_block() {
    let t = TestApp::new().await;
    let shop = shop(&t, "syncpush").await;
    let order = pending_order(&t, &shop).await;
    let client = Uuid::now_v7();
    let batch = vec![
        // Not accepted yet: refused, but it consumes its seq.
        mutation(1, "order.mark_ready@1", json!({"order_id": order})),
        mutation(
            2,
            "order.accept@1",
            json!({"order_id": order, "prep_time": 10}),
        ),
        mutation(3, "order.teleport@1", json!({"order_id": order})),
        mutation(4, "order.mark_ready@1", json!({"order_id": order})),
    ];
    let answer = push(&t, &shop.owner, client, &batch)
        .await
        .expect(StatusCode::OK);
    let results = answer["results"].as_array().unwrap();
    assert_eq!(answer["last_seq"], json!(4));
    assert_eq!(results[0]["status"], json!("rejected"), "{answer}");
    assert_eq!(results[0]["code"], json!("invalid_transition"), "{answer}");
    assert!(results[0]["message"].as_str().unwrap().len() > 3);
    assert_eq!(results[1]["status"], json!("applied"), "{answer}");
    assert_eq!(results[2]["code"], json!("unknown_mutation"), "{answer}");
    assert_eq!(results[3]["status"], json!("applied"), "{answer}");
    let accepted = history(&t, order, "accept").await;
    let readied = history(&t, order, "mark_ready").await;
    assert!(accepted > 0 && readied > 0);

    // A replay answers the stored results and applies nothing again.
    let again = push(&t, &shop.owner, client, &batch)
        .await
        .expect(StatusCode::OK);
    assert_eq!(again["results"], answer["results"]);
    assert_eq!(history(&t, order, "accept").await, accepted);
    assert_eq!(history(&t, order, "mark_ready").await, readied);

    // A gap stops the push before it.
    let gap = push(
        &t,
        &shop.owner,
        client,
        &[mutation(
            6,
            "order.cancel@1",
            json!({"order_id": order, "reason": "x"}),
        )],
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(gap, json!({"results": [], "last_seq": 4}));

    // The action time is kept beside the server's.
    let kept: Vec<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "SELECT action_time, applied_at FROM sync_mutations WHERE client_id = $1 ORDER BY seq",
    )
    .bind(client)
    .fetch_all(&t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(kept.len(), 4);
    assert!(kept
        .iter()
        .all(|(a, s)| a.to_rfc3339() == "2026-01-02T03:04:05+00:00" && s > a));

    // The order's new state reaches the staff's pull.
    let mut replica = Replica::default();
    sync_all(&t, &shop.owner, &mut replica, None).await;
    assert_eq!(
        replica.live(&biz(shop.business))[&("order".to_owned(), order)]["status"],
        json!("ready")
    );

    // Another account may not use the client id.
    let other = shop_owner_of_other(&t).await;
    push(
        &t,
        &other,
        client,
        &[mutation(
            5,
            "order.accept@1",
            json!({"order_id": order, "prep_time": 5}),
        )],
    )
    .await
    .expect_problem(StatusCode::CONFLICT, "conflict");

    // Bad batches.
    push(&t, &shop.owner, client, &[])
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    push(
        &t,
        &shop.owner,
        client,
        &[
            mutation(5, "order.accept@1", json!({})),
            mutation(7, "order.accept@1", json!({})),
        ],
    )
    .await
    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
}

#[tokio::test]
async fn a_full_push_of_500_goes_through_and_501_is_refused() {
    let t = TestApp::new().await;
    let shop = shop(&t, "syncfull").await;
    let client = Uuid::now_v7();
    let order = Uuid::now_v7();
    let batch: Vec<Value> = (1..=500)
        .map(|seq| {
            mutation(
                seq,
                "order.cancel@1",
                json!({"order_id": order, "reason": "a reason of a realistic length, for the body size"}),
            )
        })
        .collect();
    let answer = push(&t, &shop.owner, client, &batch)
        .await
        .expect(StatusCode::OK);
    assert_eq!(answer["last_seq"], json!(500));
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results.len(), 500);
    assert!(
        results.iter().all(|r| r["code"] == json!("not_found")),
        "{}",
        results[0]
    );
    let mut too_many = batch.clone();
    too_many.push(mutation(
        501,
        "order.cancel@1",
        json!({"order_id": order, "reason": "x"}),
    ));
    push(&t, &shop.owner, client, &too_many)
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
}

async fn shop_owner_of_other(t: &TestApp) -> String {
    let (_, owner) = t.open_store("syncother", "growth").await;
    owner
}

#[tokio::test]
async fn a_concurrent_double_push_applies_once() {
    let t = Arc::new(TestApp::new().await);
    let shop = shop(&t, "syncdouble").await;
    let order = pending_order(&t, &shop).await;
    // What one push of the batch writes, on another order and client.
    let control = pending_order(&t, &shop).await;
    push(
        &t,
        &shop.owner,
        Uuid::now_v7(),
        &[
            mutation(
                1,
                "order.accept@1",
                json!({"order_id": control, "prep_time": 10}),
            ),
            mutation(2, "order.mark_ready@1", json!({"order_id": control})),
        ],
    )
    .await
    .expect(StatusCode::OK);
    let client = Uuid::now_v7();
    let batch = Arc::new(vec![
        mutation(
            1,
            "order.accept@1",
            json!({"order_id": order, "prep_time": 10}),
        ),
        mutation(2, "order.mark_ready@1", json!({"order_id": order})),
    ]);
    // The client row exists first, so both pushes race on the mutations themselves.
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let (t, batch, owner) = (t.clone(), batch.clone(), shop.owner.clone());
        tasks.push(tokio::spawn(async move {
            push(&t, &owner, client, &batch)
                .await
                .expect(StatusCode::OK)
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    assert_eq!(answers[0]["results"], answers[1]["results"]);
    assert_eq!(
        answers[0]["results"][0]["status"],
        json!("applied"),
        "{}",
        answers[0]
    );
    assert_eq!(
        answers[0]["results"][1]["status"],
        json!("applied"),
        "{}",
        answers[0]
    );
    assert_eq!(
        history(&t, order, "accept").await,
        history(&t, control, "accept").await
    );
    assert_eq!(
        history(&t, order, "mark_ready").await,
        history(&t, control, "mark_ready").await
    );
}

/// Offers answered from the outbox follow the endpoints' rules: a decline offers the order to
/// the next driver, an accept takes the delivery, and answering an offer no longer open is
/// rejected without blocking the queue.
#[tokio::test]
async fn drivers_answer_offers_from_the_outbox() {
    let t = TestApp::new().await;
    let shop = shop(&t, "syncoffers").await;
    let (_, ann_token) = driver(&t, "Ann", (60.171, 24.94), Some((shop.business, 1))).await;
    let (ben, ben_token) = driver(&t, "Ben", (60.175, 24.94), Some((shop.business, 1))).await;
    accepted_order(&t, &shop).await;
    let first = fleet::only_offer(&fleet::assignments(&t, &ann_token).await);
    let anns = Uuid::now_v7();
    let declined = push(
        &t,
        &ann_token,
        anns,
        &[mutation(1, "offer.decline@1", json!({"offer_id": first}))],
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(
        declined["results"][0]["status"],
        json!("applied"),
        "{declined}"
    );
    let second = fleet::only_offer(&fleet::assignments(&t, &ben_token).await);
    let accept = |seq, offer: &str| mutation(seq, "offer.accept@1", json!({"offer_id": offer}));
    // Staff may not answer a driver's offer.
    let refused = push(&t, &shop.owner, Uuid::now_v7(), &[accept(1, &second)])
        .await
        .expect(StatusCode::OK);
    assert_eq!(refused["results"][0]["code"], json!("forbidden"));
    let taken = push(&t, &ben_token, Uuid::now_v7(), &[accept(1, &second)])
        .await
        .expect(StatusCode::OK);
    assert_eq!(taken["results"][0]["status"], json!("applied"), "{taken}");
    let held = fleet::assignments(&t, &ben_token).await;
    assert_eq!(
        held["assignments"][0]["delivery_id"], taken["results"][0]["output"]["delivery_id"],
        "{held}"
    );
    assert_eq!(held["assignments"][0]["driver_id"], json!(ben));
    // Ann changes her mind offline: her accept of the offer she declined is rejected, and the
    // mutation after it still applies.
    let late = push(
        &t,
        &ann_token,
        anns,
        &[
            accept(2, &first),
            mutation(3, "offer.decline@1", json!({"offer_id": Uuid::now_v7()})),
        ],
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(late["results"][0]["status"], json!("rejected"), "{late}");
    assert_eq!(late["results"][0]["code"], json!("conflict"), "{late}");
    assert_eq!(late["results"][1]["code"], json!("not_found"), "{late}");
    assert_eq!(late["last_seq"], json!(3));
}

// More rows (migration 0023) ---------------------------------------------------------------------

/// Pulls until nothing more, applying every answer and keeping its text.
async fn sync_seen(t: &TestApp, token: &str, replica: &mut Replica, seen: &mut String) {
    loop {
        let answer = pull(t, token, replica, None).await;
        replica.apply(&answer);
        seen.push_str(&answer.to_string());
        if !answer["more"].as_bool().unwrap() {
            return;
        }
    }
}

/// The live row of `kind` whose data has `field` = `value`.
#[track_caller]
fn find_row(
    replica: &Replica,
    bucket: &str,
    kind: &str,
    field: &str,
    value: &Value,
) -> (Uuid, Value) {
    let found: Vec<(Uuid, Value)> = replica
        .live(bucket)
        .into_iter()
        .filter(|((k, _), d)| k == kind && &d[field] == value)
        .map(|((_, id), d)| (id, d))
        .collect();
    assert_eq!(found.len(), 1, "{kind} with {field} = {value}: {found:?}");
    found.into_iter().next().unwrap()
}

/// The one live cart row of a customer's bucket.
#[track_caller]
fn only_cart(replica: &Replica, bucket: &str) -> (Uuid, Value) {
    let carts: Vec<(Uuid, Value)> = replica
        .live(bucket)
        .into_iter()
        .filter(|((kind, _), _)| kind == "cart")
        .map(|((_, id), data)| (id, data))
        .collect();
    assert_eq!(carts.len(), 1, "{carts:?}");
    carts.into_iter().next().unwrap()
}

async fn driver_step(t: &TestApp, token: &str, delivery: Uuid, body: Value) {
    t.send(
        Method::PATCH,
        &format!("/api/v1/driver/deliveries/{delivery}/status"),
        Some(token),
        Some(body),
    )
    .await
    .expect(StatusCode::OK);
}

/// The board works offline from its bucket: a delivery appears when dispatch starts, follows
/// the offer, the assignment and the driver's steps, and leaves when delivered; the dedicated
/// drivers, the team and the settings are there; a settings change is one new version and a
/// change of nothing shown is none; a driver's bank details, documents, licence, plate, payout
/// account and position never reach any pulled row.
#[tokio::test]
async fn the_board_follows_deliveries_and_carries_drivers_staff_and_settings() {
    let t = TestApp::new().await;
    let shop = shop(&t, "syncboard").await;
    let (ann, ann_token) = driver(&t, "Ann", (60.1712, 24.9412), Some((shop.business, 1))).await;
    let owner = &t.db.pools.owner;
    sqlx::query(
        "UPDATE driver_profiles SET vehicle_type = 'scooter', vehicle_plate = 'PLATE-77', \
         license_number = 'LICENCE-4711', insurance_policy = 'POLICY-0815', \
         bank_account_ciphertext = decode('deadbeefcafe', 'hex'), \
         bank_account_nonce = decode('000102030405060708090a0b', 'hex'), bank_account_last4 = 'QX42', \
         payout_account = 'acct_SECRET99' WHERE driver_id = $1",
    )
    .bind(ann)
    .execute(owner)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO driver_documents (id, driver_id, kind, content_hash, content_type, byte_size) \
         VALUES ($1, $2, 'license', repeat('ab', 32), 'image/png', 10)",
    )
    .bind(Uuid::now_v7())
    .bind(ann)
    .execute(owner)
    .await
    .unwrap();
    let staff: Uuid = sqlx::query_scalar("SELECT user_id FROM memberships WHERE business_id = $1")
        .bind(shop.business)
        .fetch_one(owner)
        .await
        .unwrap();
    let board = biz(shop.business);
    let mut replica = Replica::default();
    let mut seen = String::new();
    sync_seen(&t, &shop.owner, &mut replica, &mut seen).await;
    let live = replica.live(&board);
    let settings = &live[&("settings".to_owned(), shop.business)];
    assert_eq!(settings["name"], json!("Store syncboard"), "{settings}");
    assert_eq!(settings["currency"], json!("EUR"), "{settings}");
    assert_eq!(
        settings["dispatch"]["cash_cap_minor"],
        json!(20000),
        "{settings}"
    );
    assert_eq!(settings["dispatch"]["require_proof_photo"], json!(false));
    assert_eq!(settings["commerce"]["acceptance_window_secs"], json!(180));
    assert_eq!(settings["storefront"]["subdomain"], json!("syncboard"));
    let driver_row = &live[&("driver".to_owned(), ann)];
    assert_eq!(driver_row["full_name"], json!("Ann"), "{driver_row}");
    assert_eq!(driver_row["vehicle_type"], json!("scooter"), "{driver_row}");
    assert_eq!(driver_row["is_online"], json!(true), "{driver_row}");
    assert_eq!(driver_row["approved"], json!(true), "{driver_row}");
    let member = &live[&("staff".to_owned(), staff)];
    assert_eq!(member["role_key"], json!("owner"), "{member}");
    assert!(member.get("email").is_none(), "{member}");

    // Dispatch offers the order to Ann: the board shows the open offer.
    let order = accepted_order(&t, &shop).await;
    sync_seen(&t, &shop.owner, &mut replica, &mut seen).await;
    let (delivery, row) = find_row(&replica, &board, "delivery", "order_id", &json!(order));
    assert_eq!(row["status"], json!("offered"), "{row}");
    assert_eq!(row["offer"]["driver_id"], json!(ann), "{row}");
    assert_eq!(row["attempts"], json!(1), "{row}");
    assert_eq!(row["driver_id"], json!(null), "{row}");

    // Ann takes it, then reports her steps.
    let offer = fleet::only_offer(&fleet::assignments(&t, &ann_token).await);
    answer(&t, &ann_token, &offer, "accept")
        .await
        .expect(StatusCode::OK);
    sync_seen(&t, &shop.owner, &mut replica, &mut seen).await;
    let row = &replica.live(&board)[&("delivery".to_owned(), delivery)];
    assert_eq!(row["status"], json!("assigned"), "{row}");
    assert_eq!(row["driver_id"], json!(ann), "{row}");
    assert_eq!(row["driver_name"], json!("Ann"), "{row}");
    assert_eq!(row["offer"], json!(null), "{row}");
    assert!(row["assigned_at"].is_string(), "{row}");
    for (status, at) in [
        ("arrived_at_store", "arrived_at_store_at"),
        ("picked_up", "picked_up_at"),
    ] {
        driver_step(&t, &ann_token, delivery, json!({ "status": status })).await;
        let answer = pull(&t, &shop.owner, &replica, None).await;
        seen.push_str(&answer.to_string());
        replica.apply(&answer);
        let row = &replica.live(&board)[&("delivery".to_owned(), delivery)];
        assert_eq!(row["status"], json!(status), "{row}");
        assert!(row[at].is_string(), "{row}");
    }

    // A settings change is exactly one new version of the settings row.
    let before = replica.cursors[&board];
    let cap = |minor: i64| {
        t.send(
            Method::PATCH,
            "/api/v1/business/dispatch-settings",
            Some(&shop.owner),
            Some(json!({ "cash_cap_minor": minor })),
        )
    };
    cap(12_345).await.expect(StatusCode::OK);
    let answer = pull(&t, &shop.owner, &replica, None).await;
    seen.push_str(&answer.to_string());
    let pages = answer["buckets"].as_array().unwrap();
    assert_eq!(pages.len(), 1, "{answer}");
    let rows = pages[0]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{answer}");
    assert_eq!(rows[0]["kind"], json!("settings"), "{answer}");
    assert_eq!(rows[0]["version"], json!(before + 1), "{answer}");
    assert_eq!(pages[0]["version"], json!(before + 1), "{answer}");
    assert_eq!(
        rows[0]["data"]["dispatch"]["cash_cap_minor"],
        json!(12_345),
        "{answer}"
    );
    replica.apply(&answer);
    // Saving the same value, new bank details and a sign-in change nothing the board shows.
    cap(12_345).await.expect(StatusCode::OK);
    sqlx::query("UPDATE driver_profiles SET bank_account_last4 = 'ZZ11', updated_at = now() WHERE driver_id = $1")
        .bind(ann)
        .execute(owner)
        .await
        .unwrap();
    sqlx::query("UPDATE users SET last_login_at = now() WHERE id = ANY($1)")
        .bind(vec![ann, staff])
        .execute(owner)
        .await
        .unwrap();
    let answer = pull(&t, &shop.owner, &replica, None).await;
    assert_eq!(answer["buckets"], json!([]), "{answer}");
    // Going offline is.
    sqlx::query(
        "UPDATE driver_profiles SET is_online = false, online_since = NULL WHERE driver_id = $1",
    )
    .bind(ann)
    .execute(owner)
    .await
    .unwrap();
    sync_seen(&t, &shop.owner, &mut replica, &mut seen).await;
    assert_eq!(
        replica.live(&board)[&("driver".to_owned(), ann)]["is_online"],
        json!(false)
    );

    // Delivered: the delivery leaves the board (the order row says how it ended).
    driver_step(
        &t,
        &ann_token,
        delivery,
        json!({"status": "delivered", "cash_collected": {"amount_minor": 1300}}),
    )
    .await;
    let answer = pull(&t, &shop.owner, &replica, None).await;
    seen.push_str(&answer.to_string());
    let rows = answer["buckets"][0]["rows"].as_array().unwrap();
    assert!(
        rows.iter().any(|r| r["kind"] == json!("delivery")
            && r["id"] == json!(delivery)
            && r.get("data").is_none()),
        "{answer}"
    );
    replica.apply(&answer);
    assert!(!replica
        .live(&board)
        .contains_key(&("delivery".to_owned(), delivery)));
    assert_eq!(
        replica.live(&board)[&("order".to_owned(), order)]["status"],
        json!("delivered")
    );
    assert_eq!(replica.live(&board), server_live(&t, &board).await);

    // Nothing private of the driver's ever reached a pulled row.
    for secret in [
        "QX42",
        "ZZ11",
        "deadbeef",
        "LICENCE-4711",
        "POLICY-0815",
        "PLATE-77",
        "acct_SECRET99",
        "abababab",
        "bank",
        "license",
        "60.1712",
        "24.9412",
    ] {
        assert!(!seen.contains(secret), "{secret} in {seen}");
    }
}

/// A customer's bucket carries its cart (once per change, none for a change of nothing) and
/// its saved addresses; a guest's cart is published nowhere, another customer of the store
/// never reads either, and deleting the cart after checkout leaves a tombstone.
#[tokio::test]
async fn a_customer_pulls_its_cart_and_addresses_and_nobody_else_does() {
    let t = TestApp::new().await;
    let shop = shop(&t, "synccart").await;
    let (ann, ann_token) = customer(&t, &shop, "ann@example.test").await;
    let (bob, bob_token) = customer(&t, &shop, "bob@example.test").await;
    let items = format!("/api/v1/storefronts/{}/cart/items", shop.subdomain);
    let line = |quantity: u32| json!({"product_id": shop.product, "variant_id": shop.variant, "quantity": quantity});
    t.send(Method::PUT, &items, Some(&ann_token), Some(line(2)))
        .await
        .expect(StatusCode::OK);
    let anns = format!("cust:{ann}");
    let mut replica = Replica::default();
    sync_all(&t, &ann_token, &mut replica, None).await;
    let (cart, data) = only_cart(&replica, &anns);
    assert_eq!(data["items"][0]["quantity"], json!(2), "{data}");
    assert_eq!(
        data["items"][0]["variant_id"],
        json!(shop.variant),
        "{data}"
    );

    // One change is one row; setting the same quantity again is none.
    t.send(Method::PUT, &items, Some(&ann_token), Some(line(3)))
        .await
        .expect(StatusCode::OK);
    let answer = pull(&t, &ann_token, &replica, None).await;
    let pages = answer["buckets"].as_array().unwrap();
    assert_eq!(pages.len(), 1, "{answer}");
    assert_eq!(pages[0]["bucket"], json!(anns));
    let rows = pages[0]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{answer}");
    assert_eq!(rows[0]["id"], json!(cart), "{answer}");
    assert_eq!(
        rows[0]["data"]["items"][0]["quantity"],
        json!(3),
        "{answer}"
    );
    replica.apply(&answer);
    t.send(Method::PUT, &items, Some(&ann_token), Some(line(3)))
        .await
        .expect(StatusCode::OK);
    let answer = pull(&t, &ann_token, &replica, None).await;
    assert_eq!(answer["buckets"], json!([]), "{answer}");

    // A saved address.
    let address = t
        .send(
            Method::POST,
            "/api/v1/customers/me/addresses",
            Some(&ann_token),
            Some(json!({
                "label": "Home", "address_line1": "Annankatu 1", "city": "Helsinki",
                "postal_code": "00100", "country": "fi", "latitude": 60.171, "longitude": 24.941,
                "delivery_instructions": "Ring twice", "is_default": true
            })),
        )
        .await
        .expect(StatusCode::CREATED);
    let address: Uuid = address["id"].as_str().unwrap().parse().unwrap();
    sync_all(&t, &ann_token, &mut replica, None).await;
    let saved = &replica.live(&anns)[&("address".to_owned(), address)];
    assert_eq!(saved["address_line1"], json!("Annankatu 1"), "{saved}");
    assert_eq!(saved["is_default"], json!(true), "{saved}");

    // A guest's cart is published nowhere.
    let guest = t
        .send(
            Method::POST,
            &format!("/api/v1/storefronts/{}/cart", shop.subdomain),
            None,
            None,
        )
        .await
        .expect(StatusCode::CREATED);
    let token = guest["cart_token"].as_str().unwrap().to_owned();
    t.send_with(
        Method::PUT,
        &items,
        None,
        Some(line(1)),
        &[("X-Cart-Token", &token)],
    )
    .await
    .expect(StatusCode::OK);
    let published: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sync_rows WHERE kind = 'cart' AND id = $1")
            .bind(
                guest["cart"]["id"]
                    .as_str()
                    .unwrap()
                    .parse::<Uuid>()
                    .unwrap(),
            )
            .fetch_one(&t.db.pools.owner)
            .await
            .unwrap();
    assert_eq!(published, 0);

    // Bob, a customer of the same store, reads neither.
    let mut bobs = Replica::default();
    let mut seen = String::new();
    sync_seen(&t, &bob_token, &mut bobs, &mut seen).await;
    assert!(bobs.live(&format!("cust:{bob}")).is_empty());
    let answer = pull_raw(&t, &bob_token, &format!("{anns}=0"), None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(answer["removed"], json!([anns]), "{answer}");
    seen.push_str(&answer.to_string());
    for private in [
        cart.to_string(),
        address.to_string(),
        "Annankatu".to_owned(),
    ] {
        assert!(!seen.contains(&private), "{private} in {seen}");
    }

    // Checkout takes its lines from the request; the client then deletes the cart, which
    // leaves its customer's bucket with a tombstone.
    let placed = t
        .send_with(
            Method::POST,
            "/api/v1/orders",
            Some(&ann_token),
            Some(json!({
                "items": [{"product_id": shop.product, "variant_id": shop.variant, "quantity": 3}],
                "fulfilment": {"kind": "pickup"}, "payment": {"method": "cash"},
                "expected_total_minor": 3000,
            })),
            &[("Idempotency-Key", &Uuid::new_v4().to_string())],
        )
        .await
        .expect(StatusCode::CREATED);
    let order: Uuid = placed["id"].as_str().unwrap().parse().unwrap();
    t.send(
        Method::DELETE,
        &format!("/api/v1/storefronts/{}/cart", shop.subdomain),
        Some(&ann_token),
        None,
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    let answer = pull(&t, &ann_token, &replica, None).await;
    let page = answer["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["bucket"] == json!(anns))
        .unwrap()
        .clone();
    let rows = page["rows"].as_array().unwrap();
    assert!(
        rows.iter().any(|r| r["kind"] == json!("cart")
            && r["id"] == json!(cart)
            && r.get("data").is_none()),
        "{answer}"
    );
    assert!(
        rows.iter()
            .any(|r| r["kind"] == json!("order") && r["id"] == json!(order)),
        "{answer}"
    );
    replica.apply(&answer);
    let live = replica.live(&anns);
    assert!(!live.contains_key(&("cart".to_owned(), cart)));
    assert_eq!(live, server_live(&t, &anns).await);
}

/// A catalog edit that deletes a variant takes it out of the carts that held it: the cart rows
/// follow (the catalog bucket is locked before the customers').
#[tokio::test]
async fn deleting_a_variant_updates_the_carts_that_held_it() {
    let t = TestApp::new().await;
    let shop = shop(&t, "synccascade").await;
    let (ann, ann_token) = customer(&t, &shop, "ann@example.test").await;
    let (other, other_variant) = t
        .product_with_variant(
            &shop.owner,
            json!({
                "sku": "TEA", "name": "Tea", "price_minor": 300, "is_published": true,
                "variants": [{"name": "Cup", "sku": "TEA-C", "price_adjustment_minor": 0, "stock_quantity": 10}]
            }),
        )
        .await;
    let items = format!("/api/v1/storefronts/{}/cart/items", shop.subdomain);
    for (product, variant) in [(shop.product, shop.variant), (other, other_variant)] {
        t.send(
            Method::PUT,
            &items,
            Some(&ann_token),
            Some(json!({"product_id": product, "variant_id": variant, "quantity": 1})),
        )
        .await
        .expect(StatusCode::OK);
    }
    let anns = format!("cust:{ann}");
    let mut replica = Replica::default();
    sync_all(&t, &ann_token, &mut replica, None).await;
    let (cart, data) = only_cart(&replica, &anns);
    assert_eq!(data["items"].as_array().unwrap().len(), 2, "{data}");
    sqlx::query("DELETE FROM product_variants WHERE business_id = $1 AND id = $2")
        .bind(shop.business)
        .bind(other_variant)
        .execute(&t.db.pools.owner)
        .await
        .unwrap();
    sync_all(&t, &ann_token, &mut replica, None).await;
    let left = &replica.live(&anns)[&("cart".to_owned(), cart)];
    let lines = left["items"].as_array().unwrap();
    assert_eq!(lines.len(), 1, "{left}");
    assert_eq!(lines[0]["variant_id"], json!(shop.variant), "{left}");
    assert!(!replica
        .live(&cat(shop.business))
        .contains_key(&("variant".to_owned(), other_variant)));
}

/// Lock order: a dispatch transaction holds a delivery's row and writes the board's bucket at
/// commit; a cancellation of the delivery's order waits for that delivery before it takes the
/// bucket, so neither waits on the other in the opposite order (no deadlock, both commit).
#[tokio::test]
async fn a_cancellation_waits_for_the_delivery_before_the_board() {
    let t = Arc::new(TestApp::new().await);
    let shop = shop(&t, "synclocks").await;
    let order = accepted_order(&t, &shop).await;
    let delivery: Uuid = sqlx::query_scalar("SELECT id FROM deliveries WHERE order_id = $1")
        .bind(order)
        .fetch_one(&t.db.pools.owner)
        .await
        .unwrap();
    let mut dispatcher = t.db.pools.app.begin().await.unwrap();
    sqlx::query(
        "SELECT set_config('app.kind', 'dispatcher', true), set_config('app.business_id', $1, true)",
    )
    .bind(shop.business.to_string())
    .execute(&mut *dispatcher)
    .await
    .unwrap();
    sqlx::query("SELECT 1 FROM deliveries WHERE business_id = $1 AND id = $2 FOR UPDATE")
        .bind(shop.business)
        .bind(delivery)
        .execute(&mut *dispatcher)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE deliveries SET status = 'pending', updated_at = now() WHERE business_id = $1 AND id = $2",
    )
    .bind(shop.business)
    .bind(delivery)
    .execute(&mut *dispatcher)
    .await
    .unwrap();
    let cancel = {
        let (t, owner) = (t.clone(), shop.owner.clone());
        tokio::spawn(async move {
            t.send(
                Method::PATCH,
                &format!("/api/v1/business/orders/{order}"),
                Some(&owner),
                Some(json!({"type": "cancel", "reason": "oven broke"})),
            )
            .await
            .expect(StatusCode::OK)
        })
    };
    // Poll until the cancellation waits for the delivery (other tests' databases share the
    // cluster: count this database's waiters only).
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
              WHERE NOT l.granted AND a.datname = current_database()",
        )
        .fetch_one(&t.db.pools.owner)
        .await
        .unwrap();
        if waiting == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the cancellation never waited"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    dispatcher.commit().await.unwrap();
    let cancelled = cancel.await.unwrap();
    assert_eq!(cancelled["status"], json!("cancelled"), "{cancelled}");
    let mut replica = Replica::default();
    sync_all(&t, &shop.owner, &mut replica, None).await;
    let board = replica.live(&biz(shop.business));
    assert!(!board.contains_key(&("delivery".to_owned(), delivery)));
    assert_eq!(
        board[&("order".to_owned(), order)]["status"],
        json!("cancelled")
    );
}

#[tokio::test]
async fn admins_read_the_platform_overview_and_nobody_else_does() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let shop = shop(&t, "syncadmin").await;
    let (ann, _) = driver(&t, "Ann", (60.171, 24.94), Some((shop.business, 1))).await;
    let adm = "adm:00000000-0000-0000-0000-000000000000";
    let mut replica = Replica::default();
    sync_all(&t, &admin, &mut replica, None).await;
    assert_eq!(replica.live(adm), server_live(&t, adm).await);
    let live = replica.live(adm);
    let business = &live[&("business".to_owned(), shop.business)];
    assert_eq!(business["status"], json!("active"), "{business}");
    assert_eq!(business["plan"]["plan_key"], json!("growth"), "{business}");
    let courier = &live[&("driver".to_owned(), ann)];
    assert_eq!(courier["approved"], json!(true), "{courier}");
    // What the console lists, not what is private: no bank details, no contact addresses.
    let text = serde_json::to_string(&replica.live(adm).values().collect::<Vec<_>>()).unwrap();
    for secret in ["bank", "contact_email", "email", "license", "ciphertext"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }

    // Going offline is not an overview change; suspending a business is, once.
    let (version, _) = server_checksum(&t, adm).await;
    sqlx::query(
        "UPDATE driver_profiles SET is_online = false, online_since = NULL WHERE driver_id = $1",
    )
    .bind(ann)
    .execute(&t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(server_checksum(&t, adm).await.0, version);
    sqlx::query("UPDATE businesses SET status = 'suspended' WHERE id = $1")
        .bind(shop.business)
        .execute(&t.db.pools.owner)
        .await
        .unwrap();
    assert_eq!(server_checksum(&t, adm).await.0, version + 1);
    sync_all(&t, &admin, &mut replica, None).await;
    assert_eq!(
        replica.live(adm)[&("business".to_owned(), shop.business)]["status"],
        json!("suspended")
    );

    // Staff (of another store: this one is suspended now) naming the platform bucket get it
    // `removed`, never its rows.
    let other = shop_owner_of_other(&t).await;
    let answer = pull_raw(&t, &other, &format!("{adm}=0"), None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(answer["removed"], json!([adm]), "{answer}");
    assert!(!answer.to_string().contains("suspended"), "{answer}");
}
