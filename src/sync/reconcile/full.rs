//! A full read: every user, every group and every membership the provider lists, applied in
//! four phases; what the directory no longer lists is removed only once all three reads
//! succeeded (R15).

use super::{
    Counts, DeltaLinks, Job, ReconcileError, Report,
    groups::{MEMBERSHIP_BATCH, apply_groups_page, apply_members},
    read_ahead::{cut_short, overlap, read_ahead},
    removal::{Removals, finish},
    store::refresh_statistics,
    users::{Fingerprints, apply_users_page, fingerprints},
};
use crate::providers::DirectoryProvider;
use entity::{directory_group, enums::UserStatus};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
use std::collections::{HashMap, HashSet};

/// Reads the whole directory through `provider` and applies it to the job's integration.
/// Memberships come inline with the groups when the provider gives them (Graph delta), else
/// from `members_page`. Removals are decided after the read is complete.
pub async fn full_sync<P: DirectoryProvider>(
    job: &Job<'_>,
    provider: &P,
) -> Result<Report, ReconcileError> {
    let mut counts = Counts::default();
    let mut known = fingerprints(job.db, job.integration.id).await?;
    let users = phase_1_users(job, provider, &mut known, &mut counts).await?;
    let GroupsRead {
        order,
        seen,
        inline,
        link,
    } = phase_2_groups(job, provider, &known, &mut counts).await?;
    let stored = phase_3_memberships(job, provider, &known, &order, inline, &mut counts).await?;
    let removals = phase_4_removals(&known, &users.seen, &stored, &seen);
    let delta = users
        .link
        .zip(link)
        .map(|(users, groups)| DeltaLinks { users, groups });
    finish(job, counts, users.touched, removals, delta).await
}

/// What phase 1 read.
struct UsersRead {
    /// The stored ids of every user the directory listed.
    seen: HashSet<i64>,
    /// Users created or changed.
    touched: Vec<i64>,
    /// Where the next incremental read of users starts, if the provider gave it.
    link: Option<String>,
}

/// Phase 1: users, page by page; unchanged users (equal fingerprints) are not written.
async fn phase_1_users<P: DirectoryProvider>(
    job: &Job<'_>,
    provider: &P,
    known: &mut Fingerprints,
    counts: &mut Counts,
) -> Result<UsersRead, ReconcileError> {
    let (db, integration) = (job.db, job.integration);
    let mut seen = HashSet::new();
    let mut touched = Vec::new();
    // PostgreSQL plans the per-page lookups from its statistics; during a bulk import they
    // lag far behind (a plan for 50 rows scanning 100,000), so refresh them as the table
    // doubles.
    let mut analyze_at = 1_000;
    let (mut pages, reader) = read_ahead(|cursor| provider.users_page(cursor));
    let writer = async {
        while let Some(page) = pages.recv().await {
            job.check_stop()?;
            let page = page?;
            counts.pages_read += 1;
            let listed: Vec<String> = page.items.iter().map(|u| u.external_id.clone()).collect();
            touched
                .extend(apply_users_page(db, integration, page.items, counts, Some(known)).await?);
            seen.extend(listed.iter().filter_map(|ext| known.get(ext).map(|s| s.id)));
            if counts.users_created >= analyze_at {
                refresh_statistics(db, &["directory_users", "user_aliases"]).await?;
                analyze_at = analyze_at.saturating_mul(2);
            }
            (job.progress)(counts);
            if page.next.is_none() {
                return Ok(page.delta_link);
            }
        }
        Err(cut_short())
    };
    let link = overlap(reader, writer).await?;
    Ok(UsersRead {
        seen,
        touched,
        link,
    })
}

/// What phase 2 read.
struct GroupsRead {
    /// External ids of the groups listed, in the order first listed.
    order: Vec<String>,
    seen: HashSet<String>,
    /// Members listed inline with their group (stored user ids), by group external id.
    inline: HashMap<String, HashSet<i64>>,
    link: Option<String>,
}

/// Phase 2: groups, page by page; a group may come more than once with parts of its members.
async fn phase_2_groups<P: DirectoryProvider>(
    job: &Job<'_>,
    provider: &P,
    known: &Fingerprints,
    counts: &mut Counts,
) -> Result<GroupsRead, ReconcileError> {
    let mut read = GroupsRead {
        order: Vec::new(),
        seen: HashSet::new(),
        inline: HashMap::new(),
        link: None,
    };
    let (mut pages, reader) = read_ahead(|cursor| provider.groups_page(cursor));
    let writer = async {
        while let Some(page) = pages.recv().await {
            job.check_stop()?;
            let page = page?;
            counts.pages_read += 1;
            for group in &page.items {
                if read.seen.insert(group.external_id.clone()) {
                    read.order.push(group.external_id.clone());
                }
                if let Some(members) = &group.members {
                    read.inline
                        .entry(group.external_id.clone())
                        .or_default()
                        .extend(
                            members
                                .iter()
                                .filter_map(|ext| known.get(ext).map(|s| s.id)),
                        );
                }
            }
            apply_groups_page(job.db, job.integration, page.items, counts).await?;
            (job.progress)(counts);
            if page.next.is_none() {
                return Ok(page.delta_link);
            }
        }
        Err(cut_short())
    };
    read.link = overlap(reader, writer).await?;
    Ok(read)
}

/// Phase 3: each listed group's members become exactly those the directory lists (inline, or
/// read with `members_page`), [`MEMBERSHIP_BATCH`] groups per transaction. Returns the
/// integration's stored groups (external id → id), read before the memberships.
async fn phase_3_memberships<P: DirectoryProvider>(
    job: &Job<'_>,
    provider: &P,
    known: &Fingerprints,
    order: &[String],
    mut inline: HashMap<String, HashSet<i64>>,
    counts: &mut Counts,
) -> Result<HashMap<String, i64>, ReconcileError> {
    let db = job.db;
    let stored: HashMap<String, i64> = directory_group::Entity::find()
        .select_only()
        .column(directory_group::Column::ExternalId)
        .column(directory_group::Column::Id)
        .filter(directory_group::Column::IntegrationId.eq(job.integration.id))
        .into_tuple::<(String, i64)>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let mut batch = Vec::with_capacity(MEMBERSHIP_BATCH);
    for external in order {
        let Some(&group_id) = stored.get(external) else {
            continue;
        };
        let members: HashSet<i64> = match inline.remove(external) {
            Some(listed) => listed,
            None => {
                let mut members = HashSet::new();
                let mut cursor = None;
                loop {
                    let page = provider.members_page(external, cursor).await?;
                    counts.pages_read += 1;
                    members.extend(
                        page.items
                            .iter()
                            .filter_map(|ext| known.get(ext).map(|s| s.id)),
                    );
                    match page.next {
                        Some(next) => cursor = Some(next),
                        None => break,
                    }
                }
                members
            }
        };
        batch.push((group_id, members));
        if batch.len() == MEMBERSHIP_BATCH {
            job.check_stop()?;
            apply_members(db, job.integration.id, std::mem::take(&mut batch)).await?;
            (job.progress)(counts);
        }
    }
    job.check_stop()?;
    apply_members(db, job.integration.id, batch).await?;
    (job.progress)(counts);
    if counts.users_created + counts.groups_created > 1_000 {
        refresh_statistics(db, &["directory_groups", "group_memberships"]).await?;
    }
    Ok(stored)
}

/// Phase 4: what the complete read no longer lists — users not already archived, and groups.
fn phase_4_removals(
    known: &Fingerprints,
    seen_users: &HashSet<i64>,
    stored_groups: &HashMap<String, i64>,
    seen_groups: &HashSet<String>,
) -> Removals {
    let present: Vec<i64> = known
        .values()
        .filter(|s| s.status != UserStatus::Archived)
        .map(|s| s.id)
        .collect();
    Removals {
        present: present.len() as u64,
        users: present
            .into_iter()
            .filter(|id| !seen_users.contains(id))
            .collect(),
        groups: stored_groups
            .iter()
            .filter(|(ext, _)| !seen_groups.contains(*ext))
            .map(|(_, id)| *id)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::{
        super::{
            Outcome,
            testing::{Directory, Fixture, person, team},
        },
        *,
    };

    fn directory(users: usize, per_page: usize) -> Directory {
        Directory {
            users: (0..users).map(person).collect(),
            groups: vec![team(0), team(1)],
            members: HashMap::from([
                ("g0".into(), vec!["u0".into(), "u1".into()]),
                ("g1".into(), vec!["u2".into(), "nobody".into()]),
            ]),
            per_page,
            fail_members: false,
        }
    }

    #[tokio::test]
    async fn phase_1_writes_new_and_changed_users_only() {
        let fx = Fixture::new().await;
        let mut known = fingerprints(&fx.db, fx.integration.id).await.unwrap();
        let mut counts = Counts::default();
        let read = phase_1_users(&fx.job(false), &directory(5, 2), &mut known, &mut counts)
            .await
            .unwrap();
        assert_eq!((counts.users_created, counts.pages_read), (5, 3));
        assert_eq!((read.seen.len(), read.touched.len()), (5, 5));
        assert_eq!(read.link.as_deref(), Some("end"));

        let mut changed = directory(5, 2);
        changed.users[3].department = Some("Sales".into());
        changed.users[4].suspended = true;
        let mut counts = Counts::default();
        let read = phase_1_users(&fx.job(false), &changed, &mut known, &mut counts)
            .await
            .unwrap();
        assert_eq!(
            (
                counts.users_created,
                counts.users_updated,
                counts.users_suspended
            ),
            (0, 1, 1)
        );
        assert_eq!(read.touched.len(), 2, "only the two changed users");
        let user = fx.user("u4").await.unwrap();
        assert_eq!(user.status, UserStatus::Suspended);
    }

    #[tokio::test]
    async fn phase_2_merges_a_group_listed_twice_and_resolves_inline_members() {
        let fx = Fixture::new().await;
        fx.users(3).await;
        let known = fingerprints(&fx.db, fx.integration.id).await.unwrap();
        let mut first = team(0);
        first.members = Some(vec!["u0".into(), "unknown".into()]);
        let mut again = team(0);
        again.members = Some(vec!["u1".into()]);
        let provider = Directory {
            groups: vec![first, team(1), again],
            per_page: 1,
            ..Default::default()
        };
        let mut counts = Counts::default();
        let read = phase_2_groups(&fx.job(false), &provider, &known, &mut counts)
            .await
            .unwrap();
        assert_eq!(read.order, ["g0", "g1"]);
        assert_eq!(
            read.inline["g0"].len(),
            2,
            "u0 and u1; unknown users left out"
        );
        assert!(!read.inline.contains_key("g1"));
        assert_eq!(counts.groups_created, 2);
        assert!(fx.group("g1").await.is_some());
    }

    #[tokio::test]
    async fn phase_3_makes_memberships_what_the_directory_lists() {
        let fx = Fixture::new().await;
        let provider = directory(4, 10);
        let job = fx.job(false);
        let report = full_sync(&job, &provider).await.unwrap();
        assert!(matches!(report.outcome, Outcome::Applied(_)));
        assert_eq!(fx.members("g0").await, ["u0", "u1"]);
        assert_eq!(fx.members("g1").await, ["u2"], "unknown members left out");

        let mut moved = directory(4, 10);
        moved.members.insert("g0".into(), vec!["u3".into()]);
        let known = fingerprints(&fx.db, fx.integration.id).await.unwrap();
        let order = ["g0".to_owned(), "g1".to_owned()];
        let mut counts = Counts::default();
        let stored = phase_3_memberships(&job, &moved, &known, &order, HashMap::new(), &mut counts)
            .await
            .unwrap();
        assert_eq!(stored.len(), 2);
        assert_eq!(counts.pages_read, 2, "one member page per group");
        assert_eq!(fx.members("g0").await, ["u3"]);
        assert_eq!(fx.members("g1").await, ["u2"]);
    }

    #[tokio::test]
    async fn phase_4_lists_the_unseen_users_and_groups_but_not_the_archived() {
        let fx = Fixture::new().await;
        let ids = fx.users(4).await;
        fx.give_device(ids[3]).await;
        full_sync(&fx.job(false), &directory(4, 10)).await.unwrap();
        crate::directory::users::remove_or_archive(&fx.db, &ids[3..])
            .await
            .unwrap();
        let known = fingerprints(&fx.db, fx.integration.id).await.unwrap();
        let seen = HashSet::from([ids[0], ids[2]]);
        let stored = HashMap::from([("g0".to_owned(), 10), ("g1".to_owned(), 11)]);
        let removals = phase_4_removals(&known, &seen, &stored, &HashSet::from(["g0".into()]));
        assert_eq!(removals.users, [ids[1]]);
        assert_eq!(removals.present, 3, "the archived user does not count");
        assert_eq!(removals.groups, [11]);
    }

    #[tokio::test]
    async fn full_sync_that_fails_part_way_removes_nothing() {
        let fx = Fixture::new().await;
        full_sync(&fx.job(false), &directory(6, 10)).await.unwrap();
        let mut broken = directory(2, 10);
        broken.fail_members = true;
        let err = full_sync(&fx.job(false), &broken).await.unwrap_err();
        assert!(matches!(err, ReconcileError::Provider(_)));
        assert_eq!(fx.count_users(UserStatus::Active).await, 6);
        assert_eq!(fx.members("g0").await, ["u0", "u1"]);
    }
}
