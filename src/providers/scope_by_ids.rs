//! A group scope of a provider whose member lists name members by id only (Google's
//! `members.list`): the scope's user ids are read first, through every chosen group's
//! members at any depth; then a small scope's users are read one by one, and a bigger one's
//! by the directory's user list kept to those ids. One user by id is a call (and a unit of
//! the provider's quota) where one page of the list is 500 users, so past
//! [`BY_ID_AT_MOST`] users the listing costs fewer calls than the reads by id.

use super::{
    DirectoryProvider, ExternalGroup, ExternalUser, Member, ProviderError, ProviderPage,
    scope::{ScopeReads, Scoped},
};
use std::collections::HashSet;

/// Users of a scope read one by one, at most; past it, the directory's user list is read.
pub const BY_ID_AT_MOST: usize = 100;

/// The reads [`ListedScope`] needs beside a scope's.
pub trait MemberIdReads: ScopeReads {
    /// A page of the ids of the users that are members of `group`, directly or through
    /// nested groups.
    fn group_user_ids_page(
        &self,
        group: &str,
        cursor: Option<String>,
    ) -> impl Future<Output = Result<ProviderPage<String>, ProviderError>> + Send;

    /// The users with these ids; one the directory no longer holds is left out.
    fn users_by_id(
        &self,
        ids: Vec<String>,
    ) -> impl Future<Output = Result<Vec<ExternalUser>, ProviderError>> + Send;
}

/// A provider restricted to the users and groups of chosen groups (`Scope::Groups`), its
/// users found by id: the groups are read as [`Scoped`] reads them.
pub struct ListedScope<'a, P> {
    inner: &'a P,
    chosen: &'a [String],
    groups: Scoped<'a, P>,
    ids: tokio::sync::OnceCell<HashSet<String>>,
}

impl<'a, P: MemberIdReads> ListedScope<'a, P> {
    /// `inner` restricted to the users and groups of `chosen`.
    pub fn new(inner: &'a P, chosen: &'a [String]) -> Self {
        Self {
            inner,
            chosen,
            groups: Scoped::new(inner, chosen),
            ids: tokio::sync::OnceCell::new(),
        }
    }

    /// The ids of the scope's users: every chosen group's user members at any depth (a
    /// group gone from the directory holds none).
    async fn read_ids(&self) -> Result<HashSet<String>, ProviderError> {
        let mut ids = HashSet::new();
        for group in self.chosen {
            let mut cursor = None;
            loop {
                let page = match self.inner.group_user_ids_page(group, cursor.take()).await {
                    Err(ProviderError::Http { status: 404, .. }) => break,
                    other => other?,
                };
                ids.extend(page.items);
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
        Ok(ids)
    }
}

impl<P: MemberIdReads> DirectoryProvider for ListedScope<'_, P> {
    async fn users_page(
        &self,
        cursor: Option<String>,
    ) -> Result<ProviderPage<ExternalUser>, ProviderError> {
        let ids = self.ids.get_or_try_init(|| self.read_ids()).await?;
        if ids.len() <= BY_ID_AT_MOST {
            // One page: the few users, each read by id.
            let items = match cursor {
                None => {
                    self.inner
                        .users_by_id(ids.iter().cloned().collect())
                        .await?
                }
                Some(_) => Vec::new(),
            };
            return Ok(ProviderPage {
                items,
                next: None,
                delta_link: None,
            });
        }
        let page = self.inner.users_page(cursor).await?;
        Ok(ProviderPage {
            items: page
                .items
                .into_iter()
                .filter(|u| ids.contains(&u.external_id))
                .collect(),
            next: page.next,
            delta_link: None,
        })
    }

    async fn groups_page(
        &self,
        cursor: Option<String>,
    ) -> Result<ProviderPage<ExternalGroup>, ProviderError> {
        self.groups.chosen_groups_page(cursor).await
    }

    async fn members_page(
        &self,
        group_external_id: &str,
        cursor: Option<String>,
    ) -> Result<ProviderPage<Member>, ProviderError> {
        self.inner.members_page(group_external_id, cursor).await
    }
}
