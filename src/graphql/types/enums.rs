//! The API's enums, mirrored from the stored ones so the schema and the tables can evolve apart.

use async_graphql::Enum;
use entity::enums as db;

macro_rules! mirror_enum {
    ($(#[$doc:meta])* $name:ident => $db:ident { $($(#[$vdoc:meta])* $variant:ident),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $($(#[$vdoc])* $variant),* }

        impl From<db::$db> for $name {
            fn from(value: db::$db) -> Self {
                match value { $(db::$db::$variant => Self::$variant),* }
            }
        }

        impl From<$name> for db::$db {
            fn from(value: $name) -> Self {
                match value { $($name::$variant => Self::$variant),* }
            }
        }
    };
}

mirror_enum!(
    /// The kind of directory an integration connects.
    DirectoryKind => DirectoryKind {
        /// Microsoft Entra ID, read through Microsoft Graph.
        EntraId,
        /// Google Workspace, read through the Admin SDK Directory API.
        GoogleWorkspace,
        /// Any SCIM 2.0 directory, which pushes its changes.
        Scim,
    }
);

mirror_enum!(
    /// Where an integration stands.
    IntegrationStatus => IntegrationStatus {
        /// The OAuth sign-in has not completed yet.
        AwaitingConsent,
        /// The signing-in account may not consent, or the sign-in was cancelled (Entra sends the
        /// same answer for both): once an administrator approves the app, sign in again.
        AwaitingAdminApproval,
        /// Connected and syncing.
        Active,
        /// Signed in, and waiting for an admin to choose what it imports
        /// (`updateIntegrationScope`), as asked when it was added; nothing is imported until
        /// then. The directory's groups and org units can be read to choose among.
        AwaitingScope,
        /// The provider revoked or expired the grant; re-authenticate.
        NeedsReauth,
        /// Something else is wrong; see `statusReason`.
        Error,
    }
);

mirror_enum!(
    /// What started a sync run.
    SyncTrigger => SyncTrigger {
        /// The first sync after authorisation.
        Initial,
        /// The periodic sync.
        Scheduled,
        /// An admin asked for it.
        Manual,
    }
);

mirror_enum!(
    /// Where a sync run stands.
    SyncRunStatus => SyncRunStatus {
        /// Waiting to start.
        Queued,
        /// Reading the directory and applying changes.
        Running,
        /// Finished; every change applied.
        Succeeded,
        /// Stopped by an error; nothing was removed.
        Failed,
        /// Would remove more users than the safety threshold; waits for confirmation.
        Held,
        /// Cancelled before it finished, or a HELD run superseded by a newer one.
        Cancelled,
    }
);

mirror_enum!(
    /// A directory user's state.
    UserStatus => UserStatus {
        /// Active in the directory.
        Active,
        /// Disabled or suspended in the directory.
        Suspended,
        /// Gone from the directory (or its integration deleted) but kept for its devices.
        Archived,
    }
);

mirror_enum!(
    /// How a device got its user.
    AssignmentSource => AssignmentSource {
        /// An admin assigned it.
        Manual,
        /// Matched by enrollment identity.
        Automatic,
    }
);

mirror_enum!(
    /// A device's operating system family.
    DevicePlatform => DevicePlatform {
        /// macOS.
        Macos,
        /// iOS.
        Ios,
        /// iPadOS.
        Ipados,
        /// tvOS.
        Tvos,
        /// visionOS.
        Visionos,
        /// Windows.
        Windows,
        /// Android.
        Android,
    }
);

mirror_enum!(
    /// What an API token may do.
    TokenRole => TokenRole {
        /// Read and change everything.
        Admin,
        /// Read everything; every mutation is FORBIDDEN.
        Viewer,
    }
);
