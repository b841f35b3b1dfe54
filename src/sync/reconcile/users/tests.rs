use super::{
    super::testing::{Fixture, person},
    *,
};

#[tokio::test]
async fn apply_users_page_keeps_the_last_of_a_user_listed_twice_with_its_aliases() {
    let fx = Fixture::new().await;
    let mut first = person(1);
    first.aliases = vec!["old@example.com".into()];
    let mut last = person(1);
    last.display_name = "Last".into();
    last.aliases = vec!["new@example.com".into(), "NEW@example.com".into()];
    let mut counts = Counts::default();
    let touched = apply_users_page(
        &fx.db,
        &fx.integration,
        vec![first, last],
        &mut counts,
        None,
        &fx.warnings,
    )
    .await
    .unwrap();
    assert_eq!((touched.len(), counts.users_created), (1, 1));
    let stored = fx.user("u1").await.unwrap();
    assert_eq!(stored.display_name, "Last");
    let (_, aliases) = crate::store::users::rows_of(&fx.db, fx.integration.id, &["u1".into()])
        .await
        .unwrap();
    assert_eq!(
        aliases[&stored.id],
        ["new@example.com"],
        "one alias per match key"
    );
}

#[tokio::test]
async fn apply_users_page_restores_an_archived_user_and_skips_unchanged_ones() {
    let fx = Fixture::new().await;
    let ids = fx.users(2).await;
    fx.give_device(ids[0]).await;
    crate::directory::users::remove_or_archive(&fx.db, &ids[..1])
        .await
        .unwrap();
    let mut known = fingerprints(&fx.db, fx.integration.id).await.unwrap();
    let mut counts = Counts::default();
    let touched = apply_users_page(
        &fx.db,
        &fx.integration,
        vec![person(0), person(1)],
        &mut counts,
        Some(&mut known),
        &fx.warnings,
    )
    .await
    .unwrap();
    assert_eq!(touched, [ids[0]], "the unchanged user is not written");
    assert_eq!((counts.users_restored, counts.users_updated), (1, 0));
    assert_eq!(fx.user("u0").await.unwrap().status, UserStatus::Active);
    assert_eq!(known["u0"].status, UserStatus::Active);
}
