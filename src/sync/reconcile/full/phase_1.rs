//! Phase 1 of a full read: users, page by page; unchanged users (equal fingerprints) are not
//! written. On PostgreSQL up to [`USER_WRITERS`] transactions write at once (their data
//! overlaps, their events wait for each other's commit); a batch that lists a user still being
//! written waits for that write, so the last listing of a user is the one stored.

use super::{
    super::{
        Counts,
        read_ahead::{Fetched, cut_short, overlap, read_ahead},
        users::{Fingerprints, UsersPlan, UsersWritten, plan_users, write_users},
    },
    Job, ReconcileError, Tally, USER_WRITERS, USERS_PER_TRANSACTION,
};
use crate::{
    error::DomainResult,
    providers::{DirectoryProvider, ExternalUser},
    store::{self, batch::refresh_statistics},
};
use futures_util::{StreamExt, stream::FuturesUnordered};
use sea_orm::DatabaseBackend;
use std::{collections::HashSet, future::Future, pin::Pin};
use tokio::sync::mpsc;

/// What phase 1 read.
pub(super) struct UsersRead {
    /// The stored ids of every user the directory listed.
    pub seen: HashSet<i64>,
    /// Users created or changed.
    pub touched: Vec<i64>,
    /// Where the next incremental read of users starts, if the provider gave it.
    pub link: Option<String>,
}

/// A write of one batch, when it ends: what it wrote, the users it planned and listed, and
/// its counts.
struct Ended {
    written: DomainResult<UsersWritten>,
    planned: Vec<String>,
    listed: Vec<String>,
    done: Counts,
}

/// The batches being written, at most `most` at once, and what the ended ones wrote.
struct Writes<'a> {
    writing: FuturesUnordered<Pin<Box<dyn Future<Output = Ended> + Send + 'a>>>,
    /// The external ids of the users being written.
    in_flight: HashSet<String>,
    most: usize,
    read: UsersRead,
    tally: &'a Tally<'a>,
}

impl<'a> Writes<'a> {
    /// Starts writing `plan` (a batch listing `listed`).
    fn start(&mut self, job: &'a Job<'a>, plan: UsersPlan, listed: Vec<String>, mut done: Counts) {
        self.in_flight
            .extend(plan.external_ids().map(str::to_owned));
        self.writing.push(Box::pin(async move {
            let planned: Vec<String> = plan.external_ids().map(str::to_owned).collect();
            let written = write_users(job.db, job.integration, plan, &mut done, job.warnings).await;
            Ended {
                written,
                planned,
                listed,
                done,
            }
        }));
    }

    /// A write has ended: what it wrote becomes known, and its users seen.
    fn ended(&mut self, ended: Ended, known: &mut Fingerprints) -> Result<(), ReconcileError> {
        for external in &ended.planned {
            self.in_flight.remove(external);
        }
        let written = ended.written?;
        known.extend(written.fingerprints);
        self.read.touched.extend(written.ids);
        let seen = ended
            .listed
            .iter()
            .filter_map(|ext| known.get(ext).map(|s| s.id));
        self.read.seen.extend(seen);
        self.tally.add(&ended.done);
        Ok(())
    }

    /// The next page; the writes in flight go on meanwhile.
    async fn next_page(
        &mut self,
        pages: &mut mpsc::Receiver<Fetched<ExternalUser>>,
        known: &mut Fingerprints,
    ) -> Result<Option<Fetched<ExternalUser>>, ReconcileError> {
        loop {
            let ended = tokio::select! {
                Some(ended) = self.writing.next(), if !self.writing.is_empty() => ended,
                page = pages.recv() => return Ok(page),
            };
            self.ended(ended, known)?;
        }
    }

    /// Waits until `batch` may start: fewer than `most` writes in flight, none of them
    /// writing a user the batch lists.
    async fn make_room(
        &mut self,
        batch: &[ExternalUser],
        known: &mut Fingerprints,
    ) -> Result<(), ReconcileError> {
        while self.writing.len() >= self.most
            || batch
                .iter()
                .any(|u| self.in_flight.contains(&u.external_id))
        {
            let Some(ended) = self.writing.next().await else {
                break;
            };
            self.ended(ended, known)?;
        }
        Ok(())
    }

    /// Waits for every write in flight.
    async fn finish(&mut self, known: &mut Fingerprints) -> Result<(), ReconcileError> {
        while let Some(ended) = self.writing.next().await {
            self.ended(ended, known)?;
        }
        Ok(())
    }
}

/// Phase 1: users, page by page (see the module).
pub(super) async fn phase_1_users<P: DirectoryProvider>(
    job: &Job<'_>,
    provider: &P,
    known: &mut Fingerprints,
    tally: &Tally<'_>,
) -> Result<UsersRead, ReconcileError> {
    let most = match store::backend(job.db) {
        DatabaseBackend::Postgres => USER_WRITERS,
        _ => 1,
    };
    let mut writes = Writes {
        writing: FuturesUnordered::new(),
        in_flight: HashSet::new(),
        most,
        read: UsersRead {
            seen: HashSet::new(),
            touched: Vec::new(),
            link: None,
        },
        tally,
    };
    // PostgreSQL plans the lookups of stored users from its statistics; during a bulk import
    // they lag far behind (a plan for 50 rows scanning 100,000). So they are refreshed once
    // the table has doubled, but only before a batch that looks users up: the users of a
    // first import are all new and need no lookup, and an `ANALYZE` of 100,000 users takes
    // about a third of a second.
    let mut analyze_at = 1_000;
    let (mut pages, reader) = read_ahead(|cursor| provider.users_page(cursor));
    let writer = async {
        loop {
            let Some(page) = writes.next_page(&mut pages, known).await? else {
                return Err(cut_short());
            };
            job.check_stop()?;
            let (batch, last, done) = gather(page?, &mut pages)?;
            writes.make_room(&batch, known).await?;
            let looks_up = batch.iter().any(|u| known.contains_key(&u.external_id));
            let created = tally.lock().users_created;
            if looks_up && created >= analyze_at {
                refresh_statistics(job.db, &["directory_users", "user_aliases"]).await?;
                analyze_at = created.saturating_mul(2);
            }
            let listed: Vec<String> = batch.iter().map(|u| u.external_id.clone()).collect();
            let plan = plan_users(job.integration, batch, Some(known));
            writes.start(job, plan, listed, done);
            if let Some(link) = last {
                writes.finish(known).await?;
                return Ok(link);
            }
        }
    };
    let link = overlap(reader, writer).await?;
    Ok(UsersRead {
        link,
        ..writes.read
    })
}

/// One transaction's users: `page`'s, and those of the pages already fetched after it, up to
/// [`USERS_PER_TRANSACTION`] (a bigger transaction writes each index page it touches once, not
/// once per provider page). With the listing's end, `Some` of its delta link.
#[allow(clippy::type_complexity)]
fn gather(
    mut page: crate::providers::ProviderPage<ExternalUser>,
    pages: &mut mpsc::Receiver<Fetched<ExternalUser>>,
) -> Result<(Vec<ExternalUser>, Option<Option<String>>, Counts), ReconcileError> {
    let mut batch = std::mem::take(&mut page.items);
    let mut done = Counts {
        pages_read: 1,
        ..Counts::default()
    };
    while page.next.is_some() && batch.len() < USERS_PER_TRANSACTION {
        let Ok(more) = pages.try_recv() else { break };
        page = more?;
        batch.append(&mut page.items);
        done.pages_read += 1;
    }
    let last = page.next.is_none().then_some(page.delta_link);
    Ok((batch, last, done))
}
