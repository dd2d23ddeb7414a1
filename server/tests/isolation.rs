//! Tenant isolation, proven three ways:
//! 1. a catalog check of the schema (RLS enabled and forced with policies on every table with a
//!    `business_id`, tenant id in keys, a runtime role that owns nothing and cannot bypass RLS);
//! 2. data checks run as the runtime role: with tenant A set, B's rows are invisible and
//!    unwritable; with no tenant set, nothing is visible;
//! 3. HTTP: A's token on B's resources answers 404 and leaves an audit row.
//!
//! Each check returns its violations instead of panicking, so the tests below can also show
//! that breaking one policy makes the checks fail.

#![allow(clippy::unwrap_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::{TestApp, TestDb, PASSWORD};
use fleetfront_server::db::{set_principal, Tx};
use serde_json::json;
use sqlx::{Connection, Row};
use uuid::Uuid;

/// Tables that carry a `business_id`.
async fn tenant_tables(db: &TestDb) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND EXISTS ( \
           SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'business_id' AND NOT a.attisdropped) \
         ORDER BY 1",
    )
    .fetch_all(&db.pools.owner)
    .await
    .unwrap()
}

/// The catalog check: every rule of the tenancy model that the schema itself can show.
async fn catalog_violations(db: &TestDb) -> Vec<String> {
    let mut violations = Vec::new();
    let rows = sqlx::query(
        "SELECT c.relname::text AS name, c.relrowsecurity AS enabled, c.relforcerowsecurity AS forced, \
           (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies, \
           (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid AND p.polcmd IN ('*', 'a', 'w') AND p.polwithcheck IS NULL) AS writes_unchecked, \
           EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
                   WHERE i.indrelid = c.oid AND i.indisprimary AND a.attname = 'business_id') AS pk_has_tenant \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND EXISTS ( \
           SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'business_id' AND NOT a.attisdropped)",
    )
    .fetch_all(&db.pools.owner)
    .await
    .unwrap();
    assert!(
        rows.len() >= 10,
        "expected the tenant tables, found {}",
        rows.len()
    );
    for row in rows {
        let name: String = row.get("name");
        if !row.get::<bool, _>("enabled") {
            violations.push(format!("{name}: row level security is not enabled"));
        }
        if !row.get::<bool, _>("forced") {
            violations.push(format!("{name}: row level security is not forced"));
        }
        if row.get::<i64, _>("policies") == 0 {
            violations.push(format!("{name}: has no policy"));
        }
        if row.get::<i64, _>("writes_unchecked") > 0 {
            violations.push(format!("{name}: a policy allows writes without WITH CHECK"));
        }
        if !row.get::<bool, _>("pk_has_tenant") {
            violations.push(format!(
                "{name}: business_id is not part of the primary key"
            ));
        }
    }
    // Foreign keys between tenant tables include business_id.
    let fks: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.conrelid::regclass::text, c.conname::text FROM pg_constraint c \
         WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace \
           AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.confrelid AND a.attname = 'business_id') \
           AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.conrelid AND a.attname = 'business_id') \
           AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey) AND a.attname = 'business_id')",
    )
    .fetch_all(&db.pools.owner)
    .await
    .unwrap();
    for (table, constraint) in fks {
        violations.push(format!(
            "{table}: foreign key {constraint} between tenant tables lacks business_id"
        ));
    }
    // The runtime role owns nothing and cannot bypass RLS.
    let role =
        sqlx::query("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = 'fleetfront_app'")
            .fetch_one(&db.pools.owner)
            .await
            .unwrap();
    if role.get::<bool, _>("rolsuper") || role.get::<bool, _>("rolbypassrls") {
        violations.push("fleetfront_app is a superuser or has BYPASSRLS".into());
    }
    let owned: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c WHERE c.relowner = (SELECT oid FROM pg_roles WHERE rolname = 'fleetfront_app') \
         UNION ALL SELECT p.proname::text FROM pg_proc p WHERE p.proowner = (SELECT oid FROM pg_roles WHERE rolname = 'fleetfront_app')",
    )
    .fetch_all(&db.pools.owner)
    .await
    .unwrap();
    for name in owned {
        violations.push(format!("fleetfront_app owns {name}"));
    }
    // SECURITY DEFINER functions pin search_path.
    let definers: Vec<String> = sqlx::query_scalar(
        "SELECT proname::text FROM pg_proc WHERE pronamespace = 'public'::regnamespace AND prosecdef \
         AND NOT coalesce(proconfig::text LIKE '%search_path=%', false)",
    )
    .fetch_all(&db.pools.owner)
    .await
    .unwrap();
    for name in definers {
        violations.push(format!(
            "SECURITY DEFINER function {name} does not pin search_path"
        ));
    }
    // Views (none yet) must be security_invoker.
    let views: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c WHERE c.relkind = 'v' AND c.relnamespace = 'public'::regnamespace \
         AND NOT coalesce(c.reloptions::text LIKE '%security_invoker=true%', false)",
    )
    .fetch_all(&db.pools.owner)
    .await
    .unwrap();
    for name in views {
        violations.push(format!("view {name} is not security_invoker"));
    }
    violations
}

/// Two onboarded businesses with rows in every tenant table.
struct World {
    t: TestApp,
    a: Uuid,
    b: Uuid,
    a_owner: String,
    a_owner_id: Uuid,
    b_owner_id: Uuid,
}

async fn world() -> World {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let (a, a_owner) = t.business(&admin, "store-a", "growth").await;
    let (b, b_owner) = t.business(&admin, "store-b", "growth").await;
    for (token, store) in [(&a_owner, "store-a"), (&b_owner, "store-b")] {
        t.send(
            Method::PATCH,
            "/api/v1/business/storefront",
            Some(token),
            Some(json!({"is_published": true})),
        )
        .await
        .expect(StatusCode::OK);
        t.send(
            Method::POST,
            "/api/v1/business/roles",
            Some(token),
            Some(json!({"key": "cashier", "name": "Cashier", "permissions": ["orders.read"]})),
        )
        .await
        .expect(StatusCode::CREATED);
        let customer = t.send(
            Method::POST,
            "/api/v1/auth/customer/register",
            None,
            Some(json!({"store": store, "email": "same@customer.test", "password": PASSWORD, "full_name": "Same Person"})),
        )
        .await
        .expect(StatusCode::CREATED);
        let address = json!({"address_line1": "Main Street 1", "city": "Helsinki", "country": "FI", "latitude": 60.17, "longitude": 24.94});
        t.send(
            Method::POST,
            "/api/v1/customers/me/addresses",
            customer["access_token"].as_str(),
            Some(address),
        )
        .await
        .expect(StatusCode::CREATED);
        catalog_rows(&t, token).await;
        order_rows(&t, store, customer["access_token"].as_str().unwrap()).await;
        cart_rows(&t, store, customer["access_token"].as_str().unwrap()).await;
        payment_rows(&t, store).await;
        payment_job_rows(&t, store).await;
        image_rows(&t, store).await;
        review_rows(&t, store).await;
    }
    driver_rows(&t, &admin, &[a, b]).await;
    dispatch_rows(&t).await;
    delivery_workflow_rows(&t).await;
    payout_rows(&t).await;
    let owner_id = |email: &str| {
        let pool = t.db.pools.owner.clone();
        let email = email.to_owned();
        async move {
            sqlx::query_scalar::<_, Uuid>("SELECT id FROM users WHERE email = $1")
                .bind(email)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let a_owner_id = owner_id("owner@store-a.test").await;
    let b_owner_id = owner_id("owner@store-b.test").await;
    World {
        t,
        a,
        b,
        a_owner,
        a_owner_id,
        b_owner_id,
    }
}

/// Catalog rows of one business, the same SKUs in both (uniqueness is per business): a
/// published product with variants, a draft, an archived product, and an inactive category.
/// A customer's cart and a guest's cart with a line each, in `store`.
async fn cart_rows(t: &TestApp, store: &str, customer: &str) {
    let (product, variant): (Uuid, Uuid) = sqlx::query_as(
        "SELECT p.id, v.id FROM products p \
         JOIN product_variants v ON v.business_id = p.business_id AND v.product_id = p.id \
         JOIN business_storefront_settings s ON s.business_id = p.business_id \
         WHERE s.subdomain = $1 AND p.sku = 'PUB-1' AND v.sku = 'PUB-1-L'",
    )
    .bind(store)
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap();
    let line = json!({"product_id": product, "variant_id": variant, "quantity": 1});
    let items = format!("/api/v1/storefronts/{store}/cart/items");
    t.send(Method::PUT, &items, Some(customer), Some(line.clone()))
        .await
        .expect(StatusCode::OK);
    let guest = t
        .send(
            Method::POST,
            &format!("/api/v1/storefronts/{store}/cart"),
            None,
            None,
        )
        .await
        .expect(StatusCode::CREATED);
    let token = guest["cart_token"].as_str().unwrap();
    t.send_with(
        Method::PUT,
        &items,
        None,
        Some(line),
        &[("x-cart-token", token)],
    )
    .await
    .expect(StatusCode::OK);
}

async fn catalog_rows(t: &TestApp, token: &str) {
    let hidden = t
        .send(
            Method::POST,
            "/api/v1/business/categories",
            Some(token),
            Some(json!({"name": "Hidden", "is_active": false})),
        )
        .await
        .expect(StatusCode::CREATED);
    for (sku, published, category) in [
        ("PUB-1", true, None),
        ("DRAFT-1", false, None),
        ("HIDDEN-1", true, hidden["id"].as_str()),
        ("GONE-1", true, None),
    ] {
        let product = t
            .send(
                Method::POST,
                "/api/v1/business/products",
                Some(token),
                Some(json!({
                    "sku": sku, "name": format!("Product {sku}"), "price_minor": 1000,
                    "is_published": published, "category_id": category,
                    "variants": [
                        {"name": "Small", "sku": format!("{sku}-S"), "price_adjustment_minor": -100, "stock_quantity": 3},
                        {"name": "Large", "sku": format!("{sku}-L"), "price_adjustment_minor": 200}
                    ]
                })),
            )
            .await
            .expect(StatusCode::CREATED);
        if sku == "GONE-1" {
            let path = format!(
                "/api/v1/business/products/{}",
                product["id"].as_str().unwrap()
            );
            t.send(Method::DELETE, &path, Some(token), None)
                .await
                .expect(StatusCode::NO_CONTENT);
        }
    }
}

/// Order rows of one business: a discount code, a customer's order using it and a guest's
/// order (both scheduled for tomorrow noon, inside the 08–20 opening hours whatever the time
/// of the test run), which fill orders, their lines, status log, tracking events, stored
/// idempotent responses and the outbox.
async fn order_rows(t: &TestApp, store: &str, customer: &str) {
    let business: Uuid = sqlx::query_scalar(
        "SELECT business_id FROM business_storefront_settings WHERE subdomain = $1",
    )
    .bind(store)
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap();
    sqlx::query("INSERT INTO discount_codes (business_id, id, code, percent_bps) VALUES ($1, $2, 'WELCOME', 1000)")
        .bind(business)
        .bind(Uuid::now_v7())
        .execute(&t.db.pools.owner)
        .await
        .unwrap();
    let (product, variant): (Uuid, Uuid) = sqlx::query_as(
        "SELECT product_id, id FROM product_variants WHERE business_id = $1 AND sku = 'PUB-1-L'",
    )
    .bind(business)
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap();
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1))
        .date_naive()
        .and_hms_opt(10, 0, 0)
        .unwrap()
        .and_utc();
    let order = |total: i64| {
        json!({
            "items": [{"product_id": product, "variant_id": variant, "quantity": 1}],
            "fulfilment": {"kind": "pickup"},
            "scheduled_for": tomorrow,
            "payment": {"method": "cash"},
            "expected_total_minor": total,
        })
    };
    let mut own = order(1080);
    own["discount_code"] = json!("welcome");
    t.send_with(
        Method::POST,
        "/api/v1/orders",
        Some(customer),
        Some(own),
        &[("Idempotency-Key", "world-customer")],
    )
    .await
    .expect(StatusCode::CREATED);
    let mut guest = order(1200);
    guest["store"] = json!(store);
    guest["email"] = json!("guest@customer.test");
    guest["phone"] = json!("+358401234567");
    t.send_with(
        Method::POST,
        "/api/v1/customers/guest-checkout",
        None,
        Some(guest),
        &[("Idempotency-Key", "world-guest")],
    )
    .await
    .expect(StatusCode::CREATED);
}

/// Payment rows of one business (migration 0008): a payment and a platform fee for each of its
/// orders, written by the owner as checkout and Stripe's webhook would write them.
async fn payment_rows(t: &TestApp, store: &str) {
    sqlx::query(
        "INSERT INTO payment_transactions (business_id, id, order_id, customer_id, amount_minor, currency, \
         payment_method, payment_gateway, gateway_transaction_id, status) \
         SELECT o.business_id, gen_random_uuid(), o.id, o.customer_id, o.total_minor, o.currency, \
                'card', 'stripe', 'pi_' || replace(o.id::text, '-', ''), 'authorized' \
           FROM orders o JOIN business_storefront_settings s ON s.business_id = o.business_id \
          WHERE s.subdomain = $1",
    )
    .bind(store)
    .execute(&t.db.pools.owner)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO platform_fees (business_id, id, order_id, fee_type, base_amount_minor, fee_bps, \
         fee_amount_minor, currency) \
         SELECT o.business_id, gen_random_uuid(), o.id, 'order_commission', o.total_minor, 250, \
                o.total_minor * 250 / 10000, o.currency \
           FROM orders o JOIN business_storefront_settings s ON s.business_id = o.business_id \
          WHERE s.subdomain = $1",
    )
    .bind(store)
    .execute(&t.db.pools.owner)
    .await
    .unwrap();
}

/// Review rows of one business (migration 0012): the customer's review of their order and an
/// approved rating of its product, written by the owner as the review endpoint and the
/// business's approval would write them.
async fn review_rows(t: &TestApp, store: &str) {
    sqlx::query(
        "INSERT INTO order_reviews (business_id, id, order_id, customer_id, overall_rating, review_text) \
         SELECT o.business_id, gen_random_uuid(), o.id, o.customer_id, 4, 'Good' \
           FROM orders o JOIN business_storefront_settings s ON s.business_id = o.business_id \
          WHERE s.subdomain = $1 AND o.customer_id IS NOT NULL",
    )
    .bind(store)
    .execute(&t.db.pools.owner)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO product_reviews (business_id, id, product_id, customer_id, order_id, rating, verified_purchase, is_approved) \
         SELECT o.business_id, gen_random_uuid(), i.product_id, o.customer_id, o.id, 5, true, true \
           FROM orders o JOIN business_storefront_settings s ON s.business_id = o.business_id \
           JOIN order_items i ON i.business_id = o.business_id AND i.order_id = o.id \
          WHERE s.subdomain = $1 AND o.customer_id IS NOT NULL",
    )
    .bind(store)
    .execute(&t.db.pools.owner)
    .await
    .unwrap();
}

/// Driver rows (migration 0017): one registered driver dedicated to both businesses through
/// the admin endpoint; `business_dispatch_settings` rows come with every business (trigger).
async fn driver_rows(t: &TestApp, admin: &str, businesses: &[Uuid]) {
    let body = json!({"email": "fleet@drivers.test", "password": PASSWORD, "full_name": "Fleet Driver", "phone": "+358401234567"});
    t.send(
        Method::POST,
        "/api/v1/auth/driver/register",
        None,
        Some(body),
    )
    .await
    .expect(StatusCode::CREATED);
    let driver: Uuid =
        sqlx::query_scalar("SELECT id FROM users WHERE email = 'fleet@drivers.test'")
            .fetch_one(&t.db.pools.owner)
            .await
            .unwrap();
    for business in businesses {
        t.send(
            Method::POST,
            &format!("/api/v1/admin/drivers/{driver}/assign"),
            Some(admin),
            Some(json!({"business_id": business, "priority": 1})),
        )
        .await
        .expect(StatusCode::CREATED);
    }
}

/// Dispatch rows (migration 0019) in both businesses: a delivery of one of each business's
/// orders with an open offer to the fleet driver, as the dispatcher writes them.
async fn dispatch_rows(t: &TestApp) {
    sqlx::query(
        "WITH o AS (SELECT DISTINCT ON (business_id) business_id, id FROM orders ORDER BY business_id, id), \
              d AS (INSERT INTO deliveries (business_id, id, order_id, status) \
                    SELECT business_id, gen_random_uuid(), id, 'offered' FROM o RETURNING business_id, id) \
         INSERT INTO dispatch_offers (business_id, id, delivery_id, driver_id, attempt, status, offered_at, expires_at, score, reason) \
         SELECT d.business_id, gen_random_uuid(), d.id, u.id, 1, 'open', now(), now() + interval '30 seconds', -500, 'dedicated #1, 500 m to pickup' \
           FROM d, users u WHERE u.email = 'fleet@drivers.test'",
    )
    .execute(&t.db.pools.owner)
    .await
    .unwrap();
}

/// Delivery workflow rows (migration 0020) for each business's delivery: a step in its log,
/// a proof photo, the driver's earnings and the cash collected, as the order system writes them.
async fn delivery_workflow_rows(t: &TestApp) {
    sqlx::query(
        "WITH d AS (SELECT d.business_id, d.id, d.order_id, u.id AS driver_id FROM deliveries d, users u \
                     WHERE u.email = 'fleet@drivers.test'), \
              e AS (INSERT INTO delivery_events (business_id, id, delivery_id, driver_id, command, from_status, \
                      to_status, outcome, by_party, actor_id, at, latitude, longitude) \
                    SELECT business_id, gen_random_uuid(), id, driver_id, 'arrive_at_store', 'assigned', \
                           'arrived_at_store', 'applied', 'driver', driver_id, now(), 60.17, 24.94 FROM d), \
              p AS (INSERT INTO delivery_proofs (business_id, delivery_id, sha256, content_type, byte_size, uploaded_by) \
                    SELECT business_id, id, encode(sha256(id::text::bytea), 'hex'), 'image/jpeg', 100, driver_id FROM d), \
              c AS (INSERT INTO driver_cash (business_id, id, driver_id, kind, delivery_id, order_id, currency, \
                      amount_minor, due_minor, shortfall_minor, at) \
                    SELECT business_id, gen_random_uuid(), driver_id, 'collected', id, order_id, 'EUR', 1300, 1300, 0, now() FROM d) \
         INSERT INTO driver_earnings (business_id, id, delivery_id, order_id, driver_id, currency, delivery_fee_minor, \
           distance_metres, distance_fee_minor, tip_minor, surge_bps, surge_minor, platform_fee_minor, gross_minor, \
           net_minor, earned_at) \
         SELECT business_id, gen_random_uuid(), id, order_id, driver_id, 'EUR', 300, 1200, 0, 0, 10000, 0, 0, 300, 300, now() FROM d",
    )
    .execute(&t.db.pools.owner)
    .await
    .unwrap();
}

/// Payout rows (migration 0021) in both businesses: a pending payout of each business and
/// the delivered order it covers, as the payout run writes them.
async fn payout_rows(t: &TestApp) {
    sqlx::query(
        "WITH o AS (SELECT DISTINCT ON (business_id) business_id, id, currency FROM orders ORDER BY business_id, id), \
              p AS (INSERT INTO business_payouts (business_id, id, payout_key, period_kind, period_start, period_end, \
                      currency, gross_revenue_minor, platform_fees_minor, driver_payments_minor, refunds_minor, \
                      cash_kept_minor, net_minor, orders) \
                    SELECT business_id, gen_random_uuid(), \
                           'payout:business:' || business_id || ':2026-06-01T00:00:00Z/2026-06-02T00:00:00Z:' || currency, \
                           'day', '2026-06-01T00:00:00Z', '2026-06-02T00:00:00Z', currency, 1300, 52, 300, 0, 0, 948, 1 \
                      FROM o RETURNING business_id, id) \
         INSERT INTO business_payout_items (business_id, kind, item_id, order_id, payout_id, at, currency, \
           total_minor, platform_fee_minor, driver_cost_minor) \
         SELECT o.business_id, 'order', o.id, o.id, p.id, '2026-06-01T12:00:00Z', o.currency, 1300, 52, 300 \
           FROM o JOIN p USING (business_id)",
    )
    .execute(&t.db.pools.owner)
    .await
    .unwrap();
}

/// Product image rows of one business (migration 0011): one image of every product (published,
/// draft, hidden and archived), written by the owner as the upload endpoint would write them.
async fn image_rows(t: &TestApp, store: &str) {
    sqlx::query(
        "INSERT INTO product_images (business_id, id, product_id, content_hash, content_type, width, height, \
           byte_size, is_primary) \
         SELECT p.business_id, gen_random_uuid(), p.id, encode(sha256(p.id::text::bytea), 'hex'), 'image/png', \
                10, 10, 100, true \
           FROM products p JOIN business_storefront_settings s ON s.business_id = p.business_id \
          WHERE s.subdomain = $1",
    )
    .bind(store)
    .execute(&t.db.pools.owner)
    .await
    .unwrap();
}

/// Rows of migration 0013 in one business: a capture job for each of its orders (as an order
/// transition writes them), and each customer's provider account and saved card.
async fn payment_job_rows(t: &TestApp, store: &str) {
    sqlx::query(
        "INSERT INTO payment_jobs (business_id, id, order_id, effect, idempotency_key, payment_method, \
         gateway_payment_id, amount_minor, currency) \
         SELECT o.business_id, gen_random_uuid(), o.id, 'capture', 'order:' || o.id || ':capture', 'card', \
                'pi_' || replace(o.id::text, '-', ''), o.total_minor, o.currency \
           FROM orders o JOIN business_storefront_settings s ON s.business_id = o.business_id \
          WHERE s.subdomain = $1",
    )
    .bind(store)
    .execute(&t.db.pools.owner)
    .await
    .unwrap();
    // Saved cards (also 0013): every customer's provider account and one saved card.
    sqlx::query(
        "INSERT INTO customer_gateway_accounts (business_id, customer_id, gateway, gateway_customer_id) \
         SELECT c.business_id, c.id, 'stripe', 'cus_' || replace(c.id::text, '-', '') \
           FROM customers c JOIN business_storefront_settings s ON s.business_id = c.business_id \
          WHERE s.subdomain = $1",
    )
    .bind(store)
    .execute(&t.db.pools.owner)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO customer_payment_methods (business_id, id, customer_id, payment_type, gateway, \
           gateway_payment_method_id, card_brand, card_last4, card_exp_month, card_exp_year, is_default) \
         SELECT c.business_id, gen_random_uuid(), c.id, 'card', 'stripe', 'pm_' || replace(c.id::text, '-', ''), \
                'visa', '4242', 12, 2034, true \
           FROM customers c JOIN business_storefront_settings s ON s.business_id = c.business_id \
          WHERE s.subdomain = $1",
    )
    .bind(store)
    .execute(&t.db.pools.owner)
    .await
    .unwrap();
}

async fn begin(db: &TestDb, kind: &str, business: Option<Uuid>) -> Tx {
    let mut tx = db.pools.app.begin().await.unwrap();
    if !kind.is_empty() {
        set_principal(&mut tx, kind, None, None, business)
            .await
            .unwrap();
    }
    tx
}

/// Runs `sql` in a savepoint; Ok(rows affected) or Err(SQLSTATE).
async fn attempt(tx: &mut Tx, sql: &str, binds: &[Uuid]) -> Result<u64, String> {
    sqlx::query("SAVEPOINT attempt")
        .execute(&mut **tx)
        .await
        .unwrap();
    let mut query = sqlx::query(sql);
    for b in binds {
        query = query.bind(*b);
    }
    let result = query.execute(&mut **tx).await;
    sqlx::query("ROLLBACK TO SAVEPOINT attempt")
        .execute(&mut **tx)
        .await
        .unwrap();
    result.map(|r| r.rows_affected()).map_err(|e| match e {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()).unwrap_or_default(),
        other => other.to_string(),
    })
}

/// The data check, as the runtime role. Returns violations.
async fn data_violations(w: &World) -> Vec<String> {
    let db = &w.t.db;
    let mut violations = Vec::new();
    let tables = tenant_tables(db).await;
    for table in &tables {
        // The check is only meaningful when both tenants have rows.
        let (ra, rb): (i64, i64) = sqlx::query_as(&format!(
            "SELECT count(*) FILTER (WHERE business_id = $1), count(*) FILTER (WHERE business_id = $2) FROM {table}"
        ))
        .bind(w.a)
        .bind(w.b)
        .fetch_one(&db.pools.owner)
        .await
        .unwrap();
        assert!(
            ra > 0 && rb > 0,
            "{table} needs rows of both tenants for the check (a={ra}, b={rb})"
        );

        for kind in [
            "staff",
            "customer",
            "auth",
            "audit",
            "driver",
            "public",
            "payment_webhook",
        ] {
            let mut tx = begin(db, kind, Some(w.a)).await;
            let foreign: i64 = sqlx::query_scalar(&format!(
                "SELECT count(*) FROM {table} WHERE business_id <> $1"
            ))
            .bind(w.a)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
            if foreign > 0 {
                violations.push(format!(
                    "{table}: {kind} of A sees {foreign} rows of another business"
                ));
            }
            match attempt(
                &mut tx,
                &format!("UPDATE {table} SET business_id = business_id WHERE business_id = $1"),
                &[w.b],
            )
            .await
            {
                Ok(0) | Err(_) => {}
                Ok(n) => violations.push(format!("{table}: {kind} of A updated {n} rows of B")),
            }
            match attempt(
                &mut tx,
                &format!("DELETE FROM {table} WHERE business_id = $1"),
                &[w.b],
            )
            .await
            {
                Ok(0) | Err(_) => {}
                Ok(n) => violations.push(format!("{table}: {kind} of A deleted {n} rows of B")),
            }
            tx.rollback().await.unwrap();
        }

        // Writing a row into B, or moving one of A's rows to B, is refused. The copy is made
        // by the owner; the runtime role (as A's staff) tries to insert it.
        let copy: Option<serde_json::Value> = sqlx::query_scalar(&format!(
            "SELECT to_jsonb(t) FROM {table} t WHERE business_id = $1 LIMIT 1"
        ))
        .bind(w.a)
        .fetch_optional(&db.pools.owner)
        .await
        .unwrap();
        let mut tx = begin(db, "staff", Some(w.a)).await;
        if let Some(mut row) = copy {
            row["business_id"] = json!(w.b);
            if row.get("id").is_some() {
                row["id"] = json!(Uuid::now_v7());
            }
            let sql = format!("INSERT INTO {table} SELECT * FROM jsonb_populate_record(NULL::{table}, $1::text::jsonb)");
            sqlx::query("SAVEPOINT attempt")
                .execute(&mut *tx)
                .await
                .unwrap();
            let result = sqlx::query(&sql)
                .bind(row.to_string())
                .execute(&mut *tx)
                .await;
            sqlx::query("ROLLBACK TO SAVEPOINT attempt")
                .execute(&mut *tx)
                .await
                .unwrap();
            if result.is_ok() {
                violations.push(format!("{table}: A's staff inserted a row into B"));
            }
        }
        if let Ok(n @ 1..) = attempt(
            &mut tx,
            &format!("UPDATE {table} SET business_id = $2 WHERE business_id = $1"),
            &[w.a, w.b],
        )
        .await
        {
            violations.push(format!("{table}: A's staff moved {n} rows to B"));
        }
        tx.rollback().await.unwrap();

        // No principal: nothing visible.
        let mut tx = begin(db, "", None).await;
        let visible: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        if visible > 0 {
            violations.push(format!("{table}: {visible} rows visible with no principal"));
        }
        tx.rollback().await.unwrap();
    }
    violations
}

#[tokio::test]
async fn schema_passes_the_catalog_check() {
    let db = common::fresh_db().await;
    let violations = catalog_violations(&db).await;
    assert!(violations.is_empty(), "{violations:#?}");
}

#[tokio::test]
async fn runtime_role_sees_and_writes_only_its_tenant() {
    let w = world().await;
    let violations = data_violations(&w).await;
    assert!(violations.is_empty(), "{violations:#?}");
}

#[tokio::test]
async fn disabling_one_tables_rls_is_caught_by_both_checks() {
    let w = world().await;
    let mut su = w.t.db.superuser().await;
    sqlx::query("ALTER TABLE roles NO FORCE ROW LEVEL SECURITY")
        .execute(&mut su)
        .await
        .unwrap();
    sqlx::query("ALTER TABLE roles DISABLE ROW LEVEL SECURITY")
        .execute(&mut su)
        .await
        .unwrap();
    su.close().await.unwrap();
    let catalog = catalog_violations(&w.t.db).await;
    assert!(
        catalog
            .iter()
            .any(|v| v.starts_with("roles: row level security is not enabled")),
        "{catalog:#?}"
    );
    let data = data_violations(&w).await;
    assert!(
        data.iter()
            .any(|v| v.starts_with("roles:") && v.contains("sees")),
        "{data:#?}"
    );
}

#[tokio::test]
async fn a_permissive_policy_is_caught_by_the_data_check() {
    let w = world().await;
    let mut su = w.t.db.superuser().await;
    sqlx::query("DROP POLICY tenant_staff ON memberships")
        .execute(&mut su)
        .await
        .unwrap();
    sqlx::query("CREATE POLICY tenant_staff ON memberships USING (true) WITH CHECK (true)")
        .execute(&mut su)
        .await
        .unwrap();
    su.close().await.unwrap();
    let data = data_violations(&w).await;
    assert!(
        data.iter()
            .any(|v| v.starts_with("memberships:") && v.contains("sees")),
        "{data:#?}"
    );
    assert!(
        data.iter()
            .any(|v| v.starts_with("memberships:") && v.contains("no principal")),
        "{data:#?}"
    );
}

#[tokio::test]
async fn a_public_policy_that_forgets_the_tenant_is_caught_by_the_data_check() {
    let w = world().await;
    let mut su = w.t.db.superuser().await;
    sqlx::query("DROP POLICY public_read ON products")
        .execute(&mut su)
        .await
        .unwrap();
    sqlx::query(
        "CREATE POLICY public_read ON products FOR SELECT USING ((select app_kind()) = 'public' AND is_published)",
    )
    .execute(&mut su)
    .await
    .unwrap();
    su.close().await.unwrap();
    let data = data_violations(&w).await;
    assert!(
        data.iter()
            .any(|v| v.starts_with("products: public of A sees")),
        "{data:#?}"
    );
}

#[tokio::test]
async fn dropping_a_policy_is_caught_by_the_catalog_check() {
    let db = common::fresh_db().await;
    let mut su = db.superuser().await;
    sqlx::query("DROP POLICY tenant_customer_tokens ON customer_refresh_tokens")
        .execute(&mut su)
        .await
        .unwrap();
    sqlx::query("ALTER TABLE outbox_messages NO FORCE ROW LEVEL SECURITY")
        .execute(&mut su)
        .await
        .unwrap();
    su.close().await.unwrap();
    let violations = catalog_violations(&db).await;
    assert!(
        violations.contains(&"customer_refresh_tokens: has no policy".to_owned()),
        "{violations:#?}"
    );
    assert!(
        violations.contains(&"outbox_messages: row level security is not forced".to_owned()),
        "{violations:#?}"
    );
}

#[tokio::test]
async fn runtime_role_cannot_change_or_delete_audit_rows() {
    let w = world().await;
    let mut tx = begin(&w.t.db, "staff", Some(w.a)).await;
    let visible: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert!(visible > 0, "A's staff sees A's audit rows");
    let update = attempt(
        &mut tx,
        "UPDATE audit_log SET action = 'x' WHERE business_id = $1",
        &[w.a],
    )
    .await;
    assert_eq!(update, Err("42501".into()), "no UPDATE privilege");
    let delete = attempt(
        &mut tx,
        "DELETE FROM audit_log WHERE business_id = $1",
        &[w.a],
    )
    .await;
    assert_eq!(delete, Err("42501".into()), "no DELETE privilege");
    tx.rollback().await.unwrap();
    // Even the owner cannot rewrite history: the trigger refuses.
    let owner_delete = sqlx::query("DELETE FROM audit_log")
        .execute(&w.t.db.pools.owner)
        .await;
    assert!(
        owner_delete.is_err(),
        "the append-only trigger refuses deletes"
    );
}

async fn denied_audit_rows(w: &World, path: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE business_id = $1 AND outcome = 'denied' AND action LIKE '%' || $2")
        .bind(w.a)
        .bind(path)
        .fetch_one(&w.t.db.pools.owner)
        .await
        .unwrap()
}

#[tokio::test]
async fn http_cross_tenant_access_is_404_and_audited() {
    let w = world().await;
    let t = &w.t;
    let b_roles: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM roles WHERE business_id = $1")
        .bind(w.b)
        .fetch_all(&t.db.pools.owner)
        .await
        .unwrap();
    let b_custom_role: Uuid =
        sqlx::query_scalar("SELECT id FROM roles WHERE business_id = $1 AND key = 'cashier'")
            .bind(w.b)
            .fetch_one(&t.db.pools.owner)
            .await
            .unwrap();
    assert!(!b_roles.is_empty());
    // Collection endpoints scoped by the token show only A's data (checked before A's own
    // attempts below put B's ids into A's audit log).
    for path in [
        "/api/v1/business/storefront",
        "/api/v1/business/staff",
        "/api/v1/business/roles",
        "/api/v1/business/audit-log",
        "/api/v1/business/products",
        "/api/v1/business/categories",
        "/api/v1/business/orders",
        "/api/v1/business/commerce-settings",
        "/api/v1/business/discount-codes",
        "/api/v1/business/dispatch",
        "/api/v1/business/payouts",
    ] {
        let body = t
            .send(Method::GET, path, Some(&w.a_owner), None)
            .await
            .expect(StatusCode::OK)
            .to_string();
        assert!(!body.contains(&w.b.to_string()), "{path} leaks B's id");
        assert!(
            !body.contains(&w.b_owner_id.to_string()),
            "{path} leaks B's owner"
        );
        assert!(!body.contains("store-b"), "{path} leaks B's subdomain");
        for role in &b_roles {
            assert!(!body.contains(&role.to_string()), "{path} leaks B's role");
        }
    }
    let cases = [
        (
            Method::PATCH,
            format!("/api/v1/business/staff/{}", w.b_owner_id),
            Some(json!({"role": "staff"})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/business/staff/{}", w.b_owner_id),
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/business/roles/{b_custom_role}"),
            Some(json!({"name": "Hacked"})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/business/roles/{b_custom_role}"),
            None,
        ),
    ];
    let b_order: Uuid = sqlx::query_scalar("SELECT id FROM orders WHERE business_id = $1 LIMIT 1")
        .bind(w.b)
        .fetch_one(&t.db.pools.owner)
        .await
        .unwrap();
    let b_code: Uuid =
        sqlx::query_scalar("SELECT id FROM discount_codes WHERE business_id = $1 LIMIT 1")
            .bind(w.b)
            .fetch_one(&t.db.pools.owner)
            .await
            .unwrap();
    let b_dispatched: Uuid =
        sqlx::query_scalar("SELECT order_id FROM deliveries WHERE business_id = $1 LIMIT 1")
            .bind(w.b)
            .fetch_one(&t.db.pools.owner)
            .await
            .unwrap();
    let fleet_driver: Uuid =
        sqlx::query_scalar("SELECT id FROM users WHERE email = 'fleet@drivers.test'")
            .fetch_one(&t.db.pools.owner)
            .await
            .unwrap();
    let (b_delivery, b_proof): (Uuid, String) = sqlx::query_as(
        "SELECT delivery_id, sha256 FROM delivery_proofs WHERE business_id = $1 LIMIT 1",
    )
    .bind(w.b)
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap();
    let cases = cases.into_iter().chain([
        (
            Method::GET,
            format!("/api/v1/business/deliveries/{b_delivery}"),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/business/deliveries/{b_delivery}/proof/{b_proof}"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/business/deliveries/{b_delivery}/reassign"),
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/business/discount-codes/{b_code}"),
            Some(json!({"amount_minor": 1})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/business/discount-codes/{b_code}"),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/business/orders/{b_order}"),
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/business/orders/{b_order}"),
            Some(json!({"type": "accept", "prep_time": 10})),
        ),
        (
            Method::POST,
            format!("/api/v1/business/orders/{b_dispatched}/assign"),
            Some(json!({"driver_id": fleet_driver})),
        ),
    ]);
    for (method, path, body) in cases {
        let before = denied_audit_rows(&w, &path).await;
        let reply = t.send(method.clone(), &path, Some(&w.a_owner), body).await;
        reply.expect_problem(StatusCode::NOT_FOUND, "not_found");
        assert_eq!(
            denied_audit_rows(&w, &path).await,
            before + 1,
            "{method} {path} was not audited"
        );
    }
    // B is untouched.
    let b_owner_role: String = sqlx::query_scalar(
        "SELECT r.key FROM memberships m JOIN roles r ON r.business_id = m.business_id AND r.id = m.role_id WHERE m.business_id = $1 AND m.user_id = $2",
    )
    .bind(w.b)
    .bind(w.b_owner_id)
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(b_owner_role, "owner");
    let name: String =
        sqlx::query_scalar("SELECT name FROM roles WHERE business_id = $1 AND id = $2")
            .bind(w.b)
            .bind(b_custom_role)
            .fetch_one(&t.db.pools.owner)
            .await
            .unwrap();
    assert_eq!(name, "Cashier");

    assert!(w.a_owner_id != w.b_owner_id);
}

#[tokio::test]
async fn staff_and_customers_cannot_use_admin_endpoints() {
    let w = world().await;
    let t = &w.t;
    let customer = t
        .send(
            Method::POST,
            "/api/v1/auth/customer/login",
            None,
            Some(json!({"store": "store-a", "email": "same@customer.test", "password": PASSWORD})),
        )
        .await
        .expect(StatusCode::OK)["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    for token in [&w.a_owner, &customer] {
        for (method, path) in [
            (Method::GET, "/api/v1/admin/businesses".to_owned()),
            (Method::GET, format!("/api/v1/admin/businesses/{}", w.b)),
            (Method::GET, "/api/v1/admin/platform-metrics".to_owned()),
            (Method::GET, "/api/v1/admin/plans".to_owned()),
        ] {
            t.send(method, &path, Some(token), None)
                .await
                .expect_problem(StatusCode::FORBIDDEN, "forbidden");
        }
    }
    // Customers cannot use the business API of their own store either.
    t.send(Method::GET, "/api/v1/business/staff", Some(&customer), None)
        .await
        .expect_problem(StatusCode::FORBIDDEN, "forbidden");
    let denied: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE business_id = $1 AND outcome = 'denied'",
    )
    .bind(w.a)
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap();
    assert!(denied >= 9, "every refusal is audited, found {denied}");
}

/// The `public` principal (storefront requests) reads only what a store shows to anybody, even
/// when a query asks for everything, and writes nothing.
#[tokio::test]
async fn public_principal_reads_only_the_published_catalog() {
    let w = world().await;
    let db = &w.t.db;
    let mut tx = begin(db, "public", Some(w.a)).await;
    let skus: Vec<String> = sqlx::query_scalar("SELECT sku FROM products ORDER BY sku")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(
        skus,
        ["HIDDEN-1", "PUB-1"],
        "drafts and archived products are hidden"
    );
    let variants: i64 = sqlx::query_scalar("SELECT count(*) FROM product_variants")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(variants, 4, "only the variants of visible products");
    let reviews: i64 = sqlx::query_scalar("SELECT count(*) FROM product_reviews")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(reviews, 1, "only approved reviews of visible products");
    let images: i64 = sqlx::query_scalar("SELECT count(*) FROM product_images")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(images, 2, "only the images of visible products");
    let inactive: i64 =
        sqlx::query_scalar("SELECT count(*) FROM product_categories WHERE NOT is_active")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    assert_eq!(inactive, 0, "inactive categories are hidden");
    let storefronts: i64 = sqlx::query_scalar("SELECT count(*) FROM business_storefront_settings")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(storefronts, 1, "its own published storefront");
    for table in [
        "customers",
        "memberships",
        "roles",
        "business_subscriptions",
        "audit_log",
        "outbox_messages",
        "order_reviews",
    ] {
        let visible: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(visible, 0, "public sees {table}");
    }
    let writes = [
        "UPDATE products SET price_minor = 1 WHERE business_id = $1",
        "DELETE FROM product_variants WHERE business_id = $1",
        "DELETE FROM product_images WHERE business_id = $1",
        "UPDATE product_categories SET name = 'x' WHERE business_id = $1",
        "UPDATE business_storefront_settings SET logo_url = NULL WHERE business_id = $1",
    ];
    for sql in writes {
        let result = attempt(&mut tx, sql, &[w.a]).await;
        assert!(matches!(result, Ok(0) | Err(_)), "{sql}: {result:?}");
    }
    tx.rollback().await.unwrap();

    // An unpublished storefront is invisible to its public principal.
    sqlx::query(
        "UPDATE business_storefront_settings SET is_published = false WHERE business_id = $1",
    )
    .bind(w.a)
    .execute(&db.pools.owner)
    .await
    .unwrap();
    let mut tx = begin(db, "public", Some(w.a)).await;
    let storefronts: i64 = sqlx::query_scalar("SELECT count(*) FROM business_storefront_settings")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(storefronts, 0);
    tx.rollback().await.unwrap();
}
