//! The verified-session cache. Re-checking every token against the database (session version,
//! account and business status, role permissions) costs a round trip and several joins per
//! request; most requests come from sessions that were checked a moment ago. A session checked
//! once is remembered until something that could change the answer happens:
//!
//! - on this instance, every state-changing request (any method but GET/HEAD/OPTIONS) clears the
//!   cache before its response is sent, so the next request re-checks;
//! - on other instances, triggers on the tables behind the check (`users`, `customers`,
//!   `businesses`, `memberships`, `role_permissions`) `NOTIFY fleetfront_sessions`, and
//!   [`spawn_listener`] clears the cache when a notification arrives;
//! - entries expire after [`TTL`] in any case, bounding staleness if notifications are lost.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fleetfront_domain::permission::{AccountKind, PermissionSet};
use fleetfront_domain::BusinessId;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use uuid::Uuid;

/// How long a checked session is trusted without a new check.
pub const TTL: Duration = Duration::from_secs(10);

/// The channel the invalidation triggers notify.
pub const CHANNEL: &str = "fleetfront_sessions";

/// Upper bound on remembered sessions; the cache is cleared when it is reached.
const CAPACITY: usize = 100_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key {
    kind: AccountKind,
    sub: Uuid,
    business: Option<BusinessId>,
}

#[derive(Clone, Debug)]
struct Entry {
    session_version: i64,
    permissions: PermissionSet,
    checked_at: Instant,
}

/// Sessions recently verified against the database.
#[derive(Debug, Default)]
pub struct SessionCache {
    entries: Mutex<HashMap<Key, Entry>>,
}

impl SessionCache {
    /// The permissions of a session verified less than [`TTL`] ago at this session version.
    pub fn get(
        &self,
        kind: AccountKind,
        sub: Uuid,
        business: Option<BusinessId>,
        session_version: i64,
    ) -> Option<PermissionSet> {
        let entries = self
            .entries
            .lock()
            .expect("session cache lock is never poisoned by a panic inside");
        entries
            .get(&Key {
                kind,
                sub,
                business,
            })
            .filter(|e| e.session_version == session_version && e.checked_at.elapsed() < TTL)
            .map(|e| e.permissions.clone())
    }

    /// Remembers a session the database just verified.
    pub fn put(
        &self,
        kind: AccountKind,
        sub: Uuid,
        business: Option<BusinessId>,
        session_version: i64,
        permissions: PermissionSet,
    ) {
        let mut entries = self
            .entries
            .lock()
            .expect("session cache lock is never poisoned by a panic inside");
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(
            Key {
                kind,
                sub,
                business,
            },
            Entry {
                session_version,
                permissions,
                checked_at: Instant::now(),
            },
        );
    }

    /// Forgets every session: the next request of each is checked against the database.
    pub fn clear(&self) {
        self.entries
            .lock()
            .expect("session cache lock is never poisoned by a panic inside")
            .clear();
    }
}

/// Starts listening for session-changing notifications from other server instances; returns
/// once the `LISTEN` is in place, then clears `cache` on each notification in the background.
/// On connection loss it reconnects, clearing the cache (notifications may have been missed).
///
/// # Errors
/// When the first connection or `LISTEN` fails.
pub async fn start_listener(
    pool: PgPool,
    cache: Arc<SessionCache>,
) -> Result<tokio::task::JoinHandle<()>, sqlx::Error> {
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(tokio::spawn(async move {
        loop {
            match listener.try_recv().await {
                // A notification, or a lost connection that PgListener re-established: either
                // way something may have changed.
                Ok(_) => cache.clear(),
                Err(e) => {
                    tracing::warn!(error = %e, "session change listener failed; reconnecting");
                    cache.clear();
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    match PgListener::connect_with(&pool).await {
                        Ok(mut fresh) => match fresh.listen(CHANNEL).await {
                            Ok(()) => listener = fresh,
                            Err(e) => {
                                tracing::warn!(error = %e, "cannot LISTEN for session changes")
                            }
                        },
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot reconnect the session change listener")
                        }
                    }
                }
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_match_version_and_clear() {
        let cache = SessionCache::default();
        let sub = Uuid::nil();
        cache.put(AccountKind::Admin, sub, None, 3, PermissionSet::default());
        assert!(cache.get(AccountKind::Admin, sub, None, 3).is_some());
        assert!(
            cache.get(AccountKind::Admin, sub, None, 2).is_none(),
            "another version"
        );
        assert!(
            cache.get(AccountKind::Driver, sub, None, 3).is_none(),
            "another kind"
        );
        cache.clear();
        assert!(cache.get(AccountKind::Admin, sub, None, 3).is_none());
    }
}
