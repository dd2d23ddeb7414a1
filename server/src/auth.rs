//! Token signing and verification, password and PIN hashing, refresh-token secrets.
//!
//! Access tokens are HS256 JWTs. Verification pins the algorithm, requires `exp`, `aud`, `iss`
//! and `sub`, checks the token type explicitly, and deserializes the claims into a typed struct
//! that refuses unknown or mistyped claims. Refresh tokens are 256-bit random secrets; only
//! their SHA-256 is stored.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use fleetfront_domain::auth::{Claims, TokenType, AUDIENCE};
use fleetfront_domain::permission::{AccountKind, SensitiveAction};
use fleetfront_domain::{BusinessId, ErrorCode};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::{Error, Result};

/// The issuer claim of every token.
pub const ISSUER: &str = "fleetfront";

/// Tolerated clock difference between server instances when checking expiry.
pub const CLOCK_LEEWAY_SECS: i64 = 5;

/// Signing keys.
#[derive(Clone)]
pub struct Keys {
    encoding: Arc<EncodingKey>,
    decoding: Arc<DecodingKey>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(***)")
    }
}

/// What a new token is for.
#[derive(Clone, Debug)]
pub struct TokenSpec {
    /// Account id.
    pub sub: Uuid,
    /// Account kind.
    pub kind: AccountKind,
    /// Business scope.
    pub business_id: Option<BusinessId>,
    /// Role key.
    pub role: Option<String>,
    /// Session version.
    pub session_version: i64,
}

impl Keys {
    /// Keys from a secret of at least 32 bytes.
    ///
    /// # Errors
    /// When the secret is too short.
    pub fn from_secret(secret: &[u8]) -> anyhow::Result<Keys> {
        anyhow::ensure!(
            secret.len() >= 32,
            "the token signing secret must be at least 32 bytes"
        );
        Ok(Keys {
            encoding: Arc::new(EncodingKey::from_secret(secret)),
            decoding: Arc::new(DecodingKey::from_secret(secret)),
        })
    }

    /// Signs a token of type `typ` valid for `ttl_secs` from `now`.
    pub fn sign(
        &self,
        spec: &TokenSpec,
        typ: TokenType,
        act: Option<SensitiveAction>,
        now: DateTime<Utc>,
        ttl_secs: i64,
    ) -> String {
        let claims = Claims {
            sub: spec.sub,
            kind: spec.kind,
            business_id: spec.business_id,
            role: spec.role.clone(),
            typ,
            act,
            sv: spec.session_version,
            aud: AUDIENCE.to_owned(),
            iss: ISSUER.to_owned(),
            iat: now.timestamp(),
            exp: now.timestamp() + ttl_secs,
            jti: Uuid::new_v4(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing of serializable claims cannot fail")
    }

    /// Verifies a token at `now` and requires type `typ`. Expiry is checked against the
    /// server's clock (not the library's), so every time rule follows one clock.
    ///
    /// # Errors
    /// `token_expired` for an expired token, `unauthenticated` for anything else wrong.
    pub fn verify(&self, token: &str, typ: TokenType, now: DateTime<Utc>) -> Result<Claims> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        validation.leeway = 0;
        validation.validate_exp = false;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).map_err(
            |e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => Error::new(
                    ErrorCode::TokenExpired,
                    "the access token has expired; refresh it",
                ),
                _ => Error::unauthenticated("the token is not valid"),
            },
        )?;
        if data.claims.exp + CLOCK_LEEWAY_SECS <= now.timestamp() {
            return Err(Error::new(
                ErrorCode::TokenExpired,
                "the access token has expired; refresh it",
            ));
        }
        if data.claims.typ != typ {
            return Err(Error::unauthenticated(
                "the token is not valid for this use",
            ));
        }
        Ok(data.claims)
    }
}

/// A fresh 256-bit secret, base64url.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 of a secret, for storage and look-up.
pub fn secret_hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Hashes a password or PIN with argon2id on a blocking thread.
///
/// # Errors
/// Unexpected hashing failures.
pub async fn hash_secret(secret: String) -> Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(secret.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("argon2 hashing failed: {e}"))
    })
    .await
    .map_err(Error::unexpected)?
    .map_err(Error::unexpected)
}

/// A valid argon2id hash of a random secret, verified against when an account does not exist
/// so that a wrong email costs as much time as a wrong password.
static DUMMY_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(random_secret().as_bytes(), &salt)
        .map(|h| h.to_string())
        .expect("hashing a random secret succeeds")
});

/// Verifies `secret` against `hash` (or a dummy hash when `None`) on a blocking thread.
///
/// # Errors
/// Unexpected failures only; a mismatch is `Ok(false)`.
pub async fn verify_secret(secret: String, hash: Option<String>) -> Result<bool> {
    tokio::task::spawn_blocking(move || {
        let stored = hash.unwrap_or_else(|| DUMMY_HASH.clone());
        let parsed = PasswordHash::new(&stored)
            .map_err(|e| anyhow::anyhow!("stored hash is invalid: {e}"))?;
        Ok::<bool, anyhow::Error>(
            Argon2::default()
                .verify_password(secret.as_bytes(), &parsed)
                .is_ok(),
        )
    })
    .await
    .map_err(Error::unexpected)?
    .map_err(Error::unexpected)
}

/// Makes a refresh token: platform tokens are `ffr_<secret>`; customer tokens carry their
/// store so the look-up stays inside one tenant: `ffc_<business>_<secret>`.
pub fn new_refresh_token(customer_business: Option<BusinessId>) -> String {
    match customer_business {
        Some(b) => format!("ffc_{}_{}", b.0.simple(), random_secret()),
        None => format!("ffr_{}", random_secret()),
    }
}

/// The store a customer refresh token belongs to.
pub fn customer_token_business(token: &str) -> Option<BusinessId> {
    let rest = token.strip_prefix("ffc_")?;
    let (business, secret) = rest.split_once('_')?;
    (!secret.is_empty()).then_some(())?;
    Uuid::try_parse(business).ok().map(BusinessId)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::from_secret(&[7u8; 32]).expect("long enough")
    }

    fn spec() -> TokenSpec {
        TokenSpec {
            sub: Uuid::nil(),
            kind: AccountKind::Admin,
            business_id: None,
            role: None,
            session_version: 1,
        }
    }

    #[test]
    fn round_trip_and_type_check() {
        let now = Utc::now();
        let token = keys().sign(&spec(), TokenType::Access, None, now, 60);
        assert_eq!(
            keys()
                .verify(&token, TokenType::Access, now)
                .expect("valid")
                .sub,
            Uuid::nil()
        );
        assert!(keys().verify(&token, TokenType::Elevated, now).is_err());
        let later = now + chrono::Duration::seconds(60 + CLOCK_LEEWAY_SECS);
        assert_eq!(
            keys()
                .verify(&token, TokenType::Access, later)
                .expect_err("expired")
                .code(),
            ErrorCode::TokenExpired
        );
    }

    #[test]
    fn refuses_short_secrets_and_other_keys() {
        assert!(Keys::from_secret(b"short").is_err());
        let token = keys().sign(&spec(), TokenType::Access, None, Utc::now(), 60);
        let other = Keys::from_secret(&[8u8; 32]).expect("long enough");
        assert_eq!(
            other
                .verify(&token, TokenType::Access, Utc::now())
                .expect_err("wrong key")
                .code(),
            ErrorCode::Unauthenticated
        );
    }

    #[test]
    fn customer_refresh_tokens_name_their_store() {
        let b = BusinessId(Uuid::from_u128(42));
        let token = new_refresh_token(Some(b));
        assert_eq!(customer_token_business(&token), Some(b));
        assert_eq!(customer_token_business("ffr_abc"), None);
        assert_eq!(customer_token_business("ffc_nonsense_x"), None);
    }
}
