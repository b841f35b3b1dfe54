//! An incremental read: what changed since the stored links, from a provider with the
//! [`IncrementalProvider`] capability (Graph delta queries), applied in three phases. A change
//! may carry only the changed properties, so it is merged onto what is stored; removals,
//! decided once both reads completed, go through the same ending as a full read (R14, R15).

use super::{
    Counts, DeltaLinks, Job, ReconcileError, Report,
    groups::{apply_groups_page, apply_member_changes},
    removal::{Removals, finish},
    users::apply_users_page,
};
use crate::providers::{
    ExternalGroup, ExternalUser, GroupChange, IncrementalProvider, ObjectChange, clean::Cleaned,
};
use entity::enums::UserStatus;
use std::collections::HashSet;

/// Reads the changes since `links` and applies them. An expired link ends it with
/// [`ProviderError::DeltaExpired`](crate::providers::ProviderError::DeltaExpired), before
/// anything is removed.
pub async fn delta_sync<P: IncrementalProvider>(
    job: &Job<'_>,
    provider: &P,
    links: &DeltaLinks,
) -> Result<Report, ReconcileError> {
    // Every record passes the input policy before a phase sees it (R18).
    let provider = &Cleaned::new(provider, job.warnings.clone());
    let mut counts = Counts::default();
    let users = phase_1_user_changes(job, provider, &links.users, &mut counts, Only::Any).await?;
    let groups = phase_2_group_changes(job, provider, &links.groups, &mut counts).await?;
    job.check_stop()?;
    let removals = phase_3_removals(job, users.removed, groups.removed).await?;
    let delta = DeltaLinks {
        users: users.link,
        groups: groups.link,
    };
    finish(job, counts, users.touched, removals, Some(delta)).await
}

/// Which changed users phase 1 applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Only {
    /// Every one: the whole directory is read.
    Any,
    /// Those stored: a scope is read.
    Stored,
}

/// Reads the changes since `links` for an integration that imports a group scope (R19): the
/// tenant's change feed, kept to what the scope holds. When a group the scope holds changed
/// its members or went away, the scope itself changed: `None`, and the caller reads the scope
/// again (its transitive members). Otherwise the changes of the users it holds (attributes,
/// suspensions, deletions from the directory) and the renames of its groups are applied, and
/// the rest of the feed passed over.
pub async fn scoped_delta_sync<P: IncrementalProvider>(
    job: &Job<'_>,
    provider: &P,
    links: &DeltaLinks,
) -> Result<Option<Report>, ReconcileError> {
    let provider = &Cleaned::new(provider, job.warnings.clone());
    let mut counts = Counts::default();
    let Some((renamed, groups_link)) =
        scope_group_changes(job, provider, &links.groups, &mut counts).await?
    else {
        return Ok(None);
    };
    let users =
        phase_1_user_changes(job, provider, &links.users, &mut counts, Only::Stored).await?;
    apply_groups_page(job.db, job.integration, renamed, &mut counts, job.warnings).await?;
    job.check_stop()?;
    let removals = phase_3_removals(job, users.removed, HashSet::new()).await?;
    let delta = DeltaLinks {
        users: users.link,
        groups: groups_link,
    };
    finish(job, counts, users.touched, removals, Some(delta))
        .await
        .map(Some)
}

/// The group changes since `link`, kept to the groups the integration holds: their new
/// properties, and the link to go on from; `None` when one of them changed its members or
/// was deleted. Nothing is written.
async fn scope_group_changes<P: IncrementalProvider>(
    job: &Job<'_>,
    provider: &P,
    link: &str,
    counts: &mut Counts,
) -> Result<Option<(Vec<ExternalGroup>, String)>, ReconcileError> {
    let (db, integration) = (job.db, job.integration);
    let mut renamed = Vec::new();
    let mut url = link.to_owned();
    loop {
        job.check_stop()?;
        let page = provider.group_changes(&url).await?;
        counts.pages_read += 1;
        let ids: Vec<String> = page
            .items
            .iter()
            .map(|g| g.external_id().to_owned())
            .collect();
        let stored = crate::store::groups::rows_of(db, integration.id, &ids).await?;
        for change in page.items {
            let Some(row) = stored.get(change.external_id()) else {
                continue;
            };
            if change.is_removal() || !change.member_changes().is_empty() {
                return Ok(None);
            }
            let base = ExternalGroup {
                external_id: row.external_id.clone(),
                display_name: row.display_name.clone(),
                email: row.email.clone(),
                description: row.description.clone(),
                members: None,
            };
            renamed.push(change.merged(Some(&base)));
        }
        match page.next {
            Some(next) => url = next,
            None => return Ok(Some((renamed, page.delta_link.unwrap_or(url)))),
        }
    }
}

/// What a phase of changes read.
struct ChangesRead {
    /// External ids reported removed (and not changed again later in the read).
    removed: HashSet<String>,
    touched: Vec<i64>,
    /// Where the next incremental read starts.
    link: String,
}

/// The changes of a page that are not removals; removals are noted in `removed`, and an
/// object changed after its removal (later in the read) is no longer removed.
fn sort_out<T, C: ObjectChange<T>>(items: Vec<C>, removed: &mut HashSet<String>) -> Vec<C> {
    let (gone, changed): (Vec<C>, Vec<C>) = items.into_iter().partition(|c| c.is_removal());
    removed.extend(gone.iter().map(|c| c.external_id().to_owned()));
    for change in &changed {
        removed.remove(change.external_id());
    }
    changed
}

/// Phase 1: changed users merged onto what is stored and applied, a page at a time.
async fn phase_1_user_changes<P: IncrementalProvider>(
    job: &Job<'_>,
    provider: &P,
    link: &str,
    counts: &mut Counts,
    only: Only,
) -> Result<ChangesRead, ReconcileError> {
    let (db, integration) = (job.db, job.integration);
    let mut read = ChangesRead {
        removed: HashSet::new(),
        touched: Vec::new(),
        link: link.to_owned(),
    };
    let mut url = link.to_owned();
    loop {
        job.check_stop()?;
        let page = provider.user_changes(&url).await?;
        counts.pages_read += 1;
        let changed = sort_out(page.items, &mut read.removed);
        if !changed.is_empty() {
            let ids: Vec<String> = changed.iter().map(|u| u.external_id().to_owned()).collect();
            let (rows, aliases) = crate::store::users::rows_of(db, integration.id, &ids).await?;
            let merged: Vec<ExternalUser> = changed
                .into_iter()
                // A scoped read keeps to the users it holds: the scope's membership is
                // unchanged (else it read the scope again), so a user it does not hold is
                // outside it.
                .filter(|u| only == Only::Any || rows.contains_key(u.external_id()))
                .map(|u| {
                    let base = rows.get(u.external_id()).map(|row| {
                        ExternalUser::of_row(row, aliases.get(&row.id).cloned().unwrap_or_default())
                    });
                    u.merged(base.as_ref())
                })
                .collect();
            read.touched.extend(
                apply_users_page(db, integration, merged, counts, None, job.warnings).await?,
            );
        }
        (job.progress)(counts);
        match page.next {
            Some(next) => url = next,
            None => {
                read.link = page.delta_link.unwrap_or(url);
                return Ok(read);
            }
        }
    }
}

/// Phase 2: changed groups merged onto what is stored, and their membership changes.
async fn phase_2_group_changes<P: IncrementalProvider>(
    job: &Job<'_>,
    provider: &P,
    link: &str,
    counts: &mut Counts,
) -> Result<ChangesRead, ReconcileError> {
    let (db, integration) = (job.db, job.integration);
    let mut read = ChangesRead {
        removed: HashSet::new(),
        touched: Vec::new(),
        link: link.to_owned(),
    };
    let mut url = link.to_owned();
    loop {
        job.check_stop()?;
        let page = provider.group_changes(&url).await?;
        counts.pages_read += 1;
        let changed = sort_out(page.items, &mut read.removed);
        if !changed.is_empty() {
            let ids: Vec<String> = changed.iter().map(|g| g.external_id().to_owned()).collect();
            let stored = crate::store::groups::rows_of(db, integration.id, &ids).await?;
            let members: Vec<(String, _)> = changed
                .iter()
                .map(|g| (g.external_id().to_owned(), g.member_changes()))
                .collect();
            let merged: Vec<ExternalGroup> = changed
                .into_iter()
                .map(|g| {
                    let base = stored.get(g.external_id()).map(|row| ExternalGroup {
                        external_id: row.external_id.clone(),
                        display_name: row.display_name.clone(),
                        email: row.email.clone(),
                        description: row.description.clone(),
                        members: None,
                    });
                    g.merged(base.as_ref())
                })
                .collect();
            apply_groups_page(db, integration, merged, counts, job.warnings).await?;
            apply_member_changes(db, integration.id, &members).await?;
        }
        (job.progress)(counts);
        match page.next {
            Some(next) => url = next,
            None => {
                read.link = page.delta_link.unwrap_or(url);
                return Ok(read);
            }
        }
    }
}

/// Phase 3: the stored users and groups behind the removals both reads reported.
async fn phase_3_removals(
    job: &Job<'_>,
    users: HashSet<String>,
    groups: HashSet<String>,
) -> Result<Removals, ReconcileError> {
    let (db, integration) = (job.db, job.integration);
    let users: Vec<String> = users.into_iter().collect();
    let (rows, _) = crate::store::users::rows_of(db, integration.id, &users).await?;
    let present = crate::store::users::present_count(db, integration.id).await?;
    let groups: Vec<String> = groups.into_iter().collect();
    Ok(Removals {
        users: rows
            .values()
            .filter(|u| u.status != UserStatus::Archived)
            .map(|u| u.id)
            .collect(),
        present,
        groups: crate::store::groups::rows_of(db, integration.id, &groups)
            .await?
            .values()
            .map(|g| g.id)
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::{
        super::{
            Outcome, full_sync,
            testing::{Changed, Changes, Directory, Fixture, GroupChanged, person, team},
        },
        *,
    };
    use crate::providers::{Member, MemberChange, ProviderError};

    async fn synced(fx: &Fixture, users: usize) {
        let directory = Directory {
            users: (0..users).map(person).collect(),
            groups: vec![team(0)],
            members: [("g0".to_owned(), vec!["u0".to_owned()])].into(),
            per_page: 100,
            ..Default::default()
        };
        full_sync(&fx.job(false), &directory).await.unwrap();
    }

    #[tokio::test]
    async fn phase_1_applies_changes_and_a_user_removed_then_changed_stays() {
        let fx = Fixture::new().await;
        synced(&fx, 3).await;
        let mut renamed = person(1);
        renamed.display_name = "Renamed".into();
        let changes = Changes {
            users: vec![
                Changed::Removed("u2".into()),
                Changed::Now(renamed),
                Changed::Removed("u0".into()),
                Changed::Now(person(0)),
                Changed::Now(person(7)),
            ],
            ..Default::default()
        };
        let mut counts = Counts::default();
        let read = phase_1_user_changes(&fx.job(false), &changes, "from", &mut counts, Only::Any)
            .await
            .unwrap();
        assert_eq!(read.removed, HashSet::from(["u2".to_owned()]));
        assert_eq!(read.link, "users-next");
        assert_eq!((counts.users_created, counts.users_updated), (1, 1));
        assert_eq!(fx.user("u1").await.unwrap().display_name, "Renamed");
        assert!(fx.user("u2").await.is_some(), "removals wait for phase 3");
    }

    #[tokio::test]
    async fn phase_2_applies_group_and_membership_changes() {
        let fx = Fixture::new().await;
        synced(&fx, 3).await;
        let changes = Changes {
            groups: vec![
                GroupChanged(
                    Changed::Now(team(0)),
                    vec![
                        MemberChange {
                            member: Member::User("u0".into()),
                            removed: true,
                        },
                        MemberChange {
                            member: Member::User("u2".into()),
                            removed: false,
                        },
                        MemberChange {
                            member: Member::User("stranger".into()),
                            removed: false,
                        },
                    ],
                ),
                GroupChanged(Changed::Now(team(5)), vec![]),
                GroupChanged(Changed::Removed("g9".into()), vec![]),
            ],
            ..Default::default()
        };
        let mut counts = Counts::default();
        let read = phase_2_group_changes(&fx.job(false), &changes, "from", &mut counts)
            .await
            .unwrap();
        assert_eq!(read.removed, HashSet::from(["g9".to_owned()]));
        assert_eq!(counts.groups_created, 1);
        assert_eq!(fx.members("g0").await, ["u2"]);
        assert!(fx.group("g5").await.is_some());
    }

    #[tokio::test]
    async fn phase_3_finds_the_stored_rows_of_the_removals() {
        let fx = Fixture::new().await;
        synced(&fx, 3).await;
        let removals = phase_3_removals(
            &fx.job(false),
            HashSet::from(["u1".into(), "never-stored".into()]),
            HashSet::from(["g0".into()]),
        )
        .await
        .unwrap();
        assert_eq!(removals.users, [fx.user("u1").await.unwrap().id]);
        assert_eq!(removals.present, 3);
        assert_eq!(removals.groups, [fx.group("g0").await.unwrap().id]);
    }

    #[tokio::test]
    async fn delta_sync_removes_and_keeps_the_new_links() {
        let fx = Fixture::new().await;
        synced(&fx, 3).await;
        let changes = Changes {
            users: vec![Changed::Removed("u2".into())],
            groups: vec![GroupChanged(Changed::Removed("g0".into()), vec![])],
            ..Default::default()
        };
        let report = delta_sync(&fx.job(false), &changes, &fx.links().unwrap())
            .await
            .unwrap();
        let Outcome::Applied(counts) = report.outcome else {
            panic!("expected the changes applied")
        };
        assert_eq!((counts.users_removed, counts.groups_removed), (1, 1));
        assert_eq!(
            report.delta,
            Some(DeltaLinks {
                users: "users-next".into(),
                groups: "groups-next".into()
            })
        );
    }

    #[tokio::test]
    async fn an_expired_link_ends_the_read_before_anything_changes() {
        let fx = Fixture::new().await;
        synced(&fx, 3).await;
        let changes = Changes {
            expired: true,
            ..Default::default()
        };
        let err = delta_sync(&fx.job(false), &changes, &fx.links().unwrap())
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            ReconcileError::Provider(ProviderError::DeltaExpired { .. })
        ));
        assert_eq!(fx.count_users(UserStatus::Active).await, 3);
    }
}
