//! The server's one error type. Every failure becomes an RFC 9457 problem+json response with a
//! stable [`ErrorCode`]; unexpected failures are logged once with the request id and answered
//! with a generic message, never with their internals.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use fleetfront_domain::api::{FieldError, FieldErrors, Problem};
use fleetfront_domain::ErrorCode;

use crate::context;

/// Result alias for handlers and server internals.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A failed request.
#[derive(Debug)]
pub struct Error {
    code: ErrorCode,
    detail: String,
    errors: Vec<FieldError>,
    retry_after: Option<i64>,
    source: Option<anyhow::Error>,
}

/// Marks a response whose attempt was denied, so the audit middleware records it.
#[derive(Clone, Copy, Debug)]
pub struct Denied(pub ErrorCode);

impl Error {
    /// An error with a code and a message safe to show to the caller.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
            errors: Vec::new(),
            retry_after: None,
            source: None,
        }
    }

    /// `not_found` for a resource; used both for absent rows and for rows of another tenant,
    /// which must be indistinguishable.
    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    /// `forbidden`.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, detail)
    }

    /// `unauthenticated`.
    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthenticated, detail)
    }

    /// `validation_failed` with per-field errors.
    pub fn validation(errors: FieldErrors) -> Self {
        let detail = match errors.0.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            _ => format!("{} fields are invalid", errors.0.len()),
        };
        Self {
            errors: errors.0,
            ..Self::new(ErrorCode::ValidationFailed, detail)
        }
    }

    /// `validation_failed` for one field.
    pub fn field(field: &str, code: &str, message: impl Into<String>) -> Self {
        let mut errors = FieldErrors::default();
        errors.push(field, code, message);
        Self::validation(errors)
    }

    /// `too_many_attempts` with a retry hint.
    pub fn too_many_attempts(retry_after_secs: i64) -> Self {
        Self {
            retry_after: Some(retry_after_secs),
            ..Self::new(
                ErrorCode::TooManyAttempts,
                "too many failed attempts; try again later",
            )
        }
    }

    /// An unexpected failure; the source is logged, not returned.
    pub fn unexpected(source: impl Into<anyhow::Error>) -> Self {
        Self {
            source: Some(source.into()),
            ..Self::new(
                ErrorCode::Internal,
                "an unexpected error occurred; it has been logged",
            )
        }
    }

    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The message safe to show to the caller.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The HTTP status for this error. Only the server knows HTTP.
    pub fn status(&self) -> StatusCode {
        status_of(self.code)
    }
}

/// The HTTP status of each error code.
pub fn status_of(code: ErrorCode) -> StatusCode {
    use ErrorCode::*;
    match code {
        MalformedRequest | InvalidSignature => StatusCode::BAD_REQUEST,
        ValidationFailed => StatusCode::UNPROCESSABLE_ENTITY,
        Unauthenticated | TokenExpired | SessionRevoked | InvalidCredentials
        | InvalidRefreshToken | InvalidSetupToken | InvalidPin => StatusCode::UNAUTHORIZED,
        Forbidden | ElevationRequired | PlanLimitReached | BusinessSuspended | AccountInactive => {
            StatusCode::FORBIDDEN
        }
        PinLocked => StatusCode::LOCKED,
        NotFound => StatusCode::NOT_FOUND,
        Conflict
        | EmailTaken
        | SubdomainTaken
        | DomainTaken
        | PinNotSet
        | PriceChanged
        | OutOfStock
        | ItemUnavailable
        | InvalidTransition
        | OrderNotComplete
        | AlreadyReviewed
        | DriverNotReady
        | OfferExpired
        | PaymentActionRequired => StatusCode::CONFLICT,
        StoreClosed
        | OutsideDeliveryArea
        | DiscountInvalid
        | BelowMinimumOrder
        | IdempotencyKeyReused
        | PaymentMethodUnavailable => StatusCode::UNPROCESSABLE_ENTITY,
        PaymentDeclined => StatusCode::PAYMENT_REQUIRED,
        TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
        PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        UnsupportedMediaType | UnsupportedImageType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        InvalidImage => StatusCode::UNPROCESSABLE_ENTITY,
        MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn title_of(code: ErrorCode) -> &'static str {
    status_of(code).canonical_reason().unwrap_or("Error")
}

/// Codes whose responses are audited as denied attempts.
fn is_denial(code: ErrorCode) -> bool {
    use ErrorCode::*;
    matches!(
        code,
        Unauthenticated
            | TokenExpired
            | SessionRevoked
            | Forbidden
            | ElevationRequired
            | NotFound
            | InvalidPin
            | PinLocked
            | BusinessSuspended
            | AccountInactive
    )
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.detail)
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let request_id = context::current_request_id();
        if let Some(source) = &self.source {
            tracing::error!(request_id = request_id.as_deref().unwrap_or("-"), error = ?source, "unexpected error");
        }
        let status = self.status();
        let problem = Problem {
            type_uri: format!("/api/v1/docs#error-{}", self.code.as_str()),
            title: title_of(self.code).to_owned(),
            status: status.as_u16(),
            detail: self.detail,
            code: self.code,
            request_id,
            errors: self.errors,
            retry_after: self.retry_after,
        };
        let body = serde_json::to_vec(&problem).expect("problem serializes");
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = problem.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.code == ErrorCode::Unauthenticated || self.code == ErrorCode::TokenExpired {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if is_denial(self.code) {
            response.extensions_mut().insert(Denied(self.code));
        }
        response
    }
}

impl From<FieldErrors> for Error {
    fn from(errors: FieldErrors) -> Self {
        Self::validation(errors)
    }
}

impl From<anyhow::Error> for Error {
    fn from(source: anyhow::Error) -> Self {
        Self::unexpected(source)
    }
}

impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &error {
            // Constraint names map to domain errors; everything else is unexpected.
            match db.constraint() {
                Some("storefront_subdomain_key") => {
                    return Error::field("subdomain", "taken", "this subdomain is already in use")
                        .with_code(ErrorCode::SubdomainTaken)
                }
                Some("storefront_custom_domain_key") => {
                    return Error::field("custom_domain", "taken", "this domain is already in use")
                        .with_code(ErrorCode::DomainTaken)
                }
                Some("products_sku_key") => {
                    return Error::field("sku", "taken", "another product has this SKU")
                        .with_code(ErrorCode::Conflict)
                }
                Some("product_variants_sku_key") => {
                    return Error::field(
                        "variants",
                        "taken",
                        "a variant SKU is used by another product's variant",
                    )
                    .with_code(ErrorCode::Conflict)
                }
                Some("product_categories_business_id_slug_key") => {
                    return Error::field("slug", "taken", "another category has this slug")
                        .with_code(ErrorCode::Conflict)
                }
                Some("order_reviews_order_key") | Some("product_reviews_once") => {
                    return Error::new(
                        ErrorCode::AlreadyReviewed,
                        "this order has been reviewed already",
                    )
                }
                Some("users_email_key") | Some("customers_business_id_email_key") => {
                    return Error::field(
                        "email",
                        "taken",
                        "an account with this email already exists",
                    )
                    .with_code(ErrorCode::EmailTaken)
                }
                _ => {}
            }
            match db.code().as_deref() {
                // Row level security refused a write: to the caller the row does not exist.
                Some("42501") => return Error::not_found("resource"),
                Some("40001") | Some("40P01") => {
                    return Error::new(
                        ErrorCode::Unavailable,
                        "the request conflicted with another; retry it",
                    )
                }
                Some("23505") => return Error::new(ErrorCode::Conflict, "this already exists"),
                Some("23503") => {
                    return Error::new(ErrorCode::Conflict, "a referenced record does not exist")
                }
                _ => {}
            }
        }
        if matches!(
            error,
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed
        ) {
            tracing::warn!(error = %error, "database unavailable");
            return Error::new(
                ErrorCode::Unavailable,
                "the database is unavailable; retry shortly",
            );
        }
        Error::unexpected(error)
    }
}

impl Error {
    /// Replaces the message, keeping code and field errors.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    /// Replaces the code, keeping message and field errors.
    pub fn with_code(mut self, code: ErrorCode) -> Self {
        self.code = code;
        self
    }

    /// Adds a `Retry-After` hint in seconds (e.g. to an `unavailable` answer).
    pub fn with_retry_after(mut self, secs: i64) -> Self {
        self.retry_after = Some(secs);
        self
    }
}
