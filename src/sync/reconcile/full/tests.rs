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
        ..Default::default()
    }
}

#[tokio::test]
async fn phase_1_writes_new_and_changed_users_only() {
    let fx = Fixture::new().await;
    let mut known = fingerprints(&fx.db, fx.integration.id).await.unwrap();
    let job = fx.job(false);
    let tally = Tally::new(&job);
    let read = phase_1_users(&job, &directory(5, 2), &mut known, &tally)
        .await
        .unwrap();
    let counts = tally.into_counts();
    assert_eq!((counts.users_created, counts.pages_read), (5, 3));
    assert_eq!((read.seen.len(), read.touched.len()), (5, 5));
    assert_eq!(read.link.as_deref(), Some("end"));

    let mut changed = directory(5, 2);
    changed.users[3].department = Some("Sales".into());
    changed.users[4].suspended = true;
    let tally = Tally::new(&job);
    let read = phase_1_users(&job, &changed, &mut known, &tally)
        .await
        .unwrap();
    let counts = tally.into_counts();
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

/// On PostgreSQL two user transactions write at once; a user listed in every page (with
/// a new department each time) is in every batch, so each batch must wait for the one
/// before: created once, and stored as last listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phase_1_writers_at_once_store_a_user_listed_again_as_last_listed() {
    let fx = Fixture::postgres("writers").await;
    let per_page = 1_000;
    let pages = 3 * USERS_PER_TRANSACTION / per_page;
    let mut users = Vec::new();
    for page in 0..pages {
        users.extend((page * per_page..(page + 1) * per_page - 1).map(person));
        let mut again = person(usize::MAX);
        again.department = Some(format!("Page {page}"));
        users.push(again);
    }
    let distinct = pages * (per_page - 1) + 1;
    let provider = Directory {
        users,
        per_page,
        ..Default::default()
    };
    let mut known = fingerprints(&fx.db, fx.integration.id).await.unwrap();
    let job = fx.job(false);
    let tally = Tally::new(&job);
    let read = phase_1_users(&job, &provider, &mut known, &tally)
        .await
        .unwrap();
    let counts = tally.into_counts();
    assert_eq!(
        counts.users_created as usize, distinct,
        "each user created once"
    );
    assert_eq!(counts.pages_read as usize, pages);
    assert_eq!(read.seen.len(), distinct);
    assert_eq!(known.len(), distinct);
    let again = fx.user(&person(usize::MAX).external_id).await.unwrap();
    assert_eq!(
        again.department.as_deref(),
        Some(format!("Page {}", pages - 1).as_str()),
        "the last listing is the one stored"
    );
    fx.drop_schema().await;
}

#[tokio::test]
async fn phase_2_merges_a_group_listed_twice_and_sends_the_others_to_be_read() {
    let fx = Fixture::new().await;
    let mut first = team(0);
    first.members = Some(vec![
        Member::User("u0".into()),
        Member::User("unknown".into()),
    ]);
    let mut again = team(0);
    again.members = Some(vec![Member::User("u1".into())]);
    let provider = Directory {
        groups: vec![first, team(1), again, team(1)],
        per_page: 1,
        ..Default::default()
    };
    let job = fx.job(false);
    let tally = Tally::new(&job);
    let (to_read, mut listed) = mpsc::unbounded_channel();
    let read = phase_2_groups(&job, &provider, &tally, to_read)
        .await
        .unwrap();
    assert_eq!(read.seen.len(), 2);
    let users =
        |ids: &[&str]| -> Vec<Member> { ids.iter().map(|u| Member::User((*u).into())).collect() };
    assert_eq!(read.inline["g0"], users(&["u0", "unknown", "u1"]));
    assert!(!read.inline.contains_key("g1"));
    assert_eq!(listed.recv().await.as_deref(), Some("g1"));
    assert_eq!(
        listed.recv().await,
        None,
        "g1 is read once, and the listing ended"
    );
    assert_eq!(tally.into_counts().groups_created, 2);
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

    // g0 read by the member reader, g1 listed inline.
    let known = fingerprints(&fx.db, fx.integration.id).await.unwrap();
    let tally = Tally::new(&job);
    let buffered = Semaphore::new(MEMBERS_BUFFERED);
    let (tx, read) = mpsc::unbounded_channel();
    // g0 also lists g1 as a nested group, and itself (never kept).
    let g0 = vec![
        Member::User("u3".into()),
        Member::Group("g1".into()),
        Member::Group("g0".into()),
    ];
    tx.send(("g0".to_owned(), g0, 1)).unwrap();
    drop(tx);
    let inline = HashMap::from([(
        "g1".to_owned(),
        vec![Member::User("u0".into()), Member::User("u2".into())],
    )]);
    let stored = phase_3_memberships(&job, &known, inline, read, &buffered, &tally)
        .await
        .unwrap();
    assert_eq!(stored.len(), 2);
    assert_eq!(fx.members("g0").await, ["u3"]);
    assert_eq!(fx.members("g1").await, ["u0", "u2"]);
    let nested = crate::store::memberships::children_of(&fx.db, &[stored["g0"]])
        .await
        .unwrap();
    assert_eq!(
        nested[&stored["g0"]],
        HashSet::from([stored["g1"]]),
        "g1 nested in g0, g0 not in itself"
    );
    assert_eq!(
        buffered.available_permits(),
        MEMBERS_BUFFERED + 1,
        "what the reader took is given back"
    );
}

/// A directory of `groups` groups of three members each, whose member reads take `delay`.
fn slow_directory(groups: usize, delay: std::time::Duration) -> Directory {
    Directory {
        groups: (0..groups).map(team).collect(),
        members: (0..groups)
            .map(|g| (format!("g{g}"), vec!["a".into(), "b".into(), "c".into()]))
            .collect(),
        per_page: 2,
        member_delay: delay,
        ..Default::default()
    }
}

#[tokio::test]
async fn member_lists_are_read_many_at_once_to_their_last_page() {
    let fx = Fixture::new().await;
    let job = fx.job(false);
    let tally = Tally::new(&job);
    let provider = slow_directory(200, std::time::Duration::from_millis(20));
    let (to_read, groups) = mpsc::unbounded_channel();
    for g in 0..200 {
        to_read.send(format!("g{g}")).unwrap();
    }
    drop(to_read);
    let (out, mut read) = mpsc::unbounded_channel();
    let buffered = Semaphore::new(MEMBERS_BUFFERED);
    read_members(&job, &provider, groups, out, &buffered, &tally)
        .await
        .unwrap();
    let most = provider.most_in_flight();
    assert!(
        (2..=MEMBER_READS).contains(&most),
        "{most} member reads at once"
    );
    let mut lists = 0;
    while let Ok((_, members, taken)) = read.try_recv() {
        assert_eq!((members.len(), taken), (3, 3));
        lists += 1;
    }
    assert_eq!(lists, 200);
    assert_eq!(tally.into_counts().pages_read, 400, "two pages per group");
}

#[tokio::test]
async fn member_reads_wait_while_the_buffer_is_full() {
    let fx = Fixture::new().await;
    let job = fx.job(false);
    let tally = Tally::new(&job);
    let provider = slow_directory(50, std::time::Duration::ZERO);
    let (to_read, groups) = mpsc::unbounded_channel();
    for g in 0..50 {
        to_read.send(format!("g{g}")).unwrap();
    }
    drop(to_read);
    let (out, mut read) = mpsc::unbounded_channel();
    // Room for five members: two groups' worth, then the reads wait.
    let buffered = Semaphore::new(5);
    let reader = read_members(&job, &provider, groups, out, &buffered, &tally);
    tokio::pin!(reader);
    let waited = tokio::time::timeout(std::time::Duration::from_millis(200), &mut reader).await;
    assert!(waited.is_err(), "the reader waits for room");
    // Room for five members is full after two groups; reads already started run to
    // their end (how many started first is up to the scheduler), but no more begin:
    // nowhere near the 100 pages of all 50 groups.
    let before = provider.calls();
    assert!(
        before < 40,
        "{before} member pages read before phase 3 took any"
    );
    // Phase 3 takes them as they come and frees the room.
    let consume = async {
        let mut lists = 0;
        while let Some((_, _, taken)) = read.recv().await {
            buffered.add_permits(taken);
            lists += 1;
        }
        lists
    };
    let (done, lists) = tokio::join!(reader, consume);
    done.unwrap();
    assert_eq!(lists, 50);
}

#[tokio::test]
async fn a_stop_ends_the_member_reads_at_the_next_group() {
    let fx = Fixture::new().await;
    let job = fx.job(false);
    let tally = Tally::new(&job);
    let provider = slow_directory(1_000, std::time::Duration::from_millis(5));
    let (to_read, groups) = mpsc::unbounded_channel();
    for g in 0..1_000 {
        to_read.send(format!("g{g}")).unwrap();
    }
    let (out, _read) = mpsc::unbounded_channel();
    let buffered = Semaphore::new(MEMBERS_BUFFERED);
    let stop = fx.stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        stop.cancel();
    });
    let err = read_members(&job, &provider, groups, out, &buffered, &tally)
        .await
        .unwrap_err();
    assert!(matches!(err, ReconcileError::Stopped));
    assert!(provider.calls() < 2_000, "stopped long before the end");
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
