//! `Integration`: one connected directory and what it holds (R7).

use super::{
    CreationOrder, DirectoryKind, Group, IntegrationScope, IntegrationStatus, SyncRun, User, nested,
};
use crate::{
    graphql::{
        connection::{self, Conn, Totals},
        context::ContextExt,
        ids::{self, kinds},
        loaders::{CountKey, GroupPageKey, GroupParent, RunPageKey, UserPageKey, UserParent},
    },
    store::page::{Direction, Page},
};
use async_graphql::{Context, ID, Object, Result};
use chrono::{DateTime, Utc};
use entity::integration;

/// A connected directory: Microsoft Entra ID, Google Workspace or SCIM.
pub struct Integration(pub integration::Model);

impl From<integration::Model> for Integration {
    fn from(model: integration::Model) -> Self {
        Self(model)
    }
}

/// Loads the count `key` through the request's loader when asked for.
pub(crate) fn count_totals(ctx: &Context<'_>, key: CountKey) -> Totals {
    let loaders = ctx.loaders().clone();
    Totals::lazy(move || {
        let loaders = loaders.clone();
        async move { Ok(loaders.load_one(key).await?.unwrap_or(0)) }
    })
}

/// A nested list's arguments: `first`, `after`, `orderBy`.
pub(crate) type NestedArgs = (Option<i32>, Option<String>, Option<CreationOrder>);

/// A page of the groups of `parent` (counted by `count`).
pub(crate) async fn groups_page(
    ctx: &Context<'_>,
    parent: GroupParent,
    count: CountKey,
    (first, after, order): NestedArgs,
) -> Result<Conn<Group>> {
    let window = nested::window(ctx, first, after.as_deref(), order, Direction::Asc)?;
    let page = nested::page(ctx, None, window, GroupPageKey(parent, window)).await?;
    let totals = count_totals(ctx, count);
    let after = window.args.after;
    Ok(connection::build(page, after, |m| m.id, Group, totals))
}

/// A page of the users of `parent` (counted by `count`), each with a page of its devices and
/// groups when the field at `ctx` asks for them.
pub(crate) async fn users_page(
    ctx: &Context<'_>,
    parent: UserParent,
    count: CountKey,
    (first, after, order): NestedArgs,
) -> Result<Conn<User>> {
    let window = nested::window(ctx, first, after.as_deref(), order, Direction::Asc)?;
    let after = window.args.after;
    let key = UserPageKey(parent, window, nested::prefetch_for_users(ctx, &[]));
    let page = ctx
        .loaders()
        .load_one(key)
        .await?
        .unwrap_or_else(Page::empty);
    let totals = count_totals(ctx, count);
    Ok(connection::build(
        page,
        after,
        |m| m.user.id,
        User::from,
        totals,
    ))
}

/// A connected identity provider (Entra ID, Google Workspace or SCIM): its name, status and
/// why, the grant and who authorised it, sync settings and schedule, counts, runs, and for
/// SCIM its base URL and token hint.
#[Object]
impl Integration {
    /// The integration's global id.
    pub async fn id(&self) -> ID {
        ids::encode(kinds::INTEGRATION, self.0.id)
    }

    /// The kind of directory.
    async fn kind(&self) -> DirectoryKind {
        self.0.kind.into()
    }

    /// The name shown as the origin of every user it imports; unique.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Where the integration stands.
    async fn status(&self) -> IntegrationStatus {
        self.0.status.into()
    }

    /// Why the integration is in its status, when that needs saying.
    async fn status_reason(&self) -> Option<&str> {
        self.0.status_reason.as_deref()
    }

    /// The Entra tenant id or Google Workspace domain, once authorised.
    async fn tenant(&self) -> Option<&str> {
        self.0.tenant.as_deref()
    }

    /// The directory account that authorised the integration.
    async fn authorized_by(&self) -> Option<&str> {
        self.0.authorized_by.as_deref()
    }

    /// The OAuth scopes the provider granted.
    async fn granted_scopes(&self) -> Vec<&str> {
        self.0
            .granted_scopes
            .as_deref()
            .map(|s| s.split_whitespace().collect())
            .unwrap_or_default()
    }

    /// SCIM only: the base URL to give the directory's provisioning app.
    async fn scim_base_url(&self, ctx: &Context<'_>) -> Option<String> {
        (self.0.kind == entity::enums::DirectoryKind::Scim)
            .then(|| crate::directory::scim_tokens::base_url(&ctx.config().public_url(), self.0.id))
    }

    /// SCIM only: the end of the current SCIM token, to tell tokens apart; never the token.
    async fn scim_token_hint(&self) -> Option<&str> {
        self.0.scim_token_hint.as_deref()
    }

    /// What the integration imports: its whole directory, or chosen groups.
    async fn scope(&self) -> Result<IntegrationScope> {
        let scope = crate::providers::scope::Scope::of_stored(self.0.scope.as_deref())
            .map_err(crate::error::DomainError::internal)?;
        Ok(scope.into())
    }

    /// Whether devices are assigned automatically to this integration's users.
    async fn auto_assign_devices(&self) -> bool {
        self.0.auto_assign_devices
    }

    /// This integration's own sync interval, if it overrides the deployment's.
    async fn sync_interval_minutes(&self) -> Option<i32> {
        self.0.sync_interval_minutes
    }

    /// When the integration was added.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When the integration last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// When the last successful sync finished.
    async fn last_synced_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_synced_at
    }

    /// When the next scheduled sync is due; null whenever nothing will run: a SCIM
    /// integration (data arrives by push), or one that is not ACTIVE (waiting for consent or
    /// approval, or NEEDS_REAUTH: scheduled syncs pause until it is re-authenticated).
    async fn next_sync_at(&self) -> Option<DateTime<Utc>> {
        crate::directory::integrations::next_sync_at(&self.0)
    }

    /// How many users this integration holds.
    async fn user_count(&self, ctx: &Context<'_>) -> Result<i64> {
        let n = ctx
            .loaders()
            .load_one(CountKey::UsersOfIntegration(self.0.id))
            .await?;
        Ok(n.unwrap_or(0) as i64)
    }

    /// How many groups this integration holds.
    async fn group_count(&self, ctx: &Context<'_>) -> Result<i64> {
        let n = ctx
            .loaders()
            .load_one(CountKey::GroupsOfIntegration(self.0.id))
            .await?;
        Ok(n.unwrap_or(0) as i64)
    }

    /// The integration's users, in `orderBy` order (oldest first by default).
    async fn users(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size: 50 when left out, at most `--max-page-size` (500).")]
        first: Option<i32>,
        #[graphql(desc = "A cursor of this list and order: the page starts after it.")]
        after: Option<String>,
        #[graphql(desc = "Oldest first when left out.")] order_by: Option<CreationOrder>,
    ) -> Result<Conn<User>> {
        let (parent, count) = (
            UserParent::Integration(self.0.id),
            CountKey::UsersOfIntegration(self.0.id),
        );
        users_page(ctx, parent, count, (first, after, order_by)).await
    }

    /// The integration's groups, in `orderBy` order (oldest first by default).
    async fn groups(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size: 50 when left out, at most `--max-page-size` (500).")]
        first: Option<i32>,
        #[graphql(desc = "A cursor of this list and order: the page starts after it.")]
        after: Option<String>,
        #[graphql(desc = "Oldest first when left out.")] order_by: Option<CreationOrder>,
    ) -> Result<Conn<Group>> {
        let (parent, count) = (
            GroupParent::Integration(self.0.id),
            CountKey::GroupsOfIntegration(self.0.id),
        );
        groups_page(ctx, parent, count, (first, after, order_by)).await
    }

    /// The history of the integration's sync runs, in `orderBy` order (newest first by
    /// default).
    async fn sync_runs(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size: 50 when left out, at most `--max-page-size` (500).")]
        first: Option<i32>,
        #[graphql(desc = "A cursor of this list and order: the page starts after it.")]
        after: Option<String>,
        #[graphql(desc = "Newest first when left out.")] order_by: Option<CreationOrder>,
    ) -> Result<Conn<SyncRun>> {
        let window = nested::window(ctx, first, after.as_deref(), order_by, Direction::Desc)?;
        let key = RunPageKey(self.0.id, window);
        let page = nested::page(ctx, None, window, key).await?;
        let totals = count_totals(ctx, CountKey::RunsOfIntegration(self.0.id));
        let after = window.args.after;
        Ok(connection::build(page, after, |m| m.id, SyncRun, totals))
    }
}
