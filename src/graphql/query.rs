//! The `Query` root: every read of the API. Each resolver checks the caller, converts the
//! input, calls `directory::*`, and wraps the result.

use super::filters::{
    AuditEventFilter, DeviceFilter, EventFilter, GroupFilter, IntegrationFilter, UserFilter,
};
use super::{
    connection::{self, Conn, Totals, sorted_args},
    context::ContextExt,
    ids::{self, kinds},
    loaders::{self, PrefetchedUser},
    types::{
        AuditEvent, Device, DeviceOrder, DirectoryEvent, Group, GroupOrder, Integration,
        IntegrationOrder, Node, SyncRun, User, UserOrder, node,
    },
};
use crate::error::{DomainError, DomainResult};
use crate::{
    directory::{
        DeviceId, GroupId, IntegrationId, SyncRunId, UserId, audit, devices, events, groups,
        integrations, sync_runs, users,
    },
    store::{order, page::PageArgs},
};
use async_graphql::{Context, ID, Object, Result};
use std::{collections::HashMap, sync::Arc};

fn page_args(ctx: &Context<'_>, first: Option<i32>, after: Option<&str>) -> DomainResult<PageArgs> {
    PageArgs::new(first, ids::decode_after(after)?, ctx.config().max_page_size)
}

/// The reads of the directory (the `Query` root merges them with the webhooks').
#[derive(Default)]
pub struct DirectoryQuery;

/// A page of the event feed (no `totalCount`: the feed is long, and counting it would read it).
pub type EventConn = async_graphql::connection::Connection<
    ids::Cursor,
    DirectoryEvent,
    async_graphql::connection::EmptyFields,
    async_graphql::connection::EmptyFields,
>;

/// The caller of a request.
#[derive(async_graphql::SimpleObject)]
pub struct Viewer {
    /// The API token's name, as given when it was made.
    pub token_name: String,
    /// What the token may do.
    pub role: super::types::TokenRole,
}

#[Object]
impl DirectoryQuery {
    /// Who is calling: the API token's name and role, so a front end can hide what the role
    /// may not do instead of waiting for FORBIDDEN.
    async fn viewer(&self, ctx: &Context<'_>) -> Result<Viewer> {
        let caller = ctx.caller()?;
        Ok(Viewer {
            token_name: caller.actor().name().to_owned(),
            role: caller.role().into(),
        })
    }

    /// Any object by its global id; null when it does not exist.
    async fn node(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The object's global id.")] id: ID,
    ) -> Result<Option<Node>> {
        ctx.caller()?;
        Ok(node::resolve(ctx, &id, "id").await?)
    }

    /// The objects `ids` name, in their order; null for one that does not exist. At most
    /// 100 ids (LIMIT_EXCEEDED otherwise).
    async fn nodes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global ids, at most 100.")] ids: Vec<ID>,
    ) -> Result<Vec<Option<Node>>> {
        ctx.caller()?;
        if ids.len() > node::MAX_NODES {
            return Err(DomainError::LimitExceeded {
                limit: "nodes",
                max: node::MAX_NODES,
            }
            .into());
        }
        // Resolved together, so the loader reads them in one statement per kind.
        let found = ids.iter().map(|id| node::resolve(ctx, id, "ids"));
        Ok(futures_util::future::try_join_all(found).await?)
    }

    /// The integrations, in `orderBy` order (by default oldest first).
    async fn integrations(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size: 50 when left out, at most `--max-page-size` (500).")]
        first: Option<i32>,
        #[graphql(desc = "A cursor of this list and order: the page starts after it.")]
        after: Option<String>,
        #[graphql(desc = "Which integrations; all given conditions hold.")] filter: Option<
            IntegrationFilter,
        >,
        #[graphql(desc = "The order; oldest first when left out.")] order_by: Option<
            IntegrationOrder,
        >,
    ) -> Result<Conn<Integration>> {
        ctx.caller()?;
        let order = IntegrationOrder::domain(order_by);
        let (args, after_key) = sorted_args(ctx, first, after.as_deref(), order)?;
        let filter = filter.unwrap_or_default().into_domain();
        let page = {
            let _busy = ctx.loaders().busy();
            integrations::list(ctx.db(), filter, args, order, after_key).await?
        };
        let (db, loaders) = (ctx.db().clone(), ctx.loaders().clone());
        let totals = Totals::lazy(move || {
            let (db, busy) = (db.clone(), loaders.busy());
            async move {
                let _busy = busy;
                integrations::count(&db, filter).await
            }
        });
        Ok(connection::build_with(
            page,
            args.after.is_some(),
            |m| ids::Cursor::of(order, order::integration_key(order.key, m), m.id),
            Integration,
            totals,
        ))
    }

    /// One integration; null when it does not exist.
    async fn integration(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The object's global id.")] id: ID,
    ) -> Result<Option<Integration>> {
        ctx.caller()?;
        let id = ids::decode(&id, kinds::INTEGRATION, "id")?;
        Ok(integrations::find(ctx.db(), IntegrationId(id))
            .await?
            .map(Integration))
    }

    /// The directory users, in `orderBy` order (by default oldest first).
    async fn users(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size: 50 when left out, at most `--max-page-size` (500).")]
        first: Option<i32>,
        #[graphql(desc = "A cursor of this list and order: the page starts after it.")]
        after: Option<String>,
        #[graphql(desc = "Which users; all given conditions hold.")] filter: Option<UserFilter>,
        #[graphql(desc = "The order; oldest first when left out.")] order_by: Option<UserOrder>,
    ) -> Result<Conn<User>> {
        ctx.caller()?;
        let filter = filter.unwrap_or_default().into_domain()?;
        super::types::users_page(ctx, first, after, filter, order_by).await
    }

    /// One user; null when it does not exist.
    async fn user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The object's global id.")] id: ID,
    ) -> Result<Option<User>> {
        ctx.caller()?;
        let id = ids::decode(&id, kinds::USER, "id")?;
        Ok(node::found(users::get(ctx.db(), UserId(id)).await)?.map(User::new))
    }

    /// The directory groups, in `orderBy` order (by default oldest first).
    async fn groups(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size: 50 when left out, at most `--max-page-size` (500).")]
        first: Option<i32>,
        #[graphql(desc = "A cursor of this list and order: the page starts after it.")]
        after: Option<String>,
        #[graphql(desc = "Which groups; all given conditions hold.")] filter: Option<GroupFilter>,
        #[graphql(desc = "The order; oldest first when left out.")] order_by: Option<GroupOrder>,
    ) -> Result<Conn<Group>> {
        ctx.caller()?;
        let order = GroupOrder::domain(order_by);
        let (args, after_key) = sorted_args(ctx, first, after.as_deref(), order)?;
        let filter = filter.unwrap_or_default().into_domain()?;
        let page = {
            let _busy = ctx.loaders().busy();
            groups::list(
                ctx.db(),
                &filter,
                args,
                order,
                after_key,
                ctx.loaders().projection().groups,
            )
            .await?
        };
        let (db, loaders) = (ctx.db().clone(), ctx.loaders().clone());
        let totals = Totals::lazy(move || {
            let (db, filter, busy) = (db.clone(), filter.clone(), loaders.busy());
            async move {
                let _busy = busy;
                groups::count(&db, &filter).await
            }
        });
        Ok(connection::build_with(
            page,
            args.after.is_some(),
            |m| ids::Cursor::of(order, order::group_key(order.key, m), m.id),
            Group,
            totals,
        ))
    }

    /// One group; null when it does not exist.
    async fn group(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The object's global id.")] id: ID,
    ) -> Result<Option<Group>> {
        ctx.caller()?;
        let id = ids::decode(&id, kinds::GROUP, "id")?;
        Ok(node::found(groups::get(ctx.db(), GroupId(id)).await)?.map(Group))
    }

    /// The devices, in `orderBy` order (by default oldest first).
    async fn devices(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size: 50 when left out, at most `--max-page-size` (500).")]
        first: Option<i32>,
        #[graphql(desc = "A cursor of this list and order: the page starts after it.")]
        after: Option<String>,
        #[graphql(desc = "Which devices; all given conditions hold.")] filter: Option<DeviceFilter>,
        #[graphql(desc = "The order; oldest first when left out.")] order_by: Option<DeviceOrder>,
    ) -> Result<Conn<Device>> {
        ctx.caller()?;
        let order = DeviceOrder::domain(order_by);
        let (args, after_key) = sorted_args(ctx, first, after.as_deref(), order)?;
        let filter = filter.unwrap_or_default().into_domain()?;
        // Look-ahead: when the page's users are asked for, they come in the page's own
        // statement, and their groups or devices, when asked for, in one more each; each
        // device carries its user, so none needs a loader key per device.
        let projection = ctx.loaders().projection();
        let page = {
            let _busy = ctx.loaders().busy();
            if connection::nodes_ask(ctx, &["user"]) {
                let beside = super::types::nested::prefetch_for_users(ctx, &["user"]);
                let (page, users) = devices::list_with_users(
                    ctx.db(),
                    &filter,
                    args,
                    order,
                    after_key,
                    (projection.devices, projection.users),
                )
                .await?;
                let read = loaders::Prefetches::of(
                    ctx.db(),
                    projection,
                    users.iter().map(|u| u.id).collect::<Vec<_>>(),
                    beside,
                )
                .await?;
                // Each user once, however many of the page's devices it has.
                let users: HashMap<i64, Arc<PrefetchedUser>> = users
                    .into_iter()
                    .map(|u| (u.id, Arc::new(read.attach(u))))
                    .collect();
                page.map(|d| {
                    let user = d.user_id.and_then(|id| users.get(&id).cloned());
                    Device::with_user(d, user)
                })
            } else {
                devices::list(
                    ctx.db(),
                    &filter,
                    args,
                    order,
                    after_key,
                    projection.devices,
                )
                .await?
                .map(Device::new)
            }
        };
        let (db, loaders) = (ctx.db().clone(), ctx.loaders().clone());
        let totals = Totals::lazy(move || {
            let (db, filter, busy) = (db.clone(), filter.clone(), loaders.busy());
            async move {
                let _busy = busy;
                devices::count(&db, &filter).await
            }
        });
        Ok(connection::build_with(
            page,
            args.after.is_some(),
            |d| ids::Cursor::of(order, order::device_key(order.key, &d.0), d.0.id),
            |d| d,
            totals,
        ))
    }

    /// One device; null when it does not exist.
    async fn device(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The object's global id.")] id: ID,
    ) -> Result<Option<Device>> {
        ctx.caller()?;
        let id = ids::decode(&id, kinds::DEVICE, "id")?;
        Ok(node::found(devices::get(ctx.db(), DeviceId(id)).await)?.map(Device::new))
    }

    /// Directory change events in order, after `after` (a cursor of this feed; none: from the
    /// oldest kept). The feed is gapless: resume after the last cursor seen, after any outage,
    /// and no event is missed or repeated. Events are kept `--event-retention-days`. The
    /// connection has no `totalCount`: the feed is long, and counting it would read it whole.
    async fn events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size: 50 when left out, at most `--max-page-size` (500).")]
        first: Option<i32>,
        #[graphql(desc = "A cursor of this list and order: the page starts after it.")]
        after: Option<String>,
        #[graphql(desc = "Which events; all given conditions hold.")] filter: Option<EventFilter>,
    ) -> Result<EventConn> {
        ctx.caller()?;
        let args = page_args(ctx, first, after.as_deref())?;
        let filter = filter.unwrap_or_default().into_domain()?;
        let page = {
            let _busy = ctx.loaders().busy();
            events::list(ctx.db(), args.after, args.first, &filter).await?
        };
        let mut conn =
            async_graphql::connection::Connection::new(args.after.is_some(), page.has_next);
        conn.edges.extend(page.items.into_iter().map(|m| {
            async_graphql::connection::Edge::new(ids::Cursor::Id(m.seq), DirectoryEvent(m))
        }));
        Ok(conn)
    }

    /// The audit log, newest first: every mutation, who made it, on what, and when. ADMIN
    /// tokens only (FORBIDDEN otherwise).
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size: 50 when left out, at most `--max-page-size` (500).")]
        first: Option<i32>,
        #[graphql(desc = "A cursor of this list and order: the page starts after it.")]
        after: Option<String>,
        #[graphql(desc = "Which audit events; all given conditions hold.")] filter: Option<
            AuditEventFilter,
        >,
    ) -> Result<Conn<AuditEvent>> {
        ctx.admin()?;
        let args = page_args(ctx, first, after.as_deref())?;
        let filter = filter.unwrap_or_default();
        let filter = audit::AuditFilter {
            action: filter
                .action
                .map(|a| crate::directory::audit::Action::from(a).as_str().to_owned()),
            target: filter
                .target_id
                .map(|id| ids::decode_any(&id, "filter.targetId"))
                .transpose()?,
            since: filter.since,
        };
        let page = {
            let _busy = ctx.loaders().busy();
            audit::list(ctx.db(), &filter, args).await?
        };
        let (db, loaders) = (ctx.db().clone(), ctx.loaders().clone());
        let totals = Totals::lazy(move || {
            let (db, filter, busy) = (db.clone(), filter.clone(), loaders.busy());
            async move {
                let _busy = busy;
                audit::count(&db, &filter).await
            }
        });
        Ok(connection::build(
            page,
            args.after,
            |m| m.id,
            AuditEvent,
            totals,
        ))
    }

    /// One sync run; null when it does not exist.
    async fn sync_run(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The object's global id.")] id: ID,
    ) -> Result<Option<SyncRun>> {
        ctx.caller()?;
        let id = ids::decode(&id, kinds::SYNC_RUN, "id")?;
        Ok(node::found(sync_runs::get(ctx.db(), SyncRunId(id)).await)?.map(SyncRun))
    }
}
