//! Sessions of platform accounts and customers: issuing token pairs, rotating refresh tokens
//! with reuse detection, login throttling. SQL for credentials lives here; handlers in
//! `api::auth` call it.

use chrono::{DateTime, Duration, Utc};
use fleetfront_domain::api::auth::{MembershipView, PrincipalView, TokenResponse};
use fleetfront_domain::auth::{TokenType, ACCESS_TOKEN_SECS, REFRESH_TOKEN_SECS};
use fleetfront_domain::permission::{AccountKind, Permission};
use fleetfront_domain::throttle::{Gate, ThrottlePolicy, ThrottleState};
use fleetfront_domain::{BusinessId, ErrorCode, RoleId};
use sqlx::FromRow;
use uuid::Uuid;

use crate::app::App;
use crate::audit::Who;
use crate::auth::{new_refresh_token, secret_hash, TokenSpec};
use crate::db::{new_id, Tx};
use crate::error::{Error, Result};

/// A platform account as stored.
#[derive(Clone, Debug, FromRow)]
pub struct UserRow {
    /// Id.
    pub id: Uuid,
    /// `admin`, `staff` or `driver`.
    pub kind: String,
    /// Email.
    pub email: String,
    /// Argon2id hash.
    pub password_hash: Option<String>,
    /// Name.
    pub full_name: String,
    /// `active`, `pending`, `suspended`.
    pub status: String,
    /// Session version.
    pub session_version: i64,
}

impl UserRow {
    /// The account kind.
    pub fn kind(&self) -> AccountKind {
        AccountKind::parse(&self.kind).unwrap_or(AccountKind::Driver)
    }

    /// The account as an audit actor.
    pub fn who(&self) -> Who {
        Who {
            kind: self.kind().as_str(),
            id: Some(self.id),
        }
    }
}

/// One of a user's memberships.
#[derive(Clone, Debug, FromRow)]
pub struct MembershipRow {
    /// Business.
    pub business_id: Uuid,
    /// Business name.
    pub business_name: String,
    /// Whether the business is active.
    pub business_active: bool,
    /// Role id.
    pub role_id: Uuid,
    /// Role key.
    pub role_key: String,
    /// Permission keys of the role.
    pub permissions: Vec<String>,
}

const USER_COLUMNS: &str = "id, kind, email, password_hash, full_name, status, session_version";

/// Finds a platform account by email (kind `auth` transaction).
///
/// # Errors
/// Database errors.
pub async fn user_by_email(tx: &mut Tx, email: &str) -> Result<Option<UserRow>> {
    Ok(sqlx::query_as::<_, UserRow>(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE email = $1"
    ))
    .bind(email)
    .fetch_optional(&mut **tx)
    .await?)
}

/// Finds a platform account by id.
///
/// # Errors
/// Database errors.
pub async fn user_by_id(tx: &mut Tx, id: Uuid) -> Result<Option<UserRow>> {
    Ok(
        sqlx::query_as::<_, UserRow>(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?,
    )
}

/// A user's memberships, oldest first.
///
/// # Errors
/// Database errors.
pub async fn memberships(tx: &mut Tx, user: Uuid) -> Result<Vec<MembershipRow>> {
    Ok(sqlx::query_as::<_, MembershipRow>(
        "SELECT business_id, business_name, business_active, role_id, role_key, permissions FROM user_memberships($1)",
    )
    .bind(user)
    .fetch_all(&mut **tx)
    .await?)
}

/// Picks the business a staff member signs in to: the requested one (must be a membership of an
/// active business) or the first active one.
///
/// # Errors
/// `forbidden` when there is none, or the requested one is not theirs.
pub fn choose_membership(
    memberships: &[MembershipRow],
    requested: Option<BusinessId>,
) -> Result<MembershipRow> {
    let suspended = || Error::new(ErrorCode::BusinessSuspended, "this business is suspended");
    match requested {
        Some(b) => {
            let m = memberships
                .iter()
                .find(|m| m.business_id == b.0)
                .ok_or_else(|| Error::forbidden("you are not a member of that business"))?;
            if m.business_active {
                Ok(m.clone())
            } else {
                Err(suspended())
            }
        }
        None => match memberships.iter().find(|m| m.business_active) {
            Some(m) => Ok(m.clone()),
            None if memberships.is_empty() => Err(Error::forbidden(
                "this account is not a member of any business",
            )),
            None => Err(suspended()),
        },
    }
}

fn membership_views(memberships: &[MembershipRow]) -> Vec<MembershipView> {
    memberships
        .iter()
        .map(|m| MembershipView {
            business_id: BusinessId(m.business_id),
            business_name: m.business_name.clone(),
            role_id: RoleId(m.role_id),
            role: m.role_key.clone(),
        })
        .collect()
}

/// The principal view of a platform account in a scope.
pub fn principal_view(
    user: &UserRow,
    scope: Option<&MembershipRow>,
    all: &[MembershipRow],
) -> PrincipalView {
    PrincipalView {
        id: user.id,
        kind: user.kind(),
        email: user.email.clone(),
        full_name: user.full_name.clone(),
        business_id: scope.map(|m| BusinessId(m.business_id)),
        role: scope.map(|m| m.role_key.clone()),
        permissions: scope
            .map(|m| {
                m.permissions
                    .iter()
                    .filter_map(|p| Permission::parse(p))
                    .collect()
            })
            .unwrap_or_default(),
        memberships: membership_views(all),
    }
}

/// Issues an access token and a refresh token (in `family`, or a new family) for a platform
/// account, inside `tx` (kind `auth`).
///
/// # Errors
/// Database errors.
pub async fn issue_platform(
    tx: &mut Tx,
    app: &App,
    user: &UserRow,
    scope: Option<&MembershipRow>,
    all: &[MembershipRow],
    family: Option<Uuid>,
) -> Result<TokenResponse> {
    let now = app.clock.now();
    let refresh = new_refresh_token(None);
    sqlx::query(
        "INSERT INTO refresh_tokens (id, family_id, user_id, scope_business_id, token_hash, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(new_id())
    .bind(family.unwrap_or_else(new_id))
    .bind(user.id)
    .bind(scope.map(|m| m.business_id))
    .bind(secret_hash(&refresh))
    .bind(now + Duration::seconds(REFRESH_TOKEN_SECS))
    .execute(&mut **tx)
    .await?;
    let spec = TokenSpec {
        sub: user.id,
        kind: user.kind(),
        business_id: scope.map(|m| BusinessId(m.business_id)),
        role: scope.map(|m| m.role_key.clone()),
        session_version: user.session_version,
    };
    Ok(TokenResponse {
        access_token: app
            .keys
            .sign(&spec, TokenType::Access, None, now, ACCESS_TOKEN_SECS),
        token_type: "Bearer".to_owned(),
        expires_in: ACCESS_TOKEN_SECS,
        refresh_token: refresh,
        refresh_expires_in: REFRESH_TOKEN_SECS,
        principal: principal_view(user, scope, all),
    })
}

/// A customer as stored.
#[derive(Clone, Debug, FromRow)]
pub struct CustomerRow {
    /// Store.
    pub business_id: Uuid,
    /// Id.
    pub id: Uuid,
    /// Email.
    pub email: String,
    /// Name.
    pub full_name: String,
    /// Argon2id hash; none for guests.
    pub password_hash: Option<String>,
    /// Session version.
    pub session_version: i64,
}

/// Issues a customer's token pair inside `tx` (kind `auth`, scoped to the store).
///
/// # Errors
/// Database errors.
pub async fn issue_customer(
    tx: &mut Tx,
    app: &App,
    customer: &CustomerRow,
    family: Option<Uuid>,
) -> Result<TokenResponse> {
    let now = app.clock.now();
    let business = BusinessId(customer.business_id);
    let refresh = new_refresh_token(Some(business));
    sqlx::query(
        "INSERT INTO customer_refresh_tokens (business_id, id, family_id, customer_id, token_hash, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(customer.business_id)
    .bind(new_id())
    .bind(family.unwrap_or_else(new_id))
    .bind(customer.id)
    .bind(secret_hash(&refresh))
    .bind(now + Duration::seconds(REFRESH_TOKEN_SECS))
    .execute(&mut **tx)
    .await?;
    let spec = TokenSpec {
        sub: customer.id,
        kind: AccountKind::Customer,
        business_id: Some(business),
        role: None,
        session_version: customer.session_version,
    };
    Ok(TokenResponse {
        access_token: app
            .keys
            .sign(&spec, TokenType::Access, None, now, ACCESS_TOKEN_SECS),
        token_type: "Bearer".to_owned(),
        expires_in: ACCESS_TOKEN_SECS,
        refresh_token: refresh,
        refresh_expires_in: REFRESH_TOKEN_SECS,
        principal: PrincipalView {
            id: customer.id,
            kind: AccountKind::Customer,
            email: customer.email.clone(),
            full_name: customer.full_name.clone(),
            business_id: Some(business),
            role: None,
            permissions: Vec::new(),
            memberships: Vec::new(),
        },
    })
}

/// Which refresh-token table a rotation works on.
#[derive(Clone, Copy, Debug)]
pub enum TokenTable {
    /// Platform accounts (`refresh_tokens`).
    Platform,
    /// Customers (`customer_refresh_tokens`, within one store).
    Customer,
}

impl TokenTable {
    fn name(self) -> &'static str {
        match self {
            Self::Platform => "refresh_tokens",
            Self::Customer => "customer_refresh_tokens",
        }
    }

    fn subject(self) -> &'static str {
        match self {
            Self::Platform => "user_id",
            Self::Customer => "customer_id",
        }
    }

    fn scope(self) -> &'static str {
        match self {
            Self::Platform => "scope_business_id",
            Self::Customer => "business_id",
        }
    }
}

#[derive(FromRow)]
struct TokenRow {
    family_id: Uuid,
    subject: Uuid,
    scope: Option<Uuid>,
    expires_at: DateTime<Utc>,
    used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

/// A refresh token that was valid and is now spent.
#[derive(Clone, Copy, Debug)]
pub struct Rotated {
    /// The login it belongs to.
    pub family: Uuid,
    /// The user or customer.
    pub subject: Uuid,
    /// Its business scope.
    pub scope: Option<Uuid>,
}

/// Spends a refresh token. A token used a second time revokes its whole family (someone holds
/// a stolen copy); the caller must commit `tx` even when this fails, so the revocation sticks.
///
/// # Errors
/// `invalid_refresh_token` for unknown, expired, revoked or reused tokens.
pub async fn spend_refresh(
    tx: &mut Tx,
    table: TokenTable,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Rotated> {
    let invalid = || {
        Error::new(
            ErrorCode::InvalidRefreshToken,
            "the refresh token is not valid; sign in again",
        )
    };
    let row: Option<TokenRow> =
        sqlx::query_as(&format!(
            "SELECT family_id, {subject} AS subject, {scope} AS scope, expires_at, used_at, revoked_at FROM {table} WHERE token_hash = $1 FOR UPDATE",
            subject = table.subject(),
            scope = table.scope(),
            table = table.name()
        ))
        .bind(secret_hash(token))
        .fetch_optional(&mut **tx)
        .await?;
    let Some(TokenRow {
        family_id: family,
        subject,
        scope,
        expires_at,
        used_at,
        revoked_at,
    }) = row
    else {
        return Err(invalid());
    };
    if revoked_at.is_some() || expires_at <= now {
        return Err(invalid());
    }
    if used_at.is_some() {
        revoke_family(tx, table, family, now).await?;
        tracing::warn!(%family, "refresh token reuse detected; family revoked");
        return Err(invalid());
    }
    sqlx::query(&format!(
        "UPDATE {} SET used_at = $2 WHERE token_hash = $1",
        table.name()
    ))
    .bind(secret_hash(token))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(Rotated {
        family,
        subject,
        scope,
    })
}

/// Revokes every token of a family.
///
/// # Errors
/// Database errors.
pub async fn revoke_family(
    tx: &mut Tx,
    table: TokenTable,
    family: Uuid,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(&format!(
        "UPDATE {} SET revoked_at = coalesce(revoked_at, $2) WHERE family_id = $1",
        table.name()
    ))
    .bind(family)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The family of a token, if it exists (for logout).
///
/// # Errors
/// Database errors.
pub async fn family_of(tx: &mut Tx, table: TokenTable, token: &str) -> Result<Option<Uuid>> {
    Ok(sqlx::query_scalar(&format!(
        "SELECT family_id FROM {} WHERE token_hash = $1",
        table.name()
    ))
    .bind(secret_hash(token))
    .fetch_optional(&mut **tx)
    .await?)
}

/// Throttle keys of one sign-in attempt with their policies.
pub fn login_keys(account: &str, address: &str) -> [(String, ThrottlePolicy); 2] {
    [
        (
            format!("account:{account}"),
            fleetfront_domain::throttle::ACCOUNT_LOGIN,
        ),
        (
            format!("address:{address}"),
            fleetfront_domain::throttle::ADDRESS_LOGIN,
        ),
    ]
}

async fn throttle_state(tx: &mut Tx, key: &str) -> Result<Option<ThrottleState>> {
    let row: Option<(i32, DateTime<Utc>)> = sqlx::query_as(
        "SELECT failures, window_started_at FROM auth_throttle WHERE key = $1 FOR UPDATE",
    )
    .bind(key)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(|(failures, window_started_at)| ThrottleState {
        failures: u32::try_from(failures).unwrap_or(0),
        window_started_at,
    }))
}

/// Refuses the attempt when any key's window is full.
///
/// # Errors
/// `too_many_attempts` with the longest wait.
pub async fn throttle_gate(
    tx: &mut Tx,
    keys: &[(String, ThrottlePolicy)],
    now: DateTime<Utc>,
) -> Result<()> {
    let mut wait = 0;
    for (key, policy) in keys {
        if let Gate::Refuse { retry_after_secs } = policy.gate(throttle_state(tx, key).await?, now)
        {
            wait = wait.max(retry_after_secs);
        }
    }
    if wait > 0 {
        return Err(Error::too_many_attempts(wait));
    }
    Ok(())
}

/// Counts a failure against every key.
///
/// # Errors
/// Database errors.
pub async fn throttle_fail(
    tx: &mut Tx,
    keys: &[(String, ThrottlePolicy)],
    now: DateTime<Utc>,
) -> Result<()> {
    for (key, policy) in keys {
        let next = policy.record_failure(throttle_state(tx, key).await?, now);
        sqlx::query(
            "INSERT INTO auth_throttle (key, failures, window_started_at) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO UPDATE SET failures = EXCLUDED.failures, window_started_at = EXCLUDED.window_started_at",
        )
        .bind(key)
        .bind(i32::try_from(next.failures).unwrap_or(i32::MAX))
        .bind(next.window_started_at)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Forgets an account's failures after a successful sign-in.
///
/// # Errors
/// Database errors.
pub async fn throttle_clear(tx: &mut Tx, key: &str) -> Result<()> {
    sqlx::query("DELETE FROM auth_throttle WHERE key = $1")
        .bind(key)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
