//! The audit log: every write and every denied attempt, with principal, request id and client
//! address. Tenant events go to `audit_log` (append-only, per business); platform events
//! (admin actions, sign-in failures, rejected tokens) to `platform_audit_log`.

use fleetfront_domain::auth::Claims;
use fleetfront_domain::permission::Actor;
use fleetfront_domain::BusinessId;
use serde_json::Value;
use uuid::Uuid;

use crate::context::Ctx;
use crate::db::{new_id, set_principal, Db, Tx};
use crate::error::Result;

/// Who did it.
#[derive(Clone, Copy, Debug)]
pub struct Who {
    /// `admin`, `staff`, `customer`, `driver`, or `anonymous`.
    pub kind: &'static str,
    /// Account id.
    pub id: Option<Uuid>,
}

impl Who {
    /// A store's customer.
    pub fn customer(id: Option<uuid::Uuid>) -> Who {
        Who {
            kind: "customer",
            id,
        }
    }

    /// An unauthenticated caller.
    pub const ANONYMOUS: Who = Who {
        kind: "anonymous",
        id: None,
    };
}

impl From<&Actor> for Who {
    fn from(actor: &Actor) -> Self {
        match actor {
            Actor::Admin { user } => Who {
                kind: "admin",
                id: Some(user.0),
            },
            Actor::Staff { user, .. } => Who {
                kind: "staff",
                id: Some(user.0),
            },
            Actor::Customer { customer, .. } => Who {
                kind: "customer",
                id: Some(customer.0),
            },
            Actor::Driver { user } => Who {
                kind: "driver",
                id: Some(user.0),
            },
        }
    }
}

impl From<&Claims> for Who {
    fn from(claims: &Claims) -> Self {
        Who {
            kind: claims.kind.as_str(),
            id: Some(claims.sub),
        }
    }
}

/// One audit event.
#[derive(Clone, Debug)]
pub struct Event<'a> {
    /// What was attempted, e.g. `storefront.update`.
    pub action: &'a str,
    /// `ok` or `denied`.
    pub outcome: &'a str,
    /// The kind of resource.
    pub resource_type: Option<&'a str>,
    /// Its id.
    pub resource_id: Option<String>,
    /// Extra facts (never secrets).
    pub details: Value,
}

impl<'a> Event<'a> {
    /// A successful write.
    pub fn ok(action: &'a str, resource_type: &'a str, resource_id: impl ToString) -> Self {
        Event {
            action,
            outcome: "ok",
            resource_type: Some(resource_type),
            resource_id: Some(resource_id.to_string()),
            details: Value::Object(Default::default()),
        }
    }

    /// A denied attempt.
    pub fn denied(action: &'a str, details: Value) -> Self {
        Event {
            action,
            outcome: "denied",
            resource_type: None,
            resource_id: None,
            details,
        }
    }

    /// Adds details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// Records the request body as the details (request types never carry secrets the audit
    /// log must not hold: passwords and PINs travel in their own endpoints, which do not use this).
    ///
    /// # Errors
    /// When the body does not serialize (an internal error).
    pub fn with_request<T: serde::Serialize>(self, request: &T) -> crate::error::Result<Self> {
        Ok(self
            .with_details(serde_json::to_value(request).map_err(crate::error::Error::unexpected)?))
    }
}

/// Appends an event inside the caller's transaction (so it commits or rolls back with the
/// change it records). `business` picks the tenant log; `None` the platform log.
///
/// # Errors
/// Database errors.
pub async fn record(
    tx: &mut Tx,
    ctx: &Ctx,
    who: Who,
    business: Option<BusinessId>,
    event: Event<'_>,
) -> Result<()> {
    match business {
        Some(business) => {
            sqlx::query(
                "INSERT INTO audit_log (business_id, id, actor_kind, actor_id, action, outcome, resource_type, resource_id, request_id, client_address, details) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(business.0)
            .bind(new_id())
            .bind(who.kind)
            .bind(who.id)
            .bind(event.action)
            .bind(event.outcome)
            .bind(event.resource_type)
            .bind(event.resource_id)
            .bind(&ctx.request_id)
            .bind(&ctx.client_address)
            .bind(event.details)
            .execute(&mut **tx)
            .await?;
        }
        None => {
            sqlx::query(
                "INSERT INTO platform_audit_log (id, actor_kind, actor_id, action, outcome, resource_type, resource_id, request_id, client_address, details) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(new_id())
            .bind(who.kind)
            .bind(who.id)
            .bind(event.action)
            .bind(event.outcome)
            .bind(event.resource_type)
            .bind(event.resource_id)
            .bind(&ctx.request_id)
            .bind(&ctx.client_address)
            .bind(event.details)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

/// The `audit_log` row of `event`, as JSON, for a write that inserts it inside a database
/// function (checkout's `place_order()`): the same columns as [`record`] writes.
pub fn row(ctx: &Ctx, who: Who, business: BusinessId, event: &Event<'_>) -> Value {
    serde_json::json!({
        "business_id": business.0,
        "id": new_id(),
        "actor_kind": who.kind,
        "actor_id": who.id,
        "action": event.action,
        "outcome": event.outcome,
        "resource_type": event.resource_type,
        "resource_id": event.resource_id,
        "request_id": ctx.request_id,
        "client_address": ctx.client_address,
        "details": event.details,
    })
}

/// Records a denied attempt in its own transaction (the request's own transaction, if any, is
/// rolled back). Tenant-scoped principals are logged in their business's log.
///
/// # Errors
/// Database errors.
pub async fn record_denial(
    db: &Db,
    ctx: &Ctx,
    claims: Option<&Claims>,
    event: Event<'_>,
) -> Result<()> {
    let mut tx = db.begin_anonymous().await?;
    let (who, business) = match claims {
        Some(c) => (Who::from(c), c.business_id),
        None => (Who::ANONYMOUS, None),
    };
    if let Some(business) = business {
        set_principal(&mut tx, "audit", None, None, Some(business.0)).await?;
    }
    record(&mut tx, ctx, who, business, event).await?;
    tx.commit().await?;
    Ok(())
}
