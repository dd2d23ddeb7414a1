//! The typed HTTP client of the server's API: sign-in, token refresh and sign-out, the two sync
//! endpoints and the resumable upload of attachments.
//!
//! Errors keep apart what a retry may fix (the network, an overloaded or failing server) from
//! what the server decided (an RFC 9457 problem with a stable `code`), so the engine backs off
//! from the first and reports the second. The `code` is kept as the wire string as well as the
//! known [`ErrorCode`]: a newer server may answer codes this build does not know.

use fleetfront_domain::api::auth::{
    CustomerLoginRequest, LoginRequest, RefreshRequest, TokenResponse,
};
use fleetfront_domain::api::location::{FixInput, LocationAccepted, LocationBatchRequest};
use fleetfront_domain::api::sync::{Mutation, PullResponse, PushRequest, PushResponse};
use fleetfront_domain::ErrorCode;
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use uuid::Uuid;

/// A failed API call.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The server could not be reached or the connection broke (offline, DNS, timeout).
    #[error("network: {0}")]
    Network(#[source] reqwest::Error),
    /// The server answered with a problem (`application/problem+json`).
    #[error("{detail} ({code})")]
    Problem {
        /// The HTTP status.
        status: u16,
        /// The stable code as sent.
        code: String,
        /// The code, when this build knows it.
        known: Option<ErrorCode>,
        /// Words safe to show to the user.
        detail: String,
        /// Seconds the server asks us to wait, if it said.
        retry_after: Option<i64>,
    },
    /// The server answered something that is neither the expected body nor a problem.
    #[error("unexpected answer (status {status}): {message}")]
    Unexpected {
        /// The HTTP status.
        status: u16,
        /// What was wrong with it.
        message: String,
    },
    /// A sync call was made without signing in first.
    #[error("not signed in")]
    NotSignedIn,
}

impl ApiError {
    /// Whether trying the same call later may succeed: network failures, 5xx, 429, and codes the
    /// domain marks retryable. A rejection by the rules is final.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Network(_) => true,
            Self::Problem { status, known, .. } => {
                *status >= 500 || *status == 429 || known.is_some_and(ErrorCode::is_retryable)
            }
            Self::Unexpected { status, .. } => *status >= 500,
            Self::NotSignedIn => false,
        }
    }

    /// Whether the server could not be reached at all (the app is offline).
    pub fn is_offline(&self) -> bool {
        matches!(self, Self::Network(_))
    }

    /// Whether the session is over and the user must sign in again.
    pub fn is_unauthenticated(&self) -> bool {
        matches!(self, Self::NotSignedIn) || matches!(self, Self::Problem { status: 401, .. })
    }
}

/// The parts of a problem body the client reads; `code` stays a string so unknown codes parse.
#[derive(Deserialize)]
struct ProblemBody {
    code: String,
    #[serde(default)]
    detail: String,
    #[serde(default)]
    retry_after: Option<i64>,
}

/// A client of one server, with the access token of the signed-in account.
#[derive(Clone, Debug)]
pub struct ApiClient {
    http: reqwest::Client,
    /// The server's root, e.g. `https://acme.fleetfront.app` (no trailing slash needed).
    pub base_url: String,
    /// The bearer token for authenticated calls.
    pub access_token: Option<String>,
}

impl ApiClient {
    /// A client of the server at `base_url`, not signed in.
    pub fn new(base_url: impl Into<String>) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .unwrap_or_default();
        Self {
            http,
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            access_token: None,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    fn token(&self) -> Result<&str, ApiError> {
        self.access_token.as_deref().ok_or(ApiError::NotSignedIn)
    }

    /// Signs in with email and password (`POST /api/v1/auth/login`) and keeps the access token.
    ///
    /// # Errors
    /// [`ApiError`]; wrong credentials are a `Problem` with code `invalid_credentials`.
    pub async fn login(&mut self, email: &str, password: &str) -> Result<TokenResponse, ApiError> {
        let body = LoginRequest {
            email: email.to_owned(),
            password: password.to_owned(),
            business_id: None,
        };
        let request = self.http.post(self.url("/api/v1/auth/login")).json(&body);
        let tokens: TokenResponse = send(request).await?;
        self.access_token = Some(tokens.access_token.clone());
        Ok(tokens)
    }

    /// Signs a customer in at one store (`POST /api/v1/auth/customer/login`; customers are
    /// accounts of a store, named by its subdomain) and keeps the access token.
    ///
    /// # Errors
    /// [`ApiError`]; wrong credentials are a `Problem` with code `invalid_credentials`, an
    /// unknown store `not_found`.
    pub async fn login_customer(
        &mut self,
        store: &str,
        email: &str,
        password: &str,
    ) -> Result<TokenResponse, ApiError> {
        let body = CustomerLoginRequest {
            store: store.to_owned(),
            email: email.to_owned(),
            password: password.to_owned(),
        };
        let request = self
            .http
            .post(self.url("/api/v1/auth/customer/login"))
            .json(&body);
        let tokens: TokenResponse = send(request).await?;
        self.access_token = Some(tokens.access_token.clone());
        Ok(tokens)
    }

    /// Trades the refresh token for new tokens (`POST /api/v1/auth/refresh`; the old refresh
    /// token is spent) and keeps the new access token.
    ///
    /// # Errors
    /// [`ApiError`]; a spent or expired refresh token is a `Problem` the caller answers by
    /// signing in again.
    pub async fn refresh(&mut self, refresh_token: &str) -> Result<TokenResponse, ApiError> {
        let body = RefreshRequest {
            refresh_token: refresh_token.to_owned(),
        };
        let request = self.http.post(self.url("/api/v1/auth/refresh")).json(&body);
        let tokens: TokenResponse = send(request).await?;
        self.access_token = Some(tokens.access_token.clone());
        Ok(tokens)
    }

    /// Ends the session on the server (`POST /api/v1/auth/logout`) and forgets the token.
    ///
    /// # Errors
    /// [`ApiError`]; the token is forgotten either way.
    pub async fn logout(&mut self, refresh_token: &str) -> Result<(), ApiError> {
        let body = RefreshRequest {
            refresh_token: refresh_token.to_owned(),
        };
        let token = self.access_token.take();
        let mut request = self.http.post(self.url("/api/v1/auth/logout")).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(ApiError::Network)?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let bytes = response.bytes().await.map_err(ApiError::Network)?;
        Err(problem(status, &bytes))
    }

    /// Sends a batch of GPS fixes (`POST /api/v1/driver/location`); fixes the server already
    /// has (same device and `seq`) are counted as duplicates.
    ///
    /// # Errors
    /// [`ApiError`]; a batch with an implausible fix is a `Problem` with status 422.
    pub async fn send_locations(
        &self,
        device_id: &str,
        fixes: Vec<FixInput>,
    ) -> Result<LocationAccepted, ApiError> {
        let body = LocationBatchRequest {
            device_id: device_id.to_owned(),
            fixes,
        };
        let request = self
            .http
            .post(self.url("/api/v1/driver/location"))
            .bearer_auth(self.token()?)
            .json(&body);
        send(request).await
    }

    /// Pulls changes after `cursors` (`GET /api/v1/sync/pull`).
    ///
    /// # Errors
    /// [`ApiError`].
    pub async fn pull(&self, cursors: &str, limit: Option<u32>) -> Result<PullResponse, ApiError> {
        let mut query: Vec<(&str, String)> = Vec::new();
        if !cursors.is_empty() {
            query.push(("cursors", cursors.to_owned()));
        }
        if let Some(limit) = limit {
            query.push(("limit", limit.to_string()));
        }
        let request = self
            .http
            .get(self.url("/api/v1/sync/pull"))
            .bearer_auth(self.token()?)
            .query(&query);
        send(request).await
    }

    /// Pushes queued mutations (`POST /api/v1/sync/push`), in sequence order, at most 500.
    ///
    /// # Errors
    /// [`ApiError`].
    pub async fn push(
        &self,
        client_id: Uuid,
        mutations: Vec<Mutation>,
    ) -> Result<PushResponse, ApiError> {
        let body = PushRequest {
            client_id,
            mutations,
        };
        let request = self
            .http
            .post(self.url("/api/v1/sync/push"))
            .bearer_auth(self.token()?)
            .json(&body);
        send(request).await
    }

    /// How far this account's upload of the file `sha256` has got
    /// (`GET /api/v1/uploads/{sha256}`); `None` when the server has none (start from 0).
    ///
    /// # Errors
    /// [`ApiError`].
    pub async fn upload_status(
        &self,
        sha256: &str,
    ) -> Result<Option<fleetfront_domain::api::media::UploadView>, ApiError> {
        let request = self
            .http
            .get(self.url(&format!("/api/v1/uploads/{sha256}")))
            .bearer_auth(self.token()?);
        match send(request).await {
            Err(ApiError::Problem { status: 404, .. }) => Ok(None),
            other => other.map(Some),
        }
    }

    /// Sends one chunk of a resumable upload (`PUT /api/v1/uploads/{sha256}`). A chunk that
    /// starts past what the server holds is answered with the offset to resume from.
    ///
    /// # Errors
    /// [`ApiError`]; `hash_mismatch` when the completed file does not have its SHA-256.
    pub async fn upload_chunk(
        &self,
        chunk: crate::attachments::UploadChunk<'_>,
    ) -> Result<crate::attachments::ChunkAnswer, ApiError> {
        use fleetfront_domain::api::media::{UPLOAD_LENGTH_HEADER, UPLOAD_OFFSET_HEADER};
        let request = self
            .http
            .put(self.url(&format!("/api/v1/uploads/{}", chunk.sha256)))
            .bearer_auth(self.token()?)
            .query(&[("purpose", chunk.purpose), ("owner", chunk.owner_id)])
            .header(UPLOAD_OFFSET_HEADER, chunk.offset)
            .header(UPLOAD_LENGTH_HEADER, chunk.length)
            .header(reqwest::header::CONTENT_TYPE, chunk.content_type)
            .body(chunk.bytes);
        let response = request.send().await.map_err(ApiError::Network)?;
        let status = response.status();
        let resume = response
            .headers()
            .get(UPLOAD_OFFSET_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let bytes = response.bytes().await.map_err(ApiError::Network)?;
        match (status, resume) {
            (StatusCode::CONFLICT, Some(offset)) => {
                Ok(crate::attachments::ChunkAnswer::Resume(offset))
            }
            (status, _) if status.is_success() => serde_json::from_slice(&bytes)
                .map(crate::attachments::ChunkAnswer::Stored)
                .map_err(|e| ApiError::Unexpected {
                    status: status.as_u16(),
                    message: format!("body does not parse: {e}"),
                }),
            (status, _) => Err(problem(status, &bytes)),
        }
    }
}

/// Sends a request and reads a JSON answer, or the problem it carries.
async fn send<T: DeserializeOwned>(request: reqwest::RequestBuilder) -> Result<T, ApiError> {
    let response = request.send().await.map_err(ApiError::Network)?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(ApiError::Network)?;
    if status.is_success() {
        return serde_json::from_slice(&bytes).map_err(|e| ApiError::Unexpected {
            status: status.as_u16(),
            message: format!("body does not parse: {e}"),
        });
    }
    Err(problem(status, &bytes))
}

fn problem(status: StatusCode, bytes: &[u8]) -> ApiError {
    match serde_json::from_slice::<ProblemBody>(bytes) {
        Ok(body) => ApiError::Problem {
            status: status.as_u16(),
            known: serde_json::from_value(serde_json::Value::String(body.code.clone())).ok(),
            code: body.code,
            detail: body.detail,
            retry_after: body.retry_after,
        },
        Err(_) => ApiError::Unexpected {
            status: status.as_u16(),
            message: String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_keep_unknown_codes_and_judge_retries() {
        let e = problem(
            StatusCode::CONFLICT,
            br#"{"type":"x","title":"t","status":409,"detail":"Out of stock","code":"sync_brand_new"}"#,
        );
        match &e {
            ApiError::Problem {
                code,
                known,
                detail,
                ..
            } => {
                assert_eq!(code, "sync_brand_new");
                assert_eq!(*known, None);
                assert_eq!(detail, "Out of stock");
            }
            other => panic!("{other:?}"),
        }
        assert!(!e.is_retryable());
        let e = problem(
            StatusCode::UNAUTHORIZED,
            br#"{"status":401,"detail":"expired","code":"token_expired"}"#,
        );
        assert!(matches!(
            e,
            ApiError::Problem {
                known: Some(ErrorCode::TokenExpired),
                ..
            }
        ));
        assert!(e.is_unauthenticated());
        assert!(problem(StatusCode::SERVICE_UNAVAILABLE, b"<html>").is_retryable());
        assert!(!problem(StatusCode::BAD_REQUEST, b"<html>").is_retryable());
    }
}
