//! The sync indicator every screen shows (online or offline, what waits, when it last synced)
//! and the actions the server refused, explained in words with what to do.

use chrono::{DateTime, Utc};
use fleetfront_core::{Rejection, SyncStatus};

/// The indicator's colour: green when everything is with the server, amber while changes
/// wait, red when offline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    /// Online and nothing waiting.
    Good,
    /// Online, changes on their way.
    Busy,
    /// Offline: work goes on, changes wait.
    Offline,
}

/// The sync indicator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncBadge {
    /// The colour.
    pub tone: Tone,
    /// "Online", "Offline".
    pub title: &'static str,
    /// "All saved", "3 changes waiting · 1 photo uploading".
    pub detail: String,
    /// "Synced just now", "Synced 5 min ago", "Never synced".
    pub last_synced: String,
}

fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// "just now", "5 min ago", "2 h ago", "3 days ago".
pub fn ago(then: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - then).num_seconds().max(0);
    match secs {
        0..=59 => "just now".to_owned(),
        60..=3_599 => format!("{} min ago", secs / 60),
        3_600..=86_399 => format!("{} h ago", secs / 3_600),
        _ => plural(
            u64::try_from(secs / 86_400).unwrap_or(0),
            "day ago",
            "days ago",
        ),
    }
}

impl SyncBadge {
    /// The indicator for `status` at `now`.
    pub fn of(status: &SyncStatus, now: DateTime<Utc>) -> Self {
        let mut waiting = Vec::new();
        if status.pending > 0 {
            waiting.push(format!(
                "{} waiting",
                plural(status.pending, "change", "changes")
            ));
        }
        if status.pending_uploads > 0 {
            waiting.push(format!(
                "{} to upload",
                plural(status.pending_uploads, "photo", "photos")
            ));
        }
        let tone = match (status.online, waiting.is_empty()) {
            (false, _) => Tone::Offline,
            (true, true) => Tone::Good,
            (true, false) => Tone::Busy,
        };
        Self {
            tone,
            title: if status.online { "Online" } else { "Offline" },
            detail: if waiting.is_empty() {
                "All saved".to_owned()
            } else {
                waiting.join(" · ")
            },
            last_synced: status.last_synced_at.map_or_else(
                || "Never synced".to_owned(),
                |t| format!("Synced {}", ago(t, now)),
            ),
        }
    }
}

/// A refused action as the courier reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explained {
    /// What happened, in words.
    pub what: String,
    /// What to do now.
    pub todo: &'static str,
}

/// Explains a rejection: the server's own words, with what to do for the codes a courier
/// meets.
pub fn explain(r: &Rejection) -> Explained {
    let todo = match r.code.as_deref() {
        Some("offer_expired") => "Nothing to do: the next offer comes to you as usual.",
        Some("not_found" | "not_assigned_driver") => {
            "This delivery is no longer yours (reassigned or cancelled). Call the store if you \
             have the goods."
        }
        Some("proof_required") => "Take the proof photo, then mark it delivered again.",
        Some("conflict") => "Someone else already handled it. Check your list.",
        Some("delivery_forbidden" | "order_forbidden" | "invalid_transition") => {
            "The order moved on meanwhile. Check its status; call the store if unsure."
        }
        _ => "If it happens again, call the store.",
    };
    Explained {
        what: r.message.clone(),
        todo,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::now;
    use chrono::Duration;
    use uuid::Uuid;

    #[test]
    fn the_badge_says_whether_work_is_safe_with_the_server() {
        let mut status = SyncStatus {
            online: true,
            last_synced_at: Some(now() - Duration::seconds(20)),
            ..SyncStatus::default()
        };
        let badge = SyncBadge::of(&status, now());
        assert_eq!((badge.tone, badge.title), (Tone::Good, "Online"));
        assert_eq!(badge.detail, "All saved");
        assert_eq!(badge.last_synced, "Synced just now");

        status.pending = 3;
        status.pending_uploads = 1;
        assert_eq!(SyncBadge::of(&status, now()).tone, Tone::Busy);
        status.online = false;
        status.last_synced_at = Some(now() - Duration::minutes(5));
        let badge = SyncBadge::of(&status, now());
        assert_eq!((badge.tone, badge.title), (Tone::Offline, "Offline"));
        assert_eq!(badge.detail, "3 changes waiting · 1 photo to upload");
        assert_eq!(badge.last_synced, "Synced 5 min ago");
        status.last_synced_at = None;
        assert_eq!(SyncBadge::of(&status, now()).last_synced, "Never synced");
        assert_eq!(ago(now() - Duration::hours(30), now()), "1 day ago");
    }

    #[test]
    fn refusals_come_with_what_to_do() {
        let rejection = |code: &str| Rejection {
            seq: 1,
            id: Uuid::nil(),
            name: "offer.accept@1".to_owned(),
            code: Some(code.to_owned()),
            message: "this offer expired before it was accepted".to_owned(),
            decided_at: now(),
        };
        let e = explain(&rejection("offer_expired"));
        assert_eq!(e.what, "this offer expired before it was accepted");
        assert!(e.todo.contains("next offer"));
        assert!(explain(&rejection("proof_required")).todo.contains("photo"));
        assert!(explain(&rejection("brand_new_code"))
            .todo
            .contains("call the store"));
    }
}
