//! Choosing what an integration imports (R19): `updateIntegrationScope`.

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
use async_graphql::{Context, ID, InputObject, Object, Result};
use entity::enums::{IntegrationStatus, SyncTrigger};

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
    fn domain(self) -> Scope {
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
    /// The integration's id (Entra ID; Google Workspace takes ALL only, for now).
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
                let model = scope::set(ctx.db(), &admin, id, input.scope.domain()).await?;
                let run = if model.status == IntegrationStatus::Active {
                    let sync = ctx.data_unchecked::<SyncHandle>();
                    let run = sync.request(id, SyncTrigger::Manual).await?;
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
