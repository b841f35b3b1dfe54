//! A full read: every user, every group and every membership the provider lists, applied in
//! four phases; what the directory no longer lists is removed only once every read succeeded
//! (R15).
//!
//! The reads overlap as far as the data allows, because a provider answers in 50–300 ms a call
//! and most of a sync is waiting for it: the users and groups listings are read side by side
//! (each a chain of pages, the next page fetched while the current one is written), and the
//! member lists of the groups (Google has no members inline) are read as soon as each group
//! is listed, many at once, within the session's throttle. Memberships are written once the
//! users are in (they refer to them); until then at most [`MEMBERS_BUFFERED`] listed members
//! wait in memory, and the member reads pause when that much is waiting.

use super::{
    Counts, DeltaLinks, Job, ReconcileError, Report,
    groups::{GroupMembers, MEMBERSHIP_BATCH, apply_groups_page, apply_members},
    read_ahead::{cut_short, overlap, read_ahead},
    removal::{Removals, finish},
    users::{Fingerprints, fingerprints},
};
use crate::providers::{
    DirectoryProvider, Member,
    clean::{self, Cleaned},
};
use crate::store::batch::refresh_statistics;
use entity::enums::UserStatus;
use futures_util::{StreamExt, stream::FuturesUnordered};
use sea_orm::DatabaseBackend;
use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
};
use tokio::sync::{Semaphore, mpsc};

/// Member ids read ahead of the users phase, at most (about 60 bytes each): the member reads
/// of a directory bigger than this wait for the users phase to end before reading on.
pub(super) const MEMBERS_BUFFERED: usize = 250_000;

/// User transactions written at once on PostgreSQL, at most.
pub(super) const USER_WRITERS: usize = 2;

/// Membership batches written at once on PostgreSQL, at most.
pub(super) const MEMBERSHIP_WRITERS: usize = 2;

/// Users written in one transaction, at most: the pages the reader has fetched while the
/// previous transaction was written are applied together.
pub(super) const USERS_PER_TRANSACTION: usize = 5_000;

/// Member lists read at once, at most; the session's throttle may allow fewer.
pub(super) const MEMBER_READS: usize = 64;

/// Reads the whole directory through `provider` and applies it to the job's integration.
/// Memberships come inline with the groups when the provider gives them (Graph delta), else
/// from `members_page`. Removals are decided after the read is complete.
pub async fn full_sync<P: DirectoryProvider>(
    job: &Job<'_>,
    provider: &P,
) -> Result<Report, ReconcileError> {
    let started = std::time::Instant::now();
    let phase_done = |phase: &str| {
        tracing::debug!(
            integration = job.integration.id,
            phase,
            after_ms = started.elapsed().as_millis() as u64,
            "full sync phase done"
        );
    };
    // Every record passes the input policy before a phase sees it (R18).
    let provider = &Cleaned::new(provider, job.warnings.clone());
    let tally = Tally::new(job);
    let mut known = fingerprints(job.db, job.integration.id).await?;
    let buffered = Semaphore::new(MEMBERS_BUFFERED);
    let (to_read, groups_listed) = mpsc::unbounded_channel();
    let (members_tx, members_read) = mpsc::unbounded_channel();
    let reads = read_members(job, provider, groups_listed, members_tx, &buffered, &tally);
    let phases = async {
        let (users, groups) = tokio::try_join!(
            async {
                let read = phase_1_users(job, provider, &mut known, &tally).await?;
                phase_done("users");
                Ok::<_, ReconcileError>(read)
            },
            async {
                let read = phase_2_groups(job, provider, &tally, to_read).await?;
                phase_done("groups");
                Ok::<_, ReconcileError>(read)
            },
        )?;
        let stored =
            phase_3_memberships(job, &known, groups.inline, members_read, &buffered, &tally)
                .await?;
        Ok::<_, ReconcileError>((users, groups.seen, groups.link, stored))
    };
    let ((), (users, seen, link, stored)) = tokio::try_join!(reads, phases)?;
    phase_done("memberships");
    let removals = phase_4_removals(&known, &users.seen, &stored, &seen);
    let delta = users
        .link
        .zip(link)
        .map(|(users, groups)| DeltaLinks { users, groups });
    let report = finish(job, tally.into_counts(), users.touched, removals, delta).await?;
    phase_done("removals");
    Ok(report)
}

/// The counts of phases that run at once, and the progress report of their sum.
struct Tally<'a> {
    counts: Mutex<Counts>,
    job: &'a Job<'a>,
}

impl<'a> Tally<'a> {
    fn new(job: &'a Job<'a>) -> Self {
        Self {
            counts: Mutex::new(Counts::default()),
            job,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds what a page or batch did, and reports the new totals.
    fn add(&self, done: &Counts) {
        *self.lock() += done;
        self.report();
    }

    /// Reports the totals as they are (a batch that changed no count still shows progress).
    fn report(&self) {
        let now = self.lock().clone();
        (self.job.progress)(&now);
    }

    fn into_counts(self) -> Counts {
        self.counts.into_inner().unwrap_or_else(|e| e.into_inner())
    }
}

/// What phase 2 read.
struct GroupsRead {
    seen: HashSet<String>,
    /// Members listed inline with their group, by group external id.
    inline: HashMap<String, Vec<Member>>,
    link: Option<String>,
}

/// Phase 2: groups, page by page; a group may come more than once with parts of its members.
/// Each group listed without its members goes to `to_read` at once, for [`read_members`].
async fn phase_2_groups<P: DirectoryProvider>(
    job: &Job<'_>,
    provider: &P,
    tally: &Tally<'_>,
    to_read: mpsc::UnboundedSender<String>,
) -> Result<GroupsRead, ReconcileError> {
    let mut read = GroupsRead {
        seen: HashSet::new(),
        inline: HashMap::new(),
        link: None,
    };
    let (mut pages, reader) = read_ahead(|cursor| provider.groups_page(cursor));
    let writer = async {
        while let Some(page) = pages.recv().await {
            job.check_stop()?;
            let mut page = page?;
            let mut done = Counts {
                pages_read: 1,
                ..Counts::default()
            };
            for group in &mut page.items {
                let first = read.seen.insert(group.external_id.clone());
                match group.members.take() {
                    Some(members) => read
                        .inline
                        .entry(group.external_id.clone())
                        .or_default()
                        .extend(members),
                    // The reader is gone only when the sync is ending already.
                    None if first => to_read.send(group.external_id.clone()).unwrap_or(()),
                    None => {}
                }
            }
            apply_groups_page(job.db, job.integration, page.items, &mut done, job.warnings).await?;
            tally.add(&done);
            if page.next.is_none() {
                return Ok(page.delta_link);
            }
        }
        Err(cut_short())
    };
    read.link = overlap(reader, writer).await?;
    Ok(read)
}

/// The members of one group as read, and the room they take in the buffer.
type MembersRead = (String, Vec<Member>, usize);

/// The member lists of the groups phase 2 sends, [`MEMBER_READS`] at most at once (the
/// session's throttle may hold some back), each read to its last page and handed to phase 3.
/// A new read starts only while the buffer has room; the reads in flight always run to their
/// end, so none holds a provider call open unpolled. Ends when phase 2 has listed every group
/// and every read is done; the first failure ends it (and so the sync, with no removals).
async fn read_members<P: DirectoryProvider>(
    job: &Job<'_>,
    provider: &P,
    mut groups: mpsc::UnboundedReceiver<String>,
    out: mpsc::UnboundedSender<MembersRead>,
    buffered: &Semaphore,
    tally: &Tally<'_>,
) -> Result<(), ReconcileError> {
    let read_one = |group: String| async move {
        let (mut members, mut cursor, mut pages) = (Vec::new(), None, 0);
        loop {
            let page = provider.members_page(&group, cursor).await?;
            pages += 1;
            members.extend(page.items);
            match page.next {
                // A group listing more members than are kept is read no further.
                Some(_) if members.len() > clean::MAX_MEMBERS => {
                    clean::cap_members(&group, &mut members, job.warnings);
                    return Ok::<_, ReconcileError>((group, members, pages));
                }
                Some(next) => cursor = Some(next),
                None => return Ok((group, members, pages)),
            }
        }
    };
    let mut in_flight = FuturesUnordered::new();
    let mut listing = true;
    loop {
        let room = buffered.available_permits() > 0;
        let start = listing && room && in_flight.len() < MEMBER_READS;
        tokio::select! {
            Some(done) = in_flight.next() => {
                let (group, members, pages): (String, Vec<Member>, i32) = done?;
                // Takes what is free of the buffer for these members; phase 3 gives it back.
                let taken = buffered.forget_permits(members.len());
                tally.add(&Counts { pages_read: pages, ..Counts::default() });
                // Phase 3 is gone only when the sync is ending already.
                out.send((group, members, taken)).unwrap_or(());
            }
            next = groups.recv(), if start => match next {
                Some(group) => {
                    job.check_stop()?;
                    in_flight.push(read_one(group));
                }
                None => listing = false,
            },
            // The buffer is full: wait for phase 3 to free some.
            permit = buffered.acquire(), if listing && !room && in_flight.len() < MEMBER_READS => {
                drop(permit);
            }
            else => return Ok(()),
        }
    }
}

/// Phase 3, once the users are in: each listed group's members become exactly those the
/// directory lists (inline, or read by [`read_members`]), [`MEMBERSHIP_BATCH`] groups per
/// transaction. Returns the integration's stored groups (external id → id), read before the
/// memberships.
async fn phase_3_memberships(
    job: &Job<'_>,
    known: &Fingerprints,
    inline: HashMap<String, Vec<Member>>,
    mut read: mpsc::UnboundedReceiver<MembersRead>,
    buffered: &Semaphore,
    tally: &Tally<'_>,
) -> Result<HashMap<String, i64>, ReconcileError> {
    let db = job.db;
    let stored = crate::store::groups::ids_of_integration(db, job.integration.id).await?;
    // PostgreSQL takes several writers at once (their events wait for each other's commit,
    // their memberships do not); SQLite has one writer.
    let most = match db.get_database_backend() {
        DatabaseBackend::Postgres => MEMBERSHIP_WRITERS,
        _ => 1,
    };
    let write = |batch: Vec<GroupMembers>| async move {
        job.check_stop()?;
        apply_members(db, job.integration.id, batch, job.warnings).await?;
        tally.report();
        Ok::<_, ReconcileError>(())
    };
    let mut writing = FuturesUnordered::new();
    let mut batch = Vec::with_capacity(MEMBERSHIP_BATCH);
    // The inline members first (in memory already, taking no room in the buffer), then the
    // member lists as they are read, the writes in flight going on while they are awaited.
    let mut inline = inline.into_iter();
    loop {
        let next = match inline.next() {
            Some((external, members)) => Some((external, members, 0)),
            None => tokio::select! {
                Some(done) = writing.next(), if !writing.is_empty() => {
                    done?;
                    continue;
                }
                next = read.recv() => next,
            },
        };
        let Some((external, members, taken)) = next else {
            break;
        };
        if let Some(&group_id) = stored.get(&external) {
            batch.push(resolve(job, known, &stored, (group_id, &external), members));
        }
        // Resolved to ids, the members leave the buffer.
        buffered.add_permits(taken);
        if batch.len() == MEMBERSHIP_BATCH {
            writing.push(write(std::mem::take(&mut batch)));
            while writing.len() >= most {
                writing.next().await.unwrap_or(Ok(()))?;
            }
        }
    }
    writing.push(write(batch));
    while let Some(done) = writing.next().await {
        done?;
    }
    let counts = tally.lock().clone();
    if counts.users_created + counts.groups_created > 1_000 {
        refresh_statistics(db, &["directory_groups", "group_memberships"]).await?;
    }
    Ok(stored)
}

/// The stored ids of a group's members: its users (`known`) and the groups nested in it
/// (`groups`). A member that is no user or group of this read (an external account, a record
/// skipped) is left out, with a warning.
fn resolve(
    job: &Job<'_>,
    known: &Fingerprints,
    groups: &HashMap<String, i64>,
    (id, external): (i64, &str),
    members: Vec<Member>,
) -> GroupMembers {
    let mut read = GroupMembers {
        group: id,
        users: HashSet::with_capacity(members.len()),
        groups: HashSet::new(),
    };
    for member in &members {
        let found = match member {
            Member::User(user) => known.get(user).map(|u| read.users.insert(u.id)),
            Member::Group(group) => groups.get(group).map(|g| read.groups.insert(*g)),
        };
        if found.is_none() {
            job.warnings.push(clean::ignored_member(
                external,
                member.id(),
                "a member that is not a user or group of this directory was ignored (an external account, or a record skipped this run)",
            ));
        }
    }
    read
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

mod phase_1;
use phase_1::phase_1_users;

#[cfg(test)]
mod tests;
