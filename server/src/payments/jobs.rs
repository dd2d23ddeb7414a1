//! Payment jobs: the money side of an order transition (capture, release, refund), made durable.
//!
//! A transition that moves money writes one `payment_jobs` row per payment effect in its own
//! transaction, so the status change and the promise to move the money commit together. The
//! job is then performed outside any transaction that holds row locks (see the architecture
//! invariant): right after the commit by the request that made it ([`run_for_order`]), and by
//! the background task ([`run_due`], principal `order_worker`, `FOR UPDATE SKIP LOCKED`) for
//! whatever failed or was interrupted. Every attempt sends the job's own idempotency key
//! (`order:{id}:{effect}`), so a retry after a lost answer never moves money twice.
//!
//! Claiming a job is a short transaction that counts the attempt and leases the job (its
//! `next_attempt_at` moves [`LEASE_SECS`] ahead), so a runner that dies mid-call gives the job
//! back by itself. The gateway's answer is recorded in a second short transaction: on success,
//! the order's payment status, the ledger row (never moved backwards) and, on capture, the
//! platform fee; on a transient failure, the next attempt by `fleetfront_domain::retry`; on a
//! refusal, or after the last attempt, the job is given up and kept for an operator.

use chrono::{DateTime, Duration, Utc};
use fleetfront_domain::retry::{after_failure, AfterFailure};
use fleetfront_domain::{BusinessId, Currency, Money};
use sqlx::FromRow;
use uuid::Uuid;

use super::ledger;
use super::{PaymentError, PaymentRef, Settled, TransactionStatus};
use crate::app::App;
use crate::db::{new_id, set_principal, Tx};
use crate::error::{Error, Result};

/// How long a claimed attempt keeps its job from other runners.
pub const LEASE_SECS: i64 = 120;

/// A payment effect to perform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobEffect {
    /// Take the authorized money.
    Capture,
    /// Release the authorization.
    Release,
    /// Give captured money back.
    Refund,
}

impl JobEffect {
    /// Stored form (`payment_jobs.effect`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Capture => "capture",
            Self::Release => "release",
            Self::Refund => "refund",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "capture" => Self::Capture,
            "release" => Self::Release,
            "refund" => Self::Refund,
            _ => return None,
        })
    }

    /// The order's `payment_status` and the ledger's state once the effect is done.
    fn result(self) -> (&'static str, TransactionStatus) {
        match self {
            Self::Capture => ("captured", TransactionStatus::Completed),
            Self::Release => ("released", TransactionStatus::Canceled),
            Self::Refund => ("refunded", TransactionStatus::Refunded),
        }
    }
}

/// A job to write in the caller's transaction.
#[derive(Clone, Debug)]
pub struct NewJob<'a> {
    /// The store.
    pub business_id: Uuid,
    /// The order.
    pub order_id: Uuid,
    /// What to do.
    pub effect: JobEffect,
    /// `cash` or `card` (picks the gateway).
    pub payment_method: &'a str,
    /// The gateway's payment id.
    pub gateway_payment_id: &'a str,
    /// What to capture or refund; `None` for a release.
    pub amount: Option<Money>,
    /// The order's currency.
    pub currency: Currency,
}

/// The idempotency key of an order's payment effect, sent on every attempt.
pub fn idempotency_key(order_id: Uuid, effect: JobEffect) -> String {
    format!("order:{order_id}:{}", effect.as_str())
}

/// Writes a job in `tx`, once per order and effect (a repeated call writes nothing more).
///
/// # Errors
/// Database errors.
pub async fn enqueue(tx: &mut Tx, job: &NewJob<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO payment_jobs (business_id, id, order_id, effect, idempotency_key, payment_method, \
         gateway_payment_id, amount_minor, currency) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT DO NOTHING",
    )
    .bind(job.business_id)
    .bind(new_id())
    .bind(job.order_id)
    .bind(job.effect.as_str())
    .bind(idempotency_key(job.order_id, job.effect))
    .bind(job.payment_method)
    .bind(job.gateway_payment_id)
    .bind(job.amount.map(|a| a.minor))
    .bind(job.currency.code())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[derive(Clone, Debug, FromRow)]
struct Job {
    business_id: Uuid,
    id: Uuid,
    order_id: Uuid,
    effect: String,
    idempotency_key: String,
    payment_method: String,
    gateway_payment_id: String,
    amount_minor: Option<i64>,
    currency: String,
    attempts: i32,
}

/// Performs every due job of every business at `now`, one at a time; returns how many
/// attempts were made.
///
/// # Errors
/// Database errors (a failing gateway is recorded on the job, not returned).
pub async fn run_due(app: &App, now: DateTime<Utc>) -> Result<usize> {
    let mut attempted = 0;
    while let Some(job) = claim(app, None, now).await? {
        perform(app, job, now).await?;
        attempted += 1;
    }
    Ok(attempted)
}

/// Performs the due jobs of one order now: what a request runs right after committing the
/// transition that wrote them. Returns how many attempts were made.
///
/// # Errors
/// Database errors.
pub async fn run_for_order(
    app: &App,
    business: BusinessId,
    order_id: Uuid,
    now: DateTime<Utc>,
) -> Result<usize> {
    let mut attempted = 0;
    while let Some(job) = claim(app, Some((business.0, order_id)), now).await? {
        perform(app, job, now).await?;
        attempted += 1;
    }
    Ok(attempted)
}

/// Runs [`run_due`] every `poll` until the task is aborted.
pub fn spawn(app: App, poll: std::time::Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(e) = run_due(&app, app.clock.now()).await {
                tracing::warn!(error = %e, "payment job pass failed");
            }
            tokio::time::sleep(poll).await;
        }
    })
}

/// A transaction as the order system, scoped to `business` (or to none, to claim).
async fn begin_worker(app: &App, business: Option<Uuid>) -> Result<Tx> {
    let mut tx = app.db.pool.begin().await?;
    set_principal(&mut tx, "order_worker", None, None, business).await?;
    Ok(tx)
}

/// Claims one due job (of one order, when given): counts the attempt and leases the job.
async fn claim(app: &App, order: Option<(Uuid, Uuid)>, now: DateTime<Utc>) -> Result<Option<Job>> {
    let mut tx = begin_worker(app, order.map(|o| o.0)).await?;
    let job: Option<Job> = sqlx::query_as(
        "SELECT business_id, id, order_id, effect, idempotency_key, payment_method, gateway_payment_id, \
           amount_minor, currency, attempts + 1 AS attempts FROM payment_jobs \
         WHERE completed_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $1 \
           AND ($2::uuid IS NULL OR (business_id = $2 AND order_id = $3)) \
         ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED",
    )
    .bind(now)
    .bind(order.map(|o| o.0))
    .bind(order.map(|o| o.1))
    .fetch_optional(&mut *tx)
    .await?;
    let Some(job) = job else {
        tx.rollback().await?;
        return Ok(None);
    };
    sqlx::query(
        "UPDATE payment_jobs SET attempts = $3, next_attempt_at = $4, updated_at = now() \
         WHERE business_id = $1 AND id = $2",
    )
    .bind(job.business_id)
    .bind(job.id)
    .bind(job.attempts)
    .bind(now + Duration::seconds(LEASE_SECS))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(job))
}

/// Calls the gateway for a claimed job (no transaction open) and records the answer.
async fn perform(app: &App, job: Job, now: DateTime<Utc>) -> Result<()> {
    let effect = JobEffect::parse(&job.effect)
        .ok_or_else(|| Error::unexpected(anyhow::anyhow!("stored effect {:?}", job.effect)))?;
    let currency = Currency::parse(job.currency.trim()).map_err(Error::unexpected)?;
    let payment = PaymentRef {
        idempotency_key: job.idempotency_key.clone(),
        gateway_payment_id: job.gateway_payment_id.clone(),
        amount: job.amount_minor.map(|minor| Money::new(minor, currency)),
    };
    let outcome: std::result::Result<Option<Settled>, PaymentError> =
        match app.payments.for_method(&job.payment_method) {
            None => Err(PaymentError::Unavailable(format!(
                "no gateway is configured for {} payments",
                job.payment_method
            ))),
            Some(gateway) => match effect {
                JobEffect::Capture => gateway.capture(payment).await.map(Some),
                JobEffect::Release => gateway.cancel(payment).await.map(|()| None),
                JobEffect::Refund => gateway.refund(payment).await.map(Some),
            },
        };
    let mut tx = begin_worker(app, Some(job.business_id)).await?;
    // Another runner may have finished the job while this one's lease ran out.
    let open: Option<bool> = sqlx::query_scalar(
        "SELECT completed_at IS NULL AND failed_at IS NULL FROM payment_jobs \
         WHERE business_id = $1 AND id = $2 FOR UPDATE",
    )
    .bind(job.business_id)
    .bind(job.id)
    .fetch_optional(&mut *tx)
    .await?;
    if open != Some(true) {
        tx.rollback().await?;
        return Ok(());
    }
    match outcome {
        Ok(settled) => record_success(&mut tx, &job, effect, settled, now).await?,
        Err(e) => record_failure(&mut tx, &job, effect, &e, now).await?,
    }
    tx.commit().await?;
    Ok(())
}

async fn record_success(
    tx: &mut Tx,
    job: &Job,
    effect: JobEffect,
    settled: Option<Settled>,
    now: DateTime<Utc>,
) -> Result<()> {
    let (order_status, ledger_status) = effect.result();
    sqlx::query(
        "UPDATE payment_jobs SET completed_at = $3, last_error = NULL, gateway_result_id = $4, updated_at = now() \
         WHERE business_id = $1 AND id = $2",
    )
    .bind(job.business_id)
    .bind(job.id)
    .bind(now)
    .bind(settled.as_ref().map(|s| s.gateway_transaction_id.as_str()))
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE orders SET payment_status = $3, updated_at = now() WHERE business_id = $1 AND id = $2",
    )
    .bind(job.business_id)
    .bind(job.order_id)
    .bind(order_status)
    .execute(&mut **tx)
    .await?;
    ledger::set_order_payment_status(tx, job.business_id, job.order_id, ledger_status).await?;
    match (effect, settled) {
        (JobEffect::Refund, Some(settled)) => {
            sqlx::query(
                "UPDATE payment_transactions SET metadata = metadata || jsonb_build_object('refunded_minor', $3::bigint) \
                 WHERE business_id = $1 AND order_id = $2 AND status = 'refunded'",
            )
            .bind(job.business_id)
            .bind(job.order_id)
            .bind(settled.amount.minor)
            .execute(&mut **tx)
            .await?;
        }
        (JobEffect::Capture, Some(settled)) => {
            ledger::record_order_commission(tx, job.business_id, job.order_id, settled.amount)
                .await?;
        }
        _ => {}
    }
    tracing::info!(order = %job.order_id, effect = effect.as_str(), attempts = job.attempts, "payment effect done");
    Ok(())
}

async fn record_failure(
    tx: &mut Tx,
    job: &Job,
    effect: JobEffect,
    error: &PaymentError,
    now: DateTime<Utc>,
) -> Result<()> {
    let attempts = u32::try_from(job.attempts).unwrap_or(u32::MAX);
    let next = if error.is_retryable() {
        after_failure(attempts)
    } else {
        // A refusal (declined, invalid) does not change by asking again.
        AfterFailure::GiveUp
    };
    let (next_attempt_at, failed_at) = match next {
        AfterFailure::RetryIn(wait) => (now + wait, None),
        AfterFailure::GiveUp => (now, Some(now)),
    };
    tracing::warn!(order = %job.order_id, effect = effect.as_str(), attempts, error = %error,
        gave_up = failed_at.is_some(), "payment effect failed");
    sqlx::query(
        "UPDATE payment_jobs SET last_error = $3, next_attempt_at = $4, failed_at = $5, updated_at = now() \
         WHERE business_id = $1 AND id = $2",
    )
    .bind(job.business_id)
    .bind(job.id)
    .bind(error.to_string())
    .bind(next_attempt_at)
    .bind(failed_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effects_round_trip_and_keys_are_stable() {
        for effect in [JobEffect::Capture, JobEffect::Release, JobEffect::Refund] {
            assert_eq!(JobEffect::parse(effect.as_str()), Some(effect));
        }
        let order = Uuid::from_u128(5);
        assert_eq!(
            idempotency_key(order, JobEffect::Capture),
            format!("order:{order}:capture")
        );
        assert_eq!(
            JobEffect::Release.result(),
            ("released", TransactionStatus::Canceled)
        );
    }
}
