//! `Group`: a group imported from a directory.

use super::{
    CreationOrder, Integration, User,
    integration::{groups_page, users_page},
};
use crate::graphql::{
    connection::Conn,
    context::ContextExt,
    ids::{self, kinds},
    loaders::{CountKey, GroupParent, IntegrationKey, UserParent},
};
use async_graphql::{Context, ID, Object, Result};
use chrono::{DateTime, Utc};
use entity::directory_group;

/// A group imported from a directory integration.
pub struct Group(pub directory_group::Model);

/// A group imported from a directory integration, with its members.
#[Object]
impl Group {
    /// The group's global id.
    pub async fn id(&self) -> ID {
        ids::encode(kinds::GROUP, self.0.id)
    }

    /// The group's id in its directory.
    async fn external_id(&self) -> &str {
        &self.0.external_id
    }

    /// The group's name.
    async fn display_name(&self) -> &str {
        &self.0.display_name
    }

    /// The group's email address, if it has one.
    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }

    /// The group's description in its directory; null when it has none.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }

    /// The integration the group came from.
    async fn integration(&self, ctx: &Context<'_>) -> Result<Integration> {
        let found = ctx
            .loaders()
            .load_one(IntegrationKey(self.0.integration_id))
            .await?;
        // Groups are deleted with their integration (foreign key), so it exists.
        Ok(found.map(Integration).ok_or(crate::DomainError::NotFound {
            what: "integration",
        })?)
    }

    /// How many users the group has: its direct members, or with `transitive` also those
    /// of the groups nested in it (each user once).
    async fn member_count(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            default = false,
            desc = "Count the members of nested groups too, at any depth."
        )]
        transitive: bool,
    ) -> Result<i64> {
        let key = if transitive {
            CountKey::MembersOfGroupTransitive(self.0.id)
        } else {
            CountKey::MembersOfGroup(self.0.id)
        };
        Ok(ctx.loaders().load_one(key).await?.unwrap_or(0) as i64)
    }

    /// The group's users, in `orderBy` order (oldest first by default): its direct members,
    /// or with `transitive` also those of the groups nested in it, at any depth (each user
    /// once; a cycle of nested groups ends).
    async fn members(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size: 50 when left out, at most `--max-page-size` (500).")]
        first: Option<i32>,
        #[graphql(desc = "A cursor of this list and order: the page starts after it.")]
        after: Option<String>,
        #[graphql(desc = "Oldest first when left out.")] order_by: Option<CreationOrder>,
        #[graphql(
            default = false,
            desc = "Include the members of nested groups, at any depth."
        )]
        transitive: bool,
    ) -> Result<Conn<User>> {
        let id = self.0.id;
        let (parent, count) = if transitive {
            (
                UserParent::GroupTransitive(id),
                CountKey::MembersOfGroupTransitive(id),
            )
        } else {
            (UserParent::Group(id), CountKey::MembersOfGroup(id))
        };
        users_page(ctx, parent, count, (first, after, order_by)).await
    }

    /// The groups nested directly in this one, in `orderBy` order (oldest first by default).
    async fn child_groups(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size: 50 when left out, at most `--max-page-size` (500).")]
        first: Option<i32>,
        #[graphql(desc = "A cursor of this list and order: the page starts after it.")]
        after: Option<String>,
        #[graphql(desc = "Oldest first when left out.")] order_by: Option<CreationOrder>,
    ) -> Result<Conn<Group>> {
        let (parent, count) = (
            GroupParent::ChildrenOf(self.0.id),
            CountKey::ChildrenOfGroup(self.0.id),
        );
        groups_page(ctx, parent, count, (first, after, order_by)).await
    }

    /// The groups this one is nested in directly, in `orderBy` order (oldest first by
    /// default).
    async fn parent_groups(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size: 50 when left out, at most `--max-page-size` (500).")]
        first: Option<i32>,
        #[graphql(desc = "A cursor of this list and order: the page starts after it.")]
        after: Option<String>,
        #[graphql(desc = "Oldest first when left out.")] order_by: Option<CreationOrder>,
    ) -> Result<Conn<Group>> {
        let (parent, count) = (
            GroupParent::ParentsOf(self.0.id),
            CountKey::ParentsOfGroup(self.0.id),
        );
        groups_page(ctx, parent, count, (first, after, order_by)).await
    }

    /// When the group was imported.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When the group last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}
