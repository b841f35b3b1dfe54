//! Directory users: reading and filtering them. Users are never created here: only a
//! directory integration creates them (R10).

use super::{
    GroupId, IntegrationId, UserId,
    page::{self, Direction, Page, PageArgs},
};
use crate::error::{DomainError, DomainResult};
use entity::{device, directory_user, enums::UserStatus, group_membership};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, QueryTrait,
    Select,
    sea_query::{Expr, ExprTrait, Func, LikeExpr},
};

/// Which users to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct UserFilter {
    pub integration: Option<IntegrationId>,
    pub group: Option<GroupId>,
    pub status: Option<UserStatus>,
    /// `true`: only users with at least one device; `false`: only users with none.
    pub assigned: Option<bool>,
    /// Case-insensitive substring of the display name, user name or email.
    pub search: Option<String>,
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
    if let Some(group) = filter.group {
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

/// One page of users, oldest first.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    filter: &UserFilter,
    args: PageArgs,
) -> DomainResult<Page<directory_user::Model>> {
    page::fetch(
        db,
        select(filter),
        directory_user::Column::Id,
        args,
        Direction::Asc,
    )
    .await
}

/// How many users match.
pub async fn count<C: ConnectionTrait>(db: &C, filter: &UserFilter) -> DomainResult<u64> {
    page::count(db, select(filter)).await
}

/// One user, or `NOT_FOUND`.
pub async fn get<C: ConnectionTrait>(db: &C, id: UserId) -> DomainResult<directory_user::Model> {
    directory_user::Entity::find_by_id(id.0)
        .one(db)
        .await?
        .ok_or(DomainError::NotFound { what: "user" })
}
