//! Writing a plan of users: each new or changed user with its event and its counts, in one
//! transaction per batch; a user the database refuses is skipped alone ([`isolating`]).

use super::{Stored, UsersPlan, UsersWritten, fingerprint};
use crate::{
    directory::events::{NewEvent, status_event},
    directory::now,
    error::DomainResult,
    providers::{
        ExternalUser,
        clean::{Action, ObjectKind, Warning, Warnings},
        fields::user_changes,
    },
    store::{self, batch::isolating},
    sync::reconcile::Counts,
};
use entity::{directory_user, integration};
use sea_orm::DatabaseConnection;
use std::collections::{HashMap, HashSet};

/// What writing one user changes in a run's counts.
#[derive(Debug, Clone, Copy)]
enum Effect {
    Created { suspended: bool },
    Restored,
    Suspended,
    Updated,
}

impl Effect {
    /// What an event of a stored user's change counts as (a reactivation is an update).
    fn of_change(event: &str) -> Self {
        match event {
            "user.restored" => Self::Restored,
            "user.suspended" => Self::Suspended,
            _ => Self::Updated,
        }
    }

    fn count(self, counts: &mut Counts) {
        match self {
            Self::Created { suspended } => {
                counts.users_created += 1;
                counts.users_suspended += i32::from(suspended);
            }
            Self::Restored => counts.users_restored += 1,
            Self::Suspended => counts.users_suspended += 1,
            Self::Updated => counts.users_updated += 1,
        }
    }
}

/// One user to write, and what it is to the feed and the counts.
struct UserWrite<'a> {
    user: &'a ExternalUser,
    event: &'static str,
    fields: Vec<&'static str>,
    effect: Effect,
    /// The aliases to store, when they changed.
    aliases: Option<&'a [String]>,
}

/// The writes a page needs: each user that is new or differs from its row, with its event.
fn user_writes<'a>(
    integration: &integration::Model,
    users: &'a [ExternalUser],
    existing: &HashMap<String, directory_user::Model>,
    aliases: &HashMap<i64, Vec<String>>,
) -> Vec<UserWrite<'a>> {
    let mut writes = Vec::new();
    for user in users {
        match existing.get(&user.external_id) {
            Some(row) => {
                let current = aliases.get(&row.id).map(Vec::as_slice).unwrap_or_default();
                let mut fields = user_changes(row, user, &integration.name);
                let aliases_changed = current != user.aliases.as_slice();
                if aliases_changed {
                    fields.push("aliases");
                }
                if fields.is_empty() {
                    continue;
                }
                let event = status_event(row.status, user.status());
                writes.push(UserWrite {
                    user,
                    event,
                    fields,
                    effect: Effect::of_change(event),
                    aliases: aliases_changed.then_some(user.aliases.as_slice()),
                });
            }
            None => writes.push(UserWrite {
                user,
                event: "user.created",
                fields: Vec::new(),
                effect: Effect::Created {
                    suspended: user.suspended,
                },
                aliases: (!user.aliases.is_empty()).then_some(user.aliases.as_slice()),
            }),
        }
    }
    writes
}

/// Writes a [`plan_users`] plan: one read of the stored users' rows and aliases, then only
/// what differs, with its events, in one transaction. A user the database refuses is
/// skipped with a warning and the rest written ([`isolating`]); a stored user skipped keeps
/// its row, its fingerprint and its memberships.
pub(in crate::sync::reconcile) async fn write_users(
    db: &DatabaseConnection,
    integration: &integration::Model,
    plan: UsersPlan,
    counts: &mut Counts,
    warnings: &Warnings,
) -> DomainResult<UsersWritten> {
    let UsersPlan { users, stored } = plan;
    if users.is_empty() {
        return Ok(UsersWritten::default());
    }
    let (existing, aliases) = store::users::rows_of(db, integration.id, &stored).await?;
    let writes = user_writes(integration, &users, &existing, &aliases);
    let had: HashSet<i64> = aliases.keys().copied().collect();
    let batches = isolating(
        &writes,
        |batch| write_user_batch(db, integration, batch, &had),
        |write, refusal| {
            tracing::warn!(error = %refusal, "the database refused a user; skipped");
            warnings.push(Warning::new(
                ObjectKind::User,
                &write.user.external_id,
                None,
                Action::Skipped,
                "the user was skipped: the database refused its record; a stored user keeps what it had",
            ));
        },
    )
    .await?;
    let mut out = UsersWritten::default();
    for (batch, written) in batches {
        let ids: HashMap<&str, i64> = written
            .iter()
            .map(|row| (row.external_id.as_str(), row.id))
            .collect();
        for write in batch {
            write.effect.count(counts);
            let user = write.user;
            let Some(&id) = ids.get(user.external_id.as_str()) else {
                continue;
            };
            let status = user.status();
            out.ids.push(id);
            out.fingerprints.push((
                user.external_id.clone(),
                Stored {
                    id,
                    status,
                    fingerprint: fingerprint(user, status, &integration.name),
                },
            ));
        }
    }
    Ok(out)
}

/// Writes one batch of users in one transaction: the upsert, their aliases, their events.
async fn write_user_batch<'b, 'a>(
    db: &DatabaseConnection,
    integration: &integration::Model,
    batch: &'b [UserWrite<'a>],
    had_aliases: &HashSet<i64>,
) -> DomainResult<(&'b [UserWrite<'a>], Vec<directory_user::Model>)> {
    let txn = crate::db::begin_write(db).await?;
    let rows: Vec<&ExternalUser> = batch.iter().map(|w| w.user).collect();
    let written = store::users::upsert(&txn, integration, &rows, now()).await?;
    let by_external: HashMap<&str, &directory_user::Model> = written
        .iter()
        .map(|u| (u.external_id.as_str(), u))
        .collect();
    let alias_writes: Vec<(i64, Vec<String>)> = batch
        .iter()
        .filter_map(|w| {
            let aliases = w.aliases?;
            let row = by_external.get(w.user.external_id.as_str())?;
            Some((row.id, aliases.to_vec()))
        })
        .collect();
    store::users::replace_aliases(&txn, alias_writes, had_aliases).await?;
    let events = batch
        .iter()
        .filter_map(|w| {
            by_external
                .get(w.user.external_id.as_str())
                .map(|row| NewEvent::user(w.event, row, &w.fields))
        })
        .collect();
    crate::directory::events::record(&txn, events).await?;
    txn.commit().await?;
    Ok((batch, written))
}
