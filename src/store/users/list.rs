//! Users as the API lists them: a filter, a page in an order reading only the columns asked
//! for, a count, one user.

use crate::error::DomainResult;
use crate::ids::{GroupId, IntegrationId};
use crate::store::{
    Db,
    columns::{self, Columns},
    order::{self, KeyValue, Order},
    page::{self, Page, PageArgs},
    rows,
};
use entity::{device, directory_user, enums::UserStatus, group_membership};
use sea_orm::{
    ColumnTrait, Condition, DbErr, EntityTrait, QueryFilter, QuerySelect, QueryTrait, Select,
    sea_query::{Expr, ExprTrait, Func, LikeExpr},
};

/// Which users to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct UserFilter {
    pub integration: Option<IntegrationId>,
    pub group: Option<GroupId>,
    /// With `group`: members of the group or of any group nested in it.
    pub transitive: bool,
    pub status: Option<UserStatus>,
    /// `true`: only users with at least one device; `false`: only users with none.
    pub assigned: Option<bool>,
    /// Case-insensitive substring of the display name, user name or email.
    pub search: Option<String>,
    /// The direct reports of this user: the users of its integration whose manager
    /// reference names it (by id, user name or email).
    pub reports_to: Option<crate::ids::UserId>,
}

/// `LOWER(col) LIKE '%term%'` on any of `cols`, with `%`, `_` and `\` in the term escaped.
pub fn search_condition<C: ColumnTrait>(term: &str, cols: &[C]) -> Condition {
    let mut escaped = String::with_capacity(term.len() + 2);
    escaped.push('%');
    for ch in term.trim().to_lowercase().chars() {
        if matches!(ch, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(ch);
    }
    escaped.push('%');
    cols.iter().fold(Condition::any(), |cond, col| {
        cond.add(
            Expr::expr(Func::lower(col.into_expr()))
                .like(LikeExpr::new(escaped.clone()).escape('\\')),
        )
    })
}

fn select(filter: &UserFilter) -> Select<directory_user::Entity> {
    let mut select = directory_user::Entity::find();
    if let Some(id) = filter.integration {
        select = select.filter(directory_user::Column::IntegrationId.eq(id.0));
    }
    if let Some(group) = filter.group.filter(|_| filter.transitive) {
        let user = r#""directory_users"."id""#;
        select = select.filter(crate::store::nesting::in_group_transitively(user, group.0));
    } else if let Some(group) = filter.group {
        select = select.filter(
            directory_user::Column::Id.in_subquery(
                group_membership::Entity::find()
                    .select_only()
                    .column(group_membership::Column::UserId)
                    .filter(group_membership::Column::GroupId.eq(group.0))
                    .into_query(),
            ),
        );
    }
    if let Some(status) = filter.status {
        select = select.filter(directory_user::Column::Status.eq(status));
    }
    if let Some(assigned) = filter.assigned {
        let with_devices = device::Entity::find()
            .select_only()
            .column(device::Column::UserId)
            .filter(device::Column::UserId.is_not_null())
            .into_query();
        select = select.filter(if assigned {
            directory_user::Column::Id.in_subquery(with_devices)
        } else {
            directory_user::Column::Id.not_in_subquery(with_devices)
        });
    }
    if let Some(manager) = filter.reports_to {
        select = select.filter(crate::store::reports::reporting_to(Expr::val(manager.0)));
    }
    if let Some(search) = &filter.search {
        select = select.filter(search_condition(
            search,
            &[
                directory_user::Column::DisplayName,
                directory_user::Column::UserName,
                directory_user::Column::Email,
            ],
        ));
    }
    select
}

/// One page of users in `order`, reading `columns` (`store::columns`).
pub async fn list(
    db: &impl Db,
    filter: &UserFilter,
    args: PageArgs,
    order: Order,
    after_key: Option<KeyValue>,
    columns: Columns,
) -> DomainResult<Page<directory_user::Model>> {
    let columns = columns.with_sort::<directory_user::Entity>(order.key);
    order::fetch_sorted_with(
        db,
        columns::project(select(filter), columns),
        directory_user::Column::Id,
        args,
        order,
        after_key,
        |page| rows::models(db, page),
    )
    .await
}

/// How many users match.
pub async fn count(db: &impl Db, filter: &UserFilter) -> DomainResult<u64> {
    page::count(db, select(filter)).await
}

/// One user, if it exists.
pub async fn find(db: &impl Db, id: i64) -> Result<Option<directory_user::Model>, DbErr> {
    directory_user::Entity::find_by_id(id).one(db).await
}
