//! The `Query` root: every read of the API. Each resolver checks the caller, converts the
//! input, calls `directory::*`, and wraps the result.

use super::{
    connection::{self, Conn, Totals},
    context::ContextExt,
    ids::{self, kinds},
    loaders::{self, PrefetchedUser},
    types::{
        AuditEvent, Device, DeviceOrder, DevicePlatform, DirectoryEvent, DirectoryKind, Group,
        GroupOrder, Integration, IntegrationOrder, IntegrationStatus, Node, SyncRun, User,
        UserOrder, UserStatus,
    },
};
use crate::error::{DomainError, DomainResult};
use crate::{
    directory::{
        DeviceId, GroupId, IntegrationId, SyncRunId, UserId, audit, devices, events, groups,
        integrations, sync_runs, users,
    },
    store::{
        order::{self, KeyValue, Order},
        page::PageArgs,
    },
};
use async_graphql::{Context, ID, InputObject, Object, Result};
use std::{collections::HashMap, sync::Arc};

/// Which users to list. All given conditions must hold.
#[derive(InputObject, Default)]
pub struct UserFilter {
    /// Only users of this integration.
    pub integration_id: Option<ID>,
    /// Only members of this group.
    pub group_id: Option<ID>,
    /// Only users with this status.
    pub status: Option<UserStatus>,
    /// `true`: only users with a device; `false`: only users without one.
    pub assigned: Option<bool>,
    /// Case-insensitive text in the display name, user name or email.
    pub search: Option<String>,
}

/// Which audit events to list. All given conditions must hold.
#[derive(InputObject, Default)]
pub struct AuditEventFilter {
    /// Only this action (a mutation's name, e.g. `renameIntegration`).
    pub action: Option<String>,
    /// Only events about this object (its global id).
    pub target_id: Option<ID>,
    /// Only events at or after this time.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
}

/// Which groups to list.
#[derive(InputObject, Default)]
pub struct GroupFilter {
    /// Only groups of this integration.
    pub integration_id: Option<ID>,
    /// Case-insensitive text in the name or email.
    pub search: Option<String>,
}

/// Which devices to list.
#[derive(InputObject, Default)]
pub struct DeviceFilter {
    /// Only devices of this platform.
    pub platform: Option<DevicePlatform>,
    /// `true`: only devices with a user; `false`: only devices without one.
    pub assigned: Option<bool>,
    /// Only devices assigned to this user.
    pub user_id: Option<ID>,
    /// Case-insensitive text in the serial number, name or enrollment identity.
    pub search: Option<String>,
}

fn search_term(search: Option<String>) -> DomainResult<Option<String>> {
    let Some(term) = search
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
    else {
        return Ok(None);
    };
    if term.chars().count() > 256 {
        return Err(DomainError::invalid(
            "search",
            "`search` must be at most 256 characters",
        ));
    }
    Ok(Some(term))
}

fn decode_opt(
    id: Option<&ID>,
    kind: &'static str,
    field: &'static str,
) -> DomainResult<Option<i64>> {
    id.map(|id| ids::decode(id, kind, field)).transpose()
}

impl UserFilter {
    fn into_domain(self) -> DomainResult<users::UserFilter> {
        Ok(users::UserFilter {
            integration: decode_opt(
                self.integration_id.as_ref(),
                kinds::INTEGRATION,
                "integrationId",
            )?
            .map(IntegrationId),
            group: decode_opt(self.group_id.as_ref(), kinds::GROUP, "groupId")?.map(GroupId),
            status: self.status.map(Into::into),
            assigned: self.assigned,
            search: search_term(self.search)?,
        })
    }
}

impl GroupFilter {
    fn into_domain(self) -> DomainResult<groups::GroupFilter> {
        Ok(groups::GroupFilter {
            integration: decode_opt(
                self.integration_id.as_ref(),
                kinds::INTEGRATION,
                "integrationId",
            )?
            .map(IntegrationId),
            search: search_term(self.search)?,
        })
    }
}

impl DeviceFilter {
    fn into_domain(self) -> DomainResult<devices::DeviceFilter> {
        Ok(devices::DeviceFilter {
            platform: self.platform.map(Into::into),
            assigned: self.assigned,
            user: decode_opt(self.user_id.as_ref(), kinds::USER, "userId")?.map(UserId),
            search: search_term(self.search)?,
        })
    }
}

/// Queries answer null for an id that names nothing.
fn found<T>(result: DomainResult<T>) -> DomainResult<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(DomainError::NotFound { .. }) => Ok(None),
        Err(err) => Err(err),
    }
}

fn page_args(ctx: &Context<'_>, first: Option<i32>, after: Option<&str>) -> DomainResult<PageArgs> {
    PageArgs::new(first, ids::decode_after(after)?, ctx.config().max_page_size)
}

/// The page arguments of a list in `order`, and the sort key of the item `after` names.
fn sorted_args(
    ctx: &Context<'_>,
    first: Option<i32>,
    after: Option<&str>,
    order: Order,
) -> DomainResult<(PageArgs, Option<KeyValue>)> {
    let (after, key) = ids::decode_sorted_after(after, order)?.unzip();
    let args = PageArgs::new(first, after, ctx.config().max_page_size)?;
    Ok((args, key.flatten()))
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

/// Which events to list. All given conditions must hold.
#[derive(InputObject, Default)]
pub struct EventFilter {
    /// Only events of these types (e.g. `user.suspended`); at most 22.
    pub types: Option<Vec<String>>,
    /// Only events of this integration.
    pub integration_id: Option<ID>,
}

impl EventFilter {
    /// Checks the types against the known ones and decodes the integration id.
    pub fn into_domain(self) -> DomainResult<events::EventFilter> {
        let types = self.types.unwrap_or_default();
        if types.len() > events::EVENT_TYPES.len() {
            return Err(DomainError::invalid(
                "filter.types",
                "`types` names each event type at most once",
            ));
        }
        if let Some(unknown) = types
            .iter()
            .find(|t| !events::EVENT_TYPES.contains(&t.as_str()))
        {
            return Err(DomainError::invalid(
                "filter.types",
                format!(
                    "`{}` is not an event type",
                    unknown.chars().take(40).collect::<String>()
                ),
            ));
        }
        let integration = self
            .integration_id
            .map(|id| ids::decode(&id, kinds::INTEGRATION, "filter.integrationId"))
            .transpose()?;
        Ok(events::EventFilter { types, integration })
    }
}

#[Object]
impl DirectoryQuery {
    /// Any object by its global id; null when it does not exist.
    async fn node(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Node>> {
        ctx.caller()?;
        let (kind, raw) = ids::decode_any(&id, "id")?;
        let db = ctx.db();
        let node =
            match kind.as_str() {
                kinds::INTEGRATION => found(integrations::get(db, IntegrationId(raw)).await)?
                    .map(|m| Node::Integration(Integration(m))),
                kinds::USER => {
                    found(users::get(db, UserId(raw)).await)?.map(|m| Node::User(User::new(m)))
                }
                kinds::GROUP => {
                    found(groups::get(db, GroupId(raw)).await)?.map(|m| Node::Group(Group(m)))
                }
                kinds::DEVICE => found(devices::get(db, DeviceId(raw)).await)?
                    .map(|m| Node::Device(Device::new(m))),
                kinds::SYNC_RUN => found(sync_runs::get(db, SyncRunId(raw)).await)?
                    .map(|m| Node::SyncRun(SyncRun(m))),
                _ => return Err(DomainError::invalid("id", "`id` is not a valid id").into()),
            };
        Ok(node)
    }

    /// The integrations, in `orderBy` order (by default oldest first).
    async fn integrations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        kind: Option<DirectoryKind>,
        status: Option<IntegrationStatus>,
        order_by: Option<IntegrationOrder>,
    ) -> Result<Conn<Integration>> {
        ctx.caller()?;
        let order = IntegrationOrder::domain(order_by);
        let (args, after_key) = sorted_args(ctx, first, after.as_deref(), order)?;
        let filter = integrations::IntegrationFilter {
            kind: kind.map(Into::into),
            status: status.map(Into::into),
        };
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
    async fn integration(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Integration>> {
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
        first: Option<i32>,
        after: Option<String>,
        filter: Option<UserFilter>,
        order_by: Option<UserOrder>,
    ) -> Result<Conn<User>> {
        ctx.caller()?;
        let order = UserOrder::domain(order_by);
        let (args, after_key) = sorted_args(ctx, first, after.as_deref(), order)?;
        let filter = filter.unwrap_or_default().into_domain()?;
        let projection = ctx.loaders().projection();
        let page = {
            let _busy = ctx.loaders().busy();
            let page =
                users::list(ctx.db(), &filter, args, order, after_key, projection.users).await?;
            page.map(User::new)
        };
        let (db, loaders) = (ctx.db().clone(), ctx.loaders().clone());
        let totals = Totals::lazy(move || {
            let (db, filter, busy) = (db.clone(), filter.clone(), loaders.busy());
            async move {
                let _busy = busy;
                users::count(&db, &filter).await
            }
        });
        Ok(connection::build_with(
            page,
            args.after.is_some(),
            |u| ids::Cursor::of(order, order::user_key(order.key, &u.0), u.0.id),
            |u| u,
            totals,
        ))
    }

    /// One user; null when it does not exist.
    async fn user(&self, ctx: &Context<'_>, id: ID) -> Result<Option<User>> {
        ctx.caller()?;
        let id = ids::decode(&id, kinds::USER, "id")?;
        Ok(found(users::get(ctx.db(), UserId(id)).await)?.map(User::new))
    }

    /// The directory groups, in `orderBy` order (by default oldest first).
    async fn groups(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<GroupFilter>,
        order_by: Option<GroupOrder>,
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
    async fn group(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Group>> {
        ctx.caller()?;
        let id = ids::decode(&id, kinds::GROUP, "id")?;
        Ok(found(groups::get(ctx.db(), GroupId(id)).await)?.map(Group))
    }

    /// The devices, in `orderBy` order (by default oldest first).
    async fn devices(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<DeviceFilter>,
        order_by: Option<DeviceOrder>,
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
                let beside = connection::prefetch_for_users(ctx, &["user"]);
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
    async fn device(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Device>> {
        ctx.caller()?;
        let id = ids::decode(&id, kinds::DEVICE, "id")?;
        Ok(found(devices::get(ctx.db(), DeviceId(id)).await)?.map(Device::new))
    }

    /// Directory change events in order, after `after` (a cursor of this feed; none: from the
    /// oldest kept). The feed is gapless: resume after the last cursor seen, after any outage,
    /// and no event is missed or repeated. Events are kept `--event-retention-days`.
    async fn events(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<EventFilter>,
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
        first: Option<i32>,
        after: Option<String>,
        filter: Option<AuditEventFilter>,
    ) -> Result<Conn<AuditEvent>> {
        ctx.admin()?;
        let args = page_args(ctx, first, after.as_deref())?;
        let filter = filter.unwrap_or_default();
        let filter = audit::AuditFilter {
            action: filter.action,
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
    async fn sync_run(&self, ctx: &Context<'_>, id: ID) -> Result<Option<SyncRun>> {
        ctx.caller()?;
        let id = ids::decode(&id, kinds::SYNC_RUN, "id")?;
        Ok(found(sync_runs::get(ctx.db(), SyncRunId(id)).await)?.map(SyncRun))
    }
}
