//! [`Cleaned`]: any provider, every record of which passes the policy before the reconciler
//! sees it; [`CleanChange`]: a change of an incremental read, cleaned once merged.

use super::{
    Action, Clean, MAX_MEMBERS, Warning, Warnings, clean, clean_members, ignored_member, refused_id,
};
use crate::providers::{
    DirectoryProvider, ExternalGroup, ExternalUser, GroupChange, IncrementalProvider, Member,
    MemberChange, ObjectChange, ProviderError, ProviderPage,
};
use std::sync::Arc;

/// A provider whose every record passes the policy: what the reconciler reads. Works for any
/// [`DirectoryProvider`] and, through [`CleanChange`], any [`IncrementalProvider`].
pub struct Cleaned<P> {
    inner: P,
    warnings: Arc<Warnings>,
}

impl<P> Cleaned<P> {
    pub fn new(inner: P, warnings: Arc<Warnings>) -> Self {
        Self { inner, warnings }
    }

    pub fn inner(&self) -> &P {
        &self.inner
    }
}

impl<P: DirectoryProvider> DirectoryProvider for Cleaned<P> {
    async fn users_page(
        &self,
        cursor: Option<String>,
    ) -> Result<ProviderPage<ExternalUser>, ProviderError> {
        let mut page = self.inner.users_page(cursor).await?;
        page.items = std::mem::take(&mut page.items)
            .into_iter()
            .filter_map(|u| clean(u, &self.warnings))
            .collect();
        Ok(page)
    }

    async fn groups_page(
        &self,
        cursor: Option<String>,
    ) -> Result<ProviderPage<ExternalGroup>, ProviderError> {
        let mut page = self.inner.groups_page(cursor).await?;
        page.items = std::mem::take(&mut page.items)
            .into_iter()
            .filter_map(|g| clean(g, &self.warnings))
            .collect();
        Ok(page)
    }

    async fn members_page(
        &self,
        group_external_id: &str,
        cursor: Option<String>,
    ) -> Result<ProviderPage<Member>, ProviderError> {
        let mut page = self.inner.members_page(group_external_id, cursor).await?;
        page.items = clean_members(
            group_external_id,
            std::mem::take(&mut page.items),
            &self.warnings,
        );
        Ok(page)
    }
}

/// A change whose merged object passes the policy. Changes with a refused id never get here
/// (they are skipped with their page).
pub struct CleanChange<C> {
    inner: C,
    warnings: Arc<Warnings>,
}

impl<T: Clean, C: ObjectChange<T>> ObjectChange<T> for CleanChange<C> {
    fn external_id(&self) -> &str {
        self.inner.external_id()
    }

    fn is_removal(&self) -> bool {
        self.inner.is_removal()
    }

    fn merged(self, base: Option<&T>) -> T {
        // The id was checked with the page.
        self.inner.merged(base).clean_fields(&self.warnings)
    }
}

impl<C: GroupChange> GroupChange for CleanChange<C> {
    fn member_changes(&self) -> Vec<MemberChange> {
        let group = self.inner.external_id();
        let mut changes = self.inner.member_changes();
        changes.retain(|change| match refused_id(change.member.id()) {
            None => true,
            Some(why) => {
                self.warnings.push(ignored_member(
                    group,
                    change.member.id(),
                    &format!("a member change was ignored: {why}"),
                ));
                false
            }
        });
        if changes.len() > MAX_MEMBERS {
            self.warnings.push(Warning::new(
                crate::providers::clean::ObjectKind::Group,
                group,
                Some("members"),
                Action::Truncated,
                format!(
                    "the group lists {} membership changes; the first {MAX_MEMBERS} were applied",
                    changes.len()
                ),
            ));
            changes.truncate(MAX_MEMBERS);
        }
        changes
    }
}

impl<P: IncrementalProvider> Cleaned<P> {
    /// The changes of a page whose id the policy allows, each to be cleaned once merged.
    fn changes<T: Clean, C: ObjectChange<T>>(&self, items: Vec<C>) -> Vec<CleanChange<C>> {
        items
            .into_iter()
            .filter(|change| match refused_id(change.external_id()) {
                None => true,
                Some(why) => {
                    self.warnings.push(Warning::new(
                        T::KIND,
                        change.external_id(),
                        None,
                        Action::Skipped,
                        format!("a change of the {} was skipped: {why}", T::NOUN),
                    ));
                    false
                }
            })
            .map(|inner| CleanChange {
                inner,
                warnings: self.warnings.clone(),
            })
            .collect()
    }
}

impl<P: IncrementalProvider> IncrementalProvider for Cleaned<P> {
    type UserChange = CleanChange<P::UserChange>;
    type GroupChange = CleanChange<P::GroupChange>;

    fn full_read(&self) -> impl DirectoryProvider + '_ {
        Cleaned {
            inner: self.inner.full_read(),
            warnings: self.warnings.clone(),
        }
    }

    async fn user_changes(
        &self,
        link: &str,
    ) -> Result<ProviderPage<Self::UserChange>, ProviderError> {
        let page = self.inner.user_changes(link).await?;
        Ok(ProviderPage {
            items: self.changes::<ExternalUser, _>(page.items),
            next: page.next,
            delta_link: page.delta_link,
        })
    }

    async fn group_changes(
        &self,
        link: &str,
    ) -> Result<ProviderPage<Self::GroupChange>, ProviderError> {
        let page = self.inner.group_changes(link).await?;
        Ok(ProviderPage {
            items: self.changes::<ExternalGroup, _>(page.items),
            next: page.next,
            delta_link: page.delta_link,
        })
    }
}
