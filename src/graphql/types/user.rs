//! `User`: a person imported from a directory.

use super::{
    CreationOrder, Device, Group, Integration, UserStatus, integration::count_totals, nested,
};
use crate::{
    graphql::{
        connection::{self, Conn},
        context::ContextExt,
        ids::{self, kinds},
        loaders::{
            AliasesOfUser, CountKey, DevicePageKey, GroupPageKey, GroupParent, IntegrationKey,
            Prefetched, PrefetchedUser,
        },
    },
    store::page::Direction,
};
use async_graphql::{Context, ID, Object, Result};
use chrono::{DateTime, Utc};
use entity::directory_user;

/// A person imported from a directory integration. Users are only ever created by an
/// integration.
/// Prefetch the model, what was read with the user (a page of users asked for with their
/// devices or groups), so those fields need no loader.
pub struct User(pub directory_user::Model, Prefetched);

impl User {
    /// The user, with nothing read beside it.
    pub fn new(model: directory_user::Model) -> Self {
        User(model, Prefetched::default())
    }
}

impl From<PrefetchedUser> for User {
    fn from(with: PrefetchedUser) -> Self {
        User(with.user, with.related)
    }
}

/// A person imported from a directory integration: name, email, UPN and aliases, status
/// (ACTIVE, SUSPENDED in the directory, or ARCHIVED: kept for its devices after leaving it),
/// origin, groups and devices. Users are only ever created by an integration.
#[Object]
impl User {
    /// The user's global id.
    pub async fn id(&self) -> ID {
        ids::encode(kinds::USER, self.0.id)
    }

    /// The user's id in its directory.
    async fn external_id(&self) -> &str {
        &self.0.external_id
    }

    /// The sign-in name: UPN (Entra), primary email (Google) or `userName` (SCIM).
    async fn user_name(&self) -> &str {
        &self.0.user_name
    }

    /// The primary email address.
    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }

    /// The name to show.
    async fn display_name(&self) -> &str {
        &self.0.display_name
    }

    /// The first name; null when the directory has none.
    async fn given_name(&self) -> Option<&str> {
        self.0.given_name.as_deref()
    }

    /// The last name; null when the directory has none.
    async fn family_name(&self) -> Option<&str> {
        self.0.family_name.as_deref()
    }

    /// The job title; null when the directory has none.
    async fn job_title(&self) -> Option<&str> {
        self.0.job_title.as_deref()
    }

    /// The department; null when the directory has none.
    async fn department(&self) -> Option<&str> {
        self.0.department.as_deref()
    }

    /// The organisation's employee number; null when the directory has none.
    async fn employee_id(&self) -> Option<&str> {
        self.0.employee_id.as_deref()
    }

    /// How the organisation employs the user (`Employee`, `Contractor`, ...): Entra
    /// `employeeType`, Google's primary organization's `description`, SCIM `userType`.
    async fn employee_type(&self) -> Option<&str> {
        self.0.employee_type.as_deref()
    }

    /// Where the user works (Entra `officeLocation`, Google's primary organization's
    /// `location`); null when the directory has none.
    async fn office_location(&self) -> Option<&str> {
        self.0.office_location.as_deref()
    }

    /// The company the user works for (Entra `companyName`, Google's primary organization's
    /// `name`, SCIM enterprise `organization`); null when the directory has none.
    async fn company_name(&self) -> Option<&str> {
        self.0.company_name.as_deref()
    }

    /// The division (Entra `employeeOrgData.division`, SCIM enterprise `division`); null
    /// when the directory has none.
    async fn division(&self) -> Option<&str> {
        self.0.division.as_deref()
    }

    /// The cost center (Entra `employeeOrgData.costCenter`, Google's primary organization's
    /// `costCenter`, SCIM enterprise `costCenter`); null when the directory has none.
    async fn cost_center(&self) -> Option<&str> {
        self.0.cost_center.as_deref()
    }

    /// When the user was hired (Entra `employeeHireDate`); null when the directory has none
    /// or its value is not a date.
    async fn hire_date(&self) -> Option<DateTime<Utc>> {
        let text = self.0.hire_date.as_deref()?;
        DateTime::parse_from_rfc3339(text)
            .map(|d| d.with_timezone(&Utc))
            .ok()
            .or_else(|| {
                let day = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
                Some(day.and_hms_opt(0, 0, 0)?.and_utc())
            })
    }

    /// The mobile phone number (Entra `mobilePhone`, Google's `phones` entry of type
    /// `mobile`, SCIM `phoneNumbers` of type `mobile`); null when the directory has none.
    async fn mobile_phone(&self) -> Option<&str> {
        self.0.mobile_phone.as_deref()
    }

    /// The country (Entra `country`, Google's primary address's `country`, SCIM's work
    /// address's `country`), as the directory writes it; null when it has none.
    async fn country(&self) -> Option<&str> {
        self.0.country.as_deref()
    }

    /// The preferred language (`en-US`: Entra `preferredLanguage`, Google's first
    /// `languages` entry, SCIM `preferredLanguage`); null when the directory has none.
    async fn preferred_language(&self) -> Option<&str> {
        self.0.preferred_language.as_deref()
    }

    /// The directory's reference to the user's manager: its id (Entra, SCIM enterprise
    /// `manager.value`) or primary email (Google's `relations` of type `manager`); null
    /// when the user has none.
    async fn manager_id(&self) -> Option<&str> {
        self.0.manager_external_id.as_deref()
    }

    /// The user's manager, when the directory names one and it is a user of the same
    /// integration (null for a manager outside it or outside its scope; `managerId` still
    /// names it). One hop: a chain is read a level per field, so a cycle in the directory's
    /// data ends where the query does.
    async fn manager(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        let (Some(integration), Some(reference)) =
            (self.0.integration_id, self.0.manager_external_id.clone())
        else {
            return Ok(None);
        };
        let key = crate::graphql::loaders::UserReference {
            integration,
            reference,
        };
        Ok(ctx.loaders().load_one(key).await?.map(User::new))
    }

    /// The users of the same integration whose directory names this user as their
    /// manager, in `orderBy` order (oldest first by default). The same users as
    /// `users(filter: {managerId})`, which sorts them otherwise.
    async fn direct_reports(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size: 50 when left out, at most `--max-page-size` (500).")]
        first: Option<i32>,
        #[graphql(desc = "A cursor of this list and order: the page starts after it.")]
        after: Option<String>,
        #[graphql(desc = "Oldest first when left out.")] order_by: Option<CreationOrder>,
    ) -> Result<Conn<User>> {
        let (parent, count) = (
            crate::graphql::loaders::UserParent::ReportsOf(self.0.id),
            crate::graphql::loaders::CountKey::ReportsOfUser(self.0.id),
        );
        super::integration::users_page(ctx, parent, count, (first, after, order_by)).await
    }

    /// Other addresses of the user, matched by automatic device assignment.
    async fn aliases(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        Ok(ctx
            .loaders()
            .load_one(AliasesOfUser(self.0.id))
            .await?
            .unwrap_or_default())
    }

    /// Active, suspended in the directory, or archived.
    async fn status(&self) -> UserStatus {
        self.0.status.into()
    }

    /// The name of the integration the user came from; kept after that integration is
    /// deleted.
    async fn origin(&self) -> &str {
        &self.0.origin_name
    }

    /// The integration that keeps this user in sync; null once it was deleted.
    async fn integration(&self, ctx: &Context<'_>) -> Result<Option<Integration>> {
        let Some(id) = self.0.integration_id else {
            return Ok(None);
        };
        Ok(ctx
            .loaders()
            .load_one(IntegrationKey(id))
            .await?
            .map(Integration))
    }

    /// The groups the user is a member of, in `orderBy` order (oldest first by default):
    /// directly, or with `transitive` also the groups those are nested in, at any depth.
    async fn groups(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size: 50 when left out, at most `--max-page-size` (500).")]
        first: Option<i32>,
        #[graphql(desc = "A cursor of this list and order: the page starts after it.")]
        after: Option<String>,
        #[graphql(desc = "Oldest first when left out.")] order_by: Option<CreationOrder>,
        #[graphql(
            default = false,
            desc = "Include the groups the user's groups are nested in, at any depth."
        )]
        transitive: bool,
    ) -> Result<Conn<Group>> {
        let window = nested::window(ctx, first, after.as_deref(), order_by, Direction::Asc)?;
        let id = self.0.id;
        let (key, count, read) = if transitive {
            let key = GroupPageKey(GroupParent::UserTransitive(id), window);
            (key, CountKey::GroupsOfUserTransitive(id), None)
        } else {
            let key = GroupPageKey(GroupParent::User(id), window);
            (key, CountKey::GroupsOfUser(id), self.1.groups.as_deref())
        };
        let page = nested::page(ctx, read, window, key).await?;
        let totals = count_totals(ctx, count);
        let after = window.args.after;
        Ok(connection::build(page, after, |m| m.id, Group, totals))
    }

    /// The devices assigned to the user, in `orderBy` order (oldest first by default).
    async fn devices(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size: 50 when left out, at most `--max-page-size` (500).")]
        first: Option<i32>,
        #[graphql(desc = "A cursor of this list and order: the page starts after it.")]
        after: Option<String>,
        #[graphql(desc = "Oldest first when left out.")] order_by: Option<CreationOrder>,
    ) -> Result<Conn<Device>> {
        let window = nested::window(ctx, first, after.as_deref(), order_by, Direction::Asc)?;
        let key = DevicePageKey(self.0.id, window);
        let page = nested::page(ctx, self.1.devices.as_deref(), window, key).await?;
        let totals = count_totals(ctx, CountKey::DevicesOfUser(self.0.id));
        let after = window.args.after;
        Ok(connection::build(
            page,
            after,
            |m| m.id,
            Device::new,
            totals,
        ))
    }

    /// When the user was imported.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When the user last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// When the user was archived, if it is.
    async fn archived_at(&self) -> Option<DateTime<Utc>> {
        self.0.archived_at
    }
}

/// A page of the users `filter` selects, in `order_by` order, with its lazy total: the
/// top-level `users`, and a user's `directReports`.
pub async fn users_page(
    ctx: &Context<'_>,
    first: Option<i32>,
    after: Option<String>,
    filter: crate::directory::users::UserFilter,
    order_by: Option<super::UserOrder>,
) -> Result<crate::graphql::connection::Conn<User>> {
    use crate::graphql::{connection, ids};
    use crate::store::order;
    let order = super::UserOrder::domain(order_by);
    let (args, after_key) = connection::sorted_args(ctx, first, after.as_deref(), order)?;
    let projection = ctx.loaders().projection();
    let page = {
        let _busy = ctx.loaders().busy();
        let page = crate::directory::users::list(
            ctx.db(),
            &filter,
            args,
            order,
            after_key,
            projection.users,
        )
        .await?;
        page.map(User::new)
    };
    let (db, loaders) = (ctx.db().clone(), ctx.loaders().clone());
    let totals = connection::Totals::lazy(move || {
        let (db, filter, busy) = (db.clone(), filter.clone(), loaders.busy());
        async move {
            let _busy = busy;
            crate::directory::users::count(&db, &filter).await
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
