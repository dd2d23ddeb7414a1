//! [`FleetfrontClient`], the exported object: one per local database file, forwarding every call
//! to [`fleetfront_core::Client`] and converting at the edge (strings to ids, JSON text to
//! values, milliseconds to times, and back).
//!
//! The async calls run on the library's runtime (see `runtime`), so they may be awaited from
//! any executor. The synchronous reads (`rows`, `row`, `rejections`, `status`) query the local
//! SQLite file on the calling thread: quick, but apps call them off their UI thread like any
//! disk read.

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fleetfront_core::{Background, Client, ClientError};
use fleetfront_domain::api::delivery::DeliveryStatusUpdateRequest;
use serde_json::Value;
use uuid::Uuid;

use crate::error::FleetfrontError;
use crate::records::{
    self, DeliveryStep, MutationInfo, Principal, Rejection, Row, SyncReport, SyncStatus,
};
use crate::runtime;

/// The client of one Fleetfront server over one local database file: sign-in, reads from the
/// device, changes that apply at once and wait for the server, and sync.
#[derive(Debug, uniffi::Object)]
pub struct FleetfrontClient {
    client: Arc<Client>,
    /// The background sync loop, while it runs.
    background: Mutex<Option<Background>>,
}

/// Parses an id argument.
fn id(what: &str, text: &str) -> Result<Uuid, FleetfrontError> {
    text.parse()
        .map_err(|e| FleetfrontError::invalid(format!("{what}: {e}")))
}

/// A JSON text as a value.
fn json(text: &str) -> Result<Value, FleetfrontError> {
    serde_json::from_str(text).map_err(|e| FleetfrontError::invalid(format!("args_json: {e}")))
}

impl FleetfrontClient {
    /// Runs a facade call on the library's runtime.
    async fn call<T, F, Fut>(&self, f: F) -> Result<T, FleetfrontError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Client>) -> Fut,
        Fut: Future<Output = Result<T, ClientError>> + Send + 'static,
    {
        let future = f(Arc::clone(&self.client));
        Ok(runtime::run(future).await??)
    }
}

#[uniffi::export]
impl FleetfrontClient {
    /// Opens (or creates) the local database at `db_path` for the server at `server_url` and
    /// restores the session kept there, so an app restarted offline is still signed in.
    ///
    /// # Errors
    /// `Local` when the file cannot be opened or migrated, or the runtime cannot start.
    #[uniffi::constructor]
    pub fn new(db_path: String, server_url: String) -> Result<Arc<Self>, FleetfrontError> {
        runtime::get()?;
        let client = Client::open(&db_path, &server_url)?;
        Ok(Arc::new(Self {
            client: Arc::new(client),
            background: Mutex::new(None),
        }))
    }

    // ---- the account --------------------------------------------------------------------

    /// Signs in and keeps the session on the device.
    ///
    /// # Errors
    /// `Server` with code `invalid_credentials` for wrong credentials, `Offline`,
    /// `PendingForOtherAccount` when another account's changes still wait on this device.
    pub async fn login(
        &self,
        email: String,
        password: String,
    ) -> Result<Principal, FleetfrontError> {
        let principal = self
            .call(move |c| async move { c.login(&email, &password).await })
            .await?;
        Ok(principal.into())
    }

    /// Signs a customer in at the store `store` (its subdomain) and keeps the session on the
    /// device.
    ///
    /// # Errors
    /// As `login`; an unknown store is `Server` with code `not_found`.
    pub async fn login_customer(
        &self,
        store: String,
        email: String,
        password: String,
    ) -> Result<Principal, FleetfrontError> {
        let principal = self
            .call(move |c| async move { c.login_customer(&store, &email, &password).await })
            .await?;
        Ok(principal.into())
    }

    /// Driver: keeps a GPS fix from the platform's location service, sent with the next sync
    /// round in batches on its own channel (kept on the device while offline, up to a day).
    /// Answers the fix's sequence number.
    ///
    /// # Errors
    /// `InvalidArgument` for a time out of range; `Local` when the database fails.
    pub async fn record_location(
        &self,
        latitude: f64,
        longitude: f64,
        accuracy_m: f64,
        heading_deg: Option<f64>,
        speed_mps: Option<f64>,
        recorded_at_ms: i64,
    ) -> Result<u64, FleetfrontError> {
        let fix = fleetfront_domain::api::location::FixInput {
            latitude,
            longitude,
            accuracy_m,
            heading_deg,
            speed_mps,
            recorded_at: records::time("recorded_at_ms", recorded_at_ms)?,
            seq: 0,
        };
        self.call(move |c| async move { c.record_location(fix).await })
            .await
    }

    /// Customer: sets a line of the cart (`quantity` 0 removes it); works offline.
    ///
    /// # Errors
    /// `InvalidArgument` for an id that is no UUID; as `mutate`.
    pub async fn add_to_cart(
        &self,
        product_id: String,
        variant_id: Option<String>,
        quantity: i64,
    ) -> Result<MutationInfo, FleetfrontError> {
        let product = id("product_id", &product_id)?;
        let variant = variant_id
            .as_deref()
            .map(|v| id("variant_id", v))
            .transpose()?;
        let mutation = self
            .call(move |c| async move { c.add_to_cart(product, variant, quantity).await })
            .await?;
        Ok(mutation.into())
    }

    /// Signs out (on the server too when it can be reached). The local data and pending
    /// changes stay for the next sign-in of the same account.
    ///
    /// # Errors
    /// `Local` when the device's database fails.
    pub async fn logout(&self) -> Result<(), FleetfrontError> {
        self.call(|c| async move { c.logout().await }).await
    }

    /// The signed-in account, as of the last sign-in (works offline).
    pub fn current_user(&self) -> Option<Principal> {
        self.client.current_user().map(Principal::from)
    }

    // ---- sync ---------------------------------------------------------------------------

    /// One sync round now: sends the waiting changes, then pulls what changed.
    ///
    /// # Errors
    /// `NotSignedIn`, `Offline` (the changes keep waiting), `Server`, `Local`; the error is
    /// also in `status().last_error`.
    pub async fn sync_now(&self) -> Result<SyncReport, FleetfrontError> {
        let report = self.call(|c| async move { c.sync_now().await }).await?;
        Ok(report.into())
    }

    /// What the apps show: online, pending changes, last synced, the last error.
    pub fn status(&self) -> SyncStatus {
        self.client.status().into()
    }

    /// Starts syncing in the background: a round every `every_ms` milliseconds, at once after
    /// a change, and after a failure with growing delays until the server answers again. A
    /// loop already running is replaced.
    ///
    /// # Errors
    /// `Local` when the runtime cannot start.
    pub fn start_background(&self, every_ms: u64) -> Result<(), FleetfrontError> {
        // The facade spawns its loop on the current runtime: enter ours.
        let _inside = runtime::get()?.enter();
        let background = self
            .client
            .start_background(Duration::from_millis(every_ms));
        let previous = self
            .background
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace(background);
        if let Some(previous) = previous {
            previous.stop();
        }
        Ok(())
    }

    /// Stops the background loop, if it runs (a round in progress is abandoned; what it
    /// finished stays done).
    pub fn stop_background(&self) {
        let running = self
            .background
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(running) = running {
            running.stop();
        }
    }

    // ---- reads --------------------------------------------------------------------------

    /// Every row of `kind` (`order`, `offer`, `delivery`, `product`, …) as the user sees it:
    /// pulled, with the waiting changes on top.
    ///
    /// # Errors
    /// `Local` when the device's database fails.
    pub fn rows(&self, kind: String) -> Result<Vec<Row>, FleetfrontError> {
        Ok(self
            .client
            .rows(&kind)?
            .into_iter()
            .map(|(id, row)| Row {
                id: id.to_string(),
                json: row.to_string(),
            })
            .collect())
    }

    /// One row as JSON text, if the device has it.
    ///
    /// # Errors
    /// `InvalidArgument` when `id` is no UUID, `Local` when the device's database fails.
    pub fn row(&self, kind: String, id: String) -> Result<Option<String>, FleetfrontError> {
        let id = self::id("id", &id)?;
        Ok(self.client.row(&kind, id)?.map(|row| row.to_string()))
    }

    /// Changes the server refused, newest first, with the reason in words.
    ///
    /// # Errors
    /// `Local` when the device's database fails.
    pub fn rejections(&self) -> Result<Vec<Rejection>, FleetfrontError> {
        Ok(self
            .client
            .rejections()?
            .into_iter()
            .map(Rejection::from)
            .collect())
    }

    // ---- changes ------------------------------------------------------------------------

    /// Does `name` (`name@version`, e.g. `order.accept@1`) with `args_json` (a JSON object):
    /// applied on the device at once and queued for the server. `action_time_ms` is when the
    /// user did it (now when absent).
    ///
    /// # Errors
    /// `Refused` when the local rules refuse it (nothing queued), `NotSignedIn`,
    /// `InvalidArgument` for bad JSON or time, `Local`.
    #[uniffi::method(default(action_time_ms = None))]
    pub async fn mutate(
        &self,
        name: String,
        args_json: String,
        action_time_ms: Option<i64>,
    ) -> Result<MutationInfo, FleetfrontError> {
        let args = json(&args_json)?;
        if !args.is_object() {
            return Err(FleetfrontError::invalid("args_json: not a JSON object"));
        }
        let at = action_time_ms
            .map(|ms| records::time("action_time_ms", ms))
            .transpose()?;
        let mutation = self
            .call(move |c| async move { c.mutate(&name, args, at).await })
            .await?;
        Ok(mutation.into())
    }

    /// Staff: accepts a pending order with a preparation time in minutes.
    ///
    /// # Errors
    /// As `mutate`.
    pub async fn accept_order(
        &self,
        order_id: String,
        prep_minutes: i64,
    ) -> Result<MutationInfo, FleetfrontError> {
        let order = id("order_id", &order_id)?;
        let mutation = self
            .call(move |c| async move { c.accept_order(order, prep_minutes).await })
            .await?;
        Ok(mutation.into())
    }

    /// Staff: the order is ready.
    ///
    /// # Errors
    /// As `mutate`.
    pub async fn mark_ready(&self, order_id: String) -> Result<MutationInfo, FleetfrontError> {
        let order = id("order_id", &order_id)?;
        let mutation = self
            .call(move |c| async move { c.mark_ready(order).await })
            .await?;
        Ok(mutation.into())
    }

    /// Staff: cancels an order, with the reason the customer sees.
    ///
    /// # Errors
    /// As `mutate`.
    pub async fn cancel_order(
        &self,
        order_id: String,
        reason: String,
    ) -> Result<MutationInfo, FleetfrontError> {
        let order = id("order_id", &order_id)?;
        let mutation = self
            .call(move |c| async move { c.cancel_order(order, &reason).await })
            .await?;
        Ok(mutation.into())
    }

    /// Driver: accepts an open offer.
    ///
    /// # Errors
    /// As `mutate`.
    pub async fn accept_offer(&self, offer_id: String) -> Result<MutationInfo, FleetfrontError> {
        let offer = id("offer_id", &offer_id)?;
        let mutation = self
            .call(move |c| async move { c.accept_offer(offer).await })
            .await?;
        Ok(mutation.into())
    }

    /// Driver: declines an open offer.
    ///
    /// # Errors
    /// As `mutate`.
    pub async fn decline_offer(&self, offer_id: String) -> Result<MutationInfo, FleetfrontError> {
        let offer = id("offer_id", &offer_id)?;
        let mutation = self
            .call(move |c| async move { c.decline_offer(offer).await })
            .await?;
        Ok(mutation.into())
    }

    /// Driver: queues the proof photo at `photo_path` (a JPEG, PNG or WebP file) for upload
    /// and returns its SHA-256, for the `Delivered` step's `proof_sha256`. The step need not
    /// wait for the upload, which sync resumes where it stopped after a cut.
    ///
    /// # Errors
    /// `Refused` with code `attachment_too_large` or `attachment_unsupported`, `InvalidArgument`
    /// for a bad id, `Local` when the file cannot be read.
    pub async fn attach_proof(
        &self,
        delivery_id: String,
        photo_path: String,
    ) -> Result<String, FleetfrontError> {
        let delivery = id("delivery_id", &delivery_id)?;
        self.call(move |c| async move { c.attach_proof(delivery, Path::new(&photo_path)).await })
            .await
    }

    /// Driver: a delivery step (arrived at the store, picked up, …, delivered or failed),
    /// done at `action_time_ms` (now when absent).
    ///
    /// # Errors
    /// As `mutate`.
    #[uniffi::method(default(action_time_ms = None))]
    pub async fn delivery_step(
        &self,
        delivery_id: String,
        step: DeliveryStep,
        action_time_ms: Option<i64>,
    ) -> Result<MutationInfo, FleetfrontError> {
        let delivery = id("delivery_id", &delivery_id)?;
        let step = DeliveryStatusUpdateRequest::try_from(step)?;
        let at = action_time_ms
            .map(|ms| records::time("action_time_ms", ms))
            .transpose()?;
        let mutation = self
            .call(move |c| async move { c.delivery_step(delivery, &step, at).await })
            .await?;
        Ok(mutation.into())
    }
}
