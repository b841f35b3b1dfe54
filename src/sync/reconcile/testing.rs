//! What the reconciler's unit tests share: an in-memory SQLite database migrated the real way
//! with one Entra integration, users made by name, and directories held in memory that serve
//! pages through the provider traits (the HTTP clients are tested against the fake directory
//! in `tests/it`).

use super::{Counts, DeltaLinks, Job, Threshold, users::apply_users_page};
use crate::{
    directory::now,
    providers::{
        DirectoryProvider, ExternalGroup, ExternalUser, GroupChange, IncrementalProvider, Member,
        MemberChange, ObjectChange, ProviderError, ProviderPage,
    },
};
use entity::{
    device, directory_group, directory_user,
    enums::{DevicePlatform, DirectoryKind, IntegrationStatus, UserStatus},
    group_membership, integration,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    Set,
};
use std::{
    collections::HashMap,
    sync::atomic::{AtomicUsize, Ordering},
};
use tokio_util::sync::CancellationToken;

pub(super) struct Fixture {
    pub db: DatabaseConnection,
    pub integration: integration::Model,
    pub stop: CancellationToken,
    pub warnings: std::sync::Arc<crate::providers::clean::Warnings>,
}

fn ignore(_: &Counts) {}

/// A user of the directory, by number.
pub(super) fn person(n: usize) -> ExternalUser {
    ExternalUser {
        external_id: format!("u{n}"),
        user_name: format!("u{n}@example.com"),
        email: Some(format!("u{n}@example.com")),
        display_name: format!("User {n}"),
        given_name: None,
        family_name: None,
        job_title: None,
        department: None,
        employee_id: None,
        employee_type: None,
        suspended: false,
        aliases: vec![],
        ..ExternalUser::default()
    }
}

/// A group of the directory, by number, its members not listed inline.
pub(super) fn team(n: usize) -> ExternalGroup {
    ExternalGroup {
        external_id: format!("g{n}"),
        display_name: format!("Group {n}"),
        email: None,
        description: None,
        members: None,
    }
}

impl Fixture {
    pub async fn new() -> Self {
        let db = crate::db::connect("sqlite::memory:").await.unwrap();
        Self::on(db).await
    }

    /// On PostgreSQL (`DIRGATE_TEST_POSTGRES_URL`, or the local server), in a schema of its
    /// own that [`Fixture::drop_schema`] removes: for what only PostgreSQL does (writers at
    /// once).
    pub async fn postgres(name: &str) -> Self {
        let url = std::env::var("DIRGATE_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let schema = format!("reconcile_{name}_{}", std::process::id());
        let admin = crate::db::connect(&url)
            .await
            .expect("PostgreSQL is required");
        for sql in [
            format!("DROP SCHEMA IF EXISTS {schema} CASCADE"),
            format!("CREATE SCHEMA {schema}"),
        ] {
            sea_orm::ConnectionTrait::execute_unprepared(&admin, &sql)
                .await
                .unwrap();
        }
        Self::on(crate::db::connect_with(&url, Some(&schema)).await.unwrap()).await
    }

    /// Drops the schema of a [`Fixture::postgres`].
    pub async fn drop_schema(self) {
        use sea_orm::ConnectionTrait;
        let schema: String = self
            .db
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DatabaseBackend::Postgres,
                "SELECT current_schema()::text AS s",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get("", "s")
            .unwrap();
        self.db
            .execute_unprepared(&format!("DROP SCHEMA {schema} CASCADE"))
            .await
            .unwrap();
    }

    async fn on(db: DatabaseConnection) -> Self {
        crate::db::migrate(&db).await.unwrap();
        let at = now();
        let integration = integration::ActiveModel {
            awaiting_scope: sea_orm::Set(false),
            name: Set("Contoso".into()),
            name_key: Set("contoso".into()),
            kind: Set(DirectoryKind::EntraId),
            status: Set(IntegrationStatus::Active),
            auto_assign_devices: Set(false),
            created_at: Set(at),
            updated_at: Set(at),
            ..Default::default()
        }
        .insert(&db)
        .await
        .unwrap();
        Self {
            db,
            integration,
            stop: CancellationToken::new(),
            warnings: Default::default(),
        }
    }

    pub fn job(&self, confirmed: bool) -> Job<'_> {
        Job {
            db: &self.db,
            integration: &self.integration,
            threshold: Threshold::default(),
            confirmed,
            progress: &ignore,
            stop: &self.stop,
            warnings: &self.warnings,
        }
    }

    pub fn links(&self) -> Option<DeltaLinks> {
        Some(DeltaLinks {
            users: "users-link".into(),
            groups: "groups-link".into(),
        })
    }

    /// Stores `person(0..n)`; returns their ids in order.
    pub async fn users(&self, n: usize) -> Vec<i64> {
        let people: Vec<ExternalUser> = (0..n).map(person).collect();
        apply_users_page(
            &self.db,
            &self.integration,
            people,
            &mut Counts::default(),
            None,
            &self.warnings,
        )
        .await
        .unwrap();
        let by_external: HashMap<String, i64> = directory_user::Entity::find()
            .all(&self.db)
            .await
            .unwrap()
            .into_iter()
            .map(|u| (u.external_id, u.id))
            .collect();
        (0..n).map(|i| by_external[&format!("u{i}")]).collect()
    }

    pub async fn give_device(&self, user: i64) {
        let at = now();
        device::ActiveModel {
            serial_number: Set(format!("SN{user}")),
            name: Set("Mac".into()),
            platform: Set(DevicePlatform::Macos),
            user_id: Set(Some(user)),
            created_at: Set(at),
            updated_at: Set(at),
            ..Default::default()
        }
        .insert(&self.db)
        .await
        .unwrap();
    }

    pub async fn count_users(&self, status: UserStatus) -> u64 {
        directory_user::Entity::find()
            .filter(directory_user::Column::Status.eq(status))
            .count(&self.db)
            .await
            .unwrap()
    }

    pub async fn user(&self, external_id: &str) -> Option<directory_user::Model> {
        directory_user::Entity::find()
            .filter(directory_user::Column::ExternalId.eq(external_id))
            .one(&self.db)
            .await
            .unwrap()
    }

    pub async fn group(&self, external_id: &str) -> Option<directory_group::Model> {
        directory_group::Entity::find()
            .filter(directory_group::Column::ExternalId.eq(external_id))
            .one(&self.db)
            .await
            .unwrap()
    }

    /// The external ids of a group's members, sorted.
    pub async fn members(&self, group: &str) -> Vec<String> {
        let Some(group) = self.group(group).await else {
            return vec![];
        };
        let ids: Vec<i64> = group_membership::Entity::find()
            .filter(group_membership::Column::GroupId.eq(group.id))
            .all(&self.db)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.user_id)
            .collect();
        let mut names: Vec<String> = directory_user::Entity::find()
            .filter(directory_user::Column::Id.is_in(ids))
            .all(&self.db)
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.external_id)
            .collect();
        names.sort();
        names
    }
}

/// A directory held in memory, served `per_page` items at a time; `fail_members` makes every
/// member read fail (a provider that breaks part-way).
#[derive(Default)]
pub(super) struct Directory {
    pub users: Vec<ExternalUser>,
    pub groups: Vec<ExternalGroup>,
    pub members: HashMap<String, Vec<String>>,
    pub per_page: usize,
    pub fail_members: bool,
    /// How long each member page takes to answer.
    pub member_delay: std::time::Duration,
    /// Member pages in flight now, the most at once, and how many were asked for.
    pub in_flight: AtomicUsize,
    pub most: AtomicUsize,
    pub calls: AtomicUsize,
}

impl Directory {
    /// The most member pages that were in flight at once.
    pub fn most_in_flight(&self) -> usize {
        self.most.load(Ordering::SeqCst)
    }

    /// Member pages asked for.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

fn page_of<T: Clone>(items: &[T], cursor: Option<String>, per: usize) -> ProviderPage<T> {
    let start: usize = cursor.and_then(|c| c.parse().ok()).unwrap_or(0);
    let end = (start + per.max(1)).min(items.len());
    ProviderPage {
        items: items[start..end].to_vec(),
        next: (end < items.len()).then(|| end.to_string()),
        delta_link: (end >= items.len()).then(|| "end".to_owned()),
    }
}

impl DirectoryProvider for Directory {
    async fn users_page(
        &self,
        cursor: Option<String>,
    ) -> Result<ProviderPage<ExternalUser>, ProviderError> {
        Ok(page_of(&self.users, cursor, self.per_page))
    }

    async fn groups_page(
        &self,
        cursor: Option<String>,
    ) -> Result<ProviderPage<ExternalGroup>, ProviderError> {
        Ok(page_of(&self.groups, cursor, self.per_page))
    }

    async fn members_page(
        &self,
        group: &str,
        cursor: Option<String>,
    ) -> Result<ProviderPage<Member>, ProviderError> {
        if self.fail_members {
            return Err(ProviderError::Http {
                provider: "test",
                url: format!("/groups/{group}/members"),
                status: 503,
                detail: "unavailable".into(),
            });
        }
        self.calls.fetch_add(1, Ordering::SeqCst);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        if !self.member_delay.is_zero() {
            tokio::time::sleep(self.member_delay).await;
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        let members: Vec<Member> = self
            .members
            .get(group)
            .into_iter()
            .flatten()
            .map(|m| Member::User(m.clone()))
            .collect();
        Ok(page_of(&members, cursor, self.per_page))
    }
}

/// A change in an in-memory incremental read: the object as it now is, or its removal.
#[derive(Debug, Clone)]
pub(super) enum Changed<T> {
    Now(T),
    Removed(String),
}

impl ObjectChange<ExternalUser> for Changed<ExternalUser> {
    fn external_id(&self) -> &str {
        match self {
            Changed::Now(u) => &u.external_id,
            Changed::Removed(id) => id,
        }
    }
    fn is_removal(&self) -> bool {
        matches!(self, Changed::Removed(_))
    }
    fn merged(self, _: Option<&ExternalUser>) -> ExternalUser {
        match self {
            Changed::Now(u) => u,
            Changed::Removed(id) => panic!("merged a removal of {id}"),
        }
    }
}

/// A group change with its membership changes.
#[derive(Debug, Clone)]
pub(super) struct GroupChanged(pub Changed<ExternalGroup>, pub Vec<MemberChange>);

impl ObjectChange<ExternalGroup> for GroupChanged {
    fn external_id(&self) -> &str {
        match &self.0 {
            Changed::Now(g) => &g.external_id,
            Changed::Removed(id) => id,
        }
    }
    fn is_removal(&self) -> bool {
        matches!(self.0, Changed::Removed(_))
    }
    fn merged(self, _: Option<&ExternalGroup>) -> ExternalGroup {
        match self.0 {
            Changed::Now(g) => g,
            Changed::Removed(id) => panic!("merged a removal of {id}"),
        }
    }
}

impl GroupChange for GroupChanged {
    fn member_changes(&self) -> Vec<MemberChange> {
        self.1.clone()
    }
}

/// An incremental read held in memory: one page of user changes and one of group changes,
/// each ending in a new link; `expired` answers as a provider whose link expired.
#[derive(Default)]
pub(super) struct Changes {
    pub users: Vec<Changed<ExternalUser>>,
    pub groups: Vec<GroupChanged>,
    pub expired: bool,
}

impl IncrementalProvider for Changes {
    type UserChange = Changed<ExternalUser>;
    type GroupChange = GroupChanged;

    fn full_read(&self) -> impl DirectoryProvider + '_ {
        Directory::default()
    }

    async fn user_changes(
        &self,
        _: &str,
    ) -> Result<ProviderPage<Changed<ExternalUser>>, ProviderError> {
        if self.expired {
            return Err(ProviderError::DeltaExpired {
                provider: "test",
                detail: "syncStateNotFound".into(),
            });
        }
        Ok(ProviderPage {
            items: self.users.clone(),
            next: None,
            delta_link: Some("users-next".into()),
        })
    }

    async fn group_changes(&self, _: &str) -> Result<ProviderPage<GroupChanged>, ProviderError> {
        Ok(ProviderPage {
            items: self.groups.clone(),
            next: None,
            delta_link: Some("groups-next".into()),
        })
    }
}
