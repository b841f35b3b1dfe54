//! The loaders of pages: an integration's or a group's users (with what they are asked for
//! beside them), an integration's groups, its sync runs; each wave's pages of one kind in
//! one statement (`store::related`, through `store::page::fetch_per_parent`).

use super::{
    BatchLoader, GroupPageKey, LoadResult, Prefetch, PrefetchedUser, Prefetches, RunPageKey,
    UserPageKey, UserParent,
};
use crate::{
    error::DomainError,
    store::{
        page::{Page, PageArgs},
        related,
    },
};
use async_graphql::dataloader::Loader;
use entity::{directory_group, directory_user, sync_run};
use std::collections::HashMap;

/// Splits keys by their page arguments: one statement per distinct arguments (in
/// practice one, as siblings in a response share their arguments).
fn by_args<'a, K: Copy + 'a, P: Copy + std::hash::Hash + Eq>(
    keys: impl IntoIterator<Item = &'a K>,
    split: impl Fn(K) -> (P, PageArgs),
) -> HashMap<PageArgs, Vec<P>> {
    let mut out: HashMap<PageArgs, Vec<P>> = HashMap::new();
    for key in keys {
        let (parent, args) = split(*key);
        out.entry(args).or_default().push(parent);
    }
    out
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
                for (args, parents) in by_args(keys, |UserPageKey(parent, args, _)| (parent, args))
                {
                    let pages = self.user_pages(&parents, args).await?;
                    let users: Vec<i64> = pages
                        .values()
                        .flat_map(|p| p.items.iter().map(|u| u.id))
                        .collect();
                    let read = Prefetches::of(&self.db, self.projection, users, beside).await?;
                    out.extend(pages.into_iter().map(|(parent, page)| {
                        let page = page.map(|user| read.attach(user));
                        (UserPageKey(parent, args, beside), page)
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
        args: PageArgs,
    ) -> LoadResult<UserParent, Page<directory_user::Model>> {
        let mut out = HashMap::new();
        let of_integration: Vec<i64> = parents
            .iter()
            .filter_map(|p| match p {
                UserParent::Integration(id) => Some(*id),
                UserParent::Group(_) => None,
            })
            .collect();
        let of_group: Vec<i64> = parents
            .iter()
            .filter_map(|p| match p {
                UserParent::Group(id) => Some(*id),
                UserParent::Integration(_) => None,
            })
            .collect();
        let columns = self.projection.users;
        if !of_integration.is_empty() {
            let pages = related::users_of_integrations(&self.db, &of_integration, args, columns);
            out.extend(
                pages
                    .await?
                    .into_iter()
                    .map(|(id, page)| (UserParent::Integration(id), page)),
            );
        }
        if !of_group.is_empty() {
            let pages = related::members_of_groups(&self.db, &of_group, args, columns);
            out.extend(
                pages
                    .await?
                    .into_iter()
                    .map(|(id, page)| (UserParent::Group(id), page)),
            );
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
            for (args, parents) in by_args(keys, |GroupPageKey(parent, args)| (parent, args)) {
                let columns = self.projection.groups;
                let pages = related::groups_of_integrations(&self.db, &parents, args, columns);
                out.extend(
                    pages
                        .await?
                        .into_iter()
                        .map(|(id, page)| (GroupPageKey(id, args), page)),
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
            for (args, parents) in by_args(keys, |RunPageKey(parent, args)| (parent, args)) {
                let pages = related::runs_of_integrations(&self.db, &parents, args);
                out.extend(
                    pages
                        .await?
                        .into_iter()
                        .map(|(id, page)| (RunPageKey(id, args), page)),
                );
            }
            Ok(out)
        })
        .await
    }
}
