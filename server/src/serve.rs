//! Start-up: logging, database (private cluster or `DATABASE_URL`), signing secret, listener,
//! graceful shutdown.

use std::path::Path;

use anyhow::Context;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

use crate::app::App;
use crate::auth::{random_secret, Keys};
use crate::config::Config;
use crate::db::Db;
use crate::pg::{self, Pools, PrivateCluster};

/// Installs the tracing subscriber (text or JSON lines).
pub fn init_tracing(filter: &str, json: bool) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    if json {
        let _ = builder.json().flatten_event(true).try_init();
    } else {
        let _ = builder.try_init();
    }
}

/// Connects to the configured database (starting the private cluster when there is no
/// `DATABASE_URL`) and migrates it.
///
/// # Errors
/// Start-up failures, with what to do.
pub async fn open_database(config: &Config) -> anyhow::Result<(Pools, Option<PrivateCluster>)> {
    match &config.database_url {
        Some(url) => {
            let pools = pg::bootstrap_url(
                url,
                config.app_db_password.as_deref(),
                config.max_connections,
            )
            .await?;
            Ok((pools, None))
        }
        None => {
            let cluster_dir = config.data_dir.join("postgres");
            let cluster =
                tokio::task::spawn_blocking(move || PrivateCluster::ensure(&cluster_dir)).await??;
            tracing::info!(url = %cluster.superuser_url(pg::DATABASE), "private PostgreSQL cluster ready");
            let pools = pg::bootstrap_private(&cluster, config.max_connections).await?;
            Ok((pools, Some(cluster)))
        }
    }
}

/// The token signing secret: `FLEETFRONT_JWT_SECRET`, or one generated once and kept in the
/// data folder (mode 0600).
///
/// # Errors
/// File errors, or a secret shorter than 32 bytes.
pub fn signing_keys(data_dir: &Path) -> anyhow::Result<Keys> {
    if let Ok(secret) = std::env::var("FLEETFRONT_JWT_SECRET") {
        return Keys::from_secret(secret.as_bytes()).context("invalid FLEETFRONT_JWT_SECRET");
    }
    let path = data_dir.join("jwt-secret");
    let secret = match std::fs::read_to_string(&path) {
        Ok(s) => s.trim().to_owned(),
        Err(_) => {
            std::fs::create_dir_all(data_dir)?;
            let secret = random_secret();
            write_private(&path, &secret)?;
            secret
        }
    };
    Keys::from_secret(secret.as_bytes())
        .with_context(|| format!("invalid secret in {}", path.display()))
}

/// The key sealing personal data: `FLEETFRONT_DATA_KEY`, or one generated once and kept in the
/// data folder (`data-key`, mode 0600), so a restart can open what was sealed before.
///
/// # Errors
/// File errors, or a stored key that does not parse.
pub fn data_key(config: &Config) -> anyhow::Result<crate::crypto::DataKey> {
    if let Some(key) = &config.data_key {
        return Ok(key.clone());
    }
    let path = config.data_dir.join("data-key");
    match std::fs::read_to_string(&path) {
        Ok(text) => crate::crypto::DataKey::parse(&text)
            .with_context(|| format!("invalid data key in {}", path.display())),
        Err(_) => {
            std::fs::create_dir_all(&config.data_dir)?;
            let key = crate::crypto::DataKey::generate();
            write_private(&path, &key.to_hex())?;
            tracing::warn!(path = %path.display(), "FLEETFRONT_DATA_KEY is not set: generated a data key; back it up, sealed data cannot be read without it");
            Ok(key)
        }
    }
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    Ok(())
}

/// Runs the server until Ctrl-C or SIGTERM, then drains requests and stops the private cluster
/// if this process started it.
///
/// # Errors
/// Start-up failures.
pub async fn serve(config: Config, demo: bool) -> anyhow::Result<()> {
    let (pools, cluster) = open_database(&config).await?;
    let keys = signing_keys(&config.data_dir)?;
    let state = App::new(
        Db::new(pools.app.clone()),
        keys,
        config.base_domain.clone(),
        config.trust_forwarded_for,
    );
    let blobs = crate::storage::LocalDiskStore::open(&config.blob_dir).with_context(|| {
        format!(
            "cannot use the blob directory {} (FLEETFRONT_BLOB_DIR)",
            config.blob_dir.display()
        )
    })?;
    tracing::info!(dir = %config.blob_dir.display(), "uploaded files stored on local disk");
    state.configure_blobs(std::sync::Arc::new(blobs));
    state.configure_data_key(data_key(&config)?);
    if let Some(stripe) = &config.stripe {
        let gateway =
            crate::payments::stripe::StripeGateway::new(&stripe.api_base, &stripe.secret_key)?;
        state.configure_stripe(crate::payments::webhook::Stripe::new(
            gateway,
            stripe.webhook_secret.clone(),
        ));
        tracing::info!(api_base = %stripe.api_base, "card payments through Stripe");
    }
    if demo {
        crate::demo::seed(&pools, &state).await?;
    }
    let notifier = notifier(&config)?;
    let sender = crate::notify::OutboxSender::new(state.db.clone(), notifier);
    let clock_state = state.clone();
    let outbox = sender
        .spawn(
            move || clock_state.clock.now(),
            std::time::Duration::from_secs(5),
        )
        .await?;
    // Pending orders past their acceptance window are rejected by this task; the deadline is
    // stored with each order, so a restart picks up where the last run stopped.
    let timeouts = crate::orders::spawn_timeouts(state.clone(), std::time::Duration::from_secs(5));
    // Open offers past their expiry move on to the next driver; the offers and their
    // deadlines live in the database, so a restart loses none of them.
    let offer_timeouts =
        crate::dispatch::spawn_offer_timeouts(state.clone(), std::time::Duration::from_secs(2));
    // Payment effects whose gateway call failed (or was cut off by a restart) are retried by
    // this task with their own idempotency keys; the jobs live in the database.
    let payment_jobs =
        crate::payments::jobs::spawn(state.clone(), std::time::Duration::from_secs(5));
    let session_listener =
        crate::sessions::start_listener(pools.app.clone(), state.db.sessions.clone()).await?;
    // Drivers' latest positions live in memory: reload the recent ones so tracking survives a
    // restart, then write accepted fixes in bulk and delete history past its retention.
    let restored = state
        .locations
        .restore(&state.db, state.clock.now())
        .await
        .map_err(|e| anyhow::anyhow!("cannot restore drivers' recent locations: {e}"))?;
    tracing::info!(drivers = restored, "recent driver locations restored");
    let location_flusher = state.locations.spawn_flusher(state.db.clone());
    let location_retention = crate::locations::spawn_retention(
        state.clone(),
        chrono::Duration::days(i64::from(config.location_retention_days)),
        std::time::Duration::from_secs(600),
    );
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    tracing::info!(address = %listener.local_addr()?, "Fleetfront listening; API docs at /api/v1/docs");
    let router = crate::app::app(state);
    let result = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await;
    session_listener.abort();
    location_retention.abort();
    outbox.abort();
    timeouts.abort();
    offer_timeouts.abort();
    payment_jobs.abort();
    if let Some(flusher) = location_flusher {
        // The flusher stops once the last `App` (which holds the queue's sender) is dropped,
        // after writing what was queued; the tasks aborted above release theirs.
        if tokio::time::timeout(std::time::Duration::from_secs(5), flusher)
            .await
            .is_err()
        {
            tracing::warn!("driver locations still queued at shutdown were not all written");
        }
    }
    pools.app.close().await;
    pools.owner.close().await;
    if let Some(cluster) = cluster {
        cluster.stop_if_started_here();
    }
    result.context("server error")
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    tracing::info!("shutting down: finishing requests in flight");
}

/// The delivery channels from the configuration: SMTP when `FLEETFRONT_SMTP_URL` is set, the
/// log otherwise; SMS and push go to the log until their providers are configured.
///
/// # Errors
/// An invalid SMTP URL or sender address.
pub fn notifier(config: &Config) -> anyhow::Result<crate::notify::Notifier> {
    use crate::notify::{LogSender, MailSender, SmtpSender};
    let mail: std::sync::Arc<dyn MailSender> = match &config.smtp_url {
        Some(url) => std::sync::Arc::new(SmtpSender::from_url(url)?),
        None => std::sync::Arc::new(LogSender),
    };
    Ok(crate::notify::Notifier {
        mail,
        sms: std::sync::Arc::new(LogSender),
        push: std::sync::Arc::new(LogSender),
        from: config
            .mail_from
            .parse()
            .context("invalid FLEETFRONT_MAIL_FROM")?,
        public_url: config.public_url.clone(),
    })
}
