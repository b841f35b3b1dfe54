//! The user store of the reconciler: what a full read knows of the stored users (their
//! fingerprints), a page of users applied in one transaction (multi-row upserts of only what
//! differs, and their aliases; `write.rs`: the write itself), and the lookups the delta phases
//! merge onto. The columns it writes and compares come from `providers::fields`.

use super::Counts;
use crate::{
    error::DomainResult,
    providers::{ExternalUser, clean::Warnings},
    store,
};
use entity::{enums::UserStatus, integration};
use sea_orm::DatabaseConnection;
use std::collections::HashMap;

mod write;

pub(super) use write::write_users;

/// What a full read knows of a stored user without reading its row again.
#[derive(Debug, Clone, Copy)]
pub(super) struct Stored {
    pub id: i64,
    pub status: UserStatus,
    pub fingerprint: u64,
}

/// The integration's users by external id: read in one pass when a full read starts, kept up
/// to date as pages are written, and used to skip unchanged users, resolve members and decide
/// removals.
pub(super) type Fingerprints = HashMap<String, Stored>;

/// A user's fingerprint: its directory fields, aliases, status and origin name. Equal
/// fingerprints mean nothing to write.
fn fingerprint(user: &ExternalUser, status: UserStatus, origin: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    user.hash(&mut hasher);
    status.hash(&mut hasher);
    origin.hash(&mut hasher);
    hasher.finish()
}

/// Fingerprints every user of the integration, in one pass over its rows.
pub(super) async fn fingerprints(
    db: &DatabaseConnection,
    integration_id: i64,
) -> DomainResult<Fingerprints> {
    let mut out = HashMap::new();
    store::users::described(db, integration_id, |stored| {
        let fingerprint = fingerprint(&stored.user, stored.status, &stored.origin);
        out.insert(
            stored.user.external_id,
            Stored {
                id: stored.id,
                status: stored.status,
                fingerprint,
            },
        );
    })
    .await?;
    Ok(out)
}

/// Applies one page of users in one transaction: one read of the page's rows and aliases,
/// then multi-row writes of only what differs (nothing when nothing changed). With `known`
/// (a full read's fingerprints) unchanged users are skipped without a read, and `known` is
/// kept up to date. Returns the ids of the users it created or changed (for automatic device
/// assignment).
pub(super) async fn apply_users_page(
    db: &DatabaseConnection,
    integration: &integration::Model,
    users: Vec<ExternalUser>,
    counts: &mut Counts,
    known: Option<&mut Fingerprints>,
    warnings: &Warnings,
) -> DomainResult<Vec<i64>> {
    let plan = plan_users(integration, users, known.as_deref());
    let written = write_users(db, integration, plan, counts, warnings).await?;
    if let Some(known) = known {
        known.extend(written.fingerprints);
    }
    Ok(written.ids)
}

/// The users of a page that need writing, as [`plan_users`] found them.
pub(super) struct UsersPlan {
    /// Last of each external id, without the unchanged ones when fingerprints were given.
    users: Vec<ExternalUser>,
    /// The external ids of those already stored (their rows are read before writing).
    stored: Vec<String>,
}

impl UsersPlan {
    /// The external ids this plan writes.
    pub fn external_ids(&self) -> impl Iterator<Item = &str> {
        self.users.iter().map(|u| u.external_id.as_str())
    }
}

/// What [`write_users`] wrote.
#[derive(Default)]
pub(super) struct UsersWritten {
    /// The ids of the users created or changed.
    pub ids: Vec<i64>,
    /// Their new fingerprints, for a full read's `known`.
    pub fingerprints: Vec<(String, Stored)>,
}

/// Of a page of users, those to write: the last of each external id (a directory may list a
/// user twice; Graph delta pages may repeat an object), and with `known` (a full read's
/// fingerprints) only those whose fingerprint differs. Reads nothing.
pub(super) fn plan_users(
    integration: &integration::Model,
    users: Vec<ExternalUser>,
    known: Option<&Fingerprints>,
) -> UsersPlan {
    // A directory may list a user twice (Graph delta pages may repeat an object): last wins.
    let mut latest: HashMap<String, usize> = HashMap::new();
    for (i, user) in users.iter().enumerate() {
        latest.insert(user.external_id.clone(), i);
    }
    let users: Vec<ExternalUser> = users
        .into_iter()
        .enumerate()
        .filter(|(i, u)| latest.get(&u.external_id) == Some(i))
        .map(|(_, u)| u)
        .collect();
    // With fingerprints (a full read): unchanged users need nothing, and only users already
    // stored need their rows read.
    let (users, stored): (Vec<ExternalUser>, Vec<String>) = match known {
        Some(known) => {
            let users: Vec<ExternalUser> = users
                .into_iter()
                .filter(|u| {
                    known.get(&u.external_id).map(|s| s.fingerprint)
                        != Some(fingerprint(u, u.status(), &integration.name))
                })
                .collect();
            let stored = users
                .iter()
                .filter(|u| known.contains_key(&u.external_id))
                .map(|u| u.external_id.clone())
                .collect();
            (users, stored)
        }
        None => {
            let ids = users.iter().map(|u| u.external_id.clone()).collect();
            (users, ids)
        }
    };
    UsersPlan { users, stored }
}

#[cfg(test)]
mod tests;
