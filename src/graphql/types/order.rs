//! The `orderBy` inputs of the top-level lists: a field and a direction. The id breaks ties,
//! so pages never skip or repeat an item; a cursor resumes only the order it came from.

use crate::store::{
    order::{Order, SortKey},
    page::Direction,
};
use async_graphql::{Enum, InputObject};

/// Ascending (A to Z, oldest first) or descending.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug, Default)]
pub enum OrderDirection {
    /// Smallest first: A to Z, oldest first.
    #[default]
    Asc,
    /// Largest first: Z to A, newest first.
    Desc,
}

impl From<OrderDirection> for Direction {
    fn from(d: OrderDirection) -> Self {
        match d {
            OrderDirection::Asc => Direction::Asc,
            OrderDirection::Desc => Direction::Desc,
        }
    }
}

/// Declares an order input and its field enum, with each field's domain key.
macro_rules! order_input {
    ($(#[$doc:meta])* $input:ident, $field:ident { $($(#[$fdoc:meta])* $variant:ident => $key:ident),+ $(,)? }) => {
        /// What the list is sorted by.
        #[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
        pub enum $field {
            $($(#[$fdoc])* $variant),+
        }

        $(#[$doc])*
        #[derive(InputObject, Clone, Copy, Debug)]
        pub struct $input {
            /// What to sort by.
            pub field: $field,
            /// Which way; ascending by default.
            #[graphql(default)]
            pub direction: OrderDirection,
        }

        impl $input {
            /// The domain's order; by creation, oldest first, when none is given.
            pub fn domain(order: Option<Self>) -> Order {
                order.map_or_else(Order::default, |o| Order {
                    key: match o.field {
                        $($field::$variant => SortKey::$key),+
                    },
                    dir: o.direction.into(),
                })
            }
        }
    };
}

order_input!(
    /// How to sort `users`: by display name or email (letters A–Z fold case; a user without an
    /// email sorts first ascending, last descending), or by creation.
    UserOrder, UserOrderField {
        /// When dirgate created the user.
        CreatedAt => Created,
        /// The display name, letters folded to lower case.
        DisplayName => UserDisplayName,
        /// The primary email, folded to lower case; users without one at the start.
        Email => UserEmail,
    }
);

order_input!(
    /// How to sort `groups`.
    GroupOrder, GroupOrderField {
        /// When dirgate created the group.
        CreatedAt => Created,
        /// The group's name, letters folded to lower case.
        DisplayName => GroupDisplayName,
    }
);

order_input!(
    /// How to sort `devices`.
    DeviceOrder, DeviceOrderField {
        /// When the device was registered.
        CreatedAt => Created,
        /// The device's name, letters folded to lower case.
        Name => DeviceName,
        /// The serial number.
        SerialNumber => DeviceSerialNumber,
    }
);

order_input!(
    /// How to sort `integrations`: by name, by creation, or by the last successful sync (never
    /// synced ones first ascending, last descending).
    IntegrationOrder, IntegrationOrderField {
        /// When the integration was added.
        CreatedAt => Created,
        /// The integration's name, letters folded to lower case.
        Name => IntegrationName,
        /// The end of the last successful sync.
        LastSyncedAt => IntegrationLastSynced,
    }
);

/// How a nested list is sorted: by when its items were created, oldest or newest first.
/// Nested lists (a group's members, a user's groups, ...) sort by creation only, the order
/// the database reads each parent's page in from an index, so a page costs the same however
/// many items its parent has. For another order, use the top-level list with a filter:
/// `users(filter: {groupId: ...}, orderBy: {field: DISPLAY_NAME})`.
#[derive(InputObject, Clone, Copy, Debug)]
pub struct CreationOrder {
    /// `ASC`: oldest first; `DESC`: newest first.
    pub direction: OrderDirection,
}
