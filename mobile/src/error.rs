//! The one error every exported call fails with: the facade's [`ClientError`] flattened into
//! variants the apps branch on, each with a stable `code` and a `detail` in words.
//!
//! The field is `detail`, not `message`: UniFFI's Kotlin errors extend `Exception`, whose
//! `message` a field of that name would clash with (uniffi-rs issue 1434). Apps branch on the
//! variant and `code`, never on `detail`.

use fleetfront_core::attachments::AttachmentError;
use fleetfront_core::{ApiError, ClientError, StoreError, SyncError};

/// Why a call failed. Kotlin sees it as `FleetfrontException`, Swift as `FleetfrontError`.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum FleetfrontError {
    /// Nobody is signed in on this device (code `not_signed_in`). A session the server ended
    /// is a `Server` error with status 401.
    #[error("{detail} ({code})")]
    NotSignedIn {
        /// The stable code.
        code: String,
        /// Words safe to show.
        detail: String,
    },
    /// The local rules refuse the change; nothing was queued. The code is the domain's, as
    /// the server would answer it (e.g. `validation_failed`), or for a proof photo
    /// `attachment_too_large` or `attachment_unsupported`.
    #[error("{detail} ({code})")]
    Refused {
        /// The stable code.
        code: String,
        /// Words for the user.
        detail: String,
    },
    /// The server cannot be reached (code `offline`); queued work waits for the next round.
    #[error("{detail} ({code})")]
    Offline {
        /// The stable code.
        code: String,
        /// What failed, for logs.
        detail: String,
    },
    /// The server answered with a problem (its stable code, e.g. `invalid_credentials`), or an
    /// answer this build cannot use (`unexpected_answer`, `sync_stalled`).
    #[error("{detail} ({code})")]
    Server {
        /// The stable code.
        code: String,
        /// Words safe to show.
        detail: String,
        /// The HTTP status, when there was an answer.
        status: Option<u16>,
        /// Whether trying again later may succeed.
        retryable: bool,
    },
    /// Another account's changes still wait on this device (code
    /// `pending_for_other_account`): sign in as that account and sync first.
    #[error("{detail} ({code})")]
    PendingForOtherAccount {
        /// The stable code.
        code: String,
        /// Words for the user.
        detail: String,
        /// How many changes wait.
        pending: u64,
    },
    /// The device failed: the local database (`local_store`, `local_store_busy`), a file
    /// (`local_file`), a background task (`task`), the runtime (`runtime`).
    #[error("{detail} ({code})")]
    Local {
        /// The stable code.
        code: String,
        /// What failed, for logs.
        detail: String,
    },
    /// An argument does not parse (code `invalid_argument`): an id that is no UUID, a time
    /// out of range, arguments that are not a JSON object.
    #[error("{detail} ({code})")]
    InvalidArgument {
        /// The stable code.
        code: String,
        /// Which argument and why.
        detail: String,
    },
}

impl FleetfrontError {
    /// An [`FleetfrontError::InvalidArgument`].
    pub(crate) fn invalid(detail: impl Into<String>) -> Self {
        Self::InvalidArgument {
            code: "invalid_argument".to_owned(),
            detail: detail.into(),
        }
    }

    fn local(code: &str, detail: impl ToString) -> Self {
        Self::Local {
            code: code.to_owned(),
            detail: detail.to_string(),
        }
    }
}

impl From<ClientError> for FleetfrontError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Store(e) => e.into(),
            ClientError::Api(e) => e.into(),
            ClientError::Sync(e) => e.into(),
            ClientError::NotSignedIn => Self::NotSignedIn {
                code: "not_signed_in".to_owned(),
                detail: "not signed in".to_owned(),
            },
            ClientError::Refused(refusal) => Self::Refused {
                code: refusal.code,
                detail: refusal.message,
            },
            e @ ClientError::PendingForOtherAccount { pending } => Self::PendingForOtherAccount {
                code: "pending_for_other_account".to_owned(),
                detail: e.to_string(),
                pending,
            },
            ClientError::Attachment(e) => e.into(),
            ClientError::Task(detail) => Self::local("task", detail),
        }
    }
}

impl From<AttachmentError> for FleetfrontError {
    fn from(e: AttachmentError) -> Self {
        match e {
            AttachmentError::Store(e) => e.into(),
            e @ AttachmentError::Io(_) => Self::local("local_file", e),
            e @ AttachmentError::TooLarge { .. } => Self::Refused {
                code: "attachment_too_large".to_owned(),
                detail: e.to_string(),
            },
            e @ AttachmentError::Unsupported => Self::Refused {
                code: "attachment_unsupported".to_owned(),
                detail: e.to_string(),
            },
            AttachmentError::Task(detail) => Self::local("task", detail),
        }
    }
}

impl From<SyncError> for FleetfrontError {
    fn from(e: SyncError) -> Self {
        match e {
            SyncError::Store(e) => e.into(),
            SyncError::Api(e) => e.into(),
            e @ SyncError::Stalled(_) => Self::Server {
                code: "sync_stalled".to_owned(),
                retryable: e.is_retryable(),
                detail: e.to_string(),
                status: None,
            },
            SyncError::Task(detail) => Self::local("task", detail),
        }
    }
}

impl From<ApiError> for FleetfrontError {
    fn from(e: ApiError) -> Self {
        let retryable = e.is_retryable();
        match e {
            e @ ApiError::Network(_) => Self::Offline {
                code: "offline".to_owned(),
                detail: e.to_string(),
            },
            ApiError::Problem {
                status,
                code,
                detail,
                ..
            } => Self::Server {
                code,
                detail,
                status: Some(status),
                retryable,
            },
            ApiError::Unexpected { status, message } => Self::Server {
                code: "unexpected_answer".to_owned(),
                detail: message,
                status: Some(status),
                retryable,
            },
            ApiError::NotSignedIn => Self::NotSignedIn {
                code: "not_signed_in".to_owned(),
                detail: "not signed in".to_owned(),
            },
        }
    }
}

impl From<StoreError> for FleetfrontError {
    fn from(e: StoreError) -> Self {
        let code = if e.is_retryable() {
            "local_store_busy"
        } else {
            "local_store"
        };
        Self::local(code, e)
    }
}
