//! Newtypes for the database ids that must not be mixed up.

macro_rules! id_type {
    ($(#[$doc:meta] $name:ident),* $(,)?) => {$(
        #[$doc]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    )*};
}

id_type!(
    /// The id of an integration row.
    IntegrationId,
    /// The id of a directory user row.
    UserId,
    /// The id of a directory group row.
    GroupId,
    /// The id of a device row.
    DeviceId,
    /// The id of a sync run row.
    SyncRunId,
);

/// The API's global id of the object of type `kind` (`User`, `Group`, ...) with database id
/// `id`: `base64url("Type:id")`. The GraphQL layer and the event payloads share it.
pub fn global_id(kind: &str, id: i64) -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    URL_SAFE_NO_PAD.encode(format!("{kind}:{id}"))
}
