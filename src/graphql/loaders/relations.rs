//! The loaders of one relation each: an integration or a user by id, a user's aliases, and
//! counts of children; and [`Prefetches`], what a page of users reads
//! beside its users. The statements are `store::related`'s.

use super::{
    AliasesOfUser, BatchLoader, CountKey, IntegrationKey, LoadResult, Prefetch, Prefetched,
    PrefetchedUser, UserKey, UserReference, Window, index_by,
};
use crate::{
    error::DomainError,
    graphql::projection::Projection,
    store::{
        nesting::{self, Transitive},
        page::Page,
        related::{self, Counted, MAX_KEYS, devices_of_users, group_into, groups_of_users},
    },
};
use async_graphql::dataloader::Loader;
use entity::{device, directory_group, directory_user, integration};
use sea_orm::DatabaseConnection;
use std::{collections::HashMap, sync::Arc};

impl Loader<IntegrationKey> for BatchLoader {
    type Value = integration::Model;
    type Error = DomainError;

    async fn load(&self, keys: &[IntegrationKey]) -> LoadResult<IntegrationKey, Self::Value> {
        self.batch(async {
            let mut out = HashMap::new();
            for chunk in keys.chunks(MAX_KEYS) {
                let ids: Vec<i64> = chunk.iter().map(|k| k.0).collect();
                let rows = related::integrations(&self.db, &ids).await?;
                out.extend(index_by(rows, |m| IntegrationKey(m.id)));
            }
            Ok(out)
        })
        .await
    }
}

impl Loader<UserKey> for BatchLoader {
    type Value = directory_user::Model;
    type Error = DomainError;

    async fn load(&self, keys: &[UserKey]) -> LoadResult<UserKey, Self::Value> {
        self.batch(async {
            let mut out = HashMap::new();
            for chunk in keys.chunks(MAX_KEYS) {
                let ids: Vec<i64> = chunk.iter().map(|k| k.0).collect();
                let rows = related::users(&self.db, &ids, self.projection.users).await?;
                out.extend(index_by(rows, |m| UserKey(m.id)));
            }
            Ok(out)
        })
        .await
    }
}

impl Loader<UserReference> for BatchLoader {
    type Value = directory_user::Model;
    type Error = DomainError;

    /// One statement for every reference of the wave: a reference names the user of its
    /// integration with that id, else the one with that user name.
    async fn load(&self, keys: &[UserReference]) -> LoadResult<UserReference, Self::Value> {
        self.batch(async {
            let mut out = HashMap::new();
            for chunk in keys.chunks(MAX_KEYS) {
                let mut integrations: Vec<i64> = chunk.iter().map(|k| k.integration).collect();
                integrations.sort_unstable();
                integrations.dedup();
                let references: Vec<String> = chunk.iter().map(|k| k.reference.clone()).collect();
                // The columns matched on are read whatever the document shows.
                let columns = self
                    .projection
                    .users
                    .with::<directory_user::Entity>(directory_user::Column::ExternalId)
                    .with::<directory_user::Entity>(directory_user::Column::UserNameKey);
                let rows = crate::store::reports::users_by_reference(
                    &self.db,
                    &integrations,
                    &references,
                    columns,
                )
                .await?;
                // The rows by (integration, id) and by (integration, user-name key): each key
                // is then two lookups, not a scan of the wave's rows.
                let mut by_id = HashMap::new();
                let mut by_name = HashMap::new();
                for row in &rows {
                    let Some(integration) = row.integration_id else {
                        continue;
                    };
                    by_id
                        .entry((integration, row.external_id.as_str()))
                        .or_insert(row);
                    by_name
                        .entry((integration, row.user_name_key.clone()))
                        .or_insert(row);
                }
                for key in chunk {
                    let by_id = by_id.get(&(key.integration, key.reference.as_str()));
                    let by_name = || by_name.get(&(key.integration, key.reference.to_lowercase()));
                    if let Some(row) = by_id.or_else(by_name) {
                        out.insert(key.clone(), (*row).clone());
                    }
                }
            }
            Ok(out)
        })
        .await
    }
}

/// Each user's page of one relation, read in one window (`None`: not read).
type Read<T> = Option<(Window, HashMap<i64, Arc<(Window, Page<T>)>>)>;

/// What was read beside some users: one statement per relation for all of them.
#[derive(Default)]
pub struct Prefetches {
    devices: Read<device::Model>,
    groups: Read<directory_group::Model>,
}

impl Prefetches {
    /// Reads `beside` of `users` (each id once), with the request's `projection`.
    pub async fn of(
        db: &DatabaseConnection,
        projection: Projection,
        users: impl IntoIterator<Item = i64>,
        beside: Prefetch,
    ) -> Result<Self, DomainError> {
        if beside == Prefetch::default() {
            return Ok(Self::default());
        }
        let users: std::collections::HashSet<i64> = users.into_iter().collect();
        let users: Vec<i64> = users.into_iter().collect();
        fn shared<T>(w: Window, pages: HashMap<i64, Page<T>>) -> Read<T> {
            let pages = pages.into_iter().map(|(k, v)| (k, Arc::new((w, v))));
            Some((w, pages.collect()))
        }
        let mut read = Self::default();
        if let Some(w) = beside.devices {
            let pages = devices_of_users(db, &users, w.args, w.dir, projection.devices).await?;
            read.devices = shared(w, pages);
        }
        if let Some(w) = beside.groups {
            let pages = groups_of_users(db, &users, w.args, w.dir, projection.groups).await?;
            read.groups = shared(w, pages);
        }
        Ok(read)
    }

    /// `user` with what was read beside it (an empty page where it has none).
    pub fn attach(&self, user: directory_user::Model) -> PrefetchedUser {
        fn own<T>(read: &Read<T>, id: i64) -> Option<Arc<(Window, Page<T>)>> {
            read.as_ref().map(|(window, pages)| {
                let page = pages.get(&id).cloned();
                page.unwrap_or_else(|| Arc::new((*window, Page::empty())))
            })
        }
        let related = Prefetched {
            devices: own(&self.devices, user.id),
            groups: own(&self.groups, user.id),
        };
        PrefetchedUser { user, related }
    }
}

impl Loader<AliasesOfUser> for BatchLoader {
    type Value = Vec<String>;
    type Error = DomainError;

    async fn load(&self, keys: &[AliasesOfUser]) -> LoadResult<AliasesOfUser, Self::Value> {
        self.batch(async {
            let mut out = HashMap::new();
            for chunk in keys.chunks(MAX_KEYS) {
                let users: Vec<i64> = chunk.iter().map(|k| k.0).collect();
                let rows = related::aliases_of(&self.db, &users).await?;
                out.extend(group_into(
                    chunk,
                    rows.into_iter()
                        .map(|(user, alias)| (AliasesOfUser(user), alias)),
                ));
            }
            Ok(out)
        })
        .await
    }
}

impl Loader<CountKey> for BatchLoader {
    type Value = u64;
    type Error = DomainError;

    async fn load(&self, keys: &[CountKey]) -> LoadResult<CountKey, u64> {
        self.batch(async {
            let mut out: HashMap<CountKey, u64> = keys.iter().map(|k| (*k, 0)).collect();
            for counted in [
                Counted::UsersOfIntegration,
                Counted::GroupsOfIntegration,
                Counted::MembersOfGroup,
                Counted::RunsOfIntegration,
                Counted::GroupsOfUser,
                Counted::DevicesOfUser,
                Counted::ChildrenOfGroup,
                Counted::ParentsOfGroup,
            ] {
                let parents: Vec<i64> = keys.iter().filter_map(|k| k.parent(counted)).collect();
                for chunk in parents.chunks(MAX_KEYS) {
                    for (parent, n) in related::count_by(&self.db, counted, chunk).await? {
                        out.insert(CountKey::of(counted, parent), n as u64);
                    }
                }
            }
            for (counted, key) in [
                (
                    Transitive::MembersOfGroup,
                    CountKey::MembersOfGroupTransitive as fn(i64) -> CountKey,
                ),
                (Transitive::GroupsOfUser, CountKey::GroupsOfUserTransitive),
            ] {
                let parents: Vec<i64> = keys
                    .iter()
                    .filter(|k| **k == key(k.id()))
                    .map(|k| k.id())
                    .collect();
                for (parent, n) in nesting::transitive_counts(&self.db, counted, &parents).await? {
                    out.insert(key(parent), n as u64);
                }
            }
            let managers: Vec<i64> = keys
                .iter()
                .filter(|k| matches!(k, CountKey::ReportsOfUser(_)))
                .map(|k| k.id())
                .collect();
            for chunk in managers.chunks(MAX_KEYS) {
                for (manager, n) in crate::store::reports::count_reports(&self.db, chunk).await? {
                    out.insert(CountKey::ReportsOfUser(manager), n as u64);
                }
            }
            Ok(out)
        })
        .await
    }
}
