//! The one ending of every reconciliation, once the whole read succeeded (R15): hold the sync
//! when it would remove more than the threshold, else remove what the directory no longer
//! lists — users through `directory::users::remove_or_archive` (R14), then groups.

use super::{Counts, DeltaLinks, Job, Outcome, ReconcileError, Report, groups::remove_groups};
use crate::{directory::users::remove_or_archive, error::DomainResult};
use sea_orm::DatabaseConnection;

/// Users removed or archived per transaction: bounds how long one removal transaction holds
/// its locks.
pub(super) const REMOVAL_BATCH: usize = 1_000;

/// What a complete read found gone.
#[derive(Debug, Default)]
pub(super) struct Removals {
    /// Users the directory no longer lists (none of them archived already).
    pub users: Vec<i64>,
    /// The integration's users that are not archived, before the removals.
    pub present: u64,
    /// Groups the directory no longer lists.
    pub groups: Vec<i64>,
}

/// Whether removing `would_remove` of `present` users needs a confirmation (R15).
fn must_hold(job: &Job<'_>, would_remove: u64, present: u64) -> bool {
    !job.confirmed
        && would_remove > job.threshold.min_users as u64
        && would_remove * 100 > present * job.threshold.percent as u64
}

/// Ends a reconciliation whose read completed: held (nothing removed, no delta links kept, so
/// the next run reads the same changes again) or applied with its removals.
pub(super) async fn finish(
    job: &Job<'_>,
    mut counts: Counts,
    touched: Vec<i64>,
    removals: Removals,
    delta: Option<DeltaLinks>,
) -> Result<Report, ReconcileError> {
    let would_remove = removals.users.len() as u64;
    if must_hold(job, would_remove, removals.present) {
        return Ok(Report {
            outcome: Outcome::Held {
                counts,
                would_remove,
                of: removals.present,
            },
            touched,
            delta: None,
        });
    }
    job.check_stop()?;
    remove_users(job.db, &removals.users, &mut counts).await?;
    remove_groups(job.db, &removals.groups, &mut counts).await?;
    (job.progress)(&counts);
    Ok(Report {
        outcome: Outcome::Applied(counts),
        touched,
        delta,
    })
}

/// Users gone from the directory (R14): `directory::users::remove_or_archive`, one
/// transaction per [`REMOVAL_BATCH`].
async fn remove_users(
    db: &DatabaseConnection,
    missing: &[i64],
    counts: &mut Counts,
) -> DomainResult<()> {
    for chunk in missing.chunks(REMOVAL_BATCH) {
        let txn = crate::db::begin_write(db).await?;
        let departed = remove_or_archive(&txn, chunk).await?;
        txn.commit().await?;
        counts.users_archived += departed.archived as i32;
        counts.users_removed += departed.removed as i32;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{super::testing::Fixture, *};
    use entity::enums::UserStatus;

    #[tokio::test]
    async fn finish_holds_past_the_threshold_and_removes_nothing() {
        let fx = Fixture::new().await;
        let users = fx.users(50).await;
        let job = fx.job(false);
        let removals = Removals {
            users: users[..11].to_vec(),
            present: 50,
            groups: vec![],
        };
        let report = finish(&job, Counts::default(), vec![], removals, fx.links())
            .await
            .unwrap();
        match report.outcome {
            Outcome::Held {
                would_remove, of, ..
            } => assert_eq!((would_remove, of), (11, 50)),
            other => panic!("expected a hold, got {other:?}"),
        }
        assert!(report.delta.is_none(), "a held run keeps no delta links");
        assert_eq!(fx.count_users(UserStatus::Active).await, 50);
    }

    #[tokio::test]
    async fn finish_at_the_threshold_or_when_confirmed_removes_and_archives() {
        let fx = Fixture::new().await;
        let users = fx.users(50).await;
        fx.give_device(users[0]).await;
        // 10 of 50 is 20%: not more than the threshold.
        let report = finish(
            &fx.job(false),
            Counts::default(),
            vec![],
            Removals {
                users: users[..10].to_vec(),
                present: 50,
                groups: vec![],
            },
            fx.links(),
        )
        .await
        .unwrap();
        let Outcome::Applied(counts) = report.outcome else {
            panic!("expected the removals applied")
        };
        assert_eq!((counts.users_removed, counts.users_archived), (9, 1));
        assert_eq!(report.delta, fx.links());
        assert_eq!(fx.count_users(UserStatus::Archived).await, 1);
        // 30 of the 40 left is past it, but confirmed.
        let report = finish(
            &fx.job(true),
            Counts::default(),
            vec![],
            Removals {
                users: users[10..40].to_vec(),
                present: 40,
                groups: vec![],
            },
            None,
        )
        .await
        .unwrap();
        assert!(matches!(report.outcome, Outcome::Applied(ref c) if c.users_removed == 30));
        assert_eq!(fx.count_users(UserStatus::Active).await, 10);
    }

    #[tokio::test]
    async fn finish_stops_before_removing_when_asked_to() {
        let fx = Fixture::new().await;
        let users = fx.users(5).await;
        fx.stop.cancel();
        let err = finish(
            &fx.job(false),
            Counts::default(),
            vec![],
            Removals {
                users,
                present: 5,
                groups: vec![],
            },
            None,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ReconcileError::Stopped));
        assert_eq!(fx.count_users(UserStatus::Active).await, 5);
    }
}
