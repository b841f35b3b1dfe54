//! Constraints the database itself enforces, whatever the code above it does.

use crate::{on_both_databases, support::Fixture};
use chrono::Utc;
use entity::{device, directory_group, directory_user, enums::UserStatus, integration};
use sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel, ModelTrait, Set};

on_both_databases!(
    integration_names_are_unique_case_insensitively,
    user_and_group_external_ids_are_unique_per_integration,
    device_serial_numbers_are_unique,
    a_user_with_a_device_cannot_be_deleted,
    deleting_an_integration_detaches_users_and_drops_groups,
);

async fn integration_names_are_unique_case_insensitively(fx: Fixture) {
    fx.integration("Contoso").create().await;
    let mut dup = fx.integration("Other").create().await.into_active_model();
    dup.name = Set("CONTOSO".into());
    dup.name_key = Set("contoso".into());
    assert!(dup.update(&fx.db).await.is_err(), "name_key is unique");
}

async fn user_and_group_external_ids_are_unique_per_integration(fx: Fixture) {
    let a = fx.integration("A").create().await;
    let b = fx.integration("B").create().await;
    fx.user(&a, "same@example.com").create().await;
    // The same external id in another integration is fine.
    fx.user(&b, "same@example.com").create().await;
    let again = directory_user::ActiveModel {
        integration_id: Set(Some(a.id)),
        origin_name: Set("A".into()),
        external_id: Set("ext-same@example.com".into()),
        user_name: Set("other@example.com".into()),
        user_name_key: Set("other@example.com".into()),
        display_name: Set("x".into()),
        status: Set(UserStatus::Active),
        created_at: Set(Utc::now()),
        updated_at: Set(Utc::now()),
        ..Default::default()
    };
    assert!(again.insert(&fx.db).await.is_err());
    fx.group(&a, "Sales", &[]).await;
    fx.group(&b, "Sales", &[]).await;
    let again = directory_group::ActiveModel {
        integration_id: Set(a.id),
        external_id: Set("group-Sales".into()),
        display_name: Set("Sales 2".into()),
        created_at: Set(Utc::now()),
        updated_at: Set(Utc::now()),
        ..Default::default()
    };
    assert!(again.insert(&fx.db).await.is_err());
}

async fn device_serial_numbers_are_unique(fx: Fixture) {
    fx.device("C02SAME", None).await;
    let mut second = fx.device("C02OTHER", None).await.into_active_model();
    second.serial_number = Set("C02SAME".into());
    assert!(second.update(&fx.db).await.is_err());
}

async fn a_user_with_a_device_cannot_be_deleted(fx: Fixture) {
    let a = fx.integration("A").create().await;
    let adele = fx.user(&a, "adele@example.com").create().await;
    let free = fx.user(&a, "free@example.com").create().await;
    fx.device("C02KEEP", Some(&adele)).await;
    assert!(
        adele.clone().delete(&fx.db).await.is_err(),
        "R9/R14: archive, never delete"
    );
    assert!(free.delete(&fx.db).await.is_ok());
    assert!(
        directory_user::Entity::find_by_id(adele.id)
            .one(&fx.db)
            .await
            .unwrap()
            .is_some()
    );
}

async fn deleting_an_integration_detaches_users_and_drops_groups(fx: Fixture) {
    let a = fx.integration("A").create().await;
    let adele = fx.user(&a, "adele@example.com").create().await;
    fx.group(&a, "Sales", &[&adele]).await;
    let mac = fx.device("C02DET", Some(&adele)).await;
    integration::Entity::delete_by_id(a.id)
        .exec(&fx.db)
        .await
        .unwrap();
    let kept = directory_user::Entity::find_by_id(adele.id)
        .one(&fx.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.integration_id, None);
    assert_eq!(kept.origin_name, "A");
    assert!(
        directory_group::Entity::find()
            .all(&fx.db)
            .await
            .unwrap()
            .is_empty()
    );
    let mac = device::Entity::find_by_id(mac.id)
        .one(&fx.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(mac.user_id, Some(adele.id));
}

#[tokio::test]
async fn sqlite_runs_with_wal_and_foreign_keys() {
    use sea_orm::{ConnectionTrait, Statement};
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("nested/dir/p.db").display()
    );
    let db = dirgate::db::connect(&url).await.unwrap();
    let pragma = |name: &'static str| {
        let db = db.clone();
        async move {
            let row = db
                .query_one_raw(Statement::from_string(
                    db.get_database_backend(),
                    format!("PRAGMA {name}"),
                ))
                .await
                .unwrap()
                .unwrap();
            row.try_get_by_index::<String>(0)
                .or_else(|_| row.try_get_by_index::<i64>(0).map(|v| v.to_string()))
                .unwrap()
        }
    };
    assert_eq!(pragma("journal_mode").await, "wal");
    assert_eq!(pragma("foreign_keys").await, "1");
    assert_eq!(pragma("busy_timeout").await, "10000");
}
