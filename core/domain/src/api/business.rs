//! A business's own settings: storefront, team, roles.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::hours::OperatingHours;
use crate::id::{BusinessId, RoleId, UserId};
use crate::permission::Permission;
use crate::value::{
    CustomDomain, DisplayName, Email, HexColor, ImageUrl, Password, Slug, Subdomain,
};

use super::{patch, FieldErrors};

/// Storefront colours, each `#rrggbb`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ThemeColors {
    /// Brand colour: buttons, links.
    pub primary: String,
    /// Accent colour.
    pub accent: String,
    /// Page background.
    pub background: String,
    /// Body text.
    pub text: String,
}

impl Default for ThemeColors {
    fn default() -> Self {
        Self {
            primary: "#0b5fff".into(),
            accent: "#ff7a00".into(),
            background: "#ffffff".into(),
            text: "#1a1a1a".into(),
        }
    }
}

impl ThemeColors {
    /// Checks every colour, and that text on background reaches WCAG AA contrast (4.5:1).
    ///
    /// # Errors
    /// The field errors, under `prefix`.
    pub fn check(&self, prefix: &str, e: &mut FieldErrors) {
        let parse = |e: &mut FieldErrors, name: &str, raw: &str| {
            e.check(&format!("{prefix}.{name}"), HexColor::parse(raw))
        };
        let _ = parse(e, "primary", &self.primary);
        let _ = parse(e, "accent", &self.accent);
        let background = parse(e, "background", &self.background);
        let text = parse(e, "text", &self.text);
        if let (Some(bg), Some(fg)) = (background, text) {
            if contrast_ratio_centi(&bg, &fg) < 450 {
                e.push(
                    &format!("{prefix}.text"),
                    "low_contrast",
                    "text and background colours need a contrast of at least 4.5:1",
                );
            }
        }
    }
}

/// WCAG contrast ratio × 100.
pub fn contrast_ratio_centi(a: &HexColor, b: &HexColor) -> u32 {
    let (la, lb) = (a.luminance_milli(), b.luminance_milli());
    let (hi, lo) = if la > lb { (la, lb) } else { (lb, la) };
    (hi + 50) * 100 / (lo + 50)
}

/// A storefront's settings (`GET /api/v1/business/storefront`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StorefrontView {
    /// The business.
    pub business_id: BusinessId,
    /// Subdomain.
    pub subdomain: String,
    /// Verified custom domain, if any.
    pub custom_domain: Option<String>,
    /// Public URL.
    pub url: String,
    /// Colours.
    pub theme_colors: ThemeColors,
    /// Opening hours.
    pub operating_hours: OperatingHours,
    /// Logo.
    pub logo_url: Option<String>,
    /// Banner.
    pub banner_url: Option<String>,
    /// Whether customers can see the store.
    pub is_published: bool,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// `PATCH /api/v1/business/storefront`. Absent fields stay; `null` clears optional ones.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateStorefrontRequest {
    /// New subdomain.
    #[serde(default)]
    pub subdomain: Option<String>,
    /// Custom domain; `null` removes it. Needs a plan with custom domains.
    #[serde(default, deserialize_with = "patch")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub custom_domain: Option<Option<String>>,
    /// Colours.
    #[serde(default)]
    pub theme_colors: Option<ThemeColors>,
    /// Hours.
    #[serde(default)]
    pub operating_hours: Option<OperatingHours>,
    /// Logo URL; `null` removes it.
    #[serde(default, deserialize_with = "patch")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub logo_url: Option<Option<String>>,
    /// Banner URL; `null` removes it.
    #[serde(default, deserialize_with = "patch")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub banner_url: Option<Option<String>>,
    /// Publish or hide.
    #[serde(default)]
    pub is_published: Option<bool>,
}

/// A parsed storefront update.
#[derive(Clone, Debug, Default)]
pub struct StorefrontUpdate {
    /// Subdomain.
    pub subdomain: Option<Subdomain>,
    /// Custom domain (outer: change?, inner: value).
    pub custom_domain: Option<Option<CustomDomain>>,
    /// Colours.
    pub theme_colors: Option<ThemeColors>,
    /// Hours.
    pub operating_hours: Option<OperatingHours>,
    /// Logo.
    pub logo_url: Option<Option<ImageUrl>>,
    /// Banner.
    pub banner_url: Option<Option<ImageUrl>>,
    /// Published.
    pub is_published: Option<bool>,
}

fn parse_clearable<T>(
    e: &mut FieldErrors,
    field: &str,
    value: &Option<Option<String>>,
    parse: impl Fn(&str) -> Result<T, crate::value::ValueError>,
) -> Option<Option<T>> {
    match value {
        None => None,
        Some(None) => Some(None),
        Some(Some(raw)) => e.check(field, parse(raw)).map(Some),
    }
}

impl UpdateStorefrontRequest {
    /// Parses every present field.
    ///
    /// # Errors
    /// The field errors.
    pub fn parse(&self) -> Result<StorefrontUpdate, FieldErrors> {
        let mut e = FieldErrors::default();
        if let Some(colors) = &self.theme_colors {
            colors.check("theme_colors", &mut e);
        }
        if let Some(hours) = &self.operating_hours {
            e.check("operating_hours", hours.validate());
        }
        let update = StorefrontUpdate {
            subdomain: self
                .subdomain
                .as_deref()
                .and_then(|v| e.check("subdomain", Subdomain::parse(v))),
            custom_domain: parse_clearable(
                &mut e,
                "custom_domain",
                &self.custom_domain,
                CustomDomain::parse,
            ),
            theme_colors: self.theme_colors.clone(),
            operating_hours: self.operating_hours.clone(),
            logo_url: parse_clearable(&mut e, "logo_url", &self.logo_url, ImageUrl::parse),
            banner_url: parse_clearable(&mut e, "banner_url", &self.banner_url, ImageUrl::parse),
            is_published: self.is_published,
        };
        e.finish(|| Some(update))
    }
}

/// A team member.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StaffMemberView {
    /// The user.
    pub user_id: UserId,
    /// Email.
    pub email: String,
    /// Name.
    pub full_name: String,
    /// Role id.
    pub role_id: RoleId,
    /// Role key.
    pub role: String,
    /// When they joined.
    pub joined_at: DateTime<Utc>,
}

/// `POST /api/v1/business/staff`: add a team member (uses a staff seat).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AddStaffRequest {
    /// Email; an existing staff account is reused.
    pub email: String,
    /// Name (used when the account is new).
    pub full_name: String,
    /// Role key, e.g. `staff` or a custom role's key.
    pub role: String,
    /// Initial password for a new account; without it the account gets a set-up link by email.
    #[serde(default)]
    pub password: Option<String>,
}

/// A parsed new team member.
#[derive(Clone, Debug)]
pub struct NewStaff {
    /// Email.
    pub email: Email,
    /// Name.
    pub full_name: DisplayName,
    /// Role key.
    pub role: Slug,
    /// Password.
    pub password: Option<Password>,
}

impl AddStaffRequest {
    /// Parses every field.
    ///
    /// # Errors
    /// The field errors.
    pub fn parse(&self) -> Result<NewStaff, FieldErrors> {
        let mut e = FieldErrors::default();
        let email = e.check("email", Email::parse(&self.email));
        let full_name = e.check("full_name", DisplayName::parse(&self.full_name));
        let role = e.check("role", Slug::parse(&self.role));
        let password = match &self.password {
            Some(raw) => e.check("password", Password::parse_new(raw)).map(Some),
            None => Some(None),
        };
        e.finish(|| {
            Some(NewStaff {
                email: email?,
                full_name: full_name?,
                role: role?,
                password: password?,
            })
        })
    }
}

/// `PATCH /api/v1/business/staff/:user_id`: change a member's role (needs a PIN-elevated token).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateStaffRequest {
    /// New role key.
    pub role: String,
}

/// A role of the business.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoleView {
    /// Id.
    pub id: RoleId,
    /// Key.
    pub key: String,
    /// Name.
    pub name: String,
    /// Built-in roles cannot be edited or deleted.
    pub builtin: bool,
    /// Permissions.
    pub permissions: Vec<Permission>,
}

/// `POST /api/v1/business/roles`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateRoleRequest {
    /// Key, unique in the business.
    pub key: String,
    /// Name.
    pub name: String,
    /// Permissions.
    pub permissions: Vec<Permission>,
}

/// A parsed custom role.
#[derive(Clone, Debug)]
pub struct NewRole {
    /// Key.
    pub key: Slug,
    /// Name.
    pub name: DisplayName,
    /// Permissions.
    pub permissions: Vec<Permission>,
}

impl CreateRoleRequest {
    /// Parses every field; built-in role keys are refused.
    ///
    /// # Errors
    /// The field errors.
    pub fn parse(&self) -> Result<NewRole, FieldErrors> {
        let mut e = FieldErrors::default();
        let key = e.check("key", Slug::parse(&self.key));
        if crate::permission::BuiltinRole::parse(&self.key).is_some() {
            e.push("key", "reserved", "this key belongs to a built-in role");
        }
        let name = e.check("name", DisplayName::parse(&self.name));
        let mut permissions = self.permissions.clone();
        permissions.sort_unstable();
        permissions.dedup();
        e.finish(|| {
            Some(NewRole {
                key: key?,
                name: name?,
                permissions,
            })
        })
    }
}

/// `PATCH /api/v1/business/roles/:id` (needs a PIN-elevated token).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateRoleRequest {
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New permissions (replaces the set).
    #[serde(default)]
    pub permissions: Option<Vec<Permission>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_distinguishes_absent_null_and_value() {
        let absent: UpdateStorefrontRequest = serde_json::from_str("{}").expect("valid");
        assert_eq!(absent.parse().expect("valid").logo_url, None);
        let cleared: UpdateStorefrontRequest =
            serde_json::from_str(r#"{"logo_url": null}"#).expect("valid");
        assert_eq!(cleared.parse().expect("valid").logo_url, Some(None));
        let set: UpdateStorefrontRequest =
            serde_json::from_str(r#"{"logo_url": "https://cdn.example.com/logo.png"}"#)
                .expect("valid");
        assert!(matches!(
            set.parse().expect("valid").logo_url,
            Some(Some(_))
        ));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = serde_json::from_str::<UpdateStorefrontRequest>(r#"{"business_id": "x"}"#)
            .expect_err("refused");
        assert!(err.to_string().contains("unknown field"), "{err}");
        let err = serde_json::from_str::<AddStaffRequest>(
            r#"{"email": "a@b.co", "full_name": "A", "role": "staff", "business_id": "x"}"#,
        )
        .expect_err("refused");
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    #[test]
    fn theme_needs_readable_text() {
        let mut errors = FieldErrors::default();
        ThemeColors::default().check("theme_colors", &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        let grey = ThemeColors {
            text: "#bbbbbb".into(),
            ..ThemeColors::default()
        };
        let mut errors = FieldErrors::default();
        grey.check("theme_colors", &mut errors);
        assert_eq!(errors.0[0].code, "low_contrast");
        let black = HexColor::parse("#000000").expect("valid");
        let white = HexColor::parse("#ffffff").expect("valid");
        assert_eq!(contrast_ratio_centi(&black, &white), 2100);
    }

    #[test]
    fn all_field_errors_are_reported_together() {
        let req = UpdateStorefrontRequest {
            subdomain: Some("WWW".into()),
            custom_domain: Some(Some("not a domain".into())),
            logo_url: Some(Some("ftp://x".into())),
            ..UpdateStorefrontRequest::default()
        };
        let errors = req.parse().expect_err("invalid");
        let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["subdomain", "custom_domain", "logo_url"]);
    }
}
