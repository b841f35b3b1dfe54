//! Choosing what an integration imports (R19): `updateIntegrationScope`, and the live read
//! of the directory's groups an admin chooses among (`directoryGroups`).

use super::{
    context::ContextExt,
    ids::{self, kinds},
    payload::{answer, payload},
    types::{Integration, ScopeKind, SyncRun},
};
use crate::{
    directory::{IntegrationId, audit, scope},
    providers::scope::Scope,
    sync::SyncHandle,
};
use crate::{
    error::{DomainError, DomainResult},
    providers::{
        ExternalGroup, ProviderPage,
        clean::{Cleaned, Warnings},
        entra::Entra,
        google::Google,
        scope::{GroupSearch, InOrgUnits, Scoped},
        scope_by_ids::ListedScope,
    },
    text::{self, Lines},
};
use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use entity::{
    enums::{DirectoryKind, IntegrationStatus, SyncTrigger},
    integration,
};

/// A scope to set.
#[derive(InputObject)]
pub struct ScopeInput {
    /// Which kind of scope.
    pub kind: ScopeKind,
    /// GROUPS: the directory's ids of the chosen groups, 1 to 50.
    pub group_ids: Option<Vec<String>>,
    /// ORG_UNITS (Google Workspace): the chosen org units' paths, 1 to 50.
    pub org_unit_paths: Option<Vec<String>>,
}

impl ScopeInput {
    pub(super) fn domain(self) -> Scope {
        match self.kind {
            ScopeKind::All => Scope::All,
            ScopeKind::Groups => Scope::Groups {
                groups: self.group_ids.unwrap_or_default(),
            },
            ScopeKind::OrgUnits => Scope::OrgUnits {
                paths: self.org_unit_paths.unwrap_or_default(),
            },
        }
    }
}

/// The integration and the scope it is to import.
#[derive(InputObject)]
pub struct UpdateIntegrationScopeInput {
    /// The integration's id (Entra ID or Google Workspace).
    pub id: ID,
    /// What it is to import.
    pub scope: ScopeInput,
}

payload!(
    /// The integration with its new scope, and the run that applies it (null when refused).
    UpdateIntegrationScopePayload {
        /// The integration.
        integration: Integration,
        /// The run that applies the scope: newcomers are imported, users outside it leave
        /// (removed, or archived when they have a device; held past the safety threshold).
        /// Null when the integration cannot sync yet (not ACTIVE).
        sync_run: SyncRun,
    }
);

/// Scope mutations.
#[derive(Default)]
pub struct ScopeMutation;

#[Object]
impl ScopeMutation {
    /// Sets what an integration imports, and asks for a run that applies it.
    async fn update_integration_scope(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to change; see the input type.")] input: UpdateIntegrationScopeInput,
    ) -> Result<Option<UpdateIntegrationScopePayload>> {
        let admin = ctx.admin()?;
        answer(
            async {
                let id = IntegrationId(ids::decode(&input.id, kinds::INTEGRATION, "id")?);
                let before = crate::directory::integrations::get(ctx.db(), id).await?;
                let model = scope::set(ctx.db(), &admin, id, input.scope.domain()).await?;
                let run = if model.status == IntegrationStatus::Active {
                    // The first import of an integration that waited for its scope.
                    let trigger = match before.status {
                        IntegrationStatus::AwaitingScope => SyncTrigger::Initial,
                        _ => SyncTrigger::Manual,
                    };
                    let sync = ctx.data_unchecked::<SyncHandle>();
                    let run = sync.request(id, trigger).await?;
                    audit::record(
                        ctx.db(),
                        admin.actor(),
                        audit::Action::SyncIntegration,
                        Some(audit::Target::new("SyncRun", run.id)),
                        serde_json::json!({ "integrationId": id.0, "for": "scope" }),
                    )
                    .await?;
                    Some(SyncRun(run))
                } else {
                    None
                };
                Ok(UpdateIntegrationScopePayload {
                    integration: Some(Integration(model)),
                    sync_run: run,
                    ..Default::default()
                })
            }
            .await,
        )
    }
}

/// A group of the directory as the provider lists it now (read live, imported or not).
#[derive(SimpleObject)]
pub struct DirectoryGroupChoice {
    /// The group's id in its directory: what `ScopeInput.groupIds` takes.
    pub external_id: String,
    /// The group's name.
    pub display_name: String,
    /// The group's email address, if it has one.
    pub email: Option<String>,
    /// The group's description, if it has one.
    pub description: Option<String>,
}

impl From<ExternalGroup> for DirectoryGroupChoice {
    fn from(g: ExternalGroup) -> Self {
        Self {
            external_id: g.external_id,
            display_name: g.display_name,
            email: g.email,
            description: g.description,
        }
    }
}

/// A page of the directory's groups, read live from the provider.
#[derive(SimpleObject)]
pub struct DirectoryGroupPage {
    /// The groups, in the provider's order (at most `first`).
    pub nodes: Vec<DirectoryGroupChoice>,
    /// Give it as `after` (with the same `search`) for the next page; null on the last.
    pub end_cursor: Option<String>,
}

/// What applying a scope would do, counted from a live read of the directory without
/// writing anything.
#[derive(SimpleObject)]
pub struct ScopePreview {
    /// Users the scope holds.
    pub users_in_scope: u64,
    /// Users the run would import: new to dirgate, or archived and back.
    pub users_to_import: u64,
    /// Users dirgate holds that would stay.
    pub users_to_keep: u64,
    /// Users outside the scope without a device: the run would remove them.
    pub users_to_remove: u64,
    /// Users outside the scope with a device: the run would archive them.
    pub users_to_archive: u64,
    /// Groups the scope holds.
    pub groups_in_scope: u64,
    /// Groups the run would import.
    pub groups_to_import: u64,
    /// Groups dirgate holds that would stay.
    pub groups_to_keep: u64,
    /// Groups the run would remove.
    pub groups_to_remove: u64,
    /// True when every user and group of the scope was read; false when a listing stopped
    /// at 200,000 and the counts cover what was read (an estimate).
    pub exact: bool,
}

/// Most groups one `directoryGroups` page reads.
const MAX_GROUP_PAGE: i32 = 100;
/// The longest `search` text.
const MAX_SEARCH_CHARS: usize = 256;

/// Scope reads.
#[derive(Default)]
pub struct ScopeQuery;

#[Object]
impl ScopeQuery {
    /// The groups of an Entra ID or Google Workspace integration's directory whose name starts
    /// with `search` (case-insensitive), read live from the provider with the integration's
    /// grant, so an admin can choose a scope before anything is imported. Needs an ADMIN
    /// token.
    async fn directory_groups(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The integration's id.")] integration_id: ID,
        #[graphql(desc = "The start of the group's name; every group when left out.")]
        search: Option<String>,
        #[graphql(desc = "Page size: 50 when left out, 1 to 100.")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the page before (with the same `search`).")]
        after: Option<String>,
    ) -> Result<DirectoryGroupPage> {
        ctx.admin()?;
        let id = ids::decode(&integration_id, kinds::INTEGRATION, "integrationId")?;
        let model = crate::directory::integrations::get(ctx.db(), IntegrationId(id)).await?;
        let prefix = search.unwrap_or_default().trim().to_owned();
        text::require("search", &prefix, Lines::Single, MAX_SEARCH_CHARS)?;
        let size = page_size(first)?;
        let context = cursor_context(&model, &prefix);
        let cursor = after.map(|a| open_cursor(ctx, &context, &a)).transpose()?;
        let page = search_groups(ctx, &model, &prefix, size, cursor).await?;
        let secrets = &ctx.services().secrets;
        Ok(DirectoryGroupPage {
            nodes: page.items.into_iter().map(Into::into).collect(),
            end_cursor: page
                .next
                .map(|next| URL_SAFE_NO_PAD.encode(secrets.seal(&context, next.as_bytes()))),
        })
    }

    /// The org units of a Google Workspace integration's account whose name or path (with or
    /// without its leading `/`) starts with `search` (case-insensitive), read live from the provider with the integration's
    /// grant, so an admin can choose an ORG_UNITS scope before anything is imported. Needs an
    /// ADMIN token.
    async fn directory_org_units(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The integration's id (Google Workspace).")] integration_id: ID,
        #[graphql(desc = "The start of the unit's name or path; every unit when left out.")]
        search: Option<String>,
        #[graphql(desc = "Page size: 50 when left out, 1 to 100.")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the page before (with the same `search`).")]
        after: Option<String>,
    ) -> Result<DirectoryOrgUnitPage> {
        ctx.admin()?;
        let id = ids::decode(&integration_id, kinds::INTEGRATION, "integrationId")?;
        let model = crate::directory::integrations::get(ctx.db(), IntegrationId(id)).await?;
        let search = search.unwrap_or_default().trim().to_lowercase();
        text::require("search", &search, Lines::Single, MAX_SEARCH_CHARS)?;
        let size = page_size(first)?;
        let context = format!("directory-org-units:{}:{search}", model.id);
        let skip = match after {
            None => 0,
            Some(a) => open_cursor(ctx, &context, &a)?
                .parse::<usize>()
                .map_err(|_| {
                    DomainError::invalid("after", "`after` is not a cursor of this listing")
                })?,
        };
        if model.kind != DirectoryKind::GoogleWorkspace {
            return Err(
                DomainError::invalid("integrationId", "org units are Google Workspace's").into(),
            );
        }
        signed_in(&model)?;
        let services = ctx.services();
        let session = crate::sync::session::open(ctx.db(), services, &model)?;
        let settings = &services.providers;
        let google = Google::new(session, &settings.google.api, settings.google_page_size);
        let mut units = google.org_units().await.map_err(scope::provider_failure)?;
        units.truncate(MAX_ORG_UNITS);
        units.sort_by(|a, b| a.org_unit_path.cmp(&b.org_unit_path));
        let matching: Vec<_> = units
            .into_iter()
            .filter(|u| {
                // A path the text policy refuses (controls, bidi overrides) is not offered.
                text::require("path", &u.org_unit_path, Lines::Single, 1024).is_ok()
                    && u.org_unit_path.starts_with('/')
            })
            .filter(|u| {
                let path = u.org_unit_path.to_lowercase();
                u.name.to_lowercase().starts_with(&search)
                    || path.starts_with(&search)
                    || path[1..].starts_with(&search)
            })
            .collect();
        let end = skip.saturating_add(size as usize);
        let end_cursor = (end < matching.len()).then(|| {
            let sealed = services.secrets.seal(&context, end.to_string().as_bytes());
            URL_SAFE_NO_PAD.encode(sealed)
        });
        Ok(DirectoryOrgUnitPage {
            nodes: matching
                .into_iter()
                .skip(skip)
                .take(size as usize)
                .map(|u| DirectoryOrgUnitChoice {
                    path: u.org_unit_path,
                    name: u.name,
                    description: u.description.filter(|d| !d.is_empty()),
                })
                .collect(),
            end_cursor,
        })
    }
}

/// A page size given as `first`: 50 when left out, 1 to [`MAX_GROUP_PAGE`].
fn page_size(first: Option<i32>) -> DomainResult<u32> {
    match first.unwrap_or(50) {
        n if (1..=MAX_GROUP_PAGE).contains(&n) => Ok(n as u32),
        _ => Err(DomainError::invalid("first", "`first` must be 1 to 100")),
    }
}

/// An org unit of a Google Workspace account as the provider lists it now.
#[derive(SimpleObject)]
pub struct DirectoryOrgUnitChoice {
    /// The unit's full path, `/Sales/EMEA`: what `ScopeInput.orgUnitPaths` takes.
    pub path: String,
    /// The unit's name (the path's last segment).
    pub name: String,
    /// The unit's description, if it has one.
    pub description: Option<String>,
}

/// A page of a Google Workspace account's org units, read live from the provider.
#[derive(SimpleObject)]
pub struct DirectoryOrgUnitPage {
    /// The units, in path order (at most `first`).
    pub nodes: Vec<DirectoryOrgUnitChoice>,
    /// Give it as `after` (with the same `search`) for the next page; null on the last.
    pub end_cursor: Option<String>,
}

/// Org units one `directoryOrgUnits` read takes from the provider, at most (Google lists an
/// account's units whole, unpaged).
const MAX_ORG_UNITS: usize = 20_000;

#[Object]
impl ScopePreviewQuery {
    /// What setting `scope` on an Entra ID or Google Workspace integration would import,
    /// keep and take out, counted from a live read of the directory (ids only) without
    /// writing anything; the same reads, bounds and policy as the run. Needs an ADMIN token.
    async fn scope_preview(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The integration's id.")] integration_id: ID,
        #[graphql(desc = "The scope to preview.")] scope: ScopeInput,
    ) -> Result<ScopePreview> {
        ctx.admin()?;
        let id = ids::decode(&integration_id, kinds::INTEGRATION, "integrationId")?;
        let model = crate::directory::integrations::get(ctx.db(), IntegrationId(id)).await?;
        let scope = scope::check(model.kind, scope.domain())?;
        signed_in(&model)?;
        let (services, warnings) = (ctx.services(), std::sync::Arc::new(Warnings::default()));
        let settings = &services.providers;
        let session = crate::sync::session::open(ctx.db(), services, &model)?;
        let entra = || {
            Entra::new(
                session.clone(),
                &settings.entra.api,
                settings.entra_page_size,
            )
        };
        let google = || {
            Google::new(
                session.clone(),
                &settings.google.api,
                settings.google_page_size,
            )
        };
        let counts = match (model.kind, &scope) {
            (DirectoryKind::EntraId, Scope::Groups { groups }) => {
                let entra = entra();
                let scoped = Cleaned::new(Scoped::new(&entra, groups), warnings.clone());
                scope::preview(ctx.db(), &model, &scoped).await?
            }
            (DirectoryKind::EntraId, _) => {
                let entra = entra();
                scope::preview(ctx.db(), &model, &Cleaned::new(&entra, warnings)).await?
            }
            (_, Scope::Groups { groups }) => {
                let google = google();
                let scoped = Cleaned::new(ListedScope::new(&google, groups), warnings.clone());
                scope::preview(ctx.db(), &model, &scoped).await?
            }
            (_, Scope::OrgUnits { paths }) => {
                let google = google();
                let scoped = Cleaned::new(InOrgUnits::new(&google, paths), warnings.clone());
                scope::preview(ctx.db(), &model, &scoped).await?
            }
            (_, Scope::All) => {
                let google = google();
                scope::preview(ctx.db(), &model, &Cleaned::new(&google, warnings)).await?
            }
        };
        Ok(ScopePreview {
            users_in_scope: counts.users_in_scope,
            users_to_import: counts.users_to_import,
            users_to_keep: counts.users_to_keep,
            users_to_remove: counts.users_to_remove,
            users_to_archive: counts.users_to_archive,
            groups_in_scope: counts.groups_in_scope,
            groups_to_import: counts.groups_to_import,
            groups_to_keep: counts.groups_to_keep,
            groups_to_remove: counts.groups_to_remove,
            exact: counts.exact,
        })
    }
}

/// Scope previews.
#[derive(Default)]
pub struct ScopePreviewQuery;

/// INVALID_INPUT on `integrationId` for an integration without a grant (not signed in yet).
fn signed_in(model: &integration::Model) -> DomainResult<()> {
    if model.refresh_token_enc.is_none() {
        return Err(DomainError::invalid(
            "integrationId",
            "the integration is not signed in yet",
        ));
    }
    Ok(())
}

/// What a cursor of `directoryGroups` is sealed to: the integration and the search, so a
/// cursor works only for the listing that issued it.
fn cursor_context(model: &integration::Model, prefix: &str) -> String {
    format!("directory-groups:{}:{prefix}", model.id)
}

/// The provider's page token a cursor holds. A cursor dirgate did not issue (for this
/// integration and search) is INVALID_INPUT: a client never names a provider URL.
fn open_cursor(ctx: &Context<'_>, context: &str, after: &str) -> DomainResult<String> {
    let refused = || DomainError::invalid("after", "`after` is not a cursor of this listing");
    let sealed = URL_SAFE_NO_PAD.decode(after).map_err(|_| refused())?;
    let raw = ctx
        .services()
        .secrets
        .open(context, &sealed)
        .map_err(|_| refused())?;
    String::from_utf8(raw).map_err(|_| refused())
}

/// A page of the integration's groups from its provider.
async fn search_groups(
    ctx: &Context<'_>,
    model: &integration::Model,
    prefix: &str,
    size: u32,
    cursor: Option<String>,
) -> DomainResult<ProviderPage<ExternalGroup>> {
    let services = ctx.services();
    let settings = &services.providers;
    let read = match model.kind {
        DirectoryKind::Scim => {
            return Err(DomainError::invalid(
                "integrationId",
                "a SCIM integration's groups are what its provider pushes",
            ));
        }
        _ if model.refresh_token_enc.is_none() => {
            return Err(DomainError::invalid(
                "integrationId",
                "the integration is not signed in yet",
            ));
        }
        DirectoryKind::EntraId => {
            let session = crate::sync::session::open(ctx.db(), services, model)?;
            let entra = Entra::new(session, &settings.entra.api, settings.entra_page_size);
            entra.search_groups(prefix, size, cursor).await
        }
        DirectoryKind::GoogleWorkspace => {
            let session = crate::sync::session::open(ctx.db(), services, model)?;
            let google = Google::new(session, &settings.google.api, settings.google_page_size);
            google.search_groups(prefix, size, cursor).await
        }
    };
    read.map_err(scope::provider_failure)
}
