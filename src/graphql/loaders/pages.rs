//! The loaders of pages: an integration's or a group's users, direct or transitive (with what
//! they are asked for beside them), an integration's or a user's groups, a group's child and
//! parent groups, a user's devices, an integration's sync runs; each wave's pages of one kind
//! in one statement (`store::related`, `store::nesting`).

use super::{
    BatchLoader, DevicePageKey, GroupPageKey, GroupParent, LoadResult, Prefetch, PrefetchedUser,
    Prefetches, RunPageKey, UserPageKey, UserParent, Window,
};
use crate::{
    error::DomainError,
    store::{
        nesting::{self, Edge},
        page::Page,
        related,
    },
};
use async_graphql::dataloader::Loader;
use entity::{device, directory_group, directory_user, sync_run};
use std::collections::HashMap;

/// Splits keys by their window: one statement per distinct window (in practice one, as
/// siblings in a response share their arguments).
fn by_window<'a, K: Copy + 'a, P: Copy>(
    keys: impl IntoIterator<Item = &'a K>,
    split: impl Fn(K) -> (P, Window),
) -> HashMap<Window, Vec<P>> {
    let mut out: HashMap<Window, Vec<P>> = HashMap::new();
    for key in keys {
        let (parent, window) = split(*key);
        out.entry(window).or_default().push(parent);
    }
    out
}

/// The ids of the parents `pick` accepts.
fn ids_of<P: Copy>(parents: &[P], pick: impl Fn(P) -> Option<i64>) -> Vec<i64> {
    parents.iter().copied().filter_map(pick).collect()
}

impl UserParent {
    fn id(self) -> i64 {
        match self {
            Self::Integration(id)
            | Self::Group(id)
            | Self::GroupTransitive(id)
            | Self::ReportsOf(id) => id,
        }
    }
}

impl GroupParent {
    fn id(self) -> i64 {
        match self {
            Self::Integration(id)
            | Self::User(id)
            | Self::UserTransitive(id)
            | Self::ChildrenOf(id)
            | Self::ParentsOf(id) => id,
        }
    }
}

impl Loader<UserPageKey> for BatchLoader {
    type Value = Page<PrefetchedUser>;
    type Error = DomainError;

    async fn load(&self, keys: &[UserPageKey]) -> LoadResult<UserPageKey, Self::Value> {
        self.batch(async {
            let mut out = HashMap::new();
            let asked: std::collections::HashSet<Prefetch> = keys.iter().map(|k| k.2).collect();
            for beside in asked {
                let keys = keys.iter().filter(|k| k.2 == beside);
                for (window, parents) in by_window(keys, |UserPageKey(parent, w, _)| (parent, w)) {
                    let pages = self.user_pages(&parents, window).await?;
                    let users: Vec<i64> = pages
                        .values()
                        .flat_map(|p| p.items.iter().map(|u| u.id))
                        .collect();
                    let read = Prefetches::of(&self.db, self.projection, users, beside).await?;
                    out.extend(pages.into_iter().map(|(parent, page)| {
                        let page = page.map(|user| read.attach(user));
                        (UserPageKey(parent, window, beside), page)
                    }));
                }
            }
            Ok(out)
        })
        .await
    }
}

impl BatchLoader {
    /// A page of users of each of `parents`.
    async fn user_pages(
        &self,
        parents: &[UserParent],
        Window { args, dir }: Window,
    ) -> LoadResult<UserParent, Page<directory_user::Model>> {
        let mut out = HashMap::new();
        let (db, columns) = (&self.db, self.projection.users);
        for kind in [
            UserParent::Integration as fn(i64) -> UserParent,
            UserParent::Group,
            UserParent::GroupTransitive,
            UserParent::ReportsOf,
        ] {
            let ids = ids_of(parents, |p| (p == kind(p.id())).then_some(p.id()));
            if ids.is_empty() {
                continue;
            }
            let pages = match kind(0) {
                UserParent::Integration(_) => {
                    related::users_of_integrations(db, &ids, args, dir, columns).await?
                }
                UserParent::Group(_) => {
                    related::members_of_groups(db, &ids, args, dir, columns).await?
                }
                UserParent::GroupTransitive(_) => {
                    nesting::transitive_members(db, &ids, args, dir, columns).await?
                }
                UserParent::ReportsOf(_) => {
                    crate::store::reports::reports_of_users(db, &ids, args, dir, columns).await?
                }
            };
            out.extend(pages.into_iter().map(|(id, page)| (kind(id), page)));
        }
        Ok(out)
    }

    /// A page of groups of each of `parents`.
    async fn group_pages(
        &self,
        parents: &[GroupParent],
        Window { args, dir }: Window,
    ) -> LoadResult<GroupParent, Page<directory_group::Model>> {
        let mut out = HashMap::new();
        let (db, columns) = (&self.db, self.projection.groups);
        for kind in [
            GroupParent::Integration as fn(i64) -> GroupParent,
            GroupParent::User,
            GroupParent::UserTransitive,
            GroupParent::ChildrenOf,
            GroupParent::ParentsOf,
        ] {
            let ids = ids_of(parents, |p| (p == kind(p.id())).then_some(p.id()));
            if ids.is_empty() {
                continue;
            }
            let pages = match kind(0) {
                GroupParent::Integration(_) => {
                    related::groups_of_integrations(db, &ids, args, dir, columns).await?
                }
                GroupParent::User(_) => {
                    related::groups_of_users(db, &ids, args, dir, columns).await?
                }
                GroupParent::UserTransitive(_) => {
                    nesting::transitive_groups(db, &ids, args, dir, columns).await?
                }
                GroupParent::ChildrenOf(_) => {
                    nesting::neighbours(db, &ids, Edge::Children, args, dir, columns).await?
                }
                GroupParent::ParentsOf(_) => {
                    nesting::neighbours(db, &ids, Edge::Parents, args, dir, columns).await?
                }
            };
            out.extend(pages.into_iter().map(|(id, page)| (kind(id), page)));
        }
        Ok(out)
    }
}

impl Loader<GroupPageKey> for BatchLoader {
    type Value = Page<directory_group::Model>;
    type Error = DomainError;

    async fn load(&self, keys: &[GroupPageKey]) -> LoadResult<GroupPageKey, Self::Value> {
        self.batch(async {
            let mut out = HashMap::new();
            for (window, parents) in by_window(keys, |GroupPageKey(parent, w)| (parent, w)) {
                let pages = self.group_pages(&parents, window).await?;
                out.extend(
                    pages
                        .into_iter()
                        .map(|(parent, page)| (GroupPageKey(parent, window), page)),
                );
            }
            Ok(out)
        })
        .await
    }
}

impl Loader<DevicePageKey> for BatchLoader {
    type Value = Page<device::Model>;
    type Error = DomainError;

    async fn load(&self, keys: &[DevicePageKey]) -> LoadResult<DevicePageKey, Self::Value> {
        self.batch(async {
            let mut out = HashMap::new();
            for (window, users) in by_window(keys, |DevicePageKey(user, w)| (user, w)) {
                let columns = self.projection.devices;
                let pages =
                    related::devices_of_users(&self.db, &users, window.args, window.dir, columns);
                out.extend(
                    pages
                        .await?
                        .into_iter()
                        .map(|(id, page)| (DevicePageKey(id, window), page)),
                );
            }
            Ok(out)
        })
        .await
    }
}

impl Loader<RunPageKey> for BatchLoader {
    type Value = Page<sync_run::Model>;
    type Error = DomainError;

    async fn load(&self, keys: &[RunPageKey]) -> LoadResult<RunPageKey, Self::Value> {
        self.batch(async {
            let mut out = HashMap::new();
            for (window, parents) in by_window(keys, |RunPageKey(parent, w)| (parent, w)) {
                let pages =
                    related::runs_of_integrations(&self.db, &parents, window.args, window.dir);
                out.extend(
                    pages
                        .await?
                        .into_iter()
                        .map(|(id, page)| (RunPageKey(id, window), page)),
                );
            }
            Ok(out)
        })
        .await
    }
}
