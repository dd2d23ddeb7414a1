//! Authentication requests and responses.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::id::{BusinessId, RoleId};
use crate::permission::{AccountKind, Permission, SensitiveAction};
use crate::value::{DisplayName, Email, Password, Phone, Pin, Subdomain};

use super::FieldErrors;

/// `POST /api/v1/auth/login` (admins, staff, drivers).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Account email.
    pub email: String,
    /// Account password.
    pub password: String,
    /// For staff with several businesses: which one to sign in to (must be a membership).
    #[serde(default)]
    pub business_id: Option<BusinessId>,
}

/// `POST /api/v1/auth/refresh` and `/auth/customer/refresh`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token from the last token response.
    pub refresh_token: String,
}

/// `POST /api/v1/auth/switch-business`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SwitchBusinessRequest {
    /// A business the signed-in user is a member of.
    pub business_id: BusinessId,
}

/// Tokens issued by login, refresh and business switching.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenResponse {
    /// Short-lived JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Opaque single-use refresh token.
    pub refresh_token: String,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: i64,
    /// Who the tokens are for.
    pub principal: PrincipalView,
}

/// The signed-in account and its current scope (`GET /api/v1/auth/me`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PrincipalView {
    /// The account id (user or customer).
    pub id: Uuid,
    /// Account kind.
    pub kind: AccountKind,
    /// Email.
    pub email: String,
    /// Display name.
    pub full_name: String,
    /// The business the token acts in, if any.
    pub business_id: Option<BusinessId>,
    /// The role key in that business (staff).
    pub role: Option<String>,
    /// The permissions of that role (staff).
    pub permissions: Vec<Permission>,
    /// Every business the user belongs to (staff), for switching.
    pub memberships: Vec<MembershipView>,
}

/// One of a staff member's businesses.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MembershipView {
    /// The business.
    pub business_id: BusinessId,
    /// Its name.
    pub business_name: String,
    /// The role there.
    pub role_id: RoleId,
    /// The role's key.
    pub role: String,
}

/// `POST /api/v1/auth/driver/register`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DriverRegisterRequest {
    /// Email.
    pub email: String,
    /// Password (10–128 characters).
    pub password: String,
    /// Full name.
    pub full_name: String,
    /// Phone in international form.
    pub phone: String,
}

/// A parsed driver registration.
#[derive(Clone, Debug)]
pub struct NewDriver {
    /// Email.
    pub email: Email,
    /// Password.
    pub password: Password,
    /// Name.
    pub full_name: DisplayName,
    /// Phone.
    pub phone: Phone,
}

impl DriverRegisterRequest {
    /// Parses every field.
    ///
    /// # Errors
    /// All field errors at once.
    pub fn parse(&self) -> Result<NewDriver, FieldErrors> {
        let mut errors = FieldErrors::default();
        let email = errors.check("email", Email::parse(&self.email));
        let password = errors.check("password", Password::parse_new(&self.password));
        let full_name = errors.check("full_name", DisplayName::parse(&self.full_name));
        let phone = errors.check("phone", Phone::parse(&self.phone));
        errors.finish(|| {
            Some(NewDriver {
                email: email?,
                password: password?,
                full_name: full_name?,
                phone: phone?,
            })
        })
    }
}

/// `POST /api/v1/auth/customer/register`: an account at one store.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CustomerRegisterRequest {
    /// The store's subdomain.
    pub store: String,
    /// Email.
    pub email: String,
    /// Password (10–128 characters).
    pub password: String,
    /// Full name.
    pub full_name: String,
    /// Phone in international form.
    #[serde(default)]
    pub phone: Option<String>,
}

/// A parsed customer registration.
#[derive(Clone, Debug)]
pub struct NewCustomer {
    /// The store.
    pub store: Subdomain,
    /// Email.
    pub email: Email,
    /// Password.
    pub password: Password,
    /// Name.
    pub full_name: DisplayName,
    /// Phone.
    pub phone: Option<Phone>,
}

impl CustomerRegisterRequest {
    /// Parses every field.
    ///
    /// # Errors
    /// All field errors at once.
    pub fn parse(&self) -> Result<NewCustomer, FieldErrors> {
        let mut errors = FieldErrors::default();
        let store = errors.check("store", Subdomain::parse(&self.store));
        let email = errors.check("email", Email::parse(&self.email));
        let password = errors.check("password", Password::parse_new(&self.password));
        let full_name = errors.check("full_name", DisplayName::parse(&self.full_name));
        let phone = match &self.phone {
            Some(raw) => errors.check("phone", Phone::parse(raw)).map(Some),
            None => Some(None),
        };
        errors.finish(|| {
            Some(NewCustomer {
                store: store?,
                email: email?,
                password: password?,
                full_name: full_name?,
                phone: phone?,
            })
        })
    }
}

/// `POST /api/v1/auth/customer/login`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CustomerLoginRequest {
    /// The store's subdomain.
    pub store: String,
    /// Email.
    pub email: String,
    /// Password.
    pub password: String,
}

/// `PUT /api/v1/auth/pin`: set or replace the PIN, confirmed with the password.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SetPinRequest {
    /// The new PIN, 4–8 digits.
    pub pin: String,
    /// The account password.
    pub password: String,
}

impl SetPinRequest {
    /// Parses the new PIN.
    ///
    /// # Errors
    /// The PIN policy's error.
    pub fn parse_pin(&self) -> Result<Pin, FieldErrors> {
        let mut errors = FieldErrors::default();
        let pin = errors.check("pin", Pin::parse_new(&self.pin));
        errors.finish(|| pin)
    }
}

/// `POST /api/v1/auth/pin/verify`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VerifyPinRequest {
    /// The PIN.
    pub pin: String,
    /// The action the elevated token will confirm.
    pub action: SensitiveAction,
}

/// An elevated token for one sensitive action; send it as `X-Fleetfront-Elevation`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ElevatedTokenResponse {
    /// The token.
    pub elevated_token: String,
    /// Seconds until it expires.
    pub expires_in: i64,
    /// The action it confirms.
    pub action: SensitiveAction,
}

/// `POST /api/v1/auth/password/setup`: choose a password with the one-time token from the
/// welcome email.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PasswordSetupRequest {
    /// The token from the email.
    pub token: String,
    /// The new password.
    pub password: String,
}
