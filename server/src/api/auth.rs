//! Sign-in, tokens, PINs: `/api/v1/auth/*` for admins, staff and drivers, and
//! `/api/v1/auth/customer/*` for a store's customers.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use fleetfront_domain::api::auth::{
    CustomerLoginRequest, CustomerRegisterRequest, DriverRegisterRequest, ElevatedTokenResponse,
    LoginRequest, PasswordSetupRequest, PrincipalView, RefreshRequest, SetPinRequest,
    SwitchBusinessRequest, TokenResponse, VerifyPinRequest,
};
use fleetfront_domain::api::FieldErrors;
use fleetfront_domain::auth::{TokenType, ELEVATED_TOKEN_SECS};
use fleetfront_domain::permission::{AccountKind, Actor};
use fleetfront_domain::throttle::PIN_MAX_FAILURES;
use fleetfront_domain::value::{Email, Password, Pin, Subdomain};
use fleetfront_domain::{BusinessId, ErrorCode, UserId};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::App;
use crate::audit::{self, Event, Who};
use crate::auth::{customer_token_business, hash_secret, secret_hash, verify_secret, TokenSpec};
use crate::context::Ctx;
use crate::db::{new_id, AuthScope};
use crate::error::{Error, Result};
use crate::extract::{ApiJson, Auth};
use crate::session::{self, CustomerRow, TokenTable};
use crate::tenancy;

use fleetfront_domain::api::Problem;

pub(crate) fn routes(router: OpenApiRouter<App>) -> OpenApiRouter<App> {
    router
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(logout_all))
        .routes(routes!(switch_business))
        .routes(routes!(me))
        .routes(routes!(driver_register))
        .routes(routes!(set_pin))
        .routes(routes!(verify_pin))
        .routes(routes!(password_setup))
        .routes(routes!(customer_register))
        .routes(routes!(customer_login))
        .routes(routes!(customer_refresh))
        .routes(routes!(customer_logout))
}

fn invalid_credentials() -> Error {
    Error::new(
        ErrorCode::InvalidCredentials,
        "the email or password is wrong",
    )
}

/// Signs in an admin, staff member or driver.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = Problem), (status = 429, body = Problem)))]
async fn login(
    State(app): State<App>,
    ctx: Ctx,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<TokenResponse>> {
    let mut errors = FieldErrors::default();
    let email = errors.check("email", Email::parse(&req.email));
    if req.password.is_empty() {
        errors.push("password", "required", "password is required");
    }
    let email = errors.finish(|| email)?;
    let now = app.clock.now();
    let keys = session::login_keys(email.as_str(), &ctx.client_address);
    let mut tx = app.db.begin_auth(AuthScope::default()).await?;
    if let Err(e) = session::throttle_gate(&mut tx, &keys, now).await {
        audit::record(
            &mut tx,
            &ctx,
            Who::ANONYMOUS,
            None,
            Event::denied(
                "auth.login",
                serde_json::json!({"email": email.as_str(), "reason": "throttled"}),
            ),
        )
        .await?;
        tx.commit().await?;
        return Err(e);
    }
    let user = session::user_by_email(&mut tx, email.as_str()).await?;
    let ok = verify_secret(
        req.password.clone(),
        user.as_ref().and_then(|u| u.password_hash.clone()),
    )
    .await?;
    let Some(user) = user.filter(|u| ok && u.password_hash.is_some()) else {
        session::throttle_fail(&mut tx, &keys, now).await?;
        audit::record(
            &mut tx,
            &ctx,
            Who::ANONYMOUS,
            None,
            Event::denied(
                "auth.login",
                serde_json::json!({"email": email.as_str(), "reason": "invalid_credentials"}),
            ),
        )
        .await?;
        tx.commit().await?;
        return Err(invalid_credentials());
    };
    session::throttle_clear(&mut tx, &keys[0].0).await?;
    if user.status == "suspended" {
        tx.commit().await?;
        return Err(Error::new(
            ErrorCode::AccountInactive,
            "this account is suspended",
        ));
    }
    let all = session::memberships(&mut tx, user.id).await?;
    let scope = match user.kind() {
        AccountKind::Staff => Some(session::choose_membership(&all, req.business_id)?),
        _ => None,
    };
    sqlx::query("UPDATE users SET last_login_at = $2 WHERE id = $1")
        .bind(user.id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    let tokens = session::issue_platform(&mut tx, &app, &user, scope.as_ref(), &all, None).await?;
    let who = user.who();
    audit::record(
        &mut tx,
        &ctx,
        who,
        None,
        Event::ok("auth.login", "user", user.id),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(tokens))
}

/// Exchanges a refresh token for a new pair (the old one is spent; reusing it revokes the login).
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = Problem)))]
async fn refresh(
    State(app): State<App>,
    ctx: Ctx,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<Json<TokenResponse>> {
    let now = app.clock.now();
    let mut tx = app.db.begin_auth(AuthScope::default()).await?;
    let rotated = match session::spend_refresh(
        &mut tx,
        TokenTable::Platform,
        &req.refresh_token,
        now,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => {
            audit::record(
                &mut tx,
                &ctx,
                Who::ANONYMOUS,
                None,
                Event::denied("auth.refresh", serde_json::json!({})),
            )
            .await?;
            tx.commit().await?;
            return Err(e);
        }
    };
    let user = session::user_by_id(&mut tx, rotated.subject)
        .await?
        .ok_or_else(|| {
            Error::new(
                ErrorCode::InvalidRefreshToken,
                "the account no longer exists",
            )
        })?;
    if user.status == "suspended" {
        session::revoke_family(&mut tx, TokenTable::Platform, rotated.family, now).await?;
        tx.commit().await?;
        return Err(Error::new(
            ErrorCode::AccountInactive,
            "this account is suspended",
        ));
    }
    let all = session::memberships(&mut tx, user.id).await?;
    let scope = match user.kind() {
        AccountKind::Staff => {
            let requested = rotated.scope.map(BusinessId);
            match session::choose_membership(&all, requested) {
                Ok(m) => Some(m),
                Err(e) => {
                    session::revoke_family(&mut tx, TokenTable::Platform, rotated.family, now)
                        .await?;
                    tx.commit().await?;
                    return Err(e);
                }
            }
        }
        _ => None,
    };
    let tokens = session::issue_platform(
        &mut tx,
        &app,
        &user,
        scope.as_ref(),
        &all,
        Some(rotated.family),
    )
    .await?;
    let who = user.who();
    audit::record(
        &mut tx,
        &ctx,
        who,
        None,
        Event::ok("auth.refresh", "token_family", rotated.family),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(tokens))
}

/// Ends one login: its refresh token family is revoked. Unknown tokens are accepted silently.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", request_body = RefreshRequest,
    responses((status = 204, description = "Signed out")))]
async fn logout(
    State(app): State<App>,
    ctx: Ctx,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<StatusCode> {
    let now = app.clock.now();
    let mut tx = app.db.begin_auth(AuthScope::default()).await?;
    if let Some(family) =
        session::family_of(&mut tx, TokenTable::Platform, &req.refresh_token).await?
    {
        session::revoke_family(&mut tx, TokenTable::Platform, family, now).await?;
        audit::record(
            &mut tx,
            &ctx,
            Who::ANONYMOUS,
            None,
            Event::ok("auth.logout", "token_family", family),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Signs out everywhere: every refresh token is revoked and every access token stops working.
#[utoipa::path(post, path = "/api/v1/auth/logout-all", tag = "auth", security(("bearer" = [])),
    responses((status = 204, description = "Signed out everywhere"), (status = 401, body = Problem)))]
async fn logout_all(State(app): State<App>, ctx: Ctx, auth: Auth) -> Result<StatusCode> {
    let (tx, actor) = app.db.begin_as(&auth.0).await?;
    tx.rollback().await?;
    let now = app.clock.now();
    let mut tx = app.db.begin_auth(AuthScope::default()).await?;
    match actor {
        Actor::Customer { customer, business } => {
            let mut ctx_tx = app
                .db
                .begin_auth(AuthScope {
                    user: None,
                    business: Some(business),
                })
                .await?;
            sqlx::query("UPDATE customer_refresh_tokens SET revoked_at = coalesce(revoked_at, $3) WHERE business_id = $1 AND customer_id = $2")
                .bind(business.0).bind(customer.0).bind(now).execute(&mut *ctx_tx).await?;
            sqlx::query("UPDATE customers SET session_version = session_version + 1 WHERE business_id = $1 AND id = $2")
                .bind(business.0).bind(customer.0).execute(&mut *ctx_tx).await?;
            audit::record(
                &mut ctx_tx,
                &ctx,
                Who::from(&actor),
                Some(business),
                Event::ok("auth.logout_all", "customer", customer),
            )
            .await?;
            ctx_tx.commit().await?;
        }
        _ => {
            let user = auth.0.sub;
            sqlx::query("UPDATE refresh_tokens SET revoked_at = coalesce(revoked_at, $2) WHERE user_id = $1").bind(user).bind(now).execute(&mut *tx).await?;
            sqlx::query("UPDATE users SET session_version = session_version + 1 WHERE id = $1")
                .bind(user)
                .execute(&mut *tx)
                .await?;
            audit::record(
                &mut tx,
                &ctx,
                Who::from(&actor),
                None,
                Event::ok("auth.logout_all", "user", user),
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Issues tokens scoped to another business the signed-in staff member belongs to.
#[utoipa::path(post, path = "/api/v1/auth/switch-business", tag = "auth", security(("bearer" = [])), request_body = SwitchBusinessRequest,
    responses((status = 200, body = TokenResponse), (status = 403, body = Problem)))]
async fn switch_business(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiJson(req): ApiJson<SwitchBusinessRequest>,
) -> Result<Json<TokenResponse>> {
    let (tx, actor) = app.db.begin_as(&auth.0).await?;
    tx.rollback().await?;
    if !matches!(actor, Actor::Staff { .. }) {
        return Err(Error::forbidden("only team members can switch business"));
    }
    let mut tx = app
        .db
        .begin_auth(AuthScope {
            user: Some(UserId(auth.0.sub)),
            business: None,
        })
        .await?;
    let user = session::user_by_id(&mut tx, auth.0.sub)
        .await?
        .ok_or_else(|| Error::unauthenticated("the account no longer exists"))?;
    let all = session::memberships(&mut tx, user.id).await?;
    let scope = session::choose_membership(&all, Some(req.business_id))?;
    let tokens = session::issue_platform(&mut tx, &app, &user, Some(&scope), &all, None).await?;
    audit::record(
        &mut tx,
        &ctx,
        Who::from(&actor),
        None,
        Event::ok("auth.switch_business", "business", req.business_id),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(tokens))
}

/// The signed-in account and its scope.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = PrincipalView), (status = 401, body = Problem)))]
async fn me(State(app): State<App>, auth: Auth) -> Result<Json<PrincipalView>> {
    let (mut tx, actor) = app.db.begin_as(&auth.0).await?;
    if let Actor::Customer { customer, business } = actor {
        let row: CustomerRow = sqlx::query_as("SELECT business_id, id, email, full_name, password_hash, session_version FROM customers WHERE business_id = $1 AND id = $2")
            .bind(business.0).bind(customer.0).fetch_one(&mut *tx).await?;
        tx.commit().await?;
        return Ok(Json(PrincipalView {
            id: row.id,
            kind: AccountKind::Customer,
            email: row.email,
            full_name: row.full_name,
            business_id: Some(business),
            role: None,
            permissions: Vec::new(),
            memberships: Vec::new(),
        }));
    }
    let user = session::user_by_id(&mut tx, auth.0.sub)
        .await?
        .ok_or_else(|| Error::unauthenticated("the account no longer exists"))?;
    let all = session::memberships(&mut tx, user.id).await?;
    tx.commit().await?;
    let scope = auth
        .0
        .business_id
        .and_then(|b| all.iter().find(|m| m.business_id == b.0));
    Ok(Json(session::principal_view(&user, scope, &all)))
}

/// Registers a driver account (pending approval by a platform admin before going online).
#[utoipa::path(post, path = "/api/v1/auth/driver/register", tag = "auth", request_body = DriverRegisterRequest,
    responses((status = 201, body = TokenResponse), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn driver_register(
    State(app): State<App>,
    ctx: Ctx,
    ApiJson(req): ApiJson<DriverRegisterRequest>,
) -> Result<(StatusCode, Json<TokenResponse>)> {
    let new = req.parse()?;
    let hash = hash_secret(new.password.expose().to_owned()).await?;
    let id = new_id();
    let mut tx = app
        .db
        .begin_auth(AuthScope {
            user: Some(UserId(id)),
            business: None,
        })
        .await?;
    sqlx::query("INSERT INTO users (id, kind, email, password_hash, full_name, phone, status) VALUES ($1, 'driver', $2, $3, $4, $5, 'pending')")
        .bind(id).bind(new.email.as_str()).bind(&hash).bind(new.full_name.as_str()).bind(new.phone.as_str())
        .execute(&mut *tx).await?;
    let user = session::user_by_id(&mut tx, id)
        .await?
        .ok_or_else(|| Error::unexpected(anyhow::anyhow!("inserted user vanished")))?;
    let tokens = session::issue_platform(&mut tx, &app, &user, None, &[], None).await?;
    audit::record(
        &mut tx,
        &ctx,
        Who {
            kind: "driver",
            id: Some(id),
        },
        None,
        Event::ok("driver.register", "user", id),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(tokens)))
}

/// Sets or replaces the signed-in account's PIN (confirmed with the password); clears a lock.
#[utoipa::path(put, path = "/api/v1/auth/pin", tag = "auth", security(("bearer" = [])), request_body = SetPinRequest,
    responses((status = 204, description = "PIN set"), (status = 401, body = Problem), (status = 422, body = Problem)))]
async fn set_pin(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiJson(req): ApiJson<SetPinRequest>,
) -> Result<StatusCode> {
    let pin = req.parse_pin()?;
    let (tx, actor) = app.db.begin_as(&auth.0).await?;
    tx.rollback().await?;
    if matches!(actor, Actor::Customer { .. }) {
        return Err(Error::forbidden("customers do not use PINs"));
    }
    // Scoped to the token's business: the audit event goes to that business's log.
    let mut tx = app
        .db
        .begin_auth(AuthScope {
            user: Some(UserId(auth.0.sub)),
            business: auth.0.business_id,
        })
        .await?;
    let user = session::user_by_id(&mut tx, auth.0.sub)
        .await?
        .ok_or_else(|| Error::unauthenticated("the account no longer exists"))?;
    if !verify_secret(req.password.clone(), user.password_hash.clone()).await?
        || user.password_hash.is_none()
    {
        audit::record(
            &mut tx,
            &ctx,
            Who::from(&actor),
            None,
            Event::denied(
                "auth.pin.set",
                serde_json::json!({"reason": "invalid_credentials"}),
            ),
        )
        .await?;
        tx.commit().await?;
        return Err(invalid_credentials());
    }
    let hash = hash_secret(pin.expose().to_owned()).await?;
    sqlx::query(
        "INSERT INTO pin_credentials (user_id, pin_hash, failed_attempts, locked_at, updated_at) VALUES ($1, $2, 0, NULL, $3) \
         ON CONFLICT (user_id) DO UPDATE SET pin_hash = EXCLUDED.pin_hash, failed_attempts = 0, locked_at = NULL, updated_at = EXCLUDED.updated_at",
    )
    .bind(user.id).bind(hash).bind(app.clock.now()).execute(&mut *tx).await?;
    audit::record(
        &mut tx,
        &ctx,
        Who::from(&actor),
        auth.0.business_id,
        Event::ok("auth.pin.set", "user", user.id),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Confirms a sensitive action with the PIN and returns a short-lived elevated token for it.
/// Five wrong PINs lock the PIN until it is set again with the password.
#[utoipa::path(post, path = "/api/v1/auth/pin/verify", tag = "auth", security(("bearer" = [])), request_body = VerifyPinRequest,
    responses((status = 200, body = ElevatedTokenResponse), (status = 401, body = Problem), (status = 423, body = Problem)))]
async fn verify_pin(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiJson(req): ApiJson<VerifyPinRequest>,
) -> Result<Json<ElevatedTokenResponse>> {
    let mut errors = FieldErrors::default();
    let pin = errors.check("pin", Pin::parse_attempt(&req.pin));
    let pin = errors.finish(|| pin)?;
    let (tx, actor) = app.db.begin_as(&auth.0).await?;
    tx.rollback().await?;
    if matches!(actor, Actor::Customer { .. }) {
        return Err(Error::forbidden("customers do not use PINs"));
    }
    let now = app.clock.now();
    // Scoped to the token's business: the audit event goes to that business's log.
    let mut tx = app
        .db
        .begin_auth(AuthScope {
            user: Some(UserId(auth.0.sub)),
            business: auth.0.business_id,
        })
        .await?;
    let row: Option<(String, i32, Option<chrono::DateTime<chrono::Utc>>)> =
        sqlx::query_as("SELECT pin_hash, failed_attempts, locked_at FROM pin_credentials WHERE user_id = $1 FOR UPDATE")
            .bind(auth.0.sub).fetch_optional(&mut *tx).await?;
    let Some((hash, failures, locked_at)) = row else {
        return Err(Error::new(
            ErrorCode::PinNotSet,
            "set a PIN first: PUT /api/v1/auth/pin",
        ));
    };
    if locked_at.is_some() {
        return Err(Error::new(
            ErrorCode::PinLocked,
            "the PIN is locked after too many wrong attempts; set it again with your password",
        ));
    }
    if !verify_secret(pin.expose().to_owned(), Some(hash)).await? {
        let failures = failures.saturating_add(1);
        let lock = u32::try_from(failures).unwrap_or(u32::MAX) >= PIN_MAX_FAILURES;
        sqlx::query("UPDATE pin_credentials SET failed_attempts = $2, locked_at = CASE WHEN $3 THEN $4 ELSE locked_at END WHERE user_id = $1")
            .bind(auth.0.sub).bind(failures).bind(lock).bind(now).execute(&mut *tx).await?;
        tx.commit().await?;
        return Err(if lock {
            Error::new(
                ErrorCode::PinLocked,
                "too many wrong PINs: the PIN is now locked; set it again with your password",
            )
        } else {
            Error::new(
                ErrorCode::InvalidPin,
                format!(
                    "wrong PIN; {} attempts left",
                    i64::from(PIN_MAX_FAILURES) - i64::from(failures)
                ),
            )
        });
    }
    sqlx::query("UPDATE pin_credentials SET failed_attempts = 0 WHERE user_id = $1")
        .bind(auth.0.sub)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut tx,
        &ctx,
        Who::from(&actor),
        auth.0.business_id,
        Event::ok("auth.pin.verify", "action", req.action.as_str()),
    )
    .await?;
    tx.commit().await?;
    let spec = TokenSpec {
        sub: auth.0.sub,
        kind: auth.0.kind,
        business_id: auth.0.business_id,
        role: auth.0.role.clone(),
        session_version: auth.0.sv,
    };
    Ok(Json(ElevatedTokenResponse {
        elevated_token: app.keys.sign(
            &spec,
            TokenType::Elevated,
            Some(req.action),
            now,
            ELEVATED_TOKEN_SECS,
        ),
        expires_in: ELEVATED_TOKEN_SECS,
        action: req.action,
    }))
}

/// Chooses a password with the one-time token from a welcome or invitation email.
#[utoipa::path(post, path = "/api/v1/auth/password/setup", tag = "auth", request_body = PasswordSetupRequest,
    responses((status = 204, description = "Password set"), (status = 401, body = Problem), (status = 422, body = Problem)))]
async fn password_setup(
    State(app): State<App>,
    ctx: Ctx,
    ApiJson(req): ApiJson<PasswordSetupRequest>,
) -> Result<StatusCode> {
    let mut errors = FieldErrors::default();
    let password = errors.check("password", Password::parse_new(&req.password));
    let password = errors.finish(|| password)?;
    let now = app.clock.now();
    let mut tx = app.db.begin_auth(AuthScope::default()).await?;
    let row: Option<(Uuid, chrono::DateTime<chrono::Utc>, Option<chrono::DateTime<chrono::Utc>>)> =
        sqlx::query_as("SELECT user_id, expires_at, used_at FROM password_setup_tokens WHERE token_hash = $1 FOR UPDATE")
            .bind(secret_hash(&req.token)).fetch_optional(&mut *tx).await?;
    let Some((user, _, None)) = row.filter(|r| r.1 > now) else {
        return Err(Error::new(
            ErrorCode::InvalidSetupToken,
            "the link is not valid or has expired; ask for a new one",
        ));
    };
    let hash = hash_secret(password.expose().to_owned()).await?;
    sqlx::query("UPDATE password_setup_tokens SET used_at = $2 WHERE token_hash = $1")
        .bind(secret_hash(&req.token))
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE users SET password_hash = $2, session_version = session_version + 1 WHERE id = $1",
    )
    .bind(user)
    .bind(hash)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        &ctx,
        Who {
            kind: "staff",
            id: Some(user),
        },
        None,
        Event::ok("auth.password.setup", "user", user),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn resolve_store(app: &App, store: &Subdomain) -> Result<BusinessId> {
    tenancy::published_store(&app.db.pool, store.as_str())
        .await?
        .ok_or_else(|| Error::not_found("store"))
}

/// Creates a customer account at one store.
#[utoipa::path(post, path = "/api/v1/auth/customer/register", tag = "customer auth", request_body = CustomerRegisterRequest,
    responses((status = 201, body = TokenResponse), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn customer_register(
    State(app): State<App>,
    ctx: Ctx,
    ApiJson(req): ApiJson<CustomerRegisterRequest>,
) -> Result<(StatusCode, Json<TokenResponse>)> {
    let new = req.parse()?;
    let business = resolve_store(&app, &new.store).await?;
    let hash = hash_secret(new.password.expose().to_owned()).await?;
    let id = new_id();
    let mut tx = app
        .db
        .begin_auth(AuthScope {
            user: None,
            business: Some(business),
        })
        .await?;
    let customer: CustomerRow = sqlx::query_as(
        "INSERT INTO customers (business_id, id, email, phone, full_name, password_hash) VALUES ($1, $2, $3, $4, $5, $6) \
         RETURNING business_id, id, email, full_name, password_hash, session_version",
    )
    .bind(business.0).bind(id).bind(new.email.as_str()).bind(new.phone.as_ref().map(|p| p.as_str())).bind(new.full_name.as_str()).bind(&hash)
    .fetch_one(&mut *tx).await?;
    let tokens = session::issue_customer(&mut tx, &app, &customer, None).await?;
    audit::record(
        &mut tx,
        &ctx,
        Who::customer(Some(id)),
        Some(business),
        Event::ok("customer.register", "customer", id),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(tokens)))
}

/// Signs in a customer at one store.
#[utoipa::path(post, path = "/api/v1/auth/customer/login", tag = "customer auth", request_body = CustomerLoginRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = Problem), (status = 404, body = Problem), (status = 429, body = Problem)))]
async fn customer_login(
    State(app): State<App>,
    ctx: Ctx,
    ApiJson(req): ApiJson<CustomerLoginRequest>,
) -> Result<Json<TokenResponse>> {
    let mut errors = FieldErrors::default();
    let store = errors.check("store", Subdomain::parse(&req.store));
    let email = errors.check("email", Email::parse(&req.email));
    let (store, email) = errors.finish(|| Some((store?, email?)))?;
    let business = resolve_store(&app, &store).await?;
    let now = app.clock.now();
    let keys = session::login_keys(
        &format!("{}/{}", business, email.as_str()),
        &ctx.client_address,
    );
    let mut tx = app
        .db
        .begin_auth(AuthScope {
            user: None,
            business: Some(business),
        })
        .await?;
    if let Err(e) = session::throttle_gate(&mut tx, &keys, now).await {
        tx.commit().await?;
        return Err(e);
    }
    let customer: Option<CustomerRow> = sqlx::query_as(
        "SELECT business_id, id, email, full_name, password_hash, session_version FROM customers WHERE business_id = $1 AND email = $2",
    )
    .bind(business.0).bind(email.as_str()).fetch_optional(&mut *tx).await?;
    let ok = verify_secret(
        req.password.clone(),
        customer.as_ref().and_then(|c| c.password_hash.clone()),
    )
    .await?;
    let Some(customer) = customer.filter(|c| ok && c.password_hash.is_some()) else {
        session::throttle_fail(&mut tx, &keys, now).await?;
        audit::record(
            &mut tx,
            &ctx,
            Who::ANONYMOUS,
            Some(business),
            Event::denied(
                "customer.login",
                serde_json::json!({"email": email.as_str()}),
            ),
        )
        .await?;
        tx.commit().await?;
        return Err(invalid_credentials());
    };
    session::throttle_clear(&mut tx, &keys[0].0).await?;
    let tokens = session::issue_customer(&mut tx, &app, &customer, None).await?;
    let who = Who::customer(Some(customer.id));
    audit::record(
        &mut tx,
        &ctx,
        who,
        Some(business),
        Event::ok("customer.login", "customer", customer.id),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(tokens))
}

/// Exchanges a customer refresh token for a new pair.
#[utoipa::path(post, path = "/api/v1/auth/customer/refresh", tag = "customer auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = Problem)))]
async fn customer_refresh(
    State(app): State<App>,
    ctx: Ctx,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<Json<TokenResponse>> {
    let invalid = || {
        Error::new(
            ErrorCode::InvalidRefreshToken,
            "the refresh token is not valid; sign in again",
        )
    };
    let business = customer_token_business(&req.refresh_token).ok_or_else(invalid)?;
    let now = app.clock.now();
    let mut tx = app
        .db
        .begin_auth(AuthScope {
            user: None,
            business: Some(business),
        })
        .await?;
    let rotated = match session::spend_refresh(
        &mut tx,
        TokenTable::Customer,
        &req.refresh_token,
        now,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => {
            tx.commit().await?;
            return Err(e);
        }
    };
    let customer: CustomerRow = sqlx::query_as(
        "SELECT business_id, id, email, full_name, password_hash, session_version FROM customers WHERE business_id = $1 AND id = $2",
    )
    .bind(business.0).bind(rotated.subject).fetch_optional(&mut *tx).await?.ok_or_else(invalid)?;
    let tokens = session::issue_customer(&mut tx, &app, &customer, Some(rotated.family)).await?;
    let who = Who::customer(Some(customer.id));
    audit::record(
        &mut tx,
        &ctx,
        who,
        Some(business),
        Event::ok("customer.refresh", "token_family", rotated.family),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(tokens))
}

/// Ends a customer's login.
#[utoipa::path(post, path = "/api/v1/auth/customer/logout", tag = "customer auth", request_body = RefreshRequest,
    responses((status = 204, description = "Signed out")))]
async fn customer_logout(
    State(app): State<App>,
    ctx: Ctx,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<StatusCode> {
    let Some(business) = customer_token_business(&req.refresh_token) else {
        return Ok(StatusCode::NO_CONTENT);
    };
    let mut tx = app
        .db
        .begin_auth(AuthScope {
            user: None,
            business: Some(business),
        })
        .await?;
    if let Some(family) =
        session::family_of(&mut tx, TokenTable::Customer, &req.refresh_token).await?
    {
        session::revoke_family(&mut tx, TokenTable::Customer, family, app.clock.now()).await?;
        audit::record(
            &mut tx,
            &ctx,
            Who::customer(None),
            Some(business),
            Event::ok("customer.logout", "token_family", family),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
