//! Stable machine-readable error codes shared by the server and every client.
//!
//! A code is part of the public API: clients branch on it, so a code, once shipped, keeps its
//! meaning. Human text goes beside it, never instead of it.

use serde::{Deserialize, Serialize};

/// Every error code the API can answer with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request body or query is not well-formed (bad JSON, wrong content type).
    MalformedRequest,
    /// The request is well-formed but some values break the rules; see the field errors.
    ValidationFailed,
    /// No credentials, or credentials that are not valid.
    Unauthenticated,
    /// The access token has expired; refresh it.
    TokenExpired,
    /// The session behind the token was revoked or changed (role change, logout everywhere).
    SessionRevoked,
    /// The email and password do not match an account.
    InvalidCredentials,
    /// The refresh token is unknown, expired, revoked or was already used.
    InvalidRefreshToken,
    /// The principal may not perform this action.
    Forbidden,
    /// This action needs a recent PIN confirmation (an elevated token).
    ElevationRequired,
    /// The PIN is wrong.
    InvalidPin,
    /// Too many wrong PINs: the PIN is locked until it is reset.
    PinLocked,
    /// No PIN has been set for this account.
    PinNotSet,
    /// Too many failed attempts; retry later.
    TooManyAttempts,
    /// The resource does not exist or is not visible to the caller.
    NotFound,
    /// The request conflicts with the current state.
    Conflict,
    /// An account with this email already exists.
    EmailTaken,
    /// The storefront subdomain is already in use.
    SubdomainTaken,
    /// The custom domain is already in use.
    DomainTaken,
    /// The business's subscription plan does not allow this.
    PlanLimitReached,
    /// The business is suspended.
    BusinessSuspended,
    /// The account is not active (pending approval or suspended).
    AccountInactive,
    /// The request body is too large.
    PayloadTooLarge,
    /// The request body is not JSON (`Content-Type: application/json` expected).
    UnsupportedMediaType,
    /// The HTTP method is not allowed on this path.
    MethodNotAllowed,
    /// The server cannot serve right now (e.g. the database is unreachable); retry later.
    Unavailable,
    /// An unexpected server error; it has been logged with the request id.
    Internal,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MalformedRequest => "malformed_request",
            Self::ValidationFailed => "validation_failed",
            Self::Unauthenticated => "unauthenticated",
            Self::TokenExpired => "token_expired",
            Self::SessionRevoked => "session_revoked",
            Self::InvalidCredentials => "invalid_credentials",
            Self::InvalidRefreshToken => "invalid_refresh_token",
            Self::Forbidden => "forbidden",
            Self::ElevationRequired => "elevation_required",
            Self::InvalidPin => "invalid_pin",
            Self::PinLocked => "pin_locked",
            Self::PinNotSet => "pin_not_set",
            Self::TooManyAttempts => "too_many_attempts",
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::EmailTaken => "email_taken",
            Self::SubdomainTaken => "subdomain_taken",
            Self::DomainTaken => "domain_taken",
            Self::PlanLimitReached => "plan_limit_reached",
            Self::BusinessSuspended => "business_suspended",
            Self::AccountInactive => "account_inactive",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }

    /// Whether retrying the same request later may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::TooManyAttempts | Self::Unavailable | Self::Internal)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form_matches_as_str() {
        for code in [ErrorCode::PlanLimitReached, ErrorCode::MalformedRequest, ErrorCode::NotFound] {
            let json = serde_json::to_string(&code).expect("serializes");
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }
}
