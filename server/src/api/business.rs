//! A business's own settings: `/api/v1/business/*`. The business is always the one in the
//! verified token; ids in paths are looked up inside it, so another business's ids answer 404.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use chrono::{DateTime, Utc};
use fleetfront_domain::api::business::{
    AddStaffRequest, CreateRoleRequest, RoleView, StaffMemberView, StorefrontView, ThemeColors,
    UpdateRoleRequest, UpdateStaffRequest, UpdateStorefrontRequest,
};
use fleetfront_domain::api::{FieldErrors, Problem};
use fleetfront_domain::hours::OperatingHours;
use fleetfront_domain::permission::{Actor, Permission, PermissionSet, Resource, SensitiveAction};
use fleetfront_domain::plan::LimitKind;
use fleetfront_domain::value::Slug;
use fleetfront_domain::{BusinessId, ErrorCode, RoleId, UserId};
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, Row};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{authorize, staff_business};
use crate::app::App;
use crate::audit::{self, Event, Who};
use crate::auth::hash_secret;
use crate::context::Ctx;
use crate::db::{new_id, set_principal, Tx};
use crate::error::{Error, Result};
use crate::extract::{require_elevation, ApiJson, ApiPath, ApiQuery, Auth};
use crate::tenancy;

pub(crate) fn routes(router: OpenApiRouter<App>) -> OpenApiRouter<App> {
    router
        .routes(routes!(get_storefront, update_storefront))
        .routes(routes!(list_staff, add_staff))
        .routes(routes!(update_staff, remove_staff))
        .routes(routes!(list_roles, create_role))
        .routes(routes!(update_role, delete_role))
        .routes(routes!(audit_log))
}

/// Begins as a staff member and checks `permission` in their business.
pub(crate) async fn begin_staff(
    app: &App,
    auth: &Auth,
    permission: Permission,
) -> Result<(Tx, Actor, BusinessId)> {
    let (tx, actor) = app.db.begin_as(&auth.0).await?;
    let business = staff_business(&actor)?;
    authorize(&actor, permission, Resource::Business(business))?;
    Ok((tx, actor, business))
}

#[derive(FromRow)]
struct StorefrontRow {
    business_id: Uuid,
    subdomain: String,
    custom_domain: Option<String>,
    theme_colors: serde_json::Value,
    operating_hours: serde_json::Value,
    logo_url: Option<String>,
    banner_url: Option<String>,
    is_published: bool,
    updated_at: DateTime<Utc>,
}

async fn storefront(tx: &mut Tx, app: &App, business: BusinessId) -> Result<StorefrontView> {
    let row: StorefrontRow = sqlx::query_as(
        "SELECT business_id, subdomain, custom_domain, theme_colors, operating_hours, logo_url, banner_url, is_published, updated_at \
         FROM business_storefront_settings WHERE business_id = $1",
    )
    .bind(business.0)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| Error::not_found("storefront"))?;
    Ok(StorefrontView {
        business_id: BusinessId(row.business_id),
        url: match &row.custom_domain {
            Some(domain) => format!("https://{domain}/"),
            None => app.storefront_url(&row.subdomain),
        },
        subdomain: row.subdomain,
        custom_domain: row.custom_domain,
        theme_colors: serde_json::from_value::<ThemeColors>(row.theme_colors).unwrap_or_default(),
        operating_hours: serde_json::from_value::<OperatingHours>(row.operating_hours)
            .unwrap_or_default(),
        logo_url: row.logo_url,
        banner_url: row.banner_url,
        is_published: row.is_published,
        updated_at: row.updated_at,
    })
}

/// The storefront settings of the signed-in business.
#[utoipa::path(get, path = "/api/v1/business/storefront", tag = "business", security(("bearer" = [])),
    responses((status = 200, body = StorefrontView), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn get_storefront(State(app): State<App>, auth: Auth) -> Result<Json<StorefrontView>> {
    let (mut tx, _, business) = begin_staff(&app, &auth, Permission::BusinessRead).await?;
    let view = storefront(&mut tx, &app, business).await?;
    tx.commit().await?;
    Ok(Json(view))
}

/// Changes the storefront settings. A custom domain needs a plan that includes it.
#[utoipa::path(patch, path = "/api/v1/business/storefront", tag = "business", security(("bearer" = [])), request_body = UpdateStorefrontRequest,
    responses((status = 200, body = StorefrontView), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn update_storefront(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiJson(req): ApiJson<UpdateStorefrontRequest>,
) -> Result<Json<StorefrontView>> {
    let update = req.parse()?;
    let (mut tx, actor, business) = begin_staff(&app, &auth, Permission::StorefrontManage).await?;
    if let Some(Some(_)) = &update.custom_domain {
        let (_, features) = tenancy::entitlements(&mut tx, business).await?;
        if !features.custom_domain {
            return Err(Error::new(
                ErrorCode::PlanLimitReached,
                "the plan does not include custom domains; upgrade to use one",
            ));
        }
    }
    let current = storefront(&mut tx, &app, business).await?;
    let subdomain = update
        .subdomain
        .as_ref()
        .map_or(current.subdomain.as_str(), |s| s.as_str())
        .to_owned();
    let domain = update
        .custom_domain
        .as_ref()
        .and_then(|d| d.as_ref().map(|d| d.as_str().to_owned()));
    if let Some(domain) = &domain {
        // The platform's own domain (and its subdomains) are not a store's to claim.
        let base = app.base_domain.to_ascii_lowercase();
        if *domain == base || domain.ends_with(&format!(".{base}")) {
            return Err(Error::field("custom_domain", "platform_domain", format!("domains under {base} belong to the platform; use the subdomain setting instead")));
        }
    }
    let (sub_taken, domain_taken) =
        tenancy::host_taken(&mut tx, &subdomain, domain.as_deref(), Some(business)).await?;
    if sub_taken {
        return Err(
            Error::field("subdomain", "taken", "this subdomain is already in use")
                .with_code(ErrorCode::SubdomainTaken),
        );
    }
    if domain_taken {
        return Err(
            Error::field("custom_domain", "taken", "this domain is already in use")
                .with_code(ErrorCode::DomainTaken),
        );
    }
    sqlx::query(
        "UPDATE business_storefront_settings SET subdomain = $2, \
           custom_domain = CASE WHEN $3 THEN $4 ELSE custom_domain END, \
           theme_colors = coalesce($5, theme_colors), operating_hours = coalesce($6, operating_hours), \
           logo_url = CASE WHEN $7 THEN $8 ELSE logo_url END, banner_url = CASE WHEN $9 THEN $10 ELSE banner_url END, \
           is_published = coalesce($11, is_published), updated_at = now() \
         WHERE business_id = $1",
    )
    .bind(business.0)
    .bind(&subdomain)
    .bind(update.custom_domain.is_some())
    .bind(domain)
    .bind(to_json(&update.theme_colors)?)
    .bind(to_json(&update.operating_hours)?)
    .bind(update.logo_url.is_some())
    .bind(update.logo_url.as_ref().and_then(|u| u.as_ref().map(|u| u.as_str().to_owned())))
    .bind(update.banner_url.is_some())
    .bind(update.banner_url.as_ref().and_then(|u| u.as_ref().map(|u| u.as_str().to_owned())))
    .bind(update.is_published)
    .execute(&mut *tx)
    .await?;
    let event = Event::ok("storefront.update", "storefront", business).with_request(&req)?;
    audit::record(&mut tx, &ctx, Who::from(&actor), Some(business), event).await?;
    let view = storefront(&mut tx, &app, business).await?;
    tx.commit().await?;
    Ok(Json(view))
}

fn to_json<T: Serialize>(value: &Option<T>) -> Result<Option<serde_json::Value>> {
    value
        .as_ref()
        .map(serde_json::to_value)
        .transpose()
        .map_err(Error::unexpected)
}

#[derive(FromRow)]
struct StaffRow {
    user_id: Uuid,
    email: String,
    full_name: String,
    role_id: Uuid,
    role_key: String,
    created_at: DateTime<Utc>,
}

impl From<StaffRow> for StaffMemberView {
    fn from(r: StaffRow) -> Self {
        StaffMemberView {
            user_id: UserId(r.user_id),
            email: r.email,
            full_name: r.full_name,
            role_id: RoleId(r.role_id),
            role: r.role_key,
            joined_at: r.created_at,
        }
    }
}

async fn staff_member(tx: &mut Tx, business: BusinessId, user: Uuid) -> Result<StaffRow> {
    Ok(sqlx::query_as(&format!(
        "{STAFF_SELECT} WHERE m.business_id = $1 AND m.user_id = $2"
    ))
    .bind(business.0)
    .bind(user)
    .fetch_one(&mut **tx)
    .await?)
}

const STAFF_SELECT: &str = "SELECT m.user_id, u.email, u.full_name, m.role_id, r.key AS role_key, m.created_at \
    FROM memberships m JOIN users u ON u.id = m.user_id JOIN roles r ON r.business_id = m.business_id AND r.id = m.role_id";

/// The team.
#[utoipa::path(get, path = "/api/v1/business/staff", tag = "business", security(("bearer" = [])),
    responses((status = 200, body = Vec<StaffMemberView>), (status = 403, body = Problem)))]
async fn list_staff(State(app): State<App>, auth: Auth) -> Result<Json<Vec<StaffMemberView>>> {
    let (mut tx, _, business) = begin_staff(&app, &auth, Permission::StaffRead).await?;
    let rows: Vec<StaffRow> = sqlx::query_as(&format!(
        "{STAFF_SELECT} WHERE m.business_id = $1 ORDER BY m.created_at, m.user_id"
    ))
    .bind(business.0)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Json(rows.into_iter().map(Into::into).collect()))
}

struct RoleRow {
    id: Uuid,
    key: String,
    name: String,
    builtin: bool,
    permissions: PermissionSet,
}

async fn role_by(
    tx: &mut Tx,
    business: BusinessId,
    id: Option<Uuid>,
    key: Option<&str>,
) -> Result<Option<RoleRow>> {
    let row = sqlx::query(
        "SELECT r.id, r.key, r.name, r.is_builtin, coalesce(array_agg(rp.permission) FILTER (WHERE rp.permission IS NOT NULL), ARRAY[]::text[]) AS permissions \
         FROM roles r LEFT JOIN role_permissions rp ON rp.business_id = r.business_id AND rp.role_id = r.id \
         WHERE r.business_id = $1 AND ($2::uuid IS NULL OR r.id = $2) AND ($3::text IS NULL OR r.key = $3) GROUP BY r.id, r.key, r.name, r.is_builtin",
    )
    .bind(business.0)
    .bind(id)
    .bind(key)
    .fetch_optional(&mut **tx)
    .await?;
    row.map(|r| {
        let keys: Vec<String> = r.try_get("permissions")?;
        Ok(RoleRow {
            id: r.try_get("id")?,
            key: r.try_get("key")?,
            name: r.try_get("name")?,
            builtin: r.try_get("is_builtin")?,
            permissions: keys.iter().filter_map(|k| Permission::parse(k)).collect(),
        })
    })
    .transpose()
}

fn actor_permissions(actor: &Actor) -> PermissionSet {
    match actor {
        Actor::Staff { permissions, .. } => permissions.clone(),
        _ => PermissionSet::default(),
    }
}

/// A member may hand out only permissions they hold themselves.
fn ensure_may_grant(actor: &Actor, permissions: &PermissionSet) -> Result<()> {
    if matches!(actor, Actor::Admin { .. }) || actor_permissions(actor).is_superset(permissions) {
        Ok(())
    } else {
        Err(Error::forbidden(
            "you cannot grant permissions you do not hold",
        ))
    }
}

async fn bump_session(tx: &mut Tx, user: Uuid) -> Result<()> {
    sqlx::query("UPDATE users SET session_version = session_version + 1 WHERE id = $1")
        .bind(user)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Adds a team member (uses a staff seat of the plan). A new account receives a set-up link.
#[utoipa::path(post, path = "/api/v1/business/staff", tag = "business", security(("bearer" = [])), request_body = AddStaffRequest,
    responses((status = 201, body = StaffMemberView), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn add_staff(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiJson(req): ApiJson<AddStaffRequest>,
) -> Result<(StatusCode, Json<StaffMemberView>)> {
    let new = req.parse()?;
    let (mut tx, actor, business) = begin_staff(&app, &auth, Permission::StaffManage).await?;
    let role = role_by(&mut tx, business, None, Some(new.role.as_str()))
        .await?
        .ok_or_else(|| Error::field("role", "unknown_role", "there is no role with this key"))?;
    ensure_may_grant(&actor, &role.permissions)?;
    let seats: i64 = sqlx::query_scalar("SELECT count(*) FROM memberships WHERE business_id = $1")
        .bind(business.0)
        .fetch_one(&mut *tx)
        .await?;
    tenancy::check_plan_limit(&mut tx, business, LimitKind::StaffSeats, seats).await?;
    let hash = match &new.password {
        Some(p) => Some(hash_secret(p.expose().to_owned()).await?),
        None => None,
    };
    // Finding an account by email across the platform and issuing a set-up link are sign-in
    // flow operations: a team member sees only their own team's accounts and cannot write
    // set-up tokens, so this step runs as kind `auth`, then the staff principal is restored.
    set_principal(&mut tx, "auth", None, None, None).await?;
    let (user, setup_token) = tenancy::find_or_create_staff(
        &mut tx,
        &new.email,
        new.full_name.as_str(),
        hash,
        app.clock.now(),
    )
    .await?;
    set_principal(&mut tx, "staff", Some(auth.0.sub), None, Some(business.0)).await?;
    let inserted = sqlx::query("INSERT INTO memberships (business_id, user_id, role_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
        .bind(business.0).bind(user).bind(role.id).execute(&mut *tx).await?;
    if inserted.rows_affected() == 0 {
        return Err(Error::new(
            ErrorCode::Conflict,
            "this person is already on the team",
        ));
    }
    crate::notify::enqueue_email(
        &mut tx,
        business,
        serde_json::json!({"template": "staff_invitation", "to": new.email.as_str(), "role": role.key, "password_setup_token": setup_token}),
    )
    .await?;
    audit::record(
        &mut tx,
        &ctx,
        Who::from(&actor),
        Some(business),
        Event::ok("staff.add", "user", user).with_details(serde_json::json!({"role": role.key})),
    )
    .await?;
    let row = staff_member(&mut tx, business, user).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

async fn owners_left(tx: &mut Tx, business: BusinessId, except: Uuid) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM memberships m JOIN roles r ON r.business_id = m.business_id AND r.id = m.role_id \
         WHERE m.business_id = $1 AND r.key = 'owner' AND m.user_id <> $2",
    )
    .bind(business.0)
    .bind(except)
    .fetch_one(&mut **tx)
    .await?)
}

async fn member_role(tx: &mut Tx, business: BusinessId, user: Uuid) -> Result<RoleRow> {
    let role_id: Uuid = sqlx::query_scalar(
        "SELECT role_id FROM memberships WHERE business_id = $1 AND user_id = $2 FOR UPDATE",
    )
    .bind(business.0)
    .bind(user)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| Error::not_found("team member"))?;
    role_by(tx, business, Some(role_id), None)
        .await?
        .ok_or_else(|| Error::not_found("role"))
}

/// Changes a member's role. Needs a PIN-elevated token for `role_change`; their current tokens
/// stop working at once.
#[utoipa::path(patch, path = "/api/v1/business/staff/{user_id}", tag = "business", security(("bearer" = [])),
    params(("user_id" = Uuid, Path, description = "The member's user id")), request_body = UpdateStaffRequest,
    responses((status = 200, body = StaffMemberView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn update_staff(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    headers: HeaderMap,
    ApiPath(user): ApiPath<Uuid>,
    ApiJson(req): ApiJson<UpdateStaffRequest>,
) -> Result<Json<StaffMemberView>> {
    let mut errors = FieldErrors::default();
    let key = errors.check("role", Slug::parse(&req.role));
    let key = errors.finish(|| key)?;
    let (mut tx, actor, business) = begin_staff(&app, &auth, Permission::StaffManage).await?;
    let current = member_role(&mut tx, business, user).await?;
    require_elevation(&app, &headers, &auth, SensitiveAction::RoleChange)?;
    let role = role_by(&mut tx, business, None, Some(key.as_str()))
        .await?
        .ok_or_else(|| Error::field("role", "unknown_role", "there is no role with this key"))?;
    ensure_may_grant(&actor, &role.permissions)?;
    ensure_may_grant(&actor, &current.permissions)?;
    if current.key == "owner"
        && role.key != "owner"
        && owners_left(&mut tx, business, user).await? == 0
    {
        return Err(Error::new(
            ErrorCode::Conflict,
            "a business needs at least one owner",
        ));
    }
    sqlx::query("UPDATE memberships SET role_id = $3 WHERE business_id = $1 AND user_id = $2")
        .bind(business.0)
        .bind(user)
        .bind(role.id)
        .execute(&mut *tx)
        .await?;
    bump_session(&mut tx, user).await?;
    audit::record(
        &mut tx,
        &ctx,
        Who::from(&actor),
        Some(business),
        Event::ok("staff.role_change", "user", user)
            .with_details(serde_json::json!({"from": current.key, "to": role.key})),
    )
    .await?;
    let row = staff_member(&mut tx, business, user).await?;
    tx.commit().await?;
    Ok(Json(row.into()))
}

/// Removes a member from the team (needs a PIN-elevated token for `role_change`).
#[utoipa::path(delete, path = "/api/v1/business/staff/{user_id}", tag = "business", security(("bearer" = [])),
    params(("user_id" = Uuid, Path, description = "The member's user id")),
    responses((status = 204, description = "Removed"), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn remove_staff(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    headers: HeaderMap,
    ApiPath(user): ApiPath<Uuid>,
) -> Result<StatusCode> {
    let (mut tx, actor, business) = begin_staff(&app, &auth, Permission::StaffManage).await?;
    let current = member_role(&mut tx, business, user).await?;
    require_elevation(&app, &headers, &auth, SensitiveAction::RoleChange)?;
    ensure_may_grant(&actor, &current.permissions)?;
    if current.key == "owner" && owners_left(&mut tx, business, user).await? == 0 {
        return Err(Error::new(
            ErrorCode::Conflict,
            "a business needs at least one owner",
        ));
    }
    sqlx::query("DELETE FROM memberships WHERE business_id = $1 AND user_id = $2")
        .bind(business.0)
        .bind(user)
        .execute(&mut *tx)
        .await?;
    bump_session(&mut tx, user).await?;
    audit::record(
        &mut tx,
        &ctx,
        Who::from(&actor),
        Some(business),
        Event::ok("staff.remove", "user", user),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

fn role_view(role: RoleRow) -> RoleView {
    RoleView {
        id: RoleId(role.id),
        key: role.key,
        name: role.name,
        builtin: role.builtin,
        permissions: role.permissions.iter().collect(),
    }
}

/// The business's roles, built-in and custom.
#[utoipa::path(get, path = "/api/v1/business/roles", tag = "business", security(("bearer" = [])),
    responses((status = 200, body = Vec<RoleView>), (status = 403, body = Problem)))]
async fn list_roles(State(app): State<App>, auth: Auth) -> Result<Json<Vec<RoleView>>> {
    let (mut tx, _, business) = begin_staff(&app, &auth, Permission::StaffRead).await?;
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM roles WHERE business_id = $1 ORDER BY is_builtin DESC, created_at, key",
    )
    .bind(business.0)
    .fetch_all(&mut *tx)
    .await?;
    let mut roles = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(role) = role_by(&mut tx, business, Some(id), None).await? {
            roles.push(role_view(role));
        }
    }
    tx.commit().await?;
    Ok(Json(roles))
}

async fn write_permissions(
    tx: &mut Tx,
    business: BusinessId,
    role: Uuid,
    permissions: &[Permission],
) -> Result<()> {
    sqlx::query("DELETE FROM role_permissions WHERE business_id = $1 AND role_id = $2")
        .bind(business.0)
        .bind(role)
        .execute(&mut **tx)
        .await?;
    let keys: Vec<&str> = permissions.iter().map(|p| p.key()).collect();
    sqlx::query("INSERT INTO role_permissions (business_id, role_id, permission) SELECT $1, $2, unnest($3::text[])")
        .bind(business.0).bind(role).bind(&keys).execute(&mut **tx).await?;
    Ok(())
}

/// Creates a custom role from the permission list (plans with custom roles only).
#[utoipa::path(post, path = "/api/v1/business/roles", tag = "business", security(("bearer" = [])), request_body = CreateRoleRequest,
    responses((status = 201, body = RoleView), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_role(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    ApiJson(req): ApiJson<CreateRoleRequest>,
) -> Result<(StatusCode, Json<RoleView>)> {
    let new = req.parse()?;
    let (mut tx, actor, business) = begin_staff(&app, &auth, Permission::RolesManage).await?;
    let (_, features) = tenancy::entitlements(&mut tx, business).await?;
    if !features.custom_roles {
        return Err(Error::new(
            ErrorCode::PlanLimitReached,
            "the plan does not include custom roles; upgrade to create them",
        ));
    }
    let custom: i64 =
        sqlx::query_scalar("SELECT count(*) FROM roles WHERE business_id = $1 AND NOT is_builtin")
            .bind(business.0)
            .fetch_one(&mut *tx)
            .await?;
    tenancy::check_plan_limit(&mut tx, business, LimitKind::CustomRoles, custom).await?;
    ensure_may_grant(&actor, &new.permissions.iter().copied().collect())?;
    if role_by(&mut tx, business, None, Some(new.key.as_str()))
        .await?
        .is_some()
    {
        return Err(Error::field("key", "taken", "a role with this key exists")
            .with_code(ErrorCode::Conflict));
    }
    let id = new_id();
    sqlx::query(
        "INSERT INTO roles (business_id, id, key, name, is_builtin) VALUES ($1, $2, $3, $4, false)",
    )
    .bind(business.0)
    .bind(id)
    .bind(new.key.as_str())
    .bind(new.name.as_str())
    .execute(&mut *tx)
    .await?;
    write_permissions(&mut tx, business, id, &new.permissions).await?;
    audit::record(
        &mut tx,
        &ctx,
        Who::from(&actor),
        Some(business),
        Event::ok("role.create", "role", id),
    )
    .await?;
    let role = role_by(&mut tx, business, Some(id), None)
        .await?
        .ok_or_else(|| Error::not_found("role"))?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(role_view(role))))
}

async fn custom_role_for_change(tx: &mut Tx, business: BusinessId, id: Uuid) -> Result<RoleRow> {
    let role = role_by(tx, business, Some(id), None)
        .await?
        .ok_or_else(|| Error::not_found("role"))?;
    if role.builtin {
        return Err(Error::new(
            ErrorCode::Conflict,
            "built-in roles cannot be changed",
        ));
    }
    Ok(role)
}

/// Renames a custom role or replaces its permissions (needs a PIN-elevated token for
/// `role_change`); members holding it must sign in again.
#[utoipa::path(patch, path = "/api/v1/business/roles/{id}", tag = "business", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Role id")), request_body = UpdateRoleRequest,
    responses((status = 200, body = RoleView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn update_role(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    headers: HeaderMap,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<UpdateRoleRequest>,
) -> Result<Json<RoleView>> {
    let mut errors = FieldErrors::default();
    let name = req
        .name
        .as_deref()
        .and_then(|n| errors.check("name", fleetfront_domain::value::DisplayName::parse(n)));
    tenancy::fail_on(errors)?;
    let (mut tx, actor, business) = begin_staff(&app, &auth, Permission::RolesManage).await?;
    let role = custom_role_for_change(&mut tx, business, id).await?;
    require_elevation(&app, &headers, &auth, SensitiveAction::RoleChange)?;
    ensure_may_grant(&actor, &role.permissions)?;
    if let Some(name) = &name {
        sqlx::query("UPDATE roles SET name = $3 WHERE business_id = $1 AND id = $2")
            .bind(business.0)
            .bind(id)
            .bind(name.as_str())
            .execute(&mut *tx)
            .await?;
    }
    if let Some(permissions) = &req.permissions {
        let mut permissions = permissions.clone();
        permissions.sort_unstable();
        permissions.dedup();
        ensure_may_grant(&actor, &permissions.iter().copied().collect())?;
        write_permissions(&mut tx, business, id, &permissions).await?;
        sqlx::query("UPDATE users SET session_version = session_version + 1 WHERE id IN (SELECT user_id FROM memberships WHERE business_id = $1 AND role_id = $2)")
            .bind(business.0).bind(id).execute(&mut *tx).await?;
    }
    audit::record(
        &mut tx,
        &ctx,
        Who::from(&actor),
        Some(business),
        Event::ok("role.update", "role", id).with_request(&req)?,
    )
    .await?;
    let role = role_by(&mut tx, business, Some(id), None)
        .await?
        .ok_or_else(|| Error::not_found("role"))?;
    tx.commit().await?;
    Ok(Json(role_view(role)))
}

/// Deletes a custom role nobody holds (needs a PIN-elevated token for `role_change`).
#[utoipa::path(delete, path = "/api/v1/business/roles/{id}", tag = "business", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Role id")),
    responses((status = 204, description = "Deleted"), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn delete_role(
    State(app): State<App>,
    ctx: Ctx,
    auth: Auth,
    headers: HeaderMap,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode> {
    let (mut tx, actor, business) = begin_staff(&app, &auth, Permission::RolesManage).await?;
    custom_role_for_change(&mut tx, business, id).await?;
    require_elevation(&app, &headers, &auth, SensitiveAction::RoleChange)?;
    let holders: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM memberships WHERE business_id = $1 AND role_id = $2",
    )
    .bind(business.0)
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    if holders > 0 {
        return Err(Error::new(
            ErrorCode::Conflict,
            format!("{holders} team members hold this role; give them another role first"),
        ));
    }
    sqlx::query("DELETE FROM roles WHERE business_id = $1 AND id = $2")
        .bind(business.0)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut tx,
        &ctx,
        Who::from(&actor),
        Some(business),
        Event::ok("role.delete", "role", id),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Query of the audit log.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Entries to return, 1–500 (default 100), newest first.
    pub limit: Option<i64>,
    /// Only `ok` or `denied` entries.
    pub outcome: Option<String>,
}

/// One audit entry.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    /// Id.
    pub id: Uuid,
    /// When.
    pub occurred_at: DateTime<Utc>,
    /// Actor kind.
    pub actor_kind: String,
    /// Actor id.
    pub actor_id: Option<Uuid>,
    /// Action.
    pub action: String,
    /// `ok` or `denied`.
    pub outcome: String,
    /// Resource type.
    pub resource_type: Option<String>,
    /// Resource id.
    pub resource_id: Option<String>,
    /// Request id.
    pub request_id: Option<String>,
    /// Details.
    pub details: serde_json::Value,
}

/// The business's audit log, newest first.
#[utoipa::path(get, path = "/api/v1/business/audit-log", tag = "business", security(("bearer" = [])), params(AuditQuery),
    responses((status = 200, body = Vec<AuditEntry>), (status = 403, body = Problem)))]
async fn audit_log(
    State(app): State<App>,
    auth: Auth,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<Vec<AuditEntry>>> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(Error::field(
            "limit",
            "out_of_range",
            "limit must be 1 to 500",
        ));
    }
    if let Some(outcome) = &query.outcome {
        if outcome != "ok" && outcome != "denied" {
            return Err(Error::field(
                "outcome",
                "invalid",
                "outcome must be ok or denied",
            ));
        }
    }
    let (mut tx, _, business) = begin_staff(&app, &auth, Permission::AuditRead).await?;
    let rows = sqlx::query(
        "SELECT id, occurred_at, actor_kind, actor_id, action, outcome, resource_type, resource_id, request_id, details FROM audit_log \
         WHERE business_id = $1 AND ($2::text IS NULL OR outcome = $2) ORDER BY occurred_at DESC, id DESC LIMIT $3",
    )
    .bind(business.0)
    .bind(query.outcome)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    rows.iter()
        .map(|r| {
            Ok(AuditEntry {
                id: r.try_get("id")?,
                occurred_at: r.try_get("occurred_at")?,
                actor_kind: r.try_get("actor_kind")?,
                actor_id: r.try_get("actor_id")?,
                action: r.try_get("action")?,
                outcome: r.try_get("outcome")?,
                resource_type: r.try_get("resource_type")?,
                resource_id: r.try_get("resource_id")?,
                request_id: r.try_get("request_id")?,
                details: r.try_get("details")?,
            })
        })
        .collect::<Result<Vec<_>>>()
        .map(Json)
}
