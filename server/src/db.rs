//! Database access as a principal. Every request's statements run in a transaction that first
//! sets the principal with transaction-local settings (`app_begin`), so row level security
//! applies to all of them and nothing leaks to the next user of the pooled connection.

use chrono::{DateTime, Utc};
use fleetfront_domain::auth::Claims;
use fleetfront_domain::permission::{AccountKind, Actor, Permission, PermissionSet};
use fleetfront_domain::{BusinessId, CustomerId, ErrorCode, UserId};
use std::sync::Arc;

use sqlx::{PgPool, Postgres};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::sessions::SessionCache;

/// What `app_begin()` reports about a token's principal, to be checked against the token.
#[derive(Debug, sqlx::FromRow, serde::Deserialize)]
pub struct SessionRow {
    /// The account's current session version.
    pub session_version: i64,
    /// Whether the account may act.
    pub account_active: bool,
    /// Whether its business is active (`None` for platform accounts).
    pub business_active: Option<bool>,
    /// The role's permission keys (staff).
    pub permissions: Vec<String>,
}

/// A transaction with a principal set.
pub type Tx = sqlx::Transaction<'static, Postgres>;

/// The runtime-role pool.
#[derive(Clone, Debug)]
pub struct Db {
    /// Pool of `fleetfront_app` connections.
    pub pool: PgPool,
    /// Sessions recently verified against the database.
    pub sessions: Arc<SessionCache>,
}

/// The scope of a sign-in flow transaction (kind `auth`): it may read credentials, but only of
/// platform accounts and of the one store named.
#[derive(Clone, Copy, Debug, Default)]
pub struct AuthScope {
    /// The platform account concerned, when known.
    pub user: Option<UserId>,
    /// The store concerned (customer flows).
    pub business: Option<BusinessId>,
}

impl Db {
    /// Database access over the runtime-role pool, with an empty session cache.
    pub fn new(pool: PgPool) -> Db {
        Db {
            pool,
            sessions: Arc::default(),
        }
    }

    /// Begins a transaction as the verified token's principal, re-checking against the database
    /// that the session is still current: session version, account and business status, and the
    /// role's permissions as of now.
    ///
    /// # Errors
    /// `session_revoked`, `account_inactive`, `business_suspended`, or database errors.
    pub async fn begin_as(&self, claims: &Claims) -> Result<(Tx, Actor)> {
        self.begin_as_with(claims, "BEGIN").await
    }

    /// Like [`Db::begin_as`], but a read-only `REPEATABLE READ` transaction: every statement
    /// sees the same snapshot (a sync pull reads all its buckets at one point in time).
    ///
    /// # Errors
    /// As [`Db::begin_as`].
    pub async fn begin_snapshot_as(&self, claims: &Claims) -> Result<(Tx, Actor)> {
        self.begin_as_with(claims, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await
    }

    async fn begin_as_with(&self, claims: &Claims, begin: &'static str) -> Result<(Tx, Actor)> {
        if let Some(actor) = self.cached_actor(claims) {
            // Verified moments ago: open the transaction and set the principal in one round trip.
            // Every value is a typed id or a fixed kind name, so inlining them is safe.
            let (user, customer) = principal_ids(claims);
            let begin = format!(
                "{begin}; SELECT set_config('app.kind', '{}', true), set_config('app.user_id', '{}', true), \
                 set_config('app.customer_id', '{}', true), set_config('app.business_id', '{}', true)",
                claims.kind.as_str(),
                user.map(|u| u.to_string()).unwrap_or_default(),
                customer.map(|c| c.to_string()).unwrap_or_default(),
                claims.business_id.map(|b| b.to_string()).unwrap_or_default(),
            );
            let actor = actor?;
            let tx = self.pool.begin_with(begin).await?;
            return Ok((tx, actor));
        }
        let mut tx = self.pool.begin_with(begin).await?;
        let (user, customer) = principal_ids(claims);
        let row: Option<SessionRow> = sqlx::query_as(
            "SELECT session_version, account_active, business_active, permissions FROM app_begin($1, $2, $3, $4)",
        )
        .bind(claims.kind.as_str())
        .bind(user)
        .bind(customer)
        .bind(claims.business_id.map(|b| b.0))
        .fetch_optional(&mut *tx)
        .await?;
        let actor = self.verify_session(claims, row)?;
        Ok((tx, actor))
    }

    /// The actor of a session verified moments ago (see [`SessionCache`]), without asking the
    /// database; `None` when it must be verified again.
    ///
    /// # Errors
    /// A token without the business scope its kind needs.
    pub fn cached_actor(&self, claims: &Claims) -> Option<Result<Actor>> {
        self.sessions
            .get(claims.kind, claims.sub, claims.business_id, claims.sv)
            .map(|permissions| actor_of(claims, permissions))
    }

    /// Checks what `app_begin()` returned for the token's principal (no row: the account or
    /// membership is gone) against the token, remembers a verified session, and returns its
    /// actor.
    ///
    /// # Errors
    /// `session_revoked`, `account_inactive`, `business_suspended`.
    pub fn verify_session(&self, claims: &Claims, row: Option<SessionRow>) -> Result<Actor> {
        let Some(row) = row.filter(|r| r.session_version == claims.sv) else {
            return Err(Error::new(
                ErrorCode::SessionRevoked,
                "this session is no longer valid; sign in again",
            ));
        };
        if !row.account_active {
            return Err(Error::new(
                ErrorCode::AccountInactive,
                "this account is not active",
            ));
        }
        if row.business_active == Some(false) {
            return Err(Error::new(
                ErrorCode::BusinessSuspended,
                "this business is suspended",
            ));
        }
        let permissions: PermissionSet = row
            .permissions
            .iter()
            .filter_map(|k| Permission::parse(k))
            .collect();
        let actor = actor_of(claims, permissions.clone())?;
        self.sessions.put(
            claims.kind,
            claims.sub,
            claims.business_id,
            claims.sv,
            permissions,
        );
        Ok(actor)
    }

    /// Begins a sign-in flow transaction (kind `auth`).
    ///
    /// # Errors
    /// Database errors.
    pub async fn begin_auth(&self, scope: AuthScope) -> Result<Tx> {
        let mut tx = self.pool.begin().await?;
        set_principal(
            &mut tx,
            "auth",
            scope.user.map(|u| u.0),
            None,
            scope.business.map(|b| b.0),
        )
        .await?;
        Ok(tx)
    }

    /// Begins a transaction with no principal: tenant tables are invisible.
    ///
    /// # Errors
    /// Database errors.
    pub async fn begin_anonymous(&self) -> Result<Tx> {
        Ok(self.pool.begin().await?)
    }
}

fn principal_ids(claims: &Claims) -> (Option<Uuid>, Option<Uuid>) {
    match claims.kind {
        AccountKind::Customer => (None, Some(claims.sub)),
        _ => (Some(claims.sub), None),
    }
}

fn actor_of(claims: &Claims, permissions: PermissionSet) -> Result<Actor> {
    Ok(match (claims.kind, claims.business_id) {
        (AccountKind::Admin, _) => Actor::Admin {
            user: UserId(claims.sub),
        },
        (AccountKind::Driver, _) => Actor::Driver {
            user: UserId(claims.sub),
        },
        (AccountKind::Staff, Some(business)) => Actor::Staff {
            user: UserId(claims.sub),
            business,
            permissions,
        },
        (AccountKind::Customer, Some(business)) => Actor::Customer {
            customer: CustomerId(claims.sub),
            business,
        },
        _ => return Err(Error::unauthenticated("the token has no business scope")),
    })
}

/// Sets the transaction-local principal.
///
/// # Errors
/// Database errors.
pub async fn set_principal(
    tx: &mut Tx,
    kind: &str,
    user: Option<Uuid>,
    customer: Option<Uuid>,
    business: Option<Uuid>,
) -> Result<()> {
    sqlx::query(
        "SELECT set_config('app.kind', $1, true), set_config('app.user_id', $2, true), \
         set_config('app.customer_id', $3, true), set_config('app.business_id', $4, true)",
    )
    .bind(kind)
    .bind(user.map(|u| u.to_string()).unwrap_or_default())
    .bind(customer.map(|u| u.to_string()).unwrap_or_default())
    .bind(business.map(|u| u.to_string()).unwrap_or_default())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The server clock. Tests may move it forward to cross time windows without sleeping.
#[derive(Debug, Default)]
pub struct Clock {
    offset_secs: std::sync::atomic::AtomicI64,
}

impl Clock {
    /// Now.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now()
            + chrono::Duration::seconds(self.offset_secs.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Moves the clock forward (tests).
    pub fn advance(&self, secs: i64) {
        self.offset_secs
            .fetch_add(secs, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A new UUIDv7 id.
pub fn new_id() -> Uuid {
    Uuid::now_v7()
}
