//! Typed identifiers. Every record id is a UUIDv7 made by whoever creates the record (the
//! server, or an offline client), so ids never collide across tenants and retries are idempotent.
//! This crate never makes ids: it only gives them types so a `UserId` cannot be passed where a
//! `BusinessId` is meant.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! ids {
    ($($(#[$meta:meta])* $name:ident;)*) => {$(
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String, format = Uuid))]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// The underlying UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(value: Uuid) -> Self {
                Self(value)
            }
        }

        impl From<$name> for Uuid {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    )*};
}

ids! {
    /// A platform tier (an operator's installation) that owns businesses.
    InfrastructureId;
    /// A business (tenant): one store with its own storefront, staff and customers.
    BusinessId;
    /// A platform account: admin, staff member or driver.
    UserId;
    /// A customer of one business.
    CustomerId;
    /// A role inside one business.
    RoleId;
    /// A subscription plan offered by the platform.
    PlanId;
    /// A business's subscription to a plan.
    SubscriptionId;
    /// A product category inside one business.
    CategoryId;
    /// A product of one business's catalog.
    ProductId;
    /// A variant (size, flavour, …) of one product.
    VariantId;
    /// An image of one product.
    ProductImageId;
    /// An audit log entry.
    AuditId;
    /// A refresh token (the row, never the secret).
    RefreshTokenId;
}
