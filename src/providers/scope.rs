//! What an integration imports (R19): its whole directory, the users of chosen groups
//! (directly or through nesting) with those groups and the groups nested in them, or (Google)
//! the users of chosen org units and below. [`Scoped`] reads a scope through a provider's
//! [`ScopeReads`], so a full read of a group scope costs what the scope holds, not the tenant.

use super::{DirectoryProvider, ExternalGroup, ExternalUser, Member, ProviderError, ProviderPage};
use serde::{Deserialize, Serialize};
use std::{collections::HashSet, sync::Mutex};

/// Groups or org units one scope may name, at most.
pub const MAX_SCOPE_ITEMS: usize = 50;

/// What an integration imports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Scope {
    /// Every user and group of the directory (the default).
    #[default]
    All,
    /// The users of these groups (the directory's ids), directly or through nesting; these
    /// groups and the groups nested in them.
    Groups { groups: Vec<String> },
    /// Google: the users of these org units (paths such as `/Sales`) and the units below.
    OrgUnits { paths: Vec<String> },
}

impl Scope {
    /// The scope stored as `stored` (an integration's `scope` column). A value this version
    /// cannot read is an error, never the whole directory: a sync must not widen a scope by
    /// misreading it.
    pub fn of_stored(stored: Option<&str>) -> Result<Self, serde_json::Error> {
        match stored {
            None => Ok(Scope::All),
            Some(text) => serde_json::from_str(text),
        }
    }

    /// The text to store; `None` for the whole directory.
    pub fn to_stored(&self) -> Option<String> {
        match self {
            Scope::All => None,
            other => serde_json::to_string(other).ok(),
        }
    }
}

/// The reads a scope needs beside a full read's.
pub trait ScopeReads: DirectoryProvider {
    /// One group, by the directory's id; `None` when the directory holds no such group.
    fn group(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<ExternalGroup>, ProviderError>> + Send;

    /// A page of the groups nested in `group`, at any depth.
    fn nested_groups_page(
        &self,
        group: &str,
        cursor: Option<String>,
    ) -> impl Future<Output = Result<ProviderPage<ExternalGroup>, ProviderError>> + Send;
}

/// The read of a provider whose group listings carry whole users (Graph's
/// `transitiveMembers`): [`Scoped`] reads a group scope's users through it. (Google's name
/// members by id only: `scope_by_ids::ListedScope`.)
pub trait GroupUserReads: ScopeReads {
    /// A page of the users that are members of `group`, directly or through nested groups.
    fn group_users_page(
        &self,
        group: &str,
        cursor: Option<String>,
    ) -> impl Future<Output = Result<ProviderPage<ExternalUser>, ProviderError>> + Send;
}

/// The directory's groups whose name starts with a text, read live for an admin choosing a
/// scope (before anything is imported).
pub trait GroupSearch: Send + Sync {
    /// A page of the groups whose name starts with `prefix` (case-insensitive; every group
    /// for an empty one), at most `size`; `cursor` is the previous page's `next`.
    fn search_groups(
        &self,
        prefix: &str,
        size: u32,
        cursor: Option<String>,
    ) -> impl Future<Output = Result<ProviderPage<ExternalGroup>, ProviderError>> + Send;
}

/// Where a scoped listing stands: the chosen group it reads, and the page within it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Cursor {
    /// The chosen group being read.
    at: usize,
    /// Groups: the chosen groups themselves were listed.
    #[serde(default)]
    nested: bool,
    /// The provider's cursor within the chosen group's listing.
    inner: Option<String>,
}

/// A provider restricted to the users and groups of chosen groups (`Scope::Groups`): users
/// are the chosen groups' transitive user members, each once; groups are the chosen groups
/// then the groups nested in them, each once; a group's members are read as the provider
/// lists them (all within the scope, since the scope is closed under nesting).
pub struct Scoped<'a, P> {
    inner: &'a P,
    groups: &'a [String],
    seen_users: Mutex<HashSet<String>>,
    seen_groups: Mutex<HashSet<String>>,
}

impl<'a, P: ScopeReads> Scoped<'a, P> {
    /// `inner` restricted to the users and groups of `groups`.
    pub fn new(inner: &'a P, groups: &'a [String]) -> Self {
        Self {
            inner,
            groups,
            seen_users: Mutex::new(HashSet::new()),
            seen_groups: Mutex::new(HashSet::new()),
        }
    }
}

/// `item`, the first time `id` is seen.
fn first_time<T>(seen: &Mutex<HashSet<String>>, id: &str, item: T) -> Option<T> {
    let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
    seen.insert(id.to_owned()).then_some(item)
}

fn parse(cursor: Option<String>) -> Cursor {
    cursor
        .and_then(|c| serde_json::from_str(&c).ok())
        .unwrap_or_default()
}

fn encode(cursor: &Cursor) -> Option<String> {
    serde_json::to_string(cursor).ok()
}

/// Something a scoped listing lists once, by its directory id.
trait Listed {
    fn id(&self) -> &str;
}

impl Listed for ExternalUser {
    fn id(&self) -> &str {
        &self.external_id
    }
}

impl Listed for ExternalGroup {
    fn id(&self) -> &str {
        &self.external_id
    }
}

/// The scoped page that `page` (the provider's page of chosen item `at.at` of `chosen`, `Err`
/// 404 when the item is gone: nothing) makes: its items not listed before, and the cursor of
/// what follows, the provider's next page or the next chosen item's first.
fn step<T: Listed>(
    chosen: usize,
    at: Cursor,
    page: Result<ProviderPage<T>, ProviderError>,
    seen: &Mutex<HashSet<String>>,
) -> Result<ProviderPage<T>, ProviderError> {
    let page = match page {
        Err(ProviderError::Http { status: 404, .. }) => empty_last(),
        other => other?,
    };
    let items = page
        .items
        .into_iter()
        .filter_map(|item| {
            let id = item.id().to_owned();
            first_time(seen, &id, item)
        })
        .collect();
    let next = match page.next {
        Some(inner) => encode(&Cursor {
            inner: Some(inner),
            ..at
        }),
        None if at.at + 1 < chosen => encode(&Cursor {
            at: at.at + 1,
            nested: at.nested,
            inner: None,
        }),
        None => None,
    };
    Ok(ProviderPage {
        items,
        next,
        delta_link: None,
    })
}

impl<P: GroupUserReads> DirectoryProvider for Scoped<'_, P> {
    async fn users_page(
        &self,
        cursor: Option<String>,
    ) -> Result<ProviderPage<ExternalUser>, ProviderError> {
        let mut at = parse(cursor);
        let Some(group) = self.groups.get(at.at) else {
            return Ok(empty_last());
        };
        let page = self.inner.group_users_page(group, at.inner.take()).await;
        step(self.groups.len(), at, page, &self.seen_users)
    }

    async fn groups_page(
        &self,
        cursor: Option<String>,
    ) -> Result<ProviderPage<ExternalGroup>, ProviderError> {
        self.chosen_groups_page(cursor).await
    }

    async fn members_page(
        &self,
        group_external_id: &str,
        cursor: Option<String>,
    ) -> Result<ProviderPage<Member>, ProviderError> {
        self.inner.members_page(group_external_id, cursor).await
    }
}

impl<P: ScopeReads> Scoped<'_, P> {
    /// A page of the scope's groups: the chosen groups, then the groups nested in them, each
    /// once.
    pub async fn chosen_groups_page(
        &self,
        cursor: Option<String>,
    ) -> Result<ProviderPage<ExternalGroup>, ProviderError> {
        let mut at = parse(cursor);
        if !at.nested {
            // The chosen groups first, in one page; one gone from the directory is left out.
            let mut items = Vec::new();
            for id in self.groups {
                if let Some(group) = self.inner.group(id).await? {
                    let group = first_time(&self.seen_groups, id, group);
                    items.extend(group);
                }
            }
            let next = (!self.groups.is_empty()).then(|| Cursor {
                nested: true,
                ..Cursor::default()
            });
            return Ok(ProviderPage {
                items,
                next: next.as_ref().and_then(encode),
                delta_link: None,
            });
        }
        let Some(group) = self.groups.get(at.at) else {
            return Ok(empty_last());
        };
        let page = self.inner.nested_groups_page(group, at.inner.take()).await;
        step(self.groups.len(), at, page, &self.seen_groups)
    }
}

fn empty_last<T>() -> ProviderPage<T> {
    ProviderPage {
        items: Vec::new(),
        next: None,
        delta_link: None,
    }
}

/// The read an org unit scope needs: the users of a unit and the units below it.
pub trait OrgUnitReads: DirectoryProvider {
    /// A page of the users of org unit `path` (`/Sales`) and of the units below it.
    fn org_unit_users_page(
        &self,
        path: &str,
        cursor: Option<String>,
    ) -> impl Future<Output = Result<ProviderPage<ExternalUser>, ProviderError>> + Send;
}

/// A provider restricted to the users of chosen org units and the units below them
/// (`Scope::OrgUnits`), each user once. Groups are every group of the directory (they hold
/// no org unit), their members those the scope holds: a member outside it references no
/// imported user and is passed over like any such member.
pub struct InOrgUnits<'a, P> {
    inner: &'a P,
    paths: &'a [String],
    seen_users: Mutex<HashSet<String>>,
}

impl<'a, P: OrgUnitReads> InOrgUnits<'a, P> {
    /// `inner` restricted to the users of `paths`.
    pub fn new(inner: &'a P, paths: &'a [String]) -> Self {
        Self {
            inner,
            paths,
            seen_users: Mutex::new(HashSet::new()),
        }
    }
}

impl<P: OrgUnitReads> DirectoryProvider for InOrgUnits<'_, P> {
    async fn users_page(
        &self,
        cursor: Option<String>,
    ) -> Result<ProviderPage<ExternalUser>, ProviderError> {
        let mut at = parse(cursor);
        let Some(path) = self.paths.get(at.at) else {
            return Ok(empty_last());
        };
        let page = self.inner.org_unit_users_page(path, at.inner.take()).await;
        step(self.paths.len(), at, page, &self.seen_users)
    }

    async fn groups_page(
        &self,
        cursor: Option<String>,
    ) -> Result<ProviderPage<ExternalGroup>, ProviderError> {
        self.inner.groups_page(cursor).await
    }

    async fn members_page(
        &self,
        group_external_id: &str,
        cursor: Option<String>,
    ) -> Result<ProviderPage<Member>, ProviderError> {
        self.inner.members_page(group_external_id, cursor).await
    }
}
