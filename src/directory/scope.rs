//! What an integration imports (R19): the admin's choice, checked and stored with its audit
//! entry. The next run reads the scope (`sync::run`), and users outside it leave as if they
//! left the directory (R14, under R15's hold).

use super::{IntegrationId, audit, integrations::get, now};
use crate::{
    error::{DomainError, DomainResult},
    providers::{
        clean::MAX_ID_CHARS,
        scope::{MAX_SCOPE_ITEMS, Scope},
    },
    store,
    text::{self, Lines},
};
use entity::{enums::DirectoryKind, integration};
use sea_orm::TransactionSession;

/// The scope checked for an integration of `kind`: a SCIM integration's scope is what its
/// provider pushes; group scopes are Entra ID's and Google's, org unit scopes Google's; 1 to
/// [`MAX_SCOPE_ITEMS`] ids or paths, each one the text policy allows (a path starts with `/`);
/// duplicates removed, order kept.
pub fn check(kind: DirectoryKind, scope: Scope) -> DomainResult<Scope> {
    match (kind, scope) {
        (DirectoryKind::Scim, _) => Err(DomainError::invalid(
            "scope",
            "a SCIM integration imports what its provider pushes (assign users and groups there)",
        )),
        (_, Scope::All) => Ok(Scope::All),
        (_, Scope::Groups { groups }) => Ok(Scope::Groups {
            groups: ids("scope.groupIds", groups)?,
        }),
        (DirectoryKind::GoogleWorkspace, Scope::OrgUnits { paths }) => {
            let paths = ids("scope.orgUnitPaths", paths)?;
            if let Some(bad) = paths.iter().find(|p| !p.starts_with('/')) {
                return Err(DomainError::invalid(
                    "scope.orgUnitPaths",
                    format!("`{bad}` is not an org unit path (they start with `/`)"),
                ));
            }
            Ok(Scope::OrgUnits { paths })
        }
        (_, Scope::OrgUnits { .. }) => Err(DomainError::invalid(
            "scope.kind",
            "org units are Google Workspace's; an Entra ID scope is ALL or GROUPS",
        )),
    }
}

fn ids(field: &'static str, given: Vec<String>) -> DomainResult<Vec<String>> {
    let mut kept: Vec<String> = Vec::with_capacity(given.len());
    for id in given {
        let id = id.trim().to_owned();
        text::require(field, &id, Lines::Single, MAX_ID_CHARS)?;
        if id.is_empty() {
            return Err(DomainError::invalid(
                field,
                format!("`{field}` holds an empty id"),
            ));
        }
        if !kept.contains(&id) {
            kept.push(id);
        }
    }
    if kept.is_empty() || kept.len() > MAX_SCOPE_ITEMS {
        return Err(DomainError::invalid(
            field,
            format!("`{field}` names 1 to {MAX_SCOPE_ITEMS} items"),
        ));
    }
    Ok(kept)
}

/// Sets what integration `id` imports, with its audit entry; the caller asks for a run. An
/// integration AWAITING_SCOPE becomes ACTIVE (its first import is the caller's to ask for);
/// one not signed in yet no longer waits for a scope after its sign-in.
pub async fn set<C: sea_orm::TransactionTrait>(
    db: &C,
    admin: &crate::auth::Admin,
    id: IntegrationId,
    scope: Scope,
) -> DomainResult<integration::Model> {
    use sea_orm::{IntoActiveModel, Set};
    let txn = crate::db::begin_write(db).await?;
    let model = get(&txn, id).await?;
    let scope = check(model.kind, scope)?;
    let before = Scope::of_stored(model.scope.as_deref()).unwrap_or_default();
    let model_status = model.status;
    let mut active = model.into_active_model();
    active.scope = Set(scope.to_stored());
    active.awaiting_scope = Set(false);
    if model_status == entity::enums::IntegrationStatus::AwaitingScope {
        active.status = Set(entity::enums::IntegrationStatus::Active);
    }
    // Delta links follow what was read: the next run reads the new scope in full.
    active.delta_state = Set(None);
    active.updated_at = Set(now());
    let model = store::integrations::update(&txn, active).await?;
    audit::record(
        &txn,
        admin.actor(),
        audit::Action::UpdateIntegrationScope,
        Some(audit::Target::new("Integration", model.id)),
        serde_json::json!({ "from": before, "to": scope }),
    )
    .await?;
    txn.commit().await?;
    Ok(model)
}

/// Users or groups a preview reads from the provider, at most: past it the counts are an
/// estimate (what was read).
pub const MAX_PREVIEW_IDS: usize = 200_000;

/// What applying a scope would do, counted without writing anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preview {
    /// Users the scope holds (as read).
    pub users_in_scope: u64,
    /// Users new to dirgate, or archived and back.
    pub users_to_import: u64,
    /// Users dirgate holds that stay.
    pub users_to_keep: u64,
    /// Users outside the scope without a device: removed.
    pub users_to_remove: u64,
    /// Users outside the scope with a device: archived.
    pub users_to_archive: u64,
    pub groups_in_scope: u64,
    pub groups_to_import: u64,
    pub groups_to_keep: u64,
    pub groups_to_remove: u64,
    /// Every user and group of the scope was read (else the counts cover what was).
    pub exact: bool,
}

/// Counts what reading `provider` (the integration's provider, restricted to the scope)
/// would import, keep and take out, reading ids only and writing nothing. Each listing stops
/// at [`MAX_PREVIEW_IDS`] (then `exact` is false).
pub async fn preview<P: crate::providers::DirectoryProvider>(
    db: &impl store::Db,
    integration: &integration::Model,
    provider: &P,
) -> DomainResult<Preview> {
    let (users, all_users) = listed(|c| provider.users_page(c), |u| u.external_id).await?;
    let (groups, all_groups) = listed(|c| provider.groups_page(c), |g| g.external_id).await?;
    let exact = all_users && all_groups;
    let stored = store::users::standing_of(db, integration.id).await?;
    let stored_groups = store::groups::ids_of_integration(db, integration.id).await?;
    let mut counts = Preview {
        users_in_scope: users.len() as u64,
        groups_in_scope: groups.len() as u64,
        exact,
        ..Preview::default()
    };
    for id in &users {
        match stored.get(id) {
            Some((false, _)) => counts.users_to_keep += 1,
            _ => counts.users_to_import += 1,
        }
    }
    for (id, (archived, device)) in &stored {
        if !archived && !users.contains(id) {
            if *device {
                counts.users_to_archive += 1;
            } else {
                counts.users_to_remove += 1;
            }
        }
    }
    counts.groups_to_keep = groups
        .iter()
        .filter(|g| stored_groups.contains_key(*g))
        .count() as u64;
    counts.groups_to_import = counts.groups_in_scope - counts.groups_to_keep;
    counts.groups_to_remove = stored_groups
        .keys()
        .filter(|g| !groups.contains(*g))
        .count() as u64;
    Ok(counts)
}

/// The ids a listing holds, read page by page (`page(cursor)`), up to [`MAX_PREVIEW_IDS`];
/// false when it stopped there with more to read.
async fn listed<T, F, Fut>(
    mut page: F,
    id: impl Fn(T) -> String,
) -> DomainResult<(std::collections::HashSet<String>, bool)>
where
    F: FnMut(Option<String>) -> Fut,
    Fut:
        Future<Output = Result<crate::providers::ProviderPage<T>, crate::providers::ProviderError>>,
{
    let (mut ids, mut cursor) = (std::collections::HashSet::new(), None);
    loop {
        let read = page(cursor.take()).await.map_err(provider_failure)?;
        ids.extend(read.items.into_iter().map(&id));
        match read.next {
            Some(_) if ids.len() >= MAX_PREVIEW_IDS => return Ok((ids, false)),
            Some(next) => cursor = Some(next),
            None => return Ok((ids, true)),
        }
    }
}

/// A provider's failure during a live read for the API: a revoked grant is NEEDS_REAUTH;
/// anything else INTERNAL, its cause logged.
pub fn provider_failure(err: crate::providers::ProviderError) -> DomainError {
    match err {
        crate::providers::ProviderError::NeedsReauth { .. } => DomainError::NeedsReauth,
        other => DomainError::internal(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_is_checked_for_its_kind_and_its_ids() {
        let groups = |ids: &[&str]| Scope::Groups {
            groups: ids.iter().map(|s| s.to_string()).collect(),
        };
        assert_eq!(
            check(DirectoryKind::EntraId, groups(&[" a ", "b", "a"])).unwrap(),
            groups(&["a", "b"])
        );
        let refused = |kind, scope| match check(kind, scope) {
            Err(DomainError::InvalidInput { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            refused(DirectoryKind::EntraId, groups(&[])),
            "scope.groupIds"
        );
        assert_eq!(
            refused(DirectoryKind::EntraId, groups(&["a\u{202E}"])),
            "scope.groupIds"
        );
        let many: Vec<String> = (0..=MAX_SCOPE_ITEMS).map(|i| i.to_string()).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(
            refused(DirectoryKind::EntraId, groups(&many)),
            "scope.groupIds"
        );
        assert_eq!(refused(DirectoryKind::Scim, Scope::All), "scope");
        assert_eq!(
            check(DirectoryKind::GoogleWorkspace, groups(&["g"])).unwrap(),
            groups(&["g"])
        );
        let units = |paths: &[&str]| Scope::OrgUnits {
            paths: paths.iter().map(|s| s.to_string()).collect(),
        };
        assert_eq!(
            refused(DirectoryKind::EntraId, units(&["/Sales"])),
            "scope.kind"
        );
        assert_eq!(
            refused(DirectoryKind::GoogleWorkspace, units(&["Sales"])),
            "scope.orgUnitPaths"
        );
        assert_eq!(
            check(
                DirectoryKind::GoogleWorkspace,
                units(&["/Sales", "/Sales "])
            )
            .unwrap(),
            units(&["/Sales"])
        );
        assert_eq!(
            check(DirectoryKind::GoogleWorkspace, Scope::All).unwrap(),
            Scope::All
        );
    }
}
