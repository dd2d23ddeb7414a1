//! Demo data for `fleetfront serve --demo`: a platform admin, three businesses on different
//! plans with their teams, customers and a few products, and two approved drivers (one
//! dedicated to Pizza Palace, one in the shared pool, which the stores whose plans include it
//! use). Idempotent: a second
//! run changes nothing. Every account's password is listed in the README.

use fleetfront_domain::api::admin::{CreateBusinessRequest, LocationInput, OwnerInput};
use fleetfront_domain::driver::BankAccount;
use fleetfront_domain::hours::OperatingHours;
use fleetfront_domain::value::Email;

use crate::app::App;
use crate::auth::hash_secret;
use crate::db::{new_id, set_principal};
use crate::pg::Pools;
use crate::tenancy;

/// The demo admin's email.
pub const ADMIN_EMAIL: &str = "admin@fleetfront.test";
/// Password of every demo account.
pub const PASSWORD: &str = "fleetfront-demo";

struct DemoStore {
    name: &'static str,
    subdomain: &'static str,
    plan: &'static str,
    currency: &'static str,
    time_zone: &'static str,
    location: (f64, f64),
    categories: &'static [&'static str],
    /// (SKU, name, description, price in minor units, category slug); the first product of
    /// each store also gets two size variants.
    products: &'static [(&'static str, &'static str, &'static str, i64, &'static str)],
}

const STORES: &[DemoStore] = &[
    DemoStore {
        name: "Pizza Palace",
        subdomain: "pizzapalace",
        plan: "starter",
        currency: "EUR",
        time_zone: "Europe/Helsinki",
        location: (60.1699, 24.9384),
        categories: &["Pizzas", "Drinks", "Desserts"],
        products: &[
            (
                "PZ-MARG",
                "Margherita",
                "Tomato, mozzarella and basil",
                990,
                "pizzas",
            ),
            (
                "PZ-PEPP",
                "Pepperoni",
                "Tomato, mozzarella and spicy salami",
                1190,
                "pizzas",
            ),
            ("DR-COLA", "Cola", "A cold 0.33 l can", 300, "drinks"),
            (
                "DS-TIRA",
                "Tiramisu",
                "Coffee, mascarpone and cocoa",
                550,
                "desserts",
            ),
        ],
    },
    DemoStore {
        name: "Green Grocer",
        subdomain: "greengrocer",
        plan: "growth",
        currency: "EUR",
        time_zone: "Europe/Berlin",
        location: (52.52, 13.405),
        categories: &["Fruit", "Vegetables", "Bakery"],
        products: &[
            (
                "FR-APPL",
                "Apples",
                "Crisp local apples, per kilo",
                349,
                "fruit",
            ),
            (
                "VG-CARR",
                "Carrots",
                "Organic carrots, per kilo",
                199,
                "vegetables",
            ),
            (
                "BK-SOUR",
                "Sourdough loaf",
                "Baked this morning",
                450,
                "bakery",
            ),
        ],
    },
    DemoStore {
        name: "Sushi Central",
        subdomain: "sushicentral",
        plan: "professional",
        currency: "USD",
        time_zone: "America/New_York",
        location: (40.7128, -74.006),
        categories: &["Nigiri", "Rolls", "Sides"],
        products: &[
            ("NG-SALM", "Salmon nigiri", "Two pieces", 650, "nigiri"),
            (
                "RL-CALI",
                "California roll",
                "Crab, avocado and cucumber, eight pieces",
                1100,
                "rolls",
            ),
            ("SD-EDAM", "Edamame", "Steamed, with sea salt", 450, "sides"),
        ],
    },
];

/// Creates the platform admin account given, or reports that it exists.
///
/// # Errors
/// Database errors; an existing account of another kind.
pub async fn create_admin(
    pools: &Pools,
    email: &Email,
    full_name: &str,
    password: &str,
) -> anyhow::Result<bool> {
    let existing: Option<String> = sqlx::query_scalar("SELECT kind FROM users WHERE email = $1")
        .bind(email.as_str())
        .fetch_optional(&pools.owner)
        .await?;
    match existing.as_deref() {
        Some("admin") => return Ok(false),
        Some(kind) => anyhow::bail!("{} already belongs to a {kind} account", email.as_str()),
        None => {}
    }
    let hash = hash_secret(password.to_owned())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    sqlx::query("INSERT INTO users (id, kind, email, password_hash, full_name, status) VALUES ($1, 'admin', $2, $3, $4, 'active')")
        .bind(new_id())
        .bind(email.as_str())
        .bind(hash)
        .bind(full_name)
        .execute(&pools.owner)
        .await?;
    Ok(true)
}

/// A demo driver: approved, with a complete profile, an approved licence, and a week of
/// availability; `dedicated_to` names the store it is dedicated to (none: the shared pool).
struct DemoDriver {
    email: &'static str,
    name: &'static str,
    vehicle: &'static str,
    plate: Option<&'static str>,
    bank_account: &'static str,
    dedicated_to: Option<&'static str>,
}

const DRIVERS: &[DemoDriver] = &[
    DemoDriver {
        email: "driver@fleetfront.test",
        name: "Demo Driver",
        vehicle: "scooter",
        plate: Some("ABC-123"),
        bank_account: "FI2112345600000785",
        dedicated_to: Some("pizzapalace"),
    },
    DemoDriver {
        email: "driver2@fleetfront.test",
        name: "Pool Driver",
        vehicle: "bicycle",
        plate: None,
        bank_account: "DE89370400440532013000",
        dedicated_to: None,
    },
];

/// A licence "scan" for the demo drivers: a minimal PDF.
const DEMO_LICENSE_PDF: &[u8] = b"%PDF-1.4\n% Fleetfront demo driving licence\n%%EOF\n";

/// Creates (once) and completes (when still incomplete) a demo driver.
async fn seed_driver(
    pools: &Pools,
    app: &App,
    admin: uuid::Uuid,
    password_hash: &str,
    driver: &DemoDriver,
) -> anyhow::Result<()> {
    let mut tx = pools.owner.begin().await?;
    sqlx::query(
        "INSERT INTO users (id, kind, email, password_hash, full_name, phone, status) \
         VALUES ($1, 'driver', $2, $3, $4, '+358409876543', 'active') ON CONFLICT (email) DO NOTHING",
    )
    .bind(new_id())
    .bind(driver.email)
    .bind(password_hash)
    .bind(driver.name)
    .execute(&mut *tx)
    .await?;
    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind(driver.email)
        .fetch_one(&mut *tx)
        .await?;
    let incomplete: bool = sqlx::query_scalar(
        "SELECT vehicle_type IS NULL FROM driver_profiles WHERE driver_id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    if incomplete {
        let account = BankAccount::parse(driver.bank_account)
            .map_err(|e| anyhow::anyhow!("demo bank account: {}", e.message))?;
        let key = app.data_key().map_err(|e| anyhow::anyhow!("{e}"))?;
        let sealed = crate::drivers::seal_bank_account(&key, id, &account)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let today = app.clock.now().date_naive();
        sqlx::query(
            "UPDATE driver_profiles SET vehicle_type = $2, vehicle_plate = $3, license_number = $4, \
             license_expires_on = $5, insurance_policy = $6, insurance_expires_on = $5, time_zone = 'Europe/Helsinki', \
             bank_account_ciphertext = $7, bank_account_nonce = $8, bank_account_last4 = $9, \
             approved_at = now(), approved_by = $10, rating_tenths = 48 WHERE driver_id = $1",
        )
        .bind(id)
        .bind(driver.vehicle)
        .bind(driver.plate)
        .bind(format!("FI-DEMO-{}", &id.simple().to_string()[..8]))
        .bind(today + chrono::Days::new(3 * 365))
        .bind("DEMO-POLICY-1")
        .bind(sealed.ciphertext)
        .bind(sealed.nonce)
        .bind(account.last4())
        .bind(admin)
        .execute(&mut *tx)
        .await?;
        let hash = app
            .blob_store()
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .put(std::sync::Arc::new(DEMO_LICENSE_PDF.to_vec()))
            .await?;
        sqlx::query(
            "INSERT INTO driver_documents (id, driver_id, kind, content_hash, content_type, byte_size, status, reviewed_at, reviewed_by) \
             VALUES ($1, $2, 'license', $3, 'application/pdf', $4, 'approved', now(), $5)",
        )
        .bind(new_id())
        .bind(id)
        .bind(hash.as_str())
        .bind(i64::try_from(DEMO_LICENSE_PDF.len())?)
        .bind(admin)
        .execute(&mut *tx)
        .await?;
        for day in 0..7i16 {
            sqlx::query(
                "INSERT INTO driver_availability_windows (driver_id, id, day_of_week, start_time, end_time) \
                 VALUES ($1, $2, $3, '00:00', '24:00')",
            )
            .bind(id)
            .bind(new_id())
            .bind(day)
            .execute(&mut *tx)
            .await?;
        }
    }
    if let Some(store) = driver.dedicated_to {
        sqlx::query(
            "INSERT INTO driver_businesses (business_id, driver_id, priority) \
             SELECT business_id, $1, 1 FROM business_storefront_settings WHERE subdomain = $2 \
             ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(store)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Seeds the demo data.
///
/// # Errors
/// Database errors.
pub async fn seed(pools: &Pools, app: &App) -> anyhow::Result<()> {
    let admin_email = Email::parse(ADMIN_EMAIL).expect("valid demo email");
    create_admin(pools, &admin_email, "Demo Admin", PASSWORD).await?;
    let admin: uuid::Uuid = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind(ADMIN_EMAIL)
        .fetch_one(&pools.owner)
        .await?;
    let password_hash = hash_secret(PASSWORD.to_owned())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    for store in STORES {
        let exists: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM business_storefront_settings WHERE subdomain = $1)",
        )
        .bind(store.subdomain)
        .fetch_one(&pools.owner)
        .await?;
        if exists {
            continue;
        }
        let request = CreateBusinessRequest {
            name: store.name.to_owned(),
            contact_email: format!("hello@{}.test", store.subdomain),
            contact_phone: Some("+358401234567".to_owned()),
            currency: store.currency.to_owned(),
            time_zone: store.time_zone.to_owned(),
            delivery_radius_m: 5000,
            location: LocationInput {
                latitude: store.location.0,
                longitude: store.location.1,
            },
            operating_hours: Some(
                OperatingHours::every_day("09:00", "22:00").expect("valid hours"),
            ),
            plan: store.plan.to_owned(),
            billing_interval: None,
            owner: OwnerInput {
                email: format!("owner@{}.test", store.subdomain),
                full_name: format!("{} Owner", store.name),
                password: Some(PASSWORD.to_owned()),
            },
            categories: store.categories.iter().map(|c| (*c).to_owned()).collect(),
            subdomain: store.subdomain.to_owned(),
        };
        let onboarding = request
            .parse()
            .map_err(|e| anyhow::anyhow!("demo data invalid: {e:?}"))?;
        let mut tx = app.db.pool.begin().await?;
        set_principal(&mut tx, "admin", Some(admin), None, None)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let done = tenancy::onboard(&mut tx, app, &onboarding)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        sqlx::query(
            "UPDATE business_storefront_settings SET is_published = true WHERE business_id = $1",
        )
        .bind(done.business.0)
        .execute(&mut *tx)
        .await?;
        for (role, who) in [
            ("manager", "manager"),
            ("dispatcher", "dispatch"),
            ("staff", "counter"),
        ] {
            let email =
                Email::parse(&format!("{who}@{}.test", store.subdomain)).expect("valid demo email");
            let (user, _) = tenancy::find_or_create_staff(
                &mut tx,
                &email,
                &format!("{} {}", store.name, role),
                Some(password_hash.clone()),
                app.clock.now(),
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            sqlx::query("INSERT INTO memberships (business_id, user_id, role_id) SELECT $1, $2, id FROM roles WHERE business_id = $1 AND key = $3")
                .bind(done.business.0)
                .bind(user)
                .bind(role)
                .execute(&mut *tx)
                .await?;
        }
        for (i, (sku, name, description, price, category)) in store.products.iter().enumerate() {
            let product = new_id();
            sqlx::query(
                "INSERT INTO products (business_id, id, sku, name, description, price_minor, category_id, is_published, preparation_time_minutes) \
                 SELECT $1, $2, $3, $4, $5, $6, id, true, 10 FROM product_categories WHERE business_id = $1 AND slug = $7",
            )
            .bind(done.business.0)
            .bind(product)
            .bind(sku)
            .bind(name)
            .bind(description)
            .bind(price)
            .bind(category)
            .execute(&mut *tx)
            .await?;
            if i == 0 {
                for (size, adjustment) in [("Regular", 0i64), ("Large", 300)] {
                    sqlx::query(
                        "INSERT INTO product_variants (business_id, id, product_id, name, sku, price_adjustment_minor, options) \
                         VALUES ($1, $2, $3, $4, $5, $6, jsonb_build_object('size', lower($4)))",
                    )
                    .bind(done.business.0)
                    .bind(new_id())
                    .bind(product)
                    .bind(size)
                    .bind(format!("{sku}-{}", size.to_uppercase()))
                    .bind(adjustment)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        for (i, name) in ["Alex Customer", "Sam Customer"].iter().enumerate() {
            sqlx::query("INSERT INTO customers (business_id, id, email, phone, full_name, password_hash) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(done.business.0)
                .bind(new_id())
                .bind(format!("customer{}@{}.test", i + 1, store.subdomain))
                .bind("+358501234567")
                .bind(name)
                .bind(&password_hash)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        tracing::info!(
            store = store.subdomain,
            plan = store.plan,
            "demo business created"
        );
    }
    for driver in DRIVERS {
        seed_driver(pools, app, admin, &password_hash, driver).await?;
    }
    // The stores whose plans include the shared driver pool use it.
    sqlx::query(
        "UPDATE business_dispatch_settings d SET shared_pool_opt_in = true FROM business_storefront_settings s \
         WHERE s.business_id = d.business_id AND s.subdomain IN ('greengrocer', 'sushicentral') AND NOT d.shared_pool_opt_in",
    )
    .execute(&pools.owner)
    .await?;
    // Drivers' pay in euros: the delivery fee and tip, 0.50 per km beyond the first 2 km, and
    // a 10 % platform commission on the fees (admins change it at /api/v1/admin/driver-rates).
    sqlx::query(
        "INSERT INTO driver_pay_rates (currency, per_km_minor, included_metres, commission_bps, surge_bps) \
         VALUES ('EUR', 50, 2000, 1000, 10000) ON CONFLICT (currency) DO NOTHING",
    )
    .execute(&pools.owner)
    .await?;
    // Test-mode connected accounts to pay out to (transfers need Stripe configured).
    sqlx::query(
        "UPDATE businesses b SET payout_account = 'acct_demo' || s.subdomain FROM business_storefront_settings s \
         WHERE s.business_id = b.id AND s.subdomain IN ('pizzapalace', 'greengrocer', 'sushicentral') \
           AND b.payout_account IS NULL",
    )
    .execute(&pools.owner)
    .await?;
    sqlx::query(
        "UPDATE driver_profiles p SET payout_account = 'acct_demo' || split_part(u.email, '@', 1) FROM users u \
         WHERE u.id = p.driver_id AND u.email IN ('driver@fleetfront.test', 'driver2@fleetfront.test') \
           AND p.payout_account IS NULL",
    )
    .execute(&pools.owner)
    .await?;
    Ok(())
}
