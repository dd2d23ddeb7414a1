//! The tokio runtime every client of the process shares: the facade's HTTP calls, its blocking
//! SQLite work and the background sync loop (`tokio::spawn`) all need one, and a foreign
//! language awaits our futures on its own executor (Kotlin coroutines, Swift concurrency,
//! Python asyncio), which is not tokio.
//!
//! Two worker threads: a phone's sync is a few HTTP calls at a time, and the blocking pool
//! grows on demand for SQLite. Created on first use, never dropped (dropping a runtime from a
//! thread of its own panics, and an app's process ends without asking).

use std::future::Future;
use std::sync::{Mutex, OnceLock};

use tokio::runtime::Runtime;

use crate::error::FleetfrontError;

static RUNTIME: OnceLock<Runtime> = OnceLock::new();
/// Serialises the first creation, so two threads do not both start worker threads.
static CREATING: Mutex<()> = Mutex::new(());

/// The shared runtime, created on the first call.
///
/// # Errors
/// [`FleetfrontError::Local`] with code `runtime` when the threads cannot be started.
pub(crate) fn get() -> Result<&'static Runtime, FleetfrontError> {
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime);
    }
    let _creating = CREATING.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("fleetfront")
        .enable_all()
        .build()
        .map_err(|e| FleetfrontError::Local {
            code: "runtime".to_owned(),
            detail: format!("cannot start the async runtime: {e}"),
        })?;
    Ok(RUNTIME.get_or_init(|| runtime))
}

/// Runs `future` on the shared runtime and waits for it from whatever executor awaits the
/// result.
///
/// # Errors
/// The runtime's (see [`get`]); [`FleetfrontError::Local`] with code `task` when the task
/// panicked.
pub(crate) async fn run<T, F>(future: F) -> Result<T, FleetfrontError>
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    get()?
        .spawn(future)
        .await
        .map_err(|e| FleetfrontError::Local {
            code: "task".to_owned(),
            detail: format!("the call's task failed: {e}"),
        })
}
