//! The permission model: what each kind of principal may do, and the one [`can`] decision every
//! server handler (and every client that greys out a button) calls.
//!
//! Staff act through a role inside one business; a role is a set of [`Permission`]s. The four
//! built-in roles are fixed here; businesses may add custom roles made from the same list.
//! Platform admins are not staff of any business: they hold platform permissions.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::id::{BusinessId, CustomerId, UserId};

/// The kind of account behind a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    /// A platform administrator.
    Admin,
    /// A member of one or more businesses' teams.
    Staff,
    /// A customer of one business.
    Customer,
    /// A delivery driver.
    Driver,
}

impl AccountKind {
    /// The kind as stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Staff => "staff",
            Self::Customer => "customer",
            Self::Driver => "driver",
        }
    }

    /// Parses the stored form.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "admin" => Some(Self::Admin),
            "staff" => Some(Self::Staff),
            "customer" => Some(Self::Customer),
            "driver" => Some(Self::Driver),
            _ => None,
        }
    }
}

macro_rules! permissions {
    ($($(#[$meta:meta])* $variant:ident => $key:literal;)*) => {
        /// One thing a staff role may be allowed to do inside its business.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        pub enum Permission {
            $($(#[$meta])* #[serde(rename = $key)] $variant,)*
        }

        impl Permission {
            /// Every permission, in a stable order.
            pub const ALL: &'static [Permission] = &[$(Permission::$variant,)*];

            /// The permission's stable key, e.g. `staff.manage`.
            pub fn key(self) -> &'static str {
                match self { $(Permission::$variant => $key,)* }
            }

            /// Parses a stable key.
            pub fn parse(key: &str) -> Option<Self> {
                match key { $($key => Some(Permission::$variant),)* _ => None }
            }
        }
    };
}

permissions! {
    /// See the business's settings and dashboard.
    BusinessRead => "business.read";
    /// Change storefront and business settings.
    StorefrontManage => "storefront.manage";
    /// See the team.
    StaffRead => "staff.read";
    /// Add, remove and re-role team members.
    StaffManage => "staff.manage";
    /// Create and edit custom roles.
    RolesManage => "roles.manage";
    /// See the catalog, including unpublished products.
    CatalogRead => "catalog.read";
    /// Edit the catalog.
    CatalogManage => "catalog.manage";
    /// See orders.
    OrdersRead => "orders.read";
    /// Accept, prepare, cancel orders; take orders at the till.
    OrdersManage => "orders.manage";
    /// Assign drivers and work the dispatch board.
    DispatchManage => "dispatch.manage";
    /// See customers (personal data).
    CustomersRead => "customers.read";
    /// Export customers' personal data.
    CustomersExport => "customers.export";
    /// See analytics.
    AnalyticsRead => "analytics.read";
    /// See financial reports.
    FinanceRead => "finance.read";
    /// Refund payments.
    PaymentsRefund => "payments.refund";
    /// See the audit log.
    AuditRead => "audit.read";
    /// Reply to reviews and approve or hide product reviews.
    ReviewsManage => "reviews.manage";
}

/// The roles every business has from the start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BuiltinRole {
    /// Everything, including the team and roles.
    Owner,
    /// Runs the business day to day; cannot change roles.
    Manager,
    /// Takes and works orders at the counter.
    Staff,
    /// Works the dispatch board.
    Dispatcher,
}

impl BuiltinRole {
    /// All built-in roles.
    pub const ALL: [BuiltinRole; 4] = [
        BuiltinRole::Owner,
        BuiltinRole::Manager,
        BuiltinRole::Staff,
        BuiltinRole::Dispatcher,
    ];

    /// The role's key inside a business.
    pub fn key(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Manager => "manager",
            Self::Staff => "staff",
            Self::Dispatcher => "dispatcher",
        }
    }

    /// The role's display name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Owner => "Owner",
            Self::Manager => "Manager",
            Self::Staff => "Staff",
            Self::Dispatcher => "Dispatcher",
        }
    }

    /// Parses a role key.
    pub fn parse(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.key() == key)
    }

    /// The permissions the role grants.
    pub fn permissions(self) -> PermissionSet {
        use Permission::*;
        let list: &[Permission] = match self {
            Self::Owner => Permission::ALL,
            Self::Manager => &[
                BusinessRead,
                StorefrontManage,
                StaffRead,
                StaffManage,
                CatalogRead,
                CatalogManage,
                OrdersRead,
                OrdersManage,
                DispatchManage,
                CustomersRead,
                AnalyticsRead,
                FinanceRead,
                PaymentsRefund,
                AuditRead,
                ReviewsManage,
            ],
            Self::Staff => &[BusinessRead, CatalogRead, OrdersRead, OrdersManage],
            Self::Dispatcher => &[BusinessRead, OrdersRead, DispatchManage],
        };
        PermissionSet::from_iter(list.iter().copied())
    }
}

/// A set of permissions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct PermissionSet(BTreeSet<Permission>);

impl PermissionSet {
    /// Whether the set holds `permission`.
    pub fn contains(&self, permission: Permission) -> bool {
        self.0.contains(&permission)
    }

    /// The permissions, in stable order.
    pub fn iter(&self) -> impl Iterator<Item = Permission> + '_ {
        self.0.iter().copied()
    }

    /// Whether `self` holds every permission of `other` (a role may only be granted by someone
    /// who already has everything it contains).
    pub fn is_superset(&self, other: &PermissionSet) -> bool {
        self.0.is_superset(&other.0)
    }

    /// Number of permissions.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<Permission> for PermissionSet {
    fn from_iter<T: IntoIterator<Item = Permission>>(iter: T) -> Self {
        Self(iter.into_iter().collect())
    }
}

/// Who is acting, as established from a verified token and the current database state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    /// A platform administrator.
    Admin {
        /// The admin's account.
        user: UserId,
    },
    /// A team member acting inside one business with the permissions of their role there.
    Staff {
        /// The staff member's account.
        user: UserId,
        /// The business the token is scoped to.
        business: BusinessId,
        /// The role's permissions, resolved when the request began.
        permissions: PermissionSet,
    },
    /// A customer of one business.
    Customer {
        /// The customer.
        customer: CustomerId,
        /// The business they are a customer of.
        business: BusinessId,
    },
    /// A driver.
    Driver {
        /// The driver's account.
        user: UserId,
    },
}

/// What an action is performed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    /// The platform itself (plans, onboarding, metrics).
    Platform,
    /// Something owned by one business.
    Business(BusinessId),
}

/// What a platform admin may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlatformPermission {
    /// Onboard, edit, suspend businesses.
    BusinessesManage,
    /// Create and edit subscription plans.
    PlansManage,
    /// See platform metrics.
    MetricsRead,
    /// Review, approve, suspend and assign drivers.
    DriversManage,
    /// Run and process payouts and set the accounts they are paid to (processing also needs a
    /// PIN elevation, [`SensitiveAction::Payout`]).
    PayoutsManage,
}

/// A permission asked of [`can`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ask {
    /// A business permission.
    Business(Permission),
    /// A platform permission.
    Platform(PlatformPermission),
}

impl From<Permission> for Ask {
    fn from(value: Permission) -> Self {
        Self::Business(value)
    }
}

impl From<PlatformPermission> for Ask {
    fn from(value: PlatformPermission) -> Self {
        Self::Platform(value)
    }
}

/// The one authorization decision. Staff may use their role's permissions inside their own
/// business only; admins hold every platform permission and may read and manage any business
/// (they are the operator); customers and drivers hold no staff or platform permissions
/// (their own resources are reached through their own endpoints).
pub fn can(actor: &Actor, ask: impl Into<Ask>, resource: Resource) -> bool {
    match (actor, ask.into(), resource) {
        (Actor::Admin { .. }, _, _) => true,
        (
            Actor::Staff {
                business,
                permissions,
                ..
            },
            Ask::Business(p),
            Resource::Business(b),
        ) => *business == b && permissions.contains(p),
        _ => false,
    }
}

/// Actions that need a fresh PIN confirmation (an elevated token bound to the action).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SensitiveAction {
    /// Changing a team member's role, removing a member, editing roles.
    RoleChange,
    /// Refunding a payment.
    Refund,
    /// Processing a payout.
    Payout,
    /// Exporting personal data.
    PiiExport,
}

impl SensitiveAction {
    /// The stable key.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RoleChange => "role_change",
            Self::Refund => "refund",
            Self::Payout => "payout",
            Self::PiiExport => "pii_export",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn staff(role: BuiltinRole, business: BusinessId) -> Actor {
        Actor::Staff {
            user: UserId(Uuid::nil()),
            business,
            permissions: role.permissions(),
        }
    }

    #[test]
    fn permission_keys_round_trip() {
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.key()), Some(*p));
            assert_eq!(
                serde_json::to_string(p).expect("serializes"),
                format!("\"{}\"", p.key())
            );
        }
        assert_eq!(Permission::parse("nope"), None);
    }

    #[test]
    fn staff_permissions_stop_at_their_business() {
        let a = BusinessId(Uuid::from_u128(1));
        let b = BusinessId(Uuid::from_u128(2));
        let owner = staff(BuiltinRole::Owner, a);
        assert!(can(&owner, Permission::StaffManage, Resource::Business(a)));
        assert!(!can(&owner, Permission::StaffManage, Resource::Business(b)));
        assert!(!can(
            &owner,
            PlatformPermission::BusinessesManage,
            Resource::Platform
        ));
    }

    #[test]
    fn built_in_roles_are_nested_sensibly() {
        let owner = BuiltinRole::Owner.permissions();
        for role in BuiltinRole::ALL {
            assert!(owner.is_superset(&role.permissions()), "{role:?}");
        }
        let manager = BuiltinRole::Manager.permissions();
        assert!(!manager.contains(Permission::RolesManage));
        assert!(!BuiltinRole::Staff
            .permissions()
            .contains(Permission::StaffManage));
        assert!(BuiltinRole::Dispatcher
            .permissions()
            .contains(Permission::DispatchManage));
        // Answering and moderating reviews speaks for the business: not the counter's job.
        assert!(manager.contains(Permission::ReviewsManage));
        assert!(!BuiltinRole::Staff
            .permissions()
            .contains(Permission::ReviewsManage));
    }

    #[test]
    fn customers_and_drivers_hold_no_staff_permissions() {
        let a = BusinessId(Uuid::from_u128(1));
        let customer = Actor::Customer {
            customer: CustomerId(Uuid::nil()),
            business: a,
        };
        let driver = Actor::Driver {
            user: UserId(Uuid::nil()),
        };
        for p in Permission::ALL {
            assert!(!can(&customer, *p, Resource::Business(a)));
            assert!(!can(&driver, *p, Resource::Business(a)));
        }
        let admin = Actor::Admin {
            user: UserId(Uuid::nil()),
        };
        assert!(can(
            &admin,
            PlatformPermission::PlansManage,
            Resource::Platform
        ));
    }
}
