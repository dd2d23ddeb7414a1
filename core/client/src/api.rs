//! The facade the apps call: sign-in, the signed-in account, reads from the local store,
//! mutations that apply at once and queue for the server, `sync_now`, a background sync loop
//! with backoff, and the sync status to show.
//!
//! One [`Client`] per local database file. The session (tokens and the account) is kept in the
//! store's `meta`, so an app restarted offline is still signed in and keeps working; the
//! access token is refreshed with the refresh token when the server says it expired.
//!
//! The outbox belongs to one account: signing in as another account on a device with pending
//! mutations is refused (they would be sent with the wrong identity), and signing in as
//! another account on a device without them starts a fresh local copy with a new client id.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use fleetfront_domain::api::auth::{PrincipalView, TokenResponse};
use fleetfront_domain::api::delivery::DeliveryStatusUpdateRequest;
use fleetfront_domain::api::location::FixInput;
use fleetfront_domain::api::media::PURPOSE_DELIVERY_PROOF;
use fleetfront_domain::api::mutations::{OrderPlaceArgs, SaleItem, SalePayment};
use fleetfront_domain::api::sync::Mutation;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::attachments::AttachmentError;
use crate::engine::{Backoff, SyncEngine, SyncError, SyncReport, SyncStatus};
use crate::http::{ApiClient, ApiError};
use crate::local::Refusal;
use crate::store::{Rejection, Store, StoreError};

/// The `meta` key of the session.
const SESSION: &str = "session";
/// The `meta` key of the server's URL.
const SERVER_URL: &str = "server_url";
/// The `meta` key of the account the local data and the outbox belong to.
const ACCOUNT: &str = "account_id";

/// What went wrong in a facade call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The local database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A server call failed.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// A sync round failed.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// Nobody is signed in on this device.
    #[error("not signed in")]
    NotSignedIn,
    /// The mutation cannot apply: nothing was queued. The message is for the user.
    #[error("{0}")]
    Refused(Refusal),
    /// Another account's changes still wait for the server on this device.
    #[error(
        "{pending} change(s) of another account still wait to be sent; sign in as that \
         account and sync first"
    )]
    PendingForOtherAccount {
        /// How many.
        pending: u64,
    },
    /// A photo could not be queued (unreadable, too large, not an image).
    #[error(transparent)]
    Attachment(#[from] AttachmentError),
    /// A blocking task died.
    #[error("local task failed: {0}")]
    Task(String),
}

/// The stored session.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Session {
    access_token: String,
    refresh_token: String,
    principal: PrincipalView,
}

/// The client of one server over one local database.
#[derive(Debug)]
pub struct Client {
    store: Arc<Store>,
    /// Where queued attachments are kept, by hash (beside the database file).
    files: PathBuf,
    engine: SyncEngine,
    session: Mutex<Option<Session>>,
    /// Wakes the background loop when something was queued.
    wake: Notify,
    backoff: Backoff,
}

/// Stops the background loop when dropped or stopped.
#[derive(Debug)]
pub struct Background {
    task: tokio::task::JoinHandle<()>,
}

impl Background {
    /// Stops the loop (a round in progress is abandoned; what it finished stays done).
    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Client {
    /// Opens the local database at `path` for the server at `server_url` and restores the
    /// session kept there, if any.
    ///
    /// # Errors
    /// The store's errors (see [`Store::open`]).
    pub fn open(path: impl AsRef<Path>, server_url: &str) -> Result<Self, ClientError> {
        let path = path.as_ref();
        let store = Arc::new(Store::open(path)?);
        let mut files = path.as_os_str().to_owned();
        files.push(".files");
        let server_url = server_url.trim_end_matches('/');
        if store.meta(SERVER_URL)?.as_deref() != Some(server_url) {
            store.set_meta(SERVER_URL, server_url)?;
        }
        let session: Option<Session> = store
            .meta(SESSION)?
            .and_then(|s| serde_json::from_str(&s).ok());
        let mut api = ApiClient::new(server_url);
        api.access_token = session.as_ref().map(|s| s.access_token.clone());
        Ok(Self {
            engine: SyncEngine::new(Arc::clone(&store), api),
            store,
            files: PathBuf::from(files),
            session: Mutex::new(session),
            wake: Notify::new(),
            backoff: Backoff::default(),
        })
    }

    /// Sets how the background loop spaces its retries.
    #[must_use]
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The local store, for reads the facade does not wrap.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    fn session(&self) -> Option<Session> {
        self.session
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    async fn blocking<T, F>(&self, f: F) -> Result<T, ClientError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| ClientError::Task(e.to_string()))?
            .map_err(ClientError::Store)
    }

    async fn keep(&self, tokens: &TokenResponse) -> Result<(), ClientError> {
        let session = Session {
            access_token: tokens.access_token.clone(),
            refresh_token: tokens.refresh_token.clone(),
            principal: tokens.principal.clone(),
        };
        let text = serde_json::to_string(&session).map_err(|e| ClientError::Task(e.to_string()))?;
        self.blocking(move |s| s.set_meta(SESSION, &text)).await?;
        self.engine
            .set_access_token(Some(session.access_token.clone()));
        *self.session.lock().unwrap_or_else(|p| p.into_inner()) = Some(session);
        Ok(())
    }

    // ---- the account ------------------------------------------------------------------

    /// Signs in and keeps the session on the device.
    ///
    /// # Errors
    /// [`ClientError::Api`] (wrong credentials are the problem `invalid_credentials`),
    /// [`ClientError::PendingForOtherAccount`] when another account's changes still wait on
    /// this device (nothing changes locally then).
    pub async fn login(&self, email: &str, password: &str) -> Result<PrincipalView, ClientError> {
        let mut api = self.engine.api();
        let tokens = api.login(email, password).await?;
        self.start_session(api, tokens).await
    }

    /// Signs a customer in at the store `store` (its subdomain) and keeps the session on the
    /// device, as [`Client::login`] does for staff, drivers and admins.
    ///
    /// # Errors
    /// As [`Client::login`]; an unknown store is the problem `not_found`.
    pub async fn login_customer(
        &self,
        store: &str,
        email: &str,
        password: &str,
    ) -> Result<PrincipalView, ClientError> {
        let mut api = self.engine.api();
        let tokens = api.login_customer(store, email, password).await?;
        self.start_session(api, tokens).await
    }

    /// Makes `tokens` the device's session, unless another account's changes still wait.
    async fn start_session(
        &self,
        mut api: ApiClient,
        tokens: TokenResponse,
    ) -> Result<PrincipalView, ClientError> {
        let account = tokens.principal.id;
        let switched = self
            .blocking(move |s| {
                let previous = s.meta(ACCOUNT)?;
                if previous.as_deref() == Some(account.to_string().as_str()) {
                    return Ok(Ok(()));
                }
                if previous.is_none() {
                    // The first account of this device: what is there is its own.
                    s.set_meta(ACCOUNT, &account.to_string())?;
                    s.rebase()?;
                    return Ok(Ok(()));
                }
                let pending = s.pending_count()?;
                if pending > 0 {
                    return Ok(Err(pending));
                }
                s.start_account(account)?;
                Ok(Ok(()))
            })
            .await?;
        if let Err(pending) = switched {
            // The new session is not kept: the device stays the other account's.
            let _ = api.logout(&tokens.refresh_token).await;
            return Err(ClientError::PendingForOtherAccount { pending });
        }
        self.keep(&tokens).await?;
        Ok(tokens.principal)
    }

    /// Signs out: the session ends on the server when it can be reached and is forgotten
    /// here. The local data and any pending changes stay for the next sign-in of the same
    /// account.
    ///
    /// # Errors
    /// The store's errors.
    pub async fn logout(&self) -> Result<(), ClientError> {
        if let Some(session) = self.session() {
            let mut api = self.engine.api();
            // Offline, the server's session simply expires.
            let _ = api.logout(&session.refresh_token).await;
        }
        self.blocking(|s| s.delete_meta(SESSION)).await?;
        self.engine.set_access_token(None);
        *self.session.lock().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(())
    }

    /// The signed-in account, as of the last sign-in or refresh (works offline).
    pub fn current_user(&self) -> Option<PrincipalView> {
        self.session().map(|s| s.principal)
    }

    /// Refreshes the access token with the kept refresh token.
    async fn refresh(&self) -> Result<(), ClientError> {
        let session = self.session().ok_or(ClientError::NotSignedIn)?;
        let mut api = self.engine.api();
        let tokens = api.refresh(&session.refresh_token).await?;
        self.keep(&tokens).await
    }

    // ---- sync ---------------------------------------------------------------------------

    /// One sync round now (see [`SyncEngine::sync_now`]); an expired access token is
    /// refreshed once and the round tried again.
    ///
    /// # Errors
    /// [`ClientError::NotSignedIn`], or the round's error (also in [`Client::status`]).
    pub async fn sync_now(&self) -> Result<SyncReport, ClientError> {
        if self.session().is_none() {
            return Err(ClientError::NotSignedIn);
        }
        match self.engine.sync_now().await {
            Err(SyncError::Api(e)) if e.is_unauthenticated() => {
                self.refresh().await?;
                Ok(self.engine.sync_now().await?)
            }
            other => Ok(other?),
        }
    }

    /// What the apps show: online, pending changes, last synced, the last error.
    pub fn status(&self) -> SyncStatus {
        let mut status = self.engine.status();
        if let Ok(pending) = self.store.pending_count() {
            status.pending = pending;
        }
        if let Ok(uploads) = self.store.pending_attachment_count() {
            status.pending_uploads = uploads;
        }
        status
    }

    /// Runs sync in the background on the current tokio runtime: a round every `every`, at
    /// once after a mutation, and after a failure with growing delays ([`Backoff`]) until the
    /// server answers again. Stops when the handle is stopped or dropped.
    pub fn start_background(self: &Arc<Self>, every: Duration) -> Background {
        let client = Arc::clone(self);
        let task = tokio::spawn(async move {
            let mut failures: u32 = 0;
            loop {
                let delay = match client.sync_now().await {
                    Ok(_) => {
                        failures = 0;
                        every
                    }
                    Err(ClientError::NotSignedIn) => every,
                    Err(_) => {
                        failures = failures.saturating_add(1);
                        client.backoff.delay(failures, crate::engine::jitter())
                    }
                };
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = client.wake.notified(), if failures == 0 => {}
                }
            }
        });
        Background { task }
    }

    // ---- reads --------------------------------------------------------------------------

    /// Every row of `kind` as the user sees it (pulled, with pending changes on top).
    ///
    /// # Errors
    /// The store's errors.
    pub fn rows(&self, kind: &str) -> Result<Vec<(Uuid, Value)>, ClientError> {
        Ok(self.store.rows(kind)?)
    }

    /// One row as the user sees it.
    ///
    /// # Errors
    /// The store's errors.
    pub fn row(&self, kind: &str, id: Uuid) -> Result<Option<Value>, ClientError> {
        Ok(self.store.row(kind, id)?)
    }

    /// The orders on the device (a store's, a customer's).
    ///
    /// # Errors
    /// The store's errors.
    pub fn orders(&self) -> Result<Vec<(Uuid, Value)>, ClientError> {
        self.rows("order")
    }

    /// The driver's open offers.
    ///
    /// # Errors
    /// The store's errors.
    pub fn offers(&self) -> Result<Vec<(Uuid, Value)>, ClientError> {
        self.rows("offer")
    }

    /// The deliveries on the device (a driver's held ones).
    ///
    /// # Errors
    /// The store's errors.
    pub fn deliveries(&self) -> Result<Vec<(Uuid, Value)>, ClientError> {
        self.rows("delivery")
    }

    /// The catalog's public products.
    ///
    /// # Errors
    /// The store's errors.
    pub fn products(&self) -> Result<Vec<(Uuid, Value)>, ClientError> {
        self.rows("product")
    }

    /// Changes the server refused, newest first, with the reason in words.
    ///
    /// # Errors
    /// The store's errors.
    pub fn rejections(&self) -> Result<Vec<Rejection>, ClientError> {
        Ok(self.store.rejections()?)
    }

    // ---- mutations ----------------------------------------------------------------------

    /// Does `name@version` with `args` now: applied locally at once and queued for the
    /// server, with `at` as the action's real time (now, unless the action happened earlier).
    ///
    /// # Errors
    /// [`ClientError::Refused`] when the local rules refuse it (nothing queued),
    /// [`ClientError::NotSignedIn`], the store's errors.
    pub async fn mutate(
        &self,
        name: &str,
        args: Value,
        at: Option<DateTime<Utc>>,
    ) -> Result<Mutation, ClientError> {
        if self.session().is_none() {
            return Err(ClientError::NotSignedIn);
        }
        let name = name.to_owned();
        let at = at.unwrap_or_else(crate::now);
        let outcome = self.blocking(move |s| s.mutate(&name, args, at)).await?;
        let mutation = outcome.map_err(ClientError::Refused)?;
        self.wake.notify_one();
        Ok(mutation)
    }

    /// Staff: accept a pending order with a preparation time.
    ///
    /// # Errors
    /// See [`Client::mutate`].
    pub async fn accept_order(
        &self,
        order: Uuid,
        prep_minutes: i64,
    ) -> Result<Mutation, ClientError> {
        let args = json!({"order_id": order, "prep_time": prep_minutes});
        self.mutate("order.accept@1", args, None).await
    }

    /// Staff: the order is ready.
    ///
    /// # Errors
    /// See [`Client::mutate`].
    pub async fn mark_ready(&self, order: Uuid) -> Result<Mutation, ClientError> {
        self.mutate("order.mark_ready@1", json!({"order_id": order}), None)
            .await
    }

    /// Staff: cancel an order, with the reason the customer sees.
    ///
    /// # Errors
    /// See [`Client::mutate`].
    pub async fn cancel_order(&self, order: Uuid, reason: &str) -> Result<Mutation, ClientError> {
        let args = json!({"order_id": order, "reason": reason});
        self.mutate("order.cancel@1", args, None).await
    }

    /// Staff at the till: a sale of `items`, paid now by `payment`; the new order's id (made
    /// here, the sale's idempotency key) and the queued mutation. The server prices it from
    /// its catalog and refuses it (rolled back here, with the reason) when the stock is gone.
    ///
    /// # Errors
    /// See [`Client::mutate`].
    pub async fn sell(
        &self,
        items: Vec<SaleItem>,
        payment: SalePayment,
    ) -> Result<(Uuid, Mutation), ClientError> {
        let order = Uuid::now_v7();
        let args = json!({"order_id": order, "items": items, "payment": payment});
        let mutation = self.mutate("order.create@1", args, None).await?;
        Ok((order, mutation))
    }

    /// Driver: keeps a GPS fix (from the platform's location service, or a simulated route)
    /// to send with the next round, in batches on their own channel; fixes taken offline wait
    /// on the device (up to a day).
    ///
    /// # Errors
    /// The store's errors.
    pub async fn record_location(&self, fix: FixInput) -> Result<u64, ClientError> {
        self.blocking(move |s| s.record_fix(&fix)).await
    }

    /// Customer: sets a line of the cart (`quantity` 0 removes it); works offline.
    ///
    /// # Errors
    /// See [`Client::mutate`].
    pub async fn add_to_cart(
        &self,
        product: Uuid,
        variant: Option<Uuid>,
        quantity: i64,
    ) -> Result<Mutation, ClientError> {
        let args = json!({"product_id": product, "variant_id": variant, "quantity": quantity});
        self.mutate("cart.add@1", args, None).await
    }

    /// Customer: places an order (`order.place@1`). It is queued like any change, but a
    /// payment is never taken offline: a cash order is placed when the server gets it, and a
    /// card order's answer (in the mutation's result) carries what the app needs to finish
    /// the payment online.
    ///
    /// # Errors
    /// See [`Client::mutate`].
    pub async fn place_order(&self, order: &OrderPlaceArgs) -> Result<Mutation, ClientError> {
        let args = serde_json::to_value(order).map_err(|e| ClientError::Task(e.to_string()))?;
        self.mutate("order.place@1", args, None).await
    }

    /// Driver: accept an open offer.
    ///
    /// # Errors
    /// See [`Client::mutate`].
    pub async fn accept_offer(&self, offer: Uuid) -> Result<Mutation, ClientError> {
        self.mutate("offer.accept@1", json!({"offer_id": offer}), None)
            .await
    }

    /// Driver: decline an open offer.
    ///
    /// # Errors
    /// See [`Client::mutate`].
    pub async fn decline_offer(&self, offer: Uuid) -> Result<Mutation, ClientError> {
        self.mutate("offer.decline@1", json!({"offer_id": offer}), None)
            .await
    }

    /// Driver: queues the proof photo of `delivery` for upload (a copy is kept beside the
    /// database, by its SHA-256, so the same photo twice is one upload) and returns its
    /// SHA-256 for the `delivered` step's `proof_sha256`. The step goes ahead without waiting
    /// for the upload: the server flags the proof pending until the photo arrives, resumed
    /// where it stopped after a cut.
    ///
    /// # Errors
    /// [`ClientError::Attachment`] for a file that cannot be read, is too large or is not a
    /// JPEG, PNG or WebP image.
    pub async fn attach_proof(&self, delivery: Uuid, photo: &Path) -> Result<String, ClientError> {
        let store = Arc::clone(&self.store);
        let files = self.files.clone();
        let photo = photo.to_owned();
        let sha256 = tokio::task::spawn_blocking(move || {
            crate::attachments::attach_file(
                &store,
                PURPOSE_DELIVERY_PROOF,
                delivery,
                &photo,
                &files,
            )
        })
        .await
        .map_err(|e| ClientError::Task(e.to_string()))??;
        self.wake.notify_one();
        Ok(sha256)
    }

    /// Driver: a delivery step (arrived at the store, picked up, …, delivered or failed),
    /// done at `at` (now by default).
    ///
    /// # Errors
    /// See [`Client::mutate`].
    pub async fn delivery_step(
        &self,
        delivery: Uuid,
        step: &DeliveryStatusUpdateRequest,
        at: Option<DateTime<Utc>>,
    ) -> Result<Mutation, ClientError> {
        let mut args = serde_json::to_value(step).map_err(|e| ClientError::Task(e.to_string()))?;
        if let Some(object) = args.as_object_mut() {
            object.insert("delivery_id".to_owned(), json!(delivery));
            object.retain(|_, v| !v.is_null());
        }
        self.mutate("delivery.step@1", args, at).await
    }
}
