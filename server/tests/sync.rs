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

    // Platform admins read no bucket yet.
    let admin = t.admin_token().await;
    let answer = pull_raw(&t, &admin, &format!("{}=3", cat(a.business)), None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        answer,
        json!({"buckets": [], "removed": [cat(a.business)], "more": false})
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
    assert_eq!(orders.len(), 9);
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

    let taken = answer(&t, &ann_token, &offer.to_string(), "accept")
        .await
        .expect(StatusCode::OK);
    let delivery: Uuid = taken["delivery_id"].as_str().unwrap().parse().unwrap();
    sync_all(&t, &ann_token, &mut replica, None).await;
    let live = replica.live(&anns);
    assert_eq!(live.len(), 1, "{live:?}");
    let held = &live[&("delivery".to_owned(), delivery)];
    assert_eq!(held["status"], json!("assigned"), "{held}");
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
        assert!(
            !answer.to_string().contains(&delivery.to_string()),
            "{answer}"
        );
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
