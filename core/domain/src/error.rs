//! Stable machine-readable error codes shared by the server and every client.
//!
//! A code is part of the public API: clients branch on it, so a code, once shipped, keeps its
//! meaning. Human text goes beside it, never instead of it.

use serde::{Deserialize, Serialize};

macro_rules! error_codes {
    ($($(#[$meta:meta])* $variant:ident => $key:literal;)*) => {
        /// Every error code the API can answer with.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        // utoipa does not see the per-variant renames (their literal arrives as a macro
        // fragment) and would document `PlanLimitReached`; `rename_all` gives it the wire names,
        // which the per-variant renames (serde's source of truth) must equal.
        #[serde(rename_all = "snake_case")]
        pub enum ErrorCode {
            $($(#[$meta])* #[serde(rename = $key)] $variant,)*
        }

        impl ErrorCode {
            /// Every code, in a stable order (for documentation).
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code as it appears on the wire.
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $key,)* }
            }
        }
    };
}

error_codes! {
    /// The request body or query is not well-formed (bad JSON, wrong content type).
    MalformedRequest => "malformed_request";
    /// The request is well-formed but some values break the rules; see the field errors.
    ValidationFailed => "validation_failed";
    /// No credentials, or credentials that are not valid.
    Unauthenticated => "unauthenticated";
    /// The access token has expired; refresh it.
    TokenExpired => "token_expired";
    /// The session behind the token was revoked or changed (role change, logout everywhere).
    SessionRevoked => "session_revoked";
    /// The email and password do not match an account.
    InvalidCredentials => "invalid_credentials";
    /// The refresh token is unknown, expired, revoked or was already used.
    InvalidRefreshToken => "invalid_refresh_token";
    /// The password set-up link is unknown, expired or was already used.
    InvalidSetupToken => "invalid_setup_token";
    /// The principal may not perform this action.
    Forbidden => "forbidden";
    /// This action needs a recent PIN confirmation (an elevated token).
    ElevationRequired => "elevation_required";
    /// The PIN is wrong.
    InvalidPin => "invalid_pin";
    /// Too many wrong PINs: the PIN is locked until it is reset.
    PinLocked => "pin_locked";
    /// No PIN has been set for this account.
    PinNotSet => "pin_not_set";
    /// Too many failed attempts; retry later.
    TooManyAttempts => "too_many_attempts";
    /// The resource does not exist or is not visible to the caller.
    NotFound => "not_found";
    /// The request conflicts with the current state.
    Conflict => "conflict";
    /// An account with this email already exists.
    EmailTaken => "email_taken";
    /// The storefront subdomain is already in use.
    SubdomainTaken => "subdomain_taken";
    /// The custom domain is already in use.
    DomainTaken => "domain_taken";
    /// The business's subscription plan does not allow this.
    PlanLimitReached => "plan_limit_reached";
    /// The business is suspended.
    BusinessSuspended => "business_suspended";
    /// The account is not active (pending approval or suspended).
    AccountInactive => "account_inactive";
    /// The request body is too large.
    PayloadTooLarge => "payload_too_large";
    /// The request body's content type is not the one the endpoint takes
    /// (`application/json`, or `multipart/form-data` for uploads).
    UnsupportedMediaType => "unsupported_media_type";
    /// The uploaded file is not a JPEG, PNG or WebP image (judged from its bytes, never from
    /// its name or declared type).
    UnsupportedImageType => "unsupported_image_type";
    /// The image cannot be used: truncated or corrupt, or larger than 8000×8000 pixels.
    InvalidImage => "invalid_image";
    /// The HTTP method is not allowed on this path.
    MethodNotAllowed => "method_not_allowed";
    /// A signed request (a payment provider's webhook) carries no valid signature, or a stale one.
    InvalidSignature => "invalid_signature";
    /// The server cannot serve right now (e.g. the database is unreachable); retry later.
    Unavailable => "unavailable";
    /// An unexpected server error; it has been logged with the request id.
    Internal => "internal";
    /// A price changed since the customer's quote; nothing was ordered. See the field errors.
    PriceChanged => "price_changed";
    /// Not enough stock for a line; nothing was ordered.
    OutOfStock => "out_of_stock";
    /// A product is not (or no longer) for sale; nothing was ordered.
    ItemUnavailable => "item_unavailable";
    /// The store is closed now, or at the scheduled time.
    StoreClosed => "store_closed";
    /// The delivery address is outside the store's delivery area.
    OutsideDeliveryArea => "outside_delivery_area";
    /// The discount code is unknown, not valid now, used up, or needs a larger order.
    DiscountInvalid => "discount_invalid";
    /// The order is below the store's minimum.
    BelowMinimumOrder => "below_minimum_order";
    /// The `Idempotency-Key` was used before with a different request.
    IdempotencyKeyReused => "idempotency_key_reused";
    /// This payment method cannot be used here.
    PaymentMethodUnavailable => "payment_method_unavailable";
    /// The payment provider declined the payment.
    PaymentDeclined => "payment_declined";
    /// The order's status does not allow this change.
    InvalidTransition => "invalid_transition";
    /// The payment still waits for the customer's step in the provider's UI (3-D Secure).
    PaymentActionRequired => "payment_action_required";
    /// The order cannot be reviewed yet: it is not complete (delivered, or picked up).
    OrderNotComplete => "order_not_complete";
    /// The order has been reviewed already; a review is written once.
    AlreadyReviewed => "already_reviewed";
    /// The driver may not go online yet: not approved, no valid licence, or no approved
    /// licence document (the message and the profile's `blockers` say which).
    DriverNotReady => "driver_not_ready";
    /// The delivery offer expired before it was accepted.
    OfferExpired => "offer_expired";
}

impl ErrorCode {
    /// Whether retrying the same request later may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::TooManyAttempts | Self::Unavailable | Self::Internal
        )
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
        for code in ErrorCode::ALL.iter().copied() {
            let json = serde_json::to_string(&code).expect("serializes");
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }
}
