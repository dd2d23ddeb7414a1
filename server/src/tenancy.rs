//! Business records: onboarding in one transaction, the admin's view of a business, and the
//! plan limits of a business. SQL for businesses, subscriptions and storefront settings.

use chrono::{DateTime, Duration, Utc};
use fleetfront_domain::api::admin::{BusinessStatus, BusinessView, Onboarding, SubscriptionView};
use fleetfront_domain::api::business::ThemeColors;
use fleetfront_domain::api::FieldErrors;
use fleetfront_domain::money::Currency;
use fleetfront_domain::permission::BuiltinRole;
use fleetfront_domain::plan::{
    self, BillingInterval, LimitKind, PlanFeatures, PlanLimits, SubscriptionStatus,
};
use fleetfront_domain::value::{Coordinates, Email};
use fleetfront_domain::{BusinessId, ErrorCode, SubscriptionId};
use sqlx::{FromRow, Row};
use uuid::Uuid;

use crate::app::App;
use crate::auth::{hash_secret, random_secret, secret_hash};
use crate::db::{new_id, Tx};
use crate::error::{Error, Result};

/// A plan as stored.
#[derive(Clone, Debug)]
pub struct PlanRow {
    /// Id.
    pub id: Uuid,
    /// Key.
    pub key: String,
    /// Limits.
    pub limits: PlanLimits,
    /// Features.
    pub features: PlanFeatures,
    /// Offered.
    pub is_active: bool,
}

/// Finds a plan by key.
///
/// # Errors
/// Database errors.
pub async fn plan_by_key(tx: &mut Tx, key: &str) -> Result<Option<PlanRow>> {
    let row = sqlx::query("SELECT id, plan_key, limits, features, is_active FROM subscription_plans WHERE plan_key = $1")
        .bind(key)
        .fetch_optional(&mut **tx)
        .await?;
    row.map(|r| {
        Ok(PlanRow {
            id: r.try_get("id")?,
            key: r.try_get("plan_key")?,
            limits: serde_json::from_value(r.try_get("limits")?).map_err(Error::unexpected)?,
            features: serde_json::from_value(r.try_get("features")?).map_err(Error::unexpected)?,
            is_active: r.try_get("is_active")?,
        })
    })
    .transpose()
}

/// The limits and features in force for a business (from its live subscription).
///
/// # Errors
/// Database errors; `forbidden` when the business has no live subscription.
pub async fn entitlements(tx: &mut Tx, business: BusinessId) -> Result<(PlanLimits, PlanFeatures)> {
    let row: Option<(serde_json::Value, serde_json::Value)> = sqlx::query_as(
        "SELECT usage_limits, features_enabled FROM business_subscriptions WHERE business_id = $1 AND status <> 'canceled'",
    )
    .bind(business.0)
    .fetch_optional(&mut **tx)
    .await?;
    let (limits, features) =
        row.ok_or_else(|| Error::forbidden("the business has no active subscription"))?;
    Ok((
        serde_json::from_value(limits).map_err(Error::unexpected)?,
        serde_json::from_value(features).map_err(Error::unexpected)?,
    ))
}

/// Checks that one more `kind` fits the business's plan, given the current count.
///
/// # Errors
/// `plan_limit_reached` with the plan's words.
pub async fn check_plan_limit(
    tx: &mut Tx,
    business: BusinessId,
    kind: LimitKind,
    current: i64,
) -> Result<()> {
    let (limits, _) = entitlements(tx, business).await?;
    plan::check_limit(&limits, kind, u64::try_from(current).unwrap_or(0)).map_err(|e| {
        Error::new(
            ErrorCode::PlanLimitReached,
            format!("{e}; upgrade the plan to add more"),
        )
    })
}

/// Whether a subdomain (and custom domain) is free, ignoring `except`'s own.
///
/// # Errors
/// Database errors.
pub async fn host_taken(
    tx: &mut Tx,
    subdomain: &str,
    custom_domain: Option<&str>,
    except: Option<BusinessId>,
) -> Result<(bool, bool)> {
    Ok(sqlx::query_as(
        "SELECT subdomain_taken, domain_taken FROM storefront_host_taken($1, $2, $3)",
    )
    .bind(subdomain)
    .bind(custom_domain)
    .bind(except.map(|b| b.0))
    .fetch_one(&mut **tx)
    .await?)
}

/// Creates the built-in roles of a new business; returns the owner role's id.
///
/// # Errors
/// Database errors.
pub async fn create_builtin_roles(tx: &mut Tx, business: BusinessId) -> Result<Uuid> {
    let mut owner = None;
    for role in BuiltinRole::ALL {
        let id = new_id();
        if role == BuiltinRole::Owner {
            owner = Some(id);
        }
        sqlx::query("INSERT INTO roles (business_id, id, key, name, is_builtin) VALUES ($1, $2, $3, $4, true)")
            .bind(business.0)
            .bind(id)
            .bind(role.key())
            .bind(role.name())
            .execute(&mut **tx)
            .await?;
        let keys: Vec<&str> = role.permissions().iter().map(|p| p.key()).collect();
        sqlx::query("INSERT INTO role_permissions (business_id, role_id, permission) SELECT $1, $2, unnest($3::text[])")
            .bind(business.0)
            .bind(id)
            .bind(&keys)
            .execute(&mut **tx)
            .await?;
    }
    Ok(owner.expect("the owner role is built in"))
}

/// What onboarding made.
#[derive(Clone, Debug)]
pub struct Onboarded {
    /// The new business.
    pub business: BusinessId,
    /// The owner's account.
    pub owner: Uuid,
    /// The one-time password set-up token sent in the welcome email (when no password was given).
    pub setup_token: Option<String>,
}

/// Lifetime of a password set-up link.
pub const SETUP_TOKEN_DAYS: i64 = 7;

/// Finds or creates a staff account for `email`; a new account gets `password` or a set-up token.
///
/// # Errors
/// `email_taken` when the email belongs to an admin, driver or customer-only account.
pub async fn find_or_create_staff(
    tx: &mut Tx,
    email: &Email,
    full_name: &str,
    password_hash: Option<String>,
    now: DateTime<Utc>,
) -> Result<(Uuid, Option<String>)> {
    let existing: Option<(Uuid, String)> =
        sqlx::query_as("SELECT id, kind FROM users WHERE email = $1")
            .bind(email.as_str())
            .fetch_optional(&mut **tx)
            .await?;
    if let Some((id, kind)) = existing {
        if kind != "staff" {
            return Err(Error::field(
                "email",
                "taken",
                "this email belongs to an account that cannot join a team",
            )
            .with_code(ErrorCode::EmailTaken));
        }
        return Ok((id, None));
    }
    let id = new_id();
    sqlx::query("INSERT INTO users (id, kind, email, password_hash, full_name, status) VALUES ($1, 'staff', $2, $3, $4, 'active')")
        .bind(id)
        .bind(email.as_str())
        .bind(&password_hash)
        .bind(full_name)
        .execute(&mut **tx)
        .await?;
    let token = if password_hash.is_none() {
        let token = random_secret();
        sqlx::query("INSERT INTO password_setup_tokens (token_hash, user_id, expires_at) VALUES ($1, $2, $3)")
            .bind(secret_hash(&token))
            .bind(id)
            .bind(now + Duration::days(SETUP_TOKEN_DAYS))
            .execute(&mut **tx)
            .await?;
        Some(token)
    } else {
        None
    };
    Ok((id, token))
}

/// Onboards a business in the caller's transaction (an admin principal): business, trial
/// subscription, storefront with the reserved subdomain, built-in roles, owner account and
/// membership, initial categories, and the welcome email in the outbox.
///
/// # Errors
/// Field errors for an unknown plan or a taken subdomain, `plan_limit_reached`, database errors.
pub async fn onboard(tx: &mut Tx, app: &App, req: &Onboarding) -> Result<Onboarded> {
    let now = app.clock.now();
    let plan = plan_by_key(tx, req.plan.as_str())
        .await?
        .filter(|p| p.is_active)
        .ok_or_else(|| {
            Error::field(
                "plan",
                "unknown_plan",
                format!("there is no active plan {:?}", req.plan.as_str()),
            )
        })?;
    let (subdomain_taken, _) = host_taken(tx, req.subdomain.as_str(), None, None).await?;
    if subdomain_taken {
        return Err(
            Error::field("subdomain", "taken", "this subdomain is already in use")
                .with_code(ErrorCode::SubdomainTaken),
        );
    }
    plan::check_limit(&plan.limits, LimitKind::StaffSeats, 0)
        .map_err(|e| Error::new(ErrorCode::PlanLimitReached, e.to_string()))?;
    let business = BusinessId(new_id());
    sqlx::query(
        "INSERT INTO businesses (id, infrastructure_id, name, contact_email, contact_phone, currency, time_zone, delivery_radius_m, latitude, longitude, shared_pool_opt_in) \
         VALUES ($1, (SELECT id FROM infrastructures WHERE slug = 'default'), $2, $3, $4, $5, $6, $7, $8, $9, false)",
    )
    .bind(business.0)
    .bind(req.name.as_str())
    .bind(req.contact_email.as_str())
    .bind(req.contact_phone.as_ref().map(|p| p.as_str()))
    .bind(req.currency.code())
    .bind(req.time_zone.as_str())
    .bind(i32::try_from(req.delivery_radius.metres()).expect("radius fits"))
    .bind(req.location.latitude)
    .bind(req.location.longitude)
    .execute(&mut **tx)
    .await?;
    let (start, end) = plan::trial_period(now);
    sqlx::query(
        "INSERT INTO business_subscriptions (business_id, id, plan_id, status, billing_interval, current_period_start, current_period_end, features_enabled, usage_limits, platform_fee_bps) \
         VALUES ($1, $2, $3, 'trial', $4, $5, $6, $7, $8, (SELECT platform_fee_bps FROM subscription_plans WHERE id = $3))",
    )
    .bind(business.0)
    .bind(new_id())
    .bind(plan.id)
    .bind(req.billing_interval.as_str())
    .bind(start)
    .bind(end)
    .bind(serde_json::to_value(&plan.features).map_err(Error::unexpected)?)
    .bind(serde_json::to_value(&plan.limits).map_err(Error::unexpected)?)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO business_storefront_settings (business_id, subdomain, theme_colors, operating_hours) VALUES ($1, $2, $3, $4)",
    )
    .bind(business.0)
    .bind(req.subdomain.as_str())
    .bind(serde_json::to_value(ThemeColors::default()).map_err(Error::unexpected)?)
    .bind(serde_json::to_value(&req.operating_hours).map_err(Error::unexpected)?)
    .execute(&mut **tx)
    .await?;
    let owner_role = create_builtin_roles(tx, business).await?;
    let password_hash = match &req.owner_password {
        Some(p) => Some(hash_secret(p.expose().to_owned()).await?),
        None => None,
    };
    let (owner, setup_token) = find_or_create_staff(
        tx,
        &req.owner_email,
        req.owner_name.as_str(),
        password_hash,
        now,
    )
    .await
    .map_err(|e| match e.code() {
        // The onboarding request names this field `owner.email`, not `email`.
        ErrorCode::EmailTaken => Error::field(
            "owner.email",
            "taken",
            "this email belongs to an account that cannot own a business",
        )
        .with_code(ErrorCode::EmailTaken),
        _ => e,
    })?;
    sqlx::query("INSERT INTO memberships (business_id, user_id, role_id) VALUES ($1, $2, $3)")
        .bind(business.0)
        .bind(owner)
        .bind(owner_role)
        .execute(&mut **tx)
        .await?;
    for (order, (name, slug)) in req.categories.iter().enumerate() {
        sqlx::query("INSERT INTO product_categories (business_id, id, name, slug, display_order) VALUES ($1, $2, $3, $4, $5)")
            .bind(business.0)
            .bind(new_id())
            .bind(name.as_str())
            .bind(slug.as_str())
            .bind(i32::try_from(order).unwrap_or(i32::MAX))
            .execute(&mut **tx)
            .await?;
    }
    let url = app.storefront_url(req.subdomain.as_str());
    let payload = serde_json::json!({
        "template": "welcome_owner",
        "to": req.owner_email.as_str(),
        "business_name": req.name.as_str(),
        "owner_name": req.owner_name.as_str(),
        "storefront_url": url,
        "password_setup_token": setup_token,
        "trial_ends_at": end,
    });
    crate::notify::enqueue_email(tx, business, payload).await?;
    Ok(Onboarded {
        business,
        owner,
        setup_token,
    })
}

#[derive(FromRow)]
struct BusinessRow {
    id: Uuid,
    name: String,
    status: String,
    contact_email: String,
    contact_phone: Option<String>,
    currency: String,
    time_zone: String,
    delivery_radius_m: i32,
    latitude: f64,
    longitude: f64,
    created_at: DateTime<Utc>,
    subdomain: Option<String>,
    subscription_id: Option<Uuid>,
    plan_key: Option<String>,
    sub_status: Option<String>,
    billing_interval: Option<String>,
    current_period_start: Option<DateTime<Utc>>,
    current_period_end: Option<DateTime<Utc>>,
}

const BUSINESS_SELECT: &str = "SELECT b.id, b.name, b.status, b.contact_email, b.contact_phone, b.currency, b.time_zone, \
    b.delivery_radius_m, b.latitude, b.longitude, b.created_at, s.subdomain, \
    bs.id AS subscription_id, p.plan_key, bs.status AS sub_status, bs.billing_interval, bs.current_period_start, bs.current_period_end \
    FROM businesses b \
    LEFT JOIN business_storefront_settings s ON s.business_id = b.id \
    LEFT JOIN business_subscriptions bs ON bs.business_id = b.id AND bs.status <> 'canceled' \
    LEFT JOIN subscription_plans p ON p.id = bs.plan_id";

fn to_view(app: &App, r: BusinessRow) -> Result<BusinessView> {
    let subscription = match (
        r.subscription_id,
        r.plan_key,
        r.sub_status,
        r.billing_interval,
        r.current_period_start,
        r.current_period_end,
    ) {
        (Some(id), Some(plan), Some(status), Some(interval), Some(start), Some(end)) => {
            Some(SubscriptionView {
                id: SubscriptionId(id),
                plan,
                status: SubscriptionStatus::parse(&status)
                    .ok_or_else(|| Error::unexpected(anyhow::anyhow!("bad status {status}")))?,
                billing_interval: BillingInterval::parse(&interval)
                    .ok_or_else(|| Error::unexpected(anyhow::anyhow!("bad interval {interval}")))?,
                current_period_start: start,
                current_period_end: end,
            })
        }
        _ => None,
    };
    let subdomain = r.subdomain.unwrap_or_default();
    Ok(BusinessView {
        id: BusinessId(r.id),
        name: r.name,
        status: BusinessStatus::parse(&r.status)
            .ok_or_else(|| Error::unexpected(anyhow::anyhow!("bad business status")))?,
        contact_email: r.contact_email,
        contact_phone: r.contact_phone,
        currency: Currency::parse(r.currency.trim()).map_err(Error::unexpected)?,
        time_zone: r.time_zone,
        delivery_radius_m: i64::from(r.delivery_radius_m),
        location: Coordinates {
            latitude: r.latitude,
            longitude: r.longitude,
        },
        storefront_url: app.storefront_url(&subdomain),
        subdomain,
        subscription,
        created_at: r.created_at,
    })
}

/// One business as the admin sees it.
///
/// # Errors
/// `not_found`, database errors.
pub async fn business_view(tx: &mut Tx, app: &App, id: BusinessId) -> Result<BusinessView> {
    let row: BusinessRow = sqlx::query_as(&format!("{BUSINESS_SELECT} WHERE b.id = $1"))
        .bind(id.0)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| Error::not_found("business"))?;
    to_view(app, row)
}

/// A page of businesses, newest first, after the cursor `(created_at, id)`.
///
/// # Errors
/// Database errors.
pub async fn business_page(
    tx: &mut Tx,
    app: &App,
    after: Option<(DateTime<Utc>, Uuid)>,
    status: Option<BusinessStatus>,
    search: Option<&str>,
    limit: i64,
) -> Result<Vec<BusinessView>> {
    let rows: Vec<BusinessRow> = sqlx::query_as(&format!(
        "{BUSINESS_SELECT} WHERE ($1::timestamptz IS NULL OR (b.created_at, b.id) < ($1, $2)) \
         AND ($3::text IS NULL OR b.status = $3) \
         AND ($4::text IS NULL OR b.name ILIKE '%' || $4 || '%' OR s.subdomain ILIKE '%' || $4 || '%') \
         ORDER BY b.created_at DESC, b.id DESC LIMIT $5"
    ))
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(status.map(|s| s.as_str()))
    .bind(search.map(|s| s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")))
    .bind(limit)
    .fetch_all(&mut **tx)
    .await?;
    rows.into_iter().map(|r| to_view(app, r)).collect()
}

/// The business behind a storefront subdomain, when the store is published and the business
/// active; `None` otherwise (unknown, unpublished and suspended stores are indistinguishable).
/// Runs on any executor, so callers may resolve inside their own transaction.
///
/// # Errors
/// Database errors.
pub async fn published_store<'e, E>(executor: E, subdomain: &str) -> Result<Option<BusinessId>>
where
    E: sqlx::PgExecutor<'e>,
{
    let row: Option<(Uuid, bool, bool)> = sqlx::query_as(
        "SELECT business_id, is_published, business_active FROM storefront_business($1)",
    )
    .bind(subdomain)
    .fetch_optional(executor)
    .await?;
    Ok(match row {
        Some((business, true, true)) => Some(BusinessId(business)),
        _ => None,
    })
}

/// Collects field errors into one error, or passes.
///
/// # Errors
/// The collected errors.
pub fn fail_on(errors: FieldErrors) -> Result<()> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::validation(errors))
    }
}
