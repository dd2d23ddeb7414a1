//! Token claims shared by the server (which signs them) and clients (which read their own
//! token's scope). Signing and verification live in the server.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::id::BusinessId;
use crate::permission::{AccountKind, SensitiveAction};

/// The audience every Fleetfront API token is issued for.
pub const AUDIENCE: &str = "fleetfront-api";

/// Lifetime of an access token, in seconds.
pub const ACCESS_TOKEN_SECS: i64 = 15 * 60;
/// Lifetime of a refresh token, in seconds.
pub const REFRESH_TOKEN_SECS: i64 = 30 * 24 * 60 * 60;
/// Lifetime of an elevated (PIN-confirmed) token, in seconds.
pub const ELEVATED_TOKEN_SECS: i64 = 5 * 60;

/// What a token may be used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenType {
    /// An access token: `Authorization: Bearer`.
    Access,
    /// A PIN-confirmed token for one sensitive action, sent beside the access token.
    Elevated,
}

/// The claims of an access or elevated token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// The account: a user id, or a customer id when `kind` is customer.
    pub sub: Uuid,
    /// The kind of account.
    pub kind: AccountKind,
    /// The business the token acts in (staff and customers); none for admins and drivers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_id: Option<BusinessId>,
    /// The staff member's role key in that business, for display; permissions are resolved
    /// from the database on every request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The token's use.
    pub typ: TokenType,
    /// For elevated tokens: the one action it confirms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<SensitiveAction>,
    /// The account's session version when the token was issued; a newer version in the
    /// database (role change, logout everywhere, suspension) invalidates the token at once.
    pub sv: i64,
    /// Audience, always [`AUDIENCE`].
    pub aud: String,
    /// Issuer.
    pub iss: String,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
    /// Unique token id.
    pub jti: Uuid,
}
